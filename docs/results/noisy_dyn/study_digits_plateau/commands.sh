# Trained for 100 epochs, meant to reach a plateau (the plateau rule in study_setup.json was not
# met: late gain 0.54 points against 0.5): the comparison of ../study_digits and
# ../study_digits_confirm (reference noise form, fixed step dt = 0.3675, sigma_add = 0.03 and
# sigma_mult = 0.02 against the deterministic twin) for 100 epochs instead of 30 (lr 0.01, x0.1
# after epoch 90), on 32 fresh seeds (48-79) and fresh perturbation draws (--perturbation-seed 2);
# 64 members in one ensemble.
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data digits \
    --sigma-add 0.03 --sigma-mult 0.02 --seeds 32 --first-seed 48 --perturbation-seed 2 \
    --hidden 64 --epochs 100 --batch-size 64 --lr 0.01 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm --out docs/results/noisy_dyn/study_digits_plateau
