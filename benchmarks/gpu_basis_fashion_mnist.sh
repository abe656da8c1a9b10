#!/usr/bin/env bash
# Fashion-MNIST ConvODENet on a GPU: train K = n_steps = 8 directly (SGD recipe of SPEC 2.7), then
# compress to K = 4 without retraining and sweep n_steps in {4, 8}; results to $OUT.
#
#   FMNIST_ROOT=/usr/share/datasets/fashion-mnist EPOCHS=10 bash benchmarks/gpu_basis_fashion_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-runs/gpu_basis}"
WORK="${WORK:-/tmp/basis_fmnist}"
EPOCHS="${EPOCHS:-10}"
mkdir -p "$OUT_DIR" "$WORK"
python -m basis_ode train --data fashion_mnist --data-root "${FMNIST_ROOT:-/usr/share/datasets/fashion-mnist}" \
  --width 16 --K 8 --n-steps 8 --epochs "$EPOCHS" --batch-size 128 --lr 0.1 \
  --lr-drops "$((EPOCHS * 6 / 10)),$((EPOCHS * 8 / 10))" --no-progress --out "$WORK/train"
python -m basis_ode compress --run "$WORK/train" --data-root "${FMNIST_ROOT:-/usr/share/datasets/fashion-mnist}" \
  --Ks 8,4 --n-steps-list 4,8 --no-progress --out "$WORK/compress"
for f in "$WORK"/compress/*.md "$WORK"/compress/*.json; do cp "$f" "$OUT_DIR/basis_fmnist_$(basename "$f")"; done
