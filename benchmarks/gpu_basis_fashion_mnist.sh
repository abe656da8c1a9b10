#!/usr/bin/env bash
# Fashion-MNIST ConvODENet (width 16) on one GPU, trained by refinement K = n_steps = 1 -> 2 -> 4
# -> 8 on the full 55k training set (SGD recipe: lr 0.1, momentum 0.9), then compressed without
# retraining to K = 4 and K = 2 by projection and by interpolation and evaluated at n_steps 2, 4
# and 8 on the 10k test images (benchmarks/basis_compress_study.py: accuracy, parameters,
# latency, theta(t) errors of both methods). Results to $OUT.
#
# Sized for about 10 minutes on one H200: the earlier direct K = 8 run there took ~7 s an epoch
# at K = 8 (4.4 ms per 256-image forward); 30 epochs with 20 at K = 8 plus the sweeps fit.
#
#   FMNIST_ROOT=/usr/share/datasets/fashion-mnist EPOCHS=30 bash benchmarks/gpu_basis_fashion_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-runs/gpu_basis}"
WORK="${WORK:-/tmp/basis_fmnist}"
EPOCHS="${EPOCHS:-30}"
ROOT="${FMNIST_ROOT:-/usr/share/datasets/fashion-mnist}"
R1=$((EPOCHS / 10)); R2=$((EPOCHS / 5)); R3=$((EPOCHS / 3))
mkdir -p "$OUT_DIR" "$WORK"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT_DIR/basis_fmnist_gpu.txt" || true
START=$(date +%s)
python -m basis_ode train --data fashion_mnist --data-root "$ROOT" \
  --width 16 --K 1 --n-steps 1 --refine-at "$R1,$R2,$R3" --epochs "$EPOCHS" --batch-size 128 \
  --lr 0.1 --lr-drops "$((EPOCHS * 2 / 3)),$((EPOCHS * 9 / 10))" --no-progress --out "$WORK/train"
echo "train seconds: $(( $(date +%s) - START ))" >> "$OUT_DIR/basis_fmnist_gpu.txt"
cp "$WORK/train/result.json" "$OUT_DIR/basis_fmnist_refined_train.json"
cp "$WORK/train/log.jsonl" "$OUT_DIR/basis_fmnist_refined_log.jsonl"
python -m benchmarks.basis_compress_study --run "$WORK/train" --data-root "$ROOT" --Ks 4,2 \
  --n-steps-list 2,4,8 --out "$OUT_DIR/basis_fmnist_refined_study"
echo "total seconds: $(( $(date +%s) - START ))" >> "$OUT_DIR/basis_fmnist_gpu.txt"
