"""Copy the running pixel-MNIST runs' per-epoch logs into this folder and write progress.md.

    python docs/results/noisy_dyn/mnist784_paper/status.py              # logs and progress
    python docs/results/noisy_dyn/mnist784_paper/status.py --snapshot   # ... and the checkpoints

reads runs/noisy_dyn/mnist784_paper/{nrnn,deterministic}/ and resumes.log (written by
commands.sh) and writes log_<arm>.jsonl and progress.md here (the epochs each arm has finished,
its latest and best validation accuracy, the wall time it has trained), and appends to
resumes.log the lines it does not hold yet (this file is the whole record across machines).

``--snapshot`` also copies each arm's newest complete checkpoint (about 460 KB: parameters, Adam
state, best-validation parameters, history; the library checks its digests before it resumes)
into ``snapshot/<arm>/``, replacing the one there. The work tree of a session is not always the
next session's: commands.sh restores an arm from its snapshot when the run folder has no
checkpoints, so a fresh clone continues where the last snapshot stood instead of at epoch 0.
"""

import argparse
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE.parents[3] / "runs" / "noisy_dyn" / "mnist784_paper"
ARMS = {"nrnn": "Noisy RNN (0.02, 0.02)", "deterministic": "deterministic twin (0, 0)"}


def progress_row(arm: str, label: str) -> str:
    log = RUNS / arm / "checkpoints" / "log.jsonl"
    if not log.is_file():
        log = RUNS / arm / "log.jsonl"
    if not log.is_file():
        return f"| {label} | 0 | - | - | 0 |"
    shutil.copyfile(log, HERE / f"log_{arm}.jsonl")
    epochs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not epochs:
        return f"| {label} | 0 | - | - | 0 |"
    best = max(epochs, key=lambda r: r["val_accuracy"])
    hours = sum(r["seconds"] for r in epochs) / 3600
    return (
        f"| {label} | {len(epochs)} | {100 * epochs[-1]['val_accuracy']:.2f} % | "
        f"{100 * best['val_accuracy']:.2f} % ({best['epoch']}) | {hours:.2f} |"
    )


def merge_resumes() -> None:
    """Append the run folder's resumes.log lines that this folder's record lacks."""
    source, record = RUNS / "resumes.log", HERE / "resumes.log"
    if not source.is_file():
        return
    held = record.read_text().splitlines() if record.is_file() else []
    new = [line for line in source.read_text().splitlines() if line and line not in held]
    if new:
        record.write_text("\n".join(held + new) + "\n")


def snapshot(arm: str) -> str | None:
    """Copy the arm's newest complete checkpoint into snapshot/<arm>/; its name, or None."""
    steps = sorted(
        d
        for d in (RUNS / arm / "checkpoints").glob("ckpt_*")
        if (d / "commit_success.txt").is_file()
    )
    if not steps:
        return None
    target = HERE / "snapshot" / arm / "checkpoints"
    staging = target.with_name("checkpoints.new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(steps[-1], staging / steps[-1].name)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return steps[-1].name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", action="store_true", help="also copy the newest checkpoints")
    args = parser.parse_args()
    rows = [
        "| arm | epochs done (of 100) | last val. accuracy | best val. accuracy (epoch) | "
        "training wall time (h) |",
        "|---|---|---|---|---|",
    ]
    rows += [progress_row(arm, label) for arm, label in ARMS.items()]
    merge_resumes()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (HERE / "progress.md").write_text(f"Progress as of {stamp}:\n\n" + "\n".join(rows) + "\n")
    if args.snapshot:
        for arm in ARMS:
            print(f"{arm}: snapshot {snapshot(arm)}")


if __name__ == "__main__":
    main()
