"""Checks of a run's data against its model, shared by both packages' pipelines.

- :func:`label_space`: the classes are decided on the training split; validation and test
  labels outside them are refused, naming them.
- :func:`chance_level` and :func:`at_chance`: is a validation accuracy within noise of always
  predicting the majority class?
- :func:`small_validation`: is a validation split too small to rank epochs?
- :func:`loss_alarm`: is a training loss far above the loss of a chance-level guess?
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from jaxtyping import ArrayLike, Int

from ._errors import CLIError

Labels = Int[ArrayLike, "..."] | Sequence[int]
"""Class labels (any shape: one per example, or per token)."""

__all__ = [
    "LOSS_ALARM",
    "MIN_VALIDATION",
    "at_chance",
    "chance_level",
    "label_space",
    "loss_alarm",
    "SCORING_SPLITS",
    "scoring_split",
    "small_scoring_split",
    "small_validation",
]

MIN_VALIDATION = 30
"""Below this many validation examples one example moves accuracy by more than 3 points, so
epochs tie and the best one is picked by chance: :func:`small_validation` warns."""


def label_space(train_labels: Labels, others: Mapping[str, Any]) -> int:
    """The number of classes, decided on the training split: ``1 + max(train labels)``.

    A label of the other splits (``{"validation": ys, "test": ys}``) at or above that number
    (or negative) is refused, naming the classes: a model sized on the training split cannot
    predict them, and counting them would silently change the number of classes. A class
    inside the range that the training split lacks is announced on stderr.

    Returns:
        ``num_classes``.

    Raises:
        CLIError: the training split is empty, or another split holds labels outside it.
    """
    train = np.asarray(train_labels)
    if train.size == 0:
        raise CLIError("the training split is empty: give a data file with training examples.")
    classes = np.unique(train)
    num_classes = int(classes.max()) + 1
    for name, ys in others.items():
        ys = np.asarray(ys)
        if ys.size == 0:
            continue
        seen = np.unique(ys)
        outside = seen[(seen < 0) | (seen >= num_classes)]
        if outside.size:
            raise CLIError(
                f"the {name} split has classes {_classes_text(outside)} "
                f"({int(np.isin(ys, outside).sum())} examples) that the training split lacks (its "
                f"classes: {_classes_text(classes)}, so the model has {num_classes}): use the "
                "same label coding in every split (0..C-1), or drop those examples."
            )
        unseen = np.setdiff1d(seen, classes)
        if unseen.size:
            print(f"warning: the {name} split has classes {_classes_text(unseen)} that the "
                  "training split lacks; the model cannot learn them.",
                  file=sys.stderr, flush=True)  # fmt: skip
    return num_classes


def _classes_text(classes: np.ndarray) -> str:
    c = [int(v) for v in classes]
    if len(c) > 3 and c == list(range(c[0], c[-1] + 1)):
        return f"{c[0]}..{c[-1]}"
    return "[" + ", ".join(map(str, c[:12])) + (" ...]" if len(c) > 12 else "]")


def chance_level(labels: Labels) -> float:
    """The accuracy of always predicting the most frequent class of ``labels``."""
    ys = np.asarray(labels)
    if ys.size == 0:
        return float("nan")
    return float(np.bincount(ys.astype(np.int64) - ys.min()).max() / ys.size)


def at_chance(accuracy: float | None, labels: Labels) -> bool:
    """Whether ``accuracy`` on ``labels`` is within noise of :func:`chance_level`.

    With ``p0`` the majority fraction and ``n`` the number of labels, the accuracy is at chance
    when it is at most ``p0 + 2 sqrt(p0 (1 - p0) / n)`` (two binomial standard errors above
    always predicting the majority class).
    """
    ys = np.asarray(labels)
    if accuracy is None or ys.size == 0:
        return False
    p0 = chance_level(ys)
    return float(accuracy) <= p0 + 2.0 * math.sqrt(p0 * (1.0 - p0) / ys.size) + 1e-12


def small_validation(n_validation: int, fraction: float | None, n_train: int) -> str | None:
    """A warning when the validation split holds fewer than :data:`MIN_VALIDATION` examples
    (None otherwise). ``fraction`` is the validation fraction used (None: the loader's fixed
    split) and ``n_train`` the number of training examples left."""
    if n_validation >= MIN_VALIDATION:
        return None
    step = 100.0 / n_validation if n_validation else float("inf")
    how = (
        f"raise --validation-fraction (now {fraction:g})"
        if fraction is not None
        else "give a larger validation split"
    )
    return (
        f"warning: the validation split holds {n_validation} examples (one example = "
        f"{step:.0f} points of accuracy), too few to rank epochs; {how} or give more data "
        f"({n_train} training examples)."
    )


SCORING_SPLITS = ("validation", "test")
"""The splits a table used for choosing (K, steps, epochs, noise levels) may be scored on:
``"validation"`` (the default everywhere: choose there) or ``"test"`` (the final report)."""


def scoring_split(split: str, flag: str = "--split") -> str:
    """``split`` when it is one of :data:`SCORING_SPLITS`; a one-line error naming ``flag``
    otherwise."""
    if split not in SCORING_SPLITS:
        raise CLIError(f"{flag} must be validation or test, got {split!r}.")
    return split


def small_scoring_split(n: int, split: str, what: str, fix: str) -> str | None:
    """A one-line warning when a study scores on a validation split of fewer than
    :data:`MIN_VALIDATION` ``what`` (None otherwise, and always None on the test split, which
    the data fix): one of them moves an accuracy by ``100 / n`` points, too coarse to choose
    by. ``fix`` names the way to a larger split (a flag)."""
    if split != "validation" or n >= MIN_VALIDATION:
        return None
    step = 100.0 / n if n else float("inf")
    return (
        f"warning: the study is scored on a validation split of {n} {what} (one = {step:.0f} "
        f"points of accuracy), too few to choose by; {fix}, or pass --split test for the final "
        "report."
    )


LOSS_ALARM = 100.0
"""A training loss above this many times the chance level's (``log C`` for ``C`` classes: the
cross-entropy of a uniform guess) is announced (:func:`loss_alarm`). Learning never needs it:
even a model that predicts the wrong class with certainty 0.9999 costs only ``log 10^4 = 9.2``;
losses of millions come from a recursion that blows up (a step too large for the cell) or from
inputs of large scale."""


def loss_alarm(losses: list, chance_loss: float, factor: float = LOSS_ALARM) -> str | None:
    """A one-line warning when the last epoch's training loss (a list over members with
    several) is the first to exceed ``factor * chance_loss``; None otherwise, and for every
    later epoch (a run is warned once)."""
    last = np.atleast_1d(np.asarray(losses[-1], dtype=float))
    before = [np.max(np.atleast_1d(np.asarray(v, dtype=float))) for v in losses[:-1]]
    limit = factor * chance_loss
    high = last > limit
    if not high.any() or any(b > limit for b in before):
        return None
    worst = float(np.max(last))
    who = "" if last.size == 1 else f" of {int(high.sum())} of {last.size} members"
    ratio = worst / chance_loss
    return (
        f"the training loss{who} after epoch {len(losses)} is {worst:.6g}, {ratio:.3g} times "
        f"the {chance_loss:.3g} of a chance-level guess; training is not learning."
    )
