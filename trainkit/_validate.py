"""Argument and data checks shared by trainkit, ``noisy_dyn`` and ``basis_ode``.

Every check runs on the host before anything is traced and raises one line that names the
argument, what it got and what to pass instead:

- :func:`check_int` / :func:`check_positive_int`: a Python or NumPy integer (never a bool, never
  a float that happens to be whole) in a range;
- :func:`check_real`: a finite real number in a range;
- :func:`check_finite`: a floating array with no NaN or infinity, and, for a cast to a narrower
  dtype (float64 data trained in float32), no value that the cast overflows to infinity;
- :func:`check_labels`: training labels checked on the raw integers before any cast (an int64
  ``2**32 + 1`` or a uint64 ``2**63`` is refused, never wrapped to a small label), the label
  space with at least two classes, and a warning when the labels leave gaps.

A value of the wrong type raises :class:`ArgumentTypeError`, which is both a ``TypeError`` and a
``ValueError``, so callers that catch either keep working.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from jaxtyping import Int32

__all__ = [
    "ArgumentTypeError",
    "LabelGapWarning",
    "check_finite",
    "check_int",
    "check_label_space",
    "check_labels",
    "check_positive_int",
    "check_real",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError`` and a ``ValueError``)."""


class LabelGapWarning(UserWarning):
    """The training labels do not use every class of the output layer built for them."""


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = 0,
    maximum: int | None = None,
    optional: bool = False,
) -> int | None:
    """``int(value)`` after checking it is an integer in ``[minimum, maximum]``.

    Arguments:
        name: the argument's name, as the message shows it.
        value: a Python int or NumPy integer (a bool or a float is refused).
        minimum, maximum: inclusive bounds (None: unbounded); by default ``>= 0``.
        optional: None is allowed (and returned).

    Raises:
        ArgumentTypeError: not an integer; ValueError: outside the range.
    """
    if value is None and optional:
        return None
    expected = f"an int{_range_text(minimum, maximum)}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ArgumentTypeError(f"`{name}` must be {expected}, got {value!r}.")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")
    return int(value)


def check_positive_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    """``int(value)`` after checking it is an int >= 1 (or None when ``optional``)."""
    return check_int(name, value, minimum=1, optional=optional)


def check_real(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
) -> float | None:
    """``float(value)`` after checking it is a finite real number in the given interval."""
    if value is None and optional:
        return None
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    interval = f" in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
    expected = "a finite number" + ("" if lo is None and hi is None else interval)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ArgumentTypeError(f"`{name}` must be {expected}, got {value!r}.")
    v = float(value)
    if (
        not np.isfinite(v)
        or (lo is not None and (v <= lo if lo_open else v < lo))
        or (hi is not None and (v >= hi if hi_open else v > hi))
    ):
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")
    return v


def check_finite(name: str, array: Any, *, cast_to: Any = None, fix: str = "") -> None:
    """Refuse NaN or infinite values in ``array``, and values a cast to ``cast_to`` overflows.

    The overflow is reported as such: float64 ``1e39`` is finite, but float32 cannot hold it
    (its largest finite value is about ``3.4e38``), so training it in float32 would see ``inf``.

    Arguments:
        name: what the array is (e.g. ``"data.npz: x_train"``).
        array: a floating (or integer) array.
        cast_to: the floating dtype the array is about to be cast to, or None.
        fix: what to do instead, appended to the message.
    """
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.floating):
        return
    tail = f" {fix}" if fix else ""
    bad = ~np.isfinite(a)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} holds {int(bad.sum())} NaN or infinite value(s) (first at index "
            f"{tuple(int(i) for i in where)}: {a[tuple(where)].item()!r}); clean or drop "
            f"them.{tail}"
        )
    if cast_to is None:
        return
    target = np.dtype(cast_to)
    if not np.issubdtype(target, np.floating) or np.finfo(target).max >= np.finfo(a.dtype).max:
        return
    limit = float(np.finfo(target).max)
    over = np.abs(a) > limit
    if over.any():
        where = np.argwhere(over)[0]
        raise ValueError(
            f"{name} holds {int(over.sum())} value(s) beyond the {target.name} range (first at "
            f"index {tuple(int(i) for i in where)}: {float(a[tuple(where)]):.6g}; the largest "
            f"{target.name} is {limit:.4g}), which the cast from {a.dtype.name} to "
            f"{target.name} overflows to infinity; rescale the data.{tail}"
        )


def check_labels(
    name: str,
    labels: Any,
    *,
    num_classes: int | None = None,
    training: bool = True,
) -> tuple[Int32[np.ndarray, ...], int]:
    """Check class labels on their raw values and return them as int32 with the class count.

    The checks run on the array as given, before any cast: a floating array must hold whole
    numbers, an integer array may be of any width or signedness, and every label must lie in
    ``[0, num_classes)`` (or, without ``num_classes``, below ``2**31 - 1``); nothing is wrapped
    modulo ``2**32``. For training labels (``training``) the label space is checked too: one
    class alone is refused (a model that always answers it scores 100 %), and when the labels
    leave gaps (e.g. ``{0, 100000}``: a 100,001-way output layer for two classes) a
    :class:`LabelGapWarning` names the classes found and the output size built.

    Arguments:
        name: what the labels are (e.g. ``"train labels"`` or ``"data.npz: y_train"``).
        labels: a 1-D array of class indices.
        num_classes: the size of the output layer, if fixed already; None: ``max + 1``.
        training: check the label space (two classes at least, gaps) as well.

    Returns:
        ``(labels as int32, number of classes)``.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a vector of class indices (N,), got shape {y.shape}.")
    if y.size == 0:
        raise ValueError(f"{name} is empty; pass at least one labelled example.")
    if np.issubdtype(y.dtype, np.bool_) or not np.issubdtype(y.dtype, np.number):
        raise ArgumentTypeError(
            f"{name} must be integers (class indices 0, 1, ...), got dtype {y.dtype}; map the "
            "class names to indices first."
        )
    if np.issubdtype(y.dtype, np.complexfloating):
        raise ArgumentTypeError(f"{name} must be integers, got dtype {y.dtype}.")
    if np.issubdtype(y.dtype, np.floating):
        finite = np.isfinite(y)
        if not finite.all():
            i = int(np.argmin(finite))
            raise ValueError(
                f"{name} holds a non-finite label ({y[i].item()!r} at index {i}); every label "
                "must be a class index 0, 1, ..."
            )
        whole = y == np.floor(y)
        if not whole.all():
            i = int(np.argmin(whole))
            raise ValueError(
                f"{name} holds a non-integer label ({y[i].item()!r} at index {i}); labels must be "
                "whole class indices (regression targets are not supported)."
            )
    lo, hi = y.min(), y.max()  # in the array's own dtype: no wrap
    if lo < 0:
        i = int(np.argmin(y))
        raise ValueError(
            f"{name} holds a negative label ({lo.item()!r} at index {i}); labels must be class "
            "indices 0, 1, ..., num_classes - 1 (shift them, e.g. y - y.min())."
        )
    limit = int(np.iinfo(np.int32).max) if num_classes is None else int(num_classes)
    if int(hi) >= limit:
        i = int(np.argmax(y))
        bound = "2**31 - 1" if num_classes is None else f"num_classes = {num_classes}"
        raise ValueError(
            f"{name} holds the label {int(hi)} (index {i}), not below {bound}; labels must be "
            "class indices 0, 1, ..., num_classes - 1 (renumber them, e.g. with "
            "np.unique(y, return_inverse=True))."
        )
    out = y.astype(np.int32)
    n_classes = int(hi) + 1 if num_classes is None else int(num_classes)
    if training:
        check_label_space(name, out, n_classes)
    return out, n_classes


def check_label_space(name: str, labels: Any, num_classes: int) -> None:
    """Refuse training labels of one class; warn when they leave classes of the output unused.

    Arguments:
        name: what the labels are (e.g. ``"`train` labels"``).
        labels: class indices already checked to lie in ``[0, num_classes)``.
        num_classes: the size of the output layer built for them.

    Raises:
        ValueError: every label is the same class (a classifier that always answers it scores
            100 % on such data and has learned nothing).

    Warns:
        LabelGapWarning: fewer distinct labels than ``num_classes`` (e.g. labels ``{0, 100000}``
            build a 100,001-way output layer for two classes); names the classes found.
    """
    found = np.unique(np.asarray(labels))
    if found.size == 1:
        raise ValueError(
            f"{name}: every one of the {np.size(labels)} examples has the class {int(found[0])}; "
            "a classifier needs examples of at least two classes to learn from."
        )
    if found.size < num_classes:
        shown = ", ".join(map(str, found[:10])) + (", ..." if found.size > 10 else "")
        warnings.warn(
            f"{name}: {found.size} of the {num_classes} classes of the output layer occur "
            f"(found {{{shown}}}); the others cannot be learned. Renumber the labels 0..K-1 "
            "(np.unique(y, return_inverse=True)) unless the missing classes are meant to be "
            "there.",
            LabelGapWarning,
            stacklevel=4,  # the caller of fit (check -> fit -> its options wrapper -> caller)
        )
