"""The fused Noisy RNN scan: one matmul a step, a hand-written backward pass, remat, masks.

The update of ``noisy_dyn._step`` (both noise forms) for a row-batch of states ``h`` ``(B, H)``,

    [z_k | lin_k] = h_k K,     K = [W^T | alpha A^T]          (one (B, H) x (H, 2H) matmul)
    a_k = tanh(z_k + x_k U^T + b),   f_k = a_k + lin_k
    e_k = d ⊙ (1 + s (u_k - 1))
    h_{k+1} = h_k + e_k ⊙ f_k + (c_a + c_m ⊙ h_k) ⊙ xi_k      (rows with k >= length: h_k)

(with ``alpha = 0`` in the config ``K = W^T`` and ``lin = 0``).

Backward pass (reverse mode, derived by hand, checked against autodiff of a plain scan in
float64 by the tests). With the adjoint ``g_{k+1} = dL/dh_{k+1}``, ``v_k`` the row mask and
``gv = v_k g_{k+1}``:

    gf_k    = gv ⊙ e_k                          (dL/df_k = dL/dlin_k)
    delta_k = gf_k ⊙ (1 - a_k^2)                (dL/dz_k)
    g_k     = g_{k+1} + [delta_k | gf_k] K^T + c_m ⊙ gv ⊙ xi_k   (one (B, 2H) x (2H, H) matmul)
    dL/dK  += h_k^T [delta_k | gf_k],   dL/dU += delta_k^T x_k,   dL/db += sum_rows delta_k
    dL/dx_k = delta_k U,   dL/dxi_k = gv ⊙ (c_a + c_m ⊙ h_k),   dL/du_k = gv ⊙ f_k ⊙ d s
    dL/dd  += sum_rows gv ⊙ f_k ⊙ (1 + s (u_k - 1)),   dL/ds += sum gv ⊙ f_k ⊙ d ⊙ (u_k - 1)
    dL/dc_a += sum_rows gv ⊙ xi_k,   dL/dc_m += sum_rows gv ⊙ xi_k ⊙ h_k

Gradients are formed only for the inputs that are differentiated (``jax.custom_vjp`` with
symbolic zeros): training a fixed-step model never pays for the step and noise coefficients.

Layout of the work (what makes it fast). The steps are grouped in chunks of ``C`` steps (the
time axis is padded to a multiple of ``C``; padded steps are masked like a row's steps past its
length); an outer ``lax.scan`` runs over chunks, an inner one over the steps of a chunk.

- Per chunk, in bulk: the input drive ``x_k U^T + b`` and, with a key, the noise of all ``C``
  steps (one vectorised draw of ``noisy_dyn._noise.draw_steps``, the sampler of every path).
- Per step, on the sequential path: forward one ``(B, H) x (H, 2H)`` matmul and one fused
  elementwise update; backward one ``(B, 2H) x (2H, H)`` matmul and one elementwise update.
- Per chunk, after its backward steps: the weight (and coefficient) gradients as contractions
  over the chunk's ``C B`` rows, at the dense-matmul rate. The forward stores ``h_k``
  transposed, ``(H, C, B)`` per chunk, so this contraction reads both operands without a copy.

Residuals: ``h_k``, ``a_k``, ``f_k`` when the step is differentiated, and of the drawn noise the
uniforms ``u_k`` and the normals ``xi_k`` when the backward pass reads them (multiplicative noise
``c_m``, or differentiated noise scales: the reference form's fixed-scale kick needs none), of
every step; or with ``remat`` only each chunk's first state: the backward pass then recomputes
the chunk (drawing its noise again) before reversing through it, so peak memory falls from
``O(T B H)`` to ``O((T / C + C) B H)``.

Devices. Every operation is batch-parallel. With a one-axis mesh in context (``jax.set_mesh``;
``trainkit``'s training loop sets its batch mesh) whose size divides the batch, the forward and
the backward pass each run under ``jax.shard_map``: every device integrates and reverses its own
rows, draws their noise itself (the sampler's counters are global row indices, so the draws are
those of one device), and the weight and coefficient gradients are summed over the devices once,
after the last chunk. (Without the mesh in context, under ``jit`` with a batch-sharded input, the
partitioner runs the same rows per device but all-reduces the accumulated gradients once per
chunk.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.sharding import AbstractMesh
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, ArrayLike, Float, Int

from ._noise import Coefficients, Uses, draw_steps
from ._step import advance, noise_scale
from ._threefry import typed_key


class Weights(NamedTuple):
    """``K = [W^T | alpha A^T]`` ``(H, 2H)`` or ``W^T`` ``(H, H)``; ``U (H, I)``; ``b (H,)``."""

    K: Array
    U: Array
    b: Array


class Noise(NamedTuple):
    """Given draws ``xi``/``u`` (time-major ``(T, B, H)``), or a ``key`` to draw them from."""

    xi: Array | None = None
    u: Array | None = None
    key: Array | None = None


class Plan(NamedTuple):
    """Static layout: chunk length, remat, which draws a key gives, masked steps, and the
    one-axis mesh the rows are split over (``None``: one program for all rows)."""

    chunk: int
    remat: bool
    uses: Uses
    masked: bool
    mesh: AbstractMesh | None = None


@jax.tree_util.register_static
@dataclass(frozen=True)
class _Need:
    """Which gradients the backward pass forms (known from what is differentiated)."""

    step: bool  # d or s (the drift's step) differentiated
    noise: bool  # c_a or c_m (the noise's scale) differentiated
    dx: bool
    dxi: bool
    du: bool
    mult: bool  # multiplicative noise (c_m present): its adjoint term needs xi

    @property
    def xi(self) -> bool:
        """Whether the backward pass reads the normals ``xi``."""
        return self.mult or self.noise

    @property
    def coef(self) -> bool:
        return self.step or self.noise

    @property
    def f(self) -> bool:
        return self.step or self.du

    @property
    def gv(self) -> bool:
        return self.f or self.noise or self.dxi


class _Residuals(NamedTuple):
    hT: Array  # (H, C, B): h_k transposed
    a: Array  # (C, B, H)
    f: Array | None  # (C, B, H) when the step's gradient is needed
    xi: Array | None  # when the backward pass reads it (_Need.xi)
    u: Array | None


class _Chunk(NamedTuple):
    """Per-step inputs of one chunk."""

    ks: Array  # (C,) step indices
    x: Array  # (C, B, I)
    xi: Array | None  # given draws (C, B, H)
    u: Array | None


class _Ctx(NamedTuple):
    """What every chunk of one call shares: weights, coefficients, noise, lengths, plan, and
    the global index of this program's first row (``None``: all rows, from row 0)."""

    w: Weights
    coef: Coefficients
    noise: Noise
    lengths: Array | None
    plan: Plan
    first_row: Array | None = None


class _Saved(NamedTuple):
    """The residuals of the forward pass for the backward pass."""

    ctx: _Ctx
    xs: Array
    stored: object  # per chunk: _Residuals, or the chunk's first state with remat
    need: _Need


class _Grads(NamedTuple):
    g: Array
    K: Array
    U: Array
    b: Array
    coef: Coefficients | None


def _draws(noise: Noise, plan: Plan, c: _Chunk, shape, dtype, first_row):
    if noise.key is None:
        return c.xi, c.u
    return draw_steps(noise.key, c.ks, shape, dtype, plan.uses, first_row)


def _chunk_forward(ctx: _Ctx, h: ArrayLike, c: _Chunk, need: _Need | None):
    """The steps of one chunk from its first state ``h``: ``h_end`` and, given what the
    backward pass ``need``-s, the chunk's :class:`_Residuals`."""
    collect = need is not None
    B, H = h.shape
    drive = jnp.einsum("cbi,hi->cbh", c.x, ctx.w.U) + ctx.w.b
    xi_c, u_c = _draws(ctx.noise, ctx.plan, c, (B, H), h.dtype, ctx.first_row)

    def step(carry, inp):
        h, hT = carry
        i, k, drive_k, xi_k, u_k = inp
        valid = (k < ctx.lengths)[:, None] if ctx.plan.masked else None
        h_next, a, f = advance(h, h @ ctx.w.K, drive_k, ctx.coef, xi_k, u_k, valid)
        if not collect:
            return (h_next, hT), None
        hT = jax.lax.dynamic_update_slice_in_dim(hT, h.T[:, None, :], i, axis=1)
        return (h_next, hT), (a, f if need.f else None)

    hT0 = jnp.zeros((H, c.ks.shape[0], B), h.dtype) if collect else None
    steps = jnp.arange(c.ks.shape[0], dtype=jnp.int32)
    (h_end, hT), af = jax.lax.scan(step, (h, hT0), (steps, c.ks, drive, xi_c, u_c))
    if not collect:
        return h_end, None
    return h_end, _Residuals(hT, af[0], af[1], xi_c if need.xi else None, u_c)


def _step_back(ctx: _Ctx, Kt: ArrayLike, need: _Need, g: ArrayLike, inp):
    """One reverse step: ``g_{k+1} -> g_k``, emitting ``[delta_k | gf_k]`` and ``gv``."""
    k, a_k, xi_k, u_k = inp
    coef = ctx.coef
    gv = jnp.where((k < ctx.lengths)[:, None], g, 0.0) if ctx.plan.masked else g
    e = coef.step if u_k is None else coef.step * (1.0 + coef.spread * (u_k - 1.0))
    gf = gv * e
    delta = gf * (1.0 - a_k * a_k)
    dg = jnp.concatenate([delta, gf], axis=-1) if Kt.shape[0] == 2 * g.shape[-1] else delta
    g_prev = g + dg @ Kt
    if xi_k is not None and coef.noise_mult is not None:
        g_prev = g_prev + coef.noise_mult * gv * xi_k
    return g_prev, (dg, gv if need.gv else None)


def _coef_grads(coef: Coefficients, res: _Residuals, gv: ArrayLike, h, need: _Need) -> Coefficients:
    """Sums over the chunk's rows of the coefficient gradients (module docstring); zeros for
    the coefficients that are not differentiated."""
    rows = (0, 1)
    grads = jax.tree_util.tree_map(jnp.zeros_like, coef)
    if need.step:
        gvf = gv * res.f
        if res.u is None:
            grads = grads._replace(step=gvf.sum(rows))
        else:
            d_step = (gvf * (1.0 + coef.spread * (res.u - 1.0))).sum(rows)
            grads = grads._replace(step=d_step, spread=(gvf * coef.step * (res.u - 1.0)).sum())
    if need.noise and res.xi is not None:
        gxi = gv * res.xi
        grads = grads._replace(noise_add=gxi.sum(rows))
        if coef.noise_mult is not None:
            grads = grads._replace(noise_mult=(gxi * h).sum(rows))
    return grads


def _chunk_backward(ctx: _Ctx, Kt: ArrayLike, need: _Need, carry: _Grads, c: _Chunk, res):
    """Reverse one chunk: ``g`` at its end -> ``g`` at its start; add its gradients."""
    H = res.hT.shape[0]
    coef = ctx.coef
    step = partial(_step_back, ctx, Kt, need)
    g, (dg_c, gv_c) = jax.lax.scan(step, carry.g, (c.ks, res.a, res.xi, res.u), reverse=True)
    delta_c = dg_c[..., :H]
    # contractions over the chunk's rows (c, b) in the operands' memory order: no transposes
    rows = (((1, 2), (0, 1)), ((), ()))
    lead = (((0, 1), (0, 1)), ((), ()))
    dK = carry.K + jax.lax.dot_general(res.hT, dg_c, rows)
    dU = carry.U + jax.lax.dot_general(c.x, delta_c, lead).T
    db = carry.b + delta_c.sum((0, 1))
    h_c = jnp.transpose(res.hT, (1, 2, 0)) if need.xi or need.dxi else None
    dcoef = carry.coef
    if need.coef:
        dcoef = jax.tree_util.tree_map(jnp.add, dcoef, _coef_grads(coef, res, gv_c, h_c, need))
    dx = jnp.einsum("cbh,hi->cbi", delta_c, ctx.w.U) if need.dx else None
    dxi = gv_c * noise_scale(coef, h_c) if need.dxi else None
    du = gv_c * res.f * coef.step * coef.spread if need.du else None
    return _Grads(g, dK, dU, db, dcoef), (dx, dxi, du)


def _chunks(xs, noise: Noise, plan: Plan) -> _Chunk:
    """The per-step inputs grouped ``(n_chunks, C, ...)``."""
    ks = jnp.arange(xs.shape[0], dtype=jnp.int32)
    c = _Chunk(ks, xs, noise.xi, noise.u)
    return jax.tree_util.tree_map(lambda a: a.reshape(-1, plan.chunk, *a.shape[1:]), c)


def _forward(ctx: _Ctx, xs: ArrayLike, h0: ArrayLike, need: _Need | None):
    """The outer scan over chunks; with ``need``, each chunk's residuals (or, with remat, its
    first state) are stored for the backward pass."""
    store = need is not None

    def chunk(h, c):
        h_end, res = _chunk_forward(ctx, h, c, None if ctx.plan.remat else need)
        if not store:
            return h_end, None
        return h_end, (h if ctx.plan.remat else res)

    return jax.lax.scan(chunk, h0, _chunks(xs, ctx.noise, ctx.plan))


# --------------------------------------------------------------------------------------------
# rows split over a mesh: one shard_map for the forward pass, one for the backward pass


def _rows(plan: Plan, a, axis: int):
    """The ``PartitionSpec`` of an array whose axis ``axis`` holds the rows: the rows over the
    mesh's one axis (``None`` for an absent array, or without a mesh)."""
    if a is None or plan.mesh is None:
        return None
    return P(*([None] * axis), *plan.mesh.axis_names)


def _input_specs(plan: Plan, xs, h, noise: Noise, lengths) -> tuple:
    """Specs of ``(w, coef, xs, h, noise, lengths)``: weights, coefficients and key replicated."""
    key = None if noise.key is None else P()
    noise_specs = Noise(_rows(plan, noise.xi, 1), _rows(plan, noise.u, 1), key)
    return P(), P(), _rows(plan, xs, 1), _rows(plan, h, 0), noise_specs, _rows(plan, lengths, 0)


def _stored_specs(plan: Plan, stored):
    if plan.remat:  # each chunk's first state (n_chunks, B, H)
        return _rows(plan, stored, 1)
    return _Residuals(*(_rows(plan, a, 3 if i == 0 else 2) for i, a in enumerate(stored)))


def _on_rows(plan: Plan, batch: int, fn, in_specs, out_specs):
    """``fn(first_row, *args)``: with ``plan.mesh``, on each device's rows under ``shard_map``
    (``first_row``: the global index of the device's first row of the ``batch``); else on all
    rows (``first_row = None``)."""
    if plan.mesh is None:
        return partial(fn, None)
    per_device = batch // plan.mesh.axis_sizes[0]

    def local(*args):
        return fn(jax.lax.axis_index(plan.mesh.axis_names[0]) * per_device, *args)

    return jax.shard_map(
        local, mesh=plan.mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False
    )


# --------------------------------------------------------------------------------------------
# the kernel: custom_vjp


@partial(jax.custom_vjp, nondiff_argnums=(6,))
def _kernel(w, coef, xs, h0, noise, lengths, plan):
    def run(first_row, w, coef, xs, h0, noise, lengths):
        ctx = _Ctx(w, coef, noise, lengths, plan, first_row)
        return _forward(ctx, xs, h0, None)[0]

    specs = _input_specs(plan, xs, h0, noise, lengths)
    on_rows = _on_rows(plan, h0.shape[0], run, specs, _rows(plan, h0, 0))
    return on_rows(w, coef, xs, h0, noise, lengths)


def _perturbed(tree) -> bool:
    return any(leaf.perturbed for leaf in jax.tree_util.tree_leaves(tree))


def _kernel_fwd(w, coef, xs, h0, noise, lengths, plan):
    need = _Need(
        step=_perturbed((coef.step, coef.spread)),
        noise=_perturbed((coef.noise_add, coef.noise_mult)),
        dx=_perturbed(xs),
        dxi=noise.key is None and noise.xi is not None and noise.xi.perturbed,
        du=noise.key is None and noise.u is not None and noise.u.perturbed,
        mult=coef.noise_mult is not None,
    )
    args = jax.tree_util.tree_map(lambda p: p.value, (w, coef, xs, h0, noise, lengths))
    w, coef, xs, h0, noise, lengths = args

    def run(first_row, w, coef, xs, h0, noise, lengths):
        ctx = _Ctx(w, coef, noise, lengths, plan, first_row)
        return _forward(ctx, xs, h0, need)

    out_specs = None
    if plan.mesh is not None:  # the residuals keep their rows on their device
        stored = jax.eval_shape(partial(run, None), *args)[1]
        out_specs = (_rows(plan, h0, 0), _stored_specs(plan, stored))
    specs = _input_specs(plan, xs, h0, noise, lengths)
    h_T, stored = _on_rows(plan, h0.shape[0], run, specs, out_specs)(*args)
    ctx = _Ctx(w, coef, noise, lengths, None)  # the plan is static
    return h_T, _Saved(ctx, xs, stored, need)


def _backward(plan: Plan, need: _Need, first_row, ctx: _Ctx, xs, stored, g_T):
    """The reverse pass over this program's rows: ``(grads, dx, dxi, du)``; with a mesh, the
    weight and coefficient gradients summed over the devices (once, after the last chunk)."""
    ctx = ctx._replace(plan=plan, first_row=first_row)
    w, coef = ctx.w, ctx.coef
    Kt = w.K.T  # the backward's matmul operand, transposed once for all chunks

    def chunk_back(carry, inp):
        c, kept = inp
        if plan.remat:  # recompute the chunk from its first state (drawing its noise again)
            _, kept = _chunk_forward(ctx, kept, c, need)
        return _chunk_backward(ctx, Kt, need, carry, c, kept)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, (w.K, w.U, w.b))
    dcoef0 = jax.tree_util.tree_map(jnp.zeros_like, coef) if need.coef else None
    grads, per_step = jax.lax.scan(
        chunk_back,
        _Grads(g_T, *zeros, dcoef0),
        (_chunks(xs, ctx.noise, plan), stored),
        reverse=True,
    )
    if plan.mesh is not None:
        grads = _Grads(grads.g, *jax.lax.psum(grads[1:], plan.mesh.axis_names[0]))
    flat = lambda a: None if a is None else a.reshape(-1, *a.shape[2:])  # noqa: E731
    return grads, *(flat(a) for a in per_step)


def _kernel_bwd(plan, saved: _Saved, g_T):
    ctx, xs, stored, need = saved
    if isinstance(g_T, SymbolicZero):
        g_T = jnp.zeros(g_T.shape, g_T.dtype)
    w_s, coef_s, xs_s, rows, noise_s, lengths_s = _input_specs(
        plan, xs, g_T, ctx.noise, ctx.lengths
    )
    in_specs = (
        _Ctx(w_s, coef_s, noise_s, lengths_s, None),
        xs_s,
        _stored_specs(plan, stored),
        rows,
    )
    grad_specs = _Grads(rows, P(), P(), P(), P() if need.coef else None)
    per_step = (xs_s if need.dx else None, noise_s.xi if need.dxi else None,
                noise_s.u if need.du else None)  # fmt: skip
    on_rows = _on_rows(plan, g_T.shape[0], partial(_backward, plan, need), in_specs,
                       (grad_specs, *per_step))  # fmt: skip
    grads, dx, dxi, du = on_rows(ctx, xs, stored, g_T)
    return Weights(grads.K, grads.U, grads.b), grads.coef, dx, grads.g, Noise(dxi, du, None), None


_kernel.defvjp(_kernel_fwd, _kernel_bwd, symbolic_zeros=True)


def default_chunk(time: int) -> int:
    """Chunk length without remat: ``T`` itself up to 32 steps, else the divisor of ``T`` in
    ``[8, 32]`` closest to 16 (no padded steps), else 16."""
    if time <= 32:
        return max(time, 1)
    divisors = [c for c in range(8, 33) if time % c == 0]
    return min(divisors, key=lambda c: abs(c - 16)) if divisors else 16


def chunk_plan(time: int, remat: int | None) -> tuple[int, int]:
    """``(chunk, padded_steps)``: the one chunking plan of the package (kernel and plain scan)."""
    chunk = default_chunk(time) if remat is None else remat
    return chunk, (-time) % chunk


def fused_final_state(
    w: Weights,
    coef: Coefficients,
    xs: Float[ArrayLike, "time batch input"],
    h0: Float[ArrayLike, "batch hidden"],
    noise: Noise,
    lengths: Int[ArrayLike, " batch"] | None,
    *,
    uses: Uses,
    remat: int | None,
) -> Float[Array, "batch hidden"]:
    """``h_T`` of the recursion in the module docstring, differentiable by reverse mode.

    Arguments:
        w: the :class:`Weights`; coef: the update's coefficients (``noisy_dyn._step``).
        xs: inputs, time-major; h0: the initial states.
        noise: given time-major draws or a key (``uses`` says which draws a key gives).
        lengths: valid steps per row (``None``: all ``T``); row ``r`` stops at ``lengths[r]``.
        remat: ``None`` (all residuals stored) or a chunk length for gradient checkpointing.
    """
    T, B = xs.shape[:2]
    chunk, pad = chunk_plan(T, remat)
    if pad:
        grow = lambda a: None if a is None else jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))  # noqa: E731
        xs = grow(xs)
        noise = Noise(grow(noise.xi), grow(noise.u), noise.key)
        lengths = jnp.full((B,), T, jnp.int32) if lengths is None else jnp.minimum(lengths, T)
    masked = lengths is not None
    if masked:
        lengths = jnp.asarray(lengths, jnp.int32)
    plan = Plan(chunk, remat is not None, uses, masked, _row_mesh(B, noise))
    return _kernel(w, coef, xs, h0, noise, lengths, plan)


def _row_mesh(batch: int, noise: Noise) -> AbstractMesh | None:
    """The mesh in context (``jax.set_mesh``) when the rows are to be split over it: one axis,
    of size > 1 dividing the batch, not already manual (inside a ``shard_map``), and noise that
    a device can draw for its own rows (given draws, or a threefry key)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or len(mesh.axis_names) != 1 or mesh.manual_axes:
        return None
    if mesh.axis_sizes[0] == 1 or batch % mesh.axis_sizes[0]:
        return None
    if noise.key is not None and "threefry" not in str(jax.random.key_impl(typed_key(noise.key))):
        return None
    return mesh
