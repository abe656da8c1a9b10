"""trainkit._hugepages: the opt-in restart with glibc's huge-page tunable, checked by its effect.

By default the child is not restarted (one process start, no tunable). With the opt-in
``TRAINKIT_HUGE_PAGES=1`` it restarts once; it then allocates 64 MB with the C library's
``malloc`` (not NumPy, which asks for huge pages itself), touches it, and reads how much of its
anonymous memory the kernel backs with huge pages (``AnonHugePages`` in
``/proc/self/smaps_rollup``): with the tunable most of the 64 MB, without it none (the kernel's
THP mode ``madvise`` gives huge pages only to memory that asks).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from trainkit import _hugepages

CHILD = textwrap.dedent(
    """
    import ctypes, json, os, re
    from trainkit._hugepages import restart_with_huge_pages
    print("started", flush=True)
    restart_with_huge_pages()
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    n = 64 << 20
    ctypes.memset(libc.malloc(n), 1, n)
    text = open("/proc/self/smaps_rollup").read()
    kb = int(re.search(r"AnonHugePages:\\s+(\\d+) kB", text).group(1))
    print(json.dumps({"tunables": os.environ.get("GLIBC_TUNABLES"), "huge_kb": kb,
                      "pid": os.getpid()}))
    """
)


def _run(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", _hugepages.OPT_IN)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env={**base, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    lines = out.strip().splitlines()
    return proc.pid, lines.count("started"), json.loads(lines[-1])


def test_default_never_restarts_the_process():
    pid, starts, off = _run()
    assert off["tunables"] is None and starts == 1 and off["pid"] == pid
    if _hugepages.huge_pages_supported():  # madvise mode: no huge pages without the tunable
        assert off["huge_kb"] < 8 * 1024


def test_opt_in_restart_sets_the_tunable_and_the_kernel_gives_huge_pages():
    if not _hugepages.huge_pages_supported():
        pytest.skip("needs Linux, glibc >= 2.35 and the kernel's THP mode 'madvise'")
    pid, starts, got = _run(**{_hugepages.OPT_IN: "1"})
    assert got["tunables"] == _hugepages.TUNABLE
    assert starts == 2 and got["pid"] == pid  # restarted once, in the same process
    assert got["huge_kb"] >= 32 * 1024  # most of the 64 MB in 2 MB pages

    # the tunable set by the user at start: the same pages, no restart
    pid, starts, direct = _run(GLIBC_TUNABLES=_hugepages.TUNABLE)
    assert starts == 1 and direct["huge_kb"] >= 32 * 1024


def test_no_restart_once_the_tunable_is_set_or_without_the_opt_in(monkeypatch):
    monkeypatch.setenv(_hugepages.OPT_IN, "1")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    assert not _hugepages.huge_pages_would_help()
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.delenv(_hugepages.OPT_IN)
    assert not _hugepages.huge_pages_would_help()
