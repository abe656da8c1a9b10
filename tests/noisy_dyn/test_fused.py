"""The fused kernel (noisy_dyn._fused, the final state of apply) against plain autodiff, float64.

The reference is a lax.scan of the two noise forms written here from the paper's update
(docs/noisy_rnn.md), one row at a time and with explicit per-row masks; its gradients come from
JAX's autodiff, independent of the hand-written backward pass under test. Gradients are checked
with respect to every input the kernel differentiates: the free parameters, the learned step, the
inputs, the given noise (xi and u) and the numeric hyper-parameters (dt, beta, gammas, alpha,
sigmas).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn import NoisyRNNConfig
from noisy_dyn._fused import chunk_plan, default_chunk
from tests._shape_checks import library_checks_only

B, T, IN, H, C = 3, 11, 2, 5, 4


def _lipschitz(M, beta, gamma):
    return beta * (M - M.T) + (1.0 - beta) * (M + M.T) - gamma * jnp.eye(M.shape[0])


def _reference_final(params, xs, cfg, num, xi, u, lengths):
    """h_L of every row: a plain scan of the update, steps k >= L leave h unchanged."""
    A = _lipschitz(params["M_A"], num.beta, num.gamma_a)
    W = _lipschitz(params["M_W"], num.beta, num.gamma_w)
    d = params["step"] if cfg.learn_step else num.dt * jnp.ones(H)

    def step(h, inp):
        k, x, z, v = inp
        f = num.alpha * h @ A.T + jnp.tanh(h @ W.T + x @ params["U"].T + params["b"])
        if cfg.noise_form.name == "ito":
            new = h + d * f + jnp.sqrt(d) * (num.sigma_add + num.sigma_mult * h) * z
        else:
            m = 1.0 - num.sigma_mult + num.sigma_mult * v
            new = h + d * m * f + num.sigma_add * z
        return jnp.where((k < lengths)[:, None], new, h), None

    tm = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731
    inputs = (jnp.arange(xs.shape[1]), tm(xs), tm(xi), tm(u))
    return jax.lax.scan(step, jnp.zeros((xs.shape[0], H)), inputs)[0]


def _setup(key, **kw):
    cfg = NoisyRNNConfig(input_size=IN, hidden_size=H, num_classes=C, **kw)
    ks = jax.random.split(key, 6)
    params = noisy_dyn.init_params(ks[0], cfg)
    params["M_A"] = params["M_A"] * 30.0
    params["M_W"] = params["M_W"] * 30.0
    if cfg.learn_step:
        params["step"] = params["step"] * jnp.linspace(0.5, 2.0, H)
    xs = jax.random.normal(ks[1], (B, T, IN))
    xi = jax.random.normal(ks[2], (B, T, H))
    u = jax.random.uniform(ks[3], (B, T, H))
    probe = jax.random.normal(ks[4], (B, H))
    return cfg, params, xs, xi, u, probe


CASES = [  # (config, ragged lengths)
    (dict(noise_form="ito", sigma_add=0.3, sigma_mult=0.4, dt=0.1), False),
    (dict(noise_form="ito", sigma_add=0.3, sigma_mult=0.4, dt=0.1, learn_step=True, remat=4), True),
    (dict(noise_form="reference", sigma_add=0.2, sigma_mult=0.5, dt=0.1, learn_step=True), True),
    (dict(noise_form="reference", sigma_add=0.2, sigma_mult=0.5, learn_step=True, remat=3), False),
    (dict(noise_form="reference", sigma_add=0.2, sigma_mult=0.5, beta=1.0, alpha=0.0), True),
]
IDS = ["ito", "ito-learned-remat-lengths", "reference-learned-lengths", "reference-learned-remat",
       "alpha0-lengths"]  # fmt: skip


@pytest.mark.parametrize(("kw", "ragged"), CASES, ids=IDS)
def test_value_and_gradients_match_autodiff_of_a_plain_scan(key, kw, ragged):
    cfg, params, xs, xi, u, probe = _setup(key, **kw)
    lengths = jnp.array([T, 4, 8]) if ragged else None
    ref_lengths = jnp.array([T, 4, 8]) if ragged else jnp.full((B,), T)
    noise = (xi, u) if cfg.noise_form.name == "reference" else (xi,)

    def loss_kernel(params, xs, xi, u, num):
        n = (xi, u) if cfg.noise_form.name == "reference" else (xi,)
        h = noisy_dyn.final_state(params, xs, num, noise=n, lengths=lengths)
        return jnp.sum(probe * jnp.sin(h))  # a nonlinear read, so the adjoint is not constant

    def loss_ref(params, xs, xi, u, num):
        return jnp.sum(probe * jnp.sin(_reference_final(params, xs, cfg, num, xi, u, ref_lengths)))

    # the config itself is differentiated: its numbers are leaves
    args = (params, xs, xi, u, jax.tree_util.tree_map(jnp.asarray, cfg))
    val, grads = jax.value_and_grad(loss_kernel, argnums=(0, 1, 2, 3, 4))(*args)
    want_val, want = jax.value_and_grad(loss_ref, argnums=(0, 1, 2, 3, 4))(*args)
    np.testing.assert_allclose(val, want_val, rtol=1e-12)
    if cfg.noise_form.name == "ito":  # u is unused by the Ito form: no gradient on either side
        grads, want = grads[:3] + grads[4:], want[:3] + want[4:]
    if cfg.alpha == 0.0:  # the config drops the linear term: alpha's value does not enter
        grads, want = grads[:-1], want[:-1]
    for got, ref in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert noise  # both noise layouts were exercised


@pytest.mark.parametrize("form", ["ito", "reference"])
def test_key_draws_are_the_draws_of_sample_noise_on_every_path(key, form):
    cfg, params, xs, *_ = _setup(key, noise_form=form, sigma_add=0.2, sigma_mult=0.3, dt=0.1)
    k = jax.random.key(7)
    sample = noisy_dyn.random.sample_noise(k, cfg, batch=B, time=T)
    h_key = noisy_dyn.final_state(params, xs, cfg, key=k)
    np.testing.assert_allclose(h_key, noisy_dyn.final_state(params, xs, cfg, noise=sample),
                               atol=1e-14)  # fmt: skip
    for remat in (None, 4):  # trajectory (plain scan), with and without chunking
        traj = noisy_dyn.trajectory(params, xs, cfg.replace(remat=remat), key=k)
        np.testing.assert_allclose(traj[:, -1], h_key, atol=1e-14)
    assert not np.allclose(h_key, noisy_dyn.final_state(params, xs, cfg))


def test_gradient_under_key_noise_matches_given_noise_with_remat(key):
    cfg, params, xs, *_ = _setup(key, noise_form="reference", sigma_add=0.2, sigma_mult=0.3,
                                 learn_step=True, remat=4)  # fmt: skip
    k = jax.random.key(3)
    sample = noisy_dyn.random.sample_noise(k, cfg, batch=B, time=T)
    loss = lambda p, **kw: jnp.sum(noisy_dyn.apply(p, xs, cfg, **kw) ** 2)  # noqa: E731
    g_key = jax.grad(loss)(params, key=k)
    g_given = jax.grad(loss)(params, noise=sample)
    for a, b in zip(jax.tree_util.tree_leaves(g_key), jax.tree_util.tree_leaves(g_given)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_vmap_over_stacked_configs_equals_separate_calls(key):
    cfg, params, xs, *_ = _setup(key, noise_form="reference", sigma_add=0.2, sigma_mult=0.3,
                                 learn_step=True)  # fmt: skip
    k = jax.random.key(5)
    members = [cfg, cfg.replace(sigma_add=0.05, sigma_mult=0.1, beta=0.6)]
    stacked = noisy_dyn.stack_configs(members)
    assert stacked.sigma_add.shape == (2,) and stacked.noise_form == cfg.noise_form

    def loss(p, c):
        return jnp.sum(noisy_dyn.apply(p, xs, c, key=k) ** 2)

    vals, grads = jax.jit(jax.vmap(jax.value_and_grad(loss), in_axes=(None, 0)))(params, stacked)
    logits = jax.vmap(lambda c: noisy_dyn.apply(params, xs, c))(stacked)  # the user's spelling
    for i, member in enumerate(members):
        v, g = jax.value_and_grad(loss)(params, member)  # one call per config, concrete values
        np.testing.assert_allclose(vals[i], v, rtol=1e-12)
        np.testing.assert_allclose(logits[i], noisy_dyn.apply(params, xs, member), rtol=1e-12)
        for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(g)):
            np.testing.assert_allclose(a[i], b, rtol=1e-10, atol=1e-13)


def test_stacking_refuses_configs_of_different_structure():
    a = NoisyRNNConfig(1, 4, 2, sigma_add=0.1)
    with pytest.raises(ValueError, match="noise_form"):
        noisy_dyn.stack_configs([a, a.replace(noise_form="reference")])
    with library_checks_only(), pytest.raises(TypeError, match="sequence"):
        noisy_dyn.stack_configs(a)


def test_hessian_and_jvp_of_grad_work_jacfwd_does_not(key):
    cfg, params, xs, xi, _, probe = _setup(key, sigma_add=0.3, sigma_mult=0.4, dt=0.1)
    b0 = params["b"]

    def loss(b, final):
        h = final({**params, "b": b}, xs, cfg, noise=xi)
        return jnp.sum(probe * jnp.sin(h))

    want = jax.hessian(lambda b: loss(b, _plain_final))(b0)
    got = jax.hessian(lambda b: loss(b, noisy_dyn.final_state))(b0)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    v = jnp.arange(H, dtype=b0.dtype)
    hvp = jax.jvp(jax.grad(lambda b: loss(b, noisy_dyn.final_state)), (b0,), (v,))[1]
    np.testing.assert_allclose(hvp, want @ v, rtol=1e-9, atol=1e-12)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jacfwd(lambda b: loss(b, noisy_dyn.final_state))(b0)


def _plain_final(params, xs, cfg, **kw):
    return noisy_dyn.trajectory(params, xs, cfg, **kw)[:, -1]


@pytest.mark.parametrize(("time", "chunk", "pad"), [(5, 5, 0), (784, 16, 0), (37, 16, 11)])
def test_chunk_plan(time, chunk, pad):
    assert default_chunk(time) == chunk
    assert chunk_plan(time, None) == (chunk, pad)
    assert chunk_plan(10, 4) == (4, 2)
