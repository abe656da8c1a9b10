"""Shared helpers of the benchmark suite: timing, compiled-memory figures, FLOP counting, fits.

Timing: every measured function is jit-compiled (compile time is reported separately), called
once to warm up, then called ``repeats`` times with ``jax.block_until_ready``. Variants that are
compared are timed *interleaved* (round-robin), so a burst of load from other processes hits all
of them alike; tables report the minimum (least-disturbed run) and the median.

Peak memory: ``compiled.memory_analysis()`` of the XLA executable, summed as
``temp + argument + output`` bytes. On CPU this is XLA's static buffer assignment: every buffer
the program needs at once (residuals stored for the backward pass, scan stacks, workspaces) plus
its inputs and outputs. It is exact for what XLA allocates for that executable, and it does not
include the Python process, other live arrays or allocator overheads. Aliased/donated buffers are
not double counted (``alias_size_in_bytes`` is subtracted).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np


def block(x: Any) -> Any:
    """``jax.block_until_ready`` that also accepts torch tensors and plain Python values."""
    return jax.block_until_ready(x)


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, dict[str, float]]:
    """Time zero-argument callables round-robin; return min/median/all seconds per name."""
    for fn in fns.values():
        for _ in range(warmup):
            block(fn())
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            block(fn())
            samples[name].append(time.perf_counter() - t0)
    return {
        name: {"min_s": min(s), "median_s": float(np.median(s)), "runs_s": s}
        for name, s in samples.items()
    }


def compile_stats(fn: Callable, *args: Any) -> dict[str, float]:
    """Lower and compile ``jax.jit(fn)(*args)``; return compile seconds and memory figures."""
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    seconds = time.perf_counter() - t0
    out = {"compile_s": seconds}
    out.update(memory_stats(compiled))
    return out


def memory_stats(compiled: Any) -> dict[str, float]:
    """``temp + argument + output - alias`` bytes of a compiled executable (see module doc)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # backends without memory analysis
        m = None
    if m is None:
        return {"peak_bytes": float("nan")}
    temp = float(m.temp_size_in_bytes)
    arg = float(m.argument_size_in_bytes)
    out = float(m.output_size_in_bytes)
    alias = float(getattr(m, "alias_size_in_bytes", 0))
    return {
        "peak_bytes": temp + arg + out - alias,
        "temp_bytes": temp,
        "argument_bytes": arg,
        "output_bytes": out,
    }


def matmul_rate(n: int = 2048, repeats: int = 5, dtype: Any = np.float32) -> dict[str, float]:
    """This machine's dense matmul rate in FLOP/s: best of ``repeats`` ``(n, n) @ (n, n)``."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype=dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype=dtype)
    f = jax.jit(lambda a, b: a @ b)
    t = time_interleaved({"mm": lambda: f(a, b)}, repeats=repeats)["mm"]
    return {"n": n, "flops_per_s": 2.0 * n**3 / t["min_s"], "min_s": t["min_s"]}


def _dot_flops(eqn: Any) -> float:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    contract = math.prod(lhs[i] for i in lc)
    batch = math.prod(lhs[i] for i in lb)
    free_l = math.prod(d for i, d in enumerate(lhs) if i not in lc and i not in lb)
    free_r = math.prod(d for i, d in enumerate(rhs) if i not in rc and i not in rb)
    return 2.0 * batch * free_l * free_r * contract


def jaxpr_matmul_flops(fn: Callable, *args: Any) -> float:
    """Matmul FLOPs (2 per multiply-add of every ``dot_general``) of ``fn(*args)``, from its jaxpr.

    Walks the traced program, multiplying the FLOPs inside ``scan`` bodies by the scan length and
    recursing into ``pjit``, ``custom_vjp``/``custom_jvp`` calls, ``checkpoint`` and ``cond``
    (largest branch). Elementwise work (tanh, noise generation) is not counted. ``while`` loops with
    unknown trip counts raise ``ValueError``.
    """
    closed = jax.make_jaxpr(fn)(*args)
    return _count(closed.jaxpr)


def _sub_jaxprs(eqn: Any) -> list[Any]:
    subs = []
    for value in eqn.params.values():
        if hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
            subs.append(value.jaxpr)
        elif hasattr(value, "eqns"):
            subs.append(value)
    return subs


def _count(jaxpr: Any) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
        elif name == "scan":
            total += eqn.params["length"] * _count(eqn.params["jaxpr"].jaxpr)
        elif name == "while":
            if _count(eqn.params["body_jaxpr"].jaxpr) > 0:
                raise ValueError(
                    "jaxpr_matmul_flops: matmuls inside a while loop of unknown length"
                )
        elif name == "cond":
            total += max(_count(b.jaxpr) for b in eqn.params["branches"])
        else:
            total += sum(_count(sub) for sub in _sub_jaxprs(eqn))
    return total


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the fitted growth exponent)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    return float(np.polyfit(lx, ly, 1)[0])


def machine() -> dict[str, Any]:
    """A description of the machine and library versions the numbers were measured on."""
    import os

    dev = jax.devices()[0]
    info = {
        "backend": jax.default_backend(),
        "device": getattr(dev, "device_kind", str(dev)),
        "local_devices": jax.local_device_count(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info
