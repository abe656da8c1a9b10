set -e
python -m basis_ode train --data fashion_mnist --limit 3000 --eval-limit 2000 --width 8 --K 1 --n-steps 1 --refine-at 1,2,3 --epochs 6 --batch-size 64 --lr 0.1 --lr-drops 5 --seed S --no-progress --out runs/bfm_sS
python -m basis_ode compress --run runs/bfm_sS --Ks 8,4 --n-steps-list 4,8 --limit 2000 --no-progress --out runs/bfm_sS/compress
