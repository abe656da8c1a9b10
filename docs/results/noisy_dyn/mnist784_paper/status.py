"""Copy the running pixel-MNIST runs' per-epoch logs into this folder and write progress.md.

    python docs/results/noisy_dyn/mnist784_paper/status.py              # logs and progress
    python docs/results/noisy_dyn/mnist784_paper/status.py --snapshot   # ... and the checkpoints

reads runs/noisy_dyn/mnist784_paper/{nrnn,deterministic}/ and resumes.log (written by
commands.sh) and writes log_<arm>.jsonl and progress.md here (the epochs each arm has finished,
its latest and best validation accuracy, the wall time it has trained), learning_curves.png
(validation accuracy and training loss per epoch of both arms), and appends to resumes.log the
lines it does not hold yet (this file is the whole record across machines).

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


def learning_curves() -> None:
    """learning_curves.png: validation accuracy (against the paper's 99.1 %) and the mean
    training loss per epoch of both arms, from the logs copied here."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    acc, loss = fig.subplots(1, 2)
    for arm, label in ARMS.items():
        log = HERE / f"log_{arm}.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        epochs = [r["epoch"] for r in rows]
        acc.plot(epochs, [100 * r["val_accuracy"] for r in rows], marker=".", label=label)
        loss.plot(epochs, [r["train_loss"] for r in rows], marker=".", label=label)
    acc.axhline(99.1, color="gray", linestyle="--", linewidth=1, label="paper (test), 99.1 %")
    acc.set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(50, 100), xlim=(0, 100))
    loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log", xlim=(0, 100))
    for ax in (acc, loss):
        ax.axvline(90, color="gray", linewidth=0.5)  # the learning rate x0.1 from here
        ax.grid(alpha=0.3)
    acc.legend(fontsize=7, loc="lower right")
    fig.suptitle("Pixel MNIST (T = 784, H = 128), seed 0: learning curves so far", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "learning_curves.png", dpi=110)


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
    learning_curves()
    if args.snapshot:
        for arm in ARMS:
            print(f"{arm}: snapshot {snapshot(arm)}")


if __name__ == "__main__":
    main()
