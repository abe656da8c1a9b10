"""Benchmarks of basis-function ODE-Nets (SPEC 2): latency, compile time, change of basis, memory.

- Inference latency of ``basis_ode.ConvODENet`` (width 16, 32x32x3 inputs, Euler, piecewise
  constant basis) against ``n_steps`` (at fixed K) and against K (at fixed ``n_steps``): the cost
  should grow linearly with ``n_steps`` and stay flat in K (theta(t) is one small contraction
  over K per stage).
- Compile time of ``basis_ode.odeint`` (one ``lax.scan`` over steps, RK4) against ``n_steps``,
  next to the same solver written as a Python-unrolled loop: the scan's program size does not
  grow with ``n_steps``, the unrolled loop's does.
- The change of basis of a whole CIFAR-size ConvODENet (K = 16, 1,633,530 parameters) to K = 8,
  with ``basis_ode.compress`` (one (8 x 16) projection matrix, one einsum per leaf) against a
  per-entry solve as the reference code does it (quadrature and one small ``8 x 8`` linear solve
  for every scalar entry): the per-entry solve is timed on a subset of entries and extrapolated
  linearly to all entries (stated in the output).
- Parameter bytes and compiled peak memory of the full and the compressed model.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import basis_ode

from ._common import compile_stats, loglog_slope, time_interleaved


def _model_and_vars(K: int, *, width: int = 16, image: int = 32, seed: int = 0):
    model = basis_ode.ConvODENet(num_classes=10, width=width, n_basis=K)
    x = jnp.zeros((1, image, image, 3), jnp.float32)
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(seed))
    return model, variables


def _randomise_stats(variables, seed=1):
    """Give BatchNorm statistics non-trivial values (fresh init has mean 0, var 1 everywhere)."""
    leaves, tree = jax.tree_util.tree_flatten(variables.get("batch_stats", {}))
    keys = jax.random.split(jax.random.key(seed), max(len(leaves), 1))
    leaves = [
        jnp.abs(leaf + 0.1 * jax.random.normal(k, leaf.shape, leaf.dtype))
        for k, leaf in zip(keys, leaves)
    ]
    return {**variables, "batch_stats": jax.tree_util.tree_unflatten(tree, leaves)}


def bench_latency(
    *, batch: int, n_steps_list, K_list, K_fixed: int, steps_fixed: int, repeats: int, image=32
) -> dict[str, Any]:
    """Median/min inference latency against n_steps (K = K_fixed) and K (n_steps = steps_fixed)."""
    x = jax.random.normal(jax.random.key(3), (batch, image, image, 3), jnp.float32)
    rows_steps, rows_k = [], []
    calls, meta = {}, {}
    for n in n_steps_list:
        model, variables = _model_and_vars(K_fixed, image=image)
        f = jax.jit(lambda v, x, n=n, model=model: model.apply(v, x, train=False, n_steps=n))
        meta[("steps", n)] = compile_stats(f, variables, x)
        calls[("steps", n)] = lambda f=f, v=variables: f(v, x)
    for K in K_list:
        model, variables = _model_and_vars(K, image=image)
        f = jax.jit(lambda v, x, model=model: model.apply(v, x, train=False, n_steps=steps_fixed))
        meta[("K", K)] = compile_stats(f, variables, x)
        calls[("K", K)] = lambda f=f, v=variables: f(v, x)
    times = time_interleaved(calls, repeats=repeats)
    for (kind, value), t in times.items():
        row = {kind: value, **meta[(kind, value)], **t}
        (rows_steps if kind == "steps" else rows_k).append(row)
    return {
        "batch": batch,
        "image": image,
        "K_fixed": K_fixed,
        "steps_fixed": steps_fixed,
        "vs_n_steps": rows_steps,
        "vs_K": rows_k,
        "exponent_n_steps": loglog_slope(
            [r["steps"] for r in rows_steps], [r["min_s"] for r in rows_steps]
        ),
        "exponent_K": loglog_slope([r["K"] for r in rows_k], [r["min_s"] for r in rows_k]),
    }


def _mlp_field(theta, h):
    return jnp.tanh(h @ theta["w"] + theta["b"])


def _unrolled_rk4(h, coeffs, basis, n_steps):
    """RK4 with theta(t) at the stage times, as a Python loop over steps (program grows with n)."""
    dt = 1.0 / n_steps
    for i in range(n_steps):
        t = i * dt
        # stage times t, t + dt/2, t + dt/2, t + dt: the last reads the left limit (SPEC 2.3)
        ts = (t, t + 0.5 * dt, t + 0.5 * dt, t + dt - 1e-6)
        th = [basis_ode.evaluate(coeffs, basis, jnp.asarray(s)) for s in ts]
        k1 = _mlp_field(th[0], h)
        k2 = _mlp_field(th[1], h + 0.5 * dt * k1)
        k3 = _mlp_field(th[2], h + 0.5 * dt * k2)
        k4 = _mlp_field(th[3], h + dt * k3)
        h = h + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return h


def bench_compile(n_steps_list, *, width: int = 64, K: int = 8, batch: int = 16) -> dict[str, Any]:
    """Compile seconds of odeint (scan) and of the unrolled loop at each n_steps."""
    basis = basis_ode.PiecewiseConstant(K)
    kw, kb, kh = jax.random.split(jax.random.key(0), 3)
    coeffs = {
        "w": jax.random.normal(kw, (K, width, width)) / np.sqrt(width),
        "b": jax.random.normal(kb, (K, width)),
    }
    h0 = jax.random.normal(kh, (batch, width))
    rows = []
    for n in n_steps_list:

        def scan_fn(c, h, n=n):
            return basis_ode.odeint(_mlp_field, h, c, basis, n_steps=n, method="rk4")

        def unrolled_fn(c, h, n=n):
            return _unrolled_rk4(h, c, basis, n)

        s = compile_stats(jax.jit(scan_fn), coeffs, h0)
        u = compile_stats(jax.jit(unrolled_fn), coeffs, h0)
        diff = float(
            jnp.max(jnp.abs(jax.jit(scan_fn)(coeffs, h0) - jax.jit(unrolled_fn)(coeffs, h0)))
        )
        rows.append(
            {"n_steps": n, "scan_compile_s": s["compile_s"], "unrolled_compile_s": u["compile_s"],
             "max_abs_diff": diff}
        )  # fmt: skip
    first = rows[0]["scan_compile_s"]
    return {
        "method": "rk4",
        "K": K,
        "width": width,
        "rows": rows,
        "scan_ratio_last_to_first": rows[-1]["scan_compile_s"] / first,
        "unrolled_ratio_last_to_first": rows[-1]["unrolled_compile_s"]
        / rows[0]["unrolled_compile_s"],
    }


def _quadrature(src, dst, n_quad: int = 8):
    """Gauss-Legendre points/weights on the src cells and both bases evaluated there."""
    nodes, weights = np.polynomial.legendre.leggauss(n_quad)
    cells = np.linspace(0.0, 1.0, src.K + 1)
    ts = np.concatenate([0.5 * (b - a) * nodes + 0.5 * (a + b) for a, b in zip(cells, cells[1:])])
    ws = np.concatenate([0.5 * (b - a) * weights for a, b in zip(cells, cells[1:])])
    phi_s = np.asarray(jax.vmap(src)(jnp.asarray(ts)))  # (Q, Ks)
    phi_d = np.asarray(jax.vmap(dst)(jnp.asarray(ts)))  # (Q, Kd)
    return ws, phi_s, phi_d


def _per_entry_projection(entries: np.ndarray, quad, K_dst: int) -> np.ndarray:
    """Reference-style change of basis: for EACH scalar entry, quadrature then a K x K solve.

    ``entries`` is ``(n, K_src)``: the K_src coefficients of n scalar parameters; ``quad`` from
    :func:`_quadrature` (Gauss-Legendre on the src cells, exact for piecewise-constant bases; the
    basis evaluations are hoisted out, which favours this baseline). Per entry: theta at the
    quadrature points, the dst Gram matrix and right-hand side, one ``np.linalg.solve``.
    """
    ws, phi_s, phi_d = quad
    out = np.empty((entries.shape[0], K_dst))
    for j in range(entries.shape[0]):
        theta_t = phi_s @ entries[j]  # theta(t) at the quadrature points
        gram = (phi_d * ws[:, None]).T @ phi_d
        rhs = (phi_d * ws[:, None]).T @ theta_t
        out[j] = np.linalg.solve(gram, rhs)
    return out


def bench_change_of_basis(*, K_src: int = 16, K_dst: int = 8, subset: int = 2000, repeats=3):
    """compress() of a whole CIFAR-size model against a per-entry solve (subset, extrapolated)."""
    model, variables = _model_and_vars(K_src)
    variables = _randomise_stats(variables)
    src, dst = basis_ode.PiecewiseConstant(K_src), basis_ode.PiecewiseConstant(K_dst)
    n_params = basis_ode.count_params(variables["params"])
    basis_ode.change_of_basis(src, dst)  # warm the cache: time the mapping, as for the baseline

    def lib():
        return basis_ode.compress(variables, dst, src_basis="piecewise_constant")

    t_lib = time_interleaved({"lib": lib}, repeats=repeats)["lib"]
    # all block coefficient leaves, flattened to (entries, K)
    leaves = []

    def collect(tree):
        if isinstance(tree, dict):
            for k, v in tree.items():
                if k == "basis_coeffs":
                    leaves.extend(jax.tree_util.tree_leaves(v))
                else:
                    collect(v)

    collect(variables)
    entries = np.concatenate([np.asarray(l).reshape(l.shape[0], -1).T for l in leaves], axis=0)
    n_entries = entries.shape[0]
    sub = entries[:subset]
    quad = _quadrature(src, dst)
    t0 = time.perf_counter()
    ref = _per_entry_projection(sub, quad, dst.K)
    t_sub = time.perf_counter() - t0
    # correctness: the per-entry result equals compress's on the same entries
    P = basis_ode.change_of_basis(src, dst)
    err = float(np.max(np.abs(ref - sub @ P.T)))
    t_ref = t_sub * n_entries / len(sub)
    return {
        "model_params": n_params,
        "block_entries": int(n_entries),
        "K_src": K_src,
        "K_dst": K_dst,
        "compress_min_s": t_lib["min_s"],
        "compress_median_s": t_lib["median_s"],
        "per_entry_subset": int(len(sub)),
        "per_entry_subset_s": t_sub,
        "per_entry_extrapolated_s": t_ref,
        "speedup": t_ref / t_lib["min_s"],
        "per_entry_vs_matrix_max_abs_diff": err,
        "note": f"per-entry solve timed on {len(sub)} of {n_entries} entries, extrapolated "
        "linearly",
    }


def bench_compressed_memory(*, K_src=16, K_list=(8, 4), batch=8, n_steps=16, image=32):
    """Parameter bytes and compiled peak memory (inference) of full and compressed models."""
    model, variables = _model_and_vars(K_src, image=image)
    x = jnp.zeros((batch, image, image, 3), jnp.float32)
    rows = []
    for K in (K_src, *K_list):
        v = (
            variables
            if K == K_src
            else basis_ode.compress(variables, basis_ode.PiecewiseConstant(K))
        )
        f = jax.jit(lambda v, x: model.apply(v, x, train=False, n_steps=n_steps))
        st = compile_stats(f, v, x)
        rows.append(
            {
                "K": K,
                "params": basis_ode.count_params(v["params"]),
                "param_bytes": basis_ode.param_bytes(v["params"]),
                "variable_bytes": basis_ode.param_bytes(v),
                **st,
            }
        )
    return {"batch": batch, "n_steps": n_steps, "rows": rows}
