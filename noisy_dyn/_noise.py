"""Noise of the Noisy RNN (SPEC 1.2): the Ito diffusion and the reference-form step noise.

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

    Arguments:
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


def step_noise(
    key: Key, k: int | Array, cfg: NoisyRNNConfig, *, batch: int, dtype: jnp.dtype
) -> tuple[Array | None, Array | None]:
    """The noise ``(xi_k, u_k)`` of step ``k``, each ``(batch, hidden)`` or ``None`` if unused.

    Drawn from ``fold_in(key, k)`` split in two (``xi`` from the first key, ``u`` from the
    second), so batch elements, units and steps are independent. The scan draws each step's noise
    inside the step this way (measured faster on CPU than one big draw before the scan, and it
    needs no ``(time, batch, hidden)`` buffer).
    """
    k_xi, k_u = jax.random.split(jax.random.fold_in(key, k))
    shape = (batch, cfg.hidden_size)
    xi = jax.random.normal(k_xi, shape, dtype=dtype) if needs_xi(cfg) else None
    u = jax.random.uniform(k_u, shape, dtype=dtype) if needs_u(cfg) else None
    return xi, u


def sample_noise(
    key: Key,
    cfg: NoisyRNNConfig,
    *,
    batch: int,
    time: int,
    dtype: jnp.dtype | None = None,
) -> NoiseSample:
    """The step noise that ``apply(params, xs, cfg, key=key)`` uses, batch-major.

    Arguments:
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
    draw = jax.vmap(lambda k: step_noise(key, k, cfg, batch=batch, dtype=dtype), out_axes=1)
    return NoiseSample(*draw(jnp.arange(time)))
