"""Devices and meshes: CPU devices for data parallelism, the one-axis batch mesh, placement.

XLA runs the sequential time loop of a recurrent model on one core: its per-step matmuls are
below the size at which XLA's CPU runtime splits a matmul over threads. With the CPU exposed as
``n`` devices and the batch sharded over them (what both packages' ``fit`` do over the mesh
:func:`default_mesh`), each device runs the loop for its ``B / n`` rows on its own core.

Every mesh of the training loop has one axis, named :data:`AXIS` (``"batch"``): the batch is
sharded along it and the parameters are replicated. Across processes started with
``jax.distributed.initialize`` the mesh spans every process's devices; each process holds the
whole data set and places its devices' rows (:func:`put_sharded`).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

AXIS = "batch"
MIN_ROWS_PER_DEVICE = 32


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_devices_for(batch_size: int, cores: int | None = None) -> int:
    """The number of CPU devices to shard a batch over: the largest divisor ``n`` of
    ``batch_size`` with ``n <= cores`` and at least ``MIN_ROWS_PER_DEVICE`` (32) rows per device
    (1 when no such ``n > 1`` exists)."""
    if batch_size < 1:
        raise ValueError(f"cpu_devices_for: batch_size must be >= 1, got {batch_size}.")
    cores = available_cores() if cores is None else cores
    fits = [
        n
        for n in range(1, cores + 1)
        if batch_size % n == 0 and batch_size // n >= MIN_ROWS_PER_DEVICE
    ]
    return max(fits, default=1)


def use_cpu_devices(n: int | None = None) -> int:
    """Expose the CPU as ``n`` JAX devices (default: one per available core).

    Must be called before JAX runs its first operation (right after the imports): it sets
    ``jax.config.jax_num_cpu_devices``, which XLA reads when it starts. Afterwards
    ``jax.local_devices()`` on a CPU-only machine lists ``n`` devices and ``fit`` shards each
    batch over them (the batch size must be a multiple of ``n``; see :func:`cpu_devices_for`).
    GPUs and TPUs are unaffected: they stay the default devices.

    Arguments:
        n: number of CPU devices, ``>= 1``.

    Returns:
        ``n``.

    Raises:
        RuntimeError: when JAX has already started (restart the Python process, e.g. the
            notebook kernel, and call this first).
    """
    n = available_cores() if n is None else n
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"use_cpu_devices: n must be an int >= 1, got {n!r}.")
    n = int(n)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as err:
        raise RuntimeError(
            "use_cpu_devices: JAX has already run an operation, so its CPU device count is fixed "
            f"({err}). Call use_cpu_devices({n}) right after the imports, before anything else "
            "uses JAX (in a notebook: restart the kernel first)."
        ) from None
    return n


def default_mesh() -> Mesh:
    """A one-axis mesh named ``"batch"`` over all devices (of every process)."""
    return Mesh(np.asarray(jax.devices()), (AXIS,))


def check_mesh(mesh: object, batch_size: int) -> Mesh:
    """``mesh`` (default :func:`default_mesh`) after checking that it divides ``batch_size``."""
    mesh = default_mesh() if mesh is None else mesh
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh or None, got {type(mesh).__name__}.")
    axis = mesh.axis_names[0]
    n_dev = int(mesh.shape[axis])
    if batch_size % n_dev:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be a multiple of the {n_dev} devices of the mesh "
            f"axis {axis!r}; use e.g. batch_size={batch_size - batch_size % n_dev or n_dev}."
        )
    return mesh


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))


def put(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """``x`` (the same global value in every process) placed with ``sharding``; with several
    processes each process copies only the blocks of its own devices."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def put_sharded(tree, mesh: Mesh):
    """Place a pytree of host arrays (the same global value in every process), rows sharded."""
    return jax.tree.map(lambda x: put(np.asarray(x), sharded(mesh)), tree)


def put_replicated(tree, mesh: Mesh):
    """Place a pytree of host arrays (the same in every process) on every device of ``mesh``."""
    return jax.tree.map(lambda x: put(np.asarray(x), replicated(mesh)), tree)


def to_host(tree: PyTree) -> PyTree:
    """NumPy copies of a pytree of replicated arrays (also across processes)."""

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(x)

    return jax.tree.map(get, tree)


def layout(mesh: Mesh) -> dict:
    """What a run's numbers depend on besides its data and seed: ``{"platform", "devices",
    "processes"}`` of ``mesh`` (recorded in every checkpoint)."""
    return {
        "platform": str(mesh.devices.flat[0].platform),
        "devices": int(mesh.devices.size),
        "processes": int(jax.process_count()),
    }


def _describe(layout: dict) -> str:
    n, p = layout.get("devices"), layout.get("processes")
    return f"{n} {layout.get('platform')} device(s) in {p} process(es)"


def layout_change(stored: dict | None, now: dict) -> str | None:
    """One line saying what changes when a checkpoint written on ``stored`` resumes on ``now``
    (None when they are the same, or when the checkpoint did not record its devices)."""
    if not isinstance(stored, dict) or stored == now:
        return None
    how = (
        f"--cpu-devices {stored.get('devices')}"
        if stored.get("platform") == "cpu" and stored.get("processes") == 1
        else f"{stored.get('processes')} process(es) with {stored.get('devices')} devices in all"
    )
    return (
        f"this run resumes on {_describe(now)}; its checkpoint was written on "
        f"{_describe(stored)}: the batch is split and summed differently from here on, so the "
        "run goes on but does not end bit-identical to an uninterrupted one (resume it on "
        f"{how} to reproduce it)"
    )
