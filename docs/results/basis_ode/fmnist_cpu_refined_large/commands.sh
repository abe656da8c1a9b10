# What produced this folder (2-core CPU shared with three other jobs, load average ~10).
# Seed 0: benchmarks/basis_fmnist_cpu.sh with LIMIT=15000 EPOCHS=5 (train, then the compression
# study on all 10,000 test images -> s0/). Seed 1 was trained by the same command line in a
# separate process (to finish in the time available) and its study run on the first 2,000 test images
# (-> s1_test2000/):
python -m basis_ode train --data fashion_mnist --limit 15000 --eval-limit 2000 --width 8 --K 1 --n-steps 1 --refine-at 1,2,3 --epochs 5 --batch-size 64 --lr 0.1 --lr-drops 4 --seed S --no-progress --out runs/bfm_large/sS
python -m benchmarks.basis_compress_study --run runs/bfm_large/s0 --Ks 4,2 --n-steps-list 2,4,8 --out s0
python -m benchmarks.basis_compress_study --run runs/bfm_large/s1 --Ks 4,2 --n-steps-list 2,4,8 --limit 2000 --out s1_test2000
# Both seeds, full test set, on an idle machine:
#   LIMIT=15000 EPOCHS=5 bash benchmarks/basis_fmnist_cpu.sh
# The full training set:
#   LIMIT=55000 EPOCHS=8 bash benchmarks/basis_fmnist_cpu.sh
