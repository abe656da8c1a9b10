"""LSTM and GRU baselines against NumPy re-implementations and against Flax's cells.

The Flax checks run ``flax.linen.OptimizedLSTMCell`` / ``LSTMCell`` / ``GRUCell`` inside
``flax.linen.RNN`` (Flax's own scan, independent of ``noisy_dyn``) on weights converted with
``to_flax_*`` / ``from_flax_*``, and compare every hidden state and the logits in float64.
"""

import functools

import flax.linen as nn
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


_FLAX_CELLS = [
    ("lstm", nn.OptimizedLSTMCell, noisy_dyn.to_flax_lstm, noisy_dyn.from_flax_lstm),
    ("lstm", nn.LSTMCell, noisy_dyn.to_flax_lstm, noisy_dyn.from_flax_lstm),
    ("gru", nn.GRUCell, noisy_dyn.to_flax_gru, noisy_dyn.from_flax_gru),
]
_IDS = ["OptimizedLSTMCell", "LSTMCell", "GRUCell"]


def _random_flax_tree(key, flax_cell, H, n_in=2):
    """A Flax cell's params tree with every leaf (biases included) random and O(1)."""
    module = flax_cell(features=H, param_dtype=jnp.float64)
    x = jnp.zeros((1, n_in))
    tree = module.init(key, module.initialize_carry(key, x.shape), x)["params"]
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    return treedef.unflatten([jax.random.normal(k, a.shape) for k, a in zip(keys, leaves)])


@functools.cache
def _flax_rnn(flax_cell, H):
    """Jitted ``tree, xs -> h_1 .. h_T`` (batch, time, H): Flax's RNN around the Flax cell."""
    rnn = nn.RNN(flax_cell(features=H, param_dtype=jnp.float64))
    return jax.jit(lambda tree, xs: rnn.apply({"params": {"cell": tree}}, xs))


@pytest.mark.parametrize("cell, flax_cell, to_flax, from_flax", _FLAX_CELLS, ids=_IDS)
def test_apply_matches_flax_cells(key, cell, flax_cell, to_flax, from_flax):
    cfg = NoisyRNNConfig(input_size=2, hidden_size=3, num_classes=4, cell=cell)
    kp, kx, kf = jax.random.split(key, 3)
    xs = 1.5 * jax.random.normal(kx, (2, 6, 2))
    ours = jax.tree_util.tree_map(lambda a: 3.0 * a, noisy_dyn.init_params(kp, cfg))
    V, c = np.asarray(ours["V"]), np.asarray(ours["c"])
    # ours -> Flax: init_params weights (GRU: nonzero b_hr, b_hz, which to_flax_gru folds)
    states = _flax_rnn(flax_cell, cfg.hidden_size)(to_flax(ours), xs)
    traj = noisy_dyn.trajectory(ours, xs, cfg)
    np.testing.assert_allclose(traj[:, 1:], states, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        noisy_dyn.apply(ours, xs, cfg), states[:, -1] @ V.T + c, rtol=1e-10, atol=1e-12
    )
    # Flax -> ours: a Flax-layout tree with every leaf random, plus our read-out
    tree = _random_flax_tree(kf, flax_cell, cfg.hidden_size)
    params = {**from_flax(tree), "V": ours["V"], "c": ours["c"]}
    states = _flax_rnn(flax_cell, cfg.hidden_size)(tree, xs)
    assert np.abs(np.asarray(states)).max() > 0.5  # not a trivially small trajectory
    np.testing.assert_allclose(
        noisy_dyn.trajectory(params, xs, cfg)[:, 1:], states, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        noisy_dyn.apply(params, xs, cfg), states[:, -1] @ V.T + c, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("cell, flax_cell, to_flax, from_flax", _FLAX_CELLS, ids=_IDS)
def test_flax_converters_round_trip(key, cell, flax_cell, to_flax, from_flax):
    cfg = NoisyRNNConfig(input_size=2, hidden_size=3, num_classes=4, cell=cell)
    H = cfg.hidden_size
    tree = _random_flax_tree(key, flax_cell, H)
    # Flax -> ours -> Flax is the identity (also from the whole variables dict, and under jit)
    for back in (to_flax(from_flax(tree)), jax.jit(lambda t: to_flax(from_flax(t)))(tree)):
        assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(tree)
        jax.tree_util.tree_map(np.testing.assert_array_equal, back, tree)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, from_flax({"params": tree}), from_flax(tree)
    )
    ours = noisy_dyn.init_params(key, cfg)
    again = from_flax(to_flax(ours))
    np.testing.assert_array_equal(again["W_ih"], ours["W_ih"])
    np.testing.assert_array_equal(again["W_hh"], ours["W_hh"])
    if cell == "lstm":  # an exact bijection
        assert set(again) == {"W_ih", "W_hh", "b"}
        np.testing.assert_array_equal(again["b"], ours["b"])
    else:  # b_hr, b_hz folded into b_ir, b_iz; b_in, b_hn kept
        b_ih, b_hh = np.asarray(ours["b_ih"]), np.asarray(ours["b_hh"])
        folded = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
        np.testing.assert_allclose(again["b_ih"], folded, rtol=1e-15)
        np.testing.assert_array_equal(again["b_hh"][: 2 * H], 0.0)
        np.testing.assert_array_equal(again["b_hh"][2 * H :], b_hh[2 * H :])


def test_flax_converters_reject_mismatched_trees(key):
    lstm_cfg = NoisyRNNConfig(input_size=2, hidden_size=3, num_classes=4, cell="lstm")
    gru_cfg = lstm_cfg.replace(cell="gru")
    lstm, gru = noisy_dyn.init_params(key, lstm_cfg), noisy_dyn.init_params(key, gru_cfg)
    with pytest.raises(ValueError, match="GRUCell"):
        noisy_dyn.from_flax_gru(noisy_dyn.to_flax_lstm(lstm))
    with pytest.raises(ValueError, match="OptimizedLSTMCell"):
        noisy_dyn.from_flax_lstm(noisy_dyn.to_flax_gru(gru))
    with pytest.raises(TypeError, match="flax_params"):
        noisy_dyn.from_flax_lstm([1.0])
    bad = noisy_dyn.to_flax_gru(gru)
    bad["hz"] = {"kernel": jnp.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"flax_params\['hz'\]"):
        noisy_dyn.from_flax_gru(bad)
    with pytest.raises(ValueError, match="must hold"):
        noisy_dyn.to_flax_lstm(gru)  # GRU params have no 'b'
    with pytest.raises(ValueError, match="expected W_ih"):
        noisy_dyn.to_flax_gru({**gru, "b_hh": jnp.zeros(4)})
