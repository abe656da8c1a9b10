"""Held-out data for the plan and the compression sweep: unpacked into arrays, padded to whole
batches with a 0/1 weight per label, and the peak memory of the program that evaluates them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["EvalData", "pad_eval_data", "peak_memory", "unpack"]


def peak_memory(compiled: Any) -> int | None:
    """Argument + output + temporary bytes of a compiled executable (minus aliased bytes)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - backends without the analysis
        return None
    if m is None:
        return None
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    total = sum(int(getattr(m, f, 0) or 0) for f in fields)
    return total - int(getattr(m, "alias_size_in_bytes", 0) or 0)


def unpack(data: Sequence[Any]) -> tuple[Any, Any, Any]:
    """(inputs, labels, mask or None); a third entry of shape (N,) holds sequence lengths."""
    if len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1]), None
    if len(data) == 3:
        xs, ys, third = (np.asarray(a) for a in data)
        if third.ndim == 1:  # lengths -> mask
            third = np.arange(ys.shape[1])[None, :] < third[:, None]
        return xs, ys, third.astype(bool)
    raise ValueError(
        "data must be (inputs, labels) or, for the tagger, (tokens, tags, mask) with mask True at "
        f"real tokens (or (tokens, tags, lengths)); got a sequence of length {len(data)}."
    )


class EvalData(NamedTuple):
    """Evaluation inputs padded to whole batches, with a 0/1 weight per label."""

    xs: np.ndarray
    ys: np.ndarray
    mask: np.ndarray | None
    valid: np.ndarray
    batch_size: int
    repeats: int


def pad_eval_data(xs, ys, mask, bs: int) -> tuple:
    """``(xs, ys, mask, valid, bs)`` padded with copies of the last example to a multiple of
    ``bs``; ``valid`` is 1 at the real labels (where ``mask`` is True) and 0 at the padding."""
    pad = (-len(xs)) % bs
    xp = np.concatenate([xs, np.repeat(xs[-1:], pad, axis=0)])
    valid = np.ones(ys.shape, dtype=np.float64) if mask is None else mask.astype(np.float64)
    valid = np.concatenate([valid, np.zeros((pad,) + valid.shape[1:])])
    yp = np.concatenate([ys, np.repeat(ys[-1:], pad, axis=0)])
    mp = None if mask is None else np.concatenate([mask, np.repeat(mask[-1:], pad, axis=0)])
    return xp, yp, mp, valid, bs
