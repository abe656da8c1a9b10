"""The one update of the Noisy RNN, shared by every path (kernel, plain scan, theory).

Both noise forms (``docs/noisy_rnn.md``) are one recursion with per-unit coefficients,

    h_{k+1} = h_k + e_k ⊙ f(h_k, x_k) + (c_a + c_m ⊙ h_k) ⊙ xi_k,
    e_k = d ⊙ (1 + s (u_k - 1)),

where ``f(h, x) = lin + tanh(z)``, ``lin = alpha A h``, ``z = W h + U x + b``, ``d`` is the step
(``dt`` or the learned per-unit ``step``), and

- Ito form: ``s = 0`` (no ``u``), ``c_a = sqrt(|d|) sigma_add``, ``c_m = sqrt(|d|) sigma_mult``
  (Euler-Maruyama of ``dh = f dt + (sigma_add + sigma_mult diag(h)) dB``);
- reference form: ``s = sigma_mult`` (so ``m_k = 1 - sigma_mult + sigma_mult u_k ~
  U[1 - sigma_mult, 1)``), ``c_a = sigma_add``, ``c_m = 0`` (``None`` in
  :class:`Coefficients`: known to be absent, so no path stores or multiplies by it).

A row with ``k >= length`` keeps its state (``h_{k+1} = h_k``): padding after a sequence's end
changes nothing, and its last valid state is carried to the end.
"""

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, ArrayLike, Float

from ._cell import LipschitzCell, has_linear_term, recurrent_matrices
from ._config import NoisyRNNConfig
from ._noise import Coefficients
from ._types import Hidden, Input, Params


def step_vector(params: Params, cfg: NoisyRNNConfig, dtype: DTypeLike) -> Array:
    """The per-unit step ``d``: ``params["step"]`` with ``learn_step``, else ``dt`` per unit."""
    if cfg.learn_step:
        return params["step"].astype(dtype)
    return cfg.dt * jnp.ones((cfg.hidden_size,), dtype)


def coefficients(params: Params, cfg: NoisyRNNConfig, dtype: DTypeLike) -> Coefficients:
    """The :class:`~noisy_dyn._noise.Coefficients` of ``cfg``'s noise form and levels."""
    d = step_vector(params, cfg, dtype)
    return cfg.noise_form.coefficients(d, cfg.sigma_add, cfg.sigma_mult, dtype)


def mean_step(params: Params, cfg: NoisyRNNConfig) -> Array:
    """The mean time advanced by one step, averaged over units: ``mean(d)`` times the noise
    form's mean step factor ``E[m_k]`` (``1 - sigma_mult / 2`` for the reference form)."""
    d = params["step"] if cfg.learn_step else jnp.asarray(cfg.dt)
    return jnp.mean(d) * cfg.noise_form.mean_factor(cfg.sigma_mult)


def drift_matrix(params: Params, cfg: NoisyRNNConfig) -> Array:
    """``K = [W^T | alpha A^T]`` ``(H, 2H)``, or ``W^T`` without the linear term (a concrete
    ``alpha = 0``), so that ``h K = [W h | alpha A h]`` for a row ``h``."""
    A, W = recurrent_matrices(params, cfg)
    if not has_linear_term(cfg):
        return W.T
    return jnp.concatenate([W.T, cfg.alpha * A.T], axis=1)


def noise_scale(coef: Coefficients, h: ArrayLike) -> Array:
    """The scale of the step's normals, ``c_a + c_m ⊙ h`` (``c_a`` without ``c_m``)."""
    return coef.noise_add if coef.noise_mult is None else coef.noise_add + coef.noise_mult * h


def advance(
    h: ArrayLike,
    hk: ArrayLike,
    drive: ArrayLike,
    coef: Coefficients,
    xi: ArrayLike | None,
    u: ArrayLike | None,
    valid: ArrayLike | None,
) -> tuple[Array, Array, Array]:
    """One step from ``hk = h K`` and ``drive = U x + b``: returns ``(h_{k+1}, a_k, f_k)``.

    ``a_k = tanh(z_k)`` and ``f_k = lin_k + a_k`` are returned for the backward pass; ``xi``/``u``
    ``None`` mean no such draw; ``valid`` (broadcastable to ``h``, or ``None`` for all steps
    valid) marks the rows whose step is inside their sequence.
    """
    H = h.shape[-1]
    a = jnp.tanh(hk[..., :H] + drive)
    f = a + hk[..., H:] if hk.shape[-1] == 2 * H else a
    e = coef.step if u is None else coef.step * (1.0 + coef.spread * (u - 1.0))
    h_next = h + e * f
    if xi is not None:
        h_next = h_next + noise_scale(coef, h) * xi
    if valid is not None:
        h_next = jnp.where(valid, h_next, h)
    return h_next, a, f


def euler_maruyama_step(
    params: Params,
    h: Hidden,
    x: Input,
    cfg: NoisyRNNConfig,
    xi: Float[ArrayLike, "*batch hidden"] | None = None,
    u: Float[ArrayLike, "*batch hidden"] | None = None,
) -> Hidden:
    """One step of the Noisy RNN, ``h_k -> h_{k+1}`` (the update of the module docstring).

    Pure and usable on its own (e.g. under ``jax.jacfwd`` for step Jacobians). Leading batch axes
    are allowed on ``h, x, xi, u``.

    Arguments:
        params: Lipschitz-cell parameters.
        h: state ``h_k``, ``(H,)``.
        x: input ``x_k``, ``(input_size,)``.
        cfg: configuration (noise form and levels, ``dt``/``learn_step``).
        xi: standard normals ``(H,)``; ``None`` means no Brownian/additive noise.
        u: reference form only: uniforms on ``[0, 1)`` giving the step factor
            ``m = 1 - sigma_mult + sigma_mult u``; ``None`` means ``m = 1``.

    Returns:
        ``h_{k+1}``, same shape as ``h``.
    """
    if not isinstance(cfg.cell, LipschitzCell):
        raise ValueError(
            "euler_maruyama_step is the Lipschitz-cell step; for cell="
            f"{cfg.cell.name!r} use noisy_dyn.lstm_step / gru_step."
        )
    dtype = jnp.result_type(h, x, *jax.tree_util.tree_leaves(params))
    coef = coefficients(params, cfg, dtype)
    if not cfg.noise_form.uses(cfg.sigma_add, cfg.sigma_mult).u:
        u = None
    hk = h @ drift_matrix(params, cfg)
    return advance(h, hk, x @ params["U"].T + params["b"], coef, xi, u, None)[0]
