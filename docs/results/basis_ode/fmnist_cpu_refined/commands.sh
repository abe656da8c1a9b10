# Fashion-MNIST ConvODENet trained by refinement and compressed without retraining, seeds 0-2:
# width 8, K = n_steps doubled from 1 to 8 after epochs 1, 2 and 3, the first 3,000 training
# images, 6 epochs (lr 0.1, x0.1 after epoch 5); then L2 projection to K = 8 and 4 at 4 and 8
# Euler steps, scored on the first 2,000 test images on the CPU (sweep_s<S>.md, one per seed S).
set -e
python -m basis_ode train --data fashion_mnist --limit 3000 --eval-limit 2000 --width 8 --K 1 --n-steps 1 --refine-at 1,2,3 --epochs 6 --batch-size 64 --lr 0.1 --lr-drops 5 --seed S --no-progress --out runs/bfm_sS
python -m basis_ode compress --run runs/bfm_sS --Ks 8,4 --n-steps-list 4,8 --limit 2000 --no-progress --out runs/bfm_sS/compress
