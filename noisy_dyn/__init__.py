"""noisy_dyn: Noisy RNNs as discretised stochastic differential equations, in JAX.

The public API is re-exported here explicitly; the code lives in private modules named after one
idea each (``_config``, ``_cell``, ``_noise``, ``_solve``, ...).
"""
