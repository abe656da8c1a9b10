"""Sequence data that carry their meaning: inputs, labels and (optionally) lengths, together.

A :class:`Sequences` holds ``inputs`` ``(N, T, F)``, ``labels`` ``(N,)`` and, for series of
different lengths padded on the right, ``lengths`` ``(N,)`` (the real steps of each row, in
``1..T``). Kept in one object, the lengths travel with the inputs through every loader, trainer,
evaluation, attack and theory function, so none of them can read a padded row at step ``T`` by
mistake. It is a JAX pytree (``lengths=None`` has no leaf), so it passes through ``jax.jit`` and
``jax.tree.map``.

Code written for the earlier bare tuples keeps working: a ``Sequences`` unpacks, indexes,
slices and measures like the tuple ``(inputs, labels)`` (``(inputs, labels, lengths)`` when it
has lengths), and every function that takes one also takes such a tuple
(:func:`as_sequences`).

Padding without lengths. :func:`padding_problem` recognises right-padding: some rows end in a
run of all-zero steps while no step anywhere else is all zero. Real-valued series (audio
features, sensor readings, standardised values) practically never hold an exact all-zero step,
so such a pattern is padding whose lengths were dropped, and reading those rows at step ``T``
gives silently wrong answers (the state read is the one after the padding). The check cannot
tell padding from content when all-zero steps also occur inside the rows, as on pixel
sequences (the background is zero): it then says nothing, and the reader must pass the
lengths.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jaxtyping import ArrayLike, Bool, Float, Int

from ._validate import ArgumentTypeError

__all__ = ["Sequences", "as_sequences", "padding_problem", "takes_sequences"]


@functools.partial(jax.tree_util.register_dataclass, data_fields=["inputs", "labels", "lengths"],
                   meta_fields=[])  # fmt: skip
@dataclasses.dataclass(frozen=True)
class Sequences:
    """Labelled sequences: ``inputs`` ``(N, T, F)``, ``labels`` ``(N,)``, optional ``lengths``.

    Row ``i`` is the series ``inputs[i, :lengths[i]]`` (all ``T`` steps without lengths) with
    class ``labels[i]``. Nothing is copied or checked on construction (the object also carries
    traced arrays inside ``jax.jit``); the functions that take one check it.

    For code written for tuples it behaves as the tuple ``(inputs, labels)`` or, with lengths,
    ``(inputs, labels, lengths)``: ``xs, ys = data``, ``data[0]``, ``data[:2]``, ``len(data)``
    (2 or 3) and ``*data`` all work. The number of examples is :attr:`size`.
    """

    inputs: Float[ArrayLike, "n time feature"]
    labels: Int[ArrayLike, " n"]
    lengths: Int[ArrayLike, " n"] | None = None

    # --- the tuple view, for code written for (xs, ys[, lengths]) ---
    def astuple(self) -> tuple:
        """``(inputs, labels)``, or ``(inputs, labels, lengths)`` with lengths."""
        if self.lengths is None:
            return (self.inputs, self.labels)
        return (self.inputs, self.labels, self.lengths)

    def __iter__(self):
        return iter(self.astuple())

    def __len__(self) -> int:
        return len(self.astuple())

    def __getitem__(self, index: int | slice) -> Any:
        return self.astuple()[index]

    # --- what the data are ---
    @property
    def size(self) -> int:
        """The number of examples ``N``."""
        return int(np.shape(self.labels)[0])

    @property
    def steps(self) -> int:
        """The padded length ``T`` (the longest series)."""
        return int(np.shape(self.inputs)[1])

    @property
    def features(self) -> int:
        """Features per step ``F``."""
        return int(np.shape(self.inputs)[2])

    def valid_steps(self) -> Bool[np.ndarray, "n time"]:
        """``(N, T)`` booleans: True at the real steps of each row (all of them without lengths)."""
        n, t = np.shape(self.inputs)[:2]
        if self.lengths is None:
            return np.ones((n, t), bool)
        return np.arange(t)[None, :] < np.asarray(self.lengths)[:, None]

    # --- new data from these ---
    def take(self, index: Any) -> Sequences:
        """The rows ``index`` (an index array, a boolean mask or a slice), lengths kept."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Sequences(pick(self.inputs), pick(self.labels), pick(self.lengths))

    def with_inputs(self, inputs: Float[ArrayLike, "n time features"]) -> Sequences:
        """The same labels and lengths with other ``inputs`` (e.g. perturbed or rescaled)."""
        return dataclasses.replace(self, inputs=inputs)


def as_sequences(data: Any, name: str = "data") -> Sequences:
    """``data`` as a :class:`Sequences`: one as it is, or a tuple ``(inputs, labels)`` /
    ``(inputs, labels, lengths)`` (``lengths`` may be None).

    Raises:
        ArgumentTypeError: (a ``TypeError`` and a ``ValueError``) anything else, in one line
            naming ``name`` and the two accepted forms.
    """
    if isinstance(data, Sequences):
        return data
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        return Sequences(data[0], data[1], data[2] if len(data) == 3 else None)
    kind = type(data).__name__
    size = f" of length {len(data)}" if isinstance(data, tuple | list) else ""
    raise ArgumentTypeError(
        f"`{name}` must be a trainkit.Sequences(inputs, labels, lengths=None) or a tuple "
        f"(inputs, labels) / (inputs, labels, lengths), got {kind}{size}."
    )


def padding_problem(inputs: Any, name: str = "inputs") -> str | None:
    """A one-line refusal when ``inputs`` ``(N, T, F)`` look right-padded, else None.

    They look padded when some rows end in ``z`` all-zero steps (``0 < z < T``) while no other
    step of any row is all zero (module docstring): the lengths of padded series were dropped.
    When all-zero steps also occur inside rows (pixel sequences, counts) the pattern says
    nothing and None is returned. Traced inputs cannot be inspected: None.
    """
    try:
        x = np.asarray(inputs)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None
    if x.ndim != 3 or x.shape[1] < 2 or x.size == 0:
        return None
    zero = np.all(x == 0, axis=2)  # (N, T): all-zero steps
    n, t = zero.shape
    real = ~zero
    last = np.where(real.any(axis=1), t - np.argmax(real[:, ::-1], axis=1), 0)  # one past
    trailing = t - last
    padded = (trailing > 0) & (trailing < t)
    inner = zero.sum(axis=1) - trailing  # all-zero steps before each row's trailing run
    if not padded.any() or inner.any():
        return None
    short = trailing[padded]
    return (
        f"`{name}`: {int(padded.sum())} of {n} rows end in all-zero steps ({int(short.min())} to "
        f"{int(short.max())} of {t}) and no other step is all zero: this looks like right-padded "
        "series whose lengths were dropped, and reading them at the last step gives wrong "
        "answers; pass the lengths (trainkit.Sequences(inputs, labels, lengths) or lengths=...), "
        f"or lengths=numpy.full({n}, {t}) if those zeros are real values."
    )


def takes_sequences(*, position: int = 1, labels: bool = True, rewrap: bool = False) -> Callable:
    """Let ``fn(..., xs, ys, *rest, lengths=None, **kw)`` also be called with one
    :class:`Sequences` in place of ``xs, ys`` (``xs`` alone with ``labels=False``).

    ``position`` is the index of ``xs`` among the positional arguments. The call
    ``fn(a, data, *rest)`` becomes ``fn(a, data.inputs, data.labels, *rest,
    lengths=data.lengths)``; lengths given both ways are refused. With ``rewrap`` (functions
    that return new inputs: perturbations, attacks) the result comes back as
    ``data.with_inputs(result)``. Other calls are unchanged.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) <= position or not isinstance(args[position], Sequences):
                return fn(*args, **kwargs)
            data = args[position]
            if data.lengths is not None and kwargs.get("lengths") is not None:
                raise TypeError(
                    f"{fn.__name__}: lengths given twice (in the Sequences and as lengths=); "
                    "pass them once."
                )
            if data.lengths is not None:
                kwargs["lengths"] = data.lengths
            fields = (data.inputs, data.labels) if labels else (data.inputs,)
            out = fn(*args[:position], *fields, *args[position + 1 :], **kwargs)
            return data.with_inputs(out) if rewrap else out

        return wrapper

    return decorate
