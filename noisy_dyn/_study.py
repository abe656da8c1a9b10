"""A robustness study over an ensemble: every member under every perturbation, with intervals.

A study trains ``C`` configurations (noise levels ``sigma_add, sigma_mult``) from the same ``S``
seeds, so member ``i * S + j`` is configuration ``i`` trained from seed ``j`` (cfg-major,
seed-minor, the order of ``noisy_dyn.fit_ensemble``), and asks the headline question of the
Noisy RNN paper (Lim et al. 2021, "Noisy Recurrent Neural Networks", its experiments on
perturbed inputs): does noise injected in training make deterministic inference more robust to
perturbed inputs without costing clean accuracy? This module

1. evaluates all ``C S`` members at once (``jax.vmap`` over the stacked parameters, ``lax.map``
   over chunks of the test set) clean, under random corruptions and under FGSM and PGD, with the
   same random draws for every member (:func:`evaluate_members`);
2. turns the accuracies into rows with a bootstrap interval over seeds, the difference paired by
   seed against the deterministic twin (``sigma_add = sigma_mult = 0``), its sign-flip p-value
   and Holm's adjustment over the study, and the same difference at matched clean accuracy
   (:func:`study_rows`; the statistics are those of ``trainkit``);
3. writes them as ``study.json``, a Markdown table and a PNG (:func:`write_study`).

Noise kept at inference. The paper drops the training noise at inference. With
``inference_draws = N > 0`` every noise-trained member is also read *stochastically*: with its
own training noise on (its ``sigma_add``, ``sigma_mult`` and noise form), the logits averaged over
``N`` draws (:func:`stochastic_logits`), clean and under every perturbation. The draws are the
same for every member and come from their own key stream, apart from the perturbations':
``inference_key(key) = fold_in(key, 6)`` (the perturbations use ``fold_in(key, 1..5)``), and
draw ``d`` of chunk ``c`` of the test set is ``fold_in(fold_in(inference_key(key), c), d)``;
under PGD it is ``fold_in(fold_in(perturbation_key(key, p), c), d)``, the key of PGD's start in
that chunk (so the studies written so far are reproduced draw for draw). The
attacks (FGSM, PGD) attack the predictor being read: the gradient of the loss of the averaged
logits with those same draws, so no gradient is hidden by the noise. Those rows say
``"inference": "stochastic, N draws"`` (the others ``"deterministic"``) and carry the difference
paired by seed of stochastic against deterministic inference of the same member.

Matched clean accuracy. Noise can trade clean accuracy for robustness, and a less accurate
model can look more robust only because it has less to lose. Next to the seed-paired
comparison each row therefore reports one between members of equal clean accuracy: every noisy
member is paired with the deterministic member (any seed) whose clean accuracy is nearest to its
own (ties: the lowest seed index), and the pair is kept when the two clean accuracies differ by
at most ``caliper`` (nearest-neighbour matching with replacement within a caliper, as in
observational studies). The matched difference is the mean over the kept pairs, with its
bootstrap interval over them; ``matched_n`` says how many were kept. One deterministic member may
serve several noisy ones, so the pairs are not independent and that interval and p-value are
approximate (a little too narrow); read them next to the raw ones, not instead of them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from trainkit import (
    CONFIDENCE,
    MIN_SEEDS_SHOWN,
    N_BOOTSTRAP,
    N_PERMUTATIONS,
    Sequences,
    as_sequences,
    bootstrap_mean,
    holm,
    interval_heading,
    interval_legend,
    interval_text,
    paired_difference,
    sign_flip_p_value,
)
from trainkit.internal import BarContext, progress_bar, scoring_split

from ._config import NoisyRNNConfig, check_fields_agree
from ._params import check_params
from ._perturb import perturb
from ._perturbations import (
    FGSM,
    PGD,
    Attack,
    Clean,
    Gaussian,
    Multiplicative,
    Perturbation,
    SaltPepper,
    as_perturbations,
    parse_perturbation,
)
from ._selection import BY_HOLM, Selection, selection_by_name
from ._study_row import (
    DETERMINISTIC,
    Difference,
    Matched,
    StudyRow,
    inference_draws,
    stochastic_inference,
    study_rows_of,
)
from ._train import check_split, logits_with_lengths
from ._types import Params

STUDY_PERTURBATIONS: tuple[Perturbation, ...] = (
    *(Gaussian(s) for s in (0.1, 0.3, 0.5)),
    *(Multiplicative(s) for s in (0.3, 0.6, 1.0)),
    *(SaltPepper(p) for p in (0.05, 0.1, 0.2)),
    *(FGSM(e) for e in (0.01, 0.03, 0.05)),
    *(PGD(e, steps=10) for e in (0.01, 0.03, 0.05)),
)
"""The default perturbations of a study: noise standard deviations (additive and
multiplicative), salt-and-pepper fractions, and l-infinity radii of FGSM and PGD (10 steps of
``2.5 eps / 10`` from a random start)."""

_STREAMS: dict[type[Perturbation], int] = {
    Clean: 0,
    Gaussian: 1,
    Multiplicative: 2,
    SaltPepper: 3,
    FGSM: 4,
    PGD: 5,
}
"""The stable id of each perturbation's key stream (:func:`perturbation_key`): the one place
that fixes it, so stored studies stay reproducible. 6 is the inference noise's stream."""
_INFERENCE_STREAM = 6  # fold_in(key, 6): the training noise kept at inference (apart from 1..5)
STORED_SPLIT = "test"
"""The split of a study stored without a ``split`` field: studies written before the field
existed were all scored on the test split."""
_INFERENCE_FREE = ("sigma_add", "sigma_mult")  # the fields that only matter in training


def perturbation_key(
    key: PRNGKeyArray, perturbation: Perturbation | str, level: float | None = None
) -> PRNGKeyArray:
    """The key of one perturbation of a study: ``fold_in(fold_in(key, id), round(1e6 level))``.

    ``id`` is 1 :class:`Gaussian`, 2 :class:`Multiplicative`, 3 :class:`SaltPepper`, 4
    :class:`FGSM`, 5 :class:`PGD` (0 :class:`Clean`), and ``level`` the object's level; so the draws
    of a level do not depend on which other perturbations the study includes. The old spelling
    ``perturbation_key(key, "gaussian", 0.1)`` still works and warns.
    """
    if isinstance(perturbation, str):
        warnings.warn(
            f"perturbation_key(key, {perturbation!r}, level) is deprecated; pass the object, "
            "e.g. perturbation_key(key, Gaussian(0.1)).",
            DeprecationWarning,
            stacklevel=2,
        )
        perturbation = parse_perturbation(perturbation, level)
    elif level is not None:
        raise TypeError("perturbation_key: the level belongs to the perturbation object.")
    if type(perturbation) not in _STREAMS:
        raise ValueError(
            f"{perturbation!r} has no key stream in a study; choose from "
            f"{tuple(cls.__name__ for cls in _STREAMS)}."
        )
    level = round(1e6 * float(perturbation.level))
    return jax.random.fold_in(jax.random.fold_in(key, _STREAMS[type(perturbation)]), level)


def inference_key(key: PRNGKeyArray) -> PRNGKeyArray:
    """The key stream of the training noise kept at inference: ``fold_in(key, 6)``.

    Apart from every perturbation's stream (``fold_in(key, 1..5)``, :func:`perturbation_key`),
    so turning inference draws on changes none of the perturbation draws.
    """
    return jax.random.fold_in(key, _INFERENCE_STREAM)


def stochastic_logits(
    params: Params,
    xs: Float[ArrayLike, "batch time feature"],
    cfg: NoisyRNNConfig,
    *,
    key: PRNGKeyArray,
    draws: int,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "batch classes"]:
    """Logits averaged over ``draws`` draws of the training noise of ``cfg``, kept at inference.

    ``(1 / N) sum_{d < N} logits(params, xs, cfg, key = fold_in(key, d))``, each term the noisy
    forward pass of training (:func:`noisy_dyn.apply` with a key; read at each sequence's own
    length with ``lengths``). As ``sigma_add, sigma_mult -> 0`` it tends to the deterministic
    logits. The draws are vectorised (``jax.vmap``), so memory grows as ``draws x batch``.

    Arguments:
        params: one model's parameters.
        xs: ``(batch, time, input_size)`` inputs.
        cfg: the configuration, with the noise levels the model was trained with.
        key: PRNG key of the draws.
        draws: number of draws ``N >= 1``.
        lengths: optional ``(batch,)`` sequence lengths.

    Returns:
        ``(batch, num_classes)`` averaged logits.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"`draws` must be an int >= 1, got {draws!r}.")
    keys = jax.vmap(lambda d: jax.random.fold_in(key, d))(jnp.arange(draws))
    one = lambda k: logits_with_lengths(params, xs, cfg, lengths=lengths, key=k)  # noqa: E731
    return jnp.mean(jax.vmap(one)(keys), axis=0)


def _study_perturbations(perturbations: Any, pgd_steps: int) -> tuple[Perturbation, ...]:
    """The perturbations of :func:`evaluate_members` (default :data:`STUDY_PERTURBATIONS`, PGD
    with ``pgd_steps``); each must have a key stream, and no two may share name and level."""
    if perturbations is None:
        return tuple(p if not isinstance(p, PGD) else PGD(p.eps, steps=pgd_steps)
                     for p in STUDY_PERTURBATIONS)  # fmt: skip
    out = as_perturbations(perturbations, "evaluate_members", pgd_steps=pgd_steps)
    for p in out:
        if type(p) not in _STREAMS or isinstance(p, Clean):
            raise ValueError(
                f"A study cannot evaluate under {p!r} (the clean accuracy is always included); "
                "use Gaussian, Multiplicative, SaltPepper, FGSM or PGD."
            )
    names = [(p.name, float(p.level)) for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"Two perturbations share a name and level in {names}; a study's rows "
                         "are keyed by them.")  # fmt: skip
    return out


def _member_count(params: Any, cfg: NoisyRNNConfig) -> int:
    """Members on the leading axis of every leaf; member 0 must fit ``cfg``."""
    leaves = jax.tree_util.tree_leaves(params)
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else 0 for leaf in leaves}
    if not leaves or len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            "`params` must be stacked on a leading member axis (every leaf (members, ...)), as "
            "fit_ensemble returns them; stack single models with "
            "jax.tree.map(lambda *p: jnp.stack(p), *models)."
        )
    check_params(jax.tree_util.tree_map(lambda leaf: leaf[0], params), cfg)
    return sizes.pop()


@partial(jax.jit, static_argnames=("cfg", "draws"))
def _count_correct(params, chunks, attack, key, noise_key, *, cfg, draws):
    """Correct predictions of every member, summed over the chunks: ``(members,)``; with
    ``draws > 0`` read by :func:`stochastic_logits` (the draws of chunk ``c`` from
    ``fold_in(noise_key, c)``, the same for every member)."""

    def chunk(args):
        (xb, yb, lb, valid), index = args

        def member(p):
            if draws:
                # PGD's rows read the noise from PGD's own chunk key (as the studies stored so far
                # did), every other row from the inference stream.
                stream = key if isinstance(attack, PGD) else noise_key
                k = jax.random.fold_in(stream, index)
                logits = lambda x: stochastic_logits(p, x, cfg, key=k, draws=draws, lengths=lb)  # noqa: E731
            else:
                logits = lambda x: logits_with_lengths(p, x, cfg, lengths=lb)  # noqa: E731
            if attack is None:
                xb_used = xb
            else:  # PGD's start: one draw per chunk, shared by the members
                xb_used = attack.attack(logits, xb, yb, key=jax.random.fold_in(key, index))
            return jnp.sum((jnp.argmax(logits(xb_used), axis=-1) == yb) & valid)

        return jax.vmap(member)(params)

    counts = jax.lax.map(chunk, (chunks, jnp.arange(chunks[0].shape[0])))
    return counts.sum(axis=0)


def _chunks(xs: np.ndarray, ys: np.ndarray, lengths: np.ndarray | None, batch: int) -> tuple:
    """``(xs, ys, lengths, valid)`` padded to whole chunks of ``batch`` rows: ``(chunks, batch,
    ...)``; the padding copies row 0 and is masked out by ``valid``."""
    n = len(xs)
    pad = -n % batch
    take = np.concatenate([np.arange(n), np.zeros(pad, dtype=int)])
    valid = np.arange(n + pad) < n

    def split(a):
        return None if a is None else jnp.asarray(a[take].reshape((-1, batch) + a.shape[1:]))

    return split(xs), split(ys), split(lengths), jnp.asarray(valid.reshape(-1, batch))


_perturb_jit = jax.jit(perturb)


def evaluate_members(
    params: dict[str, Float[ArrayLike | np.ndarray, "members ..."]],
    cfg: NoisyRNNConfig | Sequence[NoisyRNNConfig],
    xs: Float[ArrayLike, "n time feature"] | Sequences,
    ys: Int[ArrayLike, " n"] | None = None,
    *,
    key: PRNGKeyArray,
    perturbations: Sequence[Perturbation] | Mapping[str, Sequence[float]] | None = None,
    lengths: Int[ArrayLike, " n"] | None = None,
    batch_size: int | None = None,
    pgd_steps: int = 10,
    inference_draws: int = 0,
    progress: bool = False,
) -> dict[tuple, Float[np.ndarray, " members"]]:
    """Accuracy of every member of an ensemble, clean and under each perturbation and level.

    Every member is evaluated by deterministic inference (:func:`noisy_dyn.apply`, read at each
    sequence's own length when ``lengths`` is given) on the same inputs, vectorised over the
    members with ``jax.vmap`` and over chunks of ``batch_size`` examples with ``lax.map``:

    - ``("clean", 0.0)``: the test set itself;
    - a random perturbation ``p`` (:class:`~noisy_dyn.attacks.Gaussian`,
      :class:`~noisy_dyn.attacks.Multiplicative`, :class:`~noisy_dyn.attacks.SaltPepper`): the
      inputs ``perturb(xs, p, key=perturbation_key(key, p))`` (see
      :func:`noisy_dyn.attacks.perturb`), drawn once for the whole test set, identical for every
      member;
    - an attack (:class:`~noisy_dyn.attacks.FGSM`, :class:`~noisy_dyn.attacks.PGD`): a white-box
      attack of radius ``p.eps`` in its norm's ball on each member's own gradients (PGD takes
      ``p.steps`` steps of ``2.5 eps / steps`` from a random start drawn with
      ``fold_in(perturbation_key(key, p), chunk index)``, the same for every member).

    Each result is keyed by ``(p.name, p.level)``, the words and numbers of the files.

    Members must share every inference setting (one static ``cfg``; deterministic inference
    uses none of its noise levels). Memory grows as ``members x batch_size x time x hidden``
    (the attacks keep the trajectory for their gradients), so the default chunk holds
    ``max(1, 2048 // members)`` examples: 2048 sequences in flight whatever the ensemble's size.

    With ``inference_draws = N > 0`` every noise-trained member is also read with its own
    training noise on: the logits averaged over ``N`` draws (:func:`stochastic_logits`), on the
    same perturbed inputs; the attacks take the gradient of that averaged predictor. Draw ``d``
    of chunk ``c`` uses ``fold_in(fold_in(inference_key(key), c), d)`` for every member and every
    perturbation (a stream apart from the perturbations'; chunks of ``batch_size`` examples,
    by default ``max(1, 2048 // (S x N))`` for the ``S`` members of one noise level, and the
    draws and PGD's start depend on it). A member's noise is
    that of its configuration: pass ``cfg`` as the sequence of the ensemble's configurations,
    member ``i * S + j`` being ``cfg[i]`` from seed ``j`` (``S = members / len(cfg)``); one
    ``cfg`` gives every member its noise. Members without noise (``sigma_add = sigma_mult =
    0``) are not read stochastically: their entries there are NaN.

    Arguments:
        params: the members' parameters stacked on a leading axis (as ``fit_ensemble`` returns).
        cfg: the configuration of any member, or the configurations in member order
            (cfg-major); they may differ only in ``sigma_add`` and ``sigma_mult``.
        xs: ``(n, time, input_size)`` test inputs, or the test set as one
            :class:`trainkit.Sequences` (then no ``ys`` and no ``lengths``).
        ys: ``(n,)`` integer labels.
        key: PRNG key of the random perturbations, of PGD's start and of the inference draws.
        perturbations: the perturbation objects, e.g. ``(Gaussian(0.1), PGD(0.03, steps=10))``;
            default :data:`STUDY_PERTURBATIONS` (its PGD with ``pgd_steps`` steps). A ``{name:
            levels}`` mapping (the old spelling) still works and warns.
        lengths: optional ``(n,)`` sequence lengths.
        batch_size: examples per chunk (each member sees all of them); default
            ``max(1, 2048 // members)``. PGD's random start depends on it (one draw per chunk).
        pgd_steps: PGD iterations of the default perturbations (and of a ``{name: levels}``
            mapping); a :class:`~noisy_dyn.attacks.PGD` object carries its own ``steps``.
        inference_draws: noise draws of stochastic inference, ``0`` (default) for none.
        progress: show the stages (one per perturbation and level): a bar on a terminal, else
            one line per stage on stderr with the seconds it took.

    Returns:
        ``{(perturbation, level): accuracies}``, each a float64 array of shape ``(members,)``,
        ``("clean", 0.0)`` first, then the kinds and levels in the given order; with
        ``inference_draws = N > 0`` each is followed by ``(perturbation, level, "stochastic, N
        draws")``, the same under stochastic inference (NaN for the members without noise).
    """
    perturbations = _study_perturbations(perturbations, pgd_steps)
    reader, xs = _member_reader(params, cfg, (xs, ys, lengths), batch_size, inference_draws,
                                inference_key(key))  # fmt: skip
    label = stochastic_inference(inference_draws) if inference_draws else None
    out: dict[tuple, np.ndarray] = {}
    stages = (Clean(), *perturbations)
    with _Stages(progress, len(stages), reader.members, len(xs)) as report:
        for p in stages:
            accs = reader.read(*_stage_inputs(p, xs, key))
            out[(p.name, float(p.level))] = accs[0]
            if label is not None:
                out[(p.name, float(p.level), label)] = accs[1]
            report.done(p.label())
    return out


@dataclasses.dataclass(frozen=True)
class _MemberReader:
    """Reads every member of :func:`evaluate_members` on one input set: deterministically in
    chunks of ``batch``, and with ``draws > 0`` each noisy level (members ``i * seeds`` to
    ``(i + 1) * seeds - 1`` for each configuration ``cfgs[i]`` with noise) under its own noise,
    in chunks of ``noisy_batch``."""

    params: Any
    cfgs: Sequence[NoisyRNNConfig]
    det_cfg: NoisyRNNConfig
    ys: np.ndarray
    lengths: np.ndarray | None
    members: int
    batch: int
    noisy_batch: int
    draws: int
    noise_key: Array

    def read(self, x: np.ndarray, attack: Attack | None, k: Array) -> list[np.ndarray]:
        """Accuracies ``[deterministic]``, or ``[deterministic, stochastic]`` with draws (NaN
        for the members without noise)."""
        n = len(self.ys)
        counts = _count_correct(self.params, _chunks(x, self.ys, self.lengths, self.batch),
                                attack, k, None, cfg=self.det_cfg, draws=0)  # fmt: skip
        out = [np.asarray(counts, dtype=np.float64) / n]
        if self.draws:
            chunks = _chunks(x, self.ys, self.lengths, self.noisy_batch)
            seeds = self.members // len(self.cfgs)
            acc = np.full(self.members, np.nan)
            for i, c in enumerate(self.cfgs):  # each noise level under its own (static) noise
                if c.is_deterministic():
                    continue
                part = slice(i * seeds, (i + 1) * seeds)
                group = jax.tree_util.tree_map(lambda a, part=part: a[part], self.params)
                counts = _count_correct(group, chunks, attack, k, self.noise_key, cfg=c,
                                        draws=self.draws)  # fmt: skip
                acc[part] = np.asarray(counts, np.float64) / n
            out.append(acc)
        return out


def _member_reader(
    params: Any, cfg: Any, test: tuple, batch_size: Any, draws: Any, noise_key: Array
) -> tuple[_MemberReader, np.ndarray]:
    """The checked arguments of :func:`evaluate_members` as its reader, and the test inputs
    (``test``: its ``(xs, ys, lengths)``)."""
    cfgs = [cfg] if isinstance(cfg, NoisyRNNConfig) else cfg
    if not isinstance(cfgs, Sequence) or not cfgs or isinstance(cfgs, str):
        raise TypeError(
            f"`cfg` must be a NoisyRNNConfig or a sequence of them, got {type(cfg).__name__}."
        )
    det_cfg = cfg if isinstance(cfg, NoisyRNNConfig) else inference_config(cfgs)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0:
        raise ValueError(f"`inference_draws` must be an int >= 0, got {draws!r}.")
    xs, ys, lengths = check_split("test", _test_set(*test), det_cfg)
    members = _member_count(params, det_cfg)
    if members % len(cfgs):
        raise ValueError(
            f"`params` holds {members} members, not a multiple of the {len(cfgs)} configurations "
            "in `cfg`; pass one configuration per noise level, in member order."
        )
    seeds = members // len(cfgs)
    noisy = [c for c in cfgs if not c.is_deterministic()]
    if draws and noisy and not noisy[0].cell.noisy:
        raise ValueError(f"Cell {cfgs[0].cell.name!r} has no noise to keep at inference; use "
                         "inference_draws=0.")  # fmt: skip
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"`batch_size` must be an int >= 1 or None, got {batch_size!r}.")
    batch = min(batch_size or max(1, 2048 // members), len(xs))
    noisy_batch = min(batch_size or max(1, 2048 // (seeds * max(1, draws))), len(xs))
    reader = _MemberReader(params, cfgs, det_cfg, ys, lengths, members, batch, noisy_batch,
                           draws, noise_key)  # fmt: skip
    return reader, xs


def _stage_inputs(p: Perturbation, xs: np.ndarray, key: PRNGKeyArray) -> tuple:
    """``(inputs, attack, key)`` of one stage of :func:`evaluate_members`: the clean inputs, the
    attack with its level traced (one compiled program for all levels), or the inputs perturbed
    once for every member."""
    if isinstance(p, Clean):
        return xs, None, key
    if isinstance(p, Attack):
        return xs, p.with_level(jnp.asarray(p.level, xs.dtype)), perturbation_key(key, p)
    k = perturbation_key(key, p)
    return np.asarray(_perturb_jit(jnp.asarray(xs), p, key=k)), None, k


def _test_set(xs: Any, ys: Any, lengths: Any) -> Sequences:
    """The test set of :func:`evaluate_members`, given as one ``Sequences`` or as arrays."""
    if isinstance(xs, Sequences):
        if ys is not None or lengths is not None:
            raise TypeError("evaluate_members: give the test set as one Sequences or as xs, ys "
                            "(and lengths), not both.")  # fmt: skip
        return xs
    if ys is None:
        raise TypeError("evaluate_members: missing ys (or pass the test set as one Sequences).")
    return Sequences(xs, ys, lengths)


class _Stages(BarContext):
    """Progress through the evaluation stages: a tqdm bar on a terminal, else one line per stage
    on stderr (with ``enabled``; silent otherwise)."""

    def __init__(self, enabled: bool, total: int, members: int, n: int):
        self.enabled, self.total, self.count = enabled, total, 0
        self.bar = progress_bar(enabled, total=total, desc="evaluate", unit="stage")
        self.t0 = self.last = time.perf_counter()
        if enabled and self.bar is None:
            print(f"evaluating {members} members on {n} test sequences: {total} stages (clean "
                  "and each perturbation level)", file=sys.stderr, flush=True)  # fmt: skip

    def done(self, name: str) -> None:
        self.count += 1
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix_str(name)
            self.bar.update(1)
        elif self.enabled:
            print(f"  evaluated {name} ({self.count} of {self.total}, {now - self.last:.1f} s)",
                  file=sys.stderr, flush=True)  # fmt: skip
        self.last = now


# --------------------------------------------------------------------------------------------
# rows: intervals over seeds, paired and matched differences, Holm's adjustment


def inference_config(cfgs: Sequence[NoisyRNNConfig]) -> NoisyRNNConfig:
    """The one configuration that evaluates every member: ``cfgs[0]`` without its noise.

    Raises a ``ValueError`` naming the field when two configurations differ in anything but
    ``sigma_add`` and ``sigma_mult`` (inference uses neither).
    """
    if not cfgs or not all(isinstance(c, NoisyRNNConfig) for c in cfgs):
        raise TypeError("`cfgs` must be a non-empty sequence of NoisyRNNConfig.")
    check_fields_agree(
        cfgs,
        _INFERENCE_FREE,
        "a study compares noise levels only, so every other field must be equal "
        "(run one study per setting).",
    )
    return cfgs[0].replace(sigma_add=0.0, sigma_mult=0.0)


def _baseline(cfgs: Sequence[NoisyRNNConfig]) -> int | None:
    """Index of the deterministic twin (``sigma_add = sigma_mult = 0``), or None."""
    found = [i for i, c in enumerate(cfgs) if c.sigma_add == 0.0 and c.sigma_mult == 0.0]
    if len(found) > 1:
        raise ValueError(f"cfgs {found} are all deterministic (sigma 0); keep only one of them.")
    return found[0] if found else None


def _stats(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw[k] for k in ("confidence", "n_boot", "seed")}


def _paired(acc: np.ndarray, acc0: np.ndarray, kw: dict) -> Difference:
    mean, low, high = paired_difference(acc, acc0, **_stats(kw))
    p = sign_flip_p_value(acc, acc0, n_perm=kw["n_perm"], seed=kw["seed"])
    return Difference(float(mean), float(low), float(high), float(p))


def _matched(acc, clean, acc0, clean0, kw: dict) -> Matched:
    """Nearest-neighbour matching on clean accuracy within ``caliper`` (module docstring)."""
    gap = np.abs(clean[:, None] - clean0[None, :])
    nearest = np.argmin(gap, axis=1)  # first minimum: the lowest seed index on ties
    keep = gap[np.arange(len(clean)), nearest] <= kw["caliper"] + 1e-12
    if not keep.any():
        return Matched(0, None, None, None, None)
    d = acc[keep] - acc0[nearest[keep]]
    mean, low, high = bootstrap_mean(d, **_stats(kw))
    p = sign_flip_p_value(d, n_perm=kw["n_perm"], seed=kw["seed"])
    return Matched(int(keep.sum()), float(mean), float(low), float(high), float(p))


def _with_holm(rows: list[StudyRow], part: str, *, skip_clean: bool) -> list[StudyRow]:
    """Holm's adjustment of the p-values of ``part`` (``"paired"``, ``"matched"`` or
    ``"versus_deterministic"``), one family per inference; the clean rows left out with
    ``skip_clean``."""
    rows = list(rows)
    for draws in dict.fromkeys(r.draws for r in rows):
        family = [j for j, r in enumerate(rows) if r.draws == draws
                  and getattr(r, part) is not None and getattr(r, part).p_value is not None
                  and not (skip_clean and r.is_clean)]  # fmt: skip
        if family:
            adjusted = holm([getattr(rows[j], part).p_value for j in family])
            for j, p in zip(family, adjusted):
                value = getattr(rows[j], part)._replace(p_holm=float(p))
                rows[j] = dataclasses.replace(rows[j], **{part: value})
    return rows


def _row(cfg: NoisyRNNConfig, name: tuple, acc: np.ndarray, kw: dict) -> StudyRow:
    """The summary of one configuration under one entry of the accuracies."""
    kind, level = name[:2]
    mean, low, high = bootstrap_mean(acc, **_stats(kw))
    return StudyRow(
        sigma_add=float(cfg.sigma_add), sigma_mult=float(cfg.sigma_mult),
        perturbation=parse_perturbation(kind, float(level)), mean=float(mean),
        ci_low=float(low), ci_high=float(high), n=int(acc.size),
        draws=inference_draws(name[2]) if len(name) == 3 else 0,
    )  # fmt: skip


def study_rows(
    accuracies: Mapping[tuple, Float[np.ndarray, " members"]],
    cfgs: Sequence[NoisyRNNConfig],
    seeds: Sequence[int],
    *,
    caliper: float = 0.01,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOTSTRAP,
    n_perm: int = N_PERMUTATIONS,
    seed: int = 0,
) -> list[StudyRow]:
    """One row per configuration, perturbation and level, with intervals over the seeds.

    Each row is a :class:`StudyRow` (a typed record; ``row.to_dict()`` is its ``study.json``
    form, whose keys are named here, and the row also reads as that mapping). Every row has
    ``sigma`` (the common value when ``sigma_add == sigma_mult``, else None), ``sigma_add``,
    ``sigma_mult``, ``perturbation``, ``level``, ``inference``
    (``"deterministic"``, or ``"stochastic, N draws"`` for the entries ``(perturbation, level,
    "stochastic, N draws")`` of :func:`evaluate_members` with ``inference_draws = N``), and the
    mean accuracy over the ``n`` seeds with its percentile-bootstrap interval ``ci_low,
    ci_high`` (:func:`trainkit.bootstrap_mean`). The rows of a noisy configuration also have,
    against the deterministic twin (``sigma_add = sigma_mult = 0``, when ``cfgs`` has one, read
    deterministically):

    - ``diff_mean, diff_ci_low, diff_ci_high``: the difference paired by seed and its interval
      (:func:`trainkit.paired_difference`), ``p_value`` its two-sided sign-flip p-value
      (:func:`trainkit.sign_flip_p_value`) and ``p_holm`` that p-value adjusted by Holm's method
      over every paired comparison of the study (all noisy configurations, perturbations and
      levels, clean included);
    - ``matched_n, matched_diff_mean, matched_diff_ci_low, matched_diff_ci_high,
      matched_p_value, matched_p_holm``: the difference at matched clean accuracy (see the
      module docstring; ``None`` when no pair lies within ``caliper``). For the clean row it
      shows what is left of the clean gap after matching and is not a test (no ``p_holm``);
      the other matched rows form a second Holm family.

    Stochastic rows (only for noisy configurations; no matched comparison) have the paired
    difference against the twin with their own Holm family (the deterministic rows' p-values
    are adjusted as without them), and, against deterministic inference of the same members,
    ``inference_diff_mean, inference_diff_ci_low, inference_diff_ci_high``: stochastic minus
    deterministic accuracy paired by seed, ``inference_p_value`` and ``inference_p_holm`` (Holm
    over every stochastic row of the study, clean included).

    Arguments:
        accuracies: ``{(perturbation, level): (members,)}`` from :func:`evaluate_members`, with
            ``("clean", 0.0)``, and optionally ``{(perturbation, level, inference): (members,)}``
            (NaN for the members not read that way); member ``i * len(seeds) + j`` is
            ``cfgs[i]`` from ``seeds[j]``.
        cfgs: the configurations, in member order.
        seeds: the seeds, in member order.
        caliper: largest clean-accuracy gap of a matched pair (a fraction: 0.01 is one point).
        confidence, n_boot, n_perm, seed: of the intervals and p-values (fixed for
            reproducibility).

    Returns:
        The rows, configuration-major, then in the order of ``accuracies``.
    """
    n_cfg, n_seed = len(cfgs), len(seeds)
    if ("clean", 0.0) not in accuracies:
        raise ValueError("`accuracies` needs the clean accuracies under key ('clean', 0.0).")
    table = {}
    for k, v in accuracies.items():
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (n_cfg * n_seed,):
            raise ValueError(
                f"accuracies[{k}] has shape {v.shape}; expected one value per member, "
                f"len(cfgs) * len(seeds) = {n_cfg} * {n_seed}, cfg-major and seed-minor."
            )
        table[k] = v.reshape(n_cfg, n_seed)
    base = _baseline(cfgs)
    kw = dict(confidence=confidence, n_boot=n_boot, n_perm=n_perm, seed=seed, caliper=caliper)
    clean = table[("clean", 0.0)]
    for k in table:
        if len(k) == 3 and k[:2] not in table:
            raise ValueError(f"accuracies[{k}] has no deterministic counterpart {k[:2]}.")
    rows = []
    for i, cfg in enumerate(cfgs):
        for name, acc in table.items():
            stochastic = len(name) == 3
            if stochastic and np.isnan(acc[i]).all():
                continue  # a member not read this way (deterministic ones, stochastically)
            if np.isnan(acc[i]).any():
                raise ValueError(f"accuracies[{name}] of cfgs[{i}] has NaN for some seeds only.")
            row = _row(cfg, name, acc[i], kw)
            twin = table[name[:2]]
            if base is not None and i != base:
                row = dataclasses.replace(row, paired=_paired(acc[i], twin[base], kw))
                if not stochastic:
                    matched = _matched(acc[i], clean[i], acc[base], clean[base], kw)
                    row = dataclasses.replace(row, matched=matched)
            if stochastic:
                versus = _paired(acc[i], twin[i], kw)
                row = dataclasses.replace(row, versus_deterministic=versus)
            rows.append(row)
    rows = _with_holm(rows, "paired", skip_clean=False)
    rows = _with_holm(rows, "matched", skip_clean=True)
    return _with_holm(rows, "versus_deterministic", skip_clean=False)


def study_split(rows: Sequence[StudyRow | Mapping[str, Any]]) -> str:
    """The split a study's rows were scored on: their ``split`` field (``"validation"`` or
    ``"test"``), :data:`STORED_SPLIT` (``"test"``) for rows stored before the field existed.
    Rows of several splits are refused."""
    splits = {r.split or STORED_SPLIT for r in study_rows_of(rows)} or {STORED_SPLIT}
    if len(splits) > 1:
        raise ValueError(f"The rows mix the splits {sorted(splits)}; a study scores one split.")
    return splits.pop()


def confirm_rows(
    discovery: Sequence[StudyRow | Mapping[str, Any]],
    confirmation: Sequence[StudyRow | Mapping[str, Any]],
    *,
    select: Selection | str = BY_HOLM,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """Re-test on fresh seeds the comparisons a first study picked out (two-stage testing).

    A comparison is picked from ``discovery`` (rows of :func:`study_rows`) when its
    Holm-adjusted p-value is at most ``alpha`` (``select=ByHolm()``, the default), or, for an
    exploratory pick, when the 95 % interval of its paired difference excludes zero
    (``select=ByInterval()``); the names ``"holm"`` / ``"interval"`` still work and warn. The
    confirmation study (same configurations and perturbations,
    fresh seeds and fresh perturbation draws) then tests only those: their raw p-values are
    Holm-adjusted over the picked family alone, and a comparison is *confirmed* when that
    adjusted p-value is at most ``alpha`` and the difference has the sign it had in discovery.
    Because the confirmation data played no part in the pick, this controls the family-wise
    error of the confirmed claims, however many comparisons the discovery study made.

    Returns:
        One row per picked comparison: ``sigma_add, sigma_mult, perturbation, level``,
        ``discovery_diff_mean, discovery_p_holm``, the confirmation's ``diff_mean,
        diff_ci_low, diff_ci_high, p_value``, ``p_holm`` (over the picked family),
        ``confirmed`` and ``split`` (the split both studies were scored on, :func:`study_split`;
        studies scored on different splits are refused).
    """
    if not isinstance(select, Selection):
        select = selection_by_name(select)
        warnings.warn(
            f"confirm_rows(select={select.name!r}) is deprecated; pass "
            f"noisy_dyn.study.{type(select).__name__}().",
            DeprecationWarning,
            stacklevel=2,
        )
    discovery, confirmation = study_rows_of(discovery), study_rows_of(confirmation)
    first, second = study_split(discovery), study_split(confirmation)
    if first != second:
        raise ValueError(
            f"The discovery study was scored on the {first} split and the confirmation study on "
            f"the {second} split; rerun the confirmation study with --split {first} "
            f"(split={first!r}) so that both score the same split."
        )
    compared = [r for r in discovery if r.paired is not None]
    picked = [r for r in compared if select.picks(r.paired, alpha)]
    fresh = {r.comparison: r for r in confirmation if r.paired is not None}
    missing = [r.comparison for r in picked if r.comparison not in fresh]
    if missing:
        raise ValueError(
            f"The confirmation study lacks the comparisons {missing}; run it with the same "
            "configurations, perturbations and levels as the discovery study."
        )
    adjusted = holm([fresh[r.comparison].paired.p_value for r in picked]) if picked else []
    out = []
    for r, p in zip(picked, adjusted):
        c = fresh[r.comparison].paired
        same_sign = np.sign(c.mean) == np.sign(r.paired.mean) != 0
        out.append(dict(zip(("sigma_add", "sigma_mult", "perturbation", "level"), r.comparison))
                   | {"discovery_diff_mean": r.paired.mean, "discovery_p_holm": r.paired.p_holm}
                   | {"diff_mean": c.mean, "diff_ci_low": c.ci_low, "diff_ci_high": c.ci_high,
                      "p_value": c.p_value}
                   | {"p_holm": float(p), "confirmed": bool(p <= alpha and same_sign)}
                   | {"split": first}
                   | ({} if r.draws is None else {"inference": r.inference}))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# outputs: study.json, a Markdown table, a PNG


def _markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def _points(
    mean: float | None, low: float | None, high: float | None, signed: bool, n: int,
    bold: bool = True,
) -> str:  # fmt: skip
    """``+3.7 [+0.4, +6.7]`` in percentage points over ``n`` seeds (``trainkit.interval_text``:
    marked below 16 seeds, no interval below 3); bold when a difference excludes zero (and
    ``bold``; never without an interval)."""
    text = interval_text(mean, low, high, n, signed=signed)
    shown = mean is not None and n >= MIN_SEEDS_SHOWN
    return f"**{text}**" if signed and bold and shown and (low > 0 or high < 0) else text


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def study_markdown(rows: Sequence[StudyRow | Mapping[str, Any]], *, verdicts: bool = True) -> str:
    """The rows as one Markdown table, accuracies and differences in percentage points, under
    the study's one-line verdict per noise level (:func:`study_verdicts`; ``verdicts=False``
    leaves it out).

    Columns: the noise levels, the perturbation and level, then the study's answer first: the
    difference paired by seed against ``sigma = 0`` with its interval and Holm-adjusted p-value;
    then the mean accuracy with its interval over ``n`` seeds, and the difference at matched
    clean accuracy (with the number of matched pairs and its own Holm-adjusted p-value).
    Intervals over fewer than 16 seeds are not called 95 % intervals: the headings say
    "interval", each is marked and the legend says why (``trainkit.interval_text``); below 3
    seeds none is shown. A difference whose interval
    excludes zero is in bold (never one without an interval). When some rows were read with the
    training noise kept at inference, an ``inference`` column follows the level, and two more
    columns give the difference paired by seed of stochastic against deterministic inference
    with its interval and Holm-adjusted p-value.
    """
    rows = study_rows_of(rows)
    stochastic = any(r.draws for r in rows)
    fewest = min((r.n for r in rows), default=0)
    ci = interval_heading(fewest)
    header = ["sigma_add", "sigma_mult", "perturbation", "level", f"diff vs sigma=0 [{ci}]",
              "p (Holm)", f"accuracy % [{ci}]", "n", f"matched diff [{ci}]",
              "matched n", "matched p (Holm)"]  # fmt: skip
    if stochastic:
        header[4:4] = ["inference"]
        header += [f"stochastic - deterministic [{ci}]", "p (Holm)"]
    body = []
    none = Difference(None, None, None, None)
    for r in rows:
        n = r.n
        d, m = r.paired or none, r.matched or Matched(0, None, None, None, None)
        cells = [f"{r.sigma_add:g}", f"{r.sigma_mult:g}", r.perturbation.name, f"{r.level:g}",
                 _points(d.mean, d.ci_low, d.ci_high, True, n), _p(d.p_holm),
                 _points(r.mean, r.ci_low, r.ci_high, False, n), str(n),
                 _points(m.mean, m.ci_low, m.ci_high, True, min(n, m.n or 0)),
                 "-" if r.matched is None else str(m.n), _p(m.p_holm)]  # fmt: skip
        if stochastic:
            cells[4:4] = [r.inference]
            v = r.versus_deterministic or none
            cells += [_points(v.mean, v.ci_low, v.ci_high, True, n), _p(v.p_holm)]
        body.append(cells)
    legend = (
        "\n\nDifferences are paired by seed against the deterministic twin (sigma = 0); p is the "
        "two-sided sign-flip permutation p-value adjusted by Holm over every paired comparison "
        "of the table. Matched: each noisy member against the deterministic member nearest in "
        "clean accuracy (within the caliper); its p-values form a second Holm family (clean "
        "rows excluded). Bold: the interval excludes zero."
    )
    if stochastic:
        legend += (
            " Stochastic rows: the noisy members read with their training noise on, logits "
            "averaged over the draws (the twin still read deterministically); their differences "
            "against the twin form their own Holm family, and stochastic - deterministic is the "
            "difference paired by seed against the same members read deterministically (Holm "
            "over the stochastic rows)."
        )
    if note := interval_legend(fewest):
        legend += " " + note
    head = ""
    if rows and rows[0].split is not None:
        head = f"{scored_on(rows)}\n\n"
    if verdicts and (lines := study_verdicts(rows)):
        head += "\n".join(f"- {line}" for line in lines) + "\n\n"
    return head + _markdown_table(header, body) + legend + "\n"


def scored_on(rows: Sequence[StudyRow | Mapping[str, Any]]) -> str:
    """``Scored on the validation split (N examples).``: the first line of ``study.md`` (the
    split of :func:`study_split`; the count from the rows' ``examples`` when they have it)."""
    rows = study_rows_of(rows)
    n = rows[0].examples if rows else None
    count = "" if n is None else f" ({n} examples)"
    return f"Scored on the {study_split(rows)} split{count}."


def _level_name(sigma_add: float, sigma_mult: float) -> str:
    if sigma_add == sigma_mult:
        return f"sigma {sigma_add:g}"
    return f"sigma_add {sigma_add:g}, sigma_mult {sigma_mult:g}"


def study_verdicts(
    rows: Sequence[StudyRow | Mapping[str, Any]], *, alpha: float = 0.05
) -> list[str]:
    """The study's answer, one line per noise level (and inference) compared with the twin.

    For each noisy level: under how many of the perturbations its members are more robust than
    their deterministic twins (difference paired by seed, Holm-adjusted p <= ``alpha`` over the
    study) and under how many less robust, then its clean-accuracy difference with its interval
    (marked below 16 seeds, ``trainkit.interval_text``), e.g. ``sigma 0.1: more robust under 9
    of 12 perturbations after Holm, clean accuracy -0.4 [-1.1, +0.3] points (16 seeds)``.
    Empty for a study without a twin.
    """
    groups: dict[tuple, list[StudyRow]] = {}
    for r in study_rows_of(rows):
        if r.paired is not None and r.paired.mean is not None:
            groups.setdefault((*r.config, r.inference), []).append(r)
    lines = []
    for (sa, sm, inference), group in groups.items():
        perturbed = [r for r in group if not r.is_clean]
        held = [r for r in perturbed if r.paired.holm_rejects(alpha)]
        up = sum(r.paired.mean > 0 for r in held)
        down = len(held) - up
        name = _level_name(sa, sm)
        if inference != DETERMINISTIC:
            name += f" ({inference})"
        parts = []
        if perturbed and held:
            ways = [f"{word} robust under {k} of {len(perturbed)}"
                    for word, k in (("more", up), ("less", down)) if k]  # fmt: skip
            parts.append(" and ".join(ways) + " perturbations after Holm")
        elif perturbed:
            parts.append(f"no difference under any of the {len(perturbed)} perturbations "
                         "after Holm")  # fmt: skip
        clean = [r for r in group if r.is_clean]
        if clean:
            c = clean[0].paired
            iv = interval_text(c.mean, c.ci_low, c.ci_high, clean[0].n,
                               signed=True).split(" (")[0]  # fmt: skip
            real = " (Holm: a real change)" if c.holm_rejects(alpha) else ""
            parts.append(f"clean accuracy {iv} points{real}")
        n = group[0].n
        seeds = f"{n} seeds" if n >= MIN_SEEDS_SHOWN else f"{n} seeds: too few for an interval"
        text = ", ".join(parts)
        lines.append(f"{name}: {text} ({seeds}).")
    return lines


def _label(row: StudyRow) -> str:
    tail = f" ({row.inference})" if row.draws else ""
    if row.sigma is not None:
        return f"sigma={row.sigma:g}{tail}"
    return f"sigma_add={row.sigma_add:g}, sigma_mult={row.sigma_mult:g}{tail}"


def plot_study(rows: Sequence[StudyRow | Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Robustness against clean accuracy: one panel per perturbation and level.

    Each configuration is one point, its mean clean accuracy (x) against its mean accuracy
    under the perturbation (y), with the 95 % intervals as error bars; the points are joined in
    the order of the configurations, so the panel shows the noise trade-off. Up and right is
    better.
    """
    from matplotlib.figure import Figure  # no pyplot: notebooks keep their backend
    from matplotlib.ticker import MaxNLocator

    rows = study_rows_of(rows)
    clean = {_label(r): r for r in rows if r.is_clean}
    panels = list(dict.fromkeys((r.perturbation.name, r.level) for r in rows if not r.is_clean))
    panels = panels or [(Clean.name, 0.0)]
    cols = min(4, len(panels))
    fig = Figure(figsize=(3.6 * cols, 3.2 * math.ceil(len(panels) / cols)))
    axes = fig.subplots(math.ceil(len(panels) / cols), cols, squeeze=False).ravel()
    for ax, (kind, level) in zip(axes, panels):
        here = [r for r in rows if (r.perturbation.name, r.level) == (kind, level)]
        xs = [clean[_label(r)] for r in here]
        ax.plot([c.mean for c in xs], [r.mean for r in here], "-", color="0.7", lw=1)
        for index, (c, r) in enumerate(zip(xs, here)):
            ax.errorbar(c.mean, r.mean, fmt="o", ms=4, color=f"C{index % 10}",
                        xerr=[[c.mean - c.ci_low], [c.ci_high - c.mean]],
                        yerr=[[r.mean - r.ci_low], [r.ci_high - r.mean]],
                        label=_label(r))  # fmt: skip
        ax.set_title(f"{kind} {level:g}", fontsize=9)
        ax.set_xlabel("clean accuracy", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(4))  # narrow ranges: long tick labels
        ax.set_ylabel("accuracy", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


ACCURACIES_FILE = "study_accuracies.csv"
"""The per-member accuracies a study stores beside ``study.json``."""

_CSV_FIELDS = ("sigma_add", "sigma_mult", "seed", "inference", "perturbation", "level",
               "correct", "n_test", "accuracy")  # fmt: skip


def accuracies_csv(
    accuracies: Mapping[tuple, Float[np.ndarray, " members"]],
    cfgs: Sequence[NoisyRNNConfig],
    seeds: Sequence[int],
    n_test: int,
) -> str:
    """Every member's accuracy under every perturbation, one CSV line each.

    Columns ``sigma_add, sigma_mult, seed, inference, perturbation, level, correct, n_test,
    accuracy``: member ``i * len(seeds) + j`` is ``cfgs[i]`` from ``seeds[j]``; ``correct`` of
    the ``n_test`` test sequences were classified right, ``accuracy = correct / n_test`` (written
    to 17 significant digits, so it reads back to the same float). Members not read one way
    (deterministic members under stochastic inference) have no line. With these, every interval
    and p-value of ``study.json`` is recomputed by :func:`study_rows` (or by
    ``trainkit.bootstrap_mean``, ``paired_difference`` and ``sign_flip_p_value`` with their
    default settings on the per-seed values): see :func:`read_accuracies`.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for name, acc in accuracies.items():
        kind, level = name[:2]
        inference = name[2] if len(name) == 3 else DETERMINISTIC
        for m, value in enumerate(np.asarray(acc, np.float64)):
            if np.isnan(value):
                continue
            cfg, seed = cfgs[m // len(seeds)], seeds[m % len(seeds)]
            writer.writerow([f"{cfg.sigma_add:.17g}", f"{cfg.sigma_mult:.17g}", seed, inference,
                             kind, f"{float(level):.17g}", int(round(value * n_test)), n_test,
                             f"{value:.17g}"])  # fmt: skip
    return text.getvalue()


def read_accuracies(path: str | os.PathLike) -> dict[tuple, dict[int, float]]:
    """The per-member accuracies of a study (``study_accuracies.csv``, or its folder) as
    ``{(sigma_add, sigma_mult, inference, perturbation, level): {seed: accuracy}}``.

    The rows of ``study.json`` follow from them: a row's ``mean, ci_low, ci_high`` is
    ``trainkit.bootstrap_mean`` of its seeds' accuracies (in seed order), its ``diff_*`` are
    ``trainkit.paired_difference`` against the deterministic twin's (``sigma_add = sigma_mult
    = 0``, read deterministically) and its ``p_value`` is ``trainkit.sign_flip_p_value`` of the
    two, all at their default settings; ``p_holm`` is ``trainkit.holm`` over the study's family.
    """
    path = Path(path)
    if path.is_dir():
        path = path / ACCURACIES_FILE
    out: dict[tuple, dict[int, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (float(row["sigma_add"]), float(row["sigma_mult"]), row["inference"],
                   row["perturbation"], float(row["level"]))  # fmt: skip
            out.setdefault(key, {})[int(row["seed"])] = float(row["accuracy"])
    return out


def write_study(
    rows: Sequence[StudyRow | Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    accuracies: str | None = None,
) -> dict[str, Path]:
    """Write ``study.json`` (the rows, a JSON list), ``study.md`` and ``study.png`` in
    ``out_dir``, and with ``accuracies`` (the text of :func:`accuracies_csv`) the per-member
    accuracies ``study_accuracies.csv`` behind every interval and p-value.

    Each file is written to a temporary name and renamed, so an interrupted study never leaves
    a truncated file behind.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "study.json", "markdown": out / "study.md", "png": out / "study.png"}
    rows = study_rows_of(rows)
    texts = {"json": json.dumps([r.to_dict() for r in rows], indent=1),
             "markdown": study_markdown(rows)}  # fmt: skip
    if accuracies is not None:
        paths["accuracies"] = out / ACCURACIES_FILE
        texts["accuracies"] = accuracies
    for name, text in texts.items():
        tmp = paths[name].with_suffix(".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, paths[name])
    tmp = plot_study(rows, out / "study.tmp.png")
    os.replace(tmp, paths["png"])
    return paths


def robustness_study(
    params: dict[str, Float[ArrayLike | np.ndarray, "members ..."]],
    cfgs: Sequence[NoisyRNNConfig],
    seeds: Sequence[int],
    test: Sequences | tuple,
    *,
    key: PRNGKeyArray,
    perturbations: Sequence[Perturbation] | Mapping[str, Sequence[float]] | None = None,
    out_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    pgd_steps: int = 10,
    caliper: float = 0.01,
    seed: int = 0,
    inference_draws: int = 0,
    progress: bool = False,
    split: str = "test",
) -> list[StudyRow]:
    """Evaluate an ensemble and summarise it: :func:`evaluate_members`, then :func:`study_rows`,
    then (with ``out_dir``) :func:`write_study`, the per-member accuracies included
    (:func:`accuracies_csv`). Every row also records ``split`` (the name of the split ``test``
    holds) and ``examples`` (its size), named in the first line of ``study.md``.

    Arguments:
        params: ``len(cfgs) * len(seeds)`` members stacked cfg-major, seed-minor (the output of
            ``fit_ensemble(cfgs, train, seeds=seeds, ...)``).
        cfgs: the configurations; they may differ only in ``sigma_add`` and ``sigma_mult``.
        seeds: the training seeds.
        test: the examples scored: a :class:`trainkit.Sequences`, or a tuple ``(xs, ys)`` /
            ``(xs, ys, lengths)``.
        key: PRNG key of the perturbations (the same draws for every member).
        perturbations: the perturbation objects; default :data:`STUDY_PERTURBATIONS`.
        out_dir: where to write ``study.json``, ``study.md`` and ``study.png``.
        batch_size, pgd_steps: see :func:`evaluate_members`.
        caliper, seed: see :func:`study_rows`.
        inference_draws: with ``N > 0`` the noisy members are also read with their training
            noise on, logits averaged over ``N`` draws (:func:`evaluate_members`).
        progress: show the evaluation's stages (:func:`evaluate_members`) and the writing.
        split: which split ``test`` is, ``"validation"`` or ``"test"``: a study that chooses
            (a noise level, epochs) scores the validation split, as
            :func:`noisy_dyn.experiments.study` does by default, and the test split only for
            the final report.

    Returns:
        The rows of :func:`study_rows`, each with ``split`` and ``examples``.
    """
    scoring_split(split, "`split`")
    cfg = inference_config(cfgs)
    members = _member_count(params, cfg)
    if members != len(cfgs) * len(seeds):
        raise ValueError(
            f"`params` holds {members} members but len(cfgs) * len(seeds) = "
            f"{len(cfgs)} * {len(seeds)}; pass the cfgs and seeds the ensemble was trained with."
        )
    test = as_sequences(test, "test")
    accuracies = evaluate_members(params, list(cfgs), test, key=key,
                                  perturbations=perturbations, batch_size=batch_size,
                                  pgd_steps=pgd_steps, inference_draws=inference_draws,
                                  progress=progress)  # fmt: skip
    n = int(np.shape(test.labels)[0])
    rows = [dataclasses.replace(r, split=split, examples=n)
            for r in study_rows(accuracies, cfgs, seeds, caliper=caliper, seed=seed)]  # fmt: skip
    if out_dir is not None:
        if progress:
            print(f"writing {Path(out_dir)}/ (study.json, study.md, study.png, {ACCURACIES_FILE})",
                  file=sys.stderr, flush=True)  # fmt: skip
        text = accuracies_csv(accuracies, cfgs, list(seeds), n)
        write_study(rows, out_dir, accuracies=text)
    return rows
