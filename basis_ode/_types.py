"""Type aliases shared by the basis_ode modules (jaxtyping shapes).

A *coefficient pytree* is any pytree whose array leaves all carry a leading axis of length K, the
number of basis functions: leaf ``c`` stands for ``theta(t) = sum_k phi_k(t) c[k]``.
"""

from typing import Any

from jaxtyping import Array, ArrayLike, Float, Int, PyTree

__all__: list[str] = []  # shared by the basis_ode modules; not part of the public API

#: A coefficient pytree: every leaf has shape ``(K, ...)``.
Coefficients = PyTree[Float[ArrayLike, "K ..."]]
#: The coefficients on another basis (its own number of functions, ``K_new``).
NewCoefficients = PyTree[Float[ArrayLike, "K_new ..."]]
#: A parameter pytree of the unit, i.e. one coefficient slice ``theta(t)`` (leaves ``(...)``).
Parameters = PyTree[Float[ArrayLike, "..."]]
#: The ODE state ``h`` (any pytree of arrays).
State = PyTree[Float[ArrayLike, "..."]]
#: A scalar time in [0, 1] (Python float or 0-d array, possibly traced).
Time = Float[ArrayLike, ""]
#: The values ``(phi_0(t), ..., phi_{K-1}(t))`` of a basis at one time.
BasisValues = Float[Array, " K"]
#: An integer scalar (possibly traced): a step or cell index.
IntScalar = Int[ArrayLike, ""]
#: Auxiliary output of a vector field (any pytree).
Aux = Any
