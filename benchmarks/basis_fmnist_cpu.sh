#!/usr/bin/env bash
# Fashion-MNIST ConvODENet on a CPU by refinement K = n_steps = 1 -> 2 -> 4 -> 8 (width 8), two
# seeds, then compressed without retraining to K = 4 and K = 2 by projection and by
# interpolation, evaluated at n_steps 2, 4, 8 on the 10,000 test images (accuracy, parameters,
# latency): benchmarks/basis_compress_study.py. Results to $OUT (default
# docs/results/basis_ode/fmnist_cpu_refined_full). About 40 min a seed on a 2-core CPU.
#
#   bash benchmarks/basis_fmnist_cpu.sh                          # the run in the README (55k)
#   LIMIT=15000 EPOCHS=5 bash benchmarks/basis_fmnist_cpu.sh     # a 15,000-image subset
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-docs/results/basis_ode/fmnist_cpu_refined_full}"
RUNS="${RUNS:-runs/bfm_large}"
LIMIT="${LIMIT:-55000}"
EPOCHS="${EPOCHS:-5}"
SEEDS="${SEEDS:-0 1}"
PY="${PYTHON:-python}"
mkdir -p "$OUT_DIR"
for S in $SEEDS; do
  "$PY" -m basis_ode train --data fashion_mnist --limit "$LIMIT" --eval-limit 2000 --width 8 \
    --K 1 --n-steps 1 --refine-at 1,2,3 --epochs "$EPOCHS" --batch-size 64 --lr 0.1 \
    --lr-drops "$((EPOCHS - 1))" --seed "$S" --no-progress --out "$RUNS/s$S"
  cp "$RUNS/s$S/result.json" "$OUT_DIR/train_s$S.json"
  cp "$RUNS/s$S/log.jsonl" "$OUT_DIR/log_s$S.jsonl"
  "$PY" -m benchmarks.basis_compress_study --run "$RUNS/s$S" --Ks 4,2 --n-steps-list 2,4,8 \
    --out "$OUT_DIR/s$S"
done
