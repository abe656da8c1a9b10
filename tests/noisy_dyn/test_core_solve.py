"""The integrator: forward passes against float64 NumPy loops, noise statistics, strong order,
jit/vmap/grad, finite differences, remat, and eager input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import stats

import noisy_dyn
import noisy_dyn._solve as solve_module
from noisy_dyn import NoiseSample, NoisyRNNConfig
from tests._shape_checks import library_checks_only

from ._core_reference import np_lipschitz_rnn

B, T, IN, H, C = 3, 7, 2, 5, 4


def _model(key, **kw):
    cfg = NoisyRNNConfig(input_size=IN, hidden_size=H, num_classes=C, **kw)
    kp, kx, kn = jax.random.split(key, 3)
    params = noisy_dyn.init_params(kp, cfg)
    # larger recurrent weights than the default init, so A h and W h matter in the comparison
    params["M_A"] = params["M_A"] * 30.0
    params["M_W"] = params["M_W"] * 30.0
    if cfg.learn_step:
        params["step"] = params["step"] * jnp.linspace(0.5, 2.0, H)
    xs = jax.random.normal(kx, (B, T, IN))
    return cfg, params, xs, kn


@pytest.mark.parametrize(
    "kw",
    [
        dict(dt=0.1),
        dict(dt=0.1, learn_step=True, noise_form="reference", sigma_add=0.3, sigma_mult=0.4),
        dict(dt=0.2, beta=1.0, alpha=0.0, gamma_a=1e-4, gamma_w=1e-4),
    ],
    ids=["lipschitz", "learned-step", "antisymmetric"],
)
def test_deterministic_forward_against_numpy_loop(key, kw):
    cfg, params, xs, _ = _model(key, **kw)
    want_states, want_logits = np_lipschitz_rnn(params, xs, cfg)  # no noise: inference
    np.testing.assert_allclose(noisy_dyn.trajectory(params, xs, cfg), want_states, atol=1e-13)
    if cfg.learn_step:  # the read-out paths, once
        np.testing.assert_allclose(noisy_dyn.apply(params, xs, cfg), want_logits, rtol=1e-12)
        np.testing.assert_allclose(
            noisy_dyn.final_state(params, xs, cfg), want_states[:, -1], atol=1e-13
        )


def test_ito_form_with_given_noise_against_numpy_loop(key):
    cfg, params, xs, kn = _model(key, dt=0.1, sigma_add=0.3, sigma_mult=0.5, learn_step=True)
    xi = np.asarray(jax.random.normal(kn, (B, T, H)))
    want_states, want_logits = np_lipschitz_rnn(params, xs, cfg, xi=xi)
    np.testing.assert_allclose(noisy_dyn.trajectory(params, xs, cfg, noise=xi), want_states,
                               atol=1e-13)  # fmt: skip
    np.testing.assert_allclose(noisy_dyn.apply(params, xs, cfg, noise=xi), want_logits, rtol=1e-12)


def test_reference_form_with_given_noise_against_numpy_loop(key):
    cfg, params, xs, kn = _model(
        key, dt=0.1, noise_form="reference", learn_step=True, sigma_add=0.05, sigma_mult=0.3
    )
    k1, k2 = jax.random.split(kn)
    xi = np.asarray(jax.random.normal(k1, (B, T, H)))
    u = np.asarray(jax.random.uniform(k2, (B, T, H)))
    want_states, want_logits = np_lipschitz_rnn(params, xs, cfg, xi=xi, u=u)
    got = noisy_dyn.trajectory(params, xs, cfg, noise=NoiseSample(xi, u))
    np.testing.assert_allclose(got, want_states, atol=1e-13)
    np.testing.assert_allclose(noisy_dyn.apply(params, xs, cfg, noise=(xi, u)), want_logits,
                               rtol=1e-12)  # fmt: skip


@pytest.mark.parametrize("form", ["ito", "reference"])
def test_key_draws_equal_sample_noise_and_single_steps(key, form):
    cfg, params, xs, kn = _model(key, dt=0.1, noise_form=form, sigma_add=0.2, sigma_mult=0.3)
    sample = noisy_dyn.random.sample_noise(kn, cfg, batch=B, time=T)
    assert (sample.u is None) == (form == "ito")
    traj = noisy_dyn.trajectory(params, xs, cfg, key=kn)
    np.testing.assert_allclose(traj, noisy_dyn.trajectory(params, xs, cfg, noise=sample),
                               atol=1e-14)  # fmt: skip
    assert not np.allclose(traj, noisy_dyn.trajectory(params, xs, cfg))  # noise is on with a key
    # the public one-step function reproduces every step of the scan
    k = 4
    u_k = None if sample.u is None else sample.u[:, k]
    h_next = noisy_dyn.euler_maruyama_step(params, traj[:, k], xs[:, k], cfg, sample.xi[:, k], u_k)
    np.testing.assert_allclose(h_next, traj[:, k + 1], atol=1e-14)


def test_step_noise_is_standard_normal_and_uniform_and_independent(key):
    cfg = NoisyRNNConfig(input_size=1, hidden_size=16, num_classes=2, noise_form="reference",
                         sigma_add=0.1, sigma_mult=0.1)  # fmt: skip
    s = noisy_dyn.random.sample_noise(key, cfg, batch=50, time=40)
    xi, u = np.asarray(s.xi), np.asarray(s.u)
    assert xi.shape == u.shape == (50, 40, 16)
    assert stats.kstest(xi.ravel(), "norm").pvalue > 1e-3
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-3
    # independence across batch, steps and units: sample correlations at the 1/sqrt(n) scale
    n = xi[:, :, 0].size
    for a, b in ((xi[0], xi[1]), (xi[:, 0], xi[:, 1]), (xi[..., 0], xi[..., 1])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(min(a.size, n))
    assert abs(np.corrcoef(xi.ravel(), u.ravel())[0, 1]) < 5 / np.sqrt(xi.size)


def test_reference_form_mean_step_and_additive_scale_by_monte_carlo(key):
    """One step from h_0 = 0, where f = tanh(U x + b) is known: the increment is d m f +
    sigma_a xi. Mean step d (1 - sigma_m / 2); additive std sigma_a (no sqrt(dt));
    the Ito form's additive std is sigma_a sqrt(dt)."""
    n, Hm, dt = 4000, 8, 0.1
    base = dict(input_size=1, hidden_size=Hm, num_classes=2, dt=dt)
    xs = jnp.ones((n, 1, 1))
    k1, k2, k3, k4 = jax.random.split(key, 4)

    cfg = NoisyRNNConfig(**base, noise_form="reference", sigma_mult=0.5)
    params = noisy_dyn.init_params(k1, cfg)
    f0 = np.tanh(np.asarray(params["U"])[:, 0] + np.asarray(params["b"]))
    steps = np.asarray(noisy_dyn.final_state(params, xs, cfg, key=k2)) / f0  # d * m
    se = dt * 0.5 / np.sqrt(12) / np.sqrt(steps.size)
    assert abs(steps.mean() - dt * (1 - 0.5 / 2)) < 4 * se
    assert steps.min() >= dt * 0.5 - 1e-12 and steps.max() < dt
    np.testing.assert_allclose(noisy_dyn.final_state(params, xs, cfg), dt * f0[None].repeat(n, 0))

    for form, sa, want_std, kk in (("reference", 0.3, 0.3, k3), ("ito", 0.3, 0.3 * dt**0.5, k4)):
        cfg = NoisyRNNConfig(**base, noise_form=form, sigma_add=sa)
        kick = np.asarray(noisy_dyn.final_state(params, xs, cfg, key=kk)) - dt * f0
        assert abs(kick.mean()) < 4 * want_std / np.sqrt(kick.size)
        assert abs(kick.std() / want_std - 1) < 0.03  # SE of a sample std here: ~0.4 %


def test_ito_scheme_has_strong_order_one_half(key):
    """Strong error E|h_N - h_ref(1)| on one Brownian path per sample: the reference is fine
    Euler-Maruyama (2^10 steps), the coarse runs use the summed fine increments."""
    n_paths, n_fine, Hs = 1000, 1024, 2
    levels = (8, 16, 32, 64)
    kp, kn = jax.random.split(key)
    cfg_fine = NoisyRNNConfig(input_size=1, hidden_size=Hs, num_classes=1, dt=1.0 / n_fine,
                              sigma_add=0.5, sigma_mult=1.5)  # fmt: skip
    params = noisy_dyn.init_params(kp, cfg_fine)
    params["M_W"] = jnp.array([[0.3, -1.0], [0.8, 0.2]])
    params["M_A"] = jnp.array([[-0.5, 0.6], [-0.2, -0.4]])
    xi_fine = jax.random.normal(kn, (n_paths, n_fine, Hs))
    dW = xi_fine / np.sqrt(n_fine)
    h_ref = noisy_dyn.final_state(params, jnp.ones((n_paths, n_fine, 1)), cfg_fine, noise=xi_fine)
    errors = []
    for n in levels:
        cfg = cfg_fine.replace(dt=1.0 / n)
        xi = dW.reshape(n_paths, n, n_fine // n, Hs).sum(axis=2) * np.sqrt(n)
        h = noisy_dyn.final_state(params, jnp.ones((n_paths, n, 1)), cfg, noise=xi)
        errors.append(float(jnp.mean(jnp.linalg.norm(h - h_ref, axis=-1))))
    slope = np.polyfit(np.log(1.0 / np.asarray(levels)), np.log(errors), 1)[0]
    assert abs(slope - 0.5) < 0.2, (slope, errors)


def test_jit_vmap_and_grad_against_central_finite_differences(key):
    cfg, params, xs, kn = _model(
        key, dt=0.1, noise_form="reference", learn_step=True, sigma_add=0.1, sigma_mult=0.3
    )
    noise = noisy_dyn.random.sample_noise(kn, cfg, batch=B, time=T)
    weights = jax.random.normal(kn, (B, C))

    def loss(p):
        return jnp.sum(weights * jnp.tanh(noisy_dyn.apply(p, xs, cfg, noise=noise)))

    theta, unravel = ravel_pytree(params)
    grad = ravel_pytree(jax.jit(jax.grad(loss))(params))[0]
    eps = 1e-6
    directions = jnp.eye(theta.size)
    plus = jax.vmap(lambda e: loss(unravel(theta + eps * e)))(directions)
    minus = jax.vmap(lambda e: loss(unravel(theta - eps * e)))(directions)
    np.testing.assert_allclose(grad, (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-9)
    # (jit: the jitted gradient above; vmap: the finite differences run vmapped over params)


def test_remat_gives_the_same_values_and_gradients(key):
    cfg, params, xs, kn = _model(key, dt=0.1, sigma_add=0.2, sigma_mult=0.3)
    chunked = cfg.replace(remat=3)  # 3 does not divide T = 7: two chunks and a remainder

    def loss(p, c):
        return jnp.sum(noisy_dyn.apply(p, xs, c, key=kn) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    (want_value, want), (value, got) = value_and_grad(params, cfg), value_and_grad(params, chunked)
    np.testing.assert_allclose(value, want_value, rtol=1e-13)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-14)


def test_float32_inputs_stay_float32(key):
    cfg, params, xs, kn = _model(key, dt=0.1, sigma_add=0.1)
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    noise = noisy_dyn.random.sample_noise(kn, cfg, batch=B, time=T)  # float64 draws, cast inside
    out = noisy_dyn.apply(p32, xs.astype(jnp.float32), cfg, noise=noise)
    assert out.dtype == jnp.float32
    want = noisy_dyn.apply(params, xs, cfg, noise=noise)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
    assert noisy_dyn.apply(p32, xs.astype(jnp.float32), cfg, key=kn).dtype == jnp.float32


def test_bad_input_is_rejected_before_tracing(key, monkeypatch):
    cfg, params, xs, kn = _model(key, dt=0.1, sigma_add=0.1)

    def no_tracing(*args, **kwargs):
        raise AssertionError("traced before validation")

    monkeypatch.setattr(solve_module, "_run", no_tracing)
    other = noisy_dyn.init_params(key, cfg.replace(hidden_size=H + 1))
    cases = [
        (ValueError, "rank 2", dict(xs=xs[0])),
        (ValueError, "input_size", dict(xs=jnp.ones((B, T, IN + 1)))),
        (TypeError, "floating", dict(xs=jnp.ones((B, T, IN), dtype=jnp.int32))),
        (TypeError, "complex", dict(xs=jnp.ones((B, T, IN), dtype=jnp.complex64))),
        (ValueError, "shape", dict(params=other)),
        (ValueError, "missing keys", dict(params={k: v for k, v in params.items() if k != "U"})),
        (ValueError, "noise.xi must have shape", dict(noise=jnp.ones((B, T, H + 1)))),
        (ValueError, "not both", dict(noise=jnp.ones((B, T, H)), key=kn)),
        (TypeError, "PRNG key", dict(key=3)),
        (TypeError, "NoisyRNNConfig", dict(cfg={"dt": 0.1})),
    ]
    for error, match, kw in cases:
        args = dict(params=params, xs=xs, cfg=cfg) | kw
        p, x, c = args.pop("params"), args.pop("xs"), args.pop("cfg")
        # the library's own messages: the shape checks of the test run would refuse first
        with library_checks_only(), pytest.raises(error, match=match):
            noisy_dyn.apply(p, x, c, **args)
    ref = cfg.replace(noise_form="reference", sigma_mult=0.2)
    with pytest.raises(ValueError, match="noise.u is None"):
        noisy_dyn.trajectory(params, xs, ref, noise=jnp.ones((B, T, H)))
