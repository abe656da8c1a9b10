"""Basis families: values against independent NumPy formulas, Gram matrices against scipy quad.

The ``ref_values`` functions below are the test's own float64 reference implementations of every
family (written from the definitions in docs/basis_ode.md, not from the library), reused by the
projection tests.
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
from numpy.polynomial import chebyshev as npcheb
from numpy.polynomial import legendre as npleg

import basis_ode as bo
from tests._shape_checks import library_checks_only


def ref_values(name: str, K: int, t, side: int = +1) -> np.ndarray:
    """float64 (len(t), K) values of basis ``name`` with K functions at points t.

    ``side`` = +1 reads right limits at breakpoints, -1 left limits (t = 0 / 1 are clamped).
    """
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    out = np.zeros((t.size, K))
    if name in ("piecewise_constant", "piecewise_linear", "hat"):
        n = {"piecewise_constant": K, "piecewise_linear": K // 2, "hat": max(K - 1, 1)}[name]
        x = t * n
        cell = np.floor(x) if side > 0 else np.ceil(x) - 1
        cell = np.clip(cell, 0, n - 1).astype(int)
        s = x - cell
        rows = np.arange(t.size)
        if name == "piecewise_constant":
            out[rows, cell] = 1.0
        elif name == "piecewise_linear":
            out[rows, 2 * cell], out[rows, 2 * cell + 1] = 1 - s, s
        elif K == 1:
            out[:, 0] = 1.0
        else:  # hat: np.interp of the unit vectors on the nodes
            nodes = np.linspace(0.0, 1.0, K)
            out[:] = np.stack([np.interp(t, nodes, np.eye(K)[k]) for k in range(K)], axis=-1)
        return out
    x = 2 * t - 1
    for k in range(K):
        e = np.eye(K)[k]
        if name == "legendre":
            out[:, k] = npleg.legval(x, e)
        elif name == "chebyshev":
            out[:, k] = npcheb.chebval(x, e)
        elif name == "fourier":
            m = (k + 1) // 2
            out[:, k] = 1.0 if k == 0 else (np.cos if k % 2 else np.sin)(2 * np.pi * m * t)
    return out


def ref_breakpoints(name: str, K: int) -> list[float]:
    n = {"piecewise_constant": K, "piecewise_linear": K // 2, "hat": max(K - 1, 1)}.get(name, 1)
    return list(np.arange(1, n) / n)


FAMILIES = [
    ("piecewise_constant", 3),
    ("hat", 4),
    ("hat", 1),
    ("piecewise_linear", 4),
    ("legendre", 5),
    ("chebyshev", 4),
    ("fourier", 5),
    ("fourier", 4),
]


@pytest.mark.parametrize("name,K", FAMILIES)
def test_values_match_reference_formulas(name, K):
    basis = bo.basis_by_name(name, K)
    t = np.random.default_rng(1).uniform(0, 1, 37)
    got = np.asarray(jax.jit(jax.vmap(basis))(jnp.asarray(t)))
    np.testing.assert_allclose(got, ref_values(name, K, t), rtol=0, atol=1e-13)
    # t = 1 reads the left limit; t = 0 the right limit.
    np.testing.assert_allclose(basis(1.0), ref_values(name, K, [1.0], side=-1)[0], atol=1e-13)
    np.testing.assert_allclose(basis(0.0), ref_values(name, K, [0.0])[0], atol=1e-13)


def test_values_at_known_points():
    np.testing.assert_array_equal(bo.PiecewiseConstant(4)(0.3), [0, 1, 0, 0])
    np.testing.assert_array_equal(bo.PiecewiseConstant(4)(0.5), [0, 0, 1, 0])  # right limit
    np.testing.assert_array_equal(bo.PiecewiseConstant(4)(1.0), [0, 0, 0, 1])  # left limit at 1
    np.testing.assert_allclose(bo.Hat(5)(0.3), [0, 0.8, 0.2, 0, 0], atol=1e-15)
    np.testing.assert_allclose(bo.Hat(5)(0.75), [0, 0, 0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(bo.PiecewiseLinear(4)(0.3), [0.4, 0.6, 0, 0], atol=1e-15)
    np.testing.assert_allclose(bo.Legendre(3)(1.0), [1, 1, 1])  # P_k(1) = 1
    np.testing.assert_allclose(bo.Legendre(3)(0.0), [1, -1, 1])  # P_k(-1) = (-1)^k
    np.testing.assert_allclose(bo.Legendre(3)(0.5), [1, 0, -0.5])  # P_2(0) = -1/2
    np.testing.assert_allclose(bo.Chebyshev(4)(0.75), [1, 0.5, -0.5, -1])  # T_k(1/2) = cos(k pi/3)
    np.testing.assert_allclose(bo.Fourier(3)(0.25), [1, 0, 1], atol=1e-15)
    np.testing.assert_allclose(bo.Fourier(4)(0.5), [1, -1, 0, 1], atol=1e-15)


@pytest.mark.parametrize("name,K", [("piecewise_constant", 5), ("hat", 6), ("piecewise_linear", 6)])
def test_partition_of_unity(name, K):
    t = jnp.asarray(np.random.default_rng(2).uniform(0, 1, 50))
    np.testing.assert_allclose(jax.vmap(bo.basis_by_name(name, K))(t).sum(-1), 1.0, atol=1e-14)


def _quad(f, points):
    val, err = scipy.integrate.quad(f, 0.0, 1.0, points=points or None, limit=200, epsabs=1e-13)
    return val


@pytest.mark.parametrize(
    "a,b",
    [
        (("piecewise_constant", 3), None),
        (("hat", 4), None),
        (("piecewise_linear", 4), None),
        (("legendre", 4), None),
        (("chebyshev", 4), None),
        (("fourier", 5), None),
        (("hat", 3), ("piecewise_constant", 4)),
        (("legendre", 3), ("piecewise_linear", 6)),
        (("fourier", 4), ("hat", 4)),
        (("chebyshev", 3), ("fourier", 3)),
    ],
)
def test_gram_matrix_against_scipy_quad(a, b):
    b = a if b is None else b
    A, B = bo.basis_by_name(*a), bo.basis_by_name(*b)
    points = sorted(set(ref_breakpoints(*a)) | set(ref_breakpoints(*b)))
    ref = np.empty((A.K, B.K))
    for i in range(A.K):
        for j in range(B.K):
            ref[i, j] = _quad(
                lambda t, i=i, j=j: ref_values(*a, [t])[0, i] * ref_values(*b, [t])[0, j], points
            )
    np.testing.assert_allclose(bo.gram_matrix(A, B), ref, rtol=0, atol=1e-11)


def test_orthogonality_closed_forms():
    np.testing.assert_allclose(
        bo.gram_matrix(bo.Legendre(5)), np.diag(1.0 / (2 * np.arange(5) + 1)), atol=1e-15
    )
    np.testing.assert_allclose(
        bo.gram_matrix(bo.Fourier(5)), np.diag([1, 0.5, 0.5, 0.5, 0.5]), atol=1e-15
    )
    np.testing.assert_allclose(bo.gram_matrix(bo.PiecewiseConstant(4)), np.eye(4) / 4, atol=1e-16)


def test_structure_attributes():
    assert bo.Hat(5).n_cells == 4 and bo.Hat(5).degree == 1 and bo.Hat(1).degree == 0
    np.testing.assert_allclose(bo.Hat(5).nodes, np.linspace(0, 1, 5))
    np.testing.assert_allclose(bo.PiecewiseConstant(4).nodes, np.arange(4) / 4)
    assert bo.PiecewiseLinear(6).breakpoints == tuple(Fraction(c, 3) for c in range(4))
    assert bo.Legendre(7).degree == 6 and bo.Legendre(7).breakpoints == (0, 1)
    assert bo.Fourier(7).degree is None and bo.Fourier(7).frequency == 3
    assert bo.PiecewiseLinear(6).node_sides == (1, -1, 1, -1, 1, -1)


def test_hashable_static_and_by_name():
    assert bo.PiecewiseConstant(3) == bo.PiecewiseConstant(3)
    assert bo.PiecewiseConstant(3) != bo.Hat(3)
    assert len({bo.PiecewiseConstant(3), bo.PiecewiseConstant(3), bo.Hat(3)}) == 2
    for name, cls in bo.BASES.items():
        assert bo.basis_by_name(name, 4) == cls(4)
    # A basis can be a static argument of jit.
    f = jax.jit(lambda t, basis: basis(t), static_argnums=1)
    np.testing.assert_array_equal(f(0.6, bo.PiecewiseConstant(5)), [0, 0, 0, 1, 0])
    with pytest.raises(AttributeError):
        bo.Hat(3).K = 4


def test_local_values_and_at_step_read_one_sided_limits():
    pc = bo.PiecewiseConstant(4)
    # cell 1 at its right end (s = 1) is the left limit at t = 1/2: still node 1.
    np.testing.assert_array_equal(pc.local_values(1, 1.0), [0, 1, 0, 0])
    np.testing.assert_array_equal(pc(0.5), [0, 0, 1, 0])
    # step 1 of 4, stage c = 1 (t = 1/2): left limit; stage c = 1/2 of step 1: t = 3/8.
    np.testing.assert_array_equal(pc.at_step(1, 4, Fraction(1)), [0, 1, 0, 0])
    np.testing.assert_array_equal(pc.at_step(2, 4, Fraction(0)), [0, 0, 1, 0])
    # one step over [0, 1] with K = 2: the midpoint stage sits on the breakpoint 1/2, right limit.
    np.testing.assert_array_equal(bo.PiecewiseConstant(2).at_step(0, 1, Fraction(1, 2)), [0, 1])
    pl = bo.PiecewiseLinear(4)
    np.testing.assert_allclose(pl.at_step(0, 2, Fraction(1)), [0, 1, 0, 0])
    np.testing.assert_allclose(pl.at_step(1, 2, Fraction(0)), [0, 0, 1, 0])
    # Traced step index under jit: the same values.
    at = jax.jit(lambda i: pc.at_step(i, 4, Fraction(1)))
    np.testing.assert_array_equal(at(jnp.asarray(3)), [0, 0, 0, 1])


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: bo.PiecewiseLinear(3), ValueError, "even"),
        (lambda: bo.PiecewiseConstant(0), ValueError, ">= 1"),
        (lambda: bo.Legendre(2.0), TypeError, "int"),
        (lambda: bo.Hat(True), TypeError, "int"),
        (lambda: bo.basis_by_name("spline", 3), ValueError, "choose one of"),
    ],
)
def test_impossible_bases_raise(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_scalar_time_required():
    with library_checks_only(), pytest.raises(ValueError, match="vmap"):
        bo.Hat(3)(jnp.zeros(2))
