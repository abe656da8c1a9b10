# Directly trained Fashion-MNIST ConvODENet (width 8, K = n_steps = 8, first 3,000 training
# images, 4 epochs), compressed by both methods, first 2,000 test images:
python -m basis_ode train --data fashion_mnist --limit 3000 --eval-limit 2000 --width 8 --K 8 --n-steps 8 --epochs 4 --batch-size 64 --lr 0.1 --lr-drops 3 --seed 0 --no-progress --out runs/fd/direct_s0
python -m benchmarks.basis_compress_study --run runs/fd/direct_s0 --Ks 4,2,1 --n-steps-list 2,4,8 --limit 2000 --out direct_s0
