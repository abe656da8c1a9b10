# Discovery: reference noise form, fixed step dt = 0.3675 (the demo's dt for every model), the
# grid sigma_add in {0, 0.03} x sigma_mult in {0, 0.02}, 16 seeds (0-15), 64 members in one
# ensemble, 30 epochs, H = 64, batch 64, lr 0.01 (x0.1 after epoch 27), 490 s on the shared
# 2-core CPU. PGD left out to save time.
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data digits \
    --sigma-add 0,0.03 --sigma-mult 0,0.02 --seeds 16 --hidden 64 --epochs 30 --batch-size 64 \
    --lr 0.01 --kinds gaussian,multiplicative,salt_pepper,fgsm --out docs/results/noisy_dyn/study_digits
# Confirmation on fresh seeds (16-47) and fresh perturbation draws (--perturbation-seed 1) of the
# one level whose rows survived Holm's correction: ../study_digits_confirm/commands.sh.
