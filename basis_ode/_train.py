"""Training of ODE-Nets: ``fit``, ``accuracy``, refinement, checkpoints, data parallelism.

One verb, ``fit(model, train, ...)``, trains any Flax linen classifier whose variables are
``{"params": ..., <mutable collections such as "batch_stats">}`` and whose call is
``model.apply(variables, inputs, train=bool, mutable=[...])``. Two kinds of data:

* images: ``train = (xs, ys)`` with ``xs`` of shape (N, H, W, C) and integer labels ``ys`` (N,);
  the loss is the mean cross-entropy over the batch;
* tagging: ``train = (tokens, tags, lengths)`` with (N, T) integer tokens and tags and (N,)
  lengths; the loss is the cross-entropy averaged over the real (unpadded) positions, and the
  model is called as ``model.apply(variables, tokens, mask=positions < lengths, train=...)``.

Recipes (SPEC 2.7). With ``g`` the gradient, ``w`` the parameters and ``s`` the global step:

* ``"sgd"`` (images): ``m <- 0.9 m + (g + wd w)``, ``w <- w - lr(s) m`` with ``wd = 5e-4`` on
  the parameters only (running statistics are not optimised) and a step schedule
  ``lr(s) = lr0 * 0.1 ** #{drops <= epoch(s)}``;
* ``"adam_rsqrt"`` (tagger): AdamW with ``b1 = 0.9, b2 = 0.98, eps = 1e-9``, decoupled weight decay
  0.1, and ``lr(s) = lr0 * min((s + 1) / warmup, sqrt(warmup / (s + 1)))`` (linear warm-up, then
  inverse-square-root decay).

The learning rate is a function of the global step held by the trainer (not of the optimizer's
state), so rebuilding the optimizer state after a refinement does not restart the schedule.

Refinement (``refine_at``): at the start of each listed epoch every ODE block's coefficients are
refined function-preservingly (piecewise constant K -> 2K, hat K -> 2K - 1, ...) with
``refine_variables`` and ``n_steps`` doubles; the optimizer state is rebuilt for the new shapes and
the jitted step retraces.

Reproducibility: the data order of epoch ``e`` is a pure function of ``(seed, e)`` and the PRNG
key of a step is ``fold_in(fold_in(key(seed), e), i)`` for the ``i``-th step of the epoch, so a
run resumed from a checkpoint is bit-identical to an uninterrupted one.

Checkpoints are orbax-checkpoint steps ``ckpt_<global step>`` with an array item (parameters,
mutable collections, optimizer state, key data) and a JSON item (configuration fingerprint,
counters, history); a step is finalized by orbax's rename of its temporary directory, so a kill
during a save leaves the previous steps intact and the half-written one is ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.serialization as serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, Int
from tqdm.auto import tqdm

from .data import epoch_order

_RECIPES = ("sgd", "adam_rsqrt")
# Options of ``fit`` that change the trajectory of training; a checkpoint written under other
# values is refused. ``epochs`` is left out on purpose: a finished run may be continued longer.
_FINGERPRINT_OPTIONS = (
    "batch_size",
    "learning_rate",
    "seed",
    "recipe",
    "refine_at",
    "momentum",
    "weight_decay",
    "lr_drops",
    "lr_factor",
    "warmup_steps",
    "augment",
)


class NonFiniteError(FloatingPointError):
    """Training produced a non-finite loss or gradient.

    Attributes:
        epoch, step: where it happened (``step`` is the global step).
        variables: the last good variables (the update at ``step`` was not applied).
    """

    def __init__(self, message: str, *, epoch: int, step: int, variables: Any):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.variables = variables


class CheckpointMismatchError(ValueError):
    """A checkpoint directory holds a run with a different configuration."""


# --------------------------------------------------------------------------------------------
# Optimizers and schedules
# --------------------------------------------------------------------------------------------


def step_schedule(
    learning_rate: float, steps_per_epoch: int, lr_drops: Sequence[int], factor: float = 0.1
) -> Callable[[Array], Array]:
    """``lr(s) = learning_rate * factor ** #{d in lr_drops : d * steps_per_epoch <= s}``."""
    boundaries = jnp.asarray([int(d) * steps_per_epoch for d in lr_drops], dtype=jnp.int32)

    def schedule(step):
        n = jnp.sum(jnp.asarray(step) >= boundaries) if len(lr_drops) else 0
        return learning_rate * factor ** jnp.asarray(n, jnp.float32)

    return schedule


def rsqrt_schedule(learning_rate: float, warmup_steps: int) -> Callable[[Array], Array]:
    """``lr(s) = learning_rate * min((s + 1) / warmup, sqrt(warmup / (s + 1)))``."""
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}.")

    def schedule(step):
        s = jnp.asarray(step, jnp.float32) + 1.0
        return learning_rate * jnp.minimum(s / warmup_steps, jnp.sqrt(warmup_steps / s))

    return schedule


def make_optimizer(
    recipe: str,
    *,
    learning_rate: float,
    steps_per_epoch: int,
    momentum: float = 0.9,
    weight_decay: float | None = None,
    lr_drops: Sequence[int] = (),
    lr_factor: float = 0.1,
    warmup_steps: int = 8000,
) -> tuple[optax.GradientTransformation, Callable[[Array], Array]]:
    """The SPEC 2.7 recipe as ``(direction, schedule)``; update ``-schedule(step) * direction``.

    Arguments:
        recipe: ``"sgd"`` (momentum SGD with L2 weight decay 5e-4 and a step schedule) or
            ``"adam_rsqrt"`` (AdamW, betas (0.9, 0.98), eps 1e-9, decoupled decay 0.1, warm-up
            then rsqrt decay).
        learning_rate: the peak learning rate ``lr0``.
        steps_per_epoch: converts the epoch boundaries of ``lr_drops`` into steps.

    Returns:
        ``direction``: an optax transformation without the learning rate; ``schedule(step)``.
    """
    if recipe == "sgd":
        wd = 5e-4 if weight_decay is None else weight_decay
        direction = optax.chain(optax.add_decayed_weights(wd), optax.trace(decay=momentum))
        return direction, step_schedule(learning_rate, steps_per_epoch, lr_drops, lr_factor)
    if recipe == "adam_rsqrt":
        wd = 0.1 if weight_decay is None else weight_decay
        direction = optax.chain(
            optax.scale_by_adam(b1=0.9, b2=0.98, eps=1e-9), optax.add_decayed_weights(wd)
        )
        return direction, rsqrt_schedule(learning_rate, warmup_steps)
    raise ValueError(f"recipe must be one of {_RECIPES}, got {recipe!r}.")


# --------------------------------------------------------------------------------------------
# Data helpers
# --------------------------------------------------------------------------------------------


def _check_data(data: Any, name: str) -> tuple[np.ndarray, ...]:
    if not isinstance(data, tuple | list) or len(data) not in (2, 3):
        raise TypeError(
            f"{name} must be a tuple (xs, ys) of images and labels or (tokens, tags, lengths) "
            f"for tagging, got {type(data).__name__}."
        )
    arrays = tuple(np.asarray(a) for a in data)
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(
            f"{name}: all arrays need the same leading (example) axis, got shapes "
            f"{[a.shape for a in arrays]}."
        )
    if not np.issubdtype(arrays[1].dtype, np.integer):
        raise TypeError(f"{name}: labels/tags must be integers, got dtype {arrays[1].dtype}.")
    return arrays


def _step_key(seed: int, epoch: int, step_in_epoch: int) -> Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), epoch), step_in_epoch)


def _weights(arrays: tuple) -> np.ndarray:
    """Per-target weights: ones for images, the padding mask for tagging."""
    if len(arrays) == 2:
        return np.ones(arrays[1].shape, np.float32)
    tags, lengths = arrays[1], arrays[2]
    return (np.arange(tags.shape[1])[None, :] < lengths[:, None]).astype(np.float32)


def _forward(model, variables, arrays, *, train: bool):
    """Logits (and the updated mutable collections in training)."""
    mutable = [k for k in variables if k != "params"] if train else False
    if len(arrays) == 3:
        tokens, lengths = arrays[0], arrays[2]
        mask = jnp.arange(tokens.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
        out = model.apply(variables, tokens, mask=mask, train=train, mutable=mutable)
    else:
        out = model.apply(variables, arrays[0], train=train, mutable=mutable)
    if train:
        return out
    return out, {}


def _cross_entropy(logits, targets, weights):
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets).astype(weights.dtype)
    total = jnp.maximum(jnp.sum(weights), 1.0)
    return jnp.sum(ce * weights) / total, jnp.sum(correct * weights)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _with_solver(model, n_steps: int | None, method: str | None):
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


def accuracy(
    model: Any,
    variables: Any,
    xs: Float[Array, "batch ..."] | Int[Array, "batch time"],
    ys: Int[Array, " batch"] | Int[Array, "batch time"],
    *,
    lengths: Int[Array, " batch"] | None = None,
    n_steps: int | None = None,
    method: str | None = None,
    batch_size: int = 500,
) -> float:
    """Accuracy of ``model`` in eval mode: ``mean(argmax logits == ys)`` over the real targets.

    Arguments:
        model, variables: the Flax module and its variables (any K: it is read from the shapes).
        xs, ys: images (N, H, W, C) and labels (N,), or tokens and tags (N, T) with ``lengths``.
        lengths: (N,) sentence lengths for tagging; positions ``>= length`` are not counted.
        n_steps, method: override the ODE solver of every block (integration steps, scheme)
            without retraining; ``None`` keeps the model's own.
        batch_size: evaluation batch size (memory only; the result does not depend on it).

    Returns:
        The accuracy in [0, 1] as a Python float.
    """
    arrays = (xs, ys) if lengths is None else (xs, ys, lengths)
    arrays = _check_data(arrays, "accuracy data")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    model = _with_solver(model, n_steps, method)
    return _accuracy(_make_correct_fn(model), variables, arrays, int(batch_size))


@functools.lru_cache(maxsize=16)
def _make_correct_fn(model):
    @jax.jit
    def correct_fn(variables, batch, w):
        logits, _ = _forward(model, variables, batch, train=False)
        return _cross_entropy(logits, batch[1], w.astype(logits.dtype))[1]

    return correct_fn


def _accuracy(correct_fn, variables, arrays: tuple, batch_size: int) -> float:
    """Weighted accuracy over fixed-size batches (the last one padded with zero weight)."""
    weights = _weights(arrays)
    n = arrays[0].shape[0]
    bs = min(batch_size, n)
    pad = (-n) % bs
    if pad:
        arrays = tuple(np.concatenate([a, a[:pad]]) for a in arrays)
        weights = np.concatenate([weights, np.zeros_like(weights[:pad])])
    correct = 0.0
    for start in range(0, n + pad, bs):
        batch = tuple(a[start : start + bs] for a in arrays)
        correct += float(correct_fn(variables, batch, weights[start : start + bs]))
    return correct / max(float(weights.sum()), 1.0)


# --------------------------------------------------------------------------------------------
# Checkpoints
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


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then ``os.replace`` (for the log
    and ``best.msgpack``; checkpoints are orbax steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


_CKPT_PREFIX = "ckpt"  # orbax step directories ``ckpt_<10-digit global step>``


def _checkpoint_manager(directory: Path, keep: int | None, *, reading: bool = False) -> Any:
    """An orbax ``CheckpointManager`` over ``directory`` with two items per step: ``state``
    (a pytree of arrays, ``StandardSave``) and ``meta`` (JSON).

    Saves are synchronous (no background thread): when ``save`` returns, orbax has finalized the
    step by renaming its temporary directory, which is the atomic write. Step directories left
    unfinalized by a kill are never listed, and the next save removes them. With ``reading``
    the manager neither creates the directory nor cleans it (another process may be writing).
    """
    import orbax.checkpoint as ocp
    from absl import logging as absl_logging

    if absl_logging.get_verbosity() > absl_logging.WARNING:  # keep orbax's INFO lines quiet
        absl_logging.set_verbosity(absl_logging.WARNING)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not reading,
        enable_async_checkpointing=False,
        step_prefix=_CKPT_PREFIX,
        step_format_fixed_length=10,
        cleanup_tmp_directories=not reading,
    )
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory.resolve(), options=options, item_handlers=handlers)


def _step_path(manager: Any, step: int) -> Path:
    return Path(manager.directory) / f"{_CKPT_PREFIX}_{int(step):010d}"


def _save(manager: Any, step: int, arrays: Any, meta: dict[str, Any]) -> Path:
    import orbax.checkpoint as ocp

    step = int(step)
    if step in manager.all_steps():  # orbax never overwrites a step
        manager.delete(step)
    tree = serialization.to_state_dict(jax.device_get(arrays))
    args = ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta))
    if not manager.save(step, args=args, force=True):
        raise RuntimeError(f"orbax did not write checkpoint step {step} in {manager.directory}.")
    manager.wait_until_finished()
    return _step_path(manager, step)


def _read_meta(manager: Any, step: int) -> dict[str, Any]:
    import orbax.checkpoint as ocp

    return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta


def _flat(tree: Any) -> dict[str, Any]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def _read_arrays(manager: Any, step: int, template: Any = None) -> Any:
    """The arrays of ``step`` (as NumPy), in the structure of ``template`` when given.

    With a template (arrays or ``jax.ShapeDtypeStruct``), every stored shape and dtype must
    equal the template's (orbax would cast silently): ``CheckpointMismatchError`` otherwise.
    """
    import orbax.checkpoint as ocp

    if template is None:
        args = ocp.args.Composite(state=ocp.args.StandardRestore())
        return manager.restore(step, args=args).state
    target = serialization.to_state_dict(template)
    want = _flat(target)
    stored = _flat(manager.item_metadata(step).state)
    path = _step_path(manager, step)
    if want.keys() != stored.keys():
        raise CheckpointMismatchError(
            f"the checkpoint {path} holds arrays {sorted(set(stored) - set(want))} this run "
            f"does not have and lacks {sorted(set(want) - set(stored))}. Use a new checkpoint "
            "directory or pass resume=False."
        )
    for name, t in want.items():
        a = stored[name]
        if tuple(a.shape) != tuple(t.shape) or np.dtype(a.dtype) != np.dtype(t.dtype):
            raise CheckpointMismatchError(
                f"the checkpoint {path} stores {name} as {np.dtype(a.dtype)}{tuple(a.shape)}, "
                f"this run needs {np.dtype(t.dtype)}{tuple(t.shape)}. Use a new checkpoint "
                "directory or pass resume=False."
            )
    target = jax.tree.map(lambda t: jax.ShapeDtypeStruct(t.shape, t.dtype), target)
    restored = manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
    )
    return restored.state


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first: the orbax step directories
    ``ckpt_<step>`` (unfinalized ``*.orbax-checkpoint-tmp-*`` directories are ignored)."""
    import orbax.checkpoint as ocp

    d = Path(directory)
    if not d.is_dir():
        return []
    name_format = ocp.step.standard_name_format(
        step_prefix=_CKPT_PREFIX, step_format_fixed_length=10
    )
    for attempt in range(3):  # a step may be deleted (keep) while the directory is listed
        try:
            return [Path(m.path) for m in sorted(name_format.find_all(d), key=lambda m: m.step)]
        except FileNotFoundError:
            if attempt == 2:
                raise
    return []


def save_checkpoint(directory: str | os.PathLike, step: int, tree: dict, *, keep: int = 3) -> Path:
    """Save ``tree`` as the orbax step ``ckpt_<step>`` (synchronous, atomic); keep the last few.

    ``tree["meta"]`` (a JSON string or a JSON-able dict) goes to the JSON item, every other
    entry (arrays, nested dicts of arrays) to the array item.
    """
    meta = tree.get("meta", {})
    meta = json.loads(meta) if isinstance(meta, str) else meta
    manager = _checkpoint_manager(Path(directory), keep if keep > 0 else None)
    try:
        return _save(manager, step, {k: v for k, v in tree.items() if k != "meta"}, meta)
    finally:
        manager.close()


def load_latest_checkpoint(directory: str | os.PathLike) -> dict | None:
    """The newest readable checkpoint in ``directory`` as a nested dict of NumPy arrays, with its
    JSON item as the string ``"meta"`` (None if there is none)."""
    d = Path(directory)
    if not d.is_dir():
        return None
    manager = _checkpoint_manager(d, None, reading=True)
    try:
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                meta = _read_meta(manager, step)
                return {"meta": json.dumps(meta), **_read_arrays(manager, step)}
            except Exception as err:  # a damaged step (e.g. disk full): fall back to an older one
                warnings.warn(
                    f"skipping unreadable checkpoint {_step_path(manager, step)}: {err}",
                    stacklevel=2,
                )
        return None
    finally:
        manager.close()


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _default_mesh() -> Mesh:
    return Mesh(np.asarray(jax.local_devices()), ("data",))


def block_K(variables: Any) -> int | None:
    """K of the ODE blocks: the leading axis of the leaves under ``basis_coeffs`` (None if none)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables.get("params", variables)):
        if any(getattr(p, "key", None) == "basis_coeffs" for p in path):
            return int(leaf.shape[0])
    return None


def _refine_model(model, variables):
    """One function-preserving refinement: coefficients K -> refined K, n_steps doubles."""
    from ._compress import refine_variables

    K = block_K(variables)
    n_steps = int(model.n_steps) if model.n_steps is not None else K
    new_variables, new_basis = refine_variables(variables, model.basis)
    updates = {"n_steps": 2 * n_steps}
    if hasattr(model, "n_basis"):
        updates["n_basis"] = int(new_basis.K)
    return model.clone(**updates), new_variables


@functools.lru_cache(maxsize=16)
def _init_fn(model, tagging: bool):
    if tagging:
        return jax.jit(lambda key, x, mask: model.init(key, x, mask=mask, train=False))
    return jax.jit(lambda key, x: model.init(key, x, train=False))


def _init_variables(model, arrays, seed: int):
    """``model.init`` on one example, jitted (eager Flax init dispatches op by op)."""
    sample = tuple(a[:1] for a in arrays)
    key = jax.random.key(seed)
    if len(arrays) == 3:
        mask = np.arange(sample[0].shape[1])[None, :] < sample[2][:, None]
        return _init_fn(model, True)(key, sample[0], mask)
    return _init_fn(model, False)(key, sample[0])


def _abstract_run_state(model, arrays, seed: int, variables: Any, direction) -> dict:
    """Shapes and dtypes of a checkpoint of this run: ``model.init`` traced (not run) with
    ``jax.eval_shape``, with the dtypes of user-given ``variables``, plus optimizer and key."""
    abstract = jax.eval_shape(lambda: _init_variables(model, arrays, seed))
    if variables is not None:
        dtypes = jax.tree.map(lambda v: np.asarray(v).dtype, jax.device_get(variables))
        if jax.tree.structure(dtypes) == jax.tree.structure(abstract):
            abstract = jax.tree.map(lambda a, d: jax.ShapeDtypeStruct(a.shape, d), abstract, dtypes)
    params = abstract["params"]
    return {
        "params": params,
        "state": {k: v for k, v in abstract.items() if k != "params"},
        "opt_state": jax.eval_shape(direction.init, params),
        "key": jax.eval_shape(lambda: jax.random.key_data(jax.random.key(seed))),
    }


def _resume_point(manager, model, arrays, seed: int, variables: Any, direction, fingerprint):
    """``(model, meta, arrays)`` of the newest readable step, or None; a step written by another
    configuration raises ``CheckpointMismatchError``."""
    steps = sorted(manager.all_steps())
    for step in reversed(steps):
        path = _step_path(manager, step)
        try:
            meta = _read_meta(manager, step)
        except Exception as err:  # a damaged step (e.g. disk full): fall back to an older one
            warnings.warn(f"skipping unreadable checkpoint {path}: {err}", stacklevel=3)
            continue
        if meta["fingerprint"] != json.loads(json.dumps(fingerprint)):
            diff = sorted(
                k
                for k in set(fingerprint) | set(meta["fingerprint"])
                if json.dumps(meta["fingerprint"].get(k)) != json.dumps(fingerprint.get(k))
            )
            raise CheckpointMismatchError(
                f"the checkpoint {path} was written by a different configuration "
                f"(differs in: {', '.join(diff)}). Use a new checkpoint directory, restore the "
                "original settings, or pass resume=False to start over."
            )
        resumed_model = model.clone(**meta["model_updates"]) if meta.get("model_updates") else model
        template = _abstract_run_state(resumed_model, arrays, seed, variables, direction)
        try:
            saved = _read_arrays(manager, step, template)
        except CheckpointMismatchError:
            raise
        except Exception as err:
            warnings.warn(f"skipping unreadable checkpoint {path}: {err}", stacklevel=3)
            continue
        for newer in steps[steps.index(step) + 1 :]:  # unreadable: rewritten from this step on
            manager.delete(newer)
        return resumed_model, meta, saved
    return None


def fit(
    model: Any,
    train: tuple,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    validation: tuple | None = None,
    recipe: str = "sgd",
    refine_at: Sequence[int] = (),
    variables: Any = None,
    momentum: float = 0.9,
    weight_decay: float | None = None,
    lr_drops: Sequence[int] = (),
    lr_factor: float = 0.1,
    warmup_steps: int = 8000,
    augment: Callable[..., Array] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool = True,
    select_best: bool = False,
    mesh: Mesh | None = None,
    progress: bool = True,
    log_path: str | os.PathLike | None = None,
    stop_after_steps: int | None = None,
    eval_batch_size: int = 500,
    callback: Callable[[int, float], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train ``model`` on ``train`` by minimising the cross-entropy with a SPEC 2.7 recipe.

    Each step computes ``L(w) = sum_i m_i CE(f_w(x_i), y_i) / sum_i m_i`` on one batch
    (``m_i`` = 1 for images, the padding mask for tagging), its gradient ``g``, and applies
    ``w <- w - lr(s) * D(g)`` where ``D`` and ``lr`` are the recipe's direction and schedule
    (see ``make_optimizer``); mutable collections (BatchNorm statistics) take the values the
    model emits in training mode.

    Arguments:
        model: a Flax linen module (e.g. ``ConvODENet``, ``ODETransformerTagger``); for
            ``refine_at`` it needs ``n_steps`` and ``basis`` attributes.
        train: ``(xs, ys)`` images and labels, or ``(tokens, tags, lengths)`` for tagging.
        epochs: total number of epochs (a resumed run continues up to it).
        batch_size: global batch size; must be a multiple of the number of devices in ``mesh``.
            The last incomplete batch of an epoch is dropped.
        learning_rate: peak learning rate ``lr0``.
        seed: initialisation, data order (``epoch_order``) and per-step keys derive from it.
        validation: data in the same layout as ``train``, evaluated after every epoch (model
            selection uses it, never the test split).
        recipe: ``"sgd"`` or ``"adam_rsqrt"``.
        refine_at: epochs at whose start K and n_steps double (function-preserving).
        variables: initial variables; by default ``model.init(key(seed), ...)``.
        momentum, weight_decay, lr_drops, lr_factor, warmup_steps: recipe options.
        augment: optional ``augment(key, inputs) -> inputs`` applied inside the jitted step
            (e.g. ``basis_ode.data.augment``).
        checkpoint_dir: directory for checkpoints (orbax step directories ``ckpt_<step>``,
            saved synchronously and finalized by an atomic rename) and ``log.jsonl``; an
            existing run there is resumed when ``resume`` is true (and refused if its
            configuration differs); ``resume=False`` deletes its checkpoints and starts afresh.
        checkpoint_every: also checkpoint every this many steps (besides every epoch end).
        keep: number of checkpoints kept.
        select_best: return the variables of the epoch with the best validation accuracy
            (``history["best_epoch"]``) instead of the last.
        mesh: a ``jax.sharding.Mesh`` with one axis; the batch is sharded along it and the
            parameters replicated. Default: all local devices.
        progress: show a tqdm progress bar.
        log_path: JSON-lines log (one line per epoch); default ``checkpoint_dir/log.jsonl``.
        stop_after_steps: stop (as if interrupted) once this global step is reached; for tests
            and for splitting a long run into sessions.
        eval_batch_size: batch size of the validation pass.
        callback: called on the host as ``callback(step, loss)`` after every applied step.

    Returns:
        ``(variables, history)``. ``history`` holds per-epoch lists ``epoch``, ``train_loss``,
        ``train_accuracy``, ``val_accuracy`` (if validation), ``learning_rate``, ``K``,
        ``n_steps``, ``seconds``, plus ``step`` (global steps done), ``best_epoch``,
        ``best_val_accuracy`` and ``model`` (the module at the final K and n_steps).

    Raises:
        NonFiniteError: a non-finite loss or gradient; the offending update is not applied, the
            last good checkpoint is kept, and the message says which step and what to try.
        CheckpointMismatchError: ``checkpoint_dir`` holds a run with another configuration.
    """
    arrays = _check_data(train, "train")
    val_arrays = _check_data(validation, "validation") if validation is not None else None
    if int(epochs) < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}.")
    if recipe not in _RECIPES:
        raise ValueError(f"recipe must be one of {_RECIPES}, got {recipe!r}.")
    refine_at = tuple(sorted(int(e) for e in refine_at))
    if refine_at and not (hasattr(model, "n_steps") and hasattr(model, "basis")):
        raise TypeError(
            "refine_at needs a model with `n_steps` and `basis` attributes (an ODE-Net); "
            f"{type(model).__name__} has none. Pass refine_at=()."
        )
    mesh = _default_mesh() if mesh is None else mesh
    n_dev = int(mesh.devices.size)
    if batch_size < 1 or batch_size % n_dev:
        raise ValueError(
            f"batch_size={batch_size} must be a positive multiple of the number of devices in "
            f"the mesh ({n_dev}); use e.g. batch_size={max(n_dev, batch_size // n_dev * n_dev)}."
        )
    n = arrays[0].shape[0]
    steps_per_epoch = n // batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size={batch_size} is larger than the training set ({n} examples); lower it."
        )
    axis = mesh.axis_names[0]
    replicated = NamedSharding(mesh, P())
    sharded = NamedSharding(mesh, P(axis))

    options = {
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "recipe": recipe,
        "refine_at": list(refine_at),
        "momentum": momentum,
        "weight_decay": weight_decay,
        "lr_drops": list(lr_drops),
        "lr_factor": lr_factor,
        "warmup_steps": warmup_steps,
        "augment": None if augment is None else getattr(augment, "__name__", repr(augment)),
    }
    fingerprint = {
        "model": _model_config(model),
        "data": [list(a.shape) + [str(a.dtype)] for a in arrays],
        **{k: options[k] for k in _FINGERPRINT_OPTIONS},
    }
    opt_kwargs = dict(
        learning_rate=learning_rate,
        steps_per_epoch=steps_per_epoch,
        momentum=momentum,
        weight_decay=weight_decay,
        lr_drops=tuple(int(d) for d in lr_drops),
        lr_factor=lr_factor,
        warmup_steps=warmup_steps,
    )
    direction, schedule = make_optimizer(recipe, **opt_kwargs)

    # ---- state: fresh or resumed ----
    history: dict[str, Any] = {
        k: []
        for k in (
            "epoch",
            "train_loss",
            "train_accuracy",
            "val_accuracy",
            "learning_rate",
            "K",
            "n_steps",
            "seconds",
        )
    }
    start_epoch, start_in_epoch, step = 0, 0, 0
    acc = np.zeros(3)  # running (loss sum, correct sum, weight sum) of the current epoch
    best = (-1.0, -1, None)
    manager = _checkpoint_manager(Path(checkpoint_dir), keep) if checkpoint_dir else None
    opt_state_dict = None
    try:
        if manager is not None and not resume:
            for old in manager.all_steps():
                manager.delete(old)
        found = None
        if manager is not None and resume:
            found = _resume_point(manager, model, arrays, seed, variables, direction, fingerprint)
    except BaseException:  # a refused checkpoint
        if manager is not None:
            manager.close()
        raise
    if found is not None:
        model, meta, saved = found
        variables = {"params": saved["params"], **saved["state"]}
        opt_state_dict = saved["opt_state"]
        start_epoch, start_in_epoch, step = meta["epoch"], meta["step_in_epoch"], meta["step"]
        history = meta["history"]
        acc = np.asarray(meta["accumulators"], np.float64)
        best = (meta["best"][0], meta["best"][1], None)
        best_path = Path(checkpoint_dir) / "best.msgpack"
        if select_best and best_path.exists():
            best = (best[0], best[1], serialization.msgpack_restore(best_path.read_bytes()))
    elif variables is None:
        variables = _init_variables(model, arrays, seed)
    variables = jax.device_get(variables)

    def model_updates(m) -> dict[str, Any]:
        return {k: getattr(m, k) for k in ("n_steps", "n_basis") if hasattr(m, k)}

    opt_key = tuple(sorted(opt_kwargs.items()))

    def build_step(model):
        return _train_step_fn(model, recipe, opt_key, augment, mesh)

    def place(vs, opt_dict=None):
        params = vs["params"]
        state = {k: v for k, v in vs.items() if k != "params"}
        opt_state = direction.init(params)
        if opt_dict is not None:
            opt_state = serialization.from_state_dict(opt_state, opt_dict)
        return jax.device_put((params, state, opt_state), replicated)

    def snapshot(params, state):
        return jax.device_get({"params": params, **state})

    log_file = (
        Path(log_path)
        if log_path
        else (Path(checkpoint_dir) / "log.jsonl" if checkpoint_dir else None)
    )

    def write_checkpoint(params, state, opt_state, epoch, in_epoch):
        if manager is None:
            return
        meta = {
            "fingerprint": fingerprint,
            "model_updates": model_updates(model),
            "epoch": epoch,
            "step_in_epoch": in_epoch,
            "step": step,
            "history": history,
            "accumulators": acc.tolist(),
            "best": [best[0], best[1]],
            "options": options,
        }
        tree = {
            "params": params,
            "state": state,
            "opt_state": opt_state,
            "key": jax.random.key_data(jax.random.key(seed)),
        }
        _save(manager, step, tree, meta)

    def write_log():
        if log_file is None:
            return
        log_file.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(len(history["epoch"])):
            lines.append(json.dumps({k: history[k][i] for k in history if history[k]}))
        _atomic_write(log_file, ("\n".join(lines) + "\n").encode() if lines else b"")

    params, state, opt_state = place(variables, opt_state_dict)
    train_step, correct_fn = build_step(model), _make_correct_fn(model)
    total_steps = steps_per_epoch * int(epochs)
    bar = tqdm(
        total=total_steps,
        initial=min(step, total_steps),
        disable=not progress,
        desc="fit",
        leave=False,
    )
    interrupted = False
    try:
        for epoch in range(start_epoch, int(epochs)):
            t0 = time.perf_counter()
            first = start_in_epoch if epoch == start_epoch else 0
            if first == 0:
                acc = np.zeros(3)
                if epoch in refine_at:
                    vs = snapshot(params, state)
                    model, vs = _refine_model(model, vs)
                    params, state, opt_state = place(vs)
                    train_step, correct_fn = build_step(model), _make_correct_fn(model)
            order = epoch_order(n, seed=seed, epoch=epoch)
            for i in range(first, steps_per_epoch):
                if stop_after_steps is not None and step >= stop_after_steps:
                    interrupted = True
                    break
                idx = order[i * batch_size : (i + 1) * batch_size]
                batch = jax.device_put(tuple(a[idx] for a in arrays), sharded)
                out = train_step(params, state, opt_state, step, batch, _step_key(seed, epoch, i))
                new_params, new_state, new_opt, loss, correct, weight, finite = out
                if not bool(finite):
                    raise NonFiniteError(
                        f"non-finite loss or gradient at global step {step} (epoch {epoch}, "
                        f"batch {i}; loss={float(loss)}). The update was not applied"
                        + (
                            f" and the last good checkpoint in {checkpoint_dir} is kept"
                            if checkpoint_dir
                            else ""
                        )
                        + ". Try a lower learning_rate (e.g. "
                        f"{learning_rate / 10:g}), a longer warm-up, or check the inputs for "
                        "NaN/inf.",
                        epoch=epoch,
                        step=step,
                        variables=snapshot(new_params, new_state),
                    )
                params, state, opt_state = new_params, new_state, new_opt
                acc += (float(loss) * float(weight), float(correct), float(weight))
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{acc[0] / max(acc[2], 1):.4f}")
                if callback is not None:
                    callback(step, float(loss))
                if checkpoint_every and step % checkpoint_every == 0 and i + 1 < steps_per_epoch:
                    write_checkpoint(params, state, opt_state, epoch, i + 1)
            if interrupted:
                break
            history["epoch"].append(epoch)
            history["train_loss"].append(float(acc[0] / max(acc[2], 1.0)))
            history["train_accuracy"].append(float(acc[1] / max(acc[2], 1.0)))
            history["learning_rate"].append(float(schedule(step - 1)))
            vs = snapshot(params, state)
            history["K"].append(block_K(vs))
            history["n_steps"].append(getattr(model, "n_steps", None) or block_K(vs))
            if val_arrays is not None:
                va = _accuracy(correct_fn, vs, val_arrays, eval_batch_size)
                history["val_accuracy"].append(va)
                if va > best[0]:
                    best = (va, epoch, vs if select_best else None)
                    if checkpoint_dir:
                        _atomic_write(
                            Path(checkpoint_dir) / "best.msgpack",
                            serialization.msgpack_serialize(
                                {
                                    "params": vs["params"],
                                    **{k: v for k, v in vs.items() if k != "params"},
                                }
                            ),
                        )
            history["seconds"].append(time.perf_counter() - t0)
            write_checkpoint(params, state, opt_state, epoch + 1, 0)
            write_log()
    finally:
        bar.close()
        if manager is not None:
            manager.close()

    result = snapshot(params, state)
    out_history = dict(history)
    out_history["step"] = step
    out_history["best_epoch"] = best[1] if best[1] >= 0 else None
    out_history["best_val_accuracy"] = best[0] if best[1] >= 0 else None
    out_history["model"] = model
    out_history["interrupted"] = interrupted
    if select_best and best[2] is not None:
        result = best[2]
    return result, out_history


@functools.lru_cache(maxsize=16)
def _train_step_fn(model, recipe: str, opt_key: tuple, augment, mesh: Mesh):
    """The jitted training step for one (model, recipe, mesh); cached so reruns do not recompile."""
    direction, schedule = make_optimizer(recipe, **dict(opt_key))
    replicated = NamedSharding(mesh, P())
    sharded = NamedSharding(mesh, P(mesh.axis_names[0]))

    def step_fn(params, state, opt_state, step, batch, key):
        inputs = batch[0]
        if augment is not None:
            inputs = augment(key, inputs)
        full = (inputs, *batch[1:])
        w = _weights_traced(batch)

        def loss_fn(p):
            logits, new_state = _forward(model, {"params": p, **state}, full, train=True)
            loss, correct = _cross_entropy(logits, batch[1], w.astype(logits.dtype))
            return loss, (new_state, correct)

        (loss, (new_state, correct)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        finite = jnp.isfinite(loss)
        for g in jax.tree.leaves(grads):
            finite = finite & jnp.all(jnp.isfinite(g))
        updates, new_opt = direction.update(grads, opt_state, params)
        lr = schedule(step)
        new_params = jax.tree.map(lambda p, u: p - (lr * u).astype(p.dtype), params, updates)

        def keep_good(new, old):
            return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)

        return (
            keep_good(new_params, params),
            keep_good(dict(new_state), state),
            keep_good(new_opt, opt_state),
            loss,
            correct,
            jnp.sum(w),
            finite,
        )

    return jax.jit(
        step_fn,
        in_shardings=(replicated, replicated, replicated, replicated, sharded, replicated),
        out_shardings=replicated,
        donate_argnums=(0, 1, 2),
    )


def _weights_traced(batch):
    if len(batch) == 2:
        return jnp.ones(batch[1].shape, jnp.float32)
    tags, lengths = batch[1], batch[2]
    return (jnp.arange(tags.shape[1])[None, :] < lengths[:, None]).astype(jnp.float32)
