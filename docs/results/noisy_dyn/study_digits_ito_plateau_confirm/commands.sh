# Confirmation of the Ito-form gain that ../demo_tradeoff_plateau found (sigma_add = sigma_mult =
# 0.1 against the deterministic twin, 16 seeds, 100 epochs): the same comparison on 32 fresh
# seeds (128-159) and fresh perturbation draws (--perturbation-seed 4), fixed step dt = 0.3675,
# 100 epochs (lr 0.01, x0.1 after epoch 90), 64 members in one ensemble. Then the two-stage test.
# The plateau rule in study_setup.json was not met: late gain 0.56 points against 0.5.
python -m noisy_dyn study --preset nrnn_ito --fixed-step --dt 0.3675 --data digits --sigma 0.1 \
    --seeds 32 --first-seed 128 --perturbation-seed 4 --hidden 64 --epochs 100 --batch-size 64 \
    --lr 0.01 --kinds gaussian,multiplicative,salt_pepper,fgsm \
    --out docs/results/noisy_dyn/study_digits_ito_plateau_confirm
python -m noisy_dyn confirm docs/results/noisy_dyn/demo_tradeoff_plateau/ito \
    docs/results/noisy_dyn/study_digits_ito_plateau_confirm --level 0.1,0.1
