"""The coordination service of a ``jax.distributed`` job, in a process of its own.

``jax.distributed.initialize`` runs the service inside process 0. When process 0 is killed, the
service goes with it and JAX's client aborts every other process at once (a C++ fatal error and
SIGABRT). :func:`trainkit._cluster.start_cluster` starts the service here instead, as a child of
process 0 in its own session, so the other processes outlive process 0 long enough to notice it
is gone and exit with one line (:class:`trainkit._cluster.Peers`).

    python -m trainkit._coordinator BIND_ADDRESS NUM_PROCESSES PARENT_PID

Prints ``ready`` (or ``error: ...``) on stdout. Ends on SIGTERM (process 0's normal end), or
:data:`LINGER` seconds after its parent is gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from ._jax_private import runtime_service

LINGER = 25.0
"""Seconds the service stays up after process 0 died (the others notice within 15 s)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    bind, n, parent = argv[0], int(argv[1]), int(argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the job
    try:
        service = runtime_service(bind, n)
    except Exception as err:  # noqa: BLE001 - reported to process 0 in one line
        print(f"error: {' '.join(str(err).split())[:300]}", flush=True)
        return 1
    print("ready", flush=True)
    gone = None
    while not stop.wait(0.5):
        if gone is None and not _alive(parent):
            gone = time.monotonic()
        if gone is not None and time.monotonic() - gone > LINGER:
            break
    service.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
