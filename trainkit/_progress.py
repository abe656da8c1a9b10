"""Progress: a tqdm bar when stderr is a terminal, otherwise one line per epoch (or stage) on
stderr: :func:`progress_bar` (the bar, or None), :class:`BarContext` (closes it on exit) and the
training loop's :class:`Progress`."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def progress_bar(enabled: bool, **tqdm_options: Any) -> Any:
    """A ``tqdm`` bar when ``enabled`` and stderr is a terminal; None otherwise (a piped log
    gets no carriage returns)."""
    if not enabled:
        return None
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if not terminal:
        return None
    return tqdm(**tqdm_options)


class BarContext:
    """A context manager that closes its bar (``self.bar``: a tqdm bar, or None) on exit."""

    bar: Any = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()


class Progress(BarContext):
    """Context manager over the steps of a run (``enabled=False``: silent)."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.enabled = enabled
        self.total = total
        self.bar = progress_bar(
            enabled, total=total, initial=min(initial, total), desc="fit", unit="step"
        )

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def epoch_done(self, history: dict[str, list]) -> None:
        """Show the last epoch's numbers (bar postfix, or one line)."""
        if not self.enabled:
            return
        shown = {
            k: round(v[-1], 4)
            for k, v in history.items()
            if k in ("train_loss", "train_accuracy", "val_accuracy") and v[-1] is not None
        }
        if self.bar is not None:
            self.bar.set_postfix(epoch=history["epoch"][-1], **shown)
            return
        parts = " ".join(f"{k}={v}" for k, v in shown.items())
        seconds = history["seconds"][-1]
        print(
            f"epoch {history['epoch'][-1]} step {history['step'][-1]}/{self.total} {parts} "
            f"({seconds:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    @staticmethod
    def note(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
