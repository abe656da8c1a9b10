"""SIGTERM and SIGINT during training: finish the current step, save, exit with 128 + signal.

While :func:`trainkit.train` runs, SIGTERM (what a cloud scheduler sends before it takes a
machine) and SIGINT (Ctrl-C) only set a flag. The loop looks at it after every step: the step
that was running is completed, a checkpoint of exactly that position is written, and
:class:`TrainingInterrupted` is raised with one line saying which step was saved where; the
command lines print that line and exit with status ``128 + signal number`` (143 for SIGTERM,
130 for SIGINT, what a shell reports for a process ended by that signal). A second signal while
the first is being handled exits at once (``os._exit``, the same status, one line on stderr):
nothing more is written; the last finished checkpoint is resumed as usual.

Several processes (``jax.distributed``) must save at the same step, or their checkpoints would
not fit together:

- SIGTERM where JAX's preemption service runs (``jax.distributed.initialize`` starts it): JAX
  catches SIGTERM itself and :func:`jax.experimental.multihost_utils.reached_preemption_sync_point`,
  asked after every step, turns True at the same step on every process;
- SIGINT, or SIGTERM without that service: the flags of all processes are gathered
  (``process_allgather``) every ``check_every`` steps and at every epoch end, and the processes
  stop together at the first such step where any process has one.

One process: the flag alone, after every step.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import numpy as np

__all__ = ["EXIT_STATUS", "StopSignals", "TrainingInterrupted"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def EXIT_STATUS(signum: int) -> int:  # noqa: N802 - a table, read as a constant
    """The exit status of a run stopped by ``signum``: ``128 + signum`` (SIGTERM 143)."""
    return 128 + int(signum)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGTERM or SIGINT after saving a checkpoint of the current step.

    A ``KeyboardInterrupt``, so ``except Exception`` does not swallow it.

    Attributes:
        signum: the signal number.
        step: the global step saved (the run resumes after it).
        checkpoint: the checkpoint written (a ``Path``), or None without a checkpoint folder.
        exit_status: ``128 + signum``, what the command lines exit with.
    """

    def __init__(self, message: str, *, signum: int, step: int, checkpoint: Any = None):
        super().__init__(message)
        self.signum = int(signum)
        self.step = int(step)
        self.checkpoint = checkpoint
        self.exit_status = EXIT_STATUS(signum)

    def __str__(self) -> str:
        return str(self.args[0])


def _jax_sync_manager() -> Any:
    """JAX's preemption sync manager when several processes run with it, else None."""
    import jax

    if jax.process_count() < 2:
        return None
    try:
        from jax._src import distributed
    except ImportError:  # pragma: no cover
        return None
    return getattr(distributed.global_state, "preemption_sync_manager", None)


class StopSignals:
    """The flag that SIGTERM and SIGINT set while a run trains (module docstring).

    A context manager: installs the handlers on entry (main thread only; elsewhere it does
    nothing) and restores the previous ones on exit.
    """

    def __init__(self, check_every: int = 50):
        self.check_every = int(check_every)
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._sync = None
        self._multi = False

    def __enter__(self) -> StopSignals:
        import jax

        self._multi = jax.process_count() > 1
        self._sync = _jax_sync_manager()
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in SIGNALS:
            if sig == signal.SIGTERM and self._sync is not None:
                continue  # JAX's preemption notifier has SIGTERM
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            return
        name = signal.Signals(signum).name
        line = (f"\n{name} again: exiting at once, without saving the current step (the last "
                "finished checkpoint is resumed by the same command)\n")  # fmt: skip
        os.write(2, line.encode())
        os._exit(EXIT_STATUS(signum))

    def _agreed(self) -> int | None:
        """The signal number if any process has a flag (all processes call this together)."""
        if not self._multi:
            return self.signum
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(self.signum or 0))
        got = [int(f) for f in np.asarray(flags).reshape(-1) if f]
        return got[0] if got else None

    def after_step(self, step: int) -> int | None:
        """After global step ``step``: the signal to stop on now, or None (every process gets
        the same answer at the same step)."""
        if self._sync is not None:
            from jax.experimental import multihost_utils

            if multihost_utils.reached_preemption_sync_point(int(step)):
                return int(signal.SIGTERM)
        if not self._multi or step % self.check_every == 0:
            return self._agreed()
        return None

    def at_epoch_end(self) -> int | None:
        """At an epoch end (all processes): the signal to stop on, or None."""
        return self._agreed()
