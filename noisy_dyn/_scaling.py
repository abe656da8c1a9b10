"""Input standardisation from the training split: ``x' = (x - mean) / scale`` per feature; and
:func:`downsample`, which shortens long series by averaging windows.

The Lipschitz recursion ``h_{k+1} = h_k + dt (alpha A h_k + tanh(W h_k + U x_k + b))`` sees its
inputs through ``U x_k`` at an initial scale ``||U|| ~ 1``: inputs in the hundreds (ACSF1's power
readings) saturate ``tanh`` from the first step and the gradients through it vanish, while inputs
of scale 1e-3 barely move the state. Standardising each feature to mean 0 and standard deviation
1 puts every data set where the presets' initialisation and learning rates were tuned.

The statistics are those of the *training* split only (its real steps: padding excluded), so
nothing is learned from validation or test data; the same map is then applied to every split,
and stored with the model (``noisy_dyn.save_model(..., scaling=...)``) so that evaluating the
model later applies it again. Padding stays zero.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from trainkit import Sequences, as_sequences

SeriesData = Sequences | tuple | Float[ArrayLike, "n time features"]
"""Series: a :class:`trainkit.Sequences`, a tuple ``(inputs, labels[, lengths])`` or inputs."""

__all__ = ["InputScaling", "downsample", "standardize"]


class InputScaling(NamedTuple):
    """Per-feature ``mean`` and ``scale`` ``(F,)``: inputs become ``(x - mean) / scale``.

    ``scale`` is the standard deviation of the feature over the training split's real steps
    (1 for a constant feature, whose values then only lose their mean).
    """

    mean: Float[np.ndarray, " feature"]
    scale: Float[np.ndarray, " feature"]

    @classmethod
    def fit(cls, train: Sequences | tuple) -> InputScaling:
        """The statistics of ``train``'s real steps (padding excluded), per feature, float64."""
        data = as_sequences(train, "train")
        x = np.asarray(data.inputs, np.float64)
        if x.ndim != 3 or x.shape[0] == 0:
            raise ValueError(f"`train` inputs must be (N, T, F) with N >= 1, got {x.shape}.")
        real = x[data.valid_steps()]  # (steps, F)
        mean, std = real.mean(axis=0), real.std(axis=0)
        return cls(mean, np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0))

    def apply(self, data: SeriesData) -> SeriesData:
        """``data`` standardised: a :class:`Sequences` (or tuple) keeps its labels and lengths
        (padding stays 0), an array ``(N, T, F)`` is mapped at every step. The dtype of the
        inputs is kept."""
        if isinstance(data, Sequences | tuple | list):
            data = as_sequences(data)
            x = np.asarray(data.inputs)
            z = (x - self.mean) / self.scale
            if data.lengths is not None:
                z = np.where(data.valid_steps()[..., None], z, 0.0)
            return data.with_inputs(z.astype(x.dtype))
        x = np.asarray(data)
        return ((x - self.mean) / self.scale).astype(x.dtype)

    def describe(self) -> str:
        """One line for the logs: the range of the means and scales."""
        return (f"standardised with the training split's statistics (mean {self.mean.min():.4g} "
                f"to {self.mean.max():.4g}, standard deviation {self.scale.min():.4g} to "
                f"{self.scale.max():.4g} over {len(self.mean)} feature(s))")  # fmt: skip


def standardize(splits: Any) -> tuple[Any, InputScaling]:
    """Standardise ``(train, validation, test)`` with the statistics of ``train`` alone.

    Arguments:
        splits: a `noisy_dyn.data.Splits` / `SequenceSplits` (any tuple of three splits, each a
            :class:`trainkit.Sequences` or a tuple).

    Returns:
        ``(splits, scaling)``: the same kind of splits with standardised inputs, and the
        :class:`InputScaling` (store it with the model: ``save_model(..., scaling=scaling)``).
    """
    scaling = InputScaling.fit(splits[0])
    parts = [scaling.apply(s) for s in splits[:3]]
    return type(splits)(*parts, *splits[3:]), scaling


def downsample(data: SeriesData, factor: int) -> SeriesData:
    """Series shortened ``factor`` times: each window of ``factor`` consecutive real steps
    replaced by its mean (a series of ``L`` steps keeps ``ceil(L / factor)``; the last window
    may be shorter and averages only its real steps). Padding stays zero.

    The Lipschitz cell carries what it saw at the start over a few hundred steps, not over
    thousands (``docs/results/noisy_dyn/length_memory``); averaging windows keeps the slow
    shape of a long series within that reach, at the price of what changes faster than a
    window.

    Arguments:
        data: a :class:`trainkit.Sequences` (or tuple), or a `Splits` of them (every split).
        factor: the window ``>= 1`` (1: unchanged).

    Returns:
        The same kind of data, ``ceil(T / factor)`` steps long, with lengths when ``data`` had
        them.
    """
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, got {factor!r}.")
    if isinstance(data, tuple) and len(data) >= 3 and not isinstance(data, Sequences):
        first = data[0]
        if isinstance(first, Sequences | tuple):  # splits
            parts = [downsample(s, factor) for s in data[:3]]
            return type(data)(*parts, *data[3:])
    seqs = as_sequences(data)
    if factor == 1:
        return seqs
    x = np.asarray(seqs.inputs)
    n, t, f = x.shape
    steps = -(-t // factor)
    valid = seqs.valid_steps()
    pad = steps * factor - t
    xs = np.pad(np.where(valid[..., None], x, 0.0), ((0, 0), (0, pad), (0, 0)))
    counts = np.pad(valid, ((0, 0), (0, pad))).reshape(n, steps, factor).sum(axis=2)
    sums = xs.reshape(n, steps, factor, f).sum(axis=2)
    out = (sums / np.maximum(counts, 1)[..., None]).astype(x.dtype)
    lengths = None
    if seqs.lengths is not None:
        lengths = (-(-np.asarray(seqs.lengths) // factor)).astype(np.int32)
    return Sequences(out, seqs.labels, lengths)
