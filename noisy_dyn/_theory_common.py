"""Validation and small helpers shared by the theory modules (regularizer, stability,
Lyapunov exponents, margin)."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike
from jaxtyping import Array, ArrayLike

from trainkit.internal import variant_or_warn

from ._config import NoisyRNNConfig
from ._types import Params


@dataclasses.dataclass(frozen=True)
class Brownian:
    """How one step's noise is drawn across the hidden units: :class:`PerUnitBrownian` (the
    library's noise) or :class:`ScalarBrownian`. ``name``: the word in files and former calls."""

    name: ClassVar[str] = ""

    def width(self, hidden_size: int) -> int:
        """The number of independent normals (or uniforms) drawn per step."""
        return hidden_size


@dataclasses.dataclass(frozen=True)
class PerUnitBrownian(Brownian):
    """Independent normals per unit and step: an ``H``-dimensional Brownian motion, the noise
    the model trains with."""

    name: ClassVar[str] = "unit"


@dataclasses.dataclass(frozen=True)
class ScalarBrownian(Brownian):
    """One normal per step shared by all units: a scalar Brownian motion, the setting of the
    stochastic-stabilization bound ``mu - sigma_mult^2 / 2``; for the reference form one step
    factor per step."""

    name: ClassVar[str] = "scalar"

    def width(self, hidden_size: int) -> int:
        return 1


PER_UNIT = PerUnitBrownian()
"""The default drive (a module-level instance, for argument defaults)."""

BROWNIANS: dict[str, type[Brownian]] = {c.name: c for c in (PerUnitBrownian, ScalarBrownian)}
"""The Brownian drives by their former names."""


def as_brownian(value: Brownian | str, where: str) -> Brownian:
    """A drive; the names ``"unit"``, ``"scalar"`` (the former spelling) are read with a
    ``DeprecationWarning``."""
    return variant_or_warn(value, Brownian, BROWNIANS, "brownian", where, 4, "noisy_dyn.theory.")


def check_theory_cfg(cfg: object, fn: str) -> NoisyRNNConfig:
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(f"{fn}: cfg must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    if not cfg.cell.noisy:
        raise ValueError(
            f"{fn}: the theory is derived for the Lipschitz cell only (cfg.cell='lipschitz'), got "
            f"cell={cfg.cell.name!r}. Use a Lipschitz/Noisy RNN config."
        )
    return cfg


def check_theory_xs(xs: object, cfg: NoisyRNNConfig, fn: str, *, batched: bool = True) -> Array:
    arr = jnp.asarray(xs)
    want = "(batch, time, input_size)" if batched else "(time, input_size)"
    ndim = 3 if batched else 2
    if arr.ndim != ndim:
        raise ValueError(f"{fn}: xs must have shape {want}, got shape {arr.shape}.")
    if arr.shape[-1] != cfg.input_size:
        raise ValueError(
            f"{fn}: xs has {arr.shape[-1]} features per step but cfg.input_size is "
            f"{cfg.input_size}; reshape xs to {want}."
        )
    if arr.shape[-2] < 1:
        raise ValueError(f"{fn}: xs needs at least one time step, got shape {arr.shape}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise TypeError(f"{fn}: xs must be a real floating array, got dtype {arr.dtype}.")
    return arr


def concrete_or_none(value: object) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` when it is traced (inside ``jit``/``grad``)."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_theory_ys(ys: object, xs: ArrayLike, cfg: NoisyRNNConfig, fn: str) -> Array:
    concrete_ys = concrete_or_none(ys)
    concrete = concrete_ys is not None
    arr = concrete_ys if concrete else ys
    if arr.shape != (xs.shape[0],):
        raise ValueError(
            f"{fn}: ys must hold one integer label per sequence, shape ({xs.shape[0]},), got "
            f"shape {arr.shape}."
        )
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{fn}: ys must be integer class labels, got dtype {arr.dtype}.")
    if concrete and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= cfg.num_classes:
            raise ValueError(
                f"{fn}: labels must lie in [0, {cfg.num_classes - 1}] (cfg.num_classes), got "
                f"values in [{lo}, {hi}]."
            )
    return jnp.asarray(arr)


def theory_step_vector(params: Params, cfg: NoisyRNNConfig, dtype: DTypeLike) -> Array:
    """The step ``d`` as an ``(H,)`` vector: the learned ``step`` or ``dt`` everywhere."""
    if cfg.learn_step:
        return params["step"]
    return jnp.full((cfg.hidden_size,), cfg.dt, dtype=dtype)


def example_cross_entropy(logits: ArrayLike, y: ArrayLike) -> Array:
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(
        logits, y[..., None], axis=-1
    ).squeeze(-1)


def tanh_second_derivative(z: ArrayLike) -> Array:
    t = jnp.tanh(z)
    return -2.0 * t * (1.0 - t * t)
