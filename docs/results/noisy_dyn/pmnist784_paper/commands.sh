#!/usr/bin/env bash
# Permuted pixel MNIST at the paper's size (Lim et al. 2021, Sec. 6: 94.9 %): the ordered run's
# command with the argument `pmnist` (same data, model, seed, schedule and frozen code; the pixels
# in the library's stored fixed permutation). Rerun it to resume both arms.
#   bash docs/results/noisy_dyn/pmnist784_paper/commands.sh
# Progress and snapshots of the checkpoints (commit them):
#   python docs/results/noisy_dyn/mnist784_paper/status.py --task pmnist --snapshot
set -euo pipefail
exec bash "$(dirname "$0")/../mnist784_paper/commands.sh" pmnist
