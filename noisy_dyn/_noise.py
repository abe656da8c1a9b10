"""Noise of the Noisy RNN: the Ito diffusion, the reference-form step noise, the one sampler.

The two noise forms are written out in ``docs/noisy_rnn.md``.

One step ``k`` of either form uses, per example and hidden unit,

- ``xi_k ~ N(0, 1)``: the Brownian increment ``sqrt(d) xi_k`` (Ito form) or the additive kick
  ``sigma_add xi_k`` (reference form);
- ``u_k ~ U[0, 1)`` (reference form only): the random step factor
  ``m_k = 1 - sigma_mult + sigma_mult u_k ~ U[1 - sigma_mult, 1)``.

Pre-sampled noise is passed to ``apply``/``trajectory`` as a :class:`NoiseSample` (or a bare
``xi`` array, or a ``(xi, u)`` tuple), each of shape ``(batch, time, hidden)``; the same draws can
be fed to any other solver. :func:`sample_noise` gives exactly the draws that ``apply`` uses for a
key, so ``apply(..., key=k)`` equals ``apply(..., noise=sample_noise(k, ...))``.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._config import NoisyRNNConfig
from ._threefry import standard_normal, typed_key, uniform
from ._types import Hidden, Key


class NoiseSample(NamedTuple):
    """Pre-sampled step noise, each field ``(batch, time, hidden)`` or ``None`` when unused.

    Attributes:
        xi: standard normals ``xi_k`` (the Ito Brownian increments are ``sqrt(d) xi_k``).
        u: standard uniforms on ``[0, 1)`` giving the reference-form step factor
            ``m_k = 1 - sigma_mult + sigma_mult u_k``; ``None`` for the Ito form.
    """

    xi: Float[Array, "batch time hidden"] | None
    u: Float[Array, "batch time hidden"] | None = None


# --------------------------------------------------------------------------------------------
# the step noise of the Noisy RNN


def needs_xi(cfg: NoisyRNNConfig) -> bool:
    """Whether the configured noise uses the normals ``xi`` (any noise for Ito)."""
    if cfg.noise_form == "ito":
        return cfg.sigma_add > 0.0 or cfg.sigma_mult > 0.0
    return cfg.sigma_add > 0.0


def needs_u(cfg: NoisyRNNConfig) -> bool:
    """Whether the configured noise uses the uniforms ``u`` (reference form with sigma_mult)."""
    return cfg.noise_form == "reference" and cfg.sigma_mult > 0.0


def ito_diffusion(h: Hidden, cfg: NoisyRNNConfig) -> Hidden:
    """The diagonal of the Ito diffusion ``sigma(h) = sigma_add I + sigma_mult diag(h)``.

    Args:
        h: hidden state(s).
        cfg: the configuration (``sigma_add, sigma_mult``).

    Returns:
        ``sigma_add + sigma_mult * h`` elementwise, same shape as ``h``.
    """
    return cfg.sigma_add + cfg.sigma_mult * h


def step_factor(u: Array, cfg: NoisyRNNConfig) -> Array:
    """Reference-form step factor ``m = 1 - sigma_mult + sigma_mult u ~ U[1 - sigma_mult, 1)``.

    Its mean is ``1 - sigma_mult / 2``, so the mean step is ``d (1 - sigma_mult / 2)``.
    """
    return (1.0 - cfg.sigma_mult) + cfg.sigma_mult * u


class Uses(NamedTuple):
    """Which draws a step needs: the normals ``xi`` and/or the uniforms ``u``."""

    xi: bool
    u: bool


def uses(cfg: NoisyRNNConfig) -> Uses:
    """The draws the configured noise needs (see :func:`needs_xi`, :func:`needs_u`)."""
    return Uses(needs_xi(cfg), needs_u(cfg))


def draw_step(
    key: Key,
    k: int | Array,
    shape: tuple[int, int],
    dtype: jnp.dtype,
    need: Uses,
    first_row: Array | int | None = None,
) -> tuple[Array | None, Array | None]:
    """The noise ``(xi_k, u_k)`` of step ``k``, each of ``shape`` or ``None`` when not needed.

    The one sampler of the package: every path (the fused kernel, the plain scan,
    :func:`sample_noise`) draws step ``k`` with it. ``fold_in(key, k)`` is split in two;
    ``xi_k = standard_normal(first, shape)``, ``u_k = uniform(second, shape)`` (the counter-mode
    Threefry stream of ``noisy_dyn._threefry``), so examples, units and steps are independent,
    any block of steps can be drawn on its own, and rows sharded over devices are drawn locally
    (``first_row``: the global index of the first row, for a device drawing its own shard).
    """
    k_xi, k_u = jax.random.split(jax.random.fold_in(typed_key(key), k))
    xi = standard_normal(k_xi, shape, dtype=dtype, first_row=first_row) if need.xi else None
    u = uniform(k_u, shape, dtype=dtype, first_row=first_row) if need.u else None
    return xi, u


def draw_steps(
    key: Key,
    ks: Array,
    shape: tuple[int, int],
    dtype: jnp.dtype,
    need: Uses,
    first_row: Array | int | None = None,
) -> tuple[Array | None, Array | None]:
    """:func:`draw_step` of every step index in ``ks``, stacked on a leading axis."""
    return jax.vmap(lambda k: draw_step(key, k, shape, dtype, need, first_row))(ks)


def step_noise(
    key: Key, k: int | Array, cfg: NoisyRNNConfig, *, batch: int, dtype: jnp.dtype
) -> tuple[Array | None, Array | None]:
    """The noise ``(xi_k, u_k)`` of step ``k`` for ``cfg``, each ``(batch, hidden)`` or ``None``."""
    return draw_step(key, k, (batch, cfg.hidden_size), dtype, uses(cfg))


def sample_noise(
    key: Key,
    cfg: NoisyRNNConfig,
    *,
    batch: int,
    time: int,
    dtype: jnp.dtype | None = None,
) -> NoiseSample:
    """The step noise that ``apply(params, xs, cfg, key=key)`` uses, batch-major.

    Args:
        key: PRNG key.
        cfg: the configuration (which noise is needed).
        batch: number of sequences.
        time: number of steps ``T``.
        dtype: floating dtype (default JAX's default float); ``apply`` draws in the dtype of its
            computation (the promoted dtype of ``params`` and ``xs``).

    Returns:
        :class:`NoiseSample` with ``xi`` and ``u`` of shape ``(batch, time, hidden)``, or
        ``None`` where the configured noise does not use them.
    """
    dtype = jnp.zeros((), dtype=dtype if dtype is not None else float).dtype
    return _sample_noise_jit(key, cfg, batch, time, dtype)


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sample_noise_jit(key, cfg, batch, time, dtype):
    xi, u = draw_steps(key, jnp.arange(time), (batch, cfg.hidden_size), dtype, uses(cfg))
    return NoiseSample(*(None if a is None else jnp.swapaxes(a, 0, 1) for a in (xi, u)))
