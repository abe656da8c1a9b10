"""LSTM and GRU baselines against NumPy re-implementations of the cell equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn import NoisyRNNConfig

from ._core_reference import np_gru, np_lstm


@pytest.mark.parametrize("cell, reference", [("lstm", np_lstm), ("gru", np_gru)])
def test_gated_baselines_against_numpy(key, cell, reference):
    cfg = NoisyRNNConfig(input_size=2, hidden_size=3, num_classes=4, cell=cell)
    kp, kx = jax.random.split(key)
    params = noisy_dyn.init_params(kp, cfg)
    params = jax.tree_util.tree_map(lambda a: 3.0 * a, params)  # saturate some gates
    xs = jax.random.normal(kx, (2, 6, 2))
    h_T = reference(params, xs)
    logits = h_T @ np.asarray(params["V"]).T + np.asarray(params["c"])
    np.testing.assert_allclose(noisy_dyn.apply(params, xs, cfg), logits, rtol=1e-12)
    # key is accepted and ignored (deterministic baselines); remat changes nothing
    np.testing.assert_allclose(noisy_dyn.apply(params, xs, cfg, key=key), logits, rtol=1e-12)
    traj = noisy_dyn.trajectory(params, xs, cfg.replace(remat=4))
    assert traj.shape == (2, 7, 3)
    np.testing.assert_allclose(traj[:, -1], h_T, rtol=1e-12)
    np.testing.assert_allclose(traj[:, 0], 0.0)
    np.testing.assert_allclose(traj[:, 3], reference(params, xs[:, :3]), rtol=1e-12)


def test_single_step_functions_match_the_scan(key):
    for cell in ("lstm", "gru"):
        cfg = NoisyRNNConfig(input_size=2, hidden_size=3, num_classes=4, cell=cell)
        params = noisy_dyn.init_params(key, cfg)
        xs = jax.random.normal(key, (2, 1, 2))
        h0 = jnp.zeros((2, 3))
        if cell == "lstm":
            h1, _ = noisy_dyn.lstm_step(params, (h0, h0), xs[:, 0])
        else:
            h1 = noisy_dyn.gru_step(params, h0, xs[:, 0])
        np.testing.assert_allclose(h1, noisy_dyn.final_state(params, xs, cfg), rtol=1e-13)
        with pytest.raises(ValueError, match="not used"):
            noisy_dyn.apply(params, xs, cfg, noise=jnp.zeros((2, 1, 3)))
