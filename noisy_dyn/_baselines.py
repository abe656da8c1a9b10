"""Deterministic gated baselines (LSTM, GRU) behind the same ``init_params``/``apply`` shape.

Selected by ``NoisyRNNConfig.cell``. The antisymmetric RNN and the deterministic Lipschitz RNN
are not here: they are Lipschitz cells (presets ``"antisymmetric"``, ``"lipschitz"``).

The cells follow the standard (PyTorch / Flax) equations, with gate blocks stacked in the rows
of one input matrix and one recurrent matrix so that the input projection of all time steps is a
single matmul before the time scan:

LSTM (gate order i, f, g, o; parameters ``W_ih (4H, in)``, ``W_hh (4H, H)``, ``b (4H,)``)::

    [i; f; g; o] = W_ih x + W_hh h + b
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g),   h' = sigmoid(o) * tanh(c')

GRU (gate order r, z, n; ``W_ih (3H, in)``, ``W_hh (3H, H)``, ``b_ih (3H,)``, ``b_hh (3H,)``)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h

These are the equations of ``flax.linen.OptimizedLSTMCell`` / ``flax.linen.GRUCell`` (and of
``torch.nn.LSTM`` / ``torch.nn.GRU``); the tests check them against a NumPy re-implementation.
All weights are initialised uniform in ``+-1/sqrt(H)`` (PyTorch's default); ``h_0 = c_0 = 0``;
logits ``V h_T + c`` as for the Lipschitz cell.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._config import NoisyRNNConfig
from ._types import Key, Params

_GATES = {"lstm": 4, "gru": 3}


def gated_shapes(cfg: NoisyRNNConfig) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the recurrent parameters of an LSTM/GRU (read-out excluded)."""
    H, n_in = cfg.hidden_size, cfg.input_size
    G = _GATES[cfg.cell] * H
    if cfg.cell == "lstm":
        return {"W_ih": (G, n_in), "W_hh": (G, H), "b": (G,)}
    return {"W_ih": (G, n_in), "W_hh": (G, H), "b_ih": (G,), "b_hh": (G,)}


def init_gated(key: Key, cfg: NoisyRNNConfig, dtype: jnp.dtype) -> Params:
    """LSTM/GRU parameters, every entry uniform in ``+-1/sqrt(H)``, plus the read-out."""
    from ._cell import init_readout

    shapes = gated_shapes(cfg)
    keys = jax.random.split(key, len(shapes) + 1)
    bound = 1.0 / math.sqrt(cfg.hidden_size)
    params = {
        name: jax.random.uniform(k, shape, dtype=dtype, minval=-bound, maxval=bound)
        for k, (name, shape) in zip(keys[:-1], shapes.items(), strict=True)
    }
    params.update(init_readout(keys[-1], cfg, dtype))
    return params


def lstm_step(params: Params, carry: tuple[Array, Array], x: Array) -> tuple[Array, Array]:
    """One LSTM step ``(h, c), x -> (h', c')`` (equations in the module docstring)."""
    h, c = carry
    return _lstm_core(params["W_hh"], (h, c), x @ params["W_ih"].T + params["b"])


def gru_step(params: Params, h: Array, x: Array) -> Array:
    """One GRU step ``h, x -> h'`` (equations in the module docstring)."""
    return _gru_core(params["W_hh"], params["b_hh"], h, x @ params["W_ih"].T + params["b_ih"])


def _lstm_core(W_hh: Array, carry: tuple[Array, Array], gx: Array) -> tuple[Array, Array]:
    h, c = carry
    i, f, g, o = jnp.split(gx + h @ W_hh.T, 4, axis=-1)
    c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c_new), c_new


def _gru_core(W_hh: Array, b_hh: Array, h: Array, gx: Array) -> Array:
    xr, xz, xn = jnp.split(gx, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ W_hh.T + b_hh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def gated_scan_parts(
    params: Params, cfg: NoisyRNNConfig, *, batch: int, dtype: jnp.dtype
) -> tuple[object, Callable, Callable, Callable]:
    """Pieces of the time scan of a gated cell.

    Arguments:
        params: LSTM/GRU parameters.
        cfg: configuration.
        batch: batch size.
        dtype: dtype of the state.

    Returns:
        ``(carry0, project, step, hidden_of)``: the zero initial carry; ``project`` mapping a
        time-major block of inputs ``(steps, batch, input)`` to their input projections (one
        matmul for the block); the step ``carry, projection_k -> carry``; the map ``carry -> h``.
    """
    h0 = jnp.zeros((batch, cfg.hidden_size), dtype=dtype)
    W_ih_t = params["W_ih"].T
    if cfg.cell == "lstm":
        b, W_hh = params["b"], params["W_hh"]
        return (
            (h0, h0),
            lambda xs: xs @ W_ih_t + b,
            lambda carry, g: _lstm_core(W_hh, carry, g),
            lambda carry: carry[0],
        )
    b_ih, W_hh, b_hh = params["b_ih"], params["W_hh"], params["b_hh"]
    return (
        h0,
        lambda xs: xs @ W_ih_t + b_ih,
        lambda h, g: _gru_core(W_hh, b_hh, h, g),
        lambda h: h,
    )
