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

and ``dL/dA = dt alpha (dL/dP)^T``, ``dL/dW = (dL/dW^T)^T``. The forward scan stores ``h_k`` and
``a_k`` (no recomputation); the backward is one reverse ``lax.scan`` with two fused matmuls per
step and the weight gradients accumulated in its carry, so no ``(T, B, 2H)`` array is written.
The input drive ``x_k U^T + b`` is formed inside the step: for the pixel-sequence inputs of the
paper (``I = 1``) a precomputed ``(T, B, H)`` drive array costs more memory traffic than the rank-1
update it saves.

Noise: either a given array ``xi`` (time-major ``(T, B, H)``), or a PRNG key, in which case step
``k`` uses ``xi_k = standard_normal(fold_in(key, k), (B, H))`` (:func:`step_normals`), drawn
inside the scan and drawn again in the backward pass instead of being stored when ``remat`` is
on. With ``remat = N`` only every ``N``-th state is stored; the backward pass recomputes each
chunk of ``N`` steps before reversing through it (gradient checkpointing), so peak memory falls
from ``O(T B H)`` to ``O((T / N + N) B H)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._types import Key

# --------------------------------------------------------------------------------------------
# Gaussian noise


def _as_typed_key(key: Key) -> Array:
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(key, dtype=jnp.uint32))


def standard_normal(key: Key, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """Independent standard normals of the given shape from a PRNG key.

    ``xi = sqrt(2) erfinv(u)`` with ``u`` uniform on ``(-1, 1)`` built from the top 23 bits of a
    32-bit word, exactly the transform of ``jax.random.normal``. For threefry keys (JAX's default)
    the words come from Threefry-2x32-20 applied to *pairs* of counters (two words per hash call,
    half the hashing work of JAX's default partitionable layout: about 2x faster on CPU, the same
    generator and statistical quality, but a different stream than ``jax.random.normal``). Keys of
    other implementations (``rbg``, ``unsafe_rbg``) use ``jax.random.normal``.

    Arguments:
        key: a PRNG key (typed ``jax.random.key`` or raw ``jax.random.PRNGKey``).
        shape: output shape.
        dtype: floating output dtype (default float32).

    Returns:
        Array of ``shape`` and ``dtype`` with i.i.d. ``N(0, 1)`` entries.
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"standard_normal: dtype must be a floating dtype, got {dtype}.")
    key = _as_typed_key(key)
    n = int(np.prod(shape, dtype=np.int64))
    if "threefry" not in str(jax.random.key_impl(key)) or n == 0 or n >= 2**31:
        return jax.random.normal(key, shape, dtype)
    from jax.extend.random import threefry_2x32

    data = jax.random.key_data(key)
    bits = threefry_2x32((data[0], data[1]), jax.lax.iota(np.uint32, n))
    # top 23 bits -> mantissa of a float in [1, 2), minus 1 -> [0, 1), as jax.random.uniform.
    u = jax.lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), np.float32) - 1.0
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
    u = jnp.maximum(lo, u * (np.float32(1.0) - lo) + lo)  # uniform on [lo, 1)
    return (np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)).astype(dtype).reshape(shape)


def step_normals(key: Key, k: int | Array, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """The normals ``xi_k`` of time step ``k``: ``standard_normal(fold_in(key, k), shape)``."""
    return standard_normal(jax.random.fold_in(_as_typed_key(key), k), shape, dtype)


def all_step_normals(
    key: Key, time: int, shape: tuple[int, ...], dtype=jnp.float32
) -> Float[Array, "time ..."]:
    """``xi_0 .. xi_{T-1}`` of :func:`step_normals` stacked time-major: ``(time, *shape)``.

    The same numbers the fused scan draws inside its loop for the same key, so a solver fed this
    array sees exactly the noise of the key path.
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
    remat: int | None
    length: int  # true number of steps T (the time axis may be padded to a multiple of remat)


def _weights(A, W, st):
    if st.alpha == 0.0:
        return W.T
    P = jnp.eye(A.shape[0], dtype=A.dtype) + (st.dt * st.alpha) * A.T
    return jnp.concatenate([P, W.T], axis=1)


def _xi_at(noise, k, xi_k, shape, dtype, st):
    if st.noise == "key":
        return st.draw(noise, k, shape, dtype)
    return xi_k


def _step_fwd(PW, U, b, noise, st, h, inp):
    """One step; returns ``h_{k+1}`` and the residuals ``(h_k, a_k, xi_k)``."""
    k, x_k, xi_k = inp
    H = h.shape[-1]
    pz = h @ PW
    if st.alpha == 0.0:
        p, z = h, pz
    else:
        p, z = pz[:, :H], pz[:, H:]
    a = jnp.tanh(z + x_k @ U.T + b)
    h_next = p + st.dt * a
    if st.noise != "none":
        xi_k = _xi_at(noise, k, xi_k, h.shape, h.dtype, st)
        h_next = h_next + (st.s_a + st.s_m * h) * xi_k
    if st.length % (st.remat or 1):  # padded steps (k >= T) leave h unchanged
        h_next = jnp.where(k < st.length, h_next, h)
    return h_next, (h, a, xi_k if st.noise == "key" else None)


def _step_bwd(PW, U, st, carry, inp):
    """Reverse one step: ``g_{k+1} -> g_k`` and accumulate the weight gradients."""
    g, dPW, dU, db = carry
    k, x_k, h_k, a_k, xi_k = inp
    delta = st.dt * g * (1.0 - a_k * a_k)
    if st.length % (st.remat or 1):
        delta = jnp.where(k < st.length, delta, jnp.zeros_like(delta))
    if st.alpha == 0.0:
        gd = delta
        g_prev = g + delta @ PW.T
    else:
        gd = jnp.concatenate([g, delta], axis=-1)
        if st.length % (st.remat or 1):
            gd = jnp.where(k < st.length, gd, jnp.zeros_like(gd))
        g_prev = gd @ PW.T
        if st.length % (st.remat or 1):
            g_prev = jnp.where(k < st.length, g_prev, g)
    dx_k = delta @ U
    dxi = None
    if st.noise != "none":
        noise_grad = st.s_m * g * xi_k
        if st.length % (st.remat or 1):
            noise_grad = jnp.where(k < st.length, noise_grad, jnp.zeros_like(noise_grad))
        g_prev = g_prev + noise_grad
        if st.noise == "array":
            dxi = g * (st.s_a + st.s_m * h_k)
    carry = (g_prev, dPW + h_k.T @ gd, dU + delta.T @ x_k, db + delta.sum(0))
    return carry, (dx_k, dxi)


def _per_step_inputs(x, noise, st):
    ks = jnp.arange(x.shape[0], dtype=jnp.uint32)
    xi = noise if st.noise == "array" else None
    return ks, x, xi


def _chunked(tree, n):
    return jax.tree_util.tree_map(lambda a: a.reshape(-1, n, *a.shape[1:]), tree)


def _forward(A, W, U, b, x, noise, h0, st, store):
    PW = _weights(A, W, st)
    step = partial(_step_fwd, PW, U, b, noise, st)
    inputs = _per_step_inputs(x, noise, st)
    if st.remat is None:
        if store:
            return jax.lax.scan(step, h0, inputs)
        return jax.lax.scan(lambda h, i: (step(h, i)[0], None), h0, inputs)[0], None

    def chunk(h, inp):
        h_end, _ = jax.lax.scan(lambda c, i: (step(c, i)[0], None), h, inp)
        return h_end, h  # store the chunk's first state only

    h_T, starts = jax.lax.scan(chunk, h0, _chunked(inputs, st.remat))
    return h_T, (starts if store else None)


@partial(jax.custom_vjp, nondiff_argnums=(7,))
def _fused_scan(A, W, U, b, x, noise, h0, st):
    return _forward(A, W, U, b, x, noise, h0, st, store=False)[0]


def _fused_scan_fwd(A, W, U, b, x, noise, h0, st):
    h_T, res = _forward(A, W, U, b, x, noise, h0, st, store=True)
    if st.remat is None:
        hs, acts, xis = res
        if st.noise == "array":
            xis = None  # the input array itself is a residual
        return h_T, (A, W, U, b, x, noise, h0, hs, acts, xis)
    return h_T, (A, W, U, b, x, noise, h0, res, None, None)


def _fused_scan_bwd(st, res, g_T):
    A, W, U, b, x, noise, h0, hs, acts, xis = res
    PW = _weights(A, W, st)
    zeros = (jnp.zeros_like(PW), jnp.zeros_like(U), jnp.zeros_like(b))
    back = partial(_step_bwd, PW, U, st)
    ks, xs, xi_in = _per_step_inputs(x, noise, st)
    if st.remat is None:
        xi_seq = xi_in if st.noise == "array" else xis
        (g0, dPW, dU, db), (dx, dxi) = jax.lax.scan(
            back, (g_T, *zeros), (ks, xs, hs, acts, xi_seq), reverse=True
        )
    else:
        step = partial(_step_fwd, PW, U, b, noise, st)

        def chunk_back(carry, inp):
            h_start, chunk_inputs = inp
            _, (h_c, a_c, xi_c) = jax.lax.scan(step, h_start, chunk_inputs)
            kc, xc, xi_given = chunk_inputs
            xi_c = xi_c if st.noise == "key" else xi_given
            return jax.lax.scan(back, carry, (kc, xc, h_c, a_c, xi_c), reverse=True)

        chunks = _chunked((ks, xs, xi_in), st.remat)
        (g0, dPW, dU, db), (dx, dxi) = jax.lax.scan(
            chunk_back, (g_T, *zeros), (hs, chunks), reverse=True
        )
        dx = dx.reshape(-1, *dx.shape[2:])
        if dxi is not None:
            dxi = dxi.reshape(-1, *dxi.shape[2:])
    H = PW.shape[0]
    if st.alpha == 0.0:
        dA, dW = jnp.zeros_like(A), dPW.T
    else:
        dA, dW = (st.dt * st.alpha) * dPW[:, :H].T, dPW[:, H:].T
    if st.noise == "array":
        dnoise = dxi
    elif st.noise == "key":
        dnoise = np.zeros(noise.shape, dtype=jax.dtypes.float0)
    else:
        dnoise = jnp.zeros_like(noise)
    return dA, dW, dU, db, dx, dnoise, g0


_fused_scan.defvjp(_fused_scan_fwd, _fused_scan_bwd)


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
    sigma_mult h_k) ⊙ xi_k`` (SPEC 1.2, Ito form) as one ``lax.scan`` with one fused
    ``(B, H) x (H, 2H)`` matmul per step, differentiable in ``A, W, U, b, h0`` (and ``xi``) through
    a ``jax.custom_vjp`` whose backward pass is a reverse scan with fused matmuls (derivation in the
    module docstring). The same arithmetic as the plain scan, up to floating-point reassociation.

    Arguments:
        A, W: the ``H x H`` matrices of SPEC 1.1 (already structured by ``lipschitz_matrix``).
        U, b: input weights ``(H, I)`` and bias ``(H,)``.
        xs: inputs, time-major ``(T, B, I)``.
        h0: initial state ``(B, H)``.
        dt: step size; alpha: weight of the linear term; sigma_add, sigma_mult: diffusion.
        xi: standard normals, time-major ``(T, B, H)``; or
        key: a PRNG key: step ``k`` draws ``draw(key, k, (B, H), dtype)`` inside the loop (give
            at most one of ``xi`` and ``key``; neither means no noise).
        draw: the per-step sampler of the key mode (default :func:`step_normals`); it is called
            again in the backward pass (with remat) and must be a pure function of ``(key, k)``.
        remat: ``None`` or a chunk length ``N >= 1`` for gradient checkpointing.

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
        mode, noise = "key", _as_typed_key(key)
    else:
        mode, noise = "none", jnp.zeros((), dtype)
    pad = 0 if remat is None else (-T) % remat
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
        remat,
        T,
    )
    return _fused_scan(A, W, U, b, xs, noise, h0, st)
