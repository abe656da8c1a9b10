"""Several CPU devices in one process, so that data-parallel training uses every core.

XLA runs the sequential time loop of a Noisy RNN on one core: its per-step matmuls
(``(B, H) x (H, 2H)`` with ``B = H = 128``) are below the size at which XLA's CPU runtime
splits a matmul over threads. With the CPU exposed as ``n`` devices and the batch sharded
over them (what :func:`noisy_dyn.fit` does over ``jax.local_devices()``), each device runs
the loop for its ``B / n`` rows on its own core.
"""

import os

import jax

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
    ``jax.local_devices()`` on a CPU-only machine lists ``n`` devices and :func:`noisy_dyn.fit`
    shards each batch over them (the batch size must be a multiple of ``n``; see
    :func:`cpu_devices_for`). GPUs and TPUs are unaffected: they stay the default devices.

    Arguments:
        n: number of CPU devices, ``>= 1``.

    Returns:
        ``n``.

    Raises:
        RuntimeError: when JAX has already started (restart the Python process, e.g. the
            notebook kernel, and call this first).
    """
    n = available_cores() if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"use_cpu_devices: n must be an int >= 1, got {n!r}.")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as err:
        raise RuntimeError(
            "use_cpu_devices: JAX has already run an operation, so its CPU device count is fixed "
            f"({err}). Call noisy_dyn.use_cpu_devices({n}) right after the imports, before "
            "anything else uses JAX (in a notebook: restart the kernel first)."
        ) from None
    return n
