"""odeint against closed forms, convergence orders, a plain ResNet loop and diffrax."""

from fractions import Fraction

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import basis_ode as bo
from tests._shape_checks import library_checks_only

from .test_bases import ref_values

F64 = jnp.float64
FIXED = ["euler", "midpoint", "rk4", "rk4_38"]

# dh/dt = theta(t) h with theta(t) = sum_k c_k P_k(2t - 1): int_0^1 theta = c_0, so
# h(1) = h0 exp(c_0) exactly.
_C = jnp.asarray([0.5, 0.3, -0.2])
_H0 = jnp.asarray([1.3, -0.4])


def _linear_field(theta, h):
    return theta * h


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("rk4", 4), ("rk4_38", 4)])
def test_convergence_order(method, order):
    assert bo.SCHEMES[method].order == order
    ns = [16, 32, 64, 128]
    exact = np.asarray(_H0) * np.exp(0.5)
    errs = []
    for n in ns:
        scheme = bo.scheme_by_name(method)  # the edge: a name -> its ButcherTableau
        h1 = bo.odeint(_linear_field, _H0, _C, bo.Legendre(3), n_steps=n, method=scheme)
        errs.append(np.max(np.abs(np.asarray(h1) - exact)))
    slope = np.polyfit(np.log(1.0 / np.asarray(ns)), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (slope, errs)


def test_butcher_tableaux_are_consistent():
    for name, tab in bo.SCHEMES.items():
        assert sum(tab.b) == 1, name
        for j, row in enumerate(tab.a):  # row sums equal the nodes
            assert sum(row, Fraction(0)) == tab.c[j], name
        if tab.order >= 2:
            assert sum(b * c for b, c in zip(tab.b, tab.c)) == Fraction(1, 2), name


def test_euler_piecewise_constant_is_a_resnet_loop():
    K, H = 5, 3
    rng = np.random.default_rng(0)
    W = rng.normal(size=(K, H, H)) / np.sqrt(H)
    b = rng.normal(size=(K, H))
    h0 = rng.normal(size=H)

    def field(theta, h):
        return jnp.tanh(theta["W"] @ h + theta["b"])

    out = bo.odeint(
        field,
        jnp.asarray(h0),
        {"W": jnp.asarray(W), "b": jnp.asarray(b)},
        bo.PiecewiseConstant(K),
        n_steps=K,
    )
    h = h0.copy()
    for k in range(K):  # the ResNet stage, float64 NumPy
        h = h + np.tanh(W[k] @ h + b[k]) / K
    np.testing.assert_allclose(out, h, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("method", FIXED)
def test_constant_field_integrates_to_one(method):
    ones = lambda theta, h: jnp.ones_like(h)  # noqa: E731
    steps = (1, 7, 49, 98, 103)

    @jax.jit
    def solve_all(h0, coeffs):  # one compiled program for all step counts
        return [
            bo.odeint(
                ones,
                h0,
                coeffs,
                bo.PiecewiseConstant(12),
                n_steps=n,
                method=bo.SCHEMES[method],
                return_stages=True,
            )
            for n in steps
        ]

    for n, sol in zip(steps, solve_all(jnp.zeros(()), jnp.zeros(12))):
        np.testing.assert_allclose(sol.h, 1.0, rtol=0, atol=1e-13)
        assert sol.stage_times.shape == (n, bo.SCHEMES[method].n_stages)
        np.testing.assert_allclose(
            sol.stage_times, bo.stage_times(n, bo.SCHEMES[method]), atol=1e-15
        )
        assert float(sol.stage_times[-1, -1]) <= 1.0


@pytest.mark.parametrize("K", [3, 12, 24, 48])
def test_every_stage_of_step_i_reads_node_i(K):
    field = lambda theta, h: (jnp.zeros_like(h), theta)  # noqa: E731

    @jax.jit
    def solve_all(nodes):  # one compiled program for all schemes
        return [
            bo.odeint(
                field,
                jnp.zeros(()),
                nodes,
                bo.PiecewiseConstant(K),
                n_steps=K,
                method=bo.SCHEMES[m],
                has_aux=True,
            )
            for m in FIXED
        ]

    for method, sol in zip(FIXED, solve_all(jnp.arange(K, dtype=jnp.float64))):
        S = bo.SCHEMES[method].n_stages
        np.testing.assert_array_equal(sol.aux, np.repeat(np.arange(K)[:, None], S, axis=1))
    # The naive float rule floor(t * K) at the right-end stage reads the next cell: the case the
    # exact integer rule exists for.
    t_end = bo.stage_times(K, bo.RK4)[:, -1]
    assert np.any(np.minimum(np.floor(t_end * K), K - 1) != np.arange(K))


def test_stage_basis_matches_odeint_stages():
    basis = bo.PiecewiseLinear(6)
    field = lambda theta, h: (jnp.zeros_like(h), theta)  # noqa: E731
    eye = jnp.eye(6)
    sol = bo.odeint(field, jnp.zeros(()), eye, basis, n_steps=6, method=bo.RK4_38, has_aux=True)
    np.testing.assert_allclose(sol.aux, bo.stage_basis(basis, 6, bo.RK4_38), atol=1e-15)
    # interior stages agree with the reference formula at the stage times
    t = bo.stage_times(6, bo.RK4_38)
    np.testing.assert_allclose(
        sol.aux[:, 1:3].reshape(-1, 6),
        ref_values("piecewise_linear", 6, t[:, 1:3].ravel()),
        atol=1e-14,
    )
    np.testing.assert_allclose(
        sol.aux[:, 3].reshape(-1, 6),
        ref_values("piecewise_linear", 6, t[:, 3], side=-1),
        atol=1e-14,
    )


@pytest.mark.parametrize(
    "basis,method",
    [(bo.PiecewiseConstant(4), diffrax.Tsit5()), (bo.Hat(5), diffrax.Dopri5())],
    ids=repr,
)
def test_adaptive_diffrax_agrees_with_fine_rk4(basis, method):
    rng = np.random.default_rng(1)
    W = jnp.asarray(rng.normal(size=(basis.K, 3, 3)))
    coeffs = {"W": W, "b": jnp.asarray(rng.normal(size=(basis.K, 3)))}

    def field(theta, h):
        return jnp.tanh(theta["W"] @ h) + theta["b"]

    h0 = jnp.asarray(rng.normal(size=3))
    ref = bo.odeint(field, h0, coeffs, basis, n_steps=256, method=bo.RK4)
    out = bo.odeint(field, h0, coeffs, basis, n_steps=4, method=method, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out, ref, atol=1e-7)


def test_gradient_matches_closed_form():
    # d h(1) / d c_0 = h0 exp(c_0) for the linear field; RK4 with 64 steps is exact to ~1e-8.
    g = jax.jit(
        jax.grad(
            lambda c: bo.odeint(_linear_field, _H0, c, bo.Legendre(3), n_steps=64, method=bo.RK4)[0]
        )
    )(_C)
    np.testing.assert_allclose(g[0], 1.3 * np.exp(0.5), rtol=1e-7)
    np.testing.assert_allclose(g[1:], 0.0, atol=1e-7)  # int P_k = 0 for k > 0


def test_jit_vmap_and_pytree_state():
    def field(theta, h):
        return {"x": theta * h["y"], "y": -theta * h["x"]}

    # theta = 1: a rotation, h(1) = R(1) h0
    c = jnp.ones(4)
    h0 = {"x": jnp.asarray([1.0, 0.0]), "y": jnp.asarray([0.0, 1.0])}
    f = jax.jit(jax.vmap(lambda h: bo.odeint(field, h, c, bo.Hat(4), n_steps=32, method=bo.RK4)))
    out = f(h0)
    np.testing.assert_allclose(out["x"], [np.cos(1.0), np.sin(1.0)], atol=1e-8)
    np.testing.assert_allclose(out["y"], [-np.sin(1.0), np.cos(1.0)], atol=1e-8)


def _count_eqns(jaxpr) -> int:
    """Equations of a jaxpr including those of every nested jaxpr (scan body, pjit, ...)."""

    def subs(p):
        if hasattr(p, "eqns"):
            yield p
        elif hasattr(p, "jaxpr") and hasattr(p.jaxpr, "eqns"):
            yield p.jaxpr
        elif isinstance(p, (tuple, list)):
            for q in p:
                yield from subs(q)

    return sum(
        1 + sum(_count_eqns(j) for v in e.params.values() for j in subs(v)) for e in jaxpr.eqns
    )


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_program_size_does_not_grow_with_n_steps(method):
    def run(n):
        def f(c, h):
            return bo.odeint(
                lambda th, x: (jnp.tanh(th * x), th),
                h,
                c,
                bo.PiecewiseConstant(8),
                n_steps=n,
                method=bo.SCHEMES[method],
                has_aux=True,
                unroll=False,
            )

        return _count_eqns(jax.make_jaxpr(f)(jnp.ones(8), jnp.ones(2)).jaxpr)

    n4, n64 = run(4), run(64)
    assert n4 == n64 and n4 > 10  # the nested scan body is counted, and does not grow


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_unrolled_loop_equals_scan_and_has_no_while(method):
    """unroll=True computes the same h(1), aux and gradient as the rolled scan, without a loop."""
    basis = bo.Hat(3)
    coeffs = {"w": jnp.linspace(-1.0, 1.0, 3 * 4, dtype=F64).reshape(3, 4)}
    h0 = jnp.linspace(0.1, 0.9, 4, dtype=F64)

    def solve(c, h, unroll):
        field = lambda th, x: (jnp.tanh(th["w"] * x), jnp.sum(x))  # noqa: E731
        sol = bo.odeint(
            field, h, c, basis, n_steps=5, method=bo.SCHEMES[method], has_aux=True, unroll=unroll
        )
        return jnp.sum(sol.h**2), sol

    outs = {}
    for unroll in (True, False):
        grad = jax.jit(jax.grad(lambda c, u=unroll: solve(c, h0, u)[0]))(coeffs)
        outs[unroll] = (solve(coeffs, h0, unroll)[1], grad)
        hlo = jax.jit(lambda c, h, u=unroll: solve(c, h, u)[0]).lower(coeffs, h0).as_text()
        assert ("while" in hlo) is (not unroll)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15),
        outs[True],
        outs[False],
    )


def test_unroll_auto_follows_the_backend():
    assert bo.resolve_unroll(None) is (jax.default_backend() == "cpu")
    assert bo.resolve_unroll(True) is True and bo.resolve_unroll(False) is False
    with library_checks_only(), pytest.raises(TypeError, match="unroll must be True, False or"):
        bo.resolve_unroll("yes")


def test_least_squares_fit_recovers_nodes_and_handles_empty_nodes():
    K = 6
    vals = jnp.arange(K, dtype=jnp.float64)
    field = lambda theta, h: (jnp.zeros_like(h), theta)  # noqa: E731
    basis = bo.PiecewiseConstant(K)
    sol = bo.odeint(field, jnp.zeros(()), vals, basis, n_steps=K, method=bo.RK4, has_aux=True)
    fit = bo.least_squares_fit(basis, sol.stage_times, sol.aux, ridge=1e-9, method=bo.RK4)
    np.testing.assert_allclose(fit, vals, atol=1e-8)
    # Without the stage grid the right-end stage would count for the next node: a biased fit.
    naive = bo.least_squares_fit(basis, sol.stage_times, sol.aux, ridge=1e-9)
    assert np.max(np.abs(np.asarray(naive) - np.asarray(vals))) > 0.1
    # Fewer steps than nodes: nodes without samples get 0, never NaN; NumPy ridge reference.
    sol2 = bo.odeint(field, jnp.zeros(()), vals, basis, n_steps=2, method=bo.EULER, has_aux=True)
    fit2 = bo.least_squares_fit(basis, sol2.stage_times, sol2.aux, ridge=1e-3, method=bo.EULER)
    Phi = ref_values("piecewise_constant", K, np.asarray(sol2.stage_times).ravel())
    Q = np.linalg.solve(Phi.T @ Phi + 1e-3 * np.eye(K), Phi.T)
    np.testing.assert_allclose(fit2, Q @ np.asarray(sol2.aux).ravel(), atol=1e-12)
    assert np.all(np.isfinite(fit2)) and float(fit2[1]) == 0.0
    # ridge = 0: pseudo-inverse, also finite.
    fit3 = bo.least_squares_fit(basis, sol2.stage_times, sol2.aux, ridge=0.0, method=bo.EULER)
    assert np.all(np.isfinite(fit3))


def test_least_squares_fit_recovers_a_polynomial_in_span():
    t = np.linspace(0, 1, 40)
    c = np.array([0.3, -1.0, 2.0, 0.5])
    y = {"a": jnp.asarray(ref_values("chebyshev", 4, t) @ c)}
    fit = bo.least_squares_fit(bo.Chebyshev(4), jnp.asarray(t), y, ridge=1e-12)
    np.testing.assert_allclose(fit["a"], c, atol=1e-8)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(coeffs={"a": jnp.ones((4, 2)), "b": jnp.ones((3,))}), ValueError, "leading axes"),
        (dict(coeffs=jnp.ones((5, 2))), ValueError, "K = 5"),
        (dict(n_steps=0), ValueError, "n_steps must be >= 1"),
        (dict(n_steps=2.0), TypeError, "Python int"),
        (dict(method="rk4"), TypeError, "scheme_by_name"),
        (dict(method=diffrax.Tsit5(), has_aux=True), ValueError, "fixed-step"),
        (dict(basis="hat"), TypeError, "basis_by_name"),
        (dict(field=lambda th, h: (h, h)), ValueError, "has_aux=True"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, exc, match):
    args = dict(
        field=lambda th, h: th * h,
        h0=jnp.ones(2),
        coeffs=jnp.ones((4, 2)),
        basis=bo.PiecewiseConstant(4),
        n_steps=4,
    )
    args.update(kwargs)
    with library_checks_only(), pytest.raises(exc, match=match):
        bo.odeint(args.pop("field"), args.pop("h0"), args.pop("coeffs"), args.pop("basis"), **args)


def test_least_squares_fit_bad_input():
    with pytest.raises(ValueError, match="stage grid"):
        bo.least_squares_fit(bo.Hat(3), jnp.zeros((4, 2)), jnp.zeros((4, 2)), method=bo.RK4)
    with pytest.raises(ValueError, match="start with the shape of times"):
        bo.least_squares_fit(bo.Hat(3), jnp.zeros((4,)), jnp.zeros((5,)))
    with pytest.raises(ValueError, match="ridge"):
        bo.least_squares_fit(bo.Hat(3), jnp.zeros((4,)), jnp.zeros((4,)), ridge=-1.0)


def test_float32_stays_float32_under_x64():
    c32 = _C.astype(jnp.float32)
    h32 = bo.odeint(
        _linear_field, _H0.astype(jnp.float32), c32, bo.Legendre(3), n_steps=16, method=bo.RK4
    )
    assert h32.dtype == jnp.float32
    np.testing.assert_allclose(h32, np.asarray(_H0) * np.exp(0.5), rtol=1e-5)


def test_scheme_by_name_is_the_edge():
    """Names map to the objects (and back); an unknown name lists the known ones."""
    for name, tab in bo.SCHEMES.items():
        assert bo.scheme_by_name(name) is tab and bo.scheme_name(tab) == name
    assert isinstance(bo.scheme_by_name("tsit5"), diffrax.Tsit5)
    assert bo.scheme_name(diffrax.Dopri5()) == "dopri5"
    with pytest.raises(ValueError, match="choose one of"):
        bo.scheme_by_name("rk45")


def test_odeint_compiles_once_per_field_shapes_and_settings():
    """Eager calls with the same field, shapes, basis, n_steps and scheme trace the field once
    (the compiled program is reused for new values); another n_steps is a new program."""
    traces = []

    def field(theta, h):
        traces.append(1)  # runs at trace time only
        return jnp.tanh(theta * h)

    c, h = jnp.ones((4, 3)), jnp.ones(3)
    first = bo.odeint(field, h, c, bo.Hat(4), n_steps=8, method=bo.RK4)
    n_traced = len(traces)
    assert n_traced > 0
    for s in (0.5, 2.0):
        out = bo.odeint(field, h * s, c * s, bo.Hat(4), n_steps=8, method=bo.RK4)
        assert not np.allclose(out, first)  # new values, the same program
    assert len(traces) == n_traced
    bo.odeint(field, h, c, bo.Hat(4), n_steps=9, method=bo.RK4)
    assert len(traces) > n_traced


def test_import_basis_ode_loads_no_plotting_or_experiment_code():
    """``import basis_ode`` (a fresh interpreter) imports no matplotlib or the drivers (tqdm, a
    dependency the training loop imports at module level, is allowed)."""
    import subprocess
    import sys

    code = (
        "import sys, basis_ode; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' "
        "or m in ('basis_ode.experiments', 'basis_ode._sweep', 'basis_ode.tagging_study')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
    # the drivers do load them
    code = "import sys, basis_ode.experiments; print('basis_ode._sweep' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "True"
