"""Copy the running pixel-MNIST runs' per-epoch logs into this folder and write progress.md.

    python docs/results/noisy_dyn/mnist784_paper/status.py

reads runs/noisy_dyn/mnist784_paper/{nrnn,deterministic}/log.jsonl and resumes.log (written by
commands.sh) and writes log_<arm>.jsonl, resumes.log and progress.md here: the epochs each arm
has finished, its latest and best validation accuracy, and the wall time it has trained.
"""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE.parents[3] / "runs" / "noisy_dyn" / "mnist784_paper"
ARMS = {"nrnn": "Noisy RNN (0.02, 0.02)", "deterministic": "deterministic twin (0, 0)"}


def main() -> None:
    rows = [
        "| arm | epochs done (of 100) | last val. accuracy | best val. accuracy (epoch) | "
        "training wall time (h) |",
        "|---|---|---|---|---|",
    ]
    for arm, label in ARMS.items():
        log = RUNS / arm / "log.jsonl"
        if not log.is_file():
            rows.append(f"| {label} | 0 | - | - | 0 |")
            continue
        shutil.copyfile(log, HERE / f"log_{arm}.jsonl")
        epochs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        best = max(epochs, key=lambda r: r["val_accuracy"])
        hours = sum(r["seconds"] for r in epochs) / 3600
        rows.append(
            f"| {label} | {len(epochs)} | {100 * epochs[-1]['val_accuracy']:.2f} % | "
            f"{100 * best['val_accuracy']:.2f} % ({best['epoch']}) | {hours:.2f} |"
        )
    if (RUNS / "resumes.log").is_file():
        shutil.copyfile(RUNS / "resumes.log", HERE / "resumes.log")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (HERE / "progress.md").write_text(f"Progress as of {stamp}:\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
