"""Coefficient pytrees: evaluation, exact L2 change of basis, nodal interpolation, refinement.

A coefficient pytree stands for ``theta(t) = sum_k phi_k(t) theta_k``: every array leaf has a
leading axis of length K, and K is always read from the shapes. Changing the basis maps each leaf
by one precomputed ``(K_dst, K_src)`` matrix, ``einsum('ij,j...->i...', P, leaf)`` (paper
section 4; docs/basis_ode.md).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from ._bases import Basis, Fourier
from ._types import BasisValues, Coefficients, NewCoefficients, Parameters, Time

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


# ---------------------------------------------------------------------------------------------
# validation


def _check_basis(basis: object, argname: str) -> Basis:
    if not isinstance(basis, Basis) or type(basis) is Basis:
        raise TypeError(
            f"{argname} must be a basis object such as PiecewiseConstant(K) or "
            f"basis_by_name('hat', K), got {type(basis).__name__} {basis!r}."
        )
    return basis


def check_coefficients(
    coeffs: Coefficients, basis: Basis | None = None, *, argname: str = "coeffs"
):
    """Check that every leaf of ``coeffs`` has the same leading axis (K), matching ``basis.K``.

    Raises:
        ValueError: no leaves, a 0-d leaf, leaves with different leading axes, or a leading
            axis different from ``basis.K``; the message says how to fix it.

    Returns:
        K, the common leading axis.
    """
    leaves, _ = jax.tree_util.tree_flatten(coeffs)
    if not leaves:
        raise ValueError(
            f"{argname} has no array leaves; pass a pytree of arrays of shape (K, ...)."
        )
    sizes = set()
    for leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) == 0:
            raise ValueError(
                f"{argname} has a scalar leaf; every leaf needs a leading axis of length K (one "
                "slice per basis function): stack the K coefficient sets along axis 0."
            )
        sizes.add(shape[0])
    if len(sizes) > 1:
        raise ValueError(
            f"{argname} leaves have different leading axes {sorted(sizes)}; every leaf must have "
            "a leading axis of length K (the number of basis functions): stack the K coefficient "
            "sets of every parameter along axis 0."
        )
    (K,) = sizes
    if basis is not None and K != basis.K:
        raise ValueError(
            f"{argname} has leading axis K = {K} but the basis is {basis!r} with K = {basis.K}; "
            f"use a basis with K = {K} (e.g. basis_by_name({basis.name!r}, {K})), or map the "
            "coefficients first with project(coeffs, src, dst)."
        )
    return K


def _as_float_leaf(leaf):
    leaf = jnp.asarray(leaf)
    if not jnp.issubdtype(leaf.dtype, jnp.inexact):
        leaf = leaf.astype(jnp.result_type(float))
    return leaf


def _apply_matrix(matrix: Float[np.ndarray, "K_new K"], coeffs: Coefficients) -> NewCoefficients:
    def one(leaf):
        leaf = _as_float_leaf(leaf)
        return jnp.einsum("ij,j...->i...", jnp.asarray(matrix, dtype=leaf.dtype), leaf)

    return jax.tree_util.tree_map(one, coeffs)


def combine(coeffs: Coefficients, phi: BasisValues) -> Parameters:
    """``sum_k phi[k] * leaf[k]`` for every leaf (phi cast to each leaf's dtype)."""

    def one(leaf):
        leaf = _as_float_leaf(leaf)
        return jnp.tensordot(phi.astype(leaf.dtype), leaf, axes=1)

    return jax.tree_util.tree_map(one, coeffs)


def evaluate(coeffs: Coefficients, basis: Basis, t: Time) -> Parameters:
    """theta(t) = sum_k phi_k(t) theta_k, leaf by leaf.

    Arguments:
        coeffs: pytree whose leaves have shape ``(K, ...)``.
        basis: the basis, with ``basis.K == K``.
        t: scalar time in [0, 1] (may be traced); breakpoints read the right limit, t = 1 the
            left limit.

    Returns:
        A pytree of the same structure with leaves of shape ``(...)``.
    """
    _check_basis(basis, "basis")
    check_coefficients(coeffs, basis)
    return combine(coeffs, basis(t))


# ---------------------------------------------------------------------------------------------
# quadrature and Gram matrices


def _gauss_points(basis_a: Basis, basis_b: Basis, a: Fraction, b: Fraction) -> int:
    """Gauss-Legendre points per sub-interval [a, b] for products within and across a, b."""
    deg = max(d if d is not None else 0 for d in (basis_a.degree, basis_b.degree))
    m = max(basis_a.frequency, basis_b.frequency)
    if m == 0:
        # products of degree <= 2 deg; n points are exact up to degree 2n - 1.
        return deg + 1
    # cos(omega t) times a polynomial, omega <= 4 pi m: Gauss-Legendre with 2n - 1 well above
    # e * omega * L / 4 (L the interval length) is accurate to rounding (Bessel-coefficient decay).
    return deg + 1 + math.ceil(2 * math.pi * m * float(b - a)) + 20


def _quadrature_values(basis_a: Basis, basis_b: Basis):
    """Points' weights and the float64 values of both bases: (w (N,), A (N, Ka), B (N, Kb)).

    Integrates products phi^a_i phi^a_j, phi^a_i phi^b_j and phi^b_i phi^b_j over [0, 1]:
    - both trigonometric (Fourier): the N-point uniform rule t_j = j / N with
      N = 2 max(m_a, m_b) + 1, exact for trigonometric polynomials of frequency < N;
    - otherwise Gauss-Legendre on every sub-interval between consecutive points of the union of
      both bases' breakpoints, so each integrand is one polynomial (exact: max degree + 1 points)
      or a polynomial times trigonometric terms (enough points to be exact to rounding).
    """
    if isinstance(basis_a, Fourier) and isinstance(basis_b, Fourier):
        N = 2 * max(basis_a.frequency, basis_b.frequency) + 1
        t = np.arange(N, dtype=np.float64) / N
        w = np.full(N, 1.0 / N)
        z = Fraction(0)
        one = Fraction(1)
        return w, basis_a._values_on_interval(z, one, t), basis_b._values_on_interval(z, one, t)
    cuts = sorted(set(basis_a.breakpoints) | set(basis_b.breakpoints))
    ws, As, Bs = [], [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        n = _gauss_points(basis_a, basis_b, a, b)
        x, w = np.polynomial.legendre.leggauss(n)
        fa, fb = float(a), float(b)
        t = 0.5 * (fb - fa) * x + 0.5 * (fa + fb)
        ws.append(0.5 * (fb - fa) * w)
        As.append(basis_a._values_on_interval(a, b, t))
        Bs.append(basis_b._values_on_interval(a, b, t))
    return np.concatenate(ws), np.concatenate(As), np.concatenate(Bs)


@functools.lru_cache(maxsize=256)
def _gram(basis_a: Basis, basis_b: Basis) -> np.ndarray:
    w, A, B = _quadrature_values(basis_a, basis_b)
    G = (A * w[:, None]).T @ B
    G.flags.writeable = False
    return G


def gram_matrix(basis_a: Basis, basis_b: Basis | None = None) -> Float[np.ndarray, "Ka Kb"]:
    """L2([0, 1]) inner products ``G_ij = int_0^1 phi^a_i(t) phi^b_j(t) dt`` in float64.

    Computed by exact quadrature (see ``change_of_basis``). ``basis_b`` defaults to ``basis_a``
    (the mass matrix). The result is cached and read-only.
    """
    _check_basis(basis_a, "basis_a")
    basis_b = basis_a if basis_b is None else _check_basis(basis_b, "basis_b")
    return _gram(basis_a, basis_b)


@functools.lru_cache(maxsize=256)
def _change_of_basis(src: Basis, dst: Basis) -> np.ndarray:
    if src == dst:
        P = np.eye(src.K)
    else:
        w, D, S = _quadrature_values(dst, src)
        M = (D * w[:, None]).T @ D
        B = (D * w[:, None]).T @ S
        P = np.linalg.solve(M, B)
    P.flags.writeable = False
    return P


def change_of_basis(src: Basis, dst: Basis) -> Float[np.ndarray, "Kdst Ksrc"]:
    """Matrix of the L2([0, 1]) orthogonal projection from span(src) onto span(dst).

        M_ij = int phi^dst_i phi^dst_j dt,  B_ij = int phi^dst_i phi^src_j dt,  P = M^{-1} B

    so that ``theta_dst = P theta_src`` minimises ``int (theta_dst(t) - theta_src(t))^2 dt``
    (paper section 4). The integrals are exact: Gauss-Legendre on every sub-interval of the
    union of both bases' breakpoints, with max(degree) + 1 points (products have degree
    <= 2 max(degree));
    with a Fourier basis and a polynomial one, ``degree + 1 + ceil(2 pi m L) + 20`` points per
    sub-interval of length L, m the maximal frequency, which resolves ``cos(4 pi m t)`` to
    rounding; between two Fourier bases the uniform rule with ``2 m + 1`` points, exact for
    trigonometric polynomials of frequency <= 2 m. Cached per (src, dst); read-only.

    Arguments:
        src: the basis the coefficients are in.
        dst: the target basis.

    Returns:
        float64 NumPy array of shape ``(dst.K, src.K)``.

    Examples:
        >>> import basis_ode as bo
        >>> bo.change_of_basis(bo.PiecewiseConstant(4), bo.PiecewiseConstant(2)).tolist()
        [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    _check_basis(src, "src")
    _check_basis(dst, "dst")
    return _change_of_basis(src, dst)


def project(coeffs: Coefficients, src: Basis, dst: Basis) -> NewCoefficients:
    """L2 projection of theta onto span(dst).

    Every leaf becomes ``einsum('ij,j...->i...', P, leaf)`` with ``P = change_of_basis(src, dst)``.

    Arguments:
        coeffs: pytree of leaves ``(src.K, ...)``.
        src: the basis of ``coeffs``.
        dst: the target basis.

    Returns:
        Pytree of leaves ``(dst.K, ...)`` (each leaf keeps its dtype).
    """
    _check_basis(src, "src")
    _check_basis(dst, "dst")
    check_coefficients(coeffs, src)
    return _apply_matrix(_change_of_basis(src, dst), coeffs)


@functools.lru_cache(maxsize=256)
def _interpolation_matrix(src: Basis, dst: Basis) -> np.ndarray:
    exact_nodes = dst._exact_nodes()
    V = np.stack([src._values_at(x, side) for x, side in exact_nodes])
    Phi = np.stack([dst._values_at(x, side) for x, side in exact_nodes])
    Imat = np.linalg.solve(Phi, V)
    Imat.flags.writeable = False
    return Imat


def interpolation_matrix(src: Basis, dst: Basis) -> Float[np.ndarray, "Kdst Ksrc"]:
    """Matrix of nodal interpolation from span(src) into span(dst).

    theta_src is sampled at dst's nodes ``x_i`` (as the right or left limit given by
    ``dst.node_sides``) and the dst coefficients solve ``sum_j phi^dst_j(x_i) c_j = theta(x_i)``
    (for the nodal families, piecewise constant, hat and piecewise linear, this matrix is the
    identity and the coefficients are the samples). Cached; read-only float64 ``(dst.K, src.K)``.
    """
    _check_basis(src, "src")
    _check_basis(dst, "dst")
    return _interpolation_matrix(src, dst)


def interpolate(coeffs: Coefficients, src: Basis, dst: Basis) -> NewCoefficients:
    """Nodal interpolation of theta into span(dst) (see ``interpolation_matrix``).

    Piecewise constant 2K -> K keeps every second coefficient (layer).

    Arguments:
        coeffs: pytree of leaves ``(src.K, ...)``.
        src: the basis of ``coeffs``.
        dst: the target basis.

    Returns:
        Pytree of leaves ``(dst.K, ...)``.
    """
    _check_basis(src, "src")
    _check_basis(dst, "dst")
    check_coefficients(coeffs, src)
    return _apply_matrix(_interpolation_matrix(src, dst), coeffs)


def refine(coeffs: Coefficients, basis: Basis) -> tuple[NewCoefficients, Basis]:
    """Function-preserving refinement: the same theta(t) in a finer basis of the same family.

    piecewise constant K -> 2K (each coefficient duplicated); hat K -> 2K - 1 (midpoints
    inserted as averages of neighbours; K = 1 -> 2); piecewise linear K -> 2K (each cell split,
    the midpoint value shared); Legendre, Chebyshev, Fourier K -> 2K (zero-padded). Double
    ``n_steps`` along with it to keep one step per cell.

    Arguments:
        coeffs: pytree of leaves ``(basis.K, ...)``.
        basis: the basis of ``coeffs``.

    Returns:
        ``(fine_coeffs, fine_basis)``.
    """
    _check_basis(basis, "basis")
    check_coefficients(coeffs, basis)
    fine, R = basis._refinement()
    return _apply_matrix(R, coeffs), fine
