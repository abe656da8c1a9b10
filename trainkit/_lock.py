"""The lock of a run folder: one live run per checkpoint folder.

A run takes the lock before anything opens its folder (orbax's manager removes unfinalized
steps when it opens a folder: that would delete the half-written save of a live run). The lock
is an OS file lock (``fcntl.flock``, exclusive, non-blocking) on the file ``.trainkit.lock`` in
the folder, which also holds the holder's host, process id and start time as JSON, so a refused
run can say whom it waits for. The operating system releases a ``flock`` when its holder dies,
even by SIGKILL, so a lock is never left behind by a killed run; a lock file that names a process
that no longer runs on this host (a stale lock) is taken over with a warning naming it.

Taken re-entrantly: a process that holds the lock of a folder may take it again (nested
``with RunLock(d)`` blocks, e.g. a command that locks its run folder and then calls ``fit``); it
is released when the outermost block ends. A folder that cannot be written (a read-only copy of
a finished run) is opened without a lock (:attr:`RunLock.read_only`): nothing is written there.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock file's content only
    fcntl = None  # type: ignore[assignment]

from ._atomic import set_aside
from ._jax_private import process_index

__all__ = ["LOCK_NAME", "RunFolderLocked", "RunLock", "start_afresh"]

LOCK_NAME = ".trainkit.lock"
"""The name of the lock file in a run's checkpoint folder."""

_HELD: dict[Path, list] = {}  # resolved folder -> [file object, depth]
_GUARD = threading.Lock()


class RunFolderLocked(OSError):
    """Another live run holds the lock of this checkpoint folder (see :class:`RunLock`).

    Attributes:
        holder: the lock file's record of the holder (``host``, ``pid``, ``started``), or {}.
    """

    def __init__(self, message: str, holder: dict[str, Any] | None = None):
        super().__init__(errno.EBUSY, message)
        self.holder = holder or {}

    def __str__(self) -> str:
        return str(self.args[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _read_holder(f: Any) -> dict[str, Any]:
    try:
        f.seek(0)
        holder = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe(holder: dict[str, Any]) -> str:
    """``"process 123 on host h (started 2026-01-01T00:00:00Z)"``, or ``"another process"``."""
    if not holder.get("pid"):
        return "another process"
    return (
        f"process {holder.get('pid')} on host {holder.get('host', '?')} "
        f"(started {holder.get('started', '?')})"
    )


class RunLock:
    """The exclusive lock of the run folder ``directory`` (created when missing).

    Use as a context manager; :class:`RunFolderLocked` (an ``OSError``; the command lines report
    it as one line, status 2) when another live process holds it, naming that process. A lock
    held by a process that is gone is taken over with a warning.

    Attributes:
        directory: the folder (resolved).
        read_only: True when the folder exists but cannot be written (no lock taken).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).resolve()
        self.read_only = False
        self._entered = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        with _GUARD:
            held = _HELD.get(self.directory)
            if held is not None:
                held[1] += 1
                self._entered = True
                return
            f = self._open()
            if f is None:
                return
            try:
                self._lock(f)
            except BaseException:
                f.close()
                raise
            _HELD[self.directory] = [f, 1]
            self._entered = True

    def _open(self) -> Any:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return open(self.directory / LOCK_NAME, "a+")
        except OSError as err:
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and self.directory.is_dir():
                self.read_only = True  # nothing can be written there, so nothing to guard
                return None
            raise

    def _lock(self, f: Any) -> None:
        flocked = False
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except BlockingIOError:
                holder = _read_holder(f)
                raise RunFolderLocked(
                    f"{self.directory} is in use by the run of {describe(holder)}; it is left "
                    "untouched. Wait for that run to end (or stop it), or use another output "
                    "folder (--out).",
                    holder,
                ) from None
            except OSError as err:  # a file system without flock: the record alone
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
        old = _read_holder(f)
        if old.get("pid") and old != self._record():
            here = old.get("host") == socket.gethostname()
            if not flocked and (not here or _pid_alive(int(old["pid"]))):
                raise RunFolderLocked(
                    f"{self.directory} is in use by the run of {describe(old)} (no OS file "
                    "lock on this file system: remove the lock file only if that run has "
                    f"ended: {self.directory / LOCK_NAME}); or use another output folder (--out).",
                    old,
                )
            warnings.warn(
                f"took over the lock of {self.directory} from {describe(old)}, which ended "
                "without releasing it; its last checkpoint is resumed as usual",
                stacklevel=4,
            )
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(self._record()))
            f.flush()
            os.fsync(f.fileno())
        except OSError as err:  # a full disk: the flock holds; only the record is missing
            if err.errno not in (errno.ENOSPC, errno.EDQUOT) or not flocked:
                raise

    @staticmethod
    def locked_elsewhere(directory: str | os.PathLike) -> RunFolderLocked:
        """The error of the processes of a job whose process 0 was refused the lock."""
        return RunFolderLocked(
            f"{Path(directory).resolve()} is in use by another run (process 0 of this job was "
            "refused its lock); use another output folder (--out).",
        )

    @staticmethod
    def _record() -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "started": _STARTED}

    def release(self) -> None:
        if not self._entered:
            return
        self._entered = False
        with _GUARD:
            held = _HELD.get(self.directory)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[self.directory]
            f = held[0]
            try:
                f.seek(0)
                f.truncate()  # a clean release leaves no holder behind
                f.flush()
            except OSError:
                pass
            try:
                f.close()  # releases the flock (the descriptor is closed even if a flush fails)
            except OSError:  # a full disk: the record could not be flushed
                pass


def clear_records() -> None:
    """Clear the holder records of every lock this process holds (the process is about to end
    at once: ``os._exit``; the OS releases the flocks), so the next run takes them without a
    warning. Never blocks: a lock in use by another thread is left as it is."""
    if not _GUARD.acquire(timeout=0.5):
        return
    try:
        for f, _ in _HELD.values():
            try:
                f.seek(0)
                f.truncate()
                f.flush()
            except (OSError, ValueError):
                pass
    finally:
        _GUARD.release()


def exit_now(status: int, line: str) -> None:
    """Write ``line`` to stderr (unbuffered) and end the process with ``status`` at once (the
    run folder's lock record cleared first: the next run takes it without a word)."""
    clear_records()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    os.write(2, line.encode())
    os._exit(status)


def start_afresh(
    out: str | os.PathLike, names: Any, *, checkpoint_dir: str | os.PathLike | None = None
) -> Path | None:
    """What a command does first when told ``--no-resume``: under the lock of the run's
    checkpoint folder (default ``out/checkpoints``; refused while another run is live there),
    move the previous run's output files ``names`` aside into ``out/previous-<UTC time>``
    (:func:`trainkit.set_aside`) and say so in one line. Returns that folder, or None. In a job
    of several processes, process 0 does it (the others return None)."""
    out = Path(out)
    if not out.is_dir() or process_index() != 0:  # several processes: process 0 does it
        return None
    with RunLock(out / "checkpoints" if checkpoint_dir is None else checkpoint_dir):
        aside = set_aside(out, names)
    if aside is not None:
        print(f"--no-resume: the previous outputs moved to {aside}", flush=True)
    return aside


_STARTED = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
