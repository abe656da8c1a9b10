"""Training recipes: an optimizer direction and a learning-rate schedule, as optax objects.

A recipe is the update ``w <- w - lr(s) D(g)`` of one training step ``s``: ``D`` is an optax
gradient transformation built with ``optax.inject_hyperparams`` (so its learning rate is a
hyperparameter in the optimizer state) and ``lr`` an ``optax.Schedule`` of the *global* step.
The training step sets the state's learning rate to ``lr(s)`` before every update
(:func:`set_learning_rate`, inside :meth:`Recipe.update`), so rebuilding the optimizer state after
a refinement (new shapes) does not restart the schedule. Both ``noisy_dyn.fit`` and
``basis_ode.fit`` take one (``recipe=``).

The recipes of the two papers, with ``g`` the gradient and ``w`` the parameters:

* :class:`SGDRecipe` (Queiruga et al., 2021, images): ``m <- mu m + (g + wd w)``,
  ``w <- w - lr(s) m`` with ``mu = 0.9``, ``wd = 5e-4`` (L2 on the parameters; running statistics
  are not optimised) and ``lr(s) = lr0 * factor ** #{d in drops : d * steps_per_epoch <= s}``
  (:func:`step_schedule`);
* :class:`AdamRsqrtRecipe` (Queiruga et al., 2021, tagger): AdamW with ``b1 = 0.9, b2 = 0.98,
  eps = 1e-9``, decoupled weight decay 0.1 and
  ``lr(s) = lr0 * min((s + 1) / warmup, sqrt(warmup / (s + 1)))`` (:func:`rsqrt_schedule`:
  linear warm-up, then inverse-square-root decay);
* :class:`AdamStepDecay` (Lim et al., 2021, Noisy RNNs): Adam (optax's defaults) and
  ``lr(s) = lr0`` for the first ``ceil(decay_at * epochs)`` epochs, ``lr0 * factor`` after
  (x0.1 from epoch 91 of 100); its schedule depends on the run's length
  (:meth:`Recipe.run_schedule`).

Recipes are immutable, hashable objects (a jitted step is cached per recipe); a name such as
``"sgd"`` is parsed once at the edge by :func:`recipe_by_name`. A new recipe subclasses
:class:`Recipe` and gives :meth:`Recipe.optimizer` and :meth:`Recipe.schedule`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from jaxtyping import PyTree

from ._named import named
from ._types import RealScalar

__all__ = [
    "RECIPES",
    "AdamRsqrtRecipe",
    "AdamStepDecay",
    "Recipe",
    "SGDRecipe",
    "check_learning_rate",
    "decay_epoch",
    "recipe_by_name",
    "rsqrt_schedule",
    "set_learning_rate",
    "step_schedule",
]


# --------------------------------------------------------------------------------------------
# Schedules (functions of the global step)
# --------------------------------------------------------------------------------------------


def step_schedule(
    learning_rate: RealScalar, steps_per_epoch: int, lr_drops: Sequence[int], factor: float = 0.1
) -> optax.Schedule:
    """``lr(s) = learning_rate * factor ** #{d in lr_drops : d * steps_per_epoch <= s}``, as an
    ``optax.piecewise_constant_schedule`` (a drop listed twice multiplies twice)."""
    scales: dict[int, float] = {}
    for d in lr_drops:
        b = int(d) * int(steps_per_epoch)
        scales[b] = scales.get(b, 1.0) * factor
    return optax.piecewise_constant_schedule(learning_rate, scales)


def rsqrt_schedule(learning_rate: RealScalar, warmup_steps: int) -> optax.Schedule:
    """``lr(s) = learning_rate * min((s + 1) / warmup, sqrt(warmup / (s + 1)))``: linear warm-up,
    then inverse-square-root decay (an optax schedule: a function of the step count)."""
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}.")

    def schedule(step):
        s = jnp.asarray(step, jnp.float32) + 1.0
        return learning_rate * jnp.minimum(s / warmup_steps, jnp.sqrt(warmup_steps / s))

    return schedule


def set_learning_rate(opt_state: Any, learning_rate: Any) -> Any:
    """``opt_state`` of an ``optax.inject_hyperparams`` optimizer with its learning rate set
    (cast to the stored dtype, so the state keeps its structure and dtypes)."""
    old = opt_state.hyperparams["learning_rate"]
    lr = jnp.asarray(learning_rate).astype(jnp.asarray(old).dtype)
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})


def decay_epoch(decay_at: float, epochs: int) -> int:
    """The number of epochs before a decay at the fraction ``decay_at`` of a run of ``epochs``:
    ``ceil(decay_at * epochs)`` (90 of 100 for 0.9; a run shorter than ``1 / (1 - decay_at)``
    epochs does not decay)."""
    return int(math.ceil(decay_at * epochs - 1e-9))


def check_learning_rate(learning_rate: Any) -> float:
    """``learning_rate`` as a float, refused in one line unless a finite number ``> 0`` (the
    check of both packages' ``fit``)."""
    try:
        lr = float(learning_rate)
    except (TypeError, ValueError):
        lr = math.nan
    if isinstance(learning_rate, bool) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {learning_rate!r}.")
    return lr


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


def _finite(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(value, bool) or not math.isfinite(x) or x < low or (strict and x == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return x


class Recipe(abc.ABC):
    """An optimizer direction and a learning-rate schedule: ``w <- w - lr(s) D(g)``.

    Subclasses are frozen dataclasses (immutable and hashable) and give:

    - :meth:`optimizer`: ``D``, an ``optax.inject_hyperparams`` transformation with a
      ``learning_rate`` hyperparameter (the step overwrites it with ``lr(s)``);
    - :meth:`schedule`: ``lr``, an ``optax.Schedule`` of the global step.
    """

    name: ClassVar[str] = "custom"

    @abc.abstractmethod
    def optimizer(self, learning_rate: RealScalar) -> optax.GradientTransformation:
        """The direction ``D``, with ``learning_rate`` as its initial injected hyperparameter."""

    @abc.abstractmethod
    def schedule(self, learning_rate: RealScalar, steps_per_epoch: int) -> optax.Schedule:
        """``lr(s)`` for the peak learning rate ``learning_rate`` (``steps_per_epoch`` converts
        epoch boundaries into steps)."""

    def run_schedule(
        self, learning_rate: RealScalar, steps_per_epoch: int, epochs: int
    ) -> optax.Schedule:
        """``lr(s)`` of a run of ``epochs`` epochs: :meth:`schedule` (which does not depend on
        the run's length) unless a recipe overrides it (:class:`AdamStepDecay` does)."""
        return self.schedule(learning_rate, steps_per_epoch)

    def init(self, learning_rate: RealScalar, params: PyTree) -> PyTree:
        """The optimizer state of ``params``: ``optimizer(learning_rate).init(params)``."""
        return self.optimizer(learning_rate).init(params)

    def update(
        self,
        grads: PyTree,
        opt_state: PyTree,
        params: PyTree,
        *,
        learning_rate: RealScalar,
        rate: RealScalar,
    ) -> tuple[PyTree, PyTree]:
        """One step ``w <- w - rate * D(g)``: ``(new params, new optimizer state)``, with
        ``rate = lr(s)`` the schedule at the global step (set in the state by
        :func:`set_learning_rate` before the update) and ``learning_rate`` the peak ``lr0``."""
        optimizer = self.optimizer(learning_rate)
        opt_state = set_learning_rate(opt_state, rate)
        updates, new_opt = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_opt

    def learning_rate_at(
        self, learning_rate: RealScalar, steps_per_epoch: int, epochs: int, step: int
    ) -> float:
        """``lr(step)`` on the host, as a Python float (what a run's history records)."""
        return float(self.run_schedule(learning_rate, steps_per_epoch, epochs)(step))

    def fingerprint(self) -> dict[str, Any]:
        """The recipe's part of a run's fingerprint: its name, class and :meth:`settings` (a
        run resumed with another recipe or other settings is refused)."""
        cls = type(self)
        return {"recipe": self.name, "recipe_class": f"{cls.__module__}.{cls.__qualname__}",
                **self.settings()}  # fmt: skip

    def check_epochs(self, epochs: int) -> None:  # noqa: B027 - a hook: nothing by default
        """Refuse settings that cannot take effect in a run of ``epochs`` epochs."""

    def settings(self) -> dict[str, Any]:
        """The recipe's settings as JSON-able values (recorded in a run's fingerprint, so a run
        resumed with other settings is refused): the dataclass fields, or else the public
        instance attributes; a value that is not a number, string or list of them is recorded
        by its ``repr``."""
        if dataclasses.is_dataclass(self):
            out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        else:
            out = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {k: _json_value(v) for k, v in out.items()}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    return repr(value)


@dataclasses.dataclass(frozen=True)
class SGDRecipe(Recipe):
    """SGD with heavy-ball momentum, L2 weight decay and a step schedule (the image recipe).

    ``m <- momentum m + (g + weight_decay w)``, ``w <- w - lr(s) m`` with
    ``lr(s) = lr0 * lr_factor ** #{d in lr_drops : d * steps_per_epoch <= s}``: the optax chain
    ``add_decayed_weights(weight_decay), trace(momentum), scale_by_learning_rate`` and
    :func:`step_schedule`.

    Attributes:
        momentum: ``mu`` in [0, 1).
        weight_decay: ``wd >= 0``.
        lr_drops: epochs (>= 1) at whose start the learning rate is multiplied by ``lr_factor``.
        lr_factor: the factor of each drop, in (0, 1].
    """

    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_drops: Sequence[int] = ()  # stored as a tuple
    lr_factor: float = 0.1
    name: ClassVar[str] = "sgd"

    def __post_init__(self):
        momentum = _finite("SGDRecipe momentum", self.momentum)
        if momentum >= 1:
            raise ValueError(f"SGDRecipe momentum must lie in [0, 1), got {self.momentum!r}.")
        _finite("SGDRecipe weight_decay", self.weight_decay)
        factor = _finite("SGDRecipe lr_factor", self.lr_factor, strict=True)
        if factor > 1:
            raise ValueError(f"SGDRecipe lr_factor must lie in (0, 1], got {self.lr_factor!r}.")
        drops = tuple(int(d) for d in self.lr_drops)
        if any(int(d) != d for d in self.lr_drops):
            raise ValueError(f"SGDRecipe lr_drops must be whole epochs, got {self.lr_drops!r}.")
        object.__setattr__(self, "lr_drops", drops)

    def optimizer(self, learning_rate: RealScalar) -> optax.GradientTransformation:
        return optax.inject_hyperparams(_sgd, static_args=("momentum", "weight_decay"))(
            learning_rate=jnp.float32(learning_rate),
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )

    def schedule(self, learning_rate: RealScalar, steps_per_epoch: int) -> optax.Schedule:
        return step_schedule(learning_rate, steps_per_epoch, self.lr_drops, self.lr_factor)

    def check_epochs(self, epochs: int) -> None:
        """Drops must lie in ``[1, epochs]`` (a drop at ``epochs`` takes effect when a finished
        run is continued): a drop at 0 would replace the learning rate, a later one never
        happens."""
        bad = [d for d in self.lr_drops if not 1 <= d <= epochs]
        if bad:
            raise ValueError(
                f"lr_drops (--lr-drops) epochs {bad} lie outside [1, epochs={epochs}]: a drop "
                "at 0 would replace the learning rate, one after the last epoch never happens."
            )


@dataclasses.dataclass(frozen=True)
class AdamRsqrtRecipe(Recipe):
    """AdamW with linear warm-up and inverse-square-root decay (the tagger recipe).

    The optax chain ``scale_by_adam(b1, b2, eps), add_decayed_weights(weight_decay),
    scale_by_learning_rate`` and :func:`rsqrt_schedule`,
    ``lr(s) = lr0 * min((s + 1) / warmup_steps, sqrt(warmup_steps / (s + 1)))``.

    Attributes:
        warmup_steps: steps of linear warm-up (>= 1; the paper uses 8000).
        weight_decay: decoupled weight decay (>= 0).
        b1, b2, eps: Adam's moment decays and denominator offset.
    """

    warmup_steps: int = 8000
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.98
    eps: float = 1e-9
    name: ClassVar[str] = "adam_rsqrt"

    def __post_init__(self):
        if isinstance(self.warmup_steps, bool) or int(self.warmup_steps) != self.warmup_steps:
            raise ValueError(f"warmup_steps must be a whole number, got {self.warmup_steps!r}.")
        if int(self.warmup_steps) < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {self.warmup_steps}.")
        object.__setattr__(self, "warmup_steps", int(self.warmup_steps))
        _finite("AdamRsqrtRecipe weight_decay", self.weight_decay)
        for name in ("b1", "b2"):
            if _finite(f"AdamRsqrtRecipe {name}", getattr(self, name)) >= 1:
                raise ValueError(f"AdamRsqrtRecipe {name} must lie in [0, 1).")
        _finite("AdamRsqrtRecipe eps", self.eps, strict=True)

    def optimizer(self, learning_rate: RealScalar) -> optax.GradientTransformation:
        return optax.inject_hyperparams(_adamw, static_args=("weight_decay", "b1", "b2", "eps"))(
            learning_rate=jnp.float32(learning_rate),
            weight_decay=self.weight_decay,
            b1=self.b1,
            b2=self.b2,
            eps=self.eps,
        )

    def schedule(self, learning_rate: RealScalar, steps_per_epoch: int) -> optax.Schedule:
        return rsqrt_schedule(learning_rate, self.warmup_steps)


@dataclasses.dataclass(frozen=True)
class AdamStepDecay(Recipe):
    """Adam and one step decay of the learning rate (the Noisy RNN recipe of Lim et al., 2021).

    ``w <- w - lr(s) adam(g)`` with optax's ``scale_by_adam()`` (``b1 = 0.9, b2 = 0.999,
    eps = 1e-8``) and ``lr(s) = lr0`` for ``s < ceil(decay_at * epochs) * steps_per_epoch``,
    ``lr0 * factor`` from there on (:func:`decay_epoch`; x0.1 from epoch 91 of 100 with the
    defaults). A run shorter than ``1 / (1 - decay_at)`` epochs (10 for 0.9) never decays.

    The optimizer state is Adam's moments alone (``optax.ScaleByAdamState``) and the rate is
    applied in the step, so one compiled step serves every learning rate (it may be traced, as
    in an ensemble) and checkpoints of ``noisy_dyn.fit`` written before the recipe existed
    resume. :meth:`optimizer` gives the equivalent injected optax chain.

    Attributes:
        decay_at: the fraction of the run's epochs before the decay, in [0, 1].
        factor: the factor of the decay, finite and >= 0.
    """

    decay_at: float = 0.9
    factor: float = 0.1
    name: ClassVar[str] = "adam_step"

    def __post_init__(self):
        at = _finite("AdamStepDecay decay_at", self.decay_at)
        if at > 1:
            raise ValueError(f"AdamStepDecay decay_at must lie in [0, 1], got {self.decay_at!r}.")
        _finite("AdamStepDecay factor", self.factor)
        object.__setattr__(self, "decay_at", at)
        object.__setattr__(self, "factor", float(self.factor))

    def optimizer(self, learning_rate: RealScalar) -> optax.GradientTransformation:
        return optax.inject_hyperparams(_adam)(learning_rate=jnp.float32(learning_rate))

    def decay_epoch(self, epochs: int) -> int:
        """The epochs before the decay in a run of ``epochs``: ``ceil(decay_at * epochs)``."""
        return decay_epoch(self.decay_at, epochs)

    def schedule(self, learning_rate: RealScalar, steps_per_epoch: int) -> optax.Schedule:
        raise TypeError(
            "AdamStepDecay decays after a fraction of the run: its schedule needs the run's "
            "length; call run_schedule(learning_rate, steps_per_epoch, epochs)."
        )

    def run_schedule(
        self, learning_rate: RealScalar, steps_per_epoch: int, epochs: int
    ) -> optax.Schedule:
        return step_schedule(
            learning_rate, steps_per_epoch, (self.decay_epoch(epochs),), self.factor
        )

    def learning_rate_at(
        self, learning_rate: RealScalar, steps_per_epoch: int, epochs: int, step: int
    ) -> float:
        # in Python floats: lr0 or lr0 * factor exactly, whatever JAX's default float width
        after = step >= self.decay_epoch(epochs) * steps_per_epoch
        return learning_rate * (self.factor if after else 1.0)

    def init(self, learning_rate: RealScalar, params: PyTree) -> PyTree:
        return _ADAM.init(params)

    def update(
        self,
        grads: PyTree,
        opt_state: PyTree,
        params: PyTree,
        *,
        learning_rate: RealScalar,
        rate: RealScalar,
    ) -> tuple[PyTree, PyTree]:
        updates, new_opt = _ADAM.update(grads, opt_state, params)
        rate = jnp.asarray(rate)
        new = jax.tree_util.tree_map(lambda p, u: p - rate.astype(u.dtype) * u, params, updates)
        return new, new_opt


# Adam's moment estimates: the state of AdamStepDecay (the rate is applied in the step)
_ADAM = optax.scale_by_adam()


def _adam(learning_rate):
    return optax.chain(optax.scale_by_adam(), optax.scale_by_learning_rate(learning_rate))


def _sgd(learning_rate, momentum, weight_decay):
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.trace(decay=momentum),
        optax.scale_by_learning_rate(learning_rate),
    )


def _adamw(learning_rate, weight_decay, b1, b2, eps):
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(learning_rate),
    )


RECIPES: dict[str, type[Recipe]] = {
    "sgd": SGDRecipe,
    "adam_rsqrt": AdamRsqrtRecipe,
    "adam_step": AdamStepDecay,
}
"""The built-in recipes by name (the names of :func:`recipe_by_name` and of run files)."""


def recipe_by_name(name: str, **settings: Any) -> Recipe:
    """The recipe called ``name`` (``"sgd"``, ``"adam_rsqrt"`` or ``"adam_step"``) with
    ``settings`` (its fields).

    Strings are for the edges (command line, run files); the library takes the objects:
    ``recipe_by_name("sgd", lr_drops=(30, 60)) == SGDRecipe(lr_drops=(30, 60))``.
    """
    return named(name, RECIPES, "recipe", **settings)
