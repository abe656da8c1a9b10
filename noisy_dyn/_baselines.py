"""Deterministic gated baselines (LSTM, GRU) behind the same ``init_params``/``apply`` shape.

Selected by ``NoisyRNNConfig.cell``. The antisymmetric RNN and the deterministic Lipschitz RNN
are not here: they are Lipschitz cells (presets ``"antisymmetric"``, ``"lipschitz"``).

The cells compute exactly the equations of Flax's ``flax.linen.OptimizedLSTMCell`` (equivalently
``flax.linen.LSTMCell``) and ``flax.linen.GRUCell`` (which are also those of ``torch.nn.LSTM`` /
``torch.nn.GRU``). The parameters are stored in PyTorch's layout, gate blocks stacked in the rows
of one input matrix and one recurrent matrix, so that the input projection of all time steps is a
single matmul before the time scan (``sigma`` is the logistic sigmoid, ``*`` elementwise):

LSTM (gate order i, f, g, o; ``W_ih (4H, in)``, ``W_hh (4H, H)``, ``b (4H,)``)::

    [a_i; a_f; a_g; a_o] = W_ih x + W_hh h + b
    i = sigma(a_i),  f = sigma(a_f),  g = tanh(a_g),  o = sigma(a_o)
    c' = f * c + i * g,   h' = o * tanh(c')

GRU (gate order r, z, n; ``W_ih (3H, in)``, ``W_hh (3H, H)``, ``b_ih (3H,)``, ``b_hh (3H,)``)::

    r = sigma(W_ir x + b_ir + W_hr h + b_hr),  z = sigma(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h

The reset gate multiplies ``W_hn h + b_hn`` (Flax's and PyTorch's placement), so only ``W_hh h +
b_hh`` stays inside the scan and ``W_ih x + b_ih`` is hoisted.

:func:`to_flax_lstm`, :func:`from_flax_lstm`, :func:`to_flax_gru` and :func:`from_flax_gru`
convert the recurrent parameters to and from the Flax cells' ``params`` trees (Flax stores one
``Dense`` per gate with kernel ``(in, H)``, i.e. the transposed row block). Bias conventions: the
Flax LSTM has biases on the hidden Denses only, matching our single ``b`` exactly; the Flax GRU
has biases on the input Denses and on ``hn`` only, so ``b_hr, b_hz`` (which act only through
``b_ir + b_hr``, ``b_iz + b_hz``) are folded into the input biases, the same function. Flax's
LSTM carry is ``(c, h)``, ours ``(h, c)``. The tests run ``flax.linen.RNN`` around the Flax cells
on converted weights (in both directions) and check every hidden state and the logits of
``apply`` against them to 1e-10 in float64, and against a NumPy re-implementation.

All weights are initialised uniform in ``+-1/sqrt(H)`` (PyTorch's default); ``h_0 = c_0 = 0``;
logits ``V h_T + c`` as for the Lipschitz cell.
"""

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike
from jaxtyping import Array, ArrayLike, Float, PyTree

from ._cell import Cell, init_readout, uniform_init
from ._noise import known_nonzero
from ._types import Hidden, Input, Key, Params

if TYPE_CHECKING:
    from ._config import NoisyRNNConfig


@dataclass(frozen=True)
class GatedCell(Cell):
    """A deterministic gated baseline: no noise, no learned step, the plain time scan."""

    noisy: ClassVar[bool] = False
    fused: ClassVar[bool] = False
    stepped: ClassVar[bool] = False
    gates: ClassVar[int]

    def init(self, key: Key, cfg: "NoisyRNNConfig", dtype: DTypeLike) -> Params:
        shapes = self.shapes(cfg)
        keys = jax.random.split(key, len(shapes) + 1)
        bound = 1.0 / math.sqrt(cfg.hidden_size)
        params = {
            name: uniform_init(k, shape, bound, dtype)
            for k, (name, shape) in zip(keys[:-1], shapes.items(), strict=True)
        }
        return {**params, **init_readout(keys[-1], cfg, dtype)}

    def check(self, cfg):
        if known_nonzero(cfg.sigma_add) or known_nonzero(cfg.sigma_mult):
            raise ValueError(
                f"NoisyRNNConfig.sigma_add/sigma_mult must be 0 for cell={self.name!r}: noise "
                "injection is defined for the 'lipschitz' cell only."
            )
        if cfg.learn_step:
            raise ValueError(
                f"NoisyRNNConfig.learn_step must be False for cell={self.name!r}: a learned "
                "step exists for the 'lipschitz' cell only."
            )

    @abc.abstractmethod
    def scan_parts(
        self, params: Params, cfg: "NoisyRNNConfig", *, batch: int, dtype: DTypeLike
    ) -> tuple[object, Callable, Callable, Callable]:
        """``(carry0, project, step, hidden_of)`` of the time scan (:func:`gated_scan_parts`)."""


@dataclass(frozen=True)
class LSTMCell(GatedCell):
    """The LSTM (gate order i, f, g, o; ``W_ih (4H, in)``, ``W_hh (4H, H)``, ``b (4H,)``)."""

    name: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4

    def shapes(self, cfg: "NoisyRNNConfig") -> dict[str, tuple[int, ...]]:
        H, n_in, G = cfg.hidden_size, cfg.input_size, 4 * cfg.hidden_size
        return {"W_ih": (G, n_in), "W_hh": (G, H), "b": (G,)}

    def scan_parts(
        self, params: Params, cfg: "NoisyRNNConfig", *, batch: int, dtype: DTypeLike
    ) -> tuple[object, Callable, Callable, Callable]:
        h0 = jnp.zeros((batch, cfg.hidden_size), dtype=dtype)
        W_ih_t, b, W_hh = params["W_ih"].T, params["b"], params["W_hh"]
        return (
            (h0, h0),
            lambda xs: xs @ W_ih_t + b,
            lambda carry, g: _lstm_core(W_hh, carry, g),
            lambda carry: carry[0],
        )


@dataclass(frozen=True)
class GRUCell(GatedCell):
    """The GRU (gate order r, z, n; ``W_ih (3H, in)``, ``W_hh (3H, H)``, ``b_ih, b_hh (3H,)``)."""

    name: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3

    def shapes(self, cfg: "NoisyRNNConfig") -> dict[str, tuple[int, ...]]:
        H, n_in, G = cfg.hidden_size, cfg.input_size, 3 * cfg.hidden_size
        return {"W_ih": (G, n_in), "W_hh": (G, H), "b_ih": (G,), "b_hh": (G,)}

    def scan_parts(
        self, params: Params, cfg: "NoisyRNNConfig", *, batch: int, dtype: DTypeLike
    ) -> tuple[object, Callable, Callable, Callable]:
        h0 = jnp.zeros((batch, cfg.hidden_size), dtype=dtype)
        W_ih_t, b_ih = params["W_ih"].T, params["b_ih"]
        W_hh, b_hh = params["W_hh"], params["b_hh"]
        return (
            h0,
            lambda xs: xs @ W_ih_t + b_ih,
            lambda h, g: _gru_core(W_hh, b_hh, h, g),
            lambda h: h,
        )


def gated_shapes(cfg: "NoisyRNNConfig") -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the recurrent parameters of an LSTM/GRU (read-out excluded)."""
    return cfg.cell.shapes(cfg)


def lstm_step(params: Params, carry: tuple[Hidden, Hidden], x: Input) -> tuple[Hidden, Hidden]:
    """One LSTM step ``(h, c), x -> (h', c')`` (equations in the module docstring)."""
    h, c = carry
    return _lstm_core(params["W_hh"], (h, c), x @ params["W_ih"].T + params["b"])


def gru_step(params: Params, h: Hidden, x: Input) -> Hidden:
    """One GRU step ``h, x -> h'`` (equations in the module docstring)."""
    return _gru_core(params["W_hh"], params["b_hh"], h, x @ params["W_ih"].T + params["b_ih"])


def _lstm_core(
    W_hh: ArrayLike, carry: tuple[ArrayLike, ArrayLike], gx: ArrayLike
) -> tuple[Array, Array]:
    h, c = carry
    i, f, g, o = jnp.split(gx + h @ W_hh.T, 4, axis=-1)
    c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c_new), c_new


def _gru_core(W_hh: ArrayLike, b_hh: ArrayLike, h: ArrayLike, gx: ArrayLike) -> Array:
    xr, xz, xn = jnp.split(gx, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ W_hh.T + b_hh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def gated_scan_parts(
    params: Params, cfg: "NoisyRNNConfig", *, batch: int, dtype: DTypeLike
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
    return cfg.cell.scan_parts(params, cfg, batch=batch, dtype=dtype)


# --- conversion to and from the parameter trees of the Flax cells ---------------------------------

FlaxParams = PyTree[Float[Array | np.ndarray, "..."]]
"""The ``params`` collection of a Flax cell: ``{module: {"kernel": (in, H), "bias": (H,)}}``."""

_LSTM_GATES = ("i", "f", "g", "o")
_GRU_GATES = ("r", "z", "n")
_FLAX_LSTM_LEAVES = {
    **{f"i{g}": ("kernel",) for g in _LSTM_GATES},
    **{f"h{g}": ("kernel", "bias") for g in _LSTM_GATES},
}
_FLAX_GRU_LEAVES = {
    **{f"i{g}": ("kernel", "bias") for g in _GRU_GATES},
    "hr": ("kernel",),
    "hz": ("kernel",),
    "hn": ("kernel", "bias"),
}


def _read_flax_tree(
    flax_params: object, leaves: dict[str, tuple[str, ...]], cell_name: str
) -> tuple[FlaxParams, int, int]:
    """Validate a Flax cell's ``params`` tree; return it as arrays with ``(input_size, H)``."""
    if isinstance(flax_params, Mapping) and set(flax_params) == {"params"}:
        flax_params = flax_params["params"]  # a whole variables dict {"params": ...}
    if not isinstance(flax_params, Mapping):
        raise TypeError(
            f"flax_params must be the params tree of flax.linen.{cell_name} (a mapping of module "
            f"name to {{'kernel', 'bias'}}), got {type(flax_params).__name__}."
        )
    expected = {m: sorted(names) for m, names in leaves.items()}
    got = {m: sorted(v) if isinstance(v, Mapping) else None for m, v in flax_params.items()}
    if got != expected:
        raise ValueError(
            f"flax_params does not match flax.linen.{cell_name}: expected modules and leaves "
            f"{dict(sorted(expected.items()))}, got {dict(sorted(got.items()))}. Pass "
            f"variables['params'] of an initialised {cell_name} (or the variables dict itself)."
        )
    tree = {
        m: {leaf: jnp.asarray(flax_params[m][leaf]) for leaf in names}
        for m, names in leaves.items()
    }
    first = next(iter(leaves))
    n_in, H = tree[first]["kernel"].shape if tree[first]["kernel"].ndim == 2 else (-1, -1)
    for m, sub in tree.items():
        k_shape = (n_in, H) if m.startswith("i") else (H, H)
        if sub["kernel"].shape != k_shape or ("bias" in sub and sub["bias"].shape != (H,)):
            shapes = {leaf: tuple(a.shape) for leaf, a in sub.items()}
            raise ValueError(
                f"flax_params[{m!r}] has shapes {shapes}; expected kernel {k_shape} and bias "
                f"{(H,)} (input kernels (input_size, H), hidden kernels (H, H), H={H})."
            )
    return tree, n_in, H


def _read_ours(params: object, keys: tuple[str, ...], n_gates: int, fn: str) -> dict[str, Array]:
    """Validate the recurrent part of a baseline parameter dict; return its arrays."""
    if not isinstance(params, Mapping) or any(k not in params for k in keys):
        have = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"params of {fn} must hold {list(keys)} (from noisy_dyn.init_params with "
            f"cell={'lstm' if n_gates == 4 else 'gru'!r}), got {have}."
        )
    arrs = {k: jnp.asarray(params[k]) for k in keys}
    W_hh = arrs["W_hh"]
    H = W_hh.shape[-1] if W_hh.ndim == 2 else -1
    G = n_gates * H
    ok = W_hh.shape == (G, H) and arrs["W_ih"].ndim == 2 and arrs["W_ih"].shape[0] == G
    ok = ok and all(arrs[k].shape == (G,) for k in keys if k.startswith("b"))
    if not ok:
        raise ValueError(
            f"params of {fn} have shapes { {k: tuple(a.shape) for k, a in arrs.items()} }; "
            f"expected W_ih ({n_gates}H, input_size), W_hh ({n_gates}H, H) and biases "
            f"({n_gates}H,)."
        )
    return arrs


def to_flax_lstm(params: Params) -> FlaxParams:
    """The ``params`` tree of ``flax.linen.OptimizedLSTMCell`` / ``LSTMCell`` for our LSTM.

    Flax computes ``a_k = x @ K_ik + h @ K_hk + b_hk`` for gates ``k in (i, f, g, o)`` (input
    Denses ``ik`` without bias, hidden Denses ``hk`` with bias), then the LSTM equations of the
    module docstring. With gate block ``k`` of rows ``k H : (k + 1) H``, the map is exact and
    invertible: ``K_ik = W_ih[k].T``, ``K_hk = W_hh[k].T``, ``b_hk = b[k]``. Note that Flax's
    carry is ``(c, h)`` where :func:`lstm_step` uses ``(h, c)``.

    Arguments:
        params: LSTM parameters (``W_ih (4H, in)``, ``W_hh (4H, H)``, ``b (4H,)``; other
            entries such as the read-out ``V, c`` are ignored).

    Returns:
        ``{"ii": {"kernel"}, "if": ..., "io": ..., "hi": {"kernel", "bias"}, ..., "ho": ...}``;
        use as ``cell.apply({"params": tree}, carry, x)``.
    """
    p = _read_ours(params, ("W_ih", "W_hh", "b"), 4, "to_flax_lstm")
    W_ih, W_hh, b = (jnp.split(p[k], 4, axis=0) for k in ("W_ih", "W_hh", "b"))
    tree: FlaxParams = {}
    for k, g in enumerate(_LSTM_GATES):
        tree[f"i{g}"] = {"kernel": W_ih[k].T}
    for k, g in enumerate(_LSTM_GATES):
        tree[f"h{g}"] = {"kernel": W_hh[k].T, "bias": b[k]}
    return tree


def from_flax_lstm(
    flax_params: FlaxParams,
) -> Params:
    """Our LSTM parameters from the ``params`` tree of ``flax.linen.OptimizedLSTMCell``.

    Inverse of :func:`to_flax_lstm` (exact): ``W_ih = [K_ii K_if K_ig K_io].T``,
    ``W_hh = [K_hi K_hf K_hg K_ho].T``, ``b = [b_hi; b_hf; b_hg; b_ho]``.

    Arguments:
        flax_params: ``variables["params"]`` of an ``OptimizedLSTMCell`` or ``LSTMCell``
            (the variables dict ``{"params": ...}`` itself is accepted too).

    Returns:
        ``{"W_ih": (4H, in), "W_hh": (4H, H), "b": (4H,)}``, the recurrent part of the
        parameters of ``NoisyRNNConfig(cell="lstm")``; add the read-out ``V (classes, H)``,
        ``c (classes,)`` (e.g. from :func:`noisy_dyn.init_params`) to use it with ``apply``.
    """
    tree, _, _ = _read_flax_tree(flax_params, _FLAX_LSTM_LEAVES, "OptimizedLSTMCell")
    return {
        "W_ih": jnp.concatenate([tree[f"i{g}"]["kernel"] for g in _LSTM_GATES], axis=1).T,
        "W_hh": jnp.concatenate([tree[f"h{g}"]["kernel"] for g in _LSTM_GATES], axis=1).T,
        "b": jnp.concatenate([tree[f"h{g}"]["bias"] for g in _LSTM_GATES]),
    }


def to_flax_gru(params: Params) -> FlaxParams:
    """The ``params`` tree of ``flax.linen.GRUCell`` for our GRU.

    Flax's GRU has biases on the input Denses ``ir, iz, in`` and on the hidden Dense ``hn``
    only; ``b_hr`` and ``b_hz`` enter our equations only through the sums ``b_ir + b_hr`` and
    ``b_iz + b_hz``, so they are folded into the input biases (the function is unchanged):
    ``K_ik = W_ih[k].T``, ``K_hk = W_hh[k].T``, ``b_ir = b_ih[r] + b_hh[r]``,
    ``b_iz = b_ih[z] + b_hh[z]``, ``b_in = b_ih[n]``, ``b_hn = b_hh[n]``.

    Arguments:
        params: GRU parameters (``W_ih (3H, in)``, ``W_hh (3H, H)``, ``b_ih (3H,)``,
            ``b_hh (3H,)``; other entries such as the read-out are ignored).

    Returns:
        ``{"ir", "iz", "in": {"kernel", "bias"}, "hr", "hz": {"kernel"}, "hn": {"kernel",
        "bias"}}``; use as ``cell.apply({"params": tree}, h, x)``.
    """
    p = _read_ours(params, ("W_ih", "W_hh", "b_ih", "b_hh"), 3, "to_flax_gru")
    W_ih, W_hh, b_ih, b_hh = (jnp.split(p[k], 3, axis=0) for k in ("W_ih", "W_hh", "b_ih", "b_hh"))
    return {
        "ir": {"kernel": W_ih[0].T, "bias": b_ih[0] + b_hh[0]},
        "iz": {"kernel": W_ih[1].T, "bias": b_ih[1] + b_hh[1]},
        "in": {"kernel": W_ih[2].T, "bias": b_ih[2]},
        "hr": {"kernel": W_hh[0].T},
        "hz": {"kernel": W_hh[1].T},
        "hn": {"kernel": W_hh[2].T, "bias": b_hh[2]},
    }


def from_flax_gru(
    flax_params: FlaxParams,
) -> Params:
    """Our GRU parameters from the ``params`` tree of ``flax.linen.GRUCell``.

    ``W_ih = [K_ir K_iz K_in].T``, ``W_hh = [K_hr K_hz K_hn].T``, ``b_ih = [b_ir; b_iz; b_in]``,
    ``b_hh = [0; 0; b_hn]``. ``to_flax_gru(from_flax_gru(t)) == t`` exactly; in the other order
    the result computes the same function with ``b_hr, b_hz`` folded into ``b_ir, b_iz``.

    Arguments:
        flax_params: ``variables["params"]`` of a ``GRUCell`` (the variables dict
            ``{"params": ...}`` itself is accepted too).

    Returns:
        ``{"W_ih": (3H, in), "W_hh": (3H, H), "b_ih": (3H,), "b_hh": (3H,)}``, the recurrent
        part of the parameters of ``NoisyRNNConfig(cell="gru")``; add the read-out ``V, c``.
    """
    tree, _, H = _read_flax_tree(flax_params, _FLAX_GRU_LEAVES, "GRUCell")
    b_hn = tree["hn"]["bias"]
    return {
        "W_ih": jnp.concatenate([tree[f"i{g}"]["kernel"] for g in _GRU_GATES], axis=1).T,
        "W_hh": jnp.concatenate([tree[f"h{g}"]["kernel"] for g in _GRU_GATES], axis=1).T,
        "b_ih": jnp.concatenate([tree[f"i{g}"]["bias"] for g in _GRU_GATES]),
        "b_hh": jnp.concatenate([jnp.zeros((2 * H,), dtype=b_hn.dtype), b_hn]),
    }
