"""Change of basis, interpolation and refinement against exact facts and independent quadrature.

The independent reference is ``ref_gram``: a composite 8-point Gauss-Legendre rule on 2520 equal
sub-intervals (2520 = lcm(1..10), so every breakpoint c/n with n <= 10 is a sub-interval end), on
the test's own NumPy basis formulas ``ref_values``. It is exact for the piecewise polynomials used
here and accurate to ~1e-15 for the Fourier terms of frequency <= 10.
"""

import functools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import basis_ode as bo
from tests._shape_checks import library_checks_only

from .test_bases import ref_values

_N_SUB = 2520
_x, _w = np.polynomial.legendre.leggauss(8)
_T = ((np.arange(_N_SUB)[:, None] + 0.5 * (_x[None, :] + 1)) / _N_SUB).ravel()
_W = np.tile(_w / (2 * _N_SUB), _N_SUB)


@functools.cache
def _ref_table(name, K):
    return ref_values(name, K, _T)


def ref_gram(a: bo.Basis, b: bo.Basis) -> np.ndarray:
    A, B = _ref_table(a.name, a.K), _ref_table(b.name, b.K)
    return (A * _W[:, None]).T @ B


def ref_eval(basis: bo.Basis, coeffs: np.ndarray, t) -> np.ndarray:
    return ref_values(basis.name, basis.K, t) @ coeffs


FAMILY_KS = {
    "piecewise_constant": [1, 2, 3, 4, 5],
    "hat": [1, 2, 3, 5],
    "piecewise_linear": [2, 4, 6],
    "legendre": [1, 2, 3, 5],
    "chebyshev": [1, 2, 4],
    "fourier": [1, 2, 3, 5],
}
ALL = [bo.basis_by_name(n, K) for n, Ks in FAMILY_KS.items() for K in Ks]
SMALL = [bo.basis_by_name(n, Ks[-2]) for n, Ks in FAMILY_KS.items()]
bases = st.sampled_from(ALL)


def test_piecewise_constant_2K_to_K_averages_pairs():
    c = np.random.default_rng(0).normal(size=(8, 3))
    out = bo.project(jnp.asarray(c), bo.PiecewiseConstant(8), bo.PiecewiseConstant(4))
    np.testing.assert_allclose(out, 0.5 * (c[0::2] + c[1::2]), rtol=0, atol=1e-14)


def test_legendre_truncation():
    P = bo.change_of_basis(bo.Legendre(6), bo.Legendre(3))
    np.testing.assert_allclose(P, np.eye(3, 6), atol=1e-14)


@pytest.mark.parametrize("basis", ALL, ids=repr)
def test_same_basis_is_identity(basis):
    np.testing.assert_array_equal(bo.change_of_basis(basis, basis), np.eye(basis.K))


def _constant_coeffs(basis: bo.Basis) -> np.ndarray:
    if basis.name in ("legendre", "chebyshev", "fourier"):
        return np.eye(basis.K)[0]
    return np.ones(basis.K)


@pytest.mark.parametrize("src", SMALL, ids=repr)
def test_constants_are_reproduced_between_all_families(src):
    for dst in SMALL:
        out = bo.change_of_basis(src, dst) @ _constant_coeffs(src)
        np.testing.assert_allclose(out, _constant_coeffs(dst), atol=1e-12, err_msg=f"{dst!r}")


@pytest.mark.parametrize(
    "src,dst",
    [
        (bo.PiecewiseConstant(3), bo.PiecewiseLinear(6)),
        (bo.PiecewiseConstant(2), bo.PiecewiseConstant(6)),
        (bo.Hat(3), bo.PiecewiseLinear(4)),
        (bo.Hat(3), bo.Hat(5)),
        (bo.Hat(2), bo.Legendre(2)),
        (bo.Legendre(2), bo.Hat(4)),
        (bo.Legendre(3), bo.Chebyshev(5)),
        (bo.Chebyshev(4), bo.Legendre(4)),
        (bo.Legendre(2), bo.PiecewiseLinear(6)),
        (bo.Fourier(3), bo.Fourier(6)),
    ],
    ids=repr,
)
def test_function_in_target_space_is_reproduced(src, dst):
    c = np.random.default_rng(3).normal(size=src.K)
    out = np.asarray(bo.project(jnp.asarray(c), src, dst))
    t = np.random.default_rng(4).uniform(0, 1, 40)
    np.testing.assert_allclose(ref_eval(dst, out, t), ref_eval(src, c, t), atol=1e-12)
    # nodal interpolation reproduces it too
    out_i = np.asarray(bo.interpolate(jnp.asarray(c), src, dst))
    np.testing.assert_allclose(ref_eval(dst, out_i, t), ref_eval(src, c, t), atol=1e-11)


@pytest.mark.parametrize("src", SMALL, ids=repr)
def test_projection_residual_is_orthogonal_to_target_space(src):
    """Galerkin condition <f - P f, phi_i^dst> = 0 with the independent reference quadrature."""
    c = np.random.default_rng(5).normal(size=src.K)
    for dst in SMALL:
        pc = bo.change_of_basis(src, dst) @ c
        resid = ref_gram(dst, src) @ c - ref_gram(dst, dst) @ pc
        np.testing.assert_allclose(resid, 0, atol=1e-12, err_msg=f"{src!r} -> {dst!r}")


def test_projection_minimises_l2_error_against_perturbations():
    src, dst = bo.Fourier(5), bo.Hat(4)
    c = np.random.default_rng(6).normal(size=src.K)
    pc = bo.change_of_basis(src, dst) @ c

    def err(d):
        return d @ ref_gram(dst, dst) @ d - 2 * d @ ref_gram(dst, src) @ c

    rng = np.random.default_rng(7)
    assert all(err(pc) < err(pc + 1e-3 * rng.normal(size=dst.K)) for _ in range(20))


def test_project_maps_every_leaf_and_keeps_dtype():
    rng = np.random.default_rng(8)
    tree = {"w": jnp.asarray(rng.normal(size=(4, 2, 3))), "b": jnp.asarray(rng.normal(size=(4,)))}
    tree["f32"] = jnp.ones((4, 5), jnp.float32)
    out = bo.project(tree, bo.Hat(4), bo.PiecewiseConstant(3))
    P = bo.change_of_basis(bo.Hat(4), bo.PiecewiseConstant(3))
    np.testing.assert_allclose(out["w"], np.einsum("ij,jkl->ikl", P, tree["w"]), atol=1e-14)
    np.testing.assert_allclose(out["b"], P @ np.asarray(tree["b"]), atol=1e-14)
    assert out["f32"].dtype == jnp.float32 and out["f32"].shape == (3, 5)
    np.testing.assert_allclose(out["f32"], 1.0, atol=1e-6)  # constants stay constant
    # usable under jit
    jit_out = jax.jit(lambda tr: bo.project(tr, bo.Hat(4), bo.PiecewiseConstant(3)))(tree)
    np.testing.assert_allclose(jit_out["w"], out["w"], atol=1e-14)


def test_evaluate_pytree_against_reference():
    rng = np.random.default_rng(13)
    basis = bo.Hat(4)
    tree = {"w": jnp.asarray(rng.normal(size=(4, 2, 3))), "b": jnp.asarray(rng.normal(size=(4,)))}
    t = rng.uniform(0, 1, 5)
    out = jax.vmap(lambda s: bo.evaluate(tree, basis, s))(jnp.asarray(t))
    phi = ref_values("hat", 4, t)
    np.testing.assert_allclose(out["w"], np.einsum("nk,kij->nij", phi, tree["w"]), atol=1e-14)
    np.testing.assert_allclose(out["b"], phi @ np.asarray(tree["b"]), atol=1e-14)


def test_change_of_basis_is_cached_readonly_float64():
    P = bo.change_of_basis(bo.Hat(5), bo.Legendre(3))
    assert P is bo.change_of_basis(bo.Hat(5), bo.Legendre(3))
    assert P.dtype == np.float64 and P.shape == (3, 5) and not P.flags.writeable


def test_interpolation_piecewise_constant_keeps_every_second_node():
    c = jnp.asarray(np.random.default_rng(9).normal(size=(12, 2)))
    for K in (6, 4, 3):  # 12 -> 6 keeps 0,2,4,..; 12 -> 4 keeps 0,3,6,9; 12 -> 3 keeps 0,4,8
        out = bo.interpolate(c, bo.PiecewiseConstant(12), bo.PiecewiseConstant(K))
        np.testing.assert_array_equal(out, c[:: 12 // K])
    out = bo.interpolate(c[:9, 0], bo.Hat(9), bo.Hat(5))
    np.testing.assert_allclose(out, c[:9:2, 0], atol=1e-15)


def test_interpolation_matches_samples_at_target_nodes():
    c = np.random.default_rng(10).normal(size=5)
    src = bo.Fourier(5)
    for dst in (bo.Legendre(4), bo.Chebyshev(5), bo.Hat(6), bo.PiecewiseLinear(4)):
        out = np.asarray(bo.interpolate(jnp.asarray(c), src, dst))
        for x, side in zip(dst.nodes, dst.node_sides):
            f_src = ref_eval(src, c, [x])
            f_dst = ref_values(dst.name, dst.K, [x], side=side) @ out
            np.testing.assert_allclose(f_dst, f_src, atol=1e-12, err_msg=f"{dst!r} at {x}")


@pytest.mark.parametrize(
    "basis,K_fine",
    [
        (bo.PiecewiseConstant(3), 6),
        (bo.Hat(4), 7),
        (bo.Hat(1), 2),
        (bo.PiecewiseLinear(4), 8),
        (bo.Legendre(3), 6),
        (bo.Chebyshev(3), 6),
        (bo.Fourier(3), 6),
    ],
    ids=repr,
)
def test_refinement_preserves_the_function(basis, K_fine):
    c = {"a": jnp.asarray(np.random.default_rng(11).normal(size=(basis.K, 2)))}
    fine_c, fine = bo.refine(c, basis)
    assert fine.K == K_fine and type(fine) is type(basis)
    assert fine_c["a"].shape == (K_fine, 2)
    t = np.random.default_rng(12).uniform(0, 1, 30)
    np.testing.assert_allclose(
        ref_eval(fine, np.asarray(fine_c["a"]), t),
        ref_eval(basis, np.asarray(c["a"]), t),
        atol=1e-13,
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: bo.project({"a": jnp.ones((3, 2)), "b": jnp.ones((4,))}, bo.Hat(3), bo.Hat(2)),
            "different leading axes",
        ),
        (lambda: bo.project(jnp.ones((5, 2)), bo.Hat(3), bo.Hat(2)), "K = 5"),
        (lambda: bo.interpolate(jnp.ones(()), bo.Hat(3), bo.Hat(2)), "leading axis"),
        (lambda: bo.refine({}, bo.Hat(3)), "no array leaves"),
        (lambda: bo.change_of_basis("hat", bo.Hat(2)), "basis_by_name"),
    ],
)
def test_bad_input_raises_clear_error(call, match):
    with library_checks_only(), pytest.raises((ValueError, TypeError), match=match):
        call()


# ---------------------------------------------------------------------------------------------
# hypothesis property tests (random basis pairs)

_settings = settings(max_examples=12, deadline=None, derandomize=True, database=None)


@_settings
@given(src=bases, dst=bases, a=st.floats(-2, 2), b=st.floats(-2, 2), seed=st.integers(0, 99))
def test_project_is_linear(src, dst, a, b, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(src.K, 2)), rng.normal(size=(src.K, 2))
    lhs = bo.project(jnp.asarray(a * x + b * y), src, dst)
    rhs = a * np.asarray(bo.project(jnp.asarray(x), src, dst)) + b * np.asarray(
        bo.project(jnp.asarray(y), src, dst)
    )
    np.testing.assert_allclose(lhs, rhs, atol=1e-11)


@_settings
@given(coarse=bases, seed=st.integers(0, 99))
def test_projection_onto_subspace_is_idempotent(coarse, seed):
    """span(coarse) is inside span(fine) for fine = refine(coarse): Pi = E P is a projector on fine
    coefficients (Pi^2 = Pi), P E = I, and Pi is M-self-adjoint (M = fine mass matrix)."""
    fine = bo.refine(jnp.zeros(coarse.K), coarse)[1]
    P = bo.change_of_basis(fine, coarse)
    E = bo.change_of_basis(coarse, fine)
    Pi = E @ P
    np.testing.assert_allclose(P @ E, np.eye(coarse.K), atol=1e-12)
    np.testing.assert_allclose(Pi @ Pi, Pi, atol=1e-12)
    M = ref_gram(fine, fine)
    np.testing.assert_allclose(M @ Pi, (M @ Pi).T, atol=1e-12)
    c = np.random.default_rng(seed).normal(size=fine.K)
    twice = bo.project(
        bo.project(bo.project(jnp.asarray(c), fine, coarse), coarse, fine), fine, coarse
    )
    np.testing.assert_allclose(twice, P @ c, atol=1e-12)


@_settings
@given(src_f=bases, src_g=bases, dst=bases, seed=st.integers(0, 99))
def test_projection_is_self_adjoint(src_f, src_g, dst, seed):
    """For the L2-orthogonal projector Pi onto span(dst): <Pi f, g> = <f, Pi g> for any f, g in
    L2; here f in span(src_f), g in span(src_g), inner products by the reference quadrature."""
    rng = np.random.default_rng(seed)
    c, d = rng.normal(size=src_f.K), rng.normal(size=src_g.K)
    Pf = bo.change_of_basis(src_f, dst) @ c
    Pg = bo.change_of_basis(src_g, dst) @ d
    lhs = Pf @ ref_gram(dst, src_g) @ d
    rhs = c @ ref_gram(src_f, dst) @ Pg
    np.testing.assert_allclose(lhs, rhs, atol=1e-11)
    # and <Pi f, h> = <f, h> for h in span(dst)
    h = rng.normal(size=dst.K)
    np.testing.assert_allclose(
        Pf @ ref_gram(dst, dst) @ h, c @ ref_gram(src_f, dst) @ h, atol=1e-11
    )
