"""Benchmark: one Noisy RNN training step (value and gradient of the cross-entropy).

Model: the Lipschitz RNN (docs/noisy_rnn.md) with its training noise on, in either form:
``form="ito"`` (preset ``nrnn_ito``: ``sigma_add = sigma_mult = 0.2``, ``dt = 0.01``) or
``form="reference"`` (preset ``nrnn_reference``, the paper's own configuration: random step
``d m_k``, ``m_k ~ U[0.98, 1)``, additive ``0.02 xi_k``, learned per-unit step ``d``), float32,
pixel sequences (input size 1), ten classes. Implementations measured side by side in one
process (``jax_plain_scan`` and ``diffrax`` for the Ito form only):

- ``jax_library``: ``jax.value_and_grad`` of the cross-entropy of ``noisy_dyn.apply(params, xs,
  cfg, key=key)``: the library's default path, whatever ``noisy_dyn`` routes it to, on one
  device;
- ``jax_library_dp`` (when the process has several devices, e.g. after
  ``noisy_dyn.use_cpu_devices()``): the same function with the batch sharded over all local
  devices, the parameters replicated and the mesh in context, exactly as ``noisy_dyn.fit``
  runs it (the kernel then runs each device's rows under ``shard_map``);
- ``jax_library_dp_partitioner``: the same placement without the mesh in context (``jit``'s
  partitioner alone, which all-reduces the kernel's gradient accumulators after every chunk);
- ``jax_fused``: the fused kernel ``noisy_dyn._fused.fused_final_state`` called directly (noise
  drawn inside the scan from the key, hand-written backward pass);
- ``jax_plain_scan``: a straightforward ``lax.scan`` written here (input drive for all steps in
  one matmul, two matmuls per step, ``jax.random.normal`` for all steps, autodiff backward);
- ``torch_eager``: the same update in PyTorch eager mode, written here: a Python loop over time
  with ``torch.randn`` (and ``torch.rand`` for the reference form's step factor) each step and
  autograd (needs ``torch``; skipped when it is missing);
- ``diffrax``: ``diffrax.diffeqsolve`` of the same SDE (``Euler``, its default adjoint
  ``RecursiveCheckpointAdjoint``), driven by pre-sampled increments (the same ``xi`` the other
  solvers get), in the rescaled time ``tau = t / dt`` so step times are exact integers;
- ``diffrax_vbt`` (``--full`` only): the same with a ``VirtualBrownianTree``.

Roofline: the matmul FLOPs of the step (closed form ``T (12 B H^2 + 6 B H I) + 6 B H C``, checked
against a count of the ``dot_general`` operations in the traced program) divided by this machine's
dense matmul rate measured in the same run. Elementwise work (tanh, the normal draws) is not in
the count, so the roofline is a lower bound on the time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import noisy_dyn
from noisy_dyn._fused import Noise, Weights, fused_final_state
from noisy_dyn._noise import Uses, uses
from noisy_dyn._step import coefficients, drift_matrix

from ._common import compile_stats, jaxpr_matmul_flops, loglog_slope, time_interleaved

# --------------------------------------------------------------------------------------------
# problem


PRESET_OF_FORM = {"ito": "nrnn_ito", "reference": "nrnn_reference"}


def make_config(
    hidden: int, *, remat: int | None = None, form: str = "ito"
) -> noisy_dyn.NoisyRNNConfig:
    """The benchmarked configuration: preset ``nrnn_ito`` or ``nrnn_reference``, ``hidden``
    units."""
    cfg = noisy_dyn.preset(PRESET_OF_FORM[form], input_size=1, num_classes=10)
    return dataclasses.replace(cfg, hidden_size=hidden, remat=remat)


def make_problem(batch: int, hidden: int, time: int, seed: int = 0, form: str = "ito"):
    """Float32 parameters, inputs in [0, 1), labels and a key for one training step."""
    cfg = make_config(hidden, form=form)
    k_p, k_x, k_y, k_n = jax.random.split(jax.random.key(seed), 4)
    params = noisy_dyn.init_params(k_p, cfg, dtype=jnp.float32)
    xs = jax.random.uniform(k_x, (batch, time, 1), dtype=jnp.float32)
    ys = jax.random.randint(k_y, (batch,), 0, cfg.num_classes)
    return {"cfg": cfg, "params": params, "xs": xs, "ys": ys, "key": k_n}


def closed_form_flops(batch: int, hidden: int, time: int, inputs: int = 1, classes: int = 10):
    """Matmul FLOPs of value-and-gradient of the step (fused form, alpha != 0, either noise form).

    Per time step: forward ``h [W^T | alpha A^T]`` (4 B H^2) and ``x U^T`` (2 B H I); backward
    ``[delta | gf] K^T`` (4 B H^2), ``h^T [delta | gf]`` (4 B H^2), ``delta^T x`` and
    ``delta U`` (2 B H I each). Read-out: ``h V^T``, ``g^T h`` and ``g V`` (2 B H C each).
    """
    B, H, T, n_in, C = batch, hidden, time, inputs, classes
    return float(T * (12 * B * H * H + 6 * B * H * n_in) + 6 * B * H * C)


def kernel_extra_flops(batch: int, hidden: int, time: int, inputs: int = 1) -> float:
    """Matmul FLOPs the fused kernel does beyond :func:`closed_form_flops` (negative: fewer):
    it forms the input gradient ``delta U`` only when the inputs are differentiated, which a
    training step does not: ``-2 T B H I``."""
    return float(-2 * time * batch * hidden * inputs)


def _cross_entropy(logits, ys):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, ys[:, None], axis=-1))


def library_loss(params, xs, ys, key, cfg):
    """Mean cross-entropy of ``noisy_dyn.apply`` with the training noise drawn from ``key``."""
    return _cross_entropy(noisy_dyn.apply(params, xs, cfg, key=key), ys)


def library_loss_given_noise(params, xs, ys, noise, cfg):
    """The same loss with pre-sampled noise (``xi``, or a ``NoiseSample`` batch-major)."""
    return _cross_entropy(noisy_dyn.apply(params, xs, cfg, noise=noise), ys)


def fused_loss(params, xs, ys, key, cfg, xi=None, u=None):
    """The loss through the private kernel ``fused_final_state`` (noise from ``key``, or the
    batch-major ``xi`` and, for the reference form, ``u``)."""
    w = Weights(drift_matrix(params, cfg), params["U"], params["b"])
    coef = coefficients(params, cfg, xs.dtype)
    h0 = jnp.zeros((xs.shape[0], cfg.hidden_size), xs.dtype)
    tm = lambda a: None if a is None else jnp.swapaxes(a, 0, 1)  # noqa: E731
    if xi is None:
        noise, need = Noise(key=key), uses(cfg)
    else:
        noise, need = Noise(tm(xi), tm(u)), Uses(True, u is not None)
    h_T = fused_final_state(w, coef, tm(xs), h0, noise, None, uses=need, remat=cfg.remat)
    return _cross_entropy(h_T @ params["V"].T + params["c"], ys)


def plain_scan_loss(params, xs, ys, key, cfg, xi=None):
    """A plain ``lax.scan`` with autodiff: the baseline a first implementation would write."""
    A, W = noisy_dyn.recurrent_matrices(params, cfg)
    B, T = xs.shape[0], xs.shape[1]
    H = cfg.hidden_size
    u = jnp.einsum("bti,hi->tbh", xs, params["U"]) + params["b"]
    if xi is None:
        xi_tm = jax.random.normal(key, (T, B, H), xs.dtype)
    else:
        xi_tm = jnp.swapaxes(xi, 0, 1)
    root = math.sqrt(cfg.dt)

    def step(h, inp):
        u_k, xi_k = inp
        f = cfg.alpha * (h @ A.T) + jnp.tanh(h @ W.T + u_k)
        return h + cfg.dt * f + root * (cfg.sigma_add + cfg.sigma_mult * h) * xi_k, None

    h_T, _ = jax.lax.scan(step, jnp.zeros((B, H), xs.dtype), (u, xi_tm))
    return _cross_entropy(h_T @ params["V"].T + params["c"], ys)


# --------------------------------------------------------------------------------------------
# diffrax


def diffrax_loss(params, xs, ys, key, cfg, xi=None, brownian="increments"):
    """The same SDE solved by ``diffrax.diffeqsolve`` (Euler, default adjoint).

    Time is rescaled to ``tau = t / dt`` (so the step is exactly 1 and step ``k`` starts at the
    integer ``tau = k``): drift ``dt f(h, x_k)`` and diffusion ``sqrt(dt) (sigma_a + sigma_m h)``
    against a Brownian motion of unit rate in ``tau``. ``brownian="increments"`` feeds the
    pre-sampled normals ``xi`` (or ``jax.random.normal`` draws from ``key``) as the increments;
    ``"vbt"`` uses a ``VirtualBrownianTree``.
    """
    import diffrax
    import lineax

    A, W = noisy_dyn.recurrent_matrices(params, cfg)
    B, T = xs.shape[0], xs.shape[1]
    H = cfg.hidden_size
    u = jnp.einsum("bti,hi->tbh", xs, params["U"]) + params["b"]
    root = math.sqrt(cfg.dt)

    def index(tau):
        return jnp.clip(jnp.floor(tau + 0.5).astype(jnp.int32), 0, T - 1)

    def drift(tau, y, args):
        h = y.reshape(B, H)
        f = cfg.alpha * (h @ A.T) + jnp.tanh(h @ W.T + u[index(tau)])
        return (cfg.dt * f).reshape(-1)

    def diffusion(tau, y, args):
        return lineax.DiagonalLinearOperator(root * (cfg.sigma_add + cfg.sigma_mult * y))

    if brownian == "vbt":
        path = diffrax.VirtualBrownianTree(0.0, float(T), tol=0.5, shape=(B * H,), key=key)
    else:
        inc = (
            jax.random.normal(key, (T, B * H), xs.dtype)
            if xi is None
            else jnp.swapaxes(xi, 0, 1).reshape(T, B * H)
        )

        class Increments(diffrax.AbstractPath):
            t0: float
            t1: float
            dw: jax.Array

            def evaluate(self, t0, t1=None, left=True):
                del left
                return self.dw[index(t0)]

        path = Increments(0.0, float(T), inc)
    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, path))
    sol = diffrax.diffeqsolve(
        terms,
        diffrax.Euler(),
        t0=0.0,
        t1=float(T),
        dt0=1.0,
        y0=jnp.zeros((B * H,), xs.dtype),
        max_steps=T,
        saveat=diffrax.SaveAt(t1=True),
    )
    h_T = sol.ys[-1].reshape(B, H)
    return _cross_entropy(h_T @ params["V"].T + params["c"], ys)


# --------------------------------------------------------------------------------------------
# torch


def torch_step(prob: dict[str, Any], xi: np.ndarray | None = None, u: np.ndarray | None = None):
    """A PyTorch eager training step of the same model (loop over time in Python).

    Returns a zero-argument function computing the loss and filling ``.grad`` of the parameters,
    and the parameter tensors. ``xi`` (batch, time, hidden) replaces ``torch.randn`` and ``u``
    ``torch.rand`` (reference form) for checks.
    """
    import torch

    cfg = prob["cfg"]
    ps = {
        k: torch.tensor(np.asarray(v), dtype=torch.float32, requires_grad=True)
        for k, v in prob["params"].items()
    }
    xs = torch.tensor(np.asarray(prob["xs"]))
    ys = torch.tensor(np.asarray(prob["ys"]), dtype=torch.long)
    xi_t = None if xi is None else torch.tensor(np.asarray(xi), dtype=torch.float32)
    u_t = None if u is None else torch.tensor(np.asarray(u), dtype=torch.float32)
    ito = cfg.noise_form.brownian
    sa, sm = cfg.sigma_add, cfg.sigma_mult
    B, T = xs.shape[0], xs.shape[1]
    H = cfg.hidden_size
    eye = torch.eye(H)
    root = math.sqrt(cfg.dt)

    def lip(M, gamma):
        return cfg.beta * (M - M.T) + (1 - cfg.beta) * (M + M.T) - gamma * eye

    def step():
        for p in ps.values():
            p.grad = None
        A, W = lip(ps["M_A"], cfg.gamma_a), lip(ps["M_W"], cfg.gamma_w)
        # all steps in one matmul, split with unbind: indexing u[:, k] instead would make every
        # step's backward write a zero-filled (B, T, H) gradient (40 GB of traffic at T = 784)
        us = (xs @ ps["U"].T + ps["b"]).unbind(1)
        h = torch.zeros(B, H)
        for k in range(T):
            noise = torch.randn(B, H) if xi_t is None else xi_t[:, k]
            f = cfg.alpha * (h @ A.T) + torch.tanh(h @ W.T + us[k])
            if ito:
                h = h + cfg.dt * f + root * (sa + sm * h) * noise
            else:  # random step d m_k, m_k ~ U[1 - sm, 1), learned d, additive kick
                m = (1 - sm) + sm * (torch.rand(B, H) if u_t is None else u_t[:, k])
                h = h + (ps["step"] * m) * f + sa * noise
        loss = torch.nn.functional.cross_entropy(h @ ps["V"].T + ps["c"], ys)
        loss.backward()
        return loss

    return step, ps


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False


# --------------------------------------------------------------------------------------------
# the measurements


def _vg(loss, cfg, argnums=0):
    return jax.jit(jax.value_and_grad(lambda *a: loss(*a, cfg), argnums=argnums))


def data_parallel_devices(batch: int) -> int:
    """Devices the ``jax_library_dp`` variant shards over (0: variant unavailable)."""
    n = jax.local_device_count()
    return n if n > 1 and batch % n == 0 else 0


def shard_like_fit(params, xs, ys, key):
    """Place a step's arguments as ``noisy_dyn.fit`` does: the batch axis sharded over a
    one-axis mesh of all local devices, parameters and key replicated. Returns ``(mesh,
    args)``; call the step under ``jax.set_mesh(mesh)``, as ``fit`` does (:func:`on_mesh`)."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.asarray(jax.local_devices()), ("batch",))
    rep, sharded = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("batch"))
    return mesh, (jax.device_put(params, rep), jax.device_put(xs, sharded),
                  jax.device_put(ys, sharded), jax.device_put(key, rep))  # fmt: skip


def on_mesh(mesh, f):
    """``f`` traced and run with ``mesh`` in context (``jax.set_mesh``), as in ``fit``."""

    def call(*args):
        with jax.set_mesh(mesh):
            return f(*args)

    return call


def check_agreement(
    batch=4,
    hidden=8,
    time=16,
    names=("jax_fused", "jax_plain_scan", "diffrax", "torch_eager"),
    form="ito",
) -> dict[str, float]:
    """Max relative error of loss and gradients against the library on the same noise.

    Float32, tiny size; ``names`` selects the implementations compared (torch only if installed;
    ``jax_plain_scan`` and ``diffrax`` for the Ito form only).
    """
    prob = make_problem(batch, hidden, time, seed=1, form=form)
    cfg, params, xs, ys = prob["cfg"], prob["params"], prob["xs"], prob["ys"]
    xi = jax.random.normal(jax.random.key(7), (batch, time, hidden), jnp.float32)
    u = jax.random.uniform(jax.random.key(8), (batch, time, hidden), jnp.float32)
    u = None if form == "ito" else u
    sample = noisy_dyn.NoiseSample(xi, u)
    ref_val, ref_g = jax.value_and_grad(library_loss_given_noise)(params, xs, ys, sample, cfg)

    def rel(val, grads):
        scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(ref_g))
        gerr = max(float(jnp.max(jnp.abs(grads[k] - ref_g[k]))) for k in ref_g) / scale
        return max(gerr, abs(float(val) - float(ref_val)) / abs(float(ref_val)))

    out = {}
    if "jax_library_dp" in names and data_parallel_devices(batch):
        mesh, args = shard_like_fit(params, xs, ys, sample)
        f = jax.jit(jax.value_and_grad(library_loss_given_noise), static_argnums=4)
        val, grads = on_mesh(mesh, f)(*args, cfg)
        out["jax_library_dp"] = rel(val, grads)
    if "jax_fused" in names:
        val, grads = jax.value_and_grad(lambda p: fused_loss(p, xs, ys, None, cfg, xi, u))(params)
        out["jax_fused"] = rel(val, grads)
    for name, loss in [("jax_plain_scan", plain_scan_loss), ("diffrax", diffrax_loss)]:
        if name not in names or form != "ito":
            continue
        val, grads = jax.value_and_grad(lambda p, f=loss: f(p, xs, ys, None, cfg, xi=xi))(params)
        out[name] = rel(val, grads)
    if "torch_eager" in names and _torch_available():
        step, ps = torch_step(prob, xi=np.asarray(xi), u=None if u is None else np.asarray(u))
        val = float(step().detach())
        out["torch_eager"] = rel(val, {k: jnp.asarray(p.grad.numpy()) for k, p in ps.items()})
    return out


def bench_train_step(
    batch, hidden, time, *, repeats, variants=None, torch=True, form="ito"
) -> dict[str, Any]:
    """Time the train step of every implementation at one size (interleaved repeats).

    ``variants``: names among ``jax_library, jax_fused, jax_plain_scan, diffrax, diffrax_vbt``
    (default: all but ``diffrax_vbt``; the last three are Ito-only and dropped for
    ``form="reference"``); ``torch`` adds ``torch_eager`` when torch is installed.
    ``jax_library_dp`` is added when the process has several devices that divide the batch.
    """
    prob = make_problem(batch, hidden, time, form=form)
    cfg, params, xs, ys, key = (prob[k] for k in ("cfg", "params", "xs", "ys", "key"))
    losses = {
        "jax_library": library_loss,
        "jax_fused": fused_loss,
        "jax_plain_scan": plain_scan_loss,
        "diffrax": diffrax_loss,
        "diffrax_vbt": lambda *a: diffrax_loss(*a, brownian="vbt"),
    }
    if variants is None:
        variants = ("jax_library", "jax_fused", "jax_plain_scan", "diffrax")
    if form != "ito":
        variants = tuple(v for v in variants if v in ("jax_library", "jax_fused"))
    unknown = set(variants) - set(losses)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; choose from {sorted(losses)}.")
    variants = {name: losses[name] for name in variants}
    jitted = {name: _vg(loss, cfg) for name, loss in variants.items()}
    stats = {name: compile_stats(f, params, xs, ys, key) for name, f in jitted.items()}
    calls = {name: (lambda f=f: f(params, xs, ys, key)) for name, f in jitted.items()}
    n_dev = data_parallel_devices(batch)
    if "jax_library" in variants and n_dev:
        mesh, args = shard_like_fit(params, xs, ys, key)
        f = _vg(library_loss, cfg)  # its own trace: the mesh in context is part of it
        with jax.set_mesh(mesh):
            stats["jax_library_dp"] = {**compile_stats(f, *args), "devices": n_dev}
        dp = on_mesh(mesh, f)
        calls["jax_library_dp"] = lambda dp=dp, args=args: dp(*args)
        plain = jitted["jax_library"]  # the same placement without the mesh in context
        stats["jax_library_dp_partitioner"] = {**compile_stats(plain, *args), "devices": n_dev}
        calls["jax_library_dp_partitioner"] = lambda f=plain, args=args: f(*args)
    if torch and _torch_available():
        step, _ = torch_step(prob)
        calls["torch_eager"] = step
        stats["torch_eager"] = {}
    times = time_interleaved(calls, repeats=repeats)
    for name in times:
        stats[name].update(times[name])
    flops = closed_form_flops(batch, hidden, time)
    counted = jaxpr_matmul_flops(
        jax.value_and_grad(lambda p: fused_loss(p, xs, ys, key, cfg)), params
    )
    return {
        "form": form,
        "batch": batch,
        "hidden": hidden,
        "time": time,
        "flops_closed_form": flops,
        "flops_jaxpr_fused": counted,
        "flops_kernel_extra": kernel_extra_flops(batch, hidden, time),
        "impl": stats,
    }


def bench_scaling(sizes, *, hidden, repeats) -> list[dict[str, Any]]:
    """Time and compiled peak memory of the library train step at each ``(batch, time)``."""
    rows = []
    for batch, time in sizes:
        prob = make_problem(batch, hidden, time)
        cfg, params, xs, ys, key = (prob[k] for k in ("cfg", "params", "xs", "ys", "key"))
        f = _vg(library_loss, cfg)
        st = compile_stats(f, params, xs, ys, key)
        call = {"t": lambda f=f, a=(params, xs, ys, key): f(*a)}
        st.update(time_interleaved(call, repeats=repeats)["t"])
        rows.append({"batch": batch, "time": time, **st})
    return rows


def fit_exponents(rows, axis: str, fixed: str) -> dict[str, float]:
    """log-log slopes of time and peak memory against ``axis`` over rows sharing ``fixed``."""
    xs = [r[axis] for r in rows]
    return {
        "time_exponent": loglog_slope(xs, [r["min_s"] for r in rows]),
        "memory_exponent": loglog_slope(xs, [r["peak_bytes"] for r in rows]),
    }


def bench_remat(batch, hidden, time, chunk, *, repeats) -> dict[str, Any]:
    """Library train step with ``cfg.remat = None`` against ``cfg.remat = chunk``."""
    prob = make_problem(batch, hidden, time)
    params, xs, ys, key = (prob[k] for k in ("params", "xs", "ys", "key"))
    out, calls = {}, {}
    for name, remat in (("no_remat", None), (f"remat_{chunk}", chunk)):
        cfg = make_config(hidden, remat=remat)
        f = _vg(library_loss, cfg)
        out[name] = compile_stats(f, params, xs, ys, key)
        calls[name] = lambda f=f: f(params, xs, ys, key)
    times = time_interleaved(calls, repeats=repeats)
    for name in times:
        out[name].update(times[name])
    base, ck = out["no_remat"], out[f"remat_{chunk}"]
    out["memory_reduction"] = base["peak_bytes"] / ck["peak_bytes"]
    out["time_ratio"] = ck["min_s"] / base["min_s"]
    out["chunk"] = chunk
    return out
