"""The Lipschitz unit: structured matrices, drift, initialisation (against NumPy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn import NoisyRNNConfig
from tests._shape_checks import library_checks_only

from ._core_reference import np_lipschitz


def test_lipschitz_matrix_against_numpy_and_its_symmetric_part(key):
    M = np.asarray(jax.random.normal(key, (5, 5)))
    for beta, gamma in ((0.75, 1e-3), (0.0, 0.5), (1.0, 0.2)):
        got = np.asarray(noisy_dyn.lipschitz_matrix(M, beta, gamma))
        np.testing.assert_allclose(got, np_lipschitz(M, beta, gamma), rtol=1e-14, atol=1e-14)
        # sym(A) = (1 - beta)(M + M^T) - gamma I exactly (gamma I, not the scalar gamma)
        sym = 0.5 * (got + got.T)
        np.testing.assert_allclose(sym, (1 - beta) * (M + M.T) - gamma * np.eye(5), atol=1e-14)
    with library_checks_only(), pytest.raises(ValueError, match="square"):
        noisy_dyn.lipschitz_matrix(np.ones((2, 3)), 0.5, 0.1)


def test_drift_against_numpy_single_and_batched(key):
    cfg = NoisyRNNConfig(input_size=3, hidden_size=4, num_classes=2, alpha=0.7, beta=0.3)
    params = noisy_dyn.init_params(key, cfg, dtype=jnp.float64)
    params["M_A"] = 0.5 * params["M_A"] * 4 / 0.1  # make A, W sizeable
    params["M_W"] = 0.5 * params["M_W"] * 4 / 0.1
    k1, k2 = jax.random.split(key)
    h = jax.random.normal(k1, (6, 4))
    x = jax.random.normal(k2, (6, 3))
    P = {k: np.asarray(v) for k, v in params.items()}
    A = np_lipschitz(P["M_A"], 0.3, cfg.gamma_a)
    W = np_lipschitz(P["M_W"], 0.3, cfg.gamma_w)
    want = np.stack([0.7 * A @ hn + np.tanh(W @ hn + P["U"] @ xn + P["b"]) for hn, xn in zip(h, x)])
    np.testing.assert_allclose(noisy_dyn.drift(params, h, x, cfg), want, rtol=1e-13)
    np.testing.assert_allclose(noisy_dyn.drift(params, h[2], x[2], cfg), want[2], rtol=1e-13)


def test_init_params_keys_shapes_and_statistics(key):
    H = 64
    cfg = NoisyRNNConfig(input_size=3, hidden_size=H, num_classes=5, learn_step=True, dt=0.02)
    params = noisy_dyn.init_params(key, cfg)
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {
        "M_A": (H, H), "M_W": (H, H), "U": (H, 3), "b": (H,), "V": (5, H), "c": (5,),
        "step": (H,),
    }  # fmt: skip
    np.testing.assert_array_equal(params["step"], np.full(H, 0.02))
    # M entries ~ N(0, (0.1 / H)^2): sample std of 4096 entries within 5 % (SE is ~1.1 %)
    for name in ("M_A", "M_W"):
        m = np.asarray(params[name])
        assert abs(m.std() / (0.1 / H) - 1.0) < 0.05 and abs(m.mean()) < 4 * 0.1 / H / H
    # U uniform in +-1/sqrt(input_size), V uniform in +-1/sqrt(H)
    assert np.abs(params["U"]).max() <= 1 / np.sqrt(3) and np.abs(params["V"]).max() <= 1 / 8
    assert np.asarray(params["V"]).std() > 0.5 / 8 / np.sqrt(3)  # not degenerate
    no_step = noisy_dyn.init_params(key, cfg.replace(learn_step=False), dtype=jnp.float32)
    assert "step" not in no_step and all(v.dtype == jnp.float32 for v in no_step.values())
    with pytest.raises(TypeError, match="dtype"):
        noisy_dyn.init_params(key, cfg, dtype=jnp.int32)


def test_baseline_parameter_layouts(key):
    for cell, gates, extra in (
        ("lstm", 4, {"b": (28,)}),
        ("gru", 3, {"b_ih": (21,), "b_hh": (21,)}),
    ):
        cfg = NoisyRNNConfig(input_size=2, hidden_size=7, num_classes=3, cell=cell)
        params = jax.eval_shape(lambda k, cfg=cfg: noisy_dyn.init_params(k, cfg), key)
        want = {"W_ih": (gates * 7, 2), "W_hh": (gates * 7, 7), "V": (3, 7), "c": (3,), **extra}
        assert {k: v.shape for k, v in params.items()} == want
        # closed-form count: gates * H * (in + H + number of bias vectors) + C H + C
        n_bias = 1 if cell == "lstm" else 2
        assert noisy_dyn.count_params(params) == gates * 7 * (2 + 7 + n_bias) + 3 * 7 + 3
