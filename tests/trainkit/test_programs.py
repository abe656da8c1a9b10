"""The one cache of compiled programs: built once per key, least recently used dropped first,
and a decorated builder returns the same jitted program for equal arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from trainkit.internal import ProgramCache, cached_program


def test_lru_order_and_builds_counted() -> None:
    cache, built = ProgramCache(2), []

    def build(name):
        built.append(name)
        return name.upper()

    assert cache.get("a", lambda: build("a")) == "A"
    assert cache.get("b", lambda: build("b")) == "B"
    assert cache.get("a", lambda: build("a")) == "A"  # a is now the most recent
    cache.get("c", lambda: build("c"))  # drops b, the least recently used
    assert len(cache) == 2
    cache.get("a", lambda: build("a"))
    cache.get("b", lambda: build("b"))
    assert built == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses) == (2, 4)
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(TypeError):
        cache.get(["unhashable"], lambda: None)
    with pytest.raises(ValueError, match="maxsize"):
        ProgramCache(0)


def test_decorated_builder_reuses_its_program() -> None:
    traces = []

    @cached_program(maxsize=4)
    def scaled(factor: float):
        def f(x):
            traces.append(factor)  # runs while tracing only
            return factor * x

        return jax.jit(f)

    x = jnp.arange(3.0)
    assert scaled(2.0) is scaled(2.0) and scaled(2.0) is not scaled(3.0)
    for _ in range(3):
        assert jnp.allclose(scaled(2.0)(x), 2.0 * x)
    assert traces == [2.0]  # one trace: the program is kept
    scaled.cache_clear()
    scaled(2.0)(x)
    assert traces == [2.0, 2.0]
