"""The training loop shared by ``noisy_dyn.fit`` and ``basis_ode.fit``.

A package describes its model by a small :class:`Task` (initialisation, a pure training step,
evaluation, hooks such as basis_ode's refinement); :func:`train` runs it. The state of a run is
a pure function of ``(task, data, seed, global step)``:

- keys: ``init_key, noise_key = split(key(seed))``; the task initialises from ``init_key`` and
  the step with global index ``s`` (0-based) gets ``fold_in(noise_key, s)``, so no training step
  reuses an initialisation key;
- the example order of epoch ``e`` (0-based) is ``trainkit.epoch_order(N, seed=data_seed,
  epoch=e)``; the last incomplete batch is dropped, so every step has one shape;
- the device state (the :class:`TrainState` pytree, the epoch's running sums and the finiteness
  guard) is checkpointed with the host position, the best-on-validation parameters and the
  history, so a run killed at any moment and restarted with the same call ends bit-identical.

A member axis (``Settings.seeds``): ``M`` independent runs of one task in one compiled program,
mapped over the members (``jax.vmap``, or one after another per CPU device). Member ``m`` is
the run above with ``seed = seeds[m]`` and ``data_seed = data_seeds[m]`` (default
``seeds[m]``): its keys and example order are those of a single run with that seed. Every leaf
of the train state, of the task's ``hyper`` and of the batch gets a leading member axis;
``task.init`` receives the ``(M,)`` stacked init keys. When the mesh's device count divides
``M`` the members are sharded over the devices (no per-step communication between members);
otherwise every member's batch is sharded as in a single run. History values are per-member
lists (``best_epoch`` too); the best parameters are chosen per member; divergence of any member
stops the run and names the members, or, with ``on_divergence=FreezeDiverged()``, freezes those
members at their last finite parameters while the others train on (``diverged_step`` in the
history).

Semantics, the same for both packages:

- history: a dict of per-epoch lists, epoch 1 first (``epoch, step, train_loss, train_accuracy,
  learning_rate, seconds``, the task's extras, ``val_accuracy, val_loss`` with validation, the
  callback's entries), plus the run-level entries ``best_epoch`` (or None), ``global_step`` and
  ``interrupted``;
- ``callback(epoch, params) -> dict | None`` after every epoch (1-based), merged into history;
- ``return_params=BestValidation()`` returns the parameters of the best validation accuracy (the
  first epoch of the best; the last ones without validation), ``LastEpoch()`` the final ones;
- resuming a run prints "resumed from step N" (with ", converted from a checkpoint of an earlier
  format" when the task read one of its earlier formats: :func:`_upgrade_of`); a finished run
  prints "already complete" and is returned as it is, nothing rewritten; asking a finished run
  for more epochs continues it to the new total;
- the checkpoint folder is locked for the whole run, before orbax opens it
  (:class:`trainkit.RunLock`): a second run into it is refused naming the live one;
- SIGTERM or SIGINT: the current step is finished and saved, then
  :class:`trainkit.TrainingInterrupted` (exit status 128 + signal on the command lines); a
  second signal exits at once; a phase where the loop cannot look (XLA compiling, a long
  evaluation) is answered by the signal supervisor's thread (``trainkit._signals``);
- a checkpoint is resumed only when its files, meta and arrays match their digests and its run
  state its checksum and position; a damaged one is set aside with a warning and the newest one
  that verifies resumed (``trainkit._checkpoint.resume_point``); a resume on other devices than
  the checkpoint's is warned about;
- non-finite loss or gradient: the update and every later one are not applied; the host reads
  the on-device flag every ``check_every`` steps, at every checkpoint and at every epoch end (no
  per-step host synchronisation) and raises :class:`trainkit.TrainingDiverged`, the last good
  checkpoint kept (right after a resume: named as the one the run resumed from).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jaxtyping import PRNGKeyArray

from . import _devices
from ._atomic import atomic_write_text
from ._batching import epoch_order
from ._checkpoint import (
    VERIFIED,
    CheckpointStore,
    Upgrade,
    data_hash,
    make_fingerprint,
    resume_point,
    run_state_sha256,
)
from ._data_checks import LOSS_ALARM, loss_alarm
from ._divergence import (
    DIVERGENCE_POLICIES,
    RAISE_ON_DIVERGENCE,
    DivergencePolicy,
    divergence_policy,
)
from ._errors import TrainingDiverged
from ._history import append_epoch, empty_history, history_jsonl
from ._layout import ONE_RUN, Layout, MembersSharded, ensemble_layout
from ._lock import RunLock
from ._options import TrainOptions
from ._programs import cached_program
from ._progress import Progress
from ._signals import StopSignals, TrainingInterrupted
from ._validate import check_positive_int

logger = logging.getLogger("trainkit")


@runtime_checkable
class Task(Protocol):
    """What a package supplies to :func:`train`.

    ``meta`` is the task's JSON-able state that hooks may change (e.g. basis_ode's number of
    basis functions after a refinement); it is checkpointed and passed back to every method.
    The train state is a dict pytree ``{"params", "opt_state", "model_state"}`` (the engine adds
    ``"key"`` and ``"step"``).
    """

    package: str
    config: Any  # JSON-able model configuration (fingerprint)
    optimizer: Any  # JSON-able optimizer settings (fingerprint)

    def init(self, key: PRNGKeyArray, meta: dict) -> dict: ...

    def template(self, meta: dict) -> dict: ...

    def step_fn(self, meta: dict) -> Callable: ...

    def hyper(self, meta: dict) -> Any: ...

    def epoch_start(self, epoch: int, state: dict, meta: dict) -> tuple[dict, dict]: ...

    def evaluate(self, state: dict, meta: dict) -> dict[str, float]: ...

    def record(self, state: dict, meta: dict, step: int) -> dict[str, Any]: ...

    def export(self, state: dict, meta: dict) -> Any: ...

    def diverged_hint(self) -> str: ...

    # Optional, to warn about a training loss far above the chance level's (:func:`_check_loss`):
    #   chance_loss: float        (e.g. log C for C classes)
    #   loss_hint(members) -> str (the likely causes, named for the package's model; members:
    #                              the indices of the members concerned, None without members)
    # Optional, to resume checkpoints of the package's earlier formats (:func:`_upgrade_of`):
    #   legacy_fingerprint(stored: dict) -> dict | None
    #   upgrade(meta: dict, state: dict, best: Any) -> tuple[dict, dict, Any]


@dataclasses.dataclass(frozen=True)
class Settings(TrainOptions):
    """Options of :func:`train`: the :class:`trainkit.TrainOptions` and the member axis.

    ``seeds``, ``data_seeds``: the member axis (module docstring); ``on_divergence``:
    :class:`trainkit.RaiseOnDivergence` (the default), or :class:`trainkit.FreezeDiverged`
    (members only): a diverged member is frozen, the rest train on. The names ``"raise"``,
    ``"freeze"`` are read as those (the engine's callers parse and warn at their edge).
    """

    seeds: tuple[int, ...] | None = None
    data_seeds: tuple[int, ...] | None = None
    on_divergence: DivergencePolicy | str = RAISE_ON_DIVERGENCE

    @classmethod
    def from_options(cls, options: TrainOptions, **extra: Any) -> Settings:
        """The settings of ``options`` with ``extra`` fields (the member axis) set."""
        return cls(**{name: getattr(options, name) for name in TrainOptions.names()}, **extra)


ON_DIVERGENCE = tuple(DIVERGENCE_POLICIES)
"""The names of the divergence policies (the objects: ``RaiseOnDivergence``, ``FreezeDiverged``)."""


@dataclasses.dataclass
class Run:
    """The host side of a run: position, history, best parameters, the device carry."""

    carry: Any  # {"train": TrainState, "sums": {...}, "alive": bool, "bad_step": int}
    meta: dict  # the task's meta
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # global steps done
    history: dict = dataclasses.field(default_factory=empty_history)
    best: Any = None  # exported parameters of the best epoch (host arrays)
    best_value: Any = -math.inf  # (M,) array with members
    best_epoch: Any = None  # list with members
    best_meta: dict | None = None
    last_checkpoint: Path | None = None
    steps_per_epoch: int = 1
    epoch_t0: float = 0.0
    interrupted: bool = False
    diverged: dict = dataclasses.field(default_factory=dict)  # frozen member -> global step
    saved_step: int | None = None  # the global step of the newest checkpoint written or read
    stop: int | None = None  # the signal to stop on (trainkit._signals)
    signals: Any = None  # the StopSignals of the run
    converted: bool = False  # resumed from a checkpoint of an earlier format, converted
    resumed_from: Path | None = None  # the checkpoint resumed (None: a fresh run)
    verified: str = "files"  # how that checkpoint was verified (trainkit._checkpoint.VERIFIED)
    written_on: dict | None = None  # the devices that checkpoint was written on
    devices: dict | None = None  # the devices this run trains on (_devices.layout)


# --------------------------------------------------------------------------------------------
# the compiled step


def _zero_sums(members: int | None = None) -> dict[str, Any]:
    z = np.zeros(() if members is None else (members,), jnp.asarray(0.0).dtype)
    return {"loss_sum": z, "correct": z, "count": z}


def _guarded_step(task_step, carry, batch, hyper):
    """One step of the task; the update is dropped from the first non-finite step on."""
    train = carry["train"]
    key = jax.random.fold_in(jax.random.wrap_key_data(train["key"]), train["step"])
    inner = {k: v for k, v in train.items() if k not in ("key", "step")}
    new, metrics = task_step(inner, batch, key, train["step"], hyper)
    good = carry["alive"] & metrics["finite"]
    kept = jax.tree.map(lambda n, o: jnp.where(good, n, o), new, inner)
    sums = {k: v + jnp.where(good, metrics[k], 0).astype(v.dtype) for k, v in carry["sums"].items()}
    bad = jnp.where(carry["alive"] & ~metrics["finite"], train["step"] + 1, carry["bad_step"])
    train = {**kept, "key": train["key"], "step": train["step"] + 1}
    return {"train": train, "sums": sums, "alive": good, "bad_step": bad}


def _layout(s: Settings, mesh: Any) -> Layout:
    """How this run lies on ``mesh``: one run, or the ensemble's members split over the
    devices where their number divides the mesh, else each batch split."""
    return ONE_RUN if s.seeds is None else ensemble_layout(len(s.seeds), mesh)


def _put_batch(tree: Any, mesh: Any, layout: Layout) -> Any:
    """A step's batch on the mesh, as ``layout`` places it: the one place the loop uploads a
    step's inputs (the reliability tests pace the loop by wrapping this function)."""
    return layout.put_batch(tree, mesh)


@cached_program(maxsize=32)
def compiled_step(task_step: Callable, mesh: Any, layout: Layout = ONE_RUN) -> Callable:
    """The jitted guarded step of ``task_step`` on ``mesh`` (cached: reruns do not recompile);
    with an ensemble's layout, mapped over the leading member axis of every argument
    (``Layout.over_members``). The step is traced and run with ``mesh`` in context
    (``jax.set_mesh``), so that model code can split its batch over the mesh itself (noisy_dyn's
    kernel does: one gradient all-reduce per step instead of one per chunk of time steps)."""
    state, batch = layout.shardings(mesh)
    fn = layout.over_members(functools.partial(_guarded_step, task_step), mesh)
    jitted = jax.jit(
        fn,
        in_shardings=(state, batch, state),
        out_shardings=state,
        donate_argnums=0,
    )

    def step(carry, batch, hyper):
        with jax.set_mesh(mesh):
            return jitted(carry, batch, hyper)

    return step


# --------------------------------------------------------------------------------------------
# start: fresh or resumed


def _fresh(
    task: Task, seed: int, mesh: Any, seeds: tuple[int, ...] | None = None, layout: Layout = ONE_RUN
) -> Run:
    """A new run from ``seed`` (or, with a member axis, from each of ``seeds``)."""
    pairs = [jax.random.split(jax.random.key(x)) for x in ((seed,) if seeds is None else seeds)]
    meta: dict = {}
    shape = () if seeds is None else (len(seeds),)
    if seeds is None:
        init_key, noise_key = pairs[0][0], jax.random.key_data(pairs[0][1])
    else:
        init_key = jax.random.wrap_key_data(np.stack([jax.random.key_data(p[0]) for p in pairs]))
        noise_key = np.stack([jax.random.key_data(p[1]) for p in pairs])
    train = {**task.init(init_key, meta), "key": noise_key, "step": np.zeros(shape, np.int32)}
    carry = {"train": train, "sums": _zero_sums(None if seeds is None else len(seeds)),
             "alive": np.ones(shape, bool), "bad_step": np.zeros(shape, np.int32)}  # fmt: skip
    run = Run(carry=layout.put_state(carry, mesh), meta=meta)
    if seeds is not None:
        run.best_value, run.best_epoch = np.full(len(seeds), -math.inf), [None] * len(seeds)
    return run


def _carry_template(task: Task, meta: dict, members: int | None) -> dict:
    shape = () if members is None else (members,)
    key = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
    key = jax.ShapeDtypeStruct(shape + key.shape, key.dtype)
    train = {**task.template(meta), "key": key, "step": jax.ShapeDtypeStruct(shape, np.int32)}
    sums = jax.tree.map(lambda z: jax.ShapeDtypeStruct(z.shape, z.dtype), _zero_sums(members))
    flags = {
        "alive": jax.ShapeDtypeStruct(shape, bool),
        "bad_step": jax.ShapeDtypeStruct(shape, np.int32),
    }
    return {"train": train, "sums": sums, **flags}


def _upgrade_of(task: Task) -> Upgrade | None:
    """The task's reader of its earlier checkpoint formats, when it has one.

    A task that gives both ``legacy_fingerprint(stored) -> dict | None`` (a stored fingerprint
    in today's terms, or None when it is not of an earlier format) and ``upgrade(meta, state,
    best) -> (meta, state, best)`` (the step meta with ``task`` and ``best.meta`` converted; the
    train state ``{"params", "opt_state", "model_state"}`` and the best parameters, raw as
    stored, turned into state dicts of today's structures) resumes such checkpoints; the engine
    keeps the key, the step counter, the sums and the flags as stored and checks the result
    against today's template."""
    fingerprint = getattr(task, "legacy_fingerprint", None)
    convert = getattr(task, "upgrade", None)
    if fingerprint is None or convert is None:
        return None

    def state(meta: dict, raw: dict, best: Any) -> tuple[dict, dict, Any]:
        train = raw["train"]
        inner = {k: v for k, v in train.items() if k not in ("key", "step")}
        meta, inner, best = convert(meta, inner, best)
        return meta, {**raw, "train": {**inner, "key": train["key"], "step": train["step"]}}, best

    return Upgrade(fingerprint=fingerprint, state=state)


def _resumed(found: Any, mesh: Any, store: CheckpointStore, layout: Layout, task: Task) -> Run:
    step, meta, state, best, converted, verified = found
    if best is not None:  # nested dicts as stored: back into the structure the task exports
        best = serialization.from_state_dict(task.export(state["train"], meta["task"]), best)
    pos = meta["position"]
    run = Run(carry=layout.put_state(state, mesh), meta=meta["task"])
    run.epoch, run.batch, run.step = pos["epoch"], pos["batch"], pos["step"]
    run.history = meta["history"]
    run.best = best
    b = meta.get("best") or {}
    value = b.get("value")
    if isinstance(value, list):  # members: None for a member without a best yet
        run.best_value = np.array([-math.inf if v is None else v for v in value])
    else:
        run.best_value = -math.inf if value is None else value
    run.best_epoch, run.best_meta = b.get("epoch"), b.get("meta")
    run.last_checkpoint = run.resumed_from = store.path(step)
    run.saved_step = run.step
    run.converted, run.verified = converted, verified
    run.written_on = meta.get("devices")
    return run


def _start(
    task: Task, fingerprint: dict, s: Settings, mesh: Any, spe: int, read_only: bool = False
) -> tuple[Any, Run]:
    """Open the checkpoint folder (if any) and return ``(store, run)``: resumed or fresh.

    The caller holds the folder's lock (:class:`trainkit.RunLock`); ``read_only``: the folder
    cannot be written (only a finished run can be "resumed" there)."""
    if s.checkpoint_dir is None:
        return None, _fresh(task, s.seed, mesh, s.seeds, _layout(s, mesh))
    store = CheckpointStore(s.checkpoint_dir, s.keep, reading=read_only)
    try:
        if not s.resume:
            if n := store.clear():
                _say(s, f"resume=False: deleted {n} checkpoints in {store.directory}")
            found = None
        else:
            members = None if s.seeds is None else len(s.seeds)
            found = resume_point(
                store,
                fingerprint,
                lambda m: _carry_template(task, m["task"], members),
                check=lambda meta, state: _check_run_state(meta, state, s, spe),
                upgrade=_upgrade_of(task),
            )
    except BaseException:
        store.close()
        raise
    if found is None:
        return store, _fresh(task, s.seed, mesh, s.seeds, _layout(s, mesh))
    return store, _resumed(found, mesh, store, _layout(s, mesh), task)


def _check_run_state(meta: dict, state: Any, s: Settings, spe: int) -> str | None:
    """What is wrong with a stored run state (position, history, best), or None (``state``
    None: the meta alone).

    The checksum of the run state must match, and the position must be consistent: the step
    recorded beside it equal to its ``step``, ``step = epoch x steps_per_epoch + batch`` with
    ``0 <= batch <= steps_per_epoch``, one history entry per finished epoch, and the device step
    counter of the stored state equal to ``step``."""
    want = meta.get("run_state_sha256")
    if want is not None and want != run_state_sha256(meta):
        return "its run state (position, history, best) does not match its checksum"
    try:
        pos = meta["position"]
        epoch, batch, step = (int(pos[k]) for k in ("epoch", "batch", "step"))
        done = len(meta["history"].get("epoch", []))
    except (KeyError, TypeError, ValueError, AttributeError):
        return "its run state lacks the position or the history"
    if meta.get("step", step) != step:
        return f"its step ({meta.get('step')!r}) is not its position's ({step})"
    if not 0 <= batch <= spe or step != epoch * spe + batch:
        return (f"its position is inconsistent (step {step} != epoch {epoch} x {spe} steps per "
                f"epoch + batch {batch})")  # fmt: skip
    if done != epoch:
        return f"its history has {done} epochs, its position {epoch}"
    if state is None:  # the meta alone (its arrays are not read)
        return None
    counter = np.asarray(state["train"]["step"]).reshape(-1)
    if counter.size and not np.all(counter == step):
        return f"its arrays are at step {int(counter[0])}, its position at step {step}"
    return None


def _say(s: Settings, message: str) -> None:
    logger.info(message)
    if s.progress and jax.process_index() == 0:
        Progress.note(message)


# --------------------------------------------------------------------------------------------
# checkpoints, log, divergence


def _save(store: Any, run: Run, fingerprint: dict, task: Task, s: Settings) -> None:
    if store is None:
        return
    _check_alive(run, task, s)
    meta = {
        "fingerprint": fingerprint,
        "position": {"epoch": run.epoch, "batch": run.batch, "step": run.step},
        "task": run.meta,
        "history": run.history,
        "best": {"value": _best_value_json(run), "epoch": run.best_epoch, "meta": run.best_meta},
        "devices": run.devices,
    }  # fmt: skip
    meta["run_state_sha256"] = run_state_sha256(meta)
    state = _devices.to_host(run.carry)
    _mark(run, "saving")
    # every process calls orbax's save (it synchronises the processes; the primary one writes)
    run.last_checkpoint = store.save(run.step, state, run.best, meta)
    run.saved_step = run.step
    _mark(run, "training")


def _mark(run: Run, phase: str) -> None:
    """Tell the signal supervisor which phase the run is in (``trainkit._signals.PHASES``)."""
    if run.signals is not None:
        run.signals.mark(phase)


_COMPILED: set[int] = set()  # the compiled steps already called in this process


def _best_value_json(run: Run) -> Any:
    if isinstance(run.best_epoch, list):
        return [None if e is None else float(v) for v, e in zip(run.best_value, run.best_epoch)]
    return None if run.best_epoch is None else run.best_value


def _write_log(run: Run, s: Settings) -> None:
    path = s.log_path
    if path is None and s.checkpoint_dir is not None:
        path = Path(s.checkpoint_dir) / "log.jsonl"
    if path is not None and jax.process_index() == 0:
        atomic_write_text(path, history_jsonl(run.history))


def _check_alive(run: Run, task: Task, s: Settings) -> None:
    """Read the on-device finiteness flag (a host synchronisation); raise if it dropped."""
    alive = np.asarray(_devices.to_host(run.carry["alive"]))
    if bool(np.all(alive)):
        return
    dead = np.flatnonzero(~alive.reshape(-1))
    steps = np.asarray(_devices.to_host(run.carry["bad_step"])).reshape(-1)
    if divergence_policy(s.on_divergence).freezes and alive.ndim and alive.any():
        _freeze(run, s, {int(m): int(steps[m]) for m in dead})
        return
    bad = int(np.min(steps[dead]))
    epoch = (bad - 1) // run.steps_per_epoch + 1
    who = "" if alive.ndim == 0 else f" of members {dead.tolist()}"
    raise TrainingDiverged(
        f"Non-finite loss or gradient{who} at global step {bad} (epoch {epoch}); that update and "
        f"the later ones were not applied, training stopped and {_kept(run, bad)}. "
        + task.diverged_hint(),
        step=bad,
        epoch=epoch,
        params=task.export(_devices.to_host(run.carry["train"]), run.meta),
        checkpoint=run.last_checkpoint,
    )


def _kept(run: Run, bad: int) -> str:
    """Which checkpoint a divergence keeps; right after a resume, the one it came from."""
    if run.last_checkpoint is None:
        return "no checkpoint was written"
    if run.resumed_from is None or run.last_checkpoint != run.resumed_from:
        return f"the last good checkpoint {run.last_checkpoint} is kept"
    return (f"it had resumed {bad - run.saved_step} step(s) before from the checkpoint "
            f"{run.resumed_from}, which is kept ({VERIFIED[run.verified]}; if it is damaged, move "
            "it away and the run resumes from the step before)")  # fmt: skip


def _freeze(run: Run, s: Settings, dead: dict[int, int]) -> None:
    """Note the members newly frozen after a non-finite step (``FreezeDiverged()``)."""
    new = {m: step for m, step in dead.items() if m not in run.diverged}
    for m, step in sorted(new.items()):
        epoch = (step - 1) // run.steps_per_epoch + 1
        _say(s, f"member {m} diverged at global step {step} (epoch {epoch}): frozen at its last "
                "finite parameters; the other members train on")  # fmt: skip
    run.diverged.update(new)


# --------------------------------------------------------------------------------------------
# epochs


def _run_steps(task, run: Run, data, s: Settings, mesh, store, fingerprint, bar) -> None:
    """The steps of the current epoch from ``run.batch`` on (or until ``stop_after_steps``)."""
    n = len(data[0])
    spe = n // s.batch_size
    layout = _layout(s, mesh)
    order = _epoch_orders(n, s, run.epoch)
    step = compiled_step(task.step_fn(run.meta), mesh, layout)
    hyper = layout.put_state(task.hyper(run.meta), mesh)
    while run.batch < spe:
        if s.stop_after_steps is not None and run.step >= s.stop_after_steps:
            run.interrupted = True
            return
        idx = order[..., run.batch * s.batch_size : (run.batch + 1) * s.batch_size]
        batch = _put_batch(tuple(a[idx] for a in data), mesh, layout)
        _mark(run, "training" if id(step) in _COMPILED else "compilation")
        run.carry = step(run.carry, batch, hyper)
        _COMPILED.add(id(step))
        run.step += 1
        run.batch += 1
        bar.update(1)
        if run.signals is not None and (sig := run.signals.after_step(run.step)):
            run.stop = sig
            return
        if run.step % s.check_every == 0:
            _check_alive(run, task, s)
        if s.checkpoint_every and run.step % s.checkpoint_every == 0 and run.batch < spe:
            _save(store, run, fingerprint, task, s)


def _epoch_orders(n: int, s: Settings, epoch: int) -> np.ndarray:
    """The example order of ``epoch``: ``(n,)``, or ``(members, n)`` with a member axis."""
    if s.seeds is None:
        return epoch_order(n, seed=s.seed if s.data_seed is None else s.data_seed, epoch=epoch)
    seeds = s.seeds if s.data_seeds is None else s.data_seeds
    return np.stack([epoch_order(n, seed=seed, epoch=epoch) for seed in seeds])


def _update_best(run: Run, value: Any, train: Any, task: Task) -> None:
    """Keep the parameters of the best validation accuracy (per member with a member axis)."""
    if not isinstance(run.best_epoch, list):
        if value > run.best_value:
            run.best_value, run.best_epoch = float(value), run.epoch + 1
            run.best, run.best_meta = task.export(train, run.meta), dict(run.meta)
        return
    better = np.asarray(value, dtype=float) > run.best_value
    if not better.any():
        return
    params = task.export(train, run.meta)
    if run.best is None:
        run.best = params
    else:
        mask = lambda new: better.reshape((-1,) + (1,) * (np.ndim(new) - 1))  # noqa: E731
        run.best = jax.tree.map(lambda new, old: np.where(mask(new), new, old), params, run.best)
    run.best_value = np.where(better, np.asarray(value, dtype=float), run.best_value)
    run.best_epoch = [run.epoch + 1 if b else e for b, e in zip(better, run.best_epoch)]
    run.best_meta = dict(run.meta)


def _shown(history: dict) -> dict:
    """The history for the progress line: members' values averaged."""
    return {k: [float(np.mean(v[-1]))] if isinstance(v[-1], list) else v for k, v in
            history.items() if isinstance(v, list) and v}  # fmt: skip


def _end_epoch(task: Task, run: Run, s: Settings) -> None:
    """History entry, validation, best parameters and callback of the epoch just finished."""
    sums = _devices.to_host(run.carry["sums"])
    train = _devices.to_host(run.carry["train"])
    count = np.maximum(np.asarray(sums["count"], dtype=float), 1.0)
    entry = {
        "epoch": run.epoch + 1,
        "step": run.step,
        "train_loss": (np.asarray(sums["loss_sum"], dtype=float) / count).tolist(),
        "train_accuracy": (np.asarray(sums["correct"], dtype=float) / count).tolist(),
        **task.record(train, run.meta, run.step),
    }
    _mark(run, "evaluation")
    val = task.evaluate(train, run.meta)
    entry.update(val)
    if "val_accuracy" in val:
        _update_best(run, val["val_accuracy"], train, task)
    if s.callback is not None:
        extra = s.callback(run.epoch + 1, task.export(train, run.meta))
        entry.update(extra or {})
    _mark(run, "training")
    entry["seconds"] = time.perf_counter() - run.epoch_t0
    append_epoch(run.history, entry)
    _check_loss(task, run.history)


def _check_loss(task: Task, history: dict) -> None:
    """Warn, once a run, when the epoch's training loss first exceeds
    :data:`trainkit.LOSS_ALARM` times the task's ``chance_loss`` (tasks without one: no check)."""
    chance = getattr(task, "chance_loss", None)
    losses = history.get("train_loss") or []
    if chance is None or not losses:
        return
    message = loss_alarm(losses, float(chance))
    if message:
        last = np.asarray(losses[-1], dtype=float)
        members = None if last.ndim == 0 else np.flatnonzero(last > LOSS_ALARM * chance).tolist()
        hint = getattr(task, "loss_hint", None)
        message += " " + (hint(members) if hint is not None else task.diverged_hint())
        print("warning: " + message, file=sys.stderr, flush=True)


def _epoch(task, run: Run, data, s: Settings, mesh, store, fingerprint, bar) -> None:
    run.epoch_t0 = time.perf_counter()
    if run.batch == 0:
        train = run.carry["train"]
        inner = {k: v for k, v in train.items() if k not in ("key", "step")}
        new, run.meta = task.epoch_start(run.epoch, inner, run.meta)
        if new is not inner:  # a hook changed the state (e.g. a refinement)
            new = _layout(s, mesh).put_state(new, mesh)
            new = {**new, "key": train["key"], "step": train["step"]}
            run.carry = {**run.carry, "train": new}
    _run_steps(task, run, data, s, mesh, store, fingerprint, bar)
    if run.interrupted or run.stop:
        return
    _check_alive(run, task, s)
    _end_epoch(task, run, s)
    run.epoch, run.batch = run.epoch + 1, 0
    members = None if s.seeds is None else len(s.seeds)
    sums = _layout(s, mesh).put_state(_zero_sums(members), mesh)
    run.carry = {**run.carry, "sums": sums}
    _save(store, run, fingerprint, task, s)
    _write_log(run, s)
    bar.epoch_done(_shown(run.history))


# --------------------------------------------------------------------------------------------
# the entry point


def _check_settings(s: Settings, n: int) -> None:
    for name in ("epochs", "batch_size", "keep", "check_every"):
        check_positive_int(name, getattr(s, name))
    for name in ("checkpoint_every", "stop_after_steps"):
        check_positive_int(name, getattr(s, name), optional=True)
    if s.batch_size > n:
        raise ValueError(
            f"`batch_size` ({s.batch_size}) is larger than the training set ({n} examples); "
            f"lower it (--batch-size on the command line), to at most {n}."
        )
    if s.seeds is not None and (
        not s.seeds or (s.data_seeds is not None and len(s.data_seeds) != len(s.seeds))
    ):
        raise ValueError("`seeds` must be non-empty and `data_seeds` (if given) as long.")
    divergence_policy(s.on_divergence)  # refuses anything but a policy or its name


def _result(task: Task, run: Run, s: Settings) -> tuple[Any, dict, dict]:
    """``(params, history, meta)`` to return: best or last parameters, with the task meta."""
    history = dict(run.history)
    history.update(best_epoch=run.best_epoch, global_step=run.step, interrupted=run.interrupted)
    if s.seeds is not None:  # from the device flags: right after a resume too
        alive, bad = (np.asarray(_devices.to_host(run.carry[k])) for k in ("alive", "bad_step"))
        history["diverged_step"] = [None if a else int(b) for a, b in zip(alive, bad)]
    if s.return_params.best and run.best is not None:
        return run.best, history, run.best_meta or run.meta
    return task.export(_devices.to_host(run.carry["train"]), run.meta), history, run.meta


def _check_mesh(s: Settings) -> Any:
    """The mesh; a batch sharded over it must divide (members sharded need not)."""
    mesh = _devices.default_mesh() if s.mesh is None else s.mesh
    if isinstance(mesh, Mesh) and isinstance(_layout(s, mesh), MembersSharded):
        return mesh
    return _devices.check_mesh(mesh, s.batch_size)


def train(task: Task, data: tuple, settings: Settings) -> tuple[Any, dict, dict]:
    """Run ``task`` on ``data`` (a tuple of arrays with one leading example axis).

    Returns ``(params, history, meta)``: the task's exported parameters (best or last), the
    history (module docstring) and the task meta that goes with those parameters.
    """
    s = settings
    n = len(data[0])
    _check_settings(s, n)
    mesh = _check_mesh(s)
    spe = n // s.batch_size
    fingerprint = make_fingerprint(task.package, task.config, task.optimizer, data_hash(*data),
                                   s.seed)  # fmt: skip
    if s.seeds is not None:
        fingerprint["seed"] = [int(x) for x in s.seeds]
    with _locked(s) as lock, StopSignals(s.check_every) as signals:
        store, run = _start(task, fingerprint, s, mesh, spe, lock is not None and lock.read_only)
        run.steps_per_epoch, run.signals = spe, signals
        run.devices = _devices.layout(mesh)
        signals.watch(run)
        try:
            if run.epoch >= s.epochs and store is not None and run.step > 0:
                _say(s, f"already complete: {run.epoch} epochs ({run.step} steps) in "
                        f"{store.directory}")  # fmt: skip
                return _result(task, run, s)
            if lock is not None and lock.read_only:
                raise PermissionError(
                    f"{lock.directory} cannot be written (read-only) and its run is not "
                    "complete; copy the folder somewhere writable to resume it."
                )
            if run.step > 0:
                _say_resumed(run, s, store)
            shown = s.progress and jax.process_index() == 0
            with Progress(s.epochs * spe, run.step, shown) as bar:
                while run.epoch < s.epochs and not run.interrupted and not run.stop:
                    _epoch(task, run, data, s, mesh, store, fingerprint, bar)
                    if not run.stop and not run.interrupted:
                        run.stop = signals.at_epoch_end()
            if run.stop:
                _stop(store, run, fingerprint, task, s)
        finally:
            if store is not None:
                store.close()
    return _result(task, run, s)


def _say_resumed(run: Run, s: Settings, store: Any) -> None:
    """The resume line (how the checkpoint was verified, unless fully), and a warning when
    the devices differ from those the checkpoint was written on."""
    how = ", converted from a checkpoint of an earlier format" if run.converted else ""
    if run.verified == "none":
        how += f" ({VERIFIED['none']})"
    _say(s, f"resumed from step {run.step} (epoch {run.epoch + 1} of {s.epochs}) in "
            f"{store.directory}{how}")  # fmt: skip
    change = _devices.layout_change(run.written_on, run.devices)
    if change and jax.process_index() == 0:
        warnings.warn(change, stacklevel=3)


def _locked(s: Settings) -> Any:
    """The lock of the checkpoint folder (process 0 takes it; the others wait for its outcome),
    or a null context without a folder."""
    if s.checkpoint_dir is None:
        return contextlib.nullcontext()
    if jax.process_count() == 1:
        return RunLock(s.checkpoint_dir)
    return _shared_lock(s.checkpoint_dir)


@contextlib.contextmanager
def _shared_lock(directory: Any) -> Any:
    """Several processes: process 0 takes the lock; all processes learn whether it got it."""
    lock, error = RunLock(directory), None
    if jax.process_index() == 0:
        try:
            lock.acquire()
        except OSError as err:
            error = err
    ok = multihost_utils.broadcast_one_to_all(np.int32(error is None))
    if error is not None:
        raise error
    if not int(ok):
        raise RunLock.locked_elsewhere(directory)
    try:
        yield lock
    finally:
        lock.release()


def _stop(store: Any, run: Run, fingerprint: dict, task: Task, s: Settings) -> None:
    """Save the current position (unless just saved) and raise :class:`TrainingInterrupted`."""
    run.signals.take()
    if store is not None and run.saved_step != run.step:
        _save(store, run, fingerprint, task, s)
        _write_log(run, s)
    name = signal.Signals(run.stop).name
    epoch = max(run.step - 1, 0) // run.steps_per_epoch + 1  # the epoch of the step saved
    if store is None:
        where = "no checkpoint folder, nothing saved"
    else:
        where = f"checkpoint of step {run.step} in {run.last_checkpoint}"
    raise TrainingInterrupted(
        f"{name}: stopped after step {run.step} (epoch {epoch}); {where}; run the "
        "same command again to resume from it",
        signum=run.stop,
        step=run.step,
        checkpoint=run.last_checkpoint,
    )
