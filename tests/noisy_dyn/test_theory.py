"""Theory of Noisy RNNs (noisy_dyn._theory), each quantity against an independent estimate.

- explicit regularizer: Monte Carlo with antithetic pairs on the core's noisy forward pass;
  Hutchinson against the covariance recursion; gradient against central finite differences;
- contraction rate and stability report: NumPy eigenvalues and norms, NumPy trajectory pairs;
- Lyapunov exponents: log-moduli of the eigenvalues of a constant step Jacobian, a Gauss-Hermite
  expectation for scalar multiplicative noise, a NumPy QR loop for a nonlinear path;
- input margin: the exact distance to an affine decision boundary, bisection along a line.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn import NoiseSample, NoisyRNNConfig, apply, init_params
from noisy_dyn._margin import _margin_over_gradient
from noisy_dyn.theory import (
    ScalarBrownian,
    contraction_rate,
    explicit_regularizer,
    input_margin,
    lyapunov_exponents,
    regularized_loss,
    regularizer_terms,
    stability_report,
)
from tests._shape_checks import library_checks_only

H, T, IN, C = 5, 8, 2, 3


def _ce(logits: np.ndarray, ys: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
    return lse - np.take_along_axis(logits, np.asarray(ys)[..., None], axis=-1)[..., 0]


def _np_matrix(M: np.ndarray, beta: float, gamma: float) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    return beta * (M - M.T) + (1 - beta) * (M + M.T) - gamma * np.eye(M.shape[0])


def _setting(noise_form: str) -> tuple:
    """A small model well away from a minimum, where the flow curvature Q is not negligible."""
    if noise_form == "ito":
        cfg = NoisyRNNConfig(
            IN, H, C, dt=0.25, sigma_add=0.005, sigma_mult=0.025, init_std=6.0, noise_form="ito"
        )
    else:
        cfg = NoisyRNNConfig(
            IN, H, C, dt=0.1, sigma_add=0.01, sigma_mult=0.3, init_std=6.0,
            noise_form="reference", learn_step=True,
        )  # fmt: skip
    params = init_params(jax.random.key(3), cfg)
    params = {**params, "U": 2 * params["U"], "V": 3 * params["V"]}
    if cfg.learn_step:  # a non-uniform learned step
        params["step"] = cfg.dt * (1 + 0.5 * jax.random.uniform(jax.random.key(4), (H,)))
    xs = jax.random.normal(jax.random.key(103), (3, T, IN))
    ys = jnp.array([0, 1, 2])
    return cfg, params, xs, ys


def _monte_carlo(cfg, params, xs, ys, *, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """E[l(noisy)] - l(inference) per example, antithetic pairs; returns (mean, standard error)."""
    B = xs.shape[0]
    xr = jnp.repeat(xs, n, axis=0)
    yr = np.repeat(np.asarray(ys), n)
    k_xi, k_u = jax.random.split(jax.random.key(seed))
    xi = jax.random.normal(k_xi, (B * n, T, H))
    if cfg.noise_form.name == "ito":
        both = jnp.concatenate([xi, -xi])
    else:
        u = jax.random.uniform(k_u, (B * n, T, H))
        both = NoiseSample(jnp.concatenate([xi, -xi]), jnp.concatenate([u, 1.0 - u]))  # same law
    losses = _ce(apply(params, jnp.concatenate([xr, xr]), cfg, noise=both), np.tile(yr, 2))
    pair = 0.5 * (losses[: B * n] + losses[B * n :])
    clean = _ce(apply(params, xs, cfg), ys)
    diff = pair.reshape(B, n) - clean[:, None]
    return diff.mean(axis=1), diff.std(axis=1, ddof=1) / np.sqrt(n)


@pytest.mark.parametrize("noise_form", ["ito", "reference"])
def test_regularizer_matches_monte_carlo(noise_form: str) -> None:
    cfg, params, xs, ys = _setting(noise_form)
    mc, se = _monte_carlo(cfg, params, xs, ys, n=60000, seed=11)
    terms = {k: np.asarray(v) for k, v in regularizer_terms(params, xs, ys, cfg).items()}
    r = np.asarray(explicit_regularizer(params, xs, ys, cfg))
    second_order = mc - terms["shift"]  # the part that R + Q must explain
    assert np.all(se < 0.02 * np.abs(second_order)), (se, mc)  # the check can resolve 5 %
    np.testing.assert_allclose(r, terms["shift"] + 0.5 * (terms["R"] + terms["Q"]), rtol=1e-12)
    np.testing.assert_allclose(r, mc, rtol=0.05)
    np.testing.assert_allclose(0.5 * (terms["R"] + terms["Q"]), second_order, rtol=0.05)
    assert np.all(terms["R"] >= 0)
    # Away from a minimum Q matters: R alone misses the Monte-Carlo value by more than 5 %.
    miss = np.abs(0.5 * terms["R"] - second_order) / np.abs(second_order)
    assert miss.max() > 0.1, miss
    if noise_form == "reference":
        assert np.all(np.abs(terms["shift"]) > 0.05 * np.abs(mc))  # the first-order shift matters
    # As a penalty: mean deterministic loss + mean r approximates the expected noisy loss.
    clean = _ce(apply(params, xs, cfg), ys)
    penalised = float(regularized_loss(params, xs, ys, cfg, 1.0))
    expected = float(np.mean(clean + mc))
    assert abs(penalised - expected) < 0.05 * abs(float(np.mean(mc))) + 4 * float(np.mean(se))


@pytest.mark.parametrize("noise_form", ["ito", "reference"])
def test_hutchinson_agrees_with_exact(noise_form: str) -> None:
    cfg, params, xs, ys = _setting(noise_form)
    exact = np.asarray(explicit_regularizer(params, xs, ys, cfg))
    keys = jax.random.split(jax.random.key(5), 1500)
    draws = jax.vmap(
        lambda k: explicit_regularizer(params, xs, ys, cfg, trace=noisy_dyn.Hutchinson(1), key=k)
    )(keys)
    draws = np.asarray(draws)
    mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / np.sqrt(len(keys))
    assert np.all(np.abs(mean - exact) < 4 * se + 1e-12), (mean, exact, se)
    assert np.all(se < 0.15 * np.abs(exact))  # the comparison is informative


def test_regularizer_is_differentiable(key: jax.Array) -> None:
    cfg, params, xs, ys = _setting("ito")
    loss = lambda p: regularized_loss(p, xs, ys, cfg, 3.0)  # noqa: E731
    grads = jax.grad(loss)(params)
    direction = jax.tree_util.tree_map(
        lambda a: jax.random.normal(jax.random.fold_in(key, a.size), a.shape), params
    )
    analytic = sum(float(jnp.vdot(grads[k], direction[k])) for k in params)
    eps = 1e-5
    shifted = lambda s: float(  # noqa: E731
        loss(jax.tree_util.tree_map(lambda p, d: p + s * d, params, direction))
    )
    numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
    assert abs(analytic - numeric) < 1e-6 * max(1.0, abs(numeric))


def test_regularizer_zero_without_noise_and_validation() -> None:
    cfg, params, xs, ys = _setting("ito")
    quiet = cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    assert np.all(np.asarray(explicit_regularizer(params, xs, ys, quiet)) == 0.0)
    with pytest.raises(ValueError, match="key"):
        explicit_regularizer(params, xs, ys, cfg, trace=noisy_dyn.Hutchinson())
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        noisy_dyn.Hutchinson(0)
    # the former spelling (method=, num_samples=) still works, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="trace="):
        with pytest.raises(ValueError, match="method"):
            explicit_regularizer(params, xs, ys, cfg, method="exactly")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="key"):
        explicit_regularizer(params, xs, ys, cfg, method="hutchinson")
    key = jax.random.key(3)
    with pytest.warns(DeprecationWarning):
        old = explicit_regularizer(params, xs, ys, cfg, method="hutchinson", key=key, num_samples=2)
    new = explicit_regularizer(params, xs, ys, cfg, trace=noisy_dyn.Hutchinson(2), key=key)
    np.testing.assert_array_equal(old, new)
    with pytest.warns(DeprecationWarning):
        old = regularized_loss(params, xs, ys, cfg, 0.5, method="exact")
    np.testing.assert_array_equal(old, regularized_loss(params, xs, ys, cfg, 0.5))
    with pytest.raises(ValueError, match="input_size"):
        explicit_regularizer(params, xs[..., :1], ys, cfg)
    with pytest.raises(ValueError, match="labels"):
        explicit_regularizer(params, xs, ys + 5, cfg)
    with library_checks_only(), pytest.raises(TypeError, match="integer"):
        explicit_regularizer(params, xs, ys.astype(float), cfg)
    with pytest.raises(ValueError, match="lam"):
        regularized_loss(params, xs, ys, cfg, -1.0)
    lstm = NoisyRNNConfig(IN, H, C, cell="lstm")
    with pytest.raises(ValueError, match="lipschitz"):
        contraction_rate(init_params(jax.random.key(0), lstm), lstm)


# ----------------------------------------------------------------------------------------------
# stability


def _contracting_setting() -> tuple:
    cfg = NoisyRNNConfig(IN, H, C, dt=0.05, gamma_a=1.5, init_std=0.5, sigma_add=0.1)
    return cfg, init_params(jax.random.key(7), cfg)


def test_contraction_rate_against_numpy_and_trajectory_pairs() -> None:
    cfg, params = _contracting_setting()
    A = _np_matrix(params["M_A"], cfg.beta, cfg.gamma_a)
    W = _np_matrix(params["M_W"], cfg.beta, cfg.gamma_w)
    mu_np = cfg.alpha * np.linalg.eigvalsh((A + A.T) / 2).max() + np.linalg.svd(W)[1].max()
    mu = float(contraction_rate(params, cfg))
    assert mu == pytest.approx(mu_np, rel=1e-10)
    assert mu < 0
    # Pairs of Euler trajectories, same input and same additive noise, different starts.
    rng = np.random.default_rng(0)
    U, b = np.asarray(params["U"]), np.asarray(params["b"])
    L = cfg.alpha * np.linalg.norm(A, 2) + np.linalg.norm(W, 2)
    rate = np.sqrt(1 + 2 * cfg.dt * mu + cfg.dt**2 * L**2)  # Euler step bound from mu and L
    assert rate < 1
    for _ in range(5):
        h, g = rng.normal(size=H) * 3, rng.normal(size=H) * 3
        d0 = np.linalg.norm(h - g)
        for k in range(200):
            x = rng.normal(size=IN)
            kick = np.sqrt(cfg.dt) * cfg.sigma_add * rng.normal(size=H)
            h = h + cfg.dt * (A @ h + np.tanh(W @ h + U @ x + b)) + kick
            g = g + cfg.dt * (A @ g + np.tanh(W @ g + U @ x + b)) + kick
            assert np.linalg.norm(h - g) <= d0 * rate ** (k + 1) * (1 + 1e-9)
        assert np.linalg.norm(h - g) <= d0 * np.exp(mu * 200 * cfg.dt) * 1.5


def test_stability_report() -> None:
    cfg, params = _contracting_setting()
    rep = stability_report(params, cfg)
    A = _np_matrix(params["M_A"], cfg.beta, cfg.gamma_a)
    W = _np_matrix(params["M_W"], cfg.beta, cfg.gamma_w)
    assert rep["mu"] == pytest.approx(float(contraction_rate(params, cfg)), rel=1e-10)
    assert rep["norm_W"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-10)
    np.testing.assert_allclose(np.sort_complex(rep["eig_A"]), np.sort_complex(np.linalg.eigvals(A)))
    assert rep["holds"] == {"deterministic_or_additive": True}
    assert "contracting" in rep["verdict"]
    # Multiplicative Ito noise: scalar vs per-unit bounds, mu > 0 stabilised only by scalar noise.
    noisy = NoisyRNNConfig(
        IN, 8, C, beta=0.0, gamma_a=0.0, gamma_w=0.0, sigma_mult=1.0, init_std=0.0
    )
    p = init_params(jax.random.key(1), noisy)
    p = {**p, "M_A": 0.2 * jnp.eye(8)}  # sym A = 0.4 I: mu = 0.4
    rep = stability_report(p, noisy)
    assert rep["mu"] == pytest.approx(0.4)
    assert rep["bounds"]["almost_sure_scalar_brownian"] == pytest.approx(0.4 - 0.5)
    assert rep["bounds"]["almost_sure_per_unit_brownian"] == pytest.approx(0.4 + 0.5 - 1 / 8)
    assert rep["bounds"]["mean_square"] == pytest.approx(1.8)
    assert rep["holds"]["almost_sure_scalar_brownian"]
    assert not rep["holds"]["almost_sure_per_unit_brownian"]
    assert "per-unit" in rep["noise"] and "stochastic stabilization" in rep["verdict"]


# ----------------------------------------------------------------------------------------------
# Lyapunov exponents


def _linear_setting(lams: np.ndarray, dt: float, **kw: object) -> tuple:
    """W = 0 (tanh term input-only) and symmetric A with eigenvalues ``lams``: constant Jacobian."""
    n = len(lams)
    cfg = NoisyRNNConfig(1, n, 2, dt=dt, beta=0.0, gamma_a=0.0, gamma_w=0.0, **kw)
    Qm, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(n, n)))
    A = Qm @ np.diag(lams) @ Qm.T
    params = init_params(jax.random.key(0), cfg)
    params = {**params, "M_A": jnp.asarray(A / 2), "M_W": jnp.zeros((n, n))}  # A = 2 M_A
    return cfg, params


def test_lyapunov_constant_jacobian() -> None:
    lams = np.array([1.5, 0.6, -0.8, -2.5])
    cfg, params = _linear_setting(lams, dt=0.1)
    xs = jax.random.normal(jax.random.key(2), (2000, 1))
    got = np.asarray(lyapunov_exponents(params, xs, cfg, k=4, burn_in=200))
    want = np.sort(np.log(np.abs(1 + cfg.dt * lams)) / cfg.dt)[::-1]
    np.testing.assert_allclose(got, want, rtol=0.01)
    top = np.asarray(lyapunov_exponents(params, xs, cfg, k=1, burn_in=200))
    np.testing.assert_allclose(top, want[:1], rtol=0.01)


def test_lyapunov_per_unit_time_with_a_learned_step_and_padding() -> None:
    """A learned step d = 2 dt: exponents log|1 + d l| / d, per unit time (not per dt)."""
    lams = np.array([0.9, -1.7])
    cfg, params = _linear_setting(lams, dt=0.05, learn_step=True)
    params = {**params, "step": jnp.full((2,), 0.1)}
    xs = jax.random.normal(jax.random.key(2), (1500, 1))
    padded = jnp.concatenate([xs, 50.0 * jnp.ones((300, 1))])  # padding must not count
    got = np.asarray(lyapunov_exponents(params, padded, cfg, k=2, burn_in=100, length=1500))
    want = np.sort(np.log(np.abs(1 + 0.1 * lams)) / 0.1)[::-1]
    np.testing.assert_allclose(got, want, rtol=0.01)


def test_lyapunov_scalar_multiplicative_noise() -> None:
    """Scalar Brownian noise commutes with A: exponents E log|1 + dt l + sqrt(dt) s xi| / dt."""
    lams, dt, s = np.array([0.3, -1.0]), 0.05, 1.2
    cfg, params = _linear_setting(lams, dt=dt, sigma_mult=s)
    n = 4000
    xs = jnp.zeros((n, 1))
    got = np.asarray(
        lyapunov_exponents(params, xs, cfg, k=2, key=jax.random.key(9), brownian=ScalarBrownian())
    )
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()
    per_step = np.log(np.abs(1 + dt * lams[:, None] + np.sqrt(dt) * s * nodes[None]))
    want = per_step @ weights / dt
    se = np.sqrt((per_step**2 @ weights) - (per_step @ weights) ** 2) / (np.sqrt(n) * dt)
    assert np.all(np.abs(got - want) < 4 * se), (got, want, se)
    assert want[0] < 0 < lams[0]  # stochastic stabilization of this mu > 0 direction
    assert want[0] == pytest.approx(lams[0] - s**2 / 2, abs=0.1)  # Ito correction -s^2/2


def test_lyapunov_against_numpy_qr_loop() -> None:
    cfg = NoisyRNNConfig(IN, 4, C, dt=0.2, init_std=8.0)
    params = init_params(jax.random.key(4), cfg)
    xs = jax.random.normal(jax.random.key(5), (300, IN))
    got = np.asarray(lyapunov_exponents(params, xs, cfg, k=3))
    A = _np_matrix(params["M_A"], cfg.beta, cfg.gamma_a)
    W = _np_matrix(params["M_W"], cfg.beta, cfg.gamma_w)
    U, b = np.asarray(params["U"]), np.asarray(params["b"])
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 3)))[0]
    h, acc = np.zeros(4), np.zeros(3)
    for x in np.asarray(xs):
        z = W @ h + U @ x + b
        J = np.eye(4) + cfg.dt * (A + (1 - np.tanh(z) ** 2)[:, None] * W)
        Q, R = np.linalg.qr(J @ Q)
        acc += np.log(np.abs(np.diag(R)))
        h = h + cfg.dt * (A @ h + np.tanh(z))
    want = np.sort(acc / (len(xs) * cfg.dt))[::-1]
    np.testing.assert_allclose(got, want, rtol=0.02, atol=2e-3)


def test_lyapunov_validation() -> None:
    cfg, params = _contracting_setting()
    xs = jnp.zeros((10, IN))
    with pytest.raises(ValueError, match="k must"):
        lyapunov_exponents(params, xs, cfg, k=H + 1)
    with pytest.raises(ValueError, match="burn_in"):
        lyapunov_exponents(params, xs, cfg, burn_in=10)
    with pytest.raises(ValueError, match="brownian"):
        lyapunov_exponents(params, xs, cfg, brownian="vector")
    with pytest.warns(DeprecationWarning, match=r"noisy_dyn\.theory\.PerUnitBrownian\(\)"):
        lyapunov_exponents(params, xs, cfg, brownian="unit")
    with library_checks_only(), pytest.raises(ValueError, match="time, input_size"):
        lyapunov_exponents(params, xs[None], cfg)


# ----------------------------------------------------------------------------------------------
# margin


def test_margin_of_affine_logits_is_distance_to_boundary() -> None:
    rng = np.random.default_rng(0)
    G, c = rng.normal(size=(4, 6, 3)), rng.normal(size=4)
    logits_fn = lambda x: jnp.einsum("ctf,tf->c", G, x) + c  # noqa: E731
    for _ in range(5):
        x = rng.normal(size=(6, 3))
        z = np.einsum("ctf,tf->c", G, x) + c
        y = int(rng.integers(4))
        j = int(np.argmax(np.where(np.arange(4) == y, -np.inf, z)))
        normal = (G[y] - G[j]).ravel()
        want = (z[y] - z[j]) / np.linalg.norm(normal)  # signed distance to {z_y = z_j}
        got = float(_margin_over_gradient(logits_fn, jnp.asarray(x), jnp.asarray(y)))
        assert got == pytest.approx(want, rel=1e-10)
    # two classes: the runner-up hyperplane is the whole decision boundary, so this is exact and
    # the foot of the perpendicular lies on it.
    G2 = G[:2]
    f2 = lambda x: jnp.einsum("ctf,tf->c", G2, x) + c[:2]  # noqa: E731
    x = rng.normal(size=(6, 3))
    m = float(_margin_over_gradient(f2, jnp.asarray(x), jnp.asarray(0)))
    normal = G2[0] - G2[1]
    foot = x - m * normal / np.linalg.norm(normal)
    z = np.einsum("ctf,tf->c", G2, foot) + c[:2]
    assert z[0] == pytest.approx(z[1], abs=1e-10)


def test_input_margin_first_order_against_bisection() -> None:
    """Near-linear regime: the estimate equals the distance to the boundary along the gradient."""
    cfg = NoisyRNNConfig(IN, H, C, dt=0.1)
    params = init_params(jax.random.key(6), cfg)
    params = {**params, "U": 0.05 * params["U"], "b": 0 * params["b"], "V": 20 * params["V"]}
    xs = 0.1 * jax.random.normal(jax.random.key(8), (4, 6, IN))
    logits = np.asarray(apply(params, xs, cfg))
    ys = jnp.asarray(np.argsort(logits, axis=1)[:, -2])  # label = runner-up: negative margins
    ys = ys.at[0].set(int(np.argmax(logits[0])))  # one correctly classified example
    got = np.asarray(input_margin(params, xs, ys, cfg))
    assert got[0] > 0 and np.all(got[1:] < 0)

    def margin(x: jax.Array, y: jax.Array) -> jax.Array:
        z = apply(params, x[None], cfg)[0]
        return z[y] - jnp.max(jnp.where(jnp.arange(C) == y, -jnp.inf, z))

    grads = np.asarray(jax.vmap(jax.grad(margin))(xs, ys))
    unit = grads / np.linalg.norm(grads.reshape(4, -1), axis=1)[:, None, None]

    def along(t: np.ndarray) -> np.ndarray:  # the margin at x_i - t_i * unit_i, all examples
        z = np.asarray(apply(params, xs - t[:, None, None] * unit, cfg))
        others = np.where(np.arange(C)[None] == np.asarray(ys)[:, None], -np.inf, z)
        return z[np.arange(4), np.asarray(ys)] - others.max(axis=1)

    sign0 = np.sign(along(np.zeros(4)))
    lo, hi = np.zeros(4), 2.0 * got  # the zero lies at t = got to first order
    assert np.all(np.sign(along(hi)) != sign0)
    for _ in range(40):  # bisection for the zero of the margin along each line
        mid = 0.5 * (lo + hi)
        same = np.sign(along(mid)) == sign0
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    np.testing.assert_allclose(0.5 * (lo + hi), got, rtol=0.02)


def test_exports() -> None:
    for name in ("explicit_regularizer", "contraction_rate", "stability_report",
                 "lyapunov_exponents", "input_margin", "regularized_loss"):  # fmt: skip
        assert callable(getattr(noisy_dyn.theory, name)) and name in noisy_dyn.theory.__all__
