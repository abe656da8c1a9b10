"""Ensembles: ``S`` seeds of one ODE-Net trained as one compiled program.

Member ``j`` is ``model`` trained from seed ``seeds[j]``: the run ``fit(model, train,
seed=seeds[j], data_seed=data_seeds[j])`` with the same settings. Its initial variables are
``model.init`` with ``init_key_j`` of ``init_key_j, noise_key_j = split(key(seeds[j]))``, its step
``s`` gets ``fold_in(noise_key_j, s)`` (what ``augment`` draws from), its epoch ``e`` visits the
examples in ``trainkit.epoch_order(N, seed=data_seeds[j], epoch=e)``, and the recipe updates it
alone, its BatchNorm statistics from its own batches. The members' train states are stacked on a
leading member axis and stepped together by ``trainkit.train``'s member axis (``jax.vmap`` on an
accelerator, one member after the other on each CPU device; members sharded over the devices
when their number divides the device count): one compiled step for all of them.

Refinement (``refine_at``) refines every member at the start of the listed epochs (each member's
coefficients refined as ``fit`` refines them, the stacked state rebuilt) and retraces the step once
for the new shapes, as ``fit`` does. With validation it needs ``return_params=LastEpoch()``: the
members' best epochs may lie on either side of a refinement, and variables of different K do not
stack.

Only seeds: the members share one model. A Flax module's fields (width, basis, K, ``n_steps``,
scheme, dtype) are static, so two models differing in any of them compile to two programs; train
them with one ``fit_ensemble`` each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jaxtyping import ArrayLike, Int

import trainkit
from trainkit import EVAL_BATCH_SIZE, DivergencePolicy, Recipe
from trainkit.internal import (
    RAISE_ON_DIVERGENCE,
    as_divergence_policy,
    check_seeds,
    member_of,
    stack_members,
    takes_train_options,
)

from ._train import SGD_RECIPE, _OdeTask, prepare_task

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


@dataclasses.dataclass(frozen=True, eq=False)
class _EnsembleTask:
    """``members`` copies of one ``fit`` task, their states stacked on a leading member axis."""

    member: _OdeTask
    members: int
    data_seeds: tuple[int, ...]
    package: str = "basis_ode.fit_ensemble"

    @property
    def config(self) -> dict:
        return self.member.config

    @property
    def optimizer(self) -> dict:
        return {**self.member.optimizer, "data_seed": list(self.data_seeds)}

    def init(self, keys, meta):
        return stack_members([self.member.init(keys[m], meta) for m in range(self.members)])

    def template(self, meta):
        one = self.member.template(meta)
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct((self.members, *a.shape), a.dtype), one)

    def step_fn(self, meta):
        return self.member.step_fn(meta)

    def hyper(self, meta):
        return {}

    def epoch_start(self, epoch, state, meta):
        if epoch not in self.member.refine_at:
            return state, meta
        each = [self.member.epoch_start(epoch, member_of(state, m), meta)
                for m in range(self.members)]  # fmt: skip
        return stack_members([s for s, _ in each]), each[0][1]

    def evaluate(self, state, meta):
        if self.member.validation is None:
            return {}
        each = [self.member.evaluate(member_of(state, m), meta) for m in range(self.members)]
        return {k: [e[k] for e in each] for k in each[0]}

    def record(self, state, meta, step):
        return self.member.record(member_of(state, 0), meta, step)

    def export(self, state, meta):
        return self.member.export(state, meta)

    def diverged_hint(self):
        return self.member.diverged_hint()


def _check_model(model: Any) -> None:
    if isinstance(model, Sequence):
        raise TypeError(
            "basis_ode.fit_ensemble trains the seeds of one model, got a sequence of "
            f"{len(model)}; models differing in a field (width, basis, n_steps, ...) compile to "
            "different programs: call fit_ensemble once per model."
        )


@takes_train_options(exclude=("seed", "data_seed"))
def fit_ensemble(
    model: Any,
    train: tuple | list,
    *,
    seeds: Sequence[int] | Int[np.ndarray, " members"],
    learning_rate: float,
    recipe: Recipe = SGD_RECIPE,
    validation: tuple | list | None = None,
    data_seeds: Sequence[int] | Int[np.ndarray, " members"] | None = None,
    refine_at: Sequence[int] = (),
    variables: Any = None,
    augment: Callable[..., ArrayLike] | None = None,
    eval_batch_size: int = EVAL_BATCH_SIZE,
    on_divergence: DivergencePolicy | str = RAISE_ON_DIVERGENCE,
    options: trainkit.TrainOptions,
) -> trainkit.Trained:
    """Train ``len(seeds)`` copies of ``model`` from different seeds in one compiled program.

    Member ``j`` is ``fit(model, train, seed=seeds[j], data_seed=data_seeds[j])`` with the same
    settings, up to floating-point rounding: the same initial variables, step keys, example
    order, BatchNorm statistics and recipe updates (module docstring). Each step minimises, per
    member, the loss of :func:`basis_ode.fit` on that member's batch.

    Arguments:
        model: one Flax module (``ConvODENet``, ``ODETransformerTagger``, ...). Ensembles over
            models are refused: their fields are static, each model is its own program.
        train: ``(xs, ys)`` images or ``(tokens, tags, lengths)``, as for ``fit``.
        seeds: one seed per member (initialisation and the step keys of ``augment``);
            distinct integers.
        learning_rate, recipe, validation, refine_at, variables, augment, eval_batch_size: as
            for ``fit``, the same for every member (validation is evaluated for each member;
            ``variables``, when given, start every member). ``refine_at`` with validation
            needs ``return_params=LastEpoch()`` (module docstring).
        data_seeds: seeds of the example order, one per member (default ``seeds``).
        on_divergence: ``trainkit.RaiseOnDivergence()`` (default): a non-finite loss or
            gradient in any member stops the run (``TrainingDiverged``, naming the members);
            ``trainkit.FreezeDiverged()``: such a member keeps its last finite variables and the
            others train on; ``history["diverged_step"]`` gives, per member, the global step of
            its first non-finite update or None. The names ``"raise"``, ``"freeze"`` still work
            and warn, as in ``noisy_dyn.fit_ensemble``.
        <train options>

    The options hold for the whole ensemble: one checkpoint holds every member (resumed as
    ``fit`` resumes); ``callback`` gets the stacked variables; ``return_params=BestValidation()``
    gives each member its own best validation epoch.

    Returns:
        A :class:`trainkit.Trained` ``(model, params, history)``: the module that goes with the
        variables (its K and n_steps after refinements); every leaf of the variables
        (``params`` and the mutable collections) stacked on a leading member axis of length
        ``len(seeds)`` (member ``j``: ``jax.tree.map(lambda a: a[j], variables)``); the
        history of ``fit`` whose per-epoch training and validation values are lists over the
        members, ``best_epoch`` a list per member.
    """
    _check_model(model)
    seeds = check_seeds("seeds", seeds)
    data_seeds = seeds if data_seeds is None else check_seeds("data_seeds", data_seeds)
    if len(data_seeds) != len(seeds):
        raise ValueError(
            f"`data_seeds` needs one value per seed ({len(seeds)}), got {len(data_seeds)}."
        )
    if refine_at and validation is not None and options.return_params.best:
        raise ValueError(
            "fit_ensemble with refine_at and validation would return each member's best epoch, "
            "and members refined a different number of times cannot be stacked: pass "
            "return_params=LastEpoch() (history['best_epoch'] still names each member's best)."
        )
    member = prepare_task(model, train, validation, learning_rate=learning_rate, recipe=recipe,
                          refine_at=refine_at, variables=variables, augment=augment,
                          eval_batch_size=eval_batch_size, options=options)  # fmt: skip
    task = _EnsembleTask(member, len(seeds), data_seeds)
    settings = trainkit.Settings.from_options(
        options.replace(seed=seeds[0]), seeds=seeds, data_seeds=data_seeds,
        on_divergence=as_divergence_policy(on_divergence, "fit_ensemble"),
    )  # fmt: skip
    result, history, meta = trainkit.train(task, member.arrays, settings)
    return trainkit.Trained(member.model_of(meta), result, history)
