#!/usr/bin/env bash
# Long real series against simple baselines (docs/own_data.md, "Long series"): ACSF1 (1,460
# steps), OSULeaf (427) and, short, JapaneseVowels (7-29 steps, 12 features), from the aeon wheel.
# 2026-12-06, the shared 2-core CPU (two 784-step MNIST trainings and other jobs beside it, load
# average 10-14); wall times per setting are in each results.md.
set -euo pipefail
TS="${TS:-/tmp/ts}"
pip download --no-deps aeon==1.6.0 -d "$TS"   # sha256 d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409
python - "$TS" <<'PY'
import sys, zipfile, pathlib
ts = pathlib.Path(sys.argv[1])
with zipfile.ZipFile(ts / "aeon-1.6.0-py3-none-any.whl") as z:
    for name in ("ACSF1", "OSULeaf", "JapaneseVowels"):
        (ts / name).mkdir(exist_ok=True)
        for part in ("TRAIN", "TEST"):
            member = f"aeon/datasets/data/{name}/{name}_{part}.ts"
            (ts / name / f"{name}_{part}.ts").write_bytes(z.read(member))
PY
OUT=docs/results/noisy_dyn/long_series
python -m benchmarks.noisy_long_series --data "$TS/ACSF1" --seeds 3 \
  --settings "defaults" --out "$OUT/ACSF1"
# 2026-12-07 (the same shared CPU, load average about 8): shortened series, the GRU on them and
# a 10x step. Not run: dt 0.3 and the GRU at the full 1,460 steps (the GRU took 3x the
# Noisy RNN's time on OSULeaf: over an hour here).
python -m benchmarks.noisy_long_series --data "$TS/ACSF1" --seeds 3 --append \
  --settings "downsample 10;downsample 10, dt 0.3;gru, downsample 10" --out "$OUT/ACSF1"
python -m benchmarks.noisy_long_series --data "$TS/ACSF1" --seeds 3 --append \
  --settings "downsample 10" --downsample 20 --out "$OUT/ACSF1"
python -m benchmarks.noisy_long_series --data "$TS/ACSF1" --seeds 3 --append \
  --settings "dt 0.05" --out "$OUT/ACSF1"
python -m benchmarks.noisy_long_series --data "$TS/OSULeaf" --seeds 3 --downsample 4 \
  --settings "defaults;dt 0.3;gru;downsample 10;downsample 10, dt 0.3" --out "$OUT/OSULeaf"
python -m benchmarks.noisy_long_series --data "$TS/JapaneseVowels" --seeds 3 \
  --settings "defaults;before: batch 128, 100 epochs, raw inputs;gru" --out "$OUT/JapaneseVowels"
