"""The fast Ito Euler-Maruyama scan: fused matmuls, a hand-written backward pass, remat.

The Ito step of SPEC 1.2 for a row-batch of states ``h`` (shape ``(B, H)``, inputs ``x_k`` of
shape ``(B, I)``),

    h_{k+1} = h_k + dt (alpha A h_k + tanh(W h_k + U x_k + b))
              + sqrt(dt) (sigma_a + sigma_m h_k) ⊙ xi_k,

is evaluated as

    [p_k | z_k] = h_k [P | W^T],     P = I + dt alpha A^T     (one (B, H) x (H, 2H) matmul)
    a_k = tanh(z_k + x_k U^T + b)
    h_{k+1} = p_k + dt a_k + (s_a + s_m h_k) ⊙ xi_k,
    s_a = sqrt(dt) sigma_a,   s_m = sqrt(dt) sigma_m

(with ``alpha = 0`` the matmul is ``h_k W^T`` alone and ``p_k = h_k``).

Backward pass (reverse mode, derived by hand, checked against autodiff of a plain scan in
float64 by the tests). With the adjoint ``g_{k+1} = dL/dh_{k+1}`` and
``delta_k = dL/dz_k = dt g_{k+1} ⊙ (1 - a_k^2)``:

    g_k         = [g_{k+1} | delta_k] [P | W^T]^T + s_m g_{k+1} ⊙ xi_k
                  (one (B, 2H) x (2H, H) matmul)
    dL/d[P|W^T] += h_k^T [g_{k+1} | delta_k]
    dL/dU       += delta_k^T x_k,   dL/db += sum_batch delta_k
    dL/dxi_k    = g_{k+1} ⊙ (s_a + s_m h_k),   dL/dx_k = delta_k U

and ``dL/dA = dt alpha (dL/dP)^T``, ``dL/dW = (dL/dW^T)^T``.

Layout of the work (what makes it fast). The steps are grouped in chunks of ``C`` steps (``C =
remat``, or :func:`default_chunk` of ``T``; the time axis is padded to a multiple of ``C`` with
masked steps when needed); an outer ``lax.scan`` runs over chunks, an inner one over the steps
of a chunk.

- Per chunk, in bulk: the input drive ``x_k U^T + b`` and, in key mode, the normals of all ``C``
  steps (one vectorised draw).
- Per step, on the sequential path: forward one ``(B, H) x (H, 2H)`` matmul and one fused
  elementwise update; backward one ``(B, 2H) x (2H, H)`` matmul and one elementwise update,
  emitting ``[g_{k+1} | delta_k]``.
- Per chunk, after its backward steps: the weight gradients as contractions over the chunk's
  ``C B`` rows (``(H, C B) x (C B, 2H)`` for ``[P | W^T]``), at the dense-matmul rate instead of
  ``C`` small matmuls on the sequential path. The forward stores ``h_k`` transposed, ``(H, C,
  B)`` per chunk, so this contraction reads both operands without a transposed copy.

Residuals: ``h_k``, ``a_k`` and (key mode) ``xi_k`` of every step, or with ``remat`` only each
chunk's first state; the backward pass then recomputes the chunk (drawing its noise again) before
reversing through it (gradient checkpointing), so peak memory falls from ``O(T B H)`` to
``O((T / C + C) B H)``.

Noise: either a given array ``xi`` (time-major ``(T, B, H)``), or a PRNG key, in which case step
``k`` uses ``xi_k = draw(key, k, (B, H))``, by default :func:`step_normals`
(``standard_normal(fold_in(key, k), (B, H))``). Every operation is batch-parallel (the only
reductions over the batch are the weight-gradient contractions), so with the batch sharded over
several devices under ``jit`` each device runs its own rows and the partitioner adds one
all-reduce of the weight gradients per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._noise import _typed_key, standard_normal
from ._types import Key

# --------------------------------------------------------------------------------------------
# the default per-step noise


def step_normals(key: Key, k: int | Array, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """The normals ``xi_k`` of time step ``k``: ``standard_normal(fold_in(key, k), shape)``."""
    return standard_normal(jax.random.fold_in(_typed_key(key), k), shape, dtype)


def all_step_normals(
    key: Key, time: int, shape: tuple[int, ...], dtype=jnp.float32
) -> Float[Array, "time ..."]:
    """``xi_0 .. xi_{T-1}`` of :func:`step_normals` stacked time-major: ``(time, *shape)``.

    The same numbers the fused scan draws for the same key, so a solver fed this array sees
    exactly the noise of the key path.
    """
    ks = jnp.arange(time, dtype=jnp.uint32)
    return jax.vmap(lambda k: step_normals(key, k, shape, dtype))(ks)


# --------------------------------------------------------------------------------------------
# the fused scan


class _Static(NamedTuple):
    dt: float
    alpha: float
    s_a: float
    s_m: float
    noise: str  # "none" | "array" | "key"
    draw: Callable | None  # key mode: draw(key, k, shape, dtype) -> xi_k
    chunk: int  # steps per chunk; the time axis is padded to a multiple of it
    remat: bool  # store only each chunk's first state, recompute the chunk in the backward pass
    length: int  # true number of steps T

    @property
    def padded(self) -> bool:
        return self.length % self.chunk != 0


def _weights(A, W, st):
    if st.alpha == 0.0:
        return W.T
    P = jnp.eye(A.shape[0], dtype=A.dtype) + (st.dt * st.alpha) * A.T
    return jnp.concatenate([P, W.T], axis=1)


def _chunk_forward(PW, U, b, noise, st, h, chunk_inputs, collect):
    """Steps of one chunk from its first state ``h``; returns ``h_end`` and, when ``collect``,
    the residuals of its steps: the states transposed, ``hT[:, i, :] = h_{k_i}^T`` of shape
    ``(H, C, B)`` (the layout the weight-gradient contraction reads without a transpose), the
    activations ``a_k`` ``(C, B, H)`` and the normals ``xi_k`` ``(C, B, H)``.

    The input drive ``x_k U^T + b`` and (key mode) the normals of all steps of the chunk are
    formed in bulk before the chunk's step loop, which holds one matmul and one fused
    elementwise update per step.
    """
    ks, x_c, xi_c = chunk_inputs
    B, H = h.shape
    C = ks.shape[0]
    drive = jnp.einsum("cbi,hi->cbh", x_c, U) + b
    if st.noise == "key":
        xi_c = jax.vmap(lambda k: st.draw(noise, k, h.shape, h.dtype))(ks)

    def step(carry, inp):
        h, hT = carry
        i, k, drive_k, xi_k = inp
        pz = h @ PW
        p, z = (h, pz) if st.alpha == 0.0 else (pz[:, :H], pz[:, H:])
        a = jnp.tanh(z + drive_k)
        h_next = p + st.dt * a
        if st.noise != "none":
            h_next = h_next + (st.s_a + st.s_m * h) * xi_k
        if st.padded:  # padded steps (k >= T) leave h unchanged
            h_next = jnp.where(k < st.length, h_next, h)
        if collect:
            hT = jax.lax.dynamic_update_slice_in_dim(hT, h.T[:, None, :], i, axis=1)
        return (h_next, hT), (a if collect else None)

    hT0 = jnp.zeros((H, C, B), h.dtype) if collect else None
    steps = jnp.arange(C, dtype=jnp.int32)
    (h_end, hT_c), a_c = jax.lax.scan(step, (h, hT0), (steps, ks, drive, xi_c))
    return h_end, ((hT_c, a_c, xi_c) if collect else None)


def _chunk_backward(PWt, U, st, carry, chunk):
    """Reverse one chunk: ``g`` at its end -> ``g`` at its start; add its weight gradients.

    The step loop carries only the adjoint ``g`` (one matmul per step) and emits
    ``[g_{k+1} | delta_k]``; the weight gradients of the chunk are then one
    ``(H, C B) x (C B, 2H)`` contraction, which runs at the dense-matmul rate (multi-threaded on
    CPU) instead of as ``C`` small matmuls on the sequential path.
    """
    g, dPW, dU, db = carry
    ks, x_c, hT_c, a_c, xi_c = chunk
    H = hT_c.shape[0]

    def step(g, inp):
        k, a_k, xi_k = inp
        delta = st.dt * g * (1.0 - a_k * a_k)
        if st.padded:
            delta = jnp.where(k < st.length, delta, jnp.zeros_like(delta))
        gd = jnp.concatenate([g, delta], axis=-1)
        g_prev = g + delta @ PWt if st.alpha == 0.0 else gd @ PWt
        if st.noise != "none":
            g_prev = g_prev + st.s_m * g * xi_k
        if st.padded:
            g_prev = jnp.where(k < st.length, g_prev, g)
        return g_prev, gd

    g, gd_c = jax.lax.scan(step, g, (ks, a_c, xi_c), reverse=True)
    if st.padded:
        gd_c = jnp.where((ks < st.length)[:, None, None], gd_c, jnp.zeros_like(gd_c))
    g_next_c, delta_c = gd_c[..., :H], gd_c[..., H:]
    # Contractions over the chunk's rows (c, b), listed in the operands' memory order so that XLA
    # reads (H, C, B) and (C, B, n) as (H, C B) and (C B, n) without transposed copies.
    rows = (((1, 2), (0, 1)), ((), ()))
    lead = (((0, 1), (0, 1)), ((), ()))
    wgrad = jax.lax.dot_general(hT_c, delta_c if st.alpha == 0.0 else gd_c, rows)
    ugrad = jax.lax.dot_general(x_c, gd_c, lead)[:, -H:].T  # (H, I): delta^T x
    carry = (
        g,
        dPW + wgrad,  # [h^T g | h^T delta], or h^T delta when alpha = 0
        dU + ugrad,
        db + gd_c.sum((0, 1))[-H:],
    )
    dx_c = jnp.einsum("cbh,hi->cbi", delta_c, U)
    dxi_c = None
    if st.noise == "array":
        dxi_c = g_next_c * (st.s_a + st.s_m * jnp.transpose(hT_c, (1, 2, 0)))
    return carry, (dx_c, dxi_c)


def _chunk_inputs(x, noise, st):
    """Per-step inputs ``(k, x_k, xi_k)`` grouped ``(n_chunks, C, ...)``."""
    ks = jnp.arange(x.shape[0], dtype=jnp.uint32)
    xi = noise if st.noise == "array" else None
    return jax.tree_util.tree_map(lambda a: a.reshape(-1, st.chunk, *a.shape[1:]), (ks, x, xi))


def _forward(A, W, U, b, x, noise, h0, st, store):
    PW = _weights(A, W, st)
    collect = store and not st.remat

    def chunk(h, inp):
        h_end, res = _chunk_forward(PW, U, b, noise, st, h, inp, collect)
        if not store:
            return h_end, None
        if st.remat:
            return h_end, h  # the chunk's first state only
        hT_c, a_c, xi_c = res
        return h_end, (hT_c, a_c, xi_c if st.noise == "key" else None)

    return jax.lax.scan(chunk, h0, _chunk_inputs(x, noise, st))


@partial(jax.custom_vjp, nondiff_argnums=(7,))
def _fused_scan(A, W, U, b, x, noise, h0, st):
    return _forward(A, W, U, b, x, noise, h0, st, store=False)[0]


def _fused_scan_fwd(A, W, U, b, x, noise, h0, st):
    h_T, stored = _forward(A, W, U, b, x, noise, h0, st, store=True)
    return h_T, (A, W, U, b, x, noise, stored)


def _fused_scan_bwd(st, res, g_T):
    A, W, U, b, x, noise, stored = res
    PW = _weights(A, W, st)
    PWt = PW.T  # the backward's matmul operand, transposed once for all chunks

    def chunk_back(carry, inp):
        chunk_inputs, kept = inp
        ks, x_c, xi_given = chunk_inputs
        if st.remat:  # recompute the chunk from its first state (and draw its noise again)
            _, (hT_c, a_c, xi_c) = _chunk_forward(PW, U, b, noise, st, kept, chunk_inputs, True)
        else:
            hT_c, a_c, xi_c = kept
        if st.noise == "array":
            xi_c = xi_given
        return _chunk_backward(PWt, U, st, carry, (ks, x_c, hT_c, a_c, xi_c))

    zeros = (jnp.zeros_like(PW), jnp.zeros_like(U), jnp.zeros_like(b))
    (g0, dPW, dU, db), (dx, dxi) = jax.lax.scan(
        chunk_back, (g_T, *zeros), (_chunk_inputs(x, noise, st), stored), reverse=True
    )
    dx = dx.reshape(-1, *dx.shape[2:])
    H = PW.shape[0]
    if st.alpha == 0.0:
        dA, dW = jnp.zeros_like(A), dPW.T
    else:
        dA, dW = (st.dt * st.alpha) * dPW[:, :H].T, dPW[:, H:].T
    if st.noise == "array":
        dnoise = dxi.reshape(-1, *dxi.shape[2:])
    elif st.noise == "key":
        dnoise = np.zeros(noise.shape, dtype=jax.dtypes.float0)
    else:
        dnoise = jnp.zeros_like(noise)
    return dA, dW, dU, db, dx, dnoise, g0


_fused_scan.defvjp(_fused_scan_fwd, _fused_scan_bwd)


def default_chunk(time: int) -> int:
    """Chunk length of the fused scan without remat: ``T`` itself up to 32 steps, else the
    divisor of ``T`` in ``[8, 32]`` closest to 16 (no padded steps), else 16."""
    if time <= 32:
        return max(time, 1)
    divisors = [c for c in range(8, 33) if time % c == 0]
    return min(divisors, key=lambda c: abs(c - 16)) if divisors else 16


def ito_final_state(
    A: Float[ArrayLike, "hidden hidden"],
    W: Float[ArrayLike, "hidden hidden"],
    U: Float[ArrayLike, "hidden input"],
    b: Float[ArrayLike, " hidden"],
    xs: Float[ArrayLike, "time batch input"],
    h0: Float[ArrayLike, "batch hidden"],
    *,
    dt: float,
    alpha: float,
    sigma_add: float = 0.0,
    sigma_mult: float = 0.0,
    xi: Float[ArrayLike, "time batch hidden"] | None = None,
    key: Key | None = None,
    draw: Callable | None = None,
    remat: int | None = None,
) -> Float[Array, "batch hidden"]:
    """Final state ``h_T`` of the Ito Euler-Maruyama recursion, with a hand-written backward.

    Computes, for ``k = 0..T-1``,
    ``h_{k+1} = h_k + dt (alpha A h_k + tanh(W h_k + U x_k + b)) + sqrt(dt) (sigma_add +
    sigma_mult h_k) ⊙ xi_k`` (SPEC 1.2, Ito form) as a scan over chunks of steps with one fused
    ``(B, H) x (H, 2H)`` matmul per step, differentiable in ``A, W, U, b, h0`` (and ``xi``) through
    a ``jax.custom_vjp`` whose backward pass is a reverse scan with one fused matmul per step and
    the weight gradients contracted per chunk (derivation and layout in the module docstring). The
    same arithmetic as the plain scan, up to floating-point reassociation.

    Arguments:
        A, W: the ``H x H`` matrices of SPEC 1.1 (already structured by ``lipschitz_matrix``).
        U, b: input weights ``(H, I)`` and bias ``(H,)``.
        xs: inputs, time-major ``(T, B, I)``.
        h0: initial state ``(B, H)``.
        dt: step size; alpha: weight of the linear term; sigma_add, sigma_mult: diffusion.
        xi: standard normals, time-major ``(T, B, H)``; or
        key: a PRNG key: step ``k`` uses ``draw(key, k, (B, H), dtype)``, drawn for a whole chunk
            of steps at once (give at most one of ``xi`` and ``key``; neither means no noise).
        draw: the per-step sampler of the key mode (default :func:`step_normals`); it is
            vectorised over ``k`` with ``jax.vmap``, called again in the backward pass (with
            remat) and must be a pure function of ``(key, k)``.
        remat: ``None`` (chunks of :func:`default_chunk` steps, all residuals stored) or a chunk
            length ``N >= 1`` for gradient checkpointing (only each chunk's first state stored).

    Returns:
        ``h_T`` of shape ``(B, H)``.
    """
    A, W, U, b, xs, h0 = (jnp.asarray(a) for a in (A, W, U, b, xs, h0))
    if xs.ndim != 3 or h0.ndim != 2 or h0.shape[0] != xs.shape[1]:
        raise ValueError(
            "ito_final_state: expected xs of shape (time, batch, input) and h0 of shape "
            f"(batch, hidden) with the same batch; got xs {xs.shape}, h0 {h0.shape}."
        )
    T, B, n_in = xs.shape
    H = h0.shape[1]
    if A.shape != (H, H) or W.shape != (H, H) or U.shape != (H, n_in) or b.shape != (H,):
        raise ValueError(
            f"ito_final_state: expected A, W ({H}, {H}), U ({H}, {n_in}), b ({H},) to match h0 and "
            f"xs; got {A.shape}, {W.shape}, {U.shape}, {b.shape}."
        )
    if xi is not None and key is not None:
        raise ValueError("ito_final_state: pass at most one of xi (an array) and key.")
    if remat is not None and (isinstance(remat, bool) or not isinstance(remat, int) or remat < 1):
        raise ValueError(f"ito_final_state: remat must be None or an int >= 1, got {remat!r}.")
    noisy = sigma_add != 0.0 or sigma_mult != 0.0
    dtype = jnp.result_type(A, W, U, b, xs, h0)
    A, W, U, b, xs, h0 = (a.astype(dtype) for a in (A, W, U, b, xs, h0))
    if xi is not None and noisy:
        xi = jnp.asarray(xi).astype(dtype)
        if xi.shape != (T, B, H):
            raise ValueError(f"ito_final_state: xi must have shape {(T, B, H)}, got {xi.shape}.")
        mode, noise = "array", xi
    elif key is not None and noisy:
        mode, noise = "key", _typed_key(key)
    else:
        mode, noise = "none", jnp.zeros((), dtype)
    chunk = default_chunk(T) if remat is None else remat
    pad = (-T) % chunk
    if pad:
        xs = jnp.concatenate([xs, jnp.zeros((pad, B, n_in), dtype)], axis=0)
        if mode == "array":
            noise = jnp.concatenate([noise, jnp.zeros((pad, B, H), dtype)], axis=0)
    root = float(np.sqrt(dt))
    st = _Static(
        float(dt),
        float(alpha),
        root * float(sigma_add),
        root * float(sigma_mult),
        mode,
        (draw or step_normals) if mode == "key" else None,
        chunk,
        remat is not None,
        T,
    )
    return _fused_scan(A, W, U, b, xs, noise, h0, st)
