"""Benchmarks of basis-function ODE-Nets: train step against PyTorch, latency, compile time,
change of basis, memory (docs/basis_ode.md).

- Inference latency of ``basis_ode.ConvODENet`` (width 16, 32x32x3 inputs, Euler, piecewise
  constant basis) against ``n_steps`` (at fixed K) and against K (at fixed ``n_steps``): the cost
  should grow linearly with ``n_steps`` and stay flat in K (theta(t) is one small contraction
  over K per stage).
- The training step (loss and gradient, BatchNorm in training mode) of ConvODENet width 16,
  K = n_steps = 8, batch 64, 32x32x3, with the depth loop unrolled (the CPU default) and as one
  ``lax.scan`` (the GPU/TPU default), its ResNet twin, and a PyTorch eager model of the same
  architecture (identical parameter count), timed interleaved.
- Compile time against ``n_steps`` of both paths: ``basis_ode.odeint`` (RK4, MLP field) and a
  ConvODENet training step. The scan's program does not grow with ``n_steps``; the unrolled
  one does.
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
    model = basis_ode.ConvODENet(num_classes=10, width=width, basis=basis_ode.PiecewiseConstant(K))
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


def bench_compile(n_steps_list, *, width: int = 64, K: int = 8, batch: int = 16) -> dict[str, Any]:
    """Compile seconds of odeint (RK4, MLP field) rolled (one lax.scan) and unrolled, per n_steps.

    Also checks that both paths give the same h(1) (``max_abs_diff``).
    """
    basis = basis_ode.PiecewiseConstant(K)
    kw, kb, kh = jax.random.split(jax.random.key(0), 3)
    coeffs = {
        "w": jax.random.normal(kw, (K, width, width)) / np.sqrt(width),
        "b": jax.random.normal(kb, (K, width)),
    }
    h0 = jax.random.normal(kh, (batch, width))
    rows = []
    for n in n_steps_list:
        fns = {
            u: jax.jit(
                lambda c, h, n=n, u=u: basis_ode.odeint(
                    _mlp_field, h, c, basis, n_steps=n, method=basis_ode.RK4, unroll=u
                )
            )
            for u in (False, True)
        }
        s = compile_stats(fns[False], coeffs, h0)
        u = compile_stats(fns[True], coeffs, h0)
        diff = float(jnp.max(jnp.abs(fns[False](coeffs, h0) - fns[True](coeffs, h0))))
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


# -- train step against PyTorch eager --------------------------------------------------------------


def _torch_conv_odenet(width: int, K: int, num_classes: int = 10, in_ch: int = 3):
    """PyTorch eager twin of ConvODENet (Euler, piecewise constant, n_steps = K): the same layers,
    BatchNorm per block, ``h <- h + F_k(h) / K``; identical parameter count."""
    import torch
    from torch import nn

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)

    def conv3(a, b, s=1):
        return nn.Conv2d(a, b, 3, stride=s, padding=1, bias=False)

    class Unit(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.b1, self.c1, self.b2, self.c2 = bn(c), conv3(c, c), bn(c), conv3(c, c)

        def forward(self, h):
            return self.c2(torch.relu(self.b2(self.c1(torch.relu(self.b1(h))))))

    class Stitch(nn.Module):
        def __init__(self, a, b, s):
            super().__init__()
            self.b1, self.c1, self.b2, self.c2 = bn(a), conv3(a, b, s), bn(b), conv3(b, b)
            self.short = (
                nn.Sequential(nn.Conv2d(a, b, 1, stride=s, bias=False), bn(b))
                if (a != b or s != 1)
                else None
            )

        def forward(self, h):
            y = self.c2(torch.relu(self.b2(self.c1(torch.relu(self.b1(h))))))
            return (h if self.short is None else self.short(h)) + y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.stem, self.stem_bn = conv3(in_ch, w), bn(w)
            chans = [(w, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2)]
            self.stitches = nn.ModuleList([Stitch(a, b, s) for a, b, s in chans])
            self.stages = nn.ModuleList(
                [nn.ModuleList([Unit(b) for _ in range(K)]) for _, b, _ in chans]
            )
            self.head_bn, self.head = bn(4 * w), nn.Linear(4 * w, num_classes)

        def forward(self, x):
            h = torch.relu(self.stem_bn(self.stem(x)))
            for stitch, units in zip(self.stitches, self.stages):
                h = stitch(h)
                for u in units:
                    h = h + u(h) / K
            return self.head(self.head_bn(h).mean(dim=(2, 3)))

    return Net()


def bench_train_step(
    *,
    width: int = 16,
    K: int = 8,
    batch: int = 64,
    image: int = 32,
    repeats: int = 3,
    variants: tuple[str, ...] = ("jax_unrolled", "jax_scan", "jax_resnet_unrolled", "torch_eager"),
) -> dict[str, Any]:
    """One training step (loss, gradient, BatchNorm in training mode) of ConvODENet (Euler,
    piecewise constant, n_steps = K) unrolled and as one lax.scan, of its ResNet twin, and of a
    PyTorch eager model of the same architecture; timed interleaved, seconds per step."""
    x = jax.random.normal(jax.random.key(3), (batch, image, image, 3), jnp.float32)
    y = jax.random.randint(jax.random.key(4), (batch,), 0, 10)

    def jax_step(model):
        variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
        params, state = variables["params"], {c: v for c, v in variables.items() if c != "params"}

        def loss(p, state, x, y):
            logits, upd = model.apply({"params": p, **state}, x, train=True, mutable=list(state))
            ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).mean()
            return ce, upd

        f = jax.jit(jax.value_and_grad(loss, has_aux=True))
        return f, (params, state, x, y), basis_ode.count_params(params)

    models = {
        "jax_unrolled": basis_ode.ConvODENet(
            width=width, basis=basis_ode.PiecewiseConstant(K), unroll=True
        ),
        "jax_scan": basis_ode.ConvODENet(
            width=width, basis=basis_ode.PiecewiseConstant(K), unroll=False
        ),
        "jax_resnet_unrolled": basis_ode.ResNet(width=width, n_blocks=K, unroll=True),
    }
    calls, meta = {}, {}
    for name, model in models.items():
        if name not in variants:
            continue
        f, args, n_params = jax_step(model)
        meta[name] = {"params": n_params, **compile_stats(f, *args)}
        calls[name] = lambda f=f, args=args: f(*args)
    try:
        import torch

        if "torch_eager" not in variants:
            raise ImportError
        net = _torch_conv_odenet(width, K)
        xt = torch.tensor(np.asarray(x).transpose(0, 3, 1, 2))
        yt = torch.tensor(np.asarray(y), dtype=torch.long)

        def torch_step():
            net.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(xt), yt)
            loss.backward()
            return float(loss.detach())

        calls["torch_eager"] = torch_step
        meta["torch_eager"] = {"params": sum(p.numel() for p in net.parameters())}
    except ImportError:  # pragma: no cover - torch is optional
        pass
    times = time_interleaved(calls, repeats=repeats)
    rows = {name: {**meta[name], **times[name]} for name in calls}
    out = {"width": width, "K": K, "batch": batch, "image": image, "rows": rows}
    for name in ("jax_unrolled", "jax_scan", "jax_resnet_unrolled"):
        if "torch_eager" in rows and name in rows:
            out[f"{name}_over_torch"] = rows[name]["min_s"] / rows["torch_eager"]["min_s"]
    if "jax_scan" in rows and "jax_unrolled" in rows:
        out["scan_over_unrolled"] = rows["jax_scan"]["min_s"] / rows["jax_unrolled"]["min_s"]
    return out


def bench_train_compile(
    n_steps_list, *, width: int = 4, batch: int = 2, image: int = 8
) -> dict[str, Any]:
    """Compile seconds of a ConvODENet training step (value and gradient) against n_steps = K,
    rolled (one lax.scan per block) and unrolled."""
    x = jnp.zeros((batch, image, image, 3), jnp.float32)
    rows = []
    for n in n_steps_list:
        row = {"n_steps": n}
        for u in (False, True):
            model = basis_ode.ConvODENet(
                width=width, basis=basis_ode.PiecewiseConstant(n), unroll=u
            )
            shapes = jax.eval_shape(lambda k, m=model: m.init(k, x, train=False), jax.random.key(0))
            v = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

            def loss(p, v=v, model=model):
                out, _ = model.apply({**v, "params": p}, x, train=True, mutable=["batch_stats"])
                return jnp.sum(out)

            args = v["params"]
            key = "unrolled_compile_s" if u else "scan_compile_s"
            row[key] = compile_stats(jax.jit(jax.grad(loss)), args)["compile_s"]
        rows.append(row)
    return {"width": width, "rows": rows}


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
        return basis_ode.compress(variables, dst)

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
