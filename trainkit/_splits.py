"""Train / validation / test splits and size limits, shared by both packages' data modules.

Every split is a pure function of an integer ``seed``: the examples are ordered by
``numpy.random.default_rng(seed).permutation(N)`` and cut in that order, so the same call always
gives the same split (and a resumed run sees the same data). See ``docs/data_formats.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Shaped

from ._formats import read_idx_folder
from ._sequences import Sequences
from ._validate import ArgumentTypeError, check_int

Train = tuple[Shaped[ArrayLike, "n_train ..."], ...]
"""The training rows of each array (the same rows of all)."""
Validation = tuple[Shaped[ArrayLike, "n_val ..."], ...]
"""The validation rows of each array."""
Test = tuple[Shaped[ArrayLike, "n_test ..."], ...]
"""The test rows of each array."""


class Splits(NamedTuple):
    """Train / validation / test splits of one data set: what both packages' loaders return.

    Each split is what its package trains on: a :class:`trainkit.Sequences` in ``noisy_dyn``
    (inputs ``(N, time, features)``, labels, optional lengths), a tuple ``(xs, ys)`` of NHWC
    images and labels in ``basis_ode``. ``noisy_dyn.data.Splits`` and ``basis_ode.data.Splits``
    are this class. Model selection reads ``validation``; ``test`` is for the final report only.
    """

    train: Any
    validation: Any
    test: Any


def check_seed(seed: Any) -> int:
    """``int(seed)``; an error (a TypeError and a ValueError) unless a non-negative int."""
    try:
        return check_int("seed", seed, minimum=0)
    except ValueError as e:
        raise ArgumentTypeError(str(e)) from None


def check_fraction(name: str, value: Any) -> float:
    """``float(value)``; ValueError unless ``0 <= value < 1``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}.")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}; pass e.g. {name}=0.1.")
    return float(value)


def _check_same_length(arrays: tuple[np.ndarray, ...]) -> int:
    sizes = [len(a) for a in arrays]
    if not sizes or any(s != sizes[0] for s in sizes):
        raise ValueError(f"arrays must share the leading size, got {sizes}.")
    return sizes[0]


def split_three(
    arrays: tuple[Shaped[ArrayLike, "n ..."], ...],
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> tuple[Train, Validation, Test]:
    """Shuffle; cut off ``round(test_fraction N)`` test, ``round(val_fraction N)`` validation.

    With ``order = default_rng(seed).permutation(N)``: test is ``order[:n_test]``, validation
    ``order[n_test : n_test + n_val]``, train the rest (in that order).

    Arguments:
        arrays: arrays with a common leading size ``N`` (e.g. ``(xs, ys)``).
        seed: seed of the shuffle.
        val_fraction: fraction for validation, in ``[0, 1)``.
        test_fraction: fraction for test, in ``[0, 1)``; the two must sum to less than 1.

    Returns:
        ``(train, validation, test)``, each a tuple like ``arrays``.
    """
    seed = check_seed(seed)
    val_fraction = check_fraction("val_fraction", val_fraction)
    test_fraction = check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}."
        )
    n = _check_same_length(arrays)
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    parts = order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
    train, val, test = (tuple(a[i] for a in arrays) for i in parts)
    return train, val, test


def split_off_validation(
    arrays: tuple[Shaped[ArrayLike, "n ..."], ...], *, seed: int, val_size: int
) -> tuple[Train, Validation]:
    """Move ``val_size`` examples, chosen by ``default_rng(seed)``, from train to validation.

    With ``order = default_rng(seed).permutation(N)``, validation holds ``sort(order[:val_size])``
    and train ``sort(order[val_size:])``: both keep the stored order.

    Arguments:
        arrays: training arrays with a common leading size ``N``.
        seed: seed of the choice.
        val_size: number of examples moved, ``0 <= val_size < N``.

    Returns:
        ``(train, validation)``, each a tuple like ``arrays``.
    """
    seed = check_seed(seed)
    val_size = check_int("val_size", val_size)
    n = _check_same_length(arrays)
    if val_size >= n:
        raise ValueError(f"val_size must be in [0, {n}) for {n} training examples, got {val_size}.")
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    return tuple(a[train_idx] for a in arrays), tuple(a[val_idx] for a in arrays)


def idx_splits(
    root: Any, inputs: Callable[[np.ndarray], np.ndarray], *, seed: int, val_size: int
) -> tuple[Train, Validation, Test]:
    """The three splits of an MNIST-layout IDX folder (MNIST, Fashion-MNIST): ``(inputs(images),
    labels)`` of the training file less ``val_size`` examples moved to validation by
    :func:`split_off_validation` ``(seed)``, the validation pair, and the ``t10k`` pair as test.
    ``inputs`` maps the stored uint8 images ``(N, 28, 28)`` to what the model reads."""
    train, test = ((inputs(images), labels) for images, labels in read_idx_folder(root))
    train, val = split_off_validation(train, seed=seed, val_size=val_size)
    return train, val, test


def split_off_fraction(
    arrays: tuple[np.ndarray, ...], *, seed: int, val_fraction: float
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """:func:`split_off_validation` with ``val_size = round(val_fraction N)``."""
    val_fraction = check_fraction("val_fraction", val_fraction)
    n = _check_same_length(arrays)
    return split_off_validation(arrays, seed=seed, val_size=int(round(val_fraction * n)))


def limit(split: Any, limit: int | None) -> Any:
    """The first ``limit`` examples of every array of ``split`` (all of them for None); a
    :class:`trainkit.Sequences` stays one."""
    if limit is None:
        return split
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
    if isinstance(split, Sequences):
        return split.take(slice(None, limit))
    return tuple(a[:limit] for a in split)


def limit_splits(splits: Any, limits: tuple[int | None, ...] | int | None) -> Any:
    """Apply :func:`limit` to each split of a ``(train, validation, test, ...)`` NamedTuple.

    ``limits`` is one limit for every split or one per split (train, validation, test); fields
    after the three splits (e.g. vocabularies) are kept as they are.
    """
    if not isinstance(limits, tuple):
        limits = (limits,) * 3
    parts = [limit(s, c) for s, c in zip(splits[:3], limits, strict=True)]
    return type(splits)(*parts, *splits[3:])
