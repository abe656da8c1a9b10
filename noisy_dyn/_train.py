"""Training loop for Noisy RNNs: Adam with step decay, checkpoints, resumption, data parallelism.

``fit`` minimises the mean softmax cross-entropy of the *noisy* forward pass (noise on through
``apply(..., key=...)``, the implicit regulariser of the paper) or, with
``regularizer="explicit"``, of the deterministic pass plus ``lam`` times the small-noise
regulariser (``noisy_dyn._theory.regularized_loss``). The state of a run is a pure function of
``(config, data, seed, global step)``:

- the example order of epoch ``e`` is ``noisy_dyn.data.epoch_order(N, seed=data_seed, epoch=e)``
  (the last incomplete batch is dropped, so every step has the same shape);
- the noise of global step ``s`` is drawn with ``jax.random.fold_in(jax.random.key(seed), s)``;
- the learning rate is ``learning_rate`` until ``decay_at`` of the epochs, then times
  ``decay_factor`` (SPEC 1.3: x0.1 at epoch 90 of 100).

Checkpoints hold the parameters, the optimizer state, the best-on-validation parameters, the
epoch, the batch within the epoch, the global step, the PRNG key, the data-order seed, the
history and the run settings. They are orbax-checkpoint step directories ``ckpt_<global step>``
(arrays in a ``StandardSave`` item, everything else in a JSON item), saved synchronously and
finalized by orbax's atomic rename of a temporary directory, so a run killed at any moment (even
by SIGKILL) and restarted with the same call continues from the last complete checkpoint and
ends with bit-identical parameters.
"""

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float, Int

from ._cell import init_params
from ._config import NoisyRNNConfig
from ._solve import apply, trajectory

Params = dict[str, Array]

REGULARIZERS = ("noise", "explicit")
_FORMAT = 2  # 2: orbax step directories (1 was one .npz per step)


class TrainingDiverged(FloatingPointError):
    """Raised by :func:`fit` when the loss or the gradient becomes non-finite."""


# --------------------------------------------------------------------------------------------
# validation


def _check_cfg(cfg: Any) -> None:
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(
            "`cfg` must be a NoisyRNNConfig (e.g. noisy_dyn.preset(...)), got "
            f"{type(cfg).__name__}."
        )


def _check_split(
    name: str, split: Any, cfg: NoisyRNNConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Eager checks of ``(xs, ys)`` or ``(xs, ys, lengths)``; returns NumPy arrays."""
    if not isinstance(split, tuple | list) or len(split) not in (2, 3):
        raise TypeError(
            f"`{name}` must be a tuple (xs, ys) or (xs, ys, lengths), got {type(split).__name__}"
            + (f" of length {len(split)}" if isinstance(split, tuple | list) else "")
            + "."
        )
    xs, ys = np.asarray(split[0]), np.asarray(split[1])
    lengths = None if len(split) == 2 or split[2] is None else np.asarray(split[2])
    if xs.ndim != 3 or xs.shape[2] != cfg.input_size:
        raise ValueError(
            f"`{name}` xs must have shape (N, time, input_size={cfg.input_size}), got {xs.shape}."
        )
    if not np.issubdtype(xs.dtype, np.floating):
        raise TypeError(f"`{name}` xs must be floating point, got dtype {xs.dtype}.")
    if not np.all(np.isfinite(xs)):
        bad = int(np.sum(~np.isfinite(xs)))
        raise ValueError(
            f"`{name}` xs holds {bad} NaN or infinite values; clean or impute them before training."
        )
    if ys.ndim != 1 or len(ys) != len(xs):
        raise ValueError(
            f"`{name}` ys must be a vector with one label per sequence ({len(xs)}), got shape "
            f"{ys.shape}."
        )
    if not np.issubdtype(ys.dtype, np.integer):
        raise TypeError(f"`{name}` ys must be integer class labels, got dtype {ys.dtype}.")
    if len(ys) and (ys.min() < 0 or ys.max() >= cfg.num_classes):
        raise ValueError(
            f"`{name}` labels must lie in [0, num_classes={cfg.num_classes}), got range "
            f"[{ys.min()}, {ys.max()}]; set num_classes in the config or remap the labels."
        )
    if lengths is not None:
        if lengths.shape != ys.shape or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(
                f"`{name}` lengths must be an integer vector of shape {ys.shape}, got "
                f"{lengths.shape} of dtype {lengths.dtype}."
            )
        if len(lengths) and (lengths.min() < 1 or lengths.max() > xs.shape[1]):
            raise ValueError(
                f"`{name}` lengths must lie in [1, time={xs.shape[1]}], got range "
                f"[{lengths.min()}, {lengths.max()}]."
            )
    return xs, ys.astype(np.int32), None if lengths is None else lengths.astype(np.int32)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}.")
    return int(value)


# --------------------------------------------------------------------------------------------
# forward pass, loss, evaluation


def logits_with_lengths(
    params: Params,
    xs: Float[Array, "batch time feature"],
    cfg: NoisyRNNConfig,
    *,
    lengths: Int[Array, " batch"] | None = None,
    key: Array | None = None,
) -> Float[Array, "batch classes"]:
    """Logits ``V h_L + c`` read at each sequence's own length ``L`` (``h_T`` without lengths).

    With ``lengths`` this runs :func:`noisy_dyn.trajectory` and reads the state after step
    ``L - 1`` of sequence ``i`` (``hs[i, L_i]``), so right-padding after the real steps has no
    effect; without it, it is :func:`noisy_dyn.apply`.
    """
    if lengths is None:
        return apply(params, xs, cfg, key=key)
    hs = trajectory(params, xs, cfg, key=key)
    h = jnp.take_along_axis(hs, jnp.asarray(lengths)[:, None, None], axis=1)[:, 0]
    return h @ params["V"].T + params["c"]


def _cross_entropy(logits: Array, ys: Array) -> Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, ys[:, None], axis=-1)[:, 0]


def _evaluate(
    params: Params,
    xs: np.ndarray,
    ys: np.ndarray,
    cfg: NoisyRNNConfig,
    lengths: np.ndarray | None,
    batch_size: int,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of deterministic inference, in padded batches."""
    n = len(xs)
    if n == 0:
        raise ValueError("Cannot evaluate on an empty set.")
    batch_size = min(batch_size, n)
    correct, loss = 0, 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        pad = batch_size - (stop - start)
        xb = xs[start:stop]
        lb = None if lengths is None else lengths[start:stop]
        if pad:  # keep one compiled shape: pad with copies of the first row, then mask
            xb = np.concatenate([xb, np.repeat(xb[:1], pad, axis=0)])
            lb = None if lb is None else np.concatenate([lb, np.repeat(lb[:1], pad)])
        logits = np.asarray(logits_with_lengths(params, xb, cfg, lengths=lb))[: stop - start]
        yb = ys[start:stop]
        correct += int(np.sum(logits.argmax(-1) == yb))
        z = logits - logits.max(-1, keepdims=True)
        lse = np.log(np.exp(z).sum(-1))
        loss += float(np.sum(lse - z[np.arange(len(yb)), yb]))
    return correct / n, loss / n


def accuracy(
    params: Params,
    xs: Float[Array, "n time feature"],
    ys: Int[Array, " n"],
    cfg: NoisyRNNConfig,
    *,
    batch_size: int = 512,
    lengths: Int[Array, " n"] | None = None,
) -> float:
    """Fraction of sequences whose deterministic-inference prediction ``argmax V h_T + c`` is
    the label.

    Arguments:
        params: model parameters for ``cfg``.
        xs: ``(n, time, input_size)`` inputs.
        ys: ``(n,)`` integer labels in ``[0, num_classes)``.
        cfg: the configuration.
        batch_size: evaluation batch size (the last batch is padded, so one shape compiles).
        lengths: optional per-sequence lengths (read-out at each sequence's last real step).

    Returns:
        The accuracy in ``[0, 1]``.
    """
    _check_cfg(cfg)
    xs, ys, lengths = _check_split("xs/ys", (xs, ys, lengths), cfg)
    batch_size = _check_positive_int("batch_size", batch_size)
    return _evaluate(params, xs, ys, cfg, lengths, batch_size)[0]


# --------------------------------------------------------------------------------------------
# checkpoints


def _fingerprint(xs: np.ndarray, ys: np.ndarray, lengths: np.ndarray | None) -> str:
    h = hashlib.sha256()
    for a in (xs, ys) if lengths is None else (xs, ys, lengths):
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


_CKPT_PREFIX = "ckpt"  # step directories ``ckpt_<10-digit global step>``


def _checkpoint_manager(directory: Path, keep: int) -> Any:
    """An orbax ``CheckpointManager`` over ``directory`` keeping the newest ``keep`` steps.

    Saves are synchronous (no background thread): when ``save`` returns, the step directory has
    been finalized by orbax's rename of its temporary directory, which is the atomic write. Step
    directories left unfinalized by a kill are never listed and are removed by the next save.
    """
    import orbax.checkpoint as ocp
    from absl import logging as absl_logging

    if absl_logging.get_verbosity() > absl_logging.WARNING:  # keep orbax's INFO lines quiet
        absl_logging.set_verbosity(absl_logging.WARNING)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        enable_async_checkpointing=False,
        step_prefix=_CKPT_PREFIX,
        step_format_fixed_length=10,
        cleanup_tmp_directories=True,
    )
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory.resolve(), options=options, item_handlers=handlers)


def _step_path(manager: Any, step: int) -> Path:
    return Path(manager.directory) / f"{_CKPT_PREFIX}_{step:010d}"


def _flat(tree: Any) -> dict[str, Any]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def _save_checkpoint(manager: Any, arrays: Any, meta: dict[str, Any]) -> Path:
    """Write step ``meta["step"]``: ``arrays`` (a pytree of arrays) and the JSON ``meta``."""
    import orbax.checkpoint as ocp
    from flax import serialization

    step = int(meta["step"])
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


def _read_checkpoint(manager: Any, step: int, template: Any) -> Any:
    """Arrays of ``step`` in the structure of ``template``; ValueError if they do not fit it.

    Shapes and dtypes are checked against the stored metadata first (orbax would cast)."""
    import orbax.checkpoint as ocp
    from flax import serialization

    path = _step_path(manager, step)
    target = serialization.to_state_dict(jax.device_get(template))
    want = _flat(target)
    stored = _flat(manager.item_metadata(step).state)
    if want.keys() != stored.keys():
        raise ValueError(
            f"checkpoint {path} holds the arrays {sorted(set(stored) - set(want))} the run does "
            f"not have and misses {sorted(set(want) - set(stored))}."
        )
    for name, t in want.items():
        a = stored[name]
        if tuple(a.shape) != np.shape(t) or np.dtype(a.dtype) != np.asarray(t).dtype:
            raise ValueError(
                f"checkpoint {path}: array {name} is {np.dtype(a.dtype)}{tuple(a.shape)}, the "
                f"run needs {np.asarray(t).dtype}{np.shape(t)}."
            )
    args = ocp.args.Composite(state=ocp.args.StandardRestore(target))
    restored = manager.restore(step, args=args).state
    return serialization.from_state_dict(template, restored)


def _diff(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(current))
    return [
        f"{k}: checkpoint {stored.get(k)!r} vs now {current.get(k)!r}"
        for k in keys
        if stored.get(k) != current.get(k)
    ]


def save_model(path: str | os.PathLike, params: Params, cfg: NoisyRNNConfig) -> Path:
    """Save parameters and configuration to one ``.npz`` file (written atomically).

    Arguments:
        path: target file (``.npz`` is appended when missing).
        params: the parameter dict.
        cfg: its configuration (stored as JSON, restored by :func:`load_model`).

    Returns:
        The path written.
    """
    _check_cfg(cfg)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"param_{k}": np.asarray(v) for k, v in jax.device_get(params).items()}
    arrays["config"] = np.frombuffer(json.dumps(cfg.to_dict()).encode(), dtype=np.uint8)
    _atomic_write_bytes(path, lambda f: np.savez(f, **arrays))
    return path


def load_model(path: str | os.PathLike) -> tuple[Params, NoisyRNNConfig]:
    """Load ``(params, cfg)`` written by :func:`save_model`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file {path}; write one with save_model or `train`.")
    with np.load(path, allow_pickle=False) as z:
        if "config" not in z.files:
            raise ValueError(f"{path} is not a model file written by noisy_dyn.save_model.")
        cfg = NoisyRNNConfig(**json.loads(bytes(z["config"]).decode()))
        params = {k[len("param_") :]: jnp.asarray(z[k]) for k in z.files if k.startswith("param_")}
    from ._cell import check_params

    check_params(params, cfg)
    return params, cfg


# --------------------------------------------------------------------------------------------
# fit


def default_mesh() -> Mesh:
    """A one-axis mesh named ``"batch"`` over all local devices."""
    return Mesh(np.asarray(jax.local_devices()), ("batch",))


# Adam's moment estimates; the learning rate is applied in the step, so one compiled step serves
# every learning rate and schedule (``optax.adam(piecewise_constant_schedule(...))`` exactly).
_ADAM = optax.scale_by_adam()


def _loss(params, xb, yb, lb, key, lam, cfg, regularizer):
    if regularizer == "explicit":
        from ._theory import regularized_loss

        logits = apply(params, xb, cfg)
        return regularized_loss(params, xb, yb, cfg, lam, method="exact"), logits
    logits = logits_with_lengths(params, xb, cfg, lengths=lb, key=key)
    return jnp.mean(_cross_entropy(logits, yb)), logits


@partial(jax.jit, static_argnames=("cfg", "regularizer"))
def _train_step(
    state: dict,
    xb: Array,
    yb: Array,
    lb: Array | None,
    step: Array,
    base_key: Array,
    lr: Array,
    decay_step: Array,
    decay_factor: Array,
    lam: Array,
    *,
    cfg: NoisyRNNConfig,
    regularizer: str,
) -> tuple[dict, Array, Array, Array]:
    """One Adam step on the noisy (or explicitly regularised) loss; skipped if not finite."""
    params, opt_state = state["params"], state["opt_state"]
    key = jax.random.fold_in(base_key, step)
    (loss, logits), grads = jax.value_and_grad(_loss, has_aux=True)(
        params, xb, yb, lb, key, lam, cfg, regularizer
    )
    sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads))
    ok = jnp.isfinite(loss) & jnp.isfinite(sq)
    updates, new_opt = _ADAM.update(grads, opt_state, params)
    rate = jnp.where(step >= decay_step, lr * decay_factor, lr)
    new_params = jax.tree_util.tree_map(lambda p, u: p - rate.astype(u.dtype) * u, params, updates)
    keep_old = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    new_state = {
        "params": jax.tree_util.tree_map(keep_old, new_params, params),
        "opt_state": jax.tree_util.tree_map(keep_old, new_opt, opt_state),
        "best_params": state["best_params"],
    }
    correct = jnp.sum(jnp.argmax(logits, axis=-1) == yb)
    return new_state, loss, ok, correct


def fit(
    cfg: NoisyRNNConfig,
    train: tuple,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    validation: tuple | None = None,
    regularizer: str = "noise",
    lam: float = 1.0,
    decay_at: float = 0.9,
    decay_factor: float = 0.1,
    callback: Callable[[int, Params], dict[str, Any] | None] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every_steps: int | None = None,
    resume: bool = True,
    keep: int = 3,
    mesh: Mesh | None = None,
    log_path: str | os.PathLike | None = None,
    data_seed: int | None = None,
    init: Params | None = None,
    eval_batch_size: int = 512,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> tuple[Params, list[dict[str, Any]]]:
    """Train a Noisy RNN (or a baseline) with Adam and the reference's step decay.

    Each step minimises, over a mini-batch ``B``,

    - ``regularizer="noise"``: ``mean_{i in B} CE(apply(params, x_i, cfg, key=k_s), y_i)``, the
      loss of the noisy forward pass with fresh noise ``k_s = fold_in(key(seed), s)`` at global
      step ``s`` (no noise for deterministic configs);
    - ``regularizer="explicit"``: ``mean CE(deterministic) + lam * mean r_i`` with ``r`` the
      second-order small-noise regulariser of SPEC 1.4 (``noisy_dyn._theory.regularized_loss``).

    Adam, learning rate ``learning_rate`` multiplied by ``decay_factor`` after
    ``floor(decay_at * epochs)`` epochs (SPEC 1.3: x0.1 at epoch 90 of 100). The batch axis is
    sharded over ``mesh`` (parameters replicated), which gives the single-device numbers up to
    floating-point summation order. A step whose loss or gradient is not finite is not applied:
    training stops with :class:`TrainingDiverged`, the last good checkpoint is left in place.

    Arguments:
        cfg: the model configuration.
        train: ``(xs, ys)`` or ``(xs, ys, lengths)``: ``xs (N, time, input_size)`` floating,
            ``ys (N,)`` integers in ``[0, num_classes)``, ``lengths (N,)`` in ``[1, time]``.
        epochs: number of passes over ``train`` (the last incomplete batch is dropped).
        batch_size: examples per step; a multiple of the number of devices in ``mesh``.
        learning_rate: Adam learning rate before the decay.
        seed: seed of the initial parameters and of the training noise.
        validation: optional ``(xs, ys[, lengths])``; evaluated (deterministic inference) after
            every epoch, and the parameters of the best validation accuracy are returned.
        regularizer: ``"noise"`` (noise injection) or ``"explicit"`` (penalty, Lipschitz cell).
        lam: weight of the explicit penalty.
        decay_at, decay_factor: the step decay of the learning rate.
        callback: ``callback(epoch, params) -> dict | None`` after every epoch (1-based epoch);
            the dict is merged into that epoch's history entry (values must be JSON numbers or
            strings).
        checkpoint_dir: directory of the checkpoints, orbax step directories
            ``ckpt_<global step>`` (and of ``log.jsonl`` unless ``log_path`` is given); written
            after every epoch and every ``checkpoint_every_steps`` steps.
        checkpoint_every_steps: also checkpoint every this many global steps.
        resume: continue from the newest checkpoint in ``checkpoint_dir`` (refused if it was
            written for a different configuration, data or run settings). ``resume=False``
            deletes the checkpoints there and starts afresh.
        keep: number of checkpoints kept.
        mesh: a ``jax.sharding.Mesh`` whose first axis shards the batch; default all local
            devices.
        log_path: JSON-lines file with one line per epoch (rewritten atomically each epoch).
        data_seed: seed of the example order (default ``seed``).
        init: initial parameters (default ``init_params(jax.random.key(seed), cfg)``).
        eval_batch_size: batch size of the validation pass.
        stop_after_steps: stop (without saving) after this many global steps in total, as if the
            process were killed there; for tests of resumption.
        progress: show a tqdm progress bar.

    Returns:
        ``(params, history)``: the best-on-validation parameters (the final ones without
        ``validation``), and one dict per epoch with ``epoch, step, train_loss,
        train_accuracy, learning_rate, seconds`` and, with validation, ``val_loss,
        val_accuracy``, plus the callback's entries.
    """
    # ---- eager validation
    _check_cfg(cfg)
    xs, ys, lengths = _check_split("train", train, cfg)
    val = None if validation is None else _check_split("validation", validation, cfg)
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    eval_batch_size = _check_positive_int("eval_batch_size", eval_batch_size)
    keep = _check_positive_int("keep", keep)
    if checkpoint_every_steps is not None:
        checkpoint_every_steps = _check_positive_int(
            "checkpoint_every_steps", checkpoint_every_steps
        )
    if stop_after_steps is not None:
        stop_after_steps = _check_positive_int("stop_after_steps", stop_after_steps)
    lr = float(learning_rate)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {learning_rate!r}.")
    if not 0.0 <= float(decay_at) <= 1.0 or not math.isfinite(float(decay_factor)):
        raise ValueError(
            f"`decay_at` must lie in [0, 1] and `decay_factor` be finite, got {decay_at!r}, "
            f"{decay_factor!r}."
        )
    if regularizer not in REGULARIZERS:
        raise ValueError(f"`regularizer` must be one of {REGULARIZERS}, got {regularizer!r}.")
    if regularizer == "explicit":
        if cfg.cell != "lipschitz":
            raise ValueError(
                f"regularizer='explicit' needs cell='lipschitz' (got {cfg.cell!r}); use "
                "regularizer='noise' for the LSTM/GRU baselines."
            )
        if lengths is not None:
            raise ValueError(
                "regularizer='explicit' does not support variable `lengths`; pad to a common "
                "length or use regularizer='noise'."
            )
        if not math.isfinite(float(lam)) or float(lam) < 0:
            raise ValueError(f"`lam` must be a finite number >= 0, got {lam!r}.")
    if len(xs) < batch_size:
        raise ValueError(
            f"`batch_size` ({batch_size}) is larger than the training set ({len(xs)}); lower it."
        )
    mesh = default_mesh() if mesh is None else mesh
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh or None, got {type(mesh).__name__}.")
    batch_axis = mesh.axis_names[0]
    n_dev = mesh.shape[batch_axis]
    if batch_size % n_dev:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be a multiple of the {n_dev} devices of the mesh "
            f"axis {batch_axis!r}; use e.g. batch_size={batch_size - batch_size % n_dev or n_dev}."
        )
    data_seed = seed if data_seed is None else int(data_seed)
    ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    if log_path is None and ckpt_dir is not None:
        log_path = ckpt_dir / "log.jsonl"

    # ---- the run
    from .data import epoch_order

    steps_per_epoch = len(xs) // batch_size
    decay_epoch = int(math.floor(decay_at * epochs))
    decay_step = decay_epoch * steps_per_epoch
    base_key = jax.random.key(seed)
    if init is None:
        params = init_params(base_key, cfg)
    else:
        params = jax.tree_util.tree_map(jnp.asarray, init)
    state = {"params": params, "opt_state": _ADAM.init(params), "best_params": params}
    run_settings = {
        "config": cfg.to_dict(),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": lr,
        "decay_at": float(decay_at),
        "decay_factor": float(decay_factor),
        "seed": int(seed),
        "data_seed": data_seed,
        "regularizer": regularizer,
        "lam": float(lam) if regularizer == "explicit" else None,
        "data": _fingerprint(xs, ys, lengths),
        "validation": None if val is None else _fingerprint(*val),
        "init": None if init is None else "given",
    }
    pos = {"epoch": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "correct": 0, "count": 0}
    best_val, best_epoch = -math.inf, 0
    history: list[dict[str, Any]] = []

    manager = None if ckpt_dir is None else _checkpoint_manager(ckpt_dir, keep)
    try:
        if manager is not None and not resume:
            for old in manager.all_steps():
                manager.delete(old)
        if manager is not None and resume:
            found = sorted(manager.all_steps())
            last_error: Exception | None = None
            for step in reversed(found):
                path = _step_path(manager, step)
                try:
                    meta = _read_meta(manager, step)
                except Exception as err:  # an unreadable step (e.g. disk full): try an older one
                    if step == found[-1]:
                        last_error = err
                    continue
                diffs = _diff(meta["run"]["config"], run_settings["config"])
                if diffs:
                    raise ValueError(
                        f"The checkpoint {path} was written for a different model configuration "
                        f"({'; '.join(diffs)}). Use another checkpoint_dir, or resume=False to "
                        "start afresh there."
                    )
                others = {k: v for k, v in meta["run"].items() if k != "config"}
                diffs = _diff(others, {k: v for k, v in run_settings.items() if k != "config"})
                if diffs:
                    raise ValueError(
                        f"The checkpoint {path} was written by a run with other settings "
                        f"({'; '.join(diffs)}). Resume with the same data and settings, use "
                        "another checkpoint_dir, or resume=False to start afresh there."
                    )
                template = {"state": state, "key": jax.random.key_data(base_key)}
                loaded = _read_checkpoint(manager, step, template)
                state = jax.tree_util.tree_map(jnp.asarray, loaded["state"])
                base_key = jax.random.wrap_key_data(jnp.asarray(loaded["key"]))
                pos = meta["position"]
                best_val = -math.inf if meta["best_val"] is None else meta["best_val"]
                best_epoch = meta["best_epoch"]
                history = meta["history"]
                for newer in found[found.index(step) + 1 :]:  # unreadable: rewritten from here
                    manager.delete(newer)
                break
            else:
                if found:
                    raise ValueError(
                        f"No readable checkpoint in {ckpt_dir} (newest: "
                        f"{_step_path(manager, found[-1])}: {last_error}); delete the directory or "
                        "pass resume=False."
                    )
    except BaseException:  # a refused or unreadable checkpoint
        if manager is not None:
            manager.close()
        raise

    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec(batch_axis))
    state = jax.device_put(state, replicated)

    def checkpoint() -> Path | None:
        if manager is None:
            return None
        meta = {
            "format": _FORMAT,
            "run": run_settings,
            "position": dict(pos),
            "step": pos["step"],
            "best_val": None if best_val == -math.inf else best_val,
            "best_epoch": best_epoch,
            "history": history,
        }
        arrays = {"state": state, "key": jax.random.key_data(base_key)}
        return _save_checkpoint(manager, arrays, meta)

    def write_log() -> None:
        if log_path is None:
            return
        p = Path(log_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(h) + "\n" for h in history).encode()
        _atomic_write_bytes(p, lambda f: f.write(text))

    last_ckpt = None
    if manager is not None and manager.latest_step() is not None:
        last_ckpt = _step_path(manager, manager.latest_step())
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * steps_per_epoch, initial=pos["step"], desc="fit", unit="step")
    try:
        while pos["epoch"] < epochs:
            epoch = pos["epoch"]
            t0 = time.perf_counter()
            order = epoch_order(len(xs), seed=data_seed, epoch=epoch)
            while pos["batch"] < steps_per_epoch:
                idx = order[pos["batch"] * batch_size : (pos["batch"] + 1) * batch_size]
                xb = jax.device_put(xs[idx], sharded)
                yb = jax.device_put(ys[idx], sharded)
                lb = None if lengths is None else jax.device_put(lengths[idx], sharded)
                new_state, loss, ok, correct = _train_step(
                    state, xb, yb, lb, pos["step"], base_key, lr, decay_step,
                    float(decay_factor), float(lam), cfg=cfg, regularizer=regularizer,
                )  # fmt: skip
                if not bool(ok):
                    where = (
                        f"the last good checkpoint {last_ckpt} is kept"
                        if last_ckpt is not None
                        else "no checkpoint was written"
                    )
                    raise TrainingDiverged(
                        f"Non-finite loss ({float(loss)}) or gradient at epoch {epoch + 1}, "
                        f"batch {pos['batch'] + 1} (global step {pos['step'] + 1}); training "
                        f"stopped and {where}. Try a lower learning_rate (now {lr}) or a "
                        f"smaller dt (cfg.dt = {cfg.dt}); for noise, smaller sigma_add/"
                        "sigma_mult."
                    )
                state = new_state
                pos["step"] += 1
                pos["batch"] += 1
                pos["loss_sum"] += float(loss) * len(idx)
                pos["correct"] += int(correct)
                pos["count"] += len(idx)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss):.4f}")
                if stop_after_steps is not None and pos["step"] >= stop_after_steps:
                    out = state["best_params"] if val is not None else state["params"]
                    return jax.device_get(out), history
                if (
                    checkpoint_every_steps
                    and pos["step"] % checkpoint_every_steps == 0
                    and pos["batch"] < steps_per_epoch  # the epoch end checkpoints anyway
                ):
                    last_ckpt = checkpoint()

            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": pos["step"],
                "train_loss": pos["loss_sum"] / max(pos["count"], 1),
                "train_accuracy": pos["correct"] / max(pos["count"], 1),
                "learning_rate": lr
                * (float(decay_factor) if pos["step"] - 1 >= decay_step else 1.0),
                "seconds": time.perf_counter() - t0,
            }
            if val is not None:
                acc, vloss = _evaluate(state["params"], *val[:2], cfg, val[2], eval_batch_size)
                entry["val_accuracy"], entry["val_loss"] = acc, vloss
                if acc > best_val:
                    best_val, best_epoch = acc, epoch + 1
                    state = {**state, "best_params": state["params"]}
                entry["best_epoch"] = best_epoch
            if callback is not None:
                extra = callback(epoch + 1, jax.device_get(state["params"]))
                if extra:
                    entry.update(extra)
            history.append(entry)
            if bar is not None:
                shown = {k: round(v, 4) for k, v in entry.items() if k.endswith("accuracy")}
                bar.set_postfix(epoch=epoch + 1, **shown)
            pos = {"epoch": epoch + 1, "batch": 0, "step": pos["step"], "loss_sum": 0.0,
                   "correct": 0, "count": 0}  # fmt: skip
            last_ckpt = checkpoint()
            write_log()
    finally:
        if bar is not None:
            bar.close()
        if manager is not None:
            manager.close()
    write_log()
    out = state["best_params"] if val is not None else state["params"]
    return jax.device_get(out), history
