"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

The data goes to a temporary file in the target's directory, which is flushed and fsync-ed, then
renamed over the target (``os.replace`` is atomic on POSIX), and finally the directory itself is
fsync-ed so that the rename survives a power cut.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[IO[bytes]], Any]) -> Path:
    """Write ``data`` (bytes, or ``write(file)`` that writes to a binary file) to ``path``.

    Temporary file in the same directory -> flush and fsync -> ``os.replace`` -> fsync of the
    directory. The parent directory is created when missing. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
