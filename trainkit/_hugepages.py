"""Transparent huge pages for ``malloc``, opt-in: glibc's tunable, or a restart that sets it.

XLA's CPU runtime allocates the large buffers of a training step (a recurrent model's stored
activations: ``T x B x H`` floats, 25-51 MB at pixel-MNIST size) afresh on every call, and the
kernel faults fresh memory in one 4 kB page at a time. Where the kernel hands out transparent
huge pages only to memory that asks for them (``/sys/kernel/mm/transparent_hugepage/enabled``
reads ``[madvise]``, the default of Debian and Ubuntu), glibc 2.35 and later ask for them when
``GLIBC_TUNABLES`` holds ``glibc.malloc.hugetlb=1``. glibc reads the variable only when a process
starts. Two ways to use it, both chosen by the user; by default nothing happens and a command
never replaces its own process (which would surprise debuggers, profilers and coverage tools):

- start the command with the variable set: ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python -m
  noisy_dyn train ...`` (:data:`TUNABLE`);
- or set ``TRAINKIT_HUGE_PAGES=1``: :func:`restart_with_huge_pages` then re-executes the command
  once (``os.execve``: same process id, same arguments, same standard streams) with it set.

Measured on the 2-core CPU (``benchmarks/results/cpu_idle_forms_mesh.md``): the Noisy RNN
training step at B = 128, H = 128, T = 784 over 2 devices took 0.204-0.217 s instead of
0.264-0.360 s (Ito form) and 0.240-0.247 s instead of 0.309-0.348 s (reference form).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OPT_IN = "TRAINKIT_HUGE_PAGES"
"""Set to ``1`` to let a command line restart itself once with :data:`TUNABLE` set."""

TUNABLE = "glibc.malloc.hugetlb=1"
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _glibc_version() -> tuple[int, int] | None:
    try:
        name = os.confstr("CS_GNU_LIBC_VERSION")  # e.g. "glibc 2.36"
    except (ValueError, OSError, AttributeError):
        return None
    if not name or not name.startswith("glibc "):
        return None
    try:
        major, minor = name.split()[1].split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def huge_pages_supported() -> bool:
    """Linux with glibc >= 2.35 (which has the tunable) and the kernel's THP mode ``madvise``
    (under ``always`` every large allocation gets huge pages anyway, under ``never`` none)."""
    if not sys.platform.startswith("linux") or (_glibc_version() or (0, 0)) < (2, 35):
        return False
    try:
        return "[madvise]" in THP_MODE.read_text()
    except OSError:
        return False


def huge_pages_would_help() -> bool:
    """Whether :func:`restart_with_huge_pages` would restart: the user opted in
    (``TRAINKIT_HUGE_PAGES=1``), :func:`huge_pages_supported`, and the tunable not set yet."""
    if os.environ.get(OPT_IN, "0") != "1":
        return False
    return "glibc.malloc.hugetlb" not in os.environ.get("GLIBC_TUNABLES", "") and (
        huge_pages_supported()
    )


def restart_with_huge_pages() -> None:
    """Re-execute this process with ``GLIBC_TUNABLES`` asking ``malloc`` for transparent huge
    pages, when :func:`huge_pages_would_help` (only with ``TRAINKIT_HUGE_PAGES=1``); otherwise
    return at once.

    Call it first thing in a command-line entry point, before anything worth keeping has run:
    with the opt-in the process image is replaced (``os.execve`` of ``sys.orig_argv``; the
    restarted process sees the tunable set and returns from here).
    """
    argv = getattr(sys, "orig_argv", None)
    if not argv or not huge_pages_would_help():
        return
    tunables = [t for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if t]
    env = dict(os.environ, GLIBC_TUNABLES=":".join([*tunables, TUNABLE]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
