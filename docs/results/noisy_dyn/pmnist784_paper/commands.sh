#!/usr/bin/env bash
# Permuted pixel MNIST at the paper's size (Lim et al. 2021, Sec. 6: 94.9 %): the ordered run's
# command with the argument `pmnist` (same data, model, seed, schedule and frozen code; the pixels
# in the library's stored fixed permutation). Rerun it to resume both arms.
#   bash docs/results/noisy_dyn/pmnist784_paper/commands.sh
# Progress and snapshots of the checkpoints (commit them):
#   python docs/results/noisy_dyn/mnist784_paper/status.py --task pmnist --snapshot
set -euo pipefail
exec bash "$(dirname "$0")/../mnist784_paper/commands.sh" pmnist

# After both arms finished their 100 epochs (run once; the current library, not the frozen code),
# the same evaluation as the ordered task's, on the permuted test images (tried on 2026-12-07 on
# the first 16 test images with the best-validation parameters of the checkpoints at steps 9,300
# (Noisy RNN, epoch 23) and 18,200 (twin, epoch 46), --from-runs --check: the accuracies equal
# noisy_dyn.study.evaluate_members'):
#   python docs/results/noisy_dyn/mnist784_paper/robustness.py --task pmnist --which last --export
#   python docs/results/noisy_dyn/mnist784_paper/robustness.py --task pmnist --which best --export
