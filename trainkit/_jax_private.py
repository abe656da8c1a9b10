"""The only module of the three packages that reaches into JAX's private ``jax._src``.

JAX has no public API for what a job of several processes needs before and around
``jax.distributed.initialize``: the coordination service in a process of its own (so that the
other processes outlive process 0 and say so in one line), the client's key-value store and
heartbeats (:class:`trainkit._cluster.Peers`), whether the preemption sync manager is running,
which job the environment describes (TPU pod slice, SLURM, Open MPI) without initialising the
job, and whether the backends are up. Each access is one short function here that imports its
private module itself (the one exception to the module-level imports of the three packages: a
moved internal breaks only its own function), and
``tests/trainkit/test_jax_private.py`` checks on the installed JAX that every piece still
exists, so a JAX upgrade that moves one fails that one test by name instead of a job at
run time. Where a public API answers (``jax.distributed.is_initialized``), it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax

__all__ = [
    "backends_initialized",
    "cluster_from_environment",
    "distributed_state",
    "on_a_tpu_vm",
    "preemption_sync_manager",
    "process_index",
    "runtime_service",
    "service_factory",
]


def distributed_state() -> Any:
    """``jax.distributed``'s global state (``client``, ``process_id``, ``num_processes``,
    ``preemption_sync_manager``); its fields are None before ``initialize``."""
    from jax._src import distributed

    return distributed.global_state


def backends_initialized() -> bool:
    """Whether JAX's backends are up (asking ``jax.process_index()`` would start them)."""
    from jax._src import xla_bridge

    return bool(xla_bridge.backends_are_initialized())


def runtime_service(bind: str, num_processes: int) -> Any:
    """A coordination service listening on ``bind`` for ``num_processes`` clients (the object
    ``jax.distributed.initialize`` starts inside process 0); ``.shutdown()`` ends it."""
    from jax._src.lib import _jax

    return _jax.get_distributed_runtime_service(bind, num_processes)


@contextlib.contextmanager
def service_factory(service: Any) -> Iterator[None]:
    """Within the block, ``jax.distributed.initialize`` in process 0 uses ``service`` (started
    elsewhere) instead of starting its own."""
    from jax._src import distributed

    make = distributed._jax.get_distributed_runtime_service
    distributed._jax.get_distributed_runtime_service = lambda *a, **k: service
    try:
        yield
    finally:
        distributed._jax.get_distributed_runtime_service = make


def cluster_from_environment(timeout: int = 300) -> tuple[Any, Any, Any]:
    """``(coordinator address, number of processes, process id)`` of the job the environment
    describes (JAX's own detection: TPU pod slice, SLURM, Open MPI ...), each None if unknown."""
    from jax._src import clusters

    address, n, i, _ = clusters.ClusterEnv.auto_detect_unset_distributed_params(
        None, None, None, None, None, timeout
    )
    return address, n, i


def on_a_tpu_vm() -> bool:
    """TPU chips on this host and libtpu installed (read before JAX's backend starts); False
    where JAX's detection is missing."""
    try:
        from jax._src import cloud_tpu_init, hardware_utils

        chips, _ = hardware_utils.num_available_tpu_chips_and_device_id()
        return chips > 0 and cloud_tpu_init.get_tpu_library_path() is not None
    except Exception:  # noqa: BLE001 - JAX's internals moved: no detection
        return False


def process_index() -> int:
    """This process's number in its job (0 alone), without initialising JAX's backend."""
    if backends_initialized():
        return int(jax.process_index())
    state = distributed_state()
    return int(getattr(state, "process_id", 0) or 0) if state.client is not None else 0


def preemption_sync_manager() -> Any:
    """JAX's preemption sync manager when several processes run with it, else None (never
    initialises JAX's backend)."""
    public = getattr(jax.distributed, "is_initialized", None)  # jax >= 0.4.36
    if public is not None and not public():
        return None
    state = distributed_state()
    if (getattr(state, "num_processes", None) or 1) < 2:
        return None
    return getattr(state, "preemption_sync_manager", None)
