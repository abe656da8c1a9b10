"""The Flax NNX and Equinox faces give the logits of the pure `apply` for the same weights."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import noisy_dyn
from noisy_dyn.nn import EqxNoisyRNN, NoisyRNN

from ._core_reference import np_lipschitz_rnn


def _setup(key):
    cfg = noisy_dyn.preset("nrnn_reference", input_size=2, num_classes=3, hidden_size=4, dt=0.1)
    kp, kx, kn = jax.random.split(key, 3)
    params = noisy_dyn.init_params(kp, cfg)
    xs = jax.random.normal(kx, (3, 5, 2))
    return cfg, params, xs, kn


def test_nnx_module_matches_apply_and_numpy(key):
    cfg, params, xs, kn = _setup(key)
    model = NoisyRNN(cfg, params=params)
    _, want = np_lipschitz_rnn(params, xs, cfg)
    np.testing.assert_allclose(model(xs), want, rtol=1e-12)
    np.testing.assert_allclose(model(xs, key=kn), noisy_dyn.apply(params, xs, cfg, key=kn))
    fresh = NoisyRNN(cfg, rngs=nnx.Rngs(0))
    assert noisy_dyn.count_params(fresh.param_dict()) == noisy_dyn.count_params(params)

    # gradients through nnx equal gradients of the pure function
    def loss_module(m):
        return jnp.sum(m(xs) ** 2)

    grads = nnx.grad(loss_module)(model)
    want_grads = jax.grad(lambda p: jnp.sum(noisy_dyn.apply(p, xs, cfg) ** 2))(params)
    np.testing.assert_allclose(grads.M_W[...], want_grads["M_W"], rtol=1e-10)


def test_equinox_module_matches_apply_single_and_batched(key):
    cfg, params, xs, kn = _setup(key)
    model = EqxNoisyRNN(cfg, params=params)
    want = noisy_dyn.apply(params, xs, cfg)
    np.testing.assert_allclose(model(xs), want, rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(model)(xs), want, rtol=1e-13)  # Equinox convention
    noise = noisy_dyn.random.sample_noise(kn, cfg, batch=3, time=5)
    one = noisy_dyn.NoiseSample(noise.xi[1], noise.u[1])
    np.testing.assert_allclose(
        model(xs[1], noise=one), noisy_dyn.apply(params, xs, cfg, noise=noise)[1], rtol=1e-13
    )
    grads = eqx.filter_grad(lambda m: jnp.sum(m(xs) ** 2))(model)
    want_grads = jax.grad(lambda p: jnp.sum(noisy_dyn.apply(p, xs, cfg) ** 2))(params)
    np.testing.assert_allclose(grads.params["step"], want_grads["step"], rtol=1e-10)
    assert EqxNoisyRNN(cfg, key=key).params.keys() == params.keys()
