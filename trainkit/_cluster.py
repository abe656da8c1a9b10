"""A training job of several processes (one per host, or several on one machine).

One command on every host: ``python -m noisy_dyn train ...`` or ``python -m basis_ode train ...``
take the job from

- the flags ``--coordinator HOST:PORT --num-processes N --process-id I``
  (:func:`add_cluster_flags`), the same on every host but for ``--process-id``; or
- the environment, as ``jax.distributed.initialize()`` detects it: a Cloud TPU VM (pod slice),
  SLURM (``srun`` with several tasks), Open MPI (``mpirun``).

:func:`start_cluster` then initialises ``jax.distributed`` (gloo collectives on CPUs), prints
one line saying which process this is, and sends the standard output of every process but
process 0 to ``/dev/null`` (logs, results and checkpoints are written by process 0; every
process prints its errors).

The coordination service runs in a small process of its own beside process 0
(:mod:`trainkit._coordinator`), so that a process killed at any moment, process 0 included, is
noticed by the others: every process posts a heartbeat to the service's key-value store every
0.5 s (:class:`Peers`); a process whose heartbeat stops for :data:`LOST_AFTER` seconds (15 by
default, ``TRAINKIT_PEER_TIMEOUT``) is lost, and the others exit with one line and status
:data:`EXIT_PEER_LOST` (75). A process that stops with an error posts it, and the others exit
with it at once instead of waiting in a collective for a process that will not come.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import jax

from ._devices import use_cpu_devices
from ._errors import CLIError
from ._jax_private import (
    cluster_from_environment,
    distributed_state,
    on_a_tpu_vm,
    service_factory,
)
from ._lock import exit_now

__all__ = ["EXIT_PEER_LOST", "add_cluster_flags", "start_cluster"]

EXIT_PEER_LOST = 75
"""Exit status of the processes of a job that lost one of its processes (``EX_TEMPFAIL``: start
all processes again; the newest verified checkpoint is resumed)."""

LOST_AFTER = float(os.environ.get("TRAINKIT_PEER_TIMEOUT", 15.0))
"""Seconds without a heartbeat after which a process counts as lost."""

BEAT = 0.5
"""Seconds between two heartbeats of a process."""

_PREFIX = "trainkit/"
_NOTICE = "RECEIVED_PREEMPTION_NOTICE"  # the key JAX's preemption sync manager waits for


def add_cluster_flags(parser: argparse.ArgumentParser, *, cpu_devices_help: str | None = None):
    """Add ``--coordinator``, ``--num-processes``, ``--process-id`` (and, with
    ``cpu_devices_help``, ``--cpu-devices``) to a training command."""
    g = parser.add_argument_group(
        "several processes (one command per host; default: single process, or the job the "
        "environment describes: Cloud TPU VM, SLURM, Open MPI)"
    )
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="process 0's host and a free port, the same for all")  # fmt: skip
    g.add_argument("--num-processes", type=int, default=None, metavar="N",
                   help="number of processes of the job")  # fmt: skip
    g.add_argument("--process-id", type=int, default=None, metavar="I",
                   help="this process's number, 0..N-1 (process 0 writes the outputs)")  # fmt: skip
    if cpu_devices_help is not None:
        g.add_argument("--cpu-devices", type=int, default=None, help=cpu_devices_help)


def _job_from_flags(args: argparse.Namespace) -> tuple[str, int, int] | None:
    given = {
        "--coordinator": getattr(args, "coordinator", None),
        "--num-processes": getattr(args, "num_processes", None),
        "--process-id": getattr(args, "process_id", None),
    }
    missing = [k for k, v in given.items() if v is None]
    if len(missing) == 3:
        return None
    if missing:
        raise CLIError(
            f"{', '.join(missing)} missing: --coordinator HOST:PORT, --num-processes N and "
            "--process-id I go together (the same on every host but --process-id)."
        )
    address, n, i = given.values()
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CLIError(f"--coordinator must be HOST:PORT (e.g. node0:8476), got {address!r}.")
    if n < 1 or not 0 <= i < n:
        raise CLIError(f"--process-id must lie in 0..{n - 1} for --num-processes {n}, got {i}.")
    return str(address), int(n), int(i)


def _job_from_environment() -> tuple[str, int, int] | None:
    """``(coordinator, processes, id)`` of a TPU pod slice, SLURM or Open MPI job, else None."""
    several = (
        int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_STEP_NODELIST" in os.environ
    ) or int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1
    if not several and not on_a_tpu_vm():
        return None
    address, n, i = cluster_from_environment(300)
    if address is None or n is None or i is None:
        return None
    return str(address), int(n), int(i)


def start_cluster(args: argparse.Namespace) -> dict[str, Any] | None:
    """Apply ``--cpu-devices`` and join the job of several processes that the flags or the
    environment describe (module docstring); None for a single process.

    Call it before JAX runs anything (first thing in a command). Returns ``{"process",
    "processes", "coordinator"}``.
    """
    if getattr(args, "cpu_devices", None):
        use_cpu_devices(int(args.cpu_devices))
    job = _job_from_flags(args) or _job_from_environment()
    if job is None or job[1] == 1:
        return None
    address, n, i = job
    _initialize(address, n, i)
    _announce(i, n)
    return {"process": i, "processes": n, "coordinator": address}


class _Service:
    """The coordination service's process, as ``jax.distributed`` holds its service."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _start_service(bind: str, n: int) -> _Service:
    cmd = [sys.executable, "-m", "trainkit._coordinator", bind, str(n), str(os.getpid())]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True, text=True,
    )  # fmt: skip
    line = proc.stdout.readline().strip()
    proc.stdout.close()
    if line != "ready":
        proc.wait()
        raise CLIError(
            f"the job's coordination service could not start on {bind} ({line or 'no answer'}); "
            "choose another --coordinator port, or wait for the previous job's to end (25 s)."
        )
    return _Service(proc)


def _initialize(address: str, n: int, i: int) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if i != 0:
        jax.distributed.initialize(address, num_processes=n, process_id=i)
    else:
        port = address.rsplit(":", 1)[1]
        bind = os.environ.get("JAX_COORDINATOR_BIND_ADDRESS", f"[::]:{port}")
        service = _start_service(bind, n)
        with service_factory(service):
            jax.distributed.initialize(address, num_processes=n, process_id=i)
    peers()  # made here, once connected; the signal supervisor's thread reads them


def _announce(i: int, n: int) -> None:
    local = jax.local_devices()
    print(f"process {i} of {n} on {socket.gethostname()} (pid {os.getpid()}): {len(local)} "
          f"local {local[0].platform} device(s) of {jax.device_count()} in the job; process 0 "
          "writes the logs, results and checkpoints", file=sys.stderr, flush=True)  # fmt: skip
    if i != 0:  # its standard output, C libraries' (gloo's) included, goes nowhere
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)


# --------------------------------------------------------------------------------------------
# the processes watching each other


class Peers:
    """The heartbeats, posted exits and preemption notices of a job's processes (through the
    coordination service's key-value store); ticked by the signal supervisor's thread."""

    def __init__(self, client: Any, index: int, count: int):
        self.client, self.index, self.count = client, index, count
        self.beats = 0
        self.seen: dict[int, tuple[str, float]] = {}
        self.failing_since: float | None = None
        self.next = 0.0
        self.closed = False

    def _set(self, key: str, value: str, overwrite: bool = False) -> bool:
        try:
            self.client.key_value_set(key, value, allow_overwrite=overwrite)
            return True
        except Exception:  # noqa: BLE001 - e.g. the key exists already
            return False

    def _get(self, key: str) -> str | None:
        try:
            return self.client.key_value_try_get(key)
        except Exception:  # noqa: BLE001 - absent
            return None

    def tick(self, supervisor: Any) -> None:
        now = time.monotonic()
        if self.closed or now < self.next:
            return
        self.next = now + BEAT
        try:
            self.beats += 1
            self.client.key_value_set(f"{_PREFIX}beat/{self.index}", str(self.beats),
                                      allow_overwrite=True)  # fmt: skip
            entries = dict(self.client.key_value_dir_get(_PREFIX))
        except Exception as err:  # noqa: BLE001 - the service is gone or unreachable
            self.failing_since = self.failing_since or now
            if now - self.failing_since > LOST_AFTER:
                self._lost(supervisor, f"the job's coordination service cannot be reached "
                           f"({' '.join(str(err).split())[:120]})")  # fmt: skip
            return
        self.failing_since = None
        self._read(entries, supervisor, now)

    def _read(self, entries: dict[str, str], supervisor: Any, now: float) -> None:
        posted = entries.get(f"{_PREFIX}exit")
        if posted is not None:
            info = json.loads(posted)
            if info.get("process") != self.index:
                exit_now(int(info["status"]), f"{info['line']} (process {info['process']} of "
                          f"{self.count} ended the job)\n")  # fmt: skip
        if supervisor.signum is None and self._get(_NOTICE) is not None:
            supervisor.got(self.signal() or 15)
        for k in range(self.count):
            if k == self.index or f"{_PREFIX}done/{k}" in entries:
                continue
            value = entries.get(f"{_PREFIX}beat/{k}", "")
            last = self.seen.get(k)
            if last is None or last[0] != value:
                self.seen[k] = (value, now)
            elif now - last[1] > LOST_AFTER:
                self._lost(supervisor, f"process {k} of {self.count} stopped answering "
                           f"{LOST_AFTER:g} s ago (killed, or its host was lost)")  # fmt: skip

    def _lost(self, supervisor: Any, what: str) -> None:
        line = f"error: {what}; {supervisor.kept(f'start all {self.count} processes again')}"
        self.post_exit(EXIT_PEER_LOST, line)
        exit_now(EXIT_PEER_LOST, line + "\n")

    def notify(self, signum: int) -> None:
        """Tell the job about a signal this process got (JAX's preemption notice, as its
        notifier posts it, so that every process stops at the same step)."""
        self._set(f"{_PREFIX}signal", str(int(signum)))
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
        self._set(_NOTICE, stamp)

    def signal(self) -> int | None:
        """The signal the job stops on (posted by the process that got it)."""
        value = self._get(f"{_PREFIX}signal")
        return None if value is None else int(value)

    def post_exit(self, status: int, line: str) -> None:
        """Tell the other processes to exit with ``status`` and ``line`` (first post wins)."""
        info = {"process": self.index, "status": int(status), "line": line}
        self._set(f"{_PREFIX}exit", json.dumps(info))

    def close(self) -> None:
        """This process ends normally: the others stop expecting its heartbeat."""
        if not self.closed:
            self.closed = True
            self._set(f"{_PREFIX}done/{self.index}", "1")


_PEERS: Peers | None = None


def current_peers() -> Peers | None:
    """The job's :class:`Peers` if :func:`peers` made them, else None (never makes them: a
    thread must not see the client before ``jax.distributed.initialize`` has connected it)."""
    return _PEERS


def peers() -> Peers | None:
    """The job's :class:`Peers` (created once ``jax.distributed`` is initialised), else None.
    Never initialises JAX's backend."""
    global _PEERS
    if _PEERS is not None:
        return _PEERS
    state = distributed_state()
    n = getattr(state, "num_processes", None) or 1
    if state.client is None or n < 2:
        return None
    _PEERS = Peers(state.client, int(getattr(state, "process_id", 0)), int(n))
    atexit.register(_PEERS.close)  # runs before JAX's own shutdown (registered earlier)
    return _PEERS


def abort_job(status: int, line: str) -> None:
    """In a job of several processes: post ``line`` for the others and end this process with
    ``status`` at once (no process waits in a collective for it). Returns with one process."""
    p = peers()
    if p is None:
        return
    p.post_exit(status, line)
    exit_now(status, "")
