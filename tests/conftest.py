"""Shared test configuration.

float64 is switched on for the whole test session, as diffrax and equinox do: the independent
references (NumPy loops, closed forms, Monte-Carlo estimates) are float64, and library code must
be dtype-generic. Tests that care about float32 behaviour create float32 arrays explicitly.
"""

import os

import jax
import pytest
from jaxtyping import install_import_hook

# Shapes and types are checked in the test run: jaxtyping's import hook decorates every function
# and dataclass of the three packages with ``jaxtyped(typechecker=beartype)``, as diffrax and
# equinox do with ``--jaxtyping-packages``. It has to be installed before the packages are first
# imported, hence here rather than in ``addopts``; beartype follows PEP 484's numeric tower (an
# ``int`` is accepted where ``float`` is annotated, as in every type checker).
# ``NOISY_BASIS_SHAPE_CHECKS=0`` switches it off (to time its overhead).
SHAPE_CHECKS = os.environ.get("NOISY_BASIS_SHAPE_CHECKS", "1") != "0"
if SHAPE_CHECKS:
    install_import_hook(
        ["noisy_dyn", "basis_ode", "trainkit"],
        "beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))",
    )

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
