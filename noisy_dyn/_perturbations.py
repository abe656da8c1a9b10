"""Perturbations and attack norms as objects: what a robustness table or study evaluates under.

A perturbation is a small frozen object (an ``equinox.Module``, so a pytree whose level is a
leaf and may be traced, e.g. under ``jax.vmap`` over levels) that owns its behaviour:

- random corruptions (:class:`RandomPerturbation`): :class:`Gaussian` ``x + sigma n``,
  :class:`Multiplicative` ``x (1 + sigma n)``, :class:`SaltPepper` (a fraction ``p`` of the entries
  replaced by ``low`` or ``high``); ``sample(xs, key=key)`` draws them;
- white-box attacks (:class:`Attack`): :class:`FGSM` and :class:`PGD` in the ball of a
  :class:`Norm` (:class:`Linf` or :class:`L2`), ``attack(logits_fn, xs, ys, key=key)``; and
  :class:`DeepFool`, which has no level (it reports distances);
- :class:`Clean`: the inputs themselves.

The norm owns the three operations of an attack in its ball: the projection onto
``{||delta|| <= eps}``, the steepest-ascent direction of a gradient, and a uniform random start.

Names are parsed once at the edge (command line, files): :func:`parse_perturbation` turns
``("gaussian", 0.1)`` into ``Gaussian(0.1)``, :func:`parse_norm` ``"l2"`` into ``L2()``, and
:func:`perturbations_from_levels` a ``{name: levels}`` mapping into a tuple of objects. Each
object's ``name`` is the word written in files (``study.json``'s ``perturbation`` field).
"""

import abc
import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from trainkit.internal import lookup, variant

__all__: list[str] = []  # public names are re-exported by noisy_dyn/attacks.py

LogitsFn = Callable[[Float[Array, "batch ..."]], Float[Array, "batch classes"]]
Level = float | Float[ArrayLike, ""]


def _example_axes(x: ArrayLike) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def _bcast(v: ArrayLike, x: ArrayLike) -> Array:
    """Reshape a (batch,) vector to broadcast against x (batch, ...)."""
    return v.reshape(v.shape + (1,) * (x.ndim - 1))


def _l2(x: ArrayLike) -> Array:
    return jnp.sqrt(jnp.sum(x * x, axis=_example_axes(x)))


def _concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_level(name: str, level: Any, *, upper: float | None = None) -> None:
    """Eager validation of a noise level or radius (skipped when it is traced)."""
    if not _concrete(level):
        return
    value = np.asarray(level)
    if value.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar, got an array of shape {value.shape}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {float(value)}.")
    if upper is not None and value > upper:
        raise ValueError(f"`{name}` must lie in [0, {upper:g}], got {float(value)}.")


# --------------------------------------------------------------------------------------------
# norms


class Norm(eqx.Module):
    """The ball ``{delta : ||delta|| <= eps}`` of one example (all non-batch axes) in which an
    attack searches: its projection, its steepest-ascent direction and a uniform random start."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def project(
        self, delta: Float[Array, "batch ..."], eps: Float[ArrayLike, ""]
    ) -> Float[Array, "batch ..."]:
        """The Euclidean projection of each example's ``delta`` onto the ball of radius eps."""

    @abc.abstractmethod
    def ascent(self, grad: Float[Array, "batch ..."]) -> Float[Array, "batch ..."]:
        """The unit-ball point of largest inner product with ``grad``, per example."""

    @abc.abstractmethod
    def random_start(
        self, key: PRNGKeyArray, xs: Float[Array, "batch ..."], eps: Float[ArrayLike, ""]
    ) -> Float[Array, "batch ..."]:
        """A uniform draw in the ball of radius ``eps``, per example."""


class Linf(Norm):
    """The l-infinity ball: projection ``clip(delta, -eps, eps)``, ascent ``sign(g)``, start
    uniform on ``[-eps, eps]`` entry by entry."""

    name: ClassVar[str] = "linf"

    def project(
        self, delta: Float[Array, "batch ..."], eps: Float[ArrayLike, ""]
    ) -> Float[Array, "batch ..."]:
        return jnp.clip(delta, -eps, eps)

    def ascent(self, grad: Float[Array, "batch ..."]) -> Float[Array, "batch ..."]:
        return jnp.sign(grad)

    def random_start(
        self, key: PRNGKeyArray, xs: Float[Array, "batch ..."], eps: Float[ArrayLike, ""]
    ) -> Float[Array, "batch ..."]:
        return jax.random.uniform(key, xs.shape, xs.dtype, -1.0, 1.0) * eps


class L2(Norm):
    """The l2 ball: projection ``delta min(1, eps / ||delta||)``, ascent ``g / ||g||``, start a
    uniform direction times radius ``eps u^(1/d)`` (uniform in the ball of dimension ``d``)."""

    name: ClassVar[str] = "l2"

    def project(
        self, delta: Float[Array, "batch ..."], eps: Float[ArrayLike, ""]
    ) -> Float[Array, "batch ..."]:
        n = _l2(delta)
        scale = jnp.minimum(1.0, eps / jnp.maximum(n, jnp.finfo(delta.dtype).tiny))
        return delta * _bcast(scale, delta)

    def ascent(self, grad: Float[Array, "batch ..."]) -> Float[Array, "batch ..."]:
        n = _l2(grad)
        return grad / _bcast(jnp.maximum(n, jnp.finfo(grad.dtype).tiny), grad)

    def random_start(
        self, key: PRNGKeyArray, xs: Float[Array, "batch ..."], eps: Float[ArrayLike, ""]
    ) -> Float[Array, "batch ..."]:
        k_dir, k_rad = jax.random.split(key)
        d = int(np.prod(xs.shape[1:]))
        direction = self.ascent(jax.random.normal(k_dir, xs.shape, xs.dtype))
        radius = eps * jax.random.uniform(k_rad, (xs.shape[0],), xs.dtype) ** (1.0 / d)
        return direction * _bcast(radius, xs)


NORMS: dict[str, type[Norm]] = {cls.name: cls for cls in (Linf, L2)}
"""The norms by the name written on the command line and in files."""


def parse_norm(norm: str | Norm) -> Norm:
    """``"linf"`` -> ``Linf()``, ``"l2"`` -> ``L2()``; a :class:`Norm` is returned as it is."""
    return variant(norm, Norm, NORMS, "norm", prefix="noisy_dyn.")


def as_norm(norm: str | Norm, where: str) -> Norm:
    """A :class:`Norm`; a name is accepted with a ``DeprecationWarning`` (the old spelling)."""
    if isinstance(norm, str):
        warnings.warn(
            f"{where}: norm={norm!r} is deprecated; pass noisy_dyn.attacks."
            f"{type(parse_norm(norm)).__name__}().",
            DeprecationWarning,
            stacklevel=3,
        )
    return parse_norm(norm)


# --------------------------------------------------------------------------------------------
# perturbations


class Perturbation(eqx.Module):
    """What a robustness table or study evaluates under: ``name`` is the word written in files,
    ``level`` the number beside it (a noise level, a fraction, a radius; 0 for :class:`Clean`)."""

    name: ClassVar[str] = ""
    _level_field: ClassVar[str | None] = None

    @property
    def level(self) -> Level:
        """The perturbation's size: its standard deviation, fraction or radius."""
        return 0.0 if self._level_field is None else getattr(self, self._level_field)

    def with_level(self, level: Level) -> "Perturbation":
        """The same perturbation at another level (same norm, steps and values)."""
        if self._level_field is None:
            raise ValueError(f"{type(self).__name__} has no level.")
        return dataclasses.replace(self, **{self._level_field: level})

    def label(self) -> str:
        """``"gaussian 0.1"``: the name and level, as progress lines and plots show them."""
        return f"{self.name} {float(self.level):g}"


class Clean(Perturbation):
    """The inputs unchanged (the clean accuracy)."""

    name: ClassVar[str] = "clean"


class RandomPerturbation(Perturbation):
    """A random corruption of the inputs, drawn from a key."""

    @abc.abstractmethod
    def sample(self, xs: Float[Array, "*shape"], *, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        """The corrupted inputs, same shape and dtype as ``xs`` (no clipping)."""


class Gaussian(RandomPerturbation):
    """Additive white noise: ``x + sigma n``, ``n`` i.i.d. standard normal."""

    sigma: Level
    name: ClassVar[str] = "gaussian"
    _level_field: ClassVar[str | None] = "sigma"

    def __check_init__(self) -> None:
        check_level("sigma", self.sigma)

    def sample(self, xs: Float[Array, "*shape"], *, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        sigma = jnp.asarray(self.sigma, xs.dtype)
        return xs + sigma * jax.random.normal(key, xs.shape, xs.dtype)


class Multiplicative(RandomPerturbation):
    """Multiplicative white noise: ``x (1 + sigma n)``, ``n`` i.i.d. standard normal."""

    sigma: Level
    name: ClassVar[str] = "multiplicative"
    _level_field: ClassVar[str | None] = "sigma"

    def __check_init__(self) -> None:
        check_level("sigma", self.sigma)

    def sample(self, xs: Float[Array, "*shape"], *, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        sigma = jnp.asarray(self.sigma, xs.dtype)
        return xs * (1 + sigma * jax.random.normal(key, xs.shape, xs.dtype))


class SaltPepper(RandomPerturbation):
    """Salt-and-pepper noise: with probability ``p`` an entry is replaced, by ``low`` or ``high``
    with equal chance (a fraction ``p`` of the entries corrupted on average); else kept."""

    p: Level
    low: float = eqx.field(default=0.0, static=True)
    high: float = eqx.field(default=1.0, static=True)
    name: ClassVar[str] = "salt_pepper"
    _level_field: ClassVar[str | None] = "p"

    def __check_init__(self) -> None:
        check_level("p", self.p, upper=1.0)

    def sample(self, xs: Float[Array, "*shape"], *, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        dtype = xs.dtype
        k_mask, k_value = jax.random.split(key)
        hit = jax.random.uniform(k_mask, xs.shape, dtype) < jnp.asarray(self.p, dtype)
        salt = jax.random.bernoulli(k_value, 0.5, xs.shape)
        value = jnp.where(salt, jnp.asarray(self.high, dtype), jnp.asarray(self.low, dtype))
        return jnp.where(hit, value, xs)


def _per_example_ce(logits: ArrayLike, ys: ArrayLike) -> Array:
    """Softmax cross-entropy of each example, (batch,): ``logsumexp(logits) - logits[y]``."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, ys)


class Attack(Perturbation):
    """A white-box attack on a batched logits function, of radius ``eps`` in its norm's ball."""

    @abc.abstractmethod
    def attack(
        self,
        logits_fn: LogitsFn,
        xs: Float[Array, "batch ..."],
        ys: Int[ArrayLike, " batch"],
        *,
        key: PRNGKeyArray | None = None,
        mask: Bool[ArrayLike, "..."] | None = None,
    ) -> Float[Array, "batch ..."]:
        """The adversarial inputs; ``mask`` (broadcastable to ``xs``) marks the entries that
        may change, ``key`` draws a random start where the attack has one."""


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step ``x + eps a(grad_x CE)``
    with ``a`` the norm's ascent direction (``sign`` in the l-infinity ball)."""

    eps: Level
    norm: Norm = Linf()
    name: ClassVar[str] = "fgsm"
    _level_field: ClassVar[str | None] = "eps"

    def __check_init__(self) -> None:
        check_level("eps", self.eps)
        if not isinstance(self.norm, Norm):
            raise TypeError(f"`norm` must be Linf() or L2(), got {self.norm!r}.")

    def attack(
        self,
        logits_fn: LogitsFn,
        xs: Float[Array, "batch ..."],
        ys: Int[ArrayLike, " batch"],
        *,
        key: PRNGKeyArray | None = None,
        mask: Bool[ArrayLike, "..."] | None = None,
    ) -> Float[Array, "batch ..."]:
        grad = jax.grad(lambda x: jnp.sum(_per_example_ce(logits_fn(x), ys)))(xs)
        if mask is not None:
            grad = jnp.where(mask, grad, 0.0)
        return xs + jnp.asarray(self.eps, xs.dtype) * self.norm.ascent(grad)


class PGD(Attack):
    """Projected gradient ascent (Madry et al. 2018): ``steps`` steps of ``step_size`` (default
    ``2.5 eps / steps``) in the norm's ball, from a uniform random start (``random_start``,
    needs a key) or from zero; see :func:`noisy_dyn.attacks.pgd_fn`."""

    eps: Level
    steps: int = eqx.field(default=10, static=True)
    norm: Norm = Linf()
    step_size: Level | None = None
    random_start: bool = eqx.field(default=True, static=True)
    name: ClassVar[str] = "pgd"
    _level_field: ClassVar[str | None] = "eps"

    def __check_init__(self) -> None:
        check_level("eps", self.eps)
        if self.step_size is not None:
            check_level("step_size", self.step_size)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int | np.integer):
            raise ValueError(f"`steps` must be a Python int >= 1, got {self.steps!r}.")
        if self.steps < 1:
            raise ValueError(f"`steps` must be a Python int >= 1, got {self.steps!r}.")
        if not isinstance(self.norm, Norm):
            raise TypeError(f"`norm` must be Linf() or L2(), got {self.norm!r}.")

    def attack(
        self,
        logits_fn: LogitsFn,
        xs: Float[Array, "batch ..."],
        ys: Int[ArrayLike, " batch"],
        *,
        key: PRNGKeyArray | None = None,
        mask: Bool[ArrayLike, "..."] | None = None,
    ) -> Float[Array, "batch ..."]:
        step = 2.5 * self.eps / self.steps if self.step_size is None else self.step_size
        eps, step = jnp.asarray(self.eps, xs.dtype), jnp.asarray(step, xs.dtype)
        start = key if self.random_start else None
        return pgd_loop(logits_fn, xs, ys, eps, step, steps=self.steps, norm=self.norm,
                        key=start, mask=mask)  # fmt: skip


def pgd_loop(
    logits_fn: LogitsFn,
    xs: Float[Array, "batch ..."],
    ys: Int[ArrayLike, " batch"],
    eps: Float[Array, ""],
    step_size: Float[Array, ""],
    *,
    steps: int,
    norm: Norm,
    key: PRNGKeyArray | None,
    mask: Bool[ArrayLike, "..."] | None,
) -> Float[Array, "batch ..."]:
    """The iteration of :func:`noisy_dyn.attacks.pgd_fn` (its docstring states it), unchecked:
    one ``lax.scan`` over the steps, keeping per example the iterate of highest loss."""

    def loss_and_grad(delta: Array) -> tuple[Array, Array]:
        def total(d: Array) -> tuple[Array, Array]:
            per = _per_example_ce(logits_fn(xs + d), ys)
            return jnp.sum(per), per

        (_, per), grad = jax.value_and_grad(total, has_aux=True)(delta)
        return per, grad

    zero = jnp.zeros_like(xs)
    best_loss, _ = loss_and_grad(zero)
    best = zero
    keep = (lambda d: d) if mask is None else (lambda d: jnp.where(mask, d, 0.0))  # noqa: E731
    start = zero if key is None else keep(norm.random_start(key, xs, eps))
    delta = norm.project(start, eps)

    def body(carry: tuple[Array, Array, Array], _: None) -> tuple[tuple[Array, Array, Array], None]:
        delta, best, best_loss = carry
        loss, grad = loss_and_grad(delta)
        better = loss > best_loss
        best = jnp.where(_bcast(better, delta), delta, best)
        best_loss = jnp.where(better, loss, best_loss)
        step = keep(norm.ascent(keep(grad)))
        delta = norm.project(delta + step_size * step, eps)
        return (delta, best, best_loss), None

    (delta, best, best_loss), _ = jax.lax.scan(body, (delta, best, best_loss), None, length=steps)
    final_loss, _ = loss_and_grad(delta)
    best = jnp.where(_bcast(final_loss > best_loss, delta), delta, best)
    return xs + best


class DeepFool(Perturbation):
    """Multi-class DeepFool (Moosavi-Dezfooli et al. 2016): no level; a robustness table reports
    the size of the perturbations it finds (see :func:`noisy_dyn.attacks.deepfool_fn`)."""

    max_iter: int = eqx.field(default=50, static=True)
    overshoot: float = eqx.field(default=0.02, static=True)
    name: ClassVar[str] = "deepfool"

    def label(self) -> str:
        return self.name


PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.name: cls for cls in (Clean, Gaussian, Multiplicative, SaltPepper, FGSM, PGD, DeepFool)
}
"""The perturbations by the name written on the command line and in files."""


def parse_perturbation(name: str | Perturbation, level: Level | None = None, **options: Any):
    """The object of a name and level: ``parse_perturbation("gaussian", 0.1)`` is
    ``Gaussian(0.1)``, ``parse_perturbation("pgd", 0.03, steps=10, norm="l2")`` is
    ``PGD(0.03, steps=10, norm=L2())``; ``"clean"`` and ``"deepfool"`` take no level. A
    :class:`Perturbation` is returned as it is. The parser of the command line and of files.
    """
    if isinstance(name, Perturbation):
        return name
    cls = lookup(name, PERTURBATIONS, "perturbation")
    if "norm" in options:
        options["norm"] = parse_norm(options["norm"])
    if cls._level_field is None:
        if level not in (None, 0, 0.0):
            raise ValueError(f"The perturbation {name!r} takes no level, got {level!r}.")
        return cls(**options)
    if level is None:
        raise ValueError(f"The perturbation {name!r} needs a level.")
    return cls(level, **options)


def perturbations_from_levels(
    levels: Mapping[str, Sequence[float]], *, pgd_steps: int = 10, deepfool_max_iter: int = 50
) -> tuple[Perturbation, ...]:
    """``{name: levels}`` -> the objects, kind by kind in the mapping's order: ``{"gaussian":
    (0.1, 0.3), "pgd": (0.03,)}`` is ``(Gaussian(0.1), Gaussian(0.3), PGD(0.03, steps=10))``;
    ``"deepfool": ()`` gives ``DeepFool(max_iter=deepfool_max_iter)``. Levels are checked
    (finite, >= 0; salt-and-pepper fractions in [0, 1])."""
    out: list[Perturbation] = []
    for name, values in levels.items():
        kinds = {k: c for k, c in PERTURBATIONS.items() if c is not Clean}
        cls = lookup(name, kinds, "perturbation")
        if cls._level_field is None:
            out.append(cls(max_iter=deepfool_max_iter))
            continue
        for v in values:
            if not math.isfinite(float(v)):
                raise ValueError(f"Levels of {name!r} must be finite and >= 0, got {v!r}.")
            options = {"steps": pgd_steps} if cls is PGD else {}
            out.append(cls(float(v), **options))
    return tuple(out)


def as_perturbations(
    perturbations: Mapping[str, Sequence[float]] | Sequence[Perturbation],
    where: str,
    *,
    pgd_steps: int = 10,
    deepfool_max_iter: int = 50,
) -> tuple[Perturbation, ...]:
    """The objects of a public argument; a ``{name: levels}`` mapping (the old spelling) is
    accepted with a ``DeprecationWarning``."""
    if isinstance(perturbations, Mapping):
        warnings.warn(
            f"{where}: a {{name: levels}} mapping of perturbations is deprecated; pass the "
            "objects, e.g. (Gaussian(0.1), PGD(0.03, steps=10)), or convert it once with "
            "noisy_dyn.attacks.perturbations_from_levels.",
            DeprecationWarning,
            stacklevel=3,
        )
        return perturbations_from_levels(
            perturbations, pgd_steps=pgd_steps, deepfool_max_iter=deepfool_max_iter
        )
    if isinstance(perturbations, str | Perturbation) or not isinstance(perturbations, Sequence):
        raise TypeError(
            f"{where}: `perturbations` must be a sequence of perturbation objects such as "
            f"(Gaussian(0.1), FGSM(0.03)), got {type(perturbations).__name__}."
        )
    bad = [p for p in perturbations if not isinstance(p, Perturbation)]
    if bad:
        raise TypeError(
            f"{where}: {bad[0]!r} is not a perturbation; use Gaussian(sigma), "
            "Multiplicative(sigma), SaltPepper(p), FGSM(eps), PGD(eps, steps) or DeepFool() "
            "(parse_perturbation(name, level) turns a name into one)."
        )
    return tuple(perturbations)
