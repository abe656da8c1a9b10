"""Shared test configuration.

float64 is switched on for the whole test session, as diffrax and equinox do: the independent
references (NumPy loops, closed forms, Monte-Carlo estimates) are float64, and library code must
be dtype-generic. Tests that care about float32 behaviour create float32 arrays explicitly.
"""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key, so every test is reproducible."""
    return jax.random.key(0)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. One pytest worker runs hundreds of
    modules; every CPU executable holds some 40 memory maps, and a process that keeps them all
    reaches the kernel's limit (``vm.max_map_count``, 65,530) and crashes inside XLA."""
    yield
    jax.clear_caches()
