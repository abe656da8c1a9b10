# Which ingredient, trained to a plateau (the plateau rule in study_setup.json met: late gain
# 0.0 points against 0.5): the grid sigma_add in {0, 0.03} x sigma_mult in {0, 0.02}
# of the reference noise form (fixed step dt = 0.3675) for 100 epochs (lr 0.01, x0.1 after epoch
# 90), on 32 fresh seeds (80-111) and fresh perturbation draws (--perturbation-seed 3); 128
# members in one ensemble. Its (0.03, 0.02) rows replicate ../study_digits_plateau on new seeds:
# the two-stage test of the comparisons that study picked.
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data digits \
    --sigma-add 0,0.03 --sigma-mult 0,0.02 --seeds 32 --first-seed 80 --perturbation-seed 3 \
    --hidden 64 --epochs 100 --batch-size 64 --lr 0.01 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm \
    --out docs/results/noisy_dyn/study_digits_plateau_grid
python -m noisy_dyn confirm docs/results/noisy_dyn/study_digits_plateau \
    docs/results/noisy_dyn/study_digits_plateau_grid
