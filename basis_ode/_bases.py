"""Basis families on [0, 1] for the depth-dependent weights theta(t) = sum_k phi_k(t) theta_k.

Each family is a small frozen (hashable, static) dataclass with one field, ``K``, the number of
basis functions. A *piecewise* family splits [0, 1] into ``n_cells`` equal cells
``[c / n, (c + 1) / n)`` and, on each cell, uses a few local functions of the local coordinate
``s = n t - c`` in [0, 1]; a *global* family has a single cell and ``s = t``. Writing every
evaluation as (cell, local coordinate) lets a stage at the right end of an integration step read
the left limit of a discontinuous basis exactly (docs/basis_ode.md,
"Integration"), and lets quadrature evaluate each
basis on the cell a sub-interval lies in, without rounding across breakpoints.

=====================  ==============  ===============================================
family                 K               functions
=====================  ==============  ===============================================
PiecewiseConstant      any >= 1        phi_k = 1 on [k/K, (k+1)/K)
Hat                    any >= 1        continuous piecewise linear, nodes linspace(0,1,K)
                                       (K = 1 is the constant function)
PiecewiseLinear        even >= 2       K/2 cells; on cell c: phi_2c = 1 - s, phi_2c+1 = s
Legendre               any >= 1        phi_k = P_k(2t - 1)  (P_k(1) = 1, orthogonal)
Chebyshev              any >= 1        phi_k = T_k(2t - 1)
Fourier                any >= 1        1, cos(2 pi t), sin(2 pi t), cos(4 pi t), ...
=====================  ==============  ===============================================

The Fourier sequence is ``phi_0 = 1``, ``phi_{2m-1} = cos(2 pi m t)``, ``phi_{2m} = sin(2 pi m t)``,
so ``Fourier(K)`` holds the first K functions of one sequence (for even K the last one is
``cos(pi K t)``) and zero-padding K -> 2K preserves the function.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from fractions import Fraction
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from trainkit.internal import named

from ._types import BasisValues, IntScalar, Time

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


def _check_K(K: Any, cls_name: str) -> int:
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        raise TypeError(
            f"{cls_name}: K must be a Python int (the number of basis functions), got "
            f"{type(K).__name__} {K!r}; pass e.g. {cls_name}(8)."
        )
    if K < 1:
        raise ValueError(f"{cls_name}: K must be >= 1 (the number of basis functions), got {K}.")
    return int(K)


@dataclasses.dataclass(frozen=True)
class Basis:
    """A family of K real functions on [0, 1] (abstract; use one of the concrete families).

    Attributes:
        K: the number of basis functions; a coefficient pytree for this basis has leaves with a
            leading axis of length K.
        n_cells: number of equal cells ``[c/n, (c+1)/n)`` the family is piecewise on (1 for the
            global families Legendre, Chebyshev and Fourier).
        degree: maximum polynomial degree on one cell, or ``None`` for the trigonometric family
            (Fourier), whose maximal frequency is ``frequency``.
        frequency: maximal frequency ``m`` of a ``cos/sin(2 pi m t)`` term (0 when polynomial).
        breakpoints: the cell boundaries ``0 = b_0 < ... < b_n = 1`` as exact fractions.
        nodes: interpolation points (float64 array of length K); nodal interpolation samples a
            function there. ``node_sides`` says, per node, whether a discontinuous function is
            read as its right limit (+1) or left limit (-1) there.
    """

    K: int
    name: ClassVar[str] = "basis"

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _check_K(self.K, type(self).__name__))

    # -- structure -----------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return 1

    @property
    def degree(self) -> int | None:
        raise TypeError(f"{type(self).__name__} is abstract; use a concrete basis family.")

    @property
    def frequency(self) -> int:
        return 0

    @property
    def breakpoints(self) -> tuple[Fraction, ...]:
        n = self.n_cells
        return tuple(Fraction(c, n) for c in range(n + 1))

    @property
    def nodes(self) -> np.ndarray:
        return np.array([float(x) for x, _ in self._exact_nodes()], dtype=np.float64)

    @property
    def node_sides(self) -> tuple[int, ...]:
        return tuple(side for _, side in self._exact_nodes())

    def _exact_nodes(self) -> list[tuple[Fraction | float, int]]:
        raise TypeError(f"{type(self).__name__} is abstract; use a concrete basis family.")

    # -- local functions on one cell (xp is numpy or jax.numpy; s has any shape) ---------------
    def _local(self, s, xp):  # -> s.shape + (L,)
        raise TypeError(f"{type(self).__name__} is abstract; use a concrete basis family.")

    def _dofs(self, cell, xp):  # -> cell.shape + (L,) integer indices into range(K)
        raise TypeError(f"{type(self).__name__} is abstract; use a concrete basis family.")

    def _assemble(self, cell, s, xp):
        """Values (..., K) from cell indices and local coordinates of the same shape."""
        local = self._local(s, xp)
        dofs = self._dofs(cell, xp)
        onehot = xp.expand_dims(dofs, -1) == xp.arange(self.K)
        return xp.sum(xp.where(onehot, xp.expand_dims(local, -1), 0), axis=-2)

    # -- evaluation ------------------------------------------------------------------------------
    def local_values(self, cell: IntScalar, s: Time) -> BasisValues:
        """Values ``(phi_0, ..., phi_{K-1})`` on cell ``cell`` at local coordinate ``s``.

        The point is ``t = (cell + s) / n_cells``; ``s = 1`` gives the left limit at the cell's
        right end, ``s = 0`` the right limit at its left end. Works under jit and vmap.

        Arguments:
            cell: integer cell index in ``[0, n_cells)`` (clipped into that range).
            s: local coordinate in [0, 1] (a float scalar; its dtype is the result's dtype).

        Returns:
            Array of shape ``(K,)``.
        """
        s = jnp.asarray(s)
        if not jnp.issubdtype(s.dtype, jnp.floating):
            s = s.astype(jnp.result_type(float))
        return self._jit_local(jnp.asarray(cell), s)

    @functools.partial(jax.jit, static_argnums=0)
    def _jit_local(self, cell, s):
        cell = jnp.clip(cell, 0, self.n_cells - 1)
        return self._assemble(cell, s, jnp).astype(s.dtype)

    def __call__(self, t: Time) -> BasisValues:
        """Values ``(phi_0(t), ..., phi_{K-1}(t))`` at a (possibly traced) scalar time t.

        Piecewise families read the cell ``[c/n, (c+1)/n)`` containing t (the right limit at a
        breakpoint), except at t = 1, which reads the left limit. Works under jit and vmap.

        Arguments:
            t: scalar time in [0, 1]; a float scalar or 0-d array.

        Returns:
            Array of shape ``(K,)`` in t's floating dtype.
        """
        t = jnp.asarray(t)
        if t.ndim != 0:
            raise ValueError(
                f"{type(self).__name__}: t must be a scalar, got shape {t.shape}; "
                "use jax.vmap(basis)(times) for many times."
            )
        if not jnp.issubdtype(t.dtype, jnp.floating):
            t = t.astype(jnp.result_type(float))
        return self._jit_call(t)

    @functools.partial(jax.jit, static_argnums=0)
    def _jit_call(self, t):
        n = self.n_cells
        x = t * n
        cell = jnp.clip(jnp.floor(x), 0, n - 1)
        s = x - cell
        return self._assemble(cell.astype(jnp.int32), s, jnp).astype(t.dtype)

    def at_step(
        self, step: IntScalar, n_steps: int, c: Fraction, *, dtype: DTypeLike | None = None
    ) -> BasisValues:
        """Values at the stage time ``(step + c) / n_steps`` located with exact integer arithmetic.

        The stage belongs to step ``[step / n_steps, (step + 1) / n_steps)``: a stage with
        ``c = 1`` reads the left limit (it stays in the step's own cell); other stages
        read the right limit. The cell index is an integer computation on the (possibly traced)
        integer step index, so no floating-point rounding can select a neighbouring cell.

        Arguments:
            step: integer step index in ``[0, n_steps)`` (may be traced).
            n_steps: number of steps (static).
            c: the stage's Butcher node as an exact fraction in [0, 1].
            dtype: floating dtype of the result (default: JAX's default float).

        Returns:
            Array of shape ``(K,)``.
        """
        c = Fraction(c)
        dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
        return self._jit_step(jnp.asarray(step), int(n_steps), c, dtype)

    @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
    def _jit_step(self, step, n_steps, c, dtype):
        p, q, n = c.numerator, c.denominator, self.n_cells
        num = (step * q + p) * n
        den = n_steps * q
        cell = (num - 1) // den if c == 1 else num // den
        cell = jnp.clip(cell, 0, n - 1)
        s = (num - cell * den).astype(dtype) / jnp.asarray(den, dtype)
        return self._assemble(cell, s, jnp).astype(dtype)

    # -- float64 NumPy evaluation (used to build projection and interpolation matrices) ---------
    def _values_on_interval(self, a: Fraction, b: Fraction, t: np.ndarray) -> np.ndarray:
        """float64 values (len(t), K) at points t inside the sub-interval [a, b] of one cell."""
        n = self.n_cells
        cell = min(math.floor((a + b) / 2 * n), n - 1)
        s = np.asarray(t, dtype=np.float64) * n - cell
        cells = np.full(s.shape, cell, dtype=np.int64)
        return np.asarray(self._assemble(cells, s, np), dtype=np.float64)

    def _values_at(self, x: Fraction | float, side: int) -> np.ndarray:
        """float64 values (K,) at one point, as the right (+1) or left (-1) limit."""
        n = self.n_cells
        if n == 1:
            cell, s = 0, float(x)
        else:
            xn = Fraction(x) * n
            cell = math.floor(xn) if side > 0 else math.ceil(xn) - 1
            cell = min(max(cell, 0), n - 1)
            s = float(xn - cell)
        return np.asarray(
            self._assemble(np.array([cell]), np.array([s], dtype=np.float64), np),
            dtype=np.float64,
        )[0]

    # -- refinement ----------------------------------------------------------------------------
    def _refinement(self) -> tuple[Basis, np.ndarray]:
        """(finer basis, R) with R of shape (K_fine, K): exact embedding of this space."""
        raise TypeError(f"{type(self).__name__} is abstract; use a concrete basis family.")


class _Global(Basis):
    def _assemble(self, cell, s, xp):
        return self._local(s, xp)

    def _dofs(self, cell, xp):
        return xp.broadcast_to(xp.arange(self.K), cell.shape + (self.K,))

    def _refinement(self) -> tuple[Basis, np.ndarray]:
        fine = type(self)(2 * self.K)
        return fine, np.eye(2 * self.K, self.K)


@dataclasses.dataclass(frozen=True)
class PiecewiseConstant(Basis):
    """Piecewise-constant basis: ``phi_k(t) = 1`` on ``[k/K, (k+1)/K)``, else 0 (any K >= 1).

    With explicit Euler and ``n_steps = K`` the ODE block is exactly a ResNet stage of K residual
    blocks ``h <- h + F(theta_k, h) / K``. Nodes: the left cell ends ``k/K`` (right limits).

    Examples:
        >>> import basis_ode as bo
        >>> b = bo.PiecewiseConstant(4)  # theta(t) = c_k on the k-th quarter of [0, 1]
        >>> b.K, [float(t) for t in b.breakpoints]
        (4, [0.0, 0.25, 0.5, 0.75, 1.0])
    """

    name: ClassVar[str] = "piecewise_constant"

    @property
    def n_cells(self) -> int:
        return self.K

    @property
    def degree(self) -> int:
        return 0

    def _exact_nodes(self):
        return [(Fraction(k, self.K), +1) for k in range(self.K)]

    def _local(self, s, xp):
        return xp.ones(s.shape + (1,), dtype=s.dtype)

    def _dofs(self, cell, xp):
        return xp.expand_dims(cell, -1)

    def _refinement(self):
        return PiecewiseConstant(2 * self.K), np.repeat(np.eye(self.K), 2, axis=0)


@dataclasses.dataclass(frozen=True)
class Hat(Basis):
    """Continuous piecewise-linear (finite-element hat) basis with nodes ``linspace(0, 1, K)``.

    ``phi_k`` is 1 at node k, 0 at the other nodes and linear between neighbouring nodes; the
    functions sum to 1 everywhere. ``K = 1`` is the constant function 1.
    """

    name: ClassVar[str] = "hat"

    @property
    def n_cells(self) -> int:
        return max(self.K - 1, 1)

    @property
    def degree(self) -> int:
        return 1 if self.K > 1 else 0

    def _exact_nodes(self):
        if self.K == 1:
            return [(Fraction(1, 2), +1)]
        n = self.K - 1
        return [(Fraction(k, n), +1 if k < n else -1) for k in range(self.K)]

    def _local(self, s, xp):
        if self.K == 1:
            return xp.ones(s.shape + (1,), dtype=s.dtype)
        return xp.stack([1 - s, s], axis=-1)

    def _dofs(self, cell, xp):
        if self.K == 1:
            return xp.zeros(cell.shape + (1,), dtype=cell.dtype)
        return xp.stack([cell, cell + 1], axis=-1)

    def _refinement(self):
        K = self.K
        if K == 1:
            return Hat(2), np.ones((2, 1))
        R = np.zeros((2 * K - 1, K))
        for k in range(K):
            R[2 * k, k] = 1.0
        for k in range(K - 1):
            R[2 * k + 1, k] = R[2 * k + 1, k + 1] = 0.5
        return Hat(2 * K - 1), R


@dataclasses.dataclass(frozen=True)
class PiecewiseLinear(Basis):
    """Discontinuous piecewise-linear basis (K even): K/2 cells, two linear functions per cell.

    On cell c (local coordinate s in [0, 1]) ``phi_{2c} = 1 - s`` and ``phi_{2c+1} = s``: the
    coefficients are the right limit at the cell's left end and the left limit at its right end.
    """

    name: ClassVar[str] = "piecewise_linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.K % 2:
            raise ValueError(
                f"PiecewiseLinear: K must be even (two linear functions per cell), got {self.K}; "
                f"use K = {self.K + 1} or {max(self.K - 1, 2)}."
            )

    @property
    def n_cells(self) -> int:
        return self.K // 2

    @property
    def degree(self) -> int:
        return 1

    def _exact_nodes(self):
        n = self.n_cells
        out = []
        for c in range(n):
            out += [(Fraction(c, n), +1), (Fraction(c + 1, n), -1)]
        return out

    def _local(self, s, xp):
        return xp.stack([1 - s, s], axis=-1)

    def _dofs(self, cell, xp):
        return xp.stack([2 * cell, 2 * cell + 1], axis=-1)

    def _refinement(self):
        n = self.n_cells
        R = np.zeros((2 * self.K, self.K))
        for c in range(n):
            a, b = 2 * c, 2 * c + 1  # left and right values of the coarse cell
            # left child: (a, (a+b)/2); right child: ((a+b)/2, b)
            R[4 * c + 0, a] = 1.0
            R[4 * c + 1, [a, b]] = 0.5
            R[4 * c + 2, [a, b]] = 0.5
            R[4 * c + 3, b] = 1.0
        return PiecewiseLinear(2 * self.K), R


def _chebyshev_points(K: int) -> list[tuple[float, int]]:
    return [(0.5 * (1.0 - math.cos((2 * j + 1) * math.pi / (2 * K))), +1) for j in range(K)]


@dataclasses.dataclass(frozen=True)
class Legendre(_Global):
    """Shifted Legendre polynomials ``phi_k(t) = P_k(2t - 1)`` (orthogonal on [0, 1], with
    ``int phi_k^2 = 1 / (2k + 1)``), by the three-term recurrence
    ``(k + 1) P_{k+1}(x) = (2k + 1) x P_k(x) - k P_{k-1}(x)``. Nodes: Chebyshev points of
    the first kind mapped to [0, 1]."""

    name: ClassVar[str] = "legendre"

    @property
    def degree(self) -> int:
        return self.K - 1

    def _exact_nodes(self):
        return _chebyshev_points(self.K)

    def _local(self, s, xp):
        x = 2 * s - 1
        P = [xp.ones_like(x), x]
        for k in range(1, self.K - 1):
            P.append(((2 * k + 1) * x * P[k] - k * P[k - 1]) / (k + 1))
        return xp.stack(P[: self.K], axis=-1)


@dataclasses.dataclass(frozen=True)
class Chebyshev(_Global):
    """Shifted Chebyshev polynomials of the first kind ``phi_k(t) = T_k(2t - 1)``, by the
    recurrence ``T_{k+1}(x) = 2 x T_k(x) - T_{k-1}(x)``. Nodes: Chebyshev points of the first
    kind mapped to [0, 1]."""

    name: ClassVar[str] = "chebyshev"

    @property
    def degree(self) -> int:
        return self.K - 1

    def _exact_nodes(self):
        return _chebyshev_points(self.K)

    def _local(self, s, xp):
        x = 2 * s - 1
        T = [xp.ones_like(x), x]
        for _ in range(1, self.K - 1):
            T.append(2 * x * T[-1] - T[-2])
        return xp.stack(T[: self.K], axis=-1)


@dataclasses.dataclass(frozen=True)
class Fourier(_Global):
    """Trigonometric basis ``1, cos(2 pi t), sin(2 pi t), ..., `` (first K functions).

    ``phi_0 = 1``, ``phi_{2m-1} = cos(2 pi m t)``, ``phi_{2m} = sin(2 pi m t)``; the maximal
    frequency is ``K // 2``. Nodes: the uniform grid ``j / K`` (the interpolation problem there is
    the discrete Fourier transform, invertible for every K).
    """

    name: ClassVar[str] = "fourier"

    @property
    def degree(self) -> None:
        return None

    @property
    def frequency(self) -> int:
        return self.K // 2

    def _exact_nodes(self):
        return [(Fraction(j, self.K), +1) for j in range(self.K)]

    def _local(self, s, xp):
        out = [xp.ones_like(s)]
        for k in range(1, self.K):
            m = (k + 1) // 2
            arg = (2 * math.pi * m) * s
            out.append(xp.cos(arg) if k % 2 else xp.sin(arg))
        return xp.stack(out, axis=-1)


BASES: dict[str, type[Basis]] = {
    cls.name: cls for cls in (PiecewiseConstant, Hat, PiecewiseLinear, Legendre, Chebyshev, Fourier)
}


def basis_by_name(name: str, K: int) -> Basis:
    """The basis family called ``name`` with K functions.

    Arguments:
        name: one of "piecewise_constant", "hat", "piecewise_linear", "legendre", "chebyshev",
            "fourier".
        K: number of basis functions.

    Returns:
        The (hashable, immutable) basis object, e.g. ``basis_by_name("hat", 5) == Hat(5)``.
    """
    return named(name, BASES, "basis", K)
