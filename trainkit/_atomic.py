"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

The data goes to a temporary file in the target's directory, which is flushed and fsync-ed, then
renamed over the target (``os.replace`` is atomic on POSIX), and finally the directory itself is
fsync-ed so that the rename survives a power cut.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any


def fsync_dir(directory: str | os.PathLike) -> None:
    """fsync a directory (its entries: a rename or a new file in it becomes durable)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. on Windows directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unique_temporary(path: str | os.PathLike) -> Path:
    """A temporary name beside ``path`` that no other writer uses: ``.<name>.<pid>-<random
    hex>.tmp<suffix>`` (the suffix kept, so writers that append one see it there)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{os.urandom(6).hex()}.tmp{path.suffix}")


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[IO[bytes]], Any]) -> Path:
    """Write ``data`` (bytes, or ``write(file)`` that writes to a binary file) to ``path``.

    Temporary file in the same directory -> flush and fsync -> ``os.replace`` -> fsync of the
    directory. The parent directory is created when missing. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_temporary(path)
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is None:  # a failed write (e.g. ENOSPC) names no file: name the target
            raise type(e)(e.errno, f"{e.strerror} (writing {path})", str(path)) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, text.encode())


def set_aside(directory: str | os.PathLike, names: Iterable[str]) -> Path | None:
    """Move the files ``names`` found in ``directory`` into a new folder
    ``directory/previous-<UTC time>`` (each move an atomic rename); returns that folder, or None
    when there was nothing to move.

    What a run started afresh (``--no-resume``) does first with the outputs of the run before,
    so that nothing reads a stale model or result while the new run trains."""
    d = Path(directory)
    found = [d / n for n in names if (d / n).exists()]
    if not found:
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = d / f"previous-{stamp}"
    k = 1
    while aside.exists():
        aside, k = d / f"previous-{stamp}-{k}", k + 1
    aside.mkdir()
    for p in found:
        os.replace(p, aside / p.name)
    fsync_dir(aside)
    fsync_dir(d)
    return aside
