"""Training of ODE-Nets: ``fit``, ``accuracy``, refinement; the loop is ``trainkit``'s.

One verb, ``fit(model, train, ...)``, trains any Flax linen classifier whose variables are
``{"params": ..., <mutable collections such as "batch_stats">}`` and whose call is
``model.apply(variables, inputs, train=bool, mutable=[...])``. Two kinds of data:

* images: ``train = (xs, ys)`` with ``xs`` of shape (N, H, W, C) and integer labels ``ys`` (N,);
  the loss is the mean cross-entropy over the batch;
* tagging: ``train = (tokens, tags, lengths)`` with (N, T) integer tokens and tags and (N,)
  lengths; the loss is the cross-entropy averaged over the real (unpadded) positions, and the
  model is called as ``model.apply(variables, tokens, mask=positions < lengths, train=...)``.

The update of every step is a :class:`trainkit.Recipe`'s (``trainkit._recipes``; re-exported as
``basis_ode.Recipe``): an optax direction
``D`` and a learning-rate schedule ``lr(s)`` of the global step, ``w <- w - lr(s) D(g)``:
:class:`SGDRecipe` (momentum, L2 decay, step drops: the image recipe of Queiruga et al., 2021) or
:class:`AdamRsqrtRecipe` (AdamW, warm-up and inverse-square-root decay: the tagger recipe). The
learning rate is a function of the global step (not of the optimizer's state), so rebuilding the
optimizer state after a refinement does not restart the schedule.

Refinement (``refine_at``): at the start of each listed epoch (0-based) every ODE block's
coefficients are refined function-preservingly (piecewise constant K -> 2K, hat K -> 2K - 1, ...)
with ``refine_variables`` and ``n_steps`` doubles; the optimizer state is rebuilt for the new
shapes and the jitted step retraces.

Reproducibility, checkpoints, resume, divergence and the history format are ``trainkit``'s (see
``trainkit.train``): keys ``split(key(seed))`` into an init and a noise stream (the step ``s``
gets ``fold_in(noise_key, s)``, used by ``augment``), data order ``epoch_order(N, seed, e)``.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jaxtyping import Array, ArrayLike, Float, Int

import trainkit
from trainkit import (
    EVAL_BATCH_SIZE,
    AdamRsqrtRecipe,
    BestValidation,
    LastEpoch,
    Recipe,
    SGDRecipe,
    atomic_write,
    evaluate_padded,
)
from trainkit import CheckpointMismatchError as CheckpointMismatchError
from trainkit import TrainingDiverged as TrainingDiverged
from trainkit import list_checkpoints as list_checkpoints
from trainkit import load_latest_checkpoint as load_latest_checkpoint
from trainkit.internal import (
    cached_program,
    check_finite,
    check_label_space,
    check_learning_rate,
    takes_train_options,
    to_host,
)

from ._bases import basis_by_name
from ._compress import refine_variables
from ._expansion import basis_of
from ._integrate import ButcherTableau, scheme_by_name
from ._model_io import legacy_tags, upgrade_legacy_variables, wrap_legacy_coefficients

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

NonFiniteError = TrainingDiverged  # the former name of basis_ode's divergence error
SGD_RECIPE = SGDRecipe()  # fit's default recipe (the paper's image recipe)


def _atomic_write(path: Any, data: bytes) -> None:  # kept for callers of the former helper
    atomic_write(path, data)


# --------------------------------------------------------------------------------------------
# Input checks (before anything is traced)
# --------------------------------------------------------------------------------------------


def _check_data(data: Any, name: str, num_classes: int | None = None) -> tuple[np.ndarray, ...]:
    """``(xs, ys)`` images or ``(tokens, tags, lengths)``: shapes, dtypes, ranges, finiteness."""
    if not isinstance(data, tuple | list) or len(data) not in (2, 3):
        raise TypeError(
            f"{name} must be a tuple (xs, ys) of images and labels or (tokens, tags, lengths) "
            f"for tagging, got {type(data).__name__}."
        )
    arrays = tuple(np.asarray(a) for a in data)
    n = arrays[0].shape[0] if arrays[0].ndim else -1
    if any(a.ndim == 0 or a.shape[0] != n for a in arrays):
        raise ValueError(
            f"{name}: all arrays need the same leading (example) axis, got shapes "
            f"{[a.shape for a in arrays]}."
        )
    if not np.issubdtype(arrays[1].dtype, np.integer):
        raise TypeError(f"{name}: labels/tags must be integers, got dtype {arrays[1].dtype}.")
    if len(arrays) == 2:
        _check_images(arrays[0], arrays[1], name)
        targets = arrays[1]
    else:
        targets = _check_tagging(*arrays, name)
    if (
        num_classes is not None
        and targets.size
        and (targets.min() < 0 or targets.max() >= num_classes)
    ):
        raise ValueError(
            f"{name}: labels must lie in [0, num_classes={num_classes}), got range "
            f"[{targets.min()}, {targets.max()}]; build the model with more classes or remap "
            "the labels."
        )
    return arrays


def _model_classes(model: Any) -> int | None:
    """The number of classes (or tags) a model predicts, None if it does not say."""
    value = getattr(model, "num_classes", None) or getattr(model, "num_tags", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_channels(variables: Any, arrays: tuple[np.ndarray, ...], name: str) -> None:
    """Images must have the channels the model's first convolution takes."""
    params = variables.get("params", {}) if hasattr(variables, "get") else {}
    kernel = params.get("stem_conv", {}).get("kernel") if hasattr(params, "get") else None
    if kernel is None or len(arrays) != 2 or arrays[0].ndim != 4:
        return
    channels = int(np.shape(kernel)[2])
    if arrays[0].shape[3] != channels:
        raise ValueError(
            f"{name}: the model takes images with {channels} channel(s) (N, H, W, {channels}), "
            f"got shape {arrays[0].shape}; give data of the kind it was trained on."
        )


def _check_images(xs: np.ndarray, ys: np.ndarray, name: str) -> None:
    if xs.ndim != 4:
        raise ValueError(f"{name}: images must have shape (N, H, W, C), got {xs.shape}.")
    if xs.shape[1] in (1, 3) and xs.shape[3] not in (1, 3):
        raise ValueError(
            f"{name}: images of shape {xs.shape} look channels-first (N, C, H, W); the models "
            "take (N, H, W, C): pass xs.transpose(0, 2, 3, 1)."
        )
    if not np.issubdtype(xs.dtype, np.floating):
        raise TypeError(f"{name}: images must be floating point, got dtype {xs.dtype}.")
    if 0 in xs.shape[1:]:
        raise ValueError(f"{name}: images of shape {xs.shape[1:]} hold no pixels; give images "
                         "with height, width and channels >= 1.")  # fmt: skip
    if not np.all(np.isfinite(xs)):
        bad = int(np.sum(~np.isfinite(xs)))
        raise ValueError(f"{name}: images hold {bad} NaN or infinite values; clean them first.")
    check_finite(f"{name}: the image array", xs, cast_to=jnp.result_type(float))
    if ys.ndim != 1:
        raise ValueError(f"{name}: labels must be a vector (N,), got shape {ys.shape}.")


def _check_tagging(tokens, tags, lengths, name: str) -> np.ndarray:
    if tokens.ndim != 2 or tags.shape != tokens.shape or lengths.ndim != 1:
        raise ValueError(
            f"{name}: tagging data needs tokens (N, T), tags (N, T) and lengths (N,), got "
            f"{tokens.shape}, {tags.shape}, {lengths.shape}."
        )
    if not np.issubdtype(tokens.dtype, np.integer) or not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"{name}: tokens and lengths must be integers.")
    if len(lengths) and (lengths.min() < 1 or lengths.max() > tokens.shape[1]):
        raise ValueError(f"{name}: lengths must lie in [1, T={tokens.shape[1]}].")
    return tags[np.arange(tokens.shape[1])[None, :] < lengths[:, None]]


def _num_classes(model: Any, arrays: tuple) -> int | None:
    """The number of logits: ``model.num_classes`` / ``num_tags``, else from the traced shape."""
    for name in ("num_classes", "num_tags"):
        if isinstance(getattr(model, name, None), int):
            return int(getattr(model, name))
    try:
        variables = jax.eval_shape(lambda: _init_variables(model, arrays, 0))
        sample = tuple(a[:1] for a in arrays)
        out = jax.eval_shape(lambda v: _forward(model, v, sample, train=False), variables)
        return int(out[0].shape[-1])
    except Exception:  # noqa: BLE001 - the model will say what is wrong when it is run
        return None


def _check_tags(arrays: tuple) -> None:
    """Refuse tagging data whose real tokens all carry one tag (as ``check_label_space``
    refuses one class): a tagger that always answers it scores 100 % and learns nothing."""
    tags, lengths = np.asarray(arrays[1]), np.asarray(arrays[2])
    real = tags[np.arange(tags.shape[1])[None, :] < lengths[:, None]]
    found = np.unique(real)
    if found.size == 1:
        raise ValueError(
            f"train tags: every one of the {real.size} tokens has the tag {int(found[0])}; a "
            "tagger needs tokens of at least two tags to learn from (a CoNLL-U column of '_' "
            "only? read the other one: basis_ode.data.load_ud(..., column=...))."
        )


def _check_options(recipe: Any, learning_rate: Any, refine_at: Sequence[int], model) -> None:
    if isinstance(recipe, str):
        raise TypeError(
            f"recipe takes a recipe object, got the name {recipe!r}: pass "
            f"basis_ode.recipe_by_name({recipe!r}, ...) or basis_ode.SGDRecipe(...) / "
            "basis_ode.AdamRsqrtRecipe(...)."
        )
    if not isinstance(recipe, Recipe):
        raise TypeError(
            "recipe must be a basis_ode.Recipe (SGDRecipe(...), AdamRsqrtRecipe(...) or a "
            f"subclass), got {type(recipe).__name__}."
        )
    check_learning_rate(learning_rate)
    if refine_at and not (hasattr(model, "n_steps") and hasattr(model, "basis")):
        raise TypeError(
            "refine_at needs a model with `n_steps` and `basis` attributes (an ODE-Net); "
            f"{type(model).__name__} has none. Pass refine_at=()."
        )


def _check_epoch_lists(epochs: Any, refine_at: Sequence[int], recipe: Recipe) -> None:
    """Refinement epochs must lie in ``[0, epochs)`` (outside, they would never happen), and the
    recipe's epoch settings must take effect in ``epochs`` epochs (``Recipe.check_epochs``)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
        return  # refused with its own message by the loop's checks
    late = [int(e) for e in refine_at if not 0 <= int(e) < epochs]
    if late:
        raise ValueError(
            f"refine_at (--refine-at) epochs {late} lie outside [0, epochs={epochs}): they "
            "would never refine; give epochs before the last, or more epochs."
        )
    recipe.check_epochs(int(epochs))


# --------------------------------------------------------------------------------------------
# Forward pass, loss, evaluation
# --------------------------------------------------------------------------------------------


def _weights(batch) -> Array:
    """Per-target weights: ones for images, the padding mask for tagging."""
    if len(batch) == 2:
        return jnp.ones(batch[1].shape, jnp.float32)
    tags, lengths = batch[1], batch[2]
    return (jnp.arange(tags.shape[1])[None, :] < jnp.asarray(lengths)[:, None]).astype(jnp.float32)


def _forward(model, variables, arrays, *, train: bool):
    """Logits (and the updated mutable collections in training)."""
    mutable = [k for k in variables if k != "params"] if train else False
    if len(arrays) == 3:
        tokens, lengths = arrays[0], arrays[2]
        mask = jnp.arange(tokens.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
        out = model.apply(variables, tokens, mask=mask, train=train, mutable=mutable)
    else:
        out = model.apply(variables, arrays[0], train=train, mutable=mutable)
    return out if train else (out, {})


def _cross_entropy(logits, targets, weights):
    """(weighted CE sum, weighted correct count, weight sum)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets).astype(weights.dtype)
    return jnp.sum(ce * weights), jnp.sum(correct * weights), jnp.sum(weights)


def _with_solver(model, n_steps: int | None, method: ButcherTableau | None):
    updates = {}
    if n_steps is not None:
        if int(n_steps) < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps}.")
        updates["n_steps"] = int(n_steps)
    if method is not None:
        updates["method"] = method
    if updates:
        missing = [k for k in updates if not hasattr(model, k)]
        if missing:
            raise TypeError(f"{type(model).__name__} has no attribute(s) {missing} to override.")
        model = model.clone(**updates)
    return model


@cached_program(maxsize=16)
def _eval_fn(model):
    @jax.jit
    def fn(variables, batch, row_weight):
        logits, _ = _forward(model, variables, batch, train=False)
        w = _weights(batch) * (row_weight if len(batch) == 2 else row_weight[:, None])
        loss, correct, count = _cross_entropy(logits, batch[1], w.astype(logits.dtype))
        return {"loss": loss, "correct": correct, "count": count}

    return fn


def _evaluate(model, variables, arrays: tuple, batch_size: int) -> dict[str, float]:
    """``{"accuracy", "loss"}`` over the real targets, in padded batches of one shape."""
    fn = _eval_fn(model)
    out = evaluate_padded(lambda b, w: fn(variables, b, w), arrays, batch_size)
    count = max(float(out["count"]), 1.0)
    return {"accuracy": float(out["correct"]) / count, "loss": float(out["loss"]) / count}


def accuracy(
    model: Any,
    variables: Any,
    xs: Float[ArrayLike, "batch ..."] | Int[ArrayLike, "batch time"],
    ys: Int[ArrayLike, " batch"] | Int[ArrayLike, "batch time"],
    *,
    lengths: Int[ArrayLike, " batch"] | None = None,
    n_steps: int | None = None,
    method: ButcherTableau | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> float:
    """Accuracy of ``model`` in eval mode: ``mean(argmax logits == ys)`` over the real targets.

    Arguments:
        model, variables: the Flax module and its variables (any K: it is read from the shapes).
        xs, ys: images (N, H, W, C) and labels (N,), or tokens and tags (N, T) with ``lengths``.
        lengths: (N,) sentence lengths for tagging; positions ``>= length`` are not counted.
        n_steps, method: override the ODE solver of every block (integration steps, a
            :class:`basis_ode.ButcherTableau` such as ``RK4``) without retraining; ``None`` keeps
            the model's own.
        batch_size: evaluation batch size (memory only; the result does not depend on it).

    Returns:
        The accuracy in [0, 1] as a Python float.

    Examples:
        >>> import jax, jax.numpy as jnp, basis_ode as bo
        >>> _, _, (xs, ys) = bo.data.load_digits(seed=0)
        >>> model = bo.ConvODENet(width=4, basis=bo.PiecewiseConstant(2))
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
        >>> 0.0 <= bo.accuracy(model, variables, xs, ys) <= 1.0  # untrained: about chance
        True
    """
    arrays = (xs, ys) if lengths is None else (xs, ys, lengths)
    arrays = _check_data(arrays, "accuracy data", _model_classes(model))
    _check_channels(variables, arrays, "accuracy data")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    model = _with_solver(model, n_steps, method)
    return _evaluate(model, variables, arrays, int(batch_size))["accuracy"]


# --------------------------------------------------------------------------------------------
# Model state: initialisation, refinement
# --------------------------------------------------------------------------------------------


def _model_config(model) -> dict[str, str]:
    if dataclasses.is_dataclass(model):
        fields = {
            f.name: repr(getattr(model, f.name))
            for f in dataclasses.fields(model)
            if f.name not in ("parent", "name")
        }
    else:
        fields = {"repr": repr(model)}
    return {"class": type(model).__name__, **fields}


def block_K(variables: Any) -> int | None:
    """K of the ODE blocks: the leading axis of their expansions (None if there are none)."""
    basis = basis_of(variables)
    return None if basis is None else basis.K


def _refine_model(model, variables):
    """One function-preserving refinement: coefficients K -> refined K, n_steps doubles."""
    K = block_K(variables)
    n_steps = int(model.n_steps) if model.n_steps is not None else K
    new_variables, new_basis = refine_variables(variables)
    return model.clone(n_steps=2 * n_steps, basis=new_basis), new_variables


@cached_program(maxsize=16)
def _init_fn(model, tagging: bool):
    if tagging:
        return jax.jit(lambda key, x, mask: model.init(key, x, mask=mask, train=False))
    return jax.jit(lambda key, x: model.init(key, x, train=False))


def _init_variables(model, arrays, seed_or_key):
    """``model.init`` on one example, jitted (eager Flax init dispatches op by op)."""
    sample = tuple(a[:1] for a in arrays)
    key = jax.random.key(seed_or_key) if isinstance(seed_or_key, int) else seed_or_key
    if len(arrays) == 3:
        mask = np.arange(sample[0].shape[1])[None, :] < sample[2][:, None]
        return _init_fn(model, True)(key, sample[0], mask)
    return _init_fn(model, False)(key, sample[0])


def _split(variables) -> tuple[Any, Any]:
    return variables["params"], {k: v for k, v in variables.items() if k != "params"}


# --------------------------------------------------------------------------------------------
# The task given to trainkit
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Step:
    """The pure training step of one (model, recipe); hashable so that jit caches it."""

    model: Any
    recipe: Recipe
    learning_rate: float
    steps_per_epoch: int
    epochs: int
    augment: Any

    def __call__(self, state, batch, key, step, hyper):
        schedule = self.recipe.run_schedule(self.learning_rate, self.steps_per_epoch, self.epochs)
        params, model_state = state["params"], state["model_state"]
        inputs = batch[0] if self.augment is None else self.augment(key, batch[0])
        full = (inputs, *batch[1:])
        w = _weights(batch)

        def loss_fn(p):
            logits, new_state = _forward(self.model, {"params": p, **model_state}, full, train=True)
            loss, correct, count = _cross_entropy(logits, batch[1], w.astype(logits.dtype))
            return loss / jnp.maximum(count, 1.0), (dict(new_state), correct, count)

        (loss, (new_state, correct, count)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params
        )
        finite = jnp.isfinite(loss)
        for g in jax.tree.leaves(grads):
            finite = finite & jnp.all(jnp.isfinite(g))
        new_params, new_opt = self.recipe.update(
            grads, state["opt_state"], params, learning_rate=self.learning_rate, rate=schedule(step)
        )
        metrics = {"loss_sum": loss * count, "correct": correct, "count": count, "finite": finite}
        return {"params": new_params, "opt_state": new_opt, "model_state": new_state}, metrics


@dataclasses.dataclass(frozen=True, eq=False)
class _OdeTask:
    """basis_ode's model, recipe and data for :func:`trainkit.train`. ``meta["model_updates"]``
    holds what refinements changed (``n_steps``, and ``K`` of the basis)."""

    model: Any
    arrays: tuple
    validation: tuple | None
    recipe: Recipe
    learning_rate: float
    steps_per_epoch: int
    epochs: int
    refine_at: tuple
    augment: Any
    variables: Any
    eval_batch_size: int
    options: dict
    package: str = "basis_ode"

    @property
    def config(self) -> dict:
        return _model_config(self.model)

    @property
    def optimizer(self) -> dict:
        return self.options

    def model_of(self, meta: dict):
        updates = dict(meta.get("model_updates") or {})
        if "K" in updates:  # JSON-able meta: the refined basis as its K
            updates["basis"] = type(self.model.basis)(int(updates.pop("K")))
        return self.model.clone(**updates) if updates else self.model

    def _state(self, variables) -> dict:
        params, model_state = _split(variables)
        opt_state = self.recipe.init(self.learning_rate, params)
        return {"params": params, "opt_state": opt_state, "model_state": model_state}

    def init(self, key, meta):
        if self.variables is not None:
            return self._state(jax.tree.map(jnp.asarray, self.variables))
        return self._state(_init_variables(self.model, self.arrays, key))

    def template(self, meta):
        model = self.model_of(meta)
        abstract = jax.eval_shape(lambda: _init_variables(model, self.arrays, 0))
        if self.variables is not None:
            dtypes = jax.tree.map(lambda v: np.asarray(v).dtype, jax.device_get(self.variables))
            if jax.tree.structure(dtypes) == jax.tree.structure(abstract):
                abstract = jax.tree.map(
                    lambda a, d: jax.ShapeDtypeStruct(a.shape, d), abstract, dtypes
                )
        return jax.eval_shape(self._state, abstract)

    def step_fn(self, meta):
        model = self.model_of(meta)
        return _Step(model, self.recipe, self.learning_rate, self.steps_per_epoch, self.epochs,
                     self.augment)  # fmt: skip

    def hyper(self, meta):
        return {}

    def epoch_start(self, epoch, state, meta):
        if epoch not in self.refine_at:
            return state, meta
        host = to_host({"params": state["params"], **state["model_state"]})
        model, variables = _refine_model(self.model_of(meta), host)
        updates = {"n_steps": model.n_steps, "K": model.basis.K}
        return self._state(variables), {**meta, "model_updates": updates}

    def evaluate(self, state, meta):
        if self.validation is None:
            return {}
        variables = {"params": state["params"], **state["model_state"]}
        out = _evaluate(self.model_of(meta), variables, self.validation, self.eval_batch_size)
        return {"val_accuracy": out["accuracy"], "val_loss": out["loss"]}

    def record(self, state, meta, step):
        lr = self.recipe.learning_rate_at(
            self.learning_rate, self.steps_per_epoch, self.epochs, max(step - 1, 0)
        )
        model = self.model_of(meta)
        K = block_K({"params": state["params"]})
        return {
            "learning_rate": lr,
            "K": K,
            "n_steps": getattr(model, "n_steps", None) or K,
        }

    def export(self, state, meta):
        return jax.device_get({"params": state["params"], **state["model_state"]})

    # checkpoints of the format before the basis-expansion refactor (commit c60054b): model
    # fields n_basis and basis/method by name, plain coefficients beside a tag collection
    # "basis", an optimizer state without the injected learning rate

    def legacy_fingerprint(self, stored: dict) -> dict | None:
        """The fingerprint of an earlier-format run in today's terms (``n_basis`` and the basis
        and scheme names become today's ``basis`` and ``method`` reprs), or None when it is not
        one."""
        config = stored.get("config")
        if stored.get("package") != self.package or not isinstance(config, dict):
            return None
        return {**stored, "config": _legacy_config(config)} if "n_basis" in config else None

    def upgrade(self, meta: dict, state: dict, best: Any) -> tuple[dict, dict, Any]:
        """An earlier-format step in today's layout (:func:`_legacy_variables` on the variables
        and the best, :meth:`_legacy_opt_state` on the optimizer state, ``n_basis`` -> ``K`` in
        the task metas)."""
        variables = _legacy_variables({"params": state["params"], **state["model_state"]})
        family, K = _legacy_basis(state["model_state"])
        opt_state = self._legacy_opt_state(meta, state["opt_state"], variables["params"], family, K)
        params, model_state = _split(serialization.to_state_dict(variables))
        new = {"params": params, "opt_state": opt_state, "model_state": model_state}
        if best is not None:
            best = serialization.to_state_dict(_legacy_variables(dict(best)))
        b = dict(meta.get("best") or {})
        if isinstance(b.get("meta"), dict):
            b["meta"] = _legacy_task_meta(b["meta"])
        return {**meta, "task": _legacy_task_meta(meta.get("task") or {}), "best": b}, new, best

    def _legacy_opt_state(self, meta, old: dict, params, family: str, K: int) -> dict:
        """Today's optimizer state (state dict) from the earlier one: the earlier chain is
        today's ``inner_state`` without the trailing learning-rate scale (whose state is empty),
        its parameter-shaped parts in expansions; the injected ``count`` is the number of updates
        since the state was built (at step 0 or the last refinement), the learning rate the one
        the last update used."""
        optimizer = self.recipe.optimizer(self.learning_rate)
        fresh = serialization.to_state_dict(jax.eval_shape(optimizer.init, params))
        if not {"count", "hyperparams", "inner_state"} <= set(fresh):
            raise ValueError(f"the recipe's optimizer state {sorted(fresh)} has no inner_state")
        old = wrap_legacy_coefficients("its optimizer state", dict(old), family, K)
        inner = dict(fresh["inner_state"])
        unknown = sorted(set(old) - set(inner))
        if unknown:
            raise ValueError(f"its optimizer state holds parts {unknown} the recipe does not have")
        inner.update(serialization.to_state_dict(old))
        pos = meta["position"]
        step, epoch, batch = int(pos["step"]), int(pos["epoch"]), int(pos["batch"])
        built = [e for e in self.refine_at if e < epoch or (e == epoch and batch > 0)]
        count = step - max(built) * self.steps_per_epoch if built else step
        schedule = self.recipe.run_schedule(self.learning_rate, self.steps_per_epoch, self.epochs)
        lr = schedule(step - 1) if count > 0 else self.learning_rate
        hyper = fresh["hyperparams"]
        return {**fresh, "count": np.asarray(count, fresh["count"].dtype), "inner_state": inner,
                "hyperparams": {**hyper, "learning_rate": np.asarray(
                    lr, hyper["learning_rate"].dtype)}}  # fmt: skip

    def diverged_hint(self):
        lr = self.learning_rate
        return (
            f"Try a lower learning_rate (e.g. {lr / 10:g}), a longer warm-up, or check the inputs "
            "for NaN/inf."
        )


def _legacy_config(config: dict) -> dict:
    """An earlier model configuration (reprs of ``n_basis``, ``basis="<name>"``,
    ``method="<name>"``) in today's fields: ``basis`` and ``method`` as today's object reprs."""
    new = dict(config)
    try:
        K = int(ast.literal_eval(new.pop("n_basis")))
        new["basis"] = repr(basis_by_name(ast.literal_eval(new["basis"]), K))
        if "method" in new:
            new["method"] = repr(scheme_by_name(ast.literal_eval(new["method"])))
    except (KeyError, SyntaxError, TypeError, ValueError) as e:
        raise ValueError(f"its model configuration cannot be read in today's terms ({e})") from e
    return new


def _legacy_task_meta(meta: dict) -> dict:
    """An earlier task meta: ``model_updates.n_basis`` becomes ``model_updates.K``."""
    updates = dict(meta.get("model_updates") or {})
    if "n_basis" in updates:
        updates["K"] = int(updates.pop("n_basis"))
    return {**meta, "model_updates": updates} if updates else dict(meta)


def _legacy_basis(model_state: dict) -> tuple[str, int]:
    """``(family, K)`` named by the earlier tag collection ``model_state["basis"]``."""
    if "basis" not in model_state:
        raise ValueError("its model state has no basis tag collection")
    return legacy_tags("its model state", model_state["basis"])


def _legacy_variables(variables: dict) -> dict:
    """Earlier-format variables (raw, as stored) in today's layout (``_model_io``'s
    conversion: tags dropped, coefficients in expansions, K checked)."""
    if "basis" not in variables:
        raise ValueError("its variables have no basis tag collection")
    return upgrade_legacy_variables("its variables", dict(variables))


def _recipe_settings(recipe: Recipe) -> dict[str, Any]:
    """The recipe's part of the run fingerprint.

    The two built-in recipes keep the keys the recipe names had before they became objects
    (``momentum, weight_decay, lr_drops, lr_factor, warmup_steps`` and ``recipe``; a weight decay
    equal to the recipe's default written as ``None``, settings a recipe ignores at their former
    defaults), so that runs checkpointed before keep resuming. Other recipes record their name,
    class and :meth:`Recipe.settings`.
    """
    if type(recipe) is SGDRecipe:
        return {"momentum": recipe.momentum,
                "weight_decay": None if recipe.weight_decay == 5e-4 else recipe.weight_decay,
                "lr_drops": list(recipe.lr_drops), "lr_factor": recipe.lr_factor,
                "warmup_steps": 8000, "recipe": "sgd"}  # fmt: skip
    default = AdamRsqrtRecipe()
    if type(recipe) is AdamRsqrtRecipe and (recipe.b1, recipe.b2, recipe.eps) == (
        default.b1,
        default.b2,
        default.eps,
    ):
        return {"momentum": 0.9,
                "weight_decay": None if recipe.weight_decay == 0.1 else recipe.weight_decay,
                "lr_drops": [], "lr_factor": 0.1, "warmup_steps": recipe.warmup_steps,
                "recipe": "adam_rsqrt"}  # fmt: skip
    return recipe.fingerprint()


def _options(recipe, learning_rate, refine_at, augment, batch_size) -> dict:
    """The optimizer settings of the fingerprint (``epochs`` is left out on purpose: a finished
    run may be continued longer)."""
    return {
        "learning_rate": learning_rate,
        **_recipe_settings(recipe),
        "batch_size": batch_size,
        "refine_at": list(refine_at),
        "augment": None if augment is None else getattr(augment, "__name__", repr(augment)),
    }


def prepare_task(
    model, train, validation, *, learning_rate, recipe, refine_at, variables, augment,
    eval_batch_size, options,
) -> _OdeTask:  # fmt: skip
    """Check ``fit``'s arguments (before anything is traced) and build its task for
    :func:`trainkit.train` (``fit`` and ``fit_ensemble`` share it)."""
    _check_options(recipe, learning_rate, tuple(refine_at), model)
    _check_epoch_lists(options.epochs, refine_at, recipe)
    arrays = _check_data(train, "train")
    n_classes = _num_classes(model, arrays)
    arrays = _check_data(arrays, "train", n_classes)
    if len(arrays) == 2 and n_classes is not None:  # images (tagging pads its tags with 0)
        check_label_space("train labels", arrays[1], n_classes)
    if len(arrays) == 3:
        _check_tags(arrays)
    val_arrays = None if validation is None else _check_data(validation, "validation", n_classes)
    images = len(arrays) == 2
    if val_arrays is not None and images and val_arrays[0].shape[3:] != arrays[0].shape[3:]:
        raise ValueError(
            f"validation: images with {val_arrays[0].shape[3]} channel(s), the training images "
            f"have {arrays[0].shape[3]}; give validation images of the same kind."
        )
    if variables is not None:
        _check_channels(variables, arrays, "train")
    if val_arrays is not None and len(val_arrays[0]) == 0:
        raise ValueError(
            f"validation holds no examples (with {len(arrays[0])} training examples the "
            "validation split came out empty); pass more training data, or validation=None."
        )
    n = arrays[0].shape[0]
    refine = tuple(sorted(int(e) for e in refine_at))
    return _OdeTask(
        model=model, arrays=arrays, validation=val_arrays, recipe=recipe,
        learning_rate=float(learning_rate),
        steps_per_epoch=max(n // max(int(options.batch_size), 1), 1), epochs=options.epochs,
        refine_at=refine, augment=augment, variables=variables,
        eval_batch_size=int(eval_batch_size),
        options=_options(recipe, float(learning_rate), refine, augment, options.batch_size),
    )  # fmt: skip


@takes_train_options()
def fit(
    model: Any,
    train: tuple | list,
    *,
    learning_rate: float,
    recipe: Recipe = SGD_RECIPE,
    validation: tuple | list | None = None,
    refine_at: Sequence[int] = (),
    variables: Any = None,
    augment: Callable[..., ArrayLike] | None = None,
    select_best: bool | None = None,
    eval_batch_size: int = EVAL_BATCH_SIZE,
    options: trainkit.TrainOptions,
) -> trainkit.Trained:
    """Train ``model`` on ``train`` by minimising the cross-entropy with a training recipe.

    Each step computes ``L(w) = sum_i m_i CE(f_w(x_i), y_i) / sum_i m_i`` on one batch
    (``m_i`` = 1 for images, the padding mask for tagging), its gradient ``g``, and applies
    ``w <- w - lr(s) * D(g)`` where ``D`` and ``lr`` are the recipe's direction and schedule
    (:class:`basis_ode.Recipe`); mutable collections (BatchNorm statistics) take the values the
    model emits in training mode. The loop (checkpoints, resume, divergence, history, progress)
    is ``trainkit``'s, the same as ``noisy_dyn.fit``'s.

    Arguments:
        model: a Flax linen module (e.g. ``ConvODENet``, ``ODETransformerTagger``); for
            ``refine_at`` it needs ``n_steps`` and ``basis`` attributes.
        train: ``(xs, ys)`` images (N, H, W, C) and labels, or ``(tokens, tags, lengths)``.
            Checked before anything is traced: layout, dtypes, finiteness, label range.
        learning_rate: peak learning rate ``lr0`` (> 0) of the recipe's schedule.
        recipe: the direction and schedule: ``SGDRecipe(momentum=0.9, weight_decay=5e-4,
            lr_drops=(), lr_factor=0.1)`` (the default) or ``AdamRsqrtRecipe(warmup_steps=8000,
            weight_decay=0.1)``, or any :class:`basis_ode.Recipe`; ``recipe_by_name`` turns a
            name into one.
        validation: data in the same layout as ``train``, evaluated after every epoch (model
            selection uses it, never the test split).
        refine_at: epochs (0-based) at whose start K and n_steps double (function-preserving).
        variables: initial variables; by default ``model.init`` with the seed's init key.
        augment: optional ``augment(key, inputs) -> inputs`` applied inside the jitted step.
        select_best: the former switch: True means ``return_params=BestValidation()``, False
            ``LastEpoch()``.
        eval_batch_size: batch size of the validation pass (``trainkit.EVAL_BATCH_SIZE``).
        <train options>

    Returns:
        A :class:`trainkit.Trained` ``(model, params, history)``: the module that goes with the
        returned variables (after ``refine_at``, the refined one: its K and n_steps), the
        variables (``params`` and ``batch_stats``), and the history: per-epoch lists (epoch 1
        first) ``epoch``, ``step``, ``train_loss``, ``train_accuracy``, ``learning_rate``,
        ``K``, ``n_steps``, ``seconds`` and, with validation, ``val_accuracy``, ``val_loss``;
        plus ``best_epoch``, ``global_step``, ``interrupted``.

    Raises:
        trainkit.TrainingDiverged (alias ``NonFiniteError``): a non-finite loss or gradient;
            the last good checkpoint is kept; ``.step``, ``.epoch``, ``.variables`` tell more.
        trainkit.CheckpointMismatchError: ``checkpoint_dir`` holds another run.

    Examples:
        >>> import basis_ode as bo
        >>> (xs, ys), val, test = bo.data.load_digits(seed=0)
        >>> model = bo.ConvODENet(width=4, basis=bo.PiecewiseConstant(1), n_steps=1)
        >>> model, variables, history = bo.fit(model, (xs[:256], ys[:256]), learning_rate=0.1,
        ...                                    epochs=2, batch_size=64, refine_at=(1,),
        ...                                    progress=False)
        >>> model.n_steps, bo.basis_of(variables), history["K"]  # refined at epoch 1: K 1 -> 2
        (2, PiecewiseConstant(K=2), [1, 2])
    """
    if select_best is not None:
        options = options.replace(return_params=BestValidation() if select_best else LastEpoch())
    task = prepare_task(model, train, validation, learning_rate=learning_rate, recipe=recipe,
                        refine_at=refine_at, variables=variables, augment=augment,
                        eval_batch_size=eval_batch_size, options=options)  # fmt: skip
    settings = trainkit.Settings.from_options(options)
    result, history, meta = trainkit.train(task, task.arrays, settings)
    return trainkit.Trained(task.model_of(meta), result, history)
