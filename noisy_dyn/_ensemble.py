"""Ensembles: ``C`` configurations x ``S`` seeds of one architecture, trained as one program.

Member ``m = i * S + j`` (cfg-major, seed-minor) is configuration ``cfgs[i]`` trained from seed
``seeds[j]``: the run ``fit(cfgs[i], train, seed=seeds[j], data_seed=data_seeds[j])`` with the
same settings. Its initial parameters come from ``init_key_j, noise_key_j = split(key(seeds[j]))``,
its step ``s`` draws noise from ``fold_in(noise_key_j, s)``, its epoch ``e`` visits the examples in
``trainkit.epoch_order(N, seed=data_seeds[j], epoch=e)``, and the recipe (Adam with the step
decay by default) updates it alone (see ``noisy_dyn._train``). The members are ``jax.vmap``-ed
in one compiled step (``trainkit.train``'s member axis) over their stacked configurations
(:func:`noisy_dyn.stack_configs`): the configurations may differ only in their numbers (the
leaves of :class:`noisy_dyn.NoisyRNNConfig`), which enter the step as traced values, so one
compilation serves every noise level. A traced level draws every kind of noise its form can use;
a member whose level is 0 multiplies that draw by 0, which leaves its recursion that of the
deterministic cell.

On a mesh whose device count divides the member count the members are sharded over the devices,
each device running its members' whole steps: no per-step communication between members. That is
what makes an ensemble cheaper than separate runs on a CPU exposed as one device per core (each
core runs its own members) and on an accelerator (one launch per step for all members).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

import trainkit
from trainkit import EVAL_BATCH_SIZE, AdamStepDecay, DivergencePolicy, Recipe
from trainkit.internal import (
    RAISE_ON_DIVERGENCE,
    as_divergence_policy,
    check_seeds,
    member_of,
    stack_members,
    takes_former_keywords,
    takes_train_options,
)

from ._config import NoisyRNNConfig, stack_configs
from ._train import ADAM_STEP_DECAY, NOISE_INJECTION, NoisyTask, Step, prepare_run


@dataclasses.dataclass(frozen=True, eq=False)
class _EnsembleTask:
    """The members' ``fit`` tasks, stacked on a leading member axis."""

    members: tuple[NoisyTask, ...]  # cfg-major, seed-minor
    structure: NoisyRNNConfig  # the static fields of every member (cfgs[0])
    config: Any
    optimizer: dict
    package: str = "noisy_dyn.fit_ensemble"

    def init(self, keys, meta):
        return stack_members([t.init(keys[m], meta) for m, t in enumerate(self.members)])

    def template(self, meta):
        keys = jax.random.wrap_key_data(np.zeros((len(self.members), 2), np.uint32))
        return jax.eval_shape(lambda: self.init(keys, meta))

    def step_fn(self, meta):
        first = self.members[0]
        return Step(self.structure, first.regularizer, first.recipe, first.steps_per_epoch,
                    first.epochs)  # fmt: skip

    def hyper(self, meta):
        # each member's config, its numbers as float32 values (one traced leaf per number)
        cfgs = stack_configs([t.cfg for t in self.members], dtype=np.float32)
        return {**stack_members([t.hyper(meta) for t in self.members]), "cfg": cfgs}

    def epoch_start(self, epoch, state, meta):
        return state, meta

    def evaluate(self, state, meta):
        if self.members[0].validation is None:
            return {}
        each = [t.evaluate(member_of(state, m), meta) for m, t in enumerate(self.members)]
        return {k: [e[k] for e in each] for k in each[0]}

    def record(self, state, meta, step):
        return self.members[0].record(state, meta, step)

    def export(self, state, meta):
        return jax.device_get(state["params"])

    def diverged_hint(self):
        return self.members[0].diverged_hint()

    @property
    def chance_loss(self) -> float:
        return self.members[0].chance_loss

    def loss_hint(self, members=None):
        first = self.members[(members or [0])[0]]
        dts = sorted({self.members[m].cfg.dt for m in (members or [0])})
        where = f" (members {members}: dt {', '.join(f'{d:g}' for d in dts)})" if members else ""
        return first.loss_hint() + where


def _former_keywords(former: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``decay_at``, ``decay_factor`` become ``recipe=AdamStepDecay(decay_at, factor)``."""
    if kwargs.get("recipe") is not None:
        raise TypeError("fit_ensemble() got decay_at/decay_factor and recipe; pass recipe only.")
    recipe = AdamStepDecay(decay_at=former.get("decay_at", 0.9),
                           factor=former.get("decay_factor", 0.1))  # fmt: skip
    return {**kwargs, "recipe": recipe}


@takes_former_keywords(
    ("decay_at", "decay_factor"), _former_keywords,
    instead="pass recipe=noisy_dyn.AdamStepDecay(decay_at=..., factor=...)",
)  # fmt: skip
@takes_train_options(
    exclude=("seed", "data_seed"), renamed={"checkpoint_every_steps": "checkpoint_every"}
)
def fit_ensemble(
    cfgs: Sequence[NoisyRNNConfig],
    train: trainkit.Sequences | tuple,
    *,
    seeds: Sequence[int],
    learning_rate: float,
    validation: trainkit.Sequences | tuple | None = None,
    recipe: Recipe = ADAM_STEP_DECAY,
    data_seeds: Sequence[int] | None = None,
    eval_batch_size: int = EVAL_BATCH_SIZE,
    on_divergence: DivergencePolicy | str = RAISE_ON_DIVERGENCE,
    options: trainkit.TrainOptions,
) -> trainkit.Trained:
    """Train ``len(cfgs) * len(seeds)`` Noisy RNNs of one architecture in one compiled program.

    Member ``i * len(seeds) + j`` is ``fit(cfgs[i], train, seed=seeds[j],
    data_seed=data_seeds[j])`` with the same settings, up to floating-point rounding: the same
    initial parameters, noise keys, example order and recipe updates (module docstring). Noise
    injection only (``regularizer=NoiseInjection()``).

    Arguments:
        cfgs: configurations differing at most in their numbers ``dt, beta, gamma_a, gamma_w,
            alpha, sigma_add, sigma_mult, init_std`` (see :func:`noisy_dyn.stack_configs`).
        train: a :class:`trainkit.Sequences` or ``(xs, ys[, lengths])``, as for
            :func:`noisy_dyn.fit`.
        seeds: the seeds of every configuration (initialisation and noise).
        learning_rate, validation, recipe: as for ``fit``, the same for every member
            (validation is evaluated for each member).
        data_seeds: seeds of the example order, one per seed (default ``seeds``).
        eval_batch_size: batch size of the validation pass.
        on_divergence: ``trainkit.RaiseOnDivergence()`` (default): a non-finite loss or
            gradient in any member stops the run (``TrainingDiverged``, naming the members);
            ``trainkit.FreezeDiverged()``: such a member keeps its last finite parameters and
            the others train on (a study should not lose 95 members to one unstable noise
            level); ``history["diverged_step"]`` gives, per member, the global step of its first
            non-finite update or None. If every member diverges the run stops as with
            ``RaiseOnDivergence()``. The names ``"raise"``, ``"freeze"`` still work and warn.
        <train options>
        checkpoint_every_steps: the former name of ``checkpoint_every``, still accepted.
        decay_at, decay_factor: the former keywords, still accepted with a DeprecationWarning
            (``recipe=AdamStepDecay(decay_at, factor)``).

    The options hold for the whole ensemble: one checkpoint holds every member; ``callback``
    gets the stacked parameters; ``return_params=BestValidation()`` gives each member its own best
    validation epoch; the mesh shards the members when its device count divides the member
    count, else every member's batch.

    Returns:
        A :class:`trainkit.Trained` ``(model, params, history)``: ``tuple(cfgs)``; every
        parameter leaf stacked on a leading member axis of length ``len(cfgs) * len(seeds)``
        (``Float[Array, "members ..."]``); the history of ``fit`` whose per-epoch training and
        validation values are lists over the members, and ``best_epoch`` a list per member.

    Examples:
        >>> import noisy_dyn as nd
        >>> s = nd.data.load_digits(seed=0)
        >>> base = nd.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=16, dt=0.1225)
        >>> cfgs = [base.replace(sigma_add=v, sigma_mult=v) for v in (0.0, 0.1)]  # twin, noisy
        >>> cfgs, params, history = nd.fit_ensemble(cfgs, s.train, seeds=[0, 1], learning_rate=1e-2,
        ...                                         epochs=1, batch_size=64, progress=False)
        >>> params["M_W"].shape  # members: (cfg 0, seed 0), (cfg 0, seed 1), (cfg 1, seed 0), ...
        (4, 16, 16)
    """
    stack_configs(cfgs)  # the members share every static field (a clear error if not)
    seeds = check_seeds("seeds", seeds)
    data_seeds = seeds if data_seeds is None else check_seeds("data_seeds", data_seeds)
    if len(data_seeds) != len(seeds):
        raise ValueError(f"`data_seeds` needs one value per seed ({len(seeds)}).")
    runs = [
        prepare_run(cfg, train, validation, epochs=options.epochs, batch_size=options.batch_size,
                    learning_rate=learning_rate, regularizer=NOISE_INJECTION, recipe=recipe,
                    data_seed=None, init=None, eval_batch_size=eval_batch_size)
        for cfg in cfgs
    ]  # fmt: skip
    first = runs[0]
    task = _EnsembleTask(
        members=tuple(run.task for run in runs for _ in seeds),
        structure=cfgs[0],
        config=[cfg.to_dict() for cfg in cfgs],
        optimizer={**first.task.optimizer, "data_seed": list(data_seeds)},
    )
    settings = trainkit.Settings.from_options(
        options.replace(epochs=first.epochs, batch_size=first.batch_size, seed=seeds[0]),
        seeds=seeds * len(cfgs), data_seeds=data_seeds * len(cfgs),
        on_divergence=as_divergence_policy(on_divergence, "fit_ensemble"),
    )  # fmt: skip
    params, history, _ = trainkit.train(task, first.data, settings)
    return trainkit.Trained(tuple(cfgs), params, history)
