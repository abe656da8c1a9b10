"""basis_ode: continuous-in-depth ODE-Nets whose weights are basis-function expansions, in JAX.

The public API is re-exported here explicitly; the code lives in private modules named after one
idea each (``_bases``, ``_projection``, ``_integrate``, ...).
"""
