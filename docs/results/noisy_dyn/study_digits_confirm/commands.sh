# Confirmation of ../study_digits on fresh seeds (16-47) and fresh perturbation draws: the
# deterministic twin and sigma_add = 0.03, sigma_mult = 0.02 only (64 members in one ensemble),
# otherwise the same settings; 393 s on the shared 2-core CPU. Then the two-stage test.
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data digits \
    --sigma-add 0.03 --sigma-mult 0.02 --seeds 32 --first-seed 16 --perturbation-seed 1 \
    --hidden 64 --epochs 30 --batch-size 64 --lr 0.01 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm --out docs/results/noisy_dyn/study_digits_confirm
python -m noisy_dyn confirm docs/results/noisy_dyn/study_digits \
    docs/results/noisy_dyn/study_digits_confirm --level 0.03,0.02
