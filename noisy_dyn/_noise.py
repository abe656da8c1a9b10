"""Noise of the Noisy RNN: the noise forms (:class:`ItoNoise`, :class:`ReferenceNoise`), the
Ito diffusion, the reference-form step factor, the one sampler.

Shared within the package: :class:`Uses`, :class:`Coefficients`, :func:`uses`,
:func:`draw_steps` (the kernel, the plain scan and the theory import them).

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

import abc
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike
from jaxtyping import Array, ArrayLike, Float

from trainkit.internal import lookup

from ._threefry import standard_normal, typed_key, uniform
from ._types import Hidden, Key

Level = float | Float[ArrayLike, "*members"]
"""A noise level: a number, or one per member of stacked configurations; possibly traced."""
Step = Float[ArrayLike, "*members hidden"]
"""A per-unit quantity of the update (the step ``d``, ``c_a``, ``c_m``), ``(H,)``."""

if TYPE_CHECKING:
    from ._config import NoisyRNNConfig


class NoiseSample(NamedTuple):
    """Pre-sampled step noise, each field ``(batch, time, hidden)`` or ``None`` when unused.

    Attributes:
        xi: standard normals ``xi_k`` (the Ito Brownian increments are ``sqrt(d) xi_k``).
        u: standard uniforms on ``[0, 1)`` giving the reference-form step factor
            ``m_k = 1 - sigma_mult + sigma_mult u_k``; ``None`` for the Ito form.
    """

    xi: Float[ArrayLike, "batch time hidden"] | None
    u: Float[ArrayLike, "batch time hidden"] | None = None


# --------------------------------------------------------------------------------------------
# the noise forms: what is particular to each, as one object


class Uses(NamedTuple):
    """Which draws a step needs: the normals ``xi`` and/or the uniforms ``u``."""

    xi: bool
    u: bool


class Coefficients(NamedTuple):
    """Per-unit coefficients of the one update (``noisy_dyn._step``); arrays, possibly traced."""

    step: Step  # d, (H,)
    spread: Level  # s, () — the reference form's sigma_mult, 0 for the Ito form
    noise_add: Step  # c_a, (H,)
    noise_mult: Step | None  # c_m, (H,); None: no multiplicative noise (reference form)


def may_be_nonzero(value: object) -> bool:
    """``False`` only for a value known to be 0 (a concrete zero); traced values may be anything.

    Which draws a program makes is decided from this, so a concrete deterministic config draws
    nothing, and a config whose levels are traced (``jax.vmap`` over stacked configs) draws
    every kind its form can use (a level of 0 then multiplies its draw by 0).
    """
    if isinstance(value, jax.core.Tracer):
        return True
    return bool(np.any(np.asarray(value) != 0.0))


def known_nonzero(value: object) -> bool:
    """``True`` only for a concrete value with a nonzero entry (never for a traced one)."""
    return not isinstance(value, jax.core.Tracer) and bool(np.any(np.asarray(value) != 0.0))


@dataclass(frozen=True)
class NoiseForm(abc.ABC):
    """A noise form: how ``sigma_add`` and ``sigma_mult`` enter the one update.

    Subclasses give the update's :class:`Coefficients`, the draws they use, the mean time a step
    advances and the first-order covariance of one step's noise (the theory's diffusion).
    """

    name: ClassVar[str]
    brownian: ClassVar[bool]
    """Whether the noise is an Ito diffusion (a Brownian increment ``sqrt(d) sigma(h) xi``)."""

    @abc.abstractmethod
    def uses(self, sigma_add: Level, sigma_mult: Level) -> Uses:
        """The draws this form needs at these levels (:func:`may_be_nonzero`)."""

    @abc.abstractmethod
    def coefficients(
        self, d: Step, sigma_add: Level, sigma_mult: Level, dtype: DTypeLike
    ) -> Coefficients:
        """The update's coefficients for the per-unit step ``d``."""

    @abc.abstractmethod
    def mean_factor(self, sigma_mult: Level) -> Level:
        """``E[m_k]``: the mean of the random step factor (1 without one)."""

    @abc.abstractmethod
    def step_covariance(
        self, h: Hidden, f: Hidden, d: Step, sigma_add: Level, sigma_mult: Level
    ) -> Hidden:
        """The per-unit variance of one step's noise to first order around ``h`` with drift
        ``f`` (the explicit regularizer's diffusion)."""

    def check(self, sigma_mult: Level) -> None:  # noqa: B027 - a hook: nothing to refuse by default
        """Raise a ``ValueError`` when the levels do not fit the form."""


@dataclass(frozen=True)
class ItoNoise(NoiseForm):
    """The Euler-Maruyama step of ``dh = f dt + (sigma_add + sigma_mult diag(h)) dB`` (Ito):

        h_{k+1} = h_k + d f(h_k, x_k) + sqrt(|d|) (sigma_add + sigma_mult h_k) * xi_k

    (strong order 1/2, weak order 1). Coefficients ``s = 0``, ``c_a = sqrt(|d|) sigma_add``,
    ``c_m = sqrt(|d|) sigma_mult``; it draws ``xi`` whenever either level may be nonzero.
    """

    name: ClassVar[str] = "ito"
    brownian: ClassVar[bool] = True

    def uses(self, sigma_add: Level, sigma_mult: Level) -> Uses:
        return Uses(may_be_nonzero(sigma_add) or may_be_nonzero(sigma_mult), False)

    def coefficients(
        self, d: Step, sigma_add: Level, sigma_mult: Level, dtype: DTypeLike
    ) -> Coefficients:
        root = jnp.sqrt(jnp.abs(d))
        sa, sm = jnp.asarray(sigma_add, dtype), jnp.asarray(sigma_mult, dtype)
        return Coefficients(d, jnp.zeros((), dtype), root * sa, root * sm)

    def mean_factor(self, sigma_mult: Level) -> Level:
        return 1.0

    def diffusion(self, h: Hidden, sigma_add: Level, sigma_mult: Level) -> Hidden:
        """The diagonal of the diffusion ``sigma(h) = sigma_add I + sigma_mult diag(h)``."""
        return sigma_add + sigma_mult * h

    def step_covariance(
        self, h: Hidden, f: Hidden, d: Step, sigma_add: Level, sigma_mult: Level
    ) -> Hidden:
        return jnp.abs(d) * self.diffusion(h, sigma_add, sigma_mult) ** 2


@dataclass(frozen=True)
class ReferenceNoise(NoiseForm):
    """The update of the reference code: a random step size and an additive kick,

        h_{k+1} = h_k + (d * m_k) * f(h_k, x_k) + sigma_add xi_k,  m_k ~ U[1 - sigma_mult, 1)

    (no ``sqrt(dt)`` on the kick). Coefficients ``s = sigma_mult``, ``c_a = sigma_add``, no
    ``c_m``; it draws ``xi`` when ``sigma_add`` and ``u`` when ``sigma_mult`` may be nonzero.
    """

    name: ClassVar[str] = "reference"
    brownian: ClassVar[bool] = False

    def uses(self, sigma_add: Level, sigma_mult: Level) -> Uses:
        return Uses(may_be_nonzero(sigma_add), may_be_nonzero(sigma_mult))

    def coefficients(
        self, d: Step, sigma_add: Level, sigma_mult: Level, dtype: DTypeLike
    ) -> Coefficients:
        ones = jnp.ones(d.shape, dtype)
        sa, sm = jnp.asarray(sigma_add, dtype), jnp.asarray(sigma_mult, dtype)
        return Coefficients(d, sm, sa * ones, None)

    def mean_factor(self, sigma_mult: Level) -> Level:
        return 1.0 - sigma_mult / 2.0

    def step_covariance(
        self, h: Hidden, f: Hidden, d: Step, sigma_add: Level, sigma_mult: Level
    ) -> Hidden:
        return sigma_add**2 + (sigma_mult**2 / 12.0) * (d * f) ** 2

    def check(self, sigma_mult: Level) -> None:
        if not isinstance(sigma_mult, jax.core.Tracer) and np.any(np.asarray(sigma_mult) > 1.0):
            raise ValueError(
                "NoisyRNNConfig.sigma_mult must lie in [0, 1] for noise_form='reference' (the step "
                f"factor is drawn from U[1 - sigma_mult, 1)), got {sigma_mult}."
            )


NOISE_FORMS: dict[str, NoiseForm] = {form.name: form for form in (ItoNoise(), ReferenceNoise())}
"""The noise forms by the name that presets, model files and the command line use."""


def noise_form(value: str | NoiseForm) -> NoiseForm:
    """The :class:`NoiseForm` of a name (``"ito"``, ``"reference"``) or the object itself."""
    if isinstance(value, NoiseForm):
        return value
    return lookup(value, NOISE_FORMS, "noise_form (a NoiseForm or its name)")


def uses(cfg: "NoisyRNNConfig") -> Uses:
    """The draws the configured noise needs (none for a cell without noise)."""
    if not cfg.cell.noisy:
        return Uses(False, False)
    return cfg.noise_form.uses(cfg.sigma_add, cfg.sigma_mult)


def needs_xi(cfg: "NoisyRNNConfig") -> bool:
    """Whether the configured noise uses the normals ``xi``."""
    return uses(cfg).xi


def needs_u(cfg: "NoisyRNNConfig") -> bool:
    """Whether the configured noise uses the uniforms ``u`` (reference form with sigma_mult)."""
    return uses(cfg).u


def ito_diffusion(h: Hidden, cfg: "NoisyRNNConfig") -> Hidden:
    """The diagonal of the Ito diffusion ``sigma(h) = sigma_add I + sigma_mult diag(h)``.

    Arguments:
        h: hidden state(s).
        cfg: the configuration (``sigma_add, sigma_mult``).

    Returns:
        ``sigma_add + sigma_mult * h`` elementwise, same shape as ``h``.
    """
    return ItoNoise().diffusion(h, cfg.sigma_add, cfg.sigma_mult)


def step_factor(u: Float[ArrayLike, "*batch hidden"], cfg: "NoisyRNNConfig") -> Hidden:
    """Reference-form step factor ``m = 1 - sigma_mult + sigma_mult u ~ U[1 - sigma_mult, 1)``.

    Its mean is ``1 - sigma_mult / 2``, so the mean step is ``d (1 - sigma_mult / 2)``.
    """
    return (1.0 - cfg.sigma_mult) + cfg.sigma_mult * u


def draw_step(
    key: Key,
    k: int | ArrayLike,
    shape: tuple[int, int],
    dtype: DTypeLike,
    need: Uses,
    first_row: ArrayLike | int | None = None,
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
    ks: ArrayLike,
    shape: tuple[int, int],
    dtype: DTypeLike,
    need: Uses,
    first_row: ArrayLike | int | None = None,
) -> tuple[Array | None, Array | None]:
    """:func:`draw_step` of every step index in ``ks``, stacked on a leading axis."""
    return jax.vmap(lambda k: draw_step(key, k, shape, dtype, need, first_row))(ks)


def step_noise(
    key: Key, k: int | ArrayLike, cfg: "NoisyRNNConfig", *, batch: int, dtype: DTypeLike
) -> tuple[Array | None, Array | None]:
    """The noise ``(xi_k, u_k)`` of step ``k`` for ``cfg``, each ``(batch, hidden)`` or ``None``."""
    return draw_step(key, k, (batch, cfg.hidden_size), dtype, uses(cfg))


def sample_noise(
    key: Key,
    cfg: "NoisyRNNConfig",
    *,
    batch: int,
    time: int,
    dtype: DTypeLike | None = None,
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
    return _sample_noise_jit(key, uses(cfg), (batch, cfg.hidden_size), time, dtype)


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sample_noise_jit(key, need, shape, time, dtype):
    xi, u = draw_steps(key, jnp.arange(time), shape, dtype, need)
    return NoiseSample(*(None if a is None else jnp.swapaxes(a, 0, 1) for a in (xi, u)))
