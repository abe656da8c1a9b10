# Noise kept at inference, digits, both noise forms at the 100-epoch settings of
# ../study_digits_plateau (reference form, sigma_add = 0.03, sigma_mult = 0.02) and
# ../study_digits_ito_plateau_confirm (Ito form, sigma = 0.1): fixed step dt = 0.3675, 100 epochs
# (lr 0.01, x0.1 after epoch 90), 16 fresh seeds (160-175), fresh perturbation draws
# (--perturbation-seed 5), each form one ensemble of 32 members. Every noisy member is read
# deterministically and with its training noise on, logits averaged over 16 draws. Run on the
# shared 2-core CPU under `nice -n 5` (training 993 s and 250 s, evaluation 66 s and 139 s).
nice -n 5 python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data digits \
    --sigma-add 0.03 --sigma-mult 0.02 --seeds 16 --first-seed 160 --perturbation-seed 5 \
    --hidden 64 --epochs 100 --batch-size 64 --lr 0.01 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm --inference-draws 16 \
    --out docs/results/noisy_dyn/study_digits_inference_draws/reference
nice -n 5 python -m noisy_dyn study --preset nrnn_ito --fixed-step --dt 0.3675 --data digits \
    --sigma 0.1 --seeds 16 --first-seed 160 --perturbation-seed 5 \
    --hidden 64 --epochs 100 --batch-size 64 --lr 0.01 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm --inference-draws 16 \
    --out docs/results/noisy_dyn/study_digits_inference_draws/ito
# the comparison of the two inferences, both forms: inference.md, inference.png
python docs/results/noisy_dyn/study_digits_inference_draws/summarize.py
