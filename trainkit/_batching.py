"""Batch order and padded evaluation, shared by both packages.

- :func:`epoch_order` is the example order of one epoch, a pure function of ``(seed, epoch)``, so
  a run resumed at epoch ``e`` sees exactly the order an uninterrupted run saw;
- :func:`batches` iterates over one epoch in that order;
- :func:`padded_batches` and :func:`evaluate_padded` run a jitted function over a whole data set
  in batches of one shape (the last batch is padded with copies of the first rows, which get
  weight 0), so evaluation compiles once and the padding never counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jaxtyping import ArrayLike, Float, Int, Shaped

from ._validate import check_int


def epoch_order(n: int, *, seed: int, epoch: int) -> Int[np.ndarray, " n"]:
    """The example order of one epoch: ``default_rng([seed, epoch]).permutation(n)``.

    A pure function of ``(seed, epoch)``, so a run resumed at epoch ``e`` sees exactly the order
    it would have seen without the interruption.

    Arguments:
        n: number of examples.
        seed: data-order seed (non-negative int).
        epoch: epoch index (non-negative int, 0-based).

    Returns:
        int64 permutation of ``0..n-1``.
    """
    check_int("seed", seed)
    check_int("epoch", epoch)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


def batches(
    xs: Shaped[ArrayLike, "n ..."],
    ys: Shaped[ArrayLike, "n ..."],
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    lengths: Int[ArrayLike, " n"] | None = None,
    shuffle: bool = True,
    drop_remainder: bool = False,
) -> Iterator[tuple[Shaped[np.ndarray, "batch ..."], ...]]:
    """Iterate over one epoch in mini-batches, in an order fixed by ``(seed, epoch)``.

    The order is :func:`epoch_order` ``(N, seed=seed, epoch=epoch)`` (``0..N-1`` without
    shuffling); batch ``b`` holds examples ``order[b B : (b + 1) B]``.

    Arguments:
        xs: inputs, leading axis ``N``.
        ys: labels or tags, leading axis ``N``.
        batch_size: ``B``.
        seed: data-order seed.
        epoch: epoch index.
        lengths: optional per-example lengths, batched alongside.
        shuffle: shuffle (True) or keep the stored order.
        drop_remainder: drop the last batch when it has fewer than ``B`` examples.

    Yields:
        ``(xs_b, ys_b)``, or ``(xs_b, ys_b, lengths_b)`` when ``lengths`` is given.
    """
    n = len(xs)
    if len(ys) != n or (lengths is not None and len(lengths) != n):
        raise ValueError(
            f"xs, ys (and lengths) must have the same leading size, got {n}, {len(ys)}"
            + (f", {len(lengths)}" if lengths is not None else "")
            + "."
        )
    batch_size = check_int("batch_size", batch_size, minimum=1)
    order = epoch_order(n, seed=seed, epoch=epoch) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_remainder else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield (xs[idx], ys[idx]) if lengths is None else (xs[idx], ys[idx], lengths[idx])


def padded_batches(
    arrays: Sequence[Shaped[ArrayLike, "n ..."]], batch_size: int
) -> Iterator[tuple[tuple[Shaped[np.ndarray, "batch ..."], ...], Float[np.ndarray, " batch"]]]:
    """Cut ``arrays`` (same leading size ``N``) into batches of exactly ``min(batch_size, N)`` rows.

    Yields ``(batch, weight)``: ``batch`` a tuple of the arrays' rows, ``weight`` a float32
    vector with 1 for the real rows and 0 for the padding (copies of the first rows of the data
    set) that fills up the last batch.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if n == 0:
        raise ValueError("Cannot evaluate on an empty set (0 examples); pass at least one example.")
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays must share the leading size, got {[len(a) for a in arrays]}.")
    bs = min(check_int("batch_size", batch_size, minimum=1), n)
    for start in range(0, n, bs):
        real = min(bs, n - start)
        weight = np.zeros(bs, np.float32)
        weight[:real] = 1.0
        batch = tuple(a[start : start + real] for a in arrays)
        if real < bs:
            idx = np.arange(bs - real) % n
            batch = tuple(np.concatenate([b, a[idx]]) for b, a in zip(batch, arrays, strict=True))
        yield batch, weight


def evaluate_padded(
    fn: Callable[[tuple[Any, ...], Any], Any],
    arrays: Sequence[Shaped[ArrayLike, "n ..."]],
    batch_size: int,
) -> Any:
    """Sum ``fn(batch, weight)`` over :func:`padded_batches`; one host transfer at the end.

    ``fn`` returns a pytree of sums over the batch that already weight each row by ``weight``
    (e.g. ``{"correct": sum(weight * hit), "loss": sum(weight * ce)}``); the result is the same
    pytree summed over all batches, as NumPy float64 values.
    """
    total = None
    for batch, weight in padded_batches(arrays, batch_size):
        out = fn(batch, weight)
        total = out if total is None else jax.tree.map(lambda a, b: a + b, total, out)
    return jax.tree.map(lambda a: np.asarray(a, np.float64), jax.device_get(total))
