"""The one way the three packages keep compiled programs: a bounded least-recently-used map.

A jitted program is built from static pieces (a model configuration, a mesh, a basis, a step
count) and kept so that a second call with the same pieces runs it again instead of tracing
and compiling anew. Every such cache in ``noisy_dyn``, ``basis_ode`` and ``trainkit`` is a
:class:`ProgramCache`, either directly (``cache.get(key, build)``) or through the decorator
:func:`cached_program` on a function of hashable arguments that returns a program.

Why not one shared ``equinox.filter_jit``: its cache is unbounded, and each compiled
executable holds memory maps for the life of the process; a long test session that made a new
program per field crashed in XLA at the kernel's map limit. Each ``jax.jit`` program owns its
cache, so dropping the least recently used program here frees its executables.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["ProgramCache", "cached_program"]

F = TypeVar("F", bound=Callable[..., Any])


class ProgramCache:
    """At most ``maxsize`` programs by key, the least recently used dropped first.

    Example::

        cache = ProgramCache(64)
        fn = cache.get((cfg, n_steps), lambda: jax.jit(partial(solve, cfg, n_steps)))
    """

    def __init__(self, maxsize: int) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"`maxsize` must be an int >= 1, got {maxsize!r}.")
        self.maxsize = maxsize
        self._programs: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The program stored under ``key``, built by ``build()`` on first use. Raises
        ``TypeError`` when ``key`` is not hashable."""
        try:
            program = self._programs.pop(key)
            self.hits += 1
        except KeyError:
            program = build()
            self.misses += 1
        self._programs[key] = program
        while len(self._programs) > self.maxsize:
            self._programs.popitem(last=False)
        return program

    def clear(self) -> None:
        """Drop every program (the next call of each compiles again; benchmarks time that)."""
        self._programs.clear()

    def __len__(self) -> int:
        return len(self._programs)


def cached_program(maxsize: int) -> Callable[[F], F]:
    """Decorate a function of hashable arguments that builds a program: calls with equal
    arguments return the same program (a :class:`ProgramCache` of ``maxsize`` entries keyed on
    the positional and keyword arguments). The decorated function has ``cache_clear()`` and
    its ``cache``."""

    def decorate(builder: F) -> F:
        cache = ProgramCache(maxsize)

        @functools.wraps(builder)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = (args, tuple(sorted(kwargs.items())))
            return cache.get(key, lambda: builder(*args, **kwargs))

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
