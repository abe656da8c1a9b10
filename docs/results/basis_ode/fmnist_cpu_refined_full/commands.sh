# Fashion-MNIST ConvODENet (width 8) by refinement K = n_steps 1 -> 2 -> 4 -> 8 on the full
# 55,000-image training set, 5 epochs (one each at K = 1, 2, 4, two at K = 8; SGD lr 0.1, x0.1
# at epoch 4; batch 64), seeds 0 and 1, then compressed without retraining to K = 4 and K = 2 by
# projection and by interpolation and evaluated at 2, 4 and 8 steps on all 10,000 test images:
bash benchmarks/basis_fmnist_cpu.sh
# (= LIMIT=55000 EPOCHS=5 SEEDS="0 1"). Seed 0 trained in 36 min while two noisy_dyn studies
# shared the 2-core CPU (its latencies are not a measurement); seed 1 in 27 min, its last two
# epochs and its compression study alone on the machine. s0_latency_idle/: seed 0's study again
# on the first 512 test images, idle, for its latencies:
python -m benchmarks.basis_compress_study --run runs/bfm_large/s0 --Ks 4,2 --n-steps-list 2,4,8 \
    --limit 512 --out s0_latency_idle
