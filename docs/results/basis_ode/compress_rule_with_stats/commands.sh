#!/usr/bin/env bash
# The compression rule re-measured with compression_residual's new default (parameters and batch
# statistics): ConvODENets (width 8, piecewise constant) trained by refinement 1 -> 8 and directly
# at K = 8, on sklearn digits and on the first 6,000 Fashion-MNIST training images, each compressed
# to K = 4, 2, 1 by projection and by interpolation; accuracies on the validation split (the
# default) and on the test split. Run from the repository root; RUNS holds the trained models.
set -euo pipefail
OUT="${OUT:-docs/results/basis_ode/compress_rule_with_stats}"
RUNS="${RUNS:-runs/compress_rule_with_stats}"
PY="${PYTHON:-python}"
train() {  # name, then the data flags
  local name="$1"; shift
  "$PY" -m basis_ode train "$@" --width 8 --batch-size 64 --lr 0.1 --seed 0 --no-progress \
    --out "$RUNS/$name"
}
train digits_refined --data digits --K 1 --n-steps 1 --refine-at 2,4,6 --epochs 8 --lr-drops 6
train digits_direct --data digits --K 8 --n-steps 8 --epochs 8 --lr-drops 6
train fmnist6k_refined --data fashion_mnist --limit 6000 --eval-limit 2000 --K 1 --n-steps 1 \
  --refine-at 1,2,3 --epochs 5 --lr-drops 4
train fmnist6k_direct --data fashion_mnist --limit 6000 --eval-limit 2000 --K 8 --n-steps 8 \
  --epochs 5 --lr-drops 4
for name in digits_refined digits_direct fmnist6k_refined fmnist6k_direct; do
  limit=()
  [[ "$name" == fmnist* ]] && limit=(--limit 2000)  # the first 2,000 of each split
  for split in validation test; do
    "$PY" -m benchmarks.basis_compress_study --run "$RUNS/$name" --Ks 4,2,1 \
      --n-steps-list 2,4,8 --split "$split" "${limit[@]}" --out "$OUT/$name/$split"
  done
done
