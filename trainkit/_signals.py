"""SIGTERM and SIGINT at every phase of a run: answered within the grace period of a preemption.

While :func:`trainkit.train` runs, SIGTERM (what a cloud scheduler sends before it takes a
machine, usually 30 s before it kills it) and SIGINT (Ctrl-C) only set a flag. The loop looks at
it after every step: the step that was running is completed, a checkpoint of exactly that
position is written, and :class:`TrainingInterrupted` is raised with one line saying which step
was saved where; the command lines print that line and exit with status ``128 + signal number``
(143 for SIGTERM, 130 for SIGINT, what a shell reports for a process ended by that signal).

A Python signal handler only runs when the main thread runs Python code, not while it sits in
XLA's compiler, a long evaluation or a data loader. So the signals are also watched by a thread
(:class:`Supervisor`, fed by ``signal.set_wakeup_fd``), which answers when the main thread
cannot:

- **start-up** (a command line, before training starts) and **after training** (the final
  evaluation, writing the outputs): nothing to save; exit at once with one line;
- **compilation** or any phase where nothing was trained since the last checkpoint: exit after
  :data:`QUICK` seconds unless the loop took the signal by then (nothing is lost; the same
  command resumes from that checkpoint);
- **training, evaluation**: the loop saves at its next step or epoch end; if it has not taken
  the signal within :data:`GRACE` seconds (``TRAINKIT_STOP_GRACE``, default 20), exit keeping
  the last finished checkpoint;
- **saving**: a save under way is given until :data:`HARD` seconds after the signal (28 s).

Every exit is one line (``interrupted: SIGTERM during compilation: ...``) and the status
``128 + signal``. SIGINT only ends the process this way from a command line
(:func:`command_signals`); inside a notebook it sets the flag and the loop stops at its next
step, so the kernel survives. A second signal while the first is being handled exits at once
(the same status, one line); the last finished checkpoint is resumed as usual.

Several processes (``jax.distributed``) must save at the same step, or their checkpoints would
not fit together. JAX's preemption service (``jax.distributed.initialize`` starts it) takes
SIGTERM and tells every process; SIGINT is passed on the same way (the supervisor posts JAX's
preemption notice). :func:`jax.experimental.multihost_utils.reached_preemption_sync_point`,
asked after every step, turns True at the same step on every process. The supervisor of every
process sees the notice too, so a job whose processes are all compiling is answered as above; an
exit decided by one process is posted for all (:mod:`trainkit._cluster`). Without the
preemption service, the processes gather their flags every ``check_every`` steps and at every
epoch end.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from . import _cluster
from ._jax_private import preemption_sync_manager
from ._lock import exit_now

__all__ = ["EXIT_STATUS", "StopSignals", "TrainingInterrupted", "command_signals"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)
QUICK = 1.0
"""Seconds the loop is given to take a signal when nothing is lost by exiting at once."""
GRACE = float(os.environ.get("TRAINKIT_STOP_GRACE", 20.0))
"""Seconds the loop is given to reach a step it can save (then the process exits, keeping the
last finished checkpoint)."""
HARD = 28.0
"""Seconds after the signal at which the process exits whatever it is doing."""
PHASES = ("start-up", "compilation", "training", "evaluation", "saving", "after training")


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


def _name(signum: int) -> str:
    return signal.Signals(signum).name


class Supervisor:
    """The process's watcher of SIGTERM and SIGINT (module docstring); one per process.

    Attributes read by its thread (set by the loop and the command line):
        phase: one of :data:`PHASES`.
        run: the loop's run (``step``, ``saved_step``, ``last_checkpoint``), or None.
        taken: True once the loop took the signal (it is saving and stopping).
        command: True under a command line: SIGINT may end the process too.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.at = 0.0
        self.phase = "start-up"
        self.run: Any = None
        self.taken = False
        self.command = False
        self.depth = 0
        self._old: dict[int, Any] = {}
        self._old_fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pair: tuple[socket.socket, socket.socket] | None = None

    # -- installation (main thread) ------------------------------------------------------

    @property
    def peers(self) -> _cluster.Peers | None:
        """The other processes of the job once the main thread made them (:func:`enter`, or
        ``start_cluster`` after ``jax.distributed.initialize`` returned), else None."""
        return _cluster.current_peers()

    def enter(self, command: bool = False) -> bool:
        """Install (first entry) or re-enter; False off the main thread (nothing installed)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self.depth += 1
        self.command = self.command or command
        if self.depth > 1:
            return True
        self.signum, self.taken, self.run = None, False, None
        self._pair = socket.socketpair()
        for end in self._pair:
            end.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._pair[1].fileno(), warn_on_full_buffer=False)
        _cluster.peers()  # a job already initialised: its peers, made on the main thread
        for sig in SIGNALS:
            if sig == signal.SIGTERM and preemption_sync_manager() is not None:
                continue  # JAX's preemption notifier has SIGTERM; the peers see its notice
            self._old[sig] = signal.signal(sig, _ignore)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="trainkit-signals", daemon=True)
        self._thread.start()
        return True

    def leave(self) -> None:
        self.depth -= 1
        if self.depth > 0:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        signal.set_wakeup_fd(self._old_fd)
        for end in self._pair or ():
            end.close()
        self._pair, self.command, self.phase = None, False, "start-up"

    # -- the watching thread -------------------------------------------------------------

    def _watch(self) -> None:
        reader = self._pair[0]
        while not self._stop.is_set():
            ready, _, _ = select.select([reader], [], [], 0.2)
            if ready:
                try:
                    data = reader.recv(64)
                except OSError:
                    data = b""
                for signum in data:
                    if signum in SIGNALS:
                        self.got(int(signum))
            if (peers := self.peers) is not None:
                peers.tick(self)
            self._check()

    def got(self, signum: int) -> None:
        """A signal arrived (from this process's handler, or the job's preemption notice)."""
        if self.signum is not None:
            self._exit(signum, f"{_name(signum)} again: exiting at once, without saving the "
                       "current step (the last finished checkpoint is resumed by the same "
                       "command)", prefix="\n")  # fmt: skip
            return
        self.signum, self.at = signum, time.monotonic()
        if (peers := self.peers) is not None:
            peers.notify(signum)

    def _check(self) -> None:
        signum = self.signum
        if signum is None or (signum == signal.SIGINT and not self.command):
            return
        waited = time.monotonic() - self.at
        if waited >= HARD:
            what = ("exiting" if self.taken and self._nothing_unsaved() else
                    "no checkpoint could be finished")  # fmt: skip
            self._exit(signum, f"{_name(signum)}: {what} {HARD:g} s after the signal "
                       f"({self.phase}); {self.kept()}")  # fmt: skip
        if self.taken:
            return
        if self.phase in ("start-up", "after training"):
            what = (
                "nothing was trained or saved yet"
                if self.phase == "start-up"
                else "the run's checkpoints are complete; the same command writes its outputs"
            )
            self._exit(signum, f"{_name(signum)} during {self.phase}: {what}")  # fmt: skip
        elif self.phase != "saving" and self._nothing_unsaved() and waited >= QUICK:
            self._exit(signum, f"{_name(signum)} during {self.phase}: nothing was trained since "
                       f"the last checkpoint, so none is written; {self.kept()}")  # fmt: skip
        elif self.phase != "saving" and waited >= GRACE:
            self._exit(signum, f"{_name(signum)}: no step could be finished and saved within "
                       f"{GRACE:g} s ({self.phase}); {self.kept()}")  # fmt: skip

    def _nothing_unsaved(self) -> bool:
        run = self.run
        return run is None or run.step == (run.saved_step or 0)

    def kept(self, again: str = "run the same command again") -> str:
        """Which checkpoint the next start resumes from, and how to start it."""
        run = self.run
        path = None if run is None else run.last_checkpoint
        if path is None:
            return "no checkpoint was written yet"
        return f"the checkpoint of step {run.saved_step} in {path} is kept; {again} to resume it"

    def _exit(self, signum: int, text: str, prefix: str = "") -> None:
        status = EXIT_STATUS(signum)
        line = f"{prefix}interrupted: {text}\n"
        if (peers := self.peers) is not None:
            peers.post_exit(status, line.strip())
        exit_now(status, line)

    # -- what the loop asks (main thread) ---------------------------------------------------

    def mark(self, phase: str) -> None:
        self.phase = phase


def _ignore(signum: int, frame: Any) -> None:
    """The Python-level handler: the supervisor's thread acts (it gets the signal through the
    wakeup fd even while the main thread is in C code)."""


SUPERVISOR = Supervisor()


class command_signals:  # noqa: N801 - used as a context manager, like contextlib's
    """The signal handling of a command line: from start-up to exit (see module docstring).

    Start-up and the work after training are answered by an exit at once; SIGINT ends the
    process as SIGTERM does.
    """

    def __enter__(self) -> Supervisor:
        SUPERVISOR.enter(command=True)
        return SUPERVISOR

    def __exit__(self, *exc: Any) -> None:
        if SUPERVISOR.depth:
            SUPERVISOR.leave()


class StopSignals:
    """The flag that SIGTERM and SIGINT set while a run trains (module docstring).

    A context manager: enters the process's :class:`Supervisor` (main thread only; elsewhere it
    does nothing) and leaves it on exit.
    """

    def __init__(self, check_every: int = 50):
        self.check_every = int(check_every)
        self._sync = None
        self._multi = False
        self._on = False

    @property
    def signum(self) -> int | None:
        return SUPERVISOR.signum if self._on else None

    def __enter__(self) -> StopSignals:
        self._multi = jax.process_count() > 1
        self._sync = preemption_sync_manager()
        self._on = SUPERVISOR.enter()
        if self._on:
            SUPERVISOR.mark("start-up")  # reading the checkpoint; the steps mark their phases
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._on:
            return
        if SUPERVISOR.command:  # (the run stays: its last checkpoint is named on an exit)
            SUPERVISOR.mark("after training")
        SUPERVISOR.leave()

    def watch(self, run: Any) -> None:
        """The run whose position the supervisor reads (to tell whether anything is unsaved);
        registers the step with JAX's preemption sync."""
        if not self._on:
            return
        SUPERVISOR.run = run
        if self._sync is not None:
            multihost_utils.reached_preemption_sync_point(int(run.step))

    def mark(self, phase: str) -> None:
        """The phase the loop enters (:data:`PHASES`)."""
        if self._on:
            SUPERVISOR.mark(phase)

    def take(self) -> None:
        """The loop took the signal: it saves and stops (the supervisor waits up to HARD)."""
        if self._on:
            SUPERVISOR.taken = True
            SUPERVISOR.mark("saving")

    def _agreed(self) -> int | None:
        """The signal number if any process has a flag (all processes call this together)."""
        if not self._multi:
            return self.signum
        flags = multihost_utils.process_allgather(np.int32(self.signum or 0))
        got = [int(f) for f in np.asarray(flags).reshape(-1) if f]
        return got[0] if got else None

    def after_step(self, step: int) -> int | None:
        """After global step ``step``: the signal to stop on now, or None (every process gets
        the same answer at the same step)."""
        if self._sync is not None:
            if multihost_utils.reached_preemption_sync_point(int(step)):
                peers = SUPERVISOR.peers
                return (peers.signal() if peers is not None else None) or int(signal.SIGTERM)
            return None
        if not self._multi or step % self.check_every == 0:
            return self._agreed()
        return None

    def at_epoch_end(self) -> int | None:
        """At an epoch end (all processes): the signal to stop on, or None."""
        if self._sync is not None:
            return None  # the preemption sync point, asked after every step, decides
        return self._agreed()
