#!/usr/bin/env bash
# Run the benchmark suite at full size on a GPU machine (about 5 minutes on one H100).
#
#   bash benchmarks/gpu.sh            # results to $OUT if set, else benchmarks/results/
#
# Needs a JAX with CUDA (e.g. `pip install -U "jax[cuda12]"`) and this package installed
# (`pip install -e .`). The PyTorch comparison runs only if torch is importable (with CUDA it
# still runs on the CPU: the reference loop is the CPU eager baseline); it is skipped otherwise.
# The whole run is capped at 330 s; the JSON is rewritten after every section, so a run that hits
# the cap still leaves the sections it finished.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-benchmarks/results}"
mkdir -p "$OUT_DIR"
python -c "import jax; print('backend:', jax.default_backend(), jax.devices())"
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # so memory_analysis and other processes coexist
timeout 330 python -m benchmarks.run --full --out "$OUT_DIR" | tee "$OUT_DIR/gpu_full_stdout.txt"
