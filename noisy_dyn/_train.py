"""Training of Noisy RNNs: a recipe (Adam with a step decay by default), on ``trainkit``'s loop.

``fit`` minimises what its regularizer object says (``_training_loss``): the mean softmax
cross-entropy of the *noisy* forward pass (:class:`NoiseInjection`, noise on through
``apply(..., key=...)``, the implicit regulariser of Lim et al., 2021, *Noisy Recurrent Neural
Networks*, Sec. 3) or, with :class:`ExplicitRegularizer` ``(lam, trace)``, that of the
deterministic pass plus ``lam`` times the small-noise regulariser
(``noisy_dyn.theory.regularized_loss``; the derivation is in ``docs/derivations.md``, Sec. 1).
The update is a :class:`trainkit.Recipe`'s, the same objects as ``basis_ode.fit``'s. The state
of a run is a pure function of ``(config, data, seed, global step)``:

- keys: ``init_key, noise_key = split(key(seed))``; the parameters are
  ``init_params(init_key, cfg)`` and the noise of global step ``s`` (0-based) is drawn with
  ``fold_in(noise_key, s)`` (so no step reuses an initialisation key);
- the example order of epoch ``e`` is ``trainkit.epoch_order(N, seed=data_seed, epoch=e)`` (the
  last incomplete batch is dropped, so every step has the same shape);
- with the default recipe :class:`trainkit.AdamStepDecay` ``(decay_at=0.9, factor=0.1)`` the
  learning rate is ``learning_rate`` for the first ``ceil(decay_at * epochs)`` epochs, then
  times ``factor`` (the paper's recipe: x0.1 from epoch 91 of 100). Runs shorter than
  ``1 / (1 - decay_at)`` epochs (10 for 0.9) never decay, so a 2-epoch run keeps one rate.

Checkpoints, resume, refusal of foreign runs, divergence, progress and the history format are
``trainkit``'s, the same as ``basis_ode.fit``'s (see ``trainkit.train``).

Shared within the package: :func:`check_fit_cfg`, :func:`check_split`, :func:`evaluate_split`
and :func:`logits_with_lengths` (the robustness table and the study use them), :class:`Step`,
:class:`NoisyTask` and :func:`prepare_run` (``fit_ensemble`` stacks the tasks).
"""

import dataclasses
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float, Int

import trainkit
from trainkit import (
    EVAL_BATCH_SIZE,
    AdamStepDecay,
    Recipe,
    Sequences,
    as_sequences,
    data_hash,
    evaluate_padded,
)
from trainkit import CheckpointMismatchError as CheckpointMismatchError
from trainkit import TrainingDiverged as TrainingDiverged
from trainkit import decay_epoch as decay_epoch
from trainkit import default_mesh as default_mesh
from trainkit.internal import (
    cached_program,
    check_finite,
    check_label_space,
    check_learning_rate,
    check_positive_int,
    padding_problem,
    takes_former_keywords,
    takes_train_options,
)

from ._config import NoisyRNNConfig
from ._params import init_params
from ._training_loss import (
    NoiseInjection,
    Regularizer,
    logits_with_lengths,
    regularizer_by_name,
)
from ._training_loss import cross_entropy as _cross_entropy
from ._types import Params  # noqa: E402

ADAM_STEP_DECAY = AdamStepDecay()  # fit's default recipe (the paper's: x0.1 after 90 % of epochs)
NOISE_INJECTION = NoiseInjection()  # fit's default regularizer


# --------------------------------------------------------------------------------------------
# validation


def check_fit_cfg(cfg: Any) -> None:
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(
            "`cfg` must be a NoisyRNNConfig (e.g. noisy_dyn.preset(...)), got "
            f"{type(cfg).__name__}."
        )


def check_split(
    name: str, split: Any, cfg: NoisyRNNConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Eager checks of a :class:`trainkit.Sequences` or a tuple ``(xs, ys)`` / ``(xs, ys,
    lengths)``; returns NumPy arrays ``(xs, ys, lengths or None)``.

    Without lengths, inputs that look right-padded (rows ending in all-zero steps while no other
    step is all zero: ``trainkit.internal.padding_problem``) are refused in one line: read at
    step ``T`` such rows give wrong answers. On data whose all-zero steps also occur inside the
    rows (pixel sequences) padding cannot be told from content and nothing is refused.
    """
    data = as_sequences(split, name)
    xs, ys = np.asarray(data.inputs), np.asarray(data.labels)
    lengths = None if data.lengths is None else np.asarray(data.lengths)
    if xs.ndim != 3 or xs.shape[2] != cfg.input_size or xs.shape[1] == 0:
        raise ValueError(
            f"`{name}` xs must have shape (N, time >= 1, input_size={cfg.input_size}), got "
            f"{xs.shape}."
        )
    if not np.issubdtype(xs.dtype, np.floating):
        raise TypeError(f"`{name}` xs must be floating point, got dtype {xs.dtype}.")
    if not np.all(np.isfinite(xs)):
        bad = int(np.sum(~np.isfinite(xs)))
        raise ValueError(
            f"`{name}` xs holds {bad} NaN or infinite values; clean or impute them before training."
        )
    check_finite(f"`{name}` xs", xs, cast_to=jnp.result_type(float))
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
    if lengths is None and (problem := padding_problem(xs, f"{name} xs")):
        raise ValueError(problem)
    return xs, ys.astype(np.int32), None if lengths is None else lengths.astype(np.int32)


_EMPTY_VALIDATION = (
    "`validation` holds no examples (with {n} training examples the validation split came out "
    "empty); pass more training data, or validation=None to train without model selection."
)


def _check_positive_int(name: str, value: Any) -> int:
    return check_positive_int(name, value)


# --------------------------------------------------------------------------------------------
# forward pass, loss, evaluation


@cached_program(maxsize=32)
def _eval_fn(cfg: NoisyRNNConfig):
    @jax.jit
    def fn(params, batch, weight):
        lengths = batch[2] if len(batch) == 3 else None
        logits = logits_with_lengths(params, batch[0], cfg, lengths=lengths)
        hit = (jnp.argmax(logits, -1) == batch[1]).astype(weight.dtype)
        ce = _cross_entropy(logits, batch[1]).astype(weight.dtype)
        return {"correct": jnp.sum(hit * weight), "loss": jnp.sum(ce * weight)}

    return fn


def evaluate_split(
    params: Params,
    xs: np.ndarray,
    ys: np.ndarray,
    cfg: NoisyRNNConfig,
    lengths: np.ndarray | None,
    batch_size: int,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of deterministic inference, in padded batches."""
    arrays = (xs, ys) if lengths is None else (xs, ys, lengths)
    fn = _eval_fn(cfg)
    out = evaluate_padded(lambda b, w: fn(params, b, w), arrays, batch_size)
    return float(out["correct"]) / len(xs), float(out["loss"]) / len(xs)


def accuracy(
    params: Params,
    data: Sequences | tuple | Float[ArrayLike, "n time feature"],
    *args: Any,
    batch_size: int = EVAL_BATCH_SIZE,
    lengths: Int[ArrayLike, " n"] | None = None,
) -> float:
    """Fraction of sequences whose deterministic-inference prediction ``argmax V h_L + c`` is
    the label (``h_L`` the state after each sequence's own ``L`` real steps).

    Two forms:

    - ``accuracy(params, data, cfg)`` with ``data`` a :class:`trainkit.Sequences` (what the
      loaders of :mod:`noisy_dyn.data` return) or a tuple ``(xs, ys)`` / ``(xs, ys, lengths)``;
    - ``accuracy(params, xs, ys, cfg, lengths=None)``, the arrays separately (the unpacked
      ``accuracy(params, *split, cfg)`` of a split with lengths works too).

    Padded data without lengths are refused in one line when they look padded (rows ending in
    all-zero steps while no other step is all zero; :func:`check_split`): reading such rows at
    step ``T`` gives wrong answers. The check cannot apply to data whose all-zero steps also
    occur inside the rows (pixel sequences): there, pass the lengths of padded series yourself.

    Arguments:
        params: model parameters for ``cfg``.
        data: the sequences (or ``xs``, ``(n, time, input_size)`` inputs, in the second form).
        *args: ``cfg`` (first form) or ``ys, cfg`` / ``ys, lengths, cfg`` (second form).
        batch_size: evaluation batch size (the last batch is padded, so one shape compiles).
        lengths: ``(n,)`` per-sequence lengths for the second form.

    Returns:
        The accuracy in ``[0, 1]``.

    Examples:
        >>> import jax, noisy_dyn as nd
        >>> s = nd.data.load_digits(seed=0)
        >>> cfg = nd.NoisyRNNConfig(input_size=1, hidden_size=8, num_classes=10)
        >>> params = nd.init_params(jax.random.key(0), cfg)
        >>> acc = nd.accuracy(params, s.test, cfg)  # untrained: about chance
        >>> 0.0 <= acc <= 1.0
        True
    """
    data, cfg = _accuracy_arguments(data, args, lengths)
    check_fit_cfg(cfg)
    xs, ys, lengths = check_split("data", data, cfg)
    batch_size = _check_positive_int("batch_size", batch_size)
    return evaluate_split(params, xs, ys, cfg, lengths, batch_size)[0]


def _accuracy_arguments(data: Any, args: tuple, lengths: Any) -> tuple[Sequences, Any]:
    """``(Sequences, cfg)`` from the positional forms of :func:`accuracy`."""
    if len(args) == 1:
        if lengths is not None:
            if isinstance(data, Sequences) and data.lengths is not None:
                raise TypeError("accuracy: lengths given twice (in the data and as lengths=).")
            data = as_sequences(data, "data")
            data = Sequences(data.inputs, data.labels, lengths)
        return as_sequences(data, "data"), args[0]
    if len(args) in (2, 3):
        given = args[1] if len(args) == 3 else None
        if given is not None and lengths is not None:
            raise TypeError("accuracy: lengths given twice (positionally and as lengths=).")
        return Sequences(data, args[0], lengths if given is None else given), args[-1]
    raise TypeError(
        f"accuracy takes (params, data, cfg) or (params, xs, ys, cfg); got {1 + len(args)} "
        "arguments after params."
    )


# --------------------------------------------------------------------------------------------
# the task given to trainkit


@dataclasses.dataclass(frozen=True)
class Step:
    """One recipe step on the regularizer's loss; hashable for jit's cache.

    ``hyper["lr"]`` (the peak learning rate) and ``hyper["lam"]`` (the penalty weight) enter
    traced, so one compiled step serves every learning rate and weight; ``hyper["cfg"]``, when
    present, is the config of the step: a pytree whose numbers are traced (``fit_ensemble`` vmaps
    this step over the members' stacked configs); else ``cfg``.
    """

    cfg: NoisyRNNConfig
    regularizer: Regularizer
    recipe: Recipe
    steps_per_epoch: int
    epochs: int

    def __call__(self, state, batch, key, step, hyper):
        params = state["params"]
        xb, yb = batch[0], batch[1]
        lb = batch[2] if len(batch) == 3 else None
        cfg = hyper.get("cfg", self.cfg)

        def loss_fn(p):
            return self.regularizer.loss(p, xb, yb, lb, key, cfg, hyper["lam"])

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads))
        schedule = self.recipe.run_schedule(hyper["lr"], self.steps_per_epoch, self.epochs)
        new_params, new_opt = self.recipe.update(
            grads, state["opt_state"], params, learning_rate=hyper["lr"], rate=schedule(step)
        )
        n = jnp.asarray(yb.shape[0], loss.dtype)
        metrics = {
            "loss_sum": loss * n,
            "correct": jnp.sum(jnp.argmax(logits, axis=-1) == yb).astype(loss.dtype),
            "count": n,
            "finite": jnp.isfinite(loss) & jnp.isfinite(sq),
        }
        return {"params": new_params, "opt_state": new_opt, "model_state": {}}, metrics


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyTask:
    cfg: NoisyRNNConfig
    regularizer: Regularizer
    recipe: Recipe
    steps_per_epoch: int
    epochs: int
    hyper_values: dict
    validation: tuple | None
    init_params: Params | None
    eval_batch_size: int
    optimizer: dict
    package: str = "noisy_dyn"
    input_std: float = 1.0  # of the training inputs' real steps (named by loss_hint)

    @property
    def config(self) -> dict:
        return self.cfg.to_dict()

    @property
    def chance_loss(self) -> float:
        """``log C``: the cross-entropy of a uniform guess over the ``C`` classes."""
        return math.log(max(self.cfg.num_classes, 2))

    def init(self, key, meta):
        params = init_params(key, self.cfg) if self.init_params is None else self.init_params
        params = jax.tree_util.tree_map(jnp.asarray, params)
        opt_state = self.recipe.init(self.hyper_values["lr"], params)
        return {"params": params, "opt_state": opt_state, "model_state": {}}

    def template(self, meta):
        return jax.eval_shape(lambda: self.init(jax.random.key(0), meta))

    def step_fn(self, meta):
        return Step(self.cfg, self.regularizer, self.recipe, self.steps_per_epoch, self.epochs)

    def hyper(self, meta):
        h = self.hyper_values
        return {"lr": jnp.asarray(h["lr"]), "lam": jnp.asarray(h["lam"])}

    def epoch_start(self, epoch, state, meta):
        return state, meta

    def evaluate(self, state, meta):
        if self.validation is None:
            return {}
        xs, ys, lengths = self.validation
        acc, loss = evaluate_split(state["params"], xs, ys, self.cfg, lengths, self.eval_batch_size)
        return {"val_accuracy": acc, "val_loss": loss}

    def record(self, state, meta, step):
        lr = self.hyper_values["lr"]
        at = self.recipe.learning_rate_at(lr, self.steps_per_epoch, self.epochs, step - 1)
        return {"learning_rate": at}

    def export(self, state, meta):
        return jax.device_get(state["params"])

    def diverged_hint(self):
        return (
            f"Try a lower learning_rate (now {self.hyper_values['lr']}) or a smaller dt (cfg.dt = "
            f"{self.cfg.dt}); for noise, smaller sigma_add/sigma_mult."
        )

    def loss_hint(self, members=None):
        """The likely causes of a training loss far above the chance level's, with numbers."""
        std = self.input_std
        scale = (
            f"inputs of scale {std:.3g} (standardise them: noisy_dyn.data.standardize, the "
            "command lines' default on your own data)"
        )
        step = (
            f"a step too large for the cell (dt = {self.cfg.dt:g}: lower dt, e.g. to "
            f"{self.cfg.dt / 3:.2g} with --dt or cfg.dt)"
            if self.cfg.cell.stepped
            else "an unstable recurrence"
        )
        rate = f"a learning rate too high (now {self.hyper_values['lr']:g})"
        causes = [scale, step] if not 0.1 <= std <= 10 else [step, rate]
        return f"Likely causes: {causes[0]}, or {causes[1]}."


def _check_fit_options(cfg: NoisyRNNConfig, regularizer: Any, recipe: Any) -> Regularizer:
    """The regularizer object (a name parsed with a DeprecationWarning), checked against ``cfg``;
    ``recipe`` must be a :class:`trainkit.Recipe`."""
    if isinstance(regularizer, str):
        warnings.warn(
            f"fit(regularizer={regularizer!r}) is deprecated; pass noisy_dyn.NoiseInjection() or "
            "noisy_dyn.ExplicitRegularizer(lam=..., trace=...) (regularizer_by_name at the edge).",
            DeprecationWarning,
            stacklevel=4,
        )
        regularizer = regularizer_by_name(regularizer)
    if not isinstance(regularizer, Regularizer):
        raise TypeError(
            "`regularizer` must be noisy_dyn.NoiseInjection() or noisy_dyn.ExplicitRegularizer("
            f"lam, trace), got {regularizer!r}."
        )
    regularizer.check(cfg)
    if not isinstance(recipe, Recipe):
        raise TypeError(
            "`recipe` must be a trainkit.Recipe (noisy_dyn.AdamStepDecay(decay_at, factor), "
            f"SGDRecipe(...), AdamRsqrtRecipe(...)), got {recipe!r}."
        )
    return regularizer


def _recipe_settings(recipe: Recipe) -> dict[str, Any]:
    """The recipe's part of the run fingerprint: the default's keys as before recipes were
    objects (``decay_at``, ``decay_factor``), so that runs checkpointed before keep resuming;
    any other recipe its :meth:`trainkit.Recipe.fingerprint`."""
    if type(recipe) is AdamStepDecay:
        return {"decay_at": recipe.decay_at, "decay_factor": recipe.factor}
    return recipe.fingerprint()


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """The checked pieces of one training run (shared by ``fit`` and ``fit_ensemble``)."""

    task: NoisyTask
    data: tuple
    epochs: int
    batch_size: int


def prepare_run(
    cfg, train, validation, *, epochs, batch_size, learning_rate, regularizer, recipe, data_seed,
    init, eval_batch_size,
) -> PreparedRun:  # fmt: skip
    """Check ``fit``'s arguments and build its task: the hyper-parameters (learning rate,
    ``lam``), the recipe's schedule over ``N // batch_size`` steps an epoch and the optimizer
    settings that go into the checkpoint fingerprint."""
    check_fit_cfg(cfg)
    xs, ys, lengths = check_split("train", train, cfg)
    check_label_space("`train` labels", ys, cfg.num_classes)
    val = None if validation is None else check_split("validation", validation, cfg)
    if val is not None and len(val[1]) == 0:
        raise ValueError(_EMPTY_VALIDATION.format(n=len(ys)))
    learning_rate = check_learning_rate(learning_rate)
    regularizer = _check_fit_options(cfg, regularizer, recipe)
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    eval_batch_size = _check_positive_int("eval_batch_size", eval_batch_size)
    recipe.check_epochs(epochs)
    hyper = {"lr": learning_rate, "lam": float(regularizer.lam)}
    optimizer = {
        "learning_rate": learning_rate, **_recipe_settings(recipe), "batch_size": batch_size,
        **regularizer.settings(), "data_seed": data_seed,
        "validation": None if val is None else data_hash(*val),
        "init": None if init is None else data_hash(*jax.tree_util.tree_leaves(init)),
    }  # fmt: skip
    real = xs if lengths is None else xs[np.arange(xs.shape[1])[None, :] < lengths[:, None]]
    task = NoisyTask(cfg, regularizer, recipe, len(xs) // batch_size, epochs, hyper, val, init,
                     eval_batch_size, optimizer,
                     input_std=float(np.std(real)) if real.size else 1.0)  # fmt: skip
    data = (xs, ys) if lengths is None else (xs, ys, lengths)
    return PreparedRun(task, data, epochs, batch_size)


def former_fit_keywords(former: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fit``'s keywords for its former ones: ``decay_at``, ``decay_factor`` become
    ``recipe=AdamStepDecay(decay_at, factor)``, ``lam`` (with ``regularizer`` a name) becomes
    ``regularizer=regularizer_by_name(name, lam=lam)``."""
    out = dict(kwargs)
    if former.keys() & {"decay_at", "decay_factor"}:
        if kwargs.get("recipe") is not None:
            raise TypeError("fit() got decay_at/decay_factor and recipe; pass recipe only.")
        at, factor = former.get("decay_at", 0.9), former.get("decay_factor", 0.1)
        out["recipe"] = AdamStepDecay(decay_at=at, factor=factor)
    if former.keys() & {"lam"}:
        name = kwargs.get("regularizer", "noise")
        if not isinstance(name, str):
            raise TypeError(
                f"fit() got lam= and the object regularizer={name!r}; give the weight in it: "
                "ExplicitRegularizer(lam=...)."
            )
        out["regularizer"] = regularizer_by_name(name, lam=former["lam"])
    return out


_FORMER = ("decay_at", "decay_factor", "lam")
_INSTEAD = (
    "pass recipe=noisy_dyn.AdamStepDecay(decay_at=..., factor=...) and "
    "regularizer=noisy_dyn.ExplicitRegularizer(lam=...)"
)


@takes_former_keywords(_FORMER, former_fit_keywords, instead=_INSTEAD)
@takes_train_options(renamed={"checkpoint_every_steps": "checkpoint_every"})
def fit(
    cfg: NoisyRNNConfig,
    train: Sequences | tuple,
    *,
    learning_rate: float,
    validation: Sequences | tuple | None = None,
    regularizer: Regularizer | str = NOISE_INJECTION,
    recipe: Recipe = ADAM_STEP_DECAY,
    init: Params | None = None,
    eval_batch_size: int = EVAL_BATCH_SIZE,
    options: trainkit.TrainOptions,
) -> trainkit.Trained:
    """Train a Noisy RNN (or a baseline) with a recipe (Adam and a step decay by default).

    Each step minimises, over a mini-batch ``B``, the regularizer's loss:

    - :class:`noisy_dyn.NoiseInjection` (default): ``mean_{i in B} CE(apply(params, x_i, cfg,
      key=k_s), y_i)``, the loss of the noisy forward pass with fresh noise
      ``k_s = fold_in(noise_key, s)`` at global step ``s`` (no noise for deterministic configs);
    - :class:`noisy_dyn.ExplicitRegularizer` ``(lam, trace)``: ``mean CE(deterministic) + lam *
      mean r_i`` with ``r`` the second-order small-noise regulariser (``docs/derivations.md``,
      Sec. 1), its trace :class:`noisy_dyn.Exact` or :class:`noisy_dyn.Hutchinson`.

    and updates ``w <- w - lr(s) D(g)`` with the recipe's direction ``D`` and schedule ``lr``:
    by default :class:`trainkit.AdamStepDecay` ``(decay_at=0.9, factor=0.1)``, Adam with the
    learning rate multiplied by ``factor`` after ``ceil(decay_at * epochs)`` epochs; any
    :class:`trainkit.Recipe` (``SGDRecipe``, ``AdamRsqrtRecipe``, as ``basis_ode.fit``). The batch
    axis is sharded over ``mesh`` (parameters replicated), which gives the single-device numbers
    up to floating-point summation order. A non-finite loss or gradient stops training with
    :class:`trainkit.TrainingDiverged` (``noisy_dyn.TrainingDiverged``); the last good
    checkpoint is kept. An epoch's training loss above ``trainkit.LOSS_ALARM`` times the chance
    level's (``log C``) is announced once on stderr with its likely causes (input scale, ``dt``,
    learning rate).

    Arguments:
        cfg: the model configuration.
        train: a :class:`trainkit.Sequences` (what the loaders of :mod:`noisy_dyn.data` return)
            or a tuple ``(xs, ys)`` / ``(xs, ys, lengths)``: ``xs (N, time, input_size)``
            floating, ``ys (N,)`` integers in ``[0, num_classes)``, ``lengths (N,)`` in
            ``[1, time]``. Padded series without lengths are refused (:func:`check_split`).
        learning_rate: the peak learning rate ``lr0`` (> 0) of the recipe's schedule.
        validation: optional, as ``train``; evaluated (deterministic inference) after every
            epoch; the parameters of the best validation accuracy are returned.
        regularizer: ``NoiseInjection()`` or ``ExplicitRegularizer(lam, trace)`` (Lipschitz
            cell; variable lengths as for the noise: steps past a series' length are the
            identity). The names ``"noise"`` / ``"explicit"`` are still accepted with a
            DeprecationWarning.
        recipe: the optimizer direction and learning-rate schedule (a :class:`trainkit.Recipe`).
        init: initial parameters (default ``init_params(init_key, cfg)``).
        eval_batch_size: batch size of the validation pass (``trainkit.EVAL_BATCH_SIZE``).
        <train options>
        checkpoint_every_steps: the former name of ``checkpoint_every``, still accepted.
        decay_at, decay_factor, lam: the former keywords, still accepted with a
            DeprecationWarning (``recipe=AdamStepDecay(decay_at, factor)``,
            ``regularizer=ExplicitRegularizer(lam)``).

    Returns:
        A :class:`trainkit.Trained` ``(model, params, history)``: ``cfg``, the trained
        parameters, and a dict of per-epoch lists (epoch 1 first):
        ``epoch, step, train_loss, train_accuracy, learning_rate, seconds`` and, with
        validation, ``val_accuracy, val_loss``, plus the callback's entries; and the run-level
        ``best_epoch``, ``global_step``, ``interrupted``.

    Examples:
        >>> import noisy_dyn as nd
        >>> s = nd.data.load_digits(seed=0)
        >>> cfg = nd.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=16, dt=0.1225)
        >>> cfg, params, history = nd.fit(cfg, s.train, learning_rate=1e-2, epochs=2,
        ...                               batch_size=64, validation=s.validation, progress=False)
        >>> history["epoch"], history["best_epoch"] in (1, 2)
        ([1, 2], True)
    """
    o = options
    data_seed = o.seed if o.data_seed is None else int(o.data_seed)
    run = prepare_run(cfg, train, validation, epochs=o.epochs, batch_size=o.batch_size,
                      learning_rate=learning_rate, regularizer=regularizer, recipe=recipe,
                      data_seed=data_seed, init=init, eval_batch_size=eval_batch_size)  # fmt: skip
    o = o.replace(epochs=run.epochs, batch_size=run.batch_size, data_seed=data_seed)
    params, history, _ = trainkit.train(run.task, run.data, trainkit.Settings.from_options(o))
    return trainkit.Trained(cfg, params, history)
