"""jaxtyping aliases shared by the noisy_dyn modules.

The shape names are the ones used throughout the package: ``batch``, ``time``, ``time_plus_1``
(the ``T + 1`` states ``h_0 .. h_T``), ``hidden`` (``H``), ``input`` (features per time step) and
``classes``.
"""

from typing import Any

import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

Params = dict[str, Float[Array | np.ndarray, "..."]]
"""A flat dict of parameter arrays keyed by name (``M_A``, ``M_W``, ``U``, ``b``, ``V``, ...):
JAX arrays, or NumPy arrays as a model file gives them back."""

Hidden = Float[Array, "*batch hidden"]
"""A hidden state ``h`` (optionally with leading batch axes)."""

Input = Float[Array, "*batch input"]
"""The input ``x_k`` of one time step (optionally with leading batch axes)."""

Inputs = Float[ArrayLike, "batch time input"]
"""A batch of input sequences, time-major inside each example."""

StepNormals = Float[ArrayLike, "batch time hidden"]
"""Pre-sampled standard normals ``xi_k``, one per example, step and hidden unit."""

Logits = Float[Array, "batch classes"]
"""Un-normalised class scores ``V h_T + c``."""

Trajectory = Float[Array, "batch time_plus_1 hidden"]
"""The hidden states ``h_0, h_1, ..., h_T`` of a batch."""

Matrix = Float[Array, "hidden hidden"]
"""A square ``H x H`` matrix."""

Key = PRNGKeyArray
"""A JAX PRNG key (typed ``jax.random.key`` or raw ``jax.random.PRNGKey``)."""

PyTree = Any
