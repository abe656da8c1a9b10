"""Lyapunov exponents of the Noisy RNN along a driven path (QR method), per unit of time."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from trainkit import Sequences

from ._config import NoisyRNNConfig
from ._noise import needs_u, needs_xi
from ._params import check_params
from ._step import euler_maruyama_step, mean_step
from ._theory_common import (
    PER_UNIT,
    Brownian,
    as_brownian,
    check_theory_cfg,
    check_theory_xs,
)
from ._types import Key, Params


def lyapunov_exponents(
    params: Params,
    xs: Float[ArrayLike, "time input"] | Sequences,
    cfg: NoisyRNNConfig,
    *,
    k: int = 1,
    key: Key | None = None,
    brownian: Brownian | str = PER_UNIT,
    burn_in: int = 0,
    length: int | None = None,
) -> Float[Array, " k"]:
    """Top-``k`` Lyapunov exponents per unit time along the path driven by one sequence.

    QR method: ``Q_0`` a fixed generic orthonormal ``H x k`` frame, ``Jhat_k Q_k = Q_{k+1} R_{k+1}``
    with ``Jhat_k = d step / d h (h_k)`` (``jax.jacfwd`` of the one-step map), and
    ``lambda_j = sum_{k >= burn_in} log |(R_k)_{jj}| / ((T - burn_in) tau)``, sorted in
    decreasing order, with ``tau`` the mean time one step advances: the mean over units of the
    step ``d`` (``dt``, or the learned ``step``), times ``E[m_k] = 1 - sigma_mult / 2`` for the
    reference form with a key (its random step ``d m_k``). The first ``burn_in`` steps only align
    the frame; the estimate's bias is ``O(1 / ((T - burn_in) tau))``. With a key the
    step is the noisy one, so the Ito Jacobian includes the multiplicative-noise term
    ``sqrt(d) sigma_mult diag(xi_k)`` and the reference Jacobian the random step ``d m_k``.

    Arguments:
        params: Lipschitz-cell parameters.
        xs: one input sequence ``(time, input_size)``, or a :class:`trainkit.Sequences` holding
            one (its length used).
        cfg: the configuration.
        k: number of exponents (``1 <= k <= H``).
        key: PRNG key; ``None`` follows the noise-free path.
        brownian: ``PerUnitBrownian()`` (the library's noise: independent normals per unit) or
            ``ScalarBrownian()`` (one normal per step shared by all units: a scalar Brownian
            motion, the setting of the stochastic-stabilization bound ``mu - sigma_mult^2 / 2``;
            for the reference form one step factor per step). The names ``"unit"``,
            ``"scalar"`` still work, with a DeprecationWarning.
        burn_in: number of initial steps whose stretching is not counted (``0 <= burn_in < T``).
        length: the sequence's valid steps when ``xs`` is padded after them (``T = length``);
            ``None``: all of ``xs``.

    Returns:
        The exponents ``(k,)``, largest first, per unit of time.
    """
    fn = "lyapunov_exponents"
    if isinstance(xs, Sequences):
        if xs.size != 1 or length is not None:
            raise ValueError(f"{fn}: a Sequences must hold one sequence (got {xs.size}) and "
                             "carries its own length (no length=).")  # fmt: skip
        length = None if xs.lengths is None else int(np.asarray(xs.lengths)[0])
        xs = xs.inputs[0]
    cfg = check_theory_cfg(cfg, fn)
    check_params(params, cfg)
    xs = check_theory_xs(xs, cfg, fn, batched=False)
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, int | np.integer):
            raise TypeError(f"{fn}: length must be an int (the valid steps of xs), got {length!r}.")
        if not 1 <= length <= xs.shape[0]:
            raise ValueError(f"{fn}: length must lie in [1, {xs.shape[0]}], got {length}.")
        xs = xs[: int(length)]
    H = cfg.hidden_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= H:
        raise ValueError(f"{fn}: k must be an int in [1, hidden_size={H}], got {k!r}.")
    brownian = as_brownian(brownian, fn)
    time = xs.shape[0]
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or not 0 <= burn_in < time:
        raise ValueError(
            f"{fn}: burn_in must be an int in [0, time={time}), got {burn_in!r}; pass a longer xs."
        )
    return _lyapunov_jit(params, xs, cfg, key, k, brownian, burn_in)


@partial(jax.jit, static_argnames=("cfg", "k", "brownian", "burn_in"))
def _lyapunov_jit(
    params: Params,
    xs: ArrayLike,
    cfg: NoisyRNNConfig,
    key: Key | None,
    k: int,
    brownian: Brownian,
    burn_in: int,
) -> Array:
    H, time = cfg.hidden_size, xs.shape[0]
    dtype = jnp.result_type(xs.dtype, params["V"].dtype)
    width = brownian.width(H)
    if key is not None and not cfg.is_deterministic():
        k_xi, k_u = jax.random.split(key)
        xi = jax.random.normal(k_xi, (time, width), dtype) if needs_xi(cfg) else None
        u = jax.random.uniform(k_u, (time, width), dtype) if needs_u(cfg) else None
        noisy_cfg = cfg
    else:
        xi = u = None
        noisy_cfg = cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    xi = None if xi is None else jnp.broadcast_to(xi, (time, H))
    u = None if u is None else jnp.broadcast_to(u, (time, H))

    def one_step(h: Array, x: Array, xi_k: Array | None, u_k: Array | None) -> Array:
        return euler_maruyama_step(params, h, x, noisy_cfg, xi_k, u_k)

    q0, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(20210), (H, k), dtype))

    def body(carry: tuple[Array, Array, Array], inp: tuple) -> tuple:
        h, Q, acc = carry
        x, xi_k, u_k, counted = inp
        J = jax.jacfwd(one_step)(h, x, xi_k, u_k)
        Q_new, R = jnp.linalg.qr(J @ Q)
        acc = acc + counted * jnp.log(jnp.abs(jnp.diagonal(R)))
        return (one_step(h, x, xi_k, u_k), Q_new, acc), None

    counted = (jnp.arange(time) >= burn_in).astype(dtype)
    h0 = jnp.zeros((H,), dtype)
    carry0 = (h0, q0, jnp.zeros((k,), dtype))
    (_, _, acc), _ = jax.lax.scan(body, carry0, (xs.astype(dtype), xi, u, counted))
    tau = mean_step(params, noisy_cfg)  # with the noise off, the reference step is d itself
    return jnp.sort(acc / ((time - burn_in) * tau))[::-1]
