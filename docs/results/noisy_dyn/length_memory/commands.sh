#!/usr/bin/env bash
# Which lengths and steps the Lipschitz cell handles (docs/own_data.md, "Long series"): a task
# whose answer sits in the first 8 steps, then T - 8 steps of noise; lengths 16..1024, fixed
# steps 0.01..1 and the length rule's 0.03 x 784 / T, 2 seeds each, one ensemble per length.
# 2026-12-06, the shared 2-core CPU (two 784-step MNIST trainings and other jobs beside it,
# load average about 12); 7.5 minutes wall.
python -m benchmarks.noisy_length_memory --out docs/results/noisy_dyn/length_memory
