"""jaxtyping aliases shared by the three packages (re-exported from :mod:`trainkit.internal`).

Shapes are checked in the test run only (``tests/conftest.py`` installs jaxtyping's import hook
with beartype); for users they are documentation.
"""

import numpy as np
from jaxtyping import ArrayLike, Float, Int, Real

FloatScalar = float | Float[ArrayLike, ""]
"""A real number: a Python ``float`` or ``int``, or a 0-d float array, possibly traced."""

IntScalar = int | Int[ArrayLike, ""]
"""An integer: a Python ``int`` or a 0-d integer array, possibly traced."""

RealScalar = float | Real[ArrayLike, ""]
"""A real number of any dtype: a Python number or a 0-d integer or float array."""

IntLike = int | np.integer
"""A whole number in a configuration: a Python or NumPy integer (models accept both)."""

FloatLike = float | np.floating | np.integer
"""A real number in a configuration: a Python number or a NumPy scalar."""
