#!/usr/bin/env bash
# The measurements behind compress projecting by default: on sklearn digits, a ConvODENet
# (width 8, piecewise constant, K = n_steps = 8) trained directly and one trained by refinement 1 -> 8,
# each compressed to K = 4 and K = 2 by projection and by interpolation
# (benchmarks/basis_compress_study.py). Results to $OUT (default
# docs/results/basis_ode/compress_rule_digits).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-docs/results/basis_ode/compress_rule_digits}"
RUNS="${RUNS:-runs/compress_rule}"
PY="${PYTHON:-python}"
EPOCHS="${EPOCHS:-8}"
for S in ${SEEDS:-0}; do
  "$PY" -m basis_ode train --data digits --width 8 --K 8 --n-steps 8 --epochs "$EPOCHS" \
    --batch-size 64 --lr 0.1 --lr-drops "$((EPOCHS - 2))" --seed "$S" --no-progress --out "$RUNS/direct_s$S"
  "$PY" -m basis_ode train --data digits --width 8 --K 1 --n-steps 1 --refine-at 2,4,6 \
    --epochs "$EPOCHS" --batch-size 64 --lr 0.1 --lr-drops "$((EPOCHS - 2))" --seed "$S" --no-progress \
    --out "$RUNS/refined_s$S"
  for kind in direct refined; do
    "$PY" -m benchmarks.basis_compress_study --run "$RUNS/${kind}_s$S" --Ks 4,2 --n-steps-list 2,4,8 \
      --out "$OUT_DIR/${kind}_s$S"
  done
done
