"""Helpers shared by the basis_ode tests."""

import jax
import jax.numpy as jnp
import numpy as np


def fill(shapes, seed=0):
    """Deterministic variables of the given shapes (no random-init compilation): positive
    variances, scales near 1, everything else N(0, 0.3^2)."""
    rng = np.random.default_rng(seed)

    def one(path, s):
        name = path[-1].key
        if name == "var":
            v = rng.uniform(0.5, 1.5, s.shape)
        elif name == "scale":
            v = 1.0 + 0.2 * rng.standard_normal(s.shape)
        else:
            v = 0.3 * rng.standard_normal(s.shape)
        return jnp.asarray(v, dtype=s.dtype)

    return jax.tree_util.tree_map_with_path(one, shapes)
