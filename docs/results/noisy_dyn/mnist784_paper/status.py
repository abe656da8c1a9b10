"""Copy the running pixel-MNIST runs' per-epoch logs into this folder and write progress.md.

    python docs/results/noisy_dyn/mnist784_paper/status.py              # logs and progress
    python docs/results/noisy_dyn/mnist784_paper/status.py --snapshot   # ... and the checkpoints
    python docs/results/noisy_dyn/mnist784_paper/status.py --task pmnist --snapshot  # permuted

reads runs/noisy_dyn/<task>784_paper/{nrnn,deterministic}/ and resumes.log (written by
``commands.sh [task]``) and writes, into docs/results/noisy_dyn/<task>784_paper/ (this folder
for ordered pixels, ``mnist``), log_<arm>.jsonl and progress.md (the epochs each arm has finished,
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

ROOT = Path(__file__).resolve().parents[4]
TASKS = {"mnist": ("Pixel MNIST", 99.1, 50), "pmnist": ("Permuted pixel MNIST", 94.9, 0)}
"""Per task: its name, the paper's test accuracy (%) and the plot's lowest accuracy."""
ARMS = {"nrnn": "Noisy RNN (0.02, 0.02)", "deterministic": "deterministic twin (0, 0)"}


def folders(task: str) -> tuple[Path, Path]:
    """The task's results folder (written here) and its run folder (read)."""
    name = f"{task}784_paper"
    return ROOT / "docs" / "results" / "noisy_dyn" / name, ROOT / "runs" / "noisy_dyn" / name


def progress_row(arm: str, label: str, here: Path, runs: Path) -> str:
    log = runs / arm / "checkpoints" / "log.jsonl"
    if not log.is_file():
        log = runs / arm / "log.jsonl"
    if not log.is_file():
        return f"| {label} | 0 | - | - | 0 |"
    shutil.copyfile(log, here / f"log_{arm}.jsonl")
    epochs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not epochs:
        return f"| {label} | 0 | - | - | 0 |"
    best = max(epochs, key=lambda r: r["val_accuracy"])
    hours = sum(r["seconds"] for r in epochs) / 3600
    return (
        f"| {label} | {len(epochs)} | {100 * epochs[-1]['val_accuracy']:.2f} % | "
        f"{100 * best['val_accuracy']:.2f} % ({best['epoch']}) | {hours:.2f} |"
    )


def learning_curves(task: str, here: Path) -> None:
    """learning_curves.png: validation accuracy (against the paper's test accuracy) and the
    mean training loss per epoch of both arms, from the logs copied into ``here``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    acc, loss = fig.subplots(1, 2)
    for arm, label in ARMS.items():
        log = here / f"log_{arm}.jsonl"
        if not log.is_file():
            continue
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        epochs = [r["epoch"] for r in rows]
        acc.plot(epochs, [100 * r["val_accuracy"] for r in rows], marker=".", label=label)
        loss.plot(epochs, [r["train_loss"] for r in rows], marker=".", label=label)
    title, paper, low = TASKS[task]
    acc.axhline(paper, color="gray", linestyle="--", linewidth=1, label=f"paper (test), {paper} %")
    acc.set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(low, 100), xlim=(0, 100))
    loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log", xlim=(0, 100))
    for ax in (acc, loss):
        ax.axvline(90, color="gray", linewidth=0.5)  # the learning rate x0.1 from here
        ax.grid(alpha=0.3)
    acc.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{title} (T = 784, H = 128), seed 0: learning curves", fontsize=9)
    fig.tight_layout()
    fig.savefig(here / "learning_curves.png", dpi=110)


def merge_resumes(here: Path, runs: Path) -> None:
    """Append the run folder's resumes.log lines that the results folder's record lacks."""
    source, record = runs / "resumes.log", here / "resumes.log"
    if not source.is_file():
        return
    held = record.read_text().splitlines() if record.is_file() else []
    new = [line for line in source.read_text().splitlines() if line and line not in held]
    if new:
        record.write_text("\n".join(held + new) + "\n")


def snapshot(arm: str, here: Path, runs: Path) -> str | None:
    """Copy the arm's newest complete checkpoint into snapshot/<arm>/; its name, or None."""
    steps = sorted(
        d
        for d in (runs / arm / "checkpoints").glob("ckpt_*")
        if (d / "commit_success.txt").is_file()
    )
    if not steps:
        return None
    target = here / "snapshot" / arm / "checkpoints"
    staging = target.with_name("checkpoints.new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(steps[-1], staging / steps[-1].name)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return steps[-1].name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", action="store_true", help="also copy the newest checkpoints")
    parser.add_argument("--task", choices=tuple(TASKS), default="mnist", help="ordered or permuted")
    args = parser.parse_args()
    here, runs = folders(args.task)
    here.mkdir(parents=True, exist_ok=True)
    rows = [
        "| arm | epochs done (of 100) | last val. accuracy | best val. accuracy (epoch) | "
        "training wall time (h) |",
        "|---|---|---|---|---|",
    ]
    rows += [progress_row(arm, label, here, runs) for arm, label in ARMS.items()]
    merge_resumes(here, runs)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (here / "progress.md").write_text(f"Progress as of {stamp}:\n\n" + "\n".join(rows) + "\n")
    learning_curves(args.task, here)
    if args.snapshot:
        for arm in ARMS:
            print(f"{arm}: snapshot {snapshot(arm, here, runs)}")


if __name__ == "__main__":
    main()
