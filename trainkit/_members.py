"""Helpers of the ensembles (``noisy_dyn.fit_ensemble``, ``basis_ode.fit_ensemble``).

An ensemble task stacks its members' train states on a leading member axis
(:func:`stack_members`), reads one member back (:func:`member_of`) and checks the seeds its
caller gives (:func:`check_seeds`); the member axis itself is ``trainkit.train``'s
(``Settings.seeds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_seeds", "member_of", "stack_members"]


def stack_members(trees: Sequence[Any]) -> Any:
    """The pytrees ``trees`` (one structure) with every leaf stacked on a new leading axis."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def member_of(tree: Any, m: int) -> Any:
    """Member ``m`` of a pytree stacked by :func:`stack_members` (index ``m`` of every leaf)."""
    return jax.tree_util.tree_map(lambda leaf: leaf[m], tree)


def check_seeds(name: str, seeds: Any) -> tuple[int, ...]:
    """``seeds`` as a tuple of ints: a non-empty sequence of distinct integers (not bools), or a
    one-line error naming ``name`` and the fix."""
    if isinstance(seeds, int | np.integer) or not isinstance(seeds, Sequence | np.ndarray):
        raise TypeError(f"`{name}` must be a sequence of ints (e.g. range(8)), got {seeds!r}.")
    values = tuple(seeds)
    if not values or not all(isinstance(s, int | np.integer) and not isinstance(s, bool)
                             for s in values):  # fmt: skip
        raise ValueError(f"`{name}` must be a non-empty sequence of ints, got {seeds!r}.")
    if len(set(values)) != len(values):
        raise ValueError(f"`{name}` holds repeated values {values}; each member needs its own.")
    return tuple(int(s) for s in values)
