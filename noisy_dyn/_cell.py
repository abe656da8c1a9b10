"""The Lipschitz RNN unit (SPEC 1.1): structured matrices, the drift, parameter initialisation.

Column-vector maths, row-batched code: ``A h`` for a batch of states ``h`` of shape
``(..., H)`` is computed as ``h @ A.T``.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._config import NoisyRNNConfig
from ._types import Hidden, Input, Key, Matrix, Params


def lipschitz_matrix(
    M: Float[ArrayLike, "hidden hidden"], beta: float, gamma: float
) -> Float[Array, "hidden hidden"]:
    """The structured recurrent matrix of the Lipschitz RNN.

    ``beta (M - M^T) + (1 - beta)(M + M^T) - gamma I``: its symmetric part is
    ``(1 - beta)(M + M^T) - gamma I`` exactly, so ``beta = 1`` gives ``sym = -gamma I``.

    Arguments:
        M: free square matrix.
        beta: mix between the skew part (``beta = 1``) and the symmetric part.
        gamma: diagonal shift (``gamma I`` is subtracted, not the scalar ``gamma``).

    Returns:
        The ``H x H`` matrix.
    """
    M = jnp.asarray(M)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"lipschitz_matrix: M must be a square matrix, got shape {M.shape}.")
    eye = jnp.eye(M.shape[0], dtype=M.dtype)
    return beta * (M - M.T) + (1.0 - beta) * (M + M.T) - gamma * eye


def recurrent_matrices(params: Params, cfg: NoisyRNNConfig) -> tuple[Matrix, Matrix]:
    """The pair ``(A, W)`` of SPEC 1.1 built from ``params["M_A"], params["M_W"]``.

    ``A = lipschitz_matrix(M_A, beta, gamma_a)``, ``W = lipschitz_matrix(M_W, beta, gamma_w)``.
    """
    A = lipschitz_matrix(params["M_A"], cfg.beta, cfg.gamma_a)
    W = lipschitz_matrix(params["M_W"], cfg.beta, cfg.gamma_w)
    return A, W


def drift(params: Params, h: Hidden, x: Input, cfg: NoisyRNNConfig) -> Hidden:
    """The drift ``f(h, x) = alpha A h + tanh(W h + U x + b)`` (SPEC 1.1).

    Arguments:
        params: Lipschitz-cell parameters (``M_A, M_W, U, b``; others are ignored).
        h: hidden state ``(H,)`` (leading batch axes are allowed).
        x: input of the same step ``(input_size,)`` (same leading axes as ``h``).
        cfg: the configuration (``beta, gamma_a, gamma_w, alpha``).

    Returns:
        ``f(h, x)``, same shape as ``h``.
    """
    if cfg.cell != "lipschitz":
        raise ValueError(f"drift is defined for cell='lipschitz' only, got cell={cfg.cell!r}.")
    A, W = recurrent_matrices(params, cfg)
    out = jnp.tanh(h @ W.T + x @ params["U"].T + params["b"])
    if cfg.alpha != 0.0:
        out = out + cfg.alpha * (h @ A.T)
    return out


def _uniform(key: Key, shape: tuple[int, ...], bound: float, dtype: jnp.dtype) -> Array:
    return jax.random.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)


def init_readout(key: Key, cfg: NoisyRNNConfig, dtype: jnp.dtype) -> Params:
    """Read-out ``V (C, H), c (C,)`` with PyTorch ``nn.Linear``'s default U(+-1/sqrt(H))."""
    kv, kc = jax.random.split(key)
    bound = 1.0 / math.sqrt(cfg.hidden_size)
    return {
        "V": _uniform(kv, (cfg.num_classes, cfg.hidden_size), bound, dtype),
        "c": _uniform(kc, (cfg.num_classes,), bound, dtype),
    }


def init_lipschitz(key: Key, cfg: NoisyRNNConfig, dtype: jnp.dtype) -> Params:
    """Lipschitz-cell parameters (see :func:`init_params`)."""
    H, n_in = cfg.hidden_size, cfg.input_size
    ka, kw, ku, kb, kr = jax.random.split(key, 5)
    std = cfg.init_std / H
    bound_in = 1.0 / math.sqrt(n_in)
    params = {
        "M_A": std * jax.random.normal(ka, (H, H), dtype=dtype),
        "M_W": std * jax.random.normal(kw, (H, H), dtype=dtype),
        "U": _uniform(ku, (H, n_in), bound_in, dtype),
        "b": _uniform(kb, (H,), bound_in, dtype),
        **init_readout(kr, cfg, dtype),
    }
    if cfg.learn_step:
        params["step"] = jnp.full((H,), cfg.dt, dtype=dtype)
    return params


def init_params(key: Key, cfg: NoisyRNNConfig, *, dtype: jnp.dtype | None = None) -> Params:
    """Initial parameters for ``cfg.cell``, as a flat dict of arrays.

    Lipschitz cell (SPEC 1.1): ``M_A, M_W`` of shape ``(H, H)`` with entries
    ``N(0, (init_std / H)^2)``; ``U (H, input_size)`` and ``b (H,)`` uniform in
    ``+-1/sqrt(input_size)``; read-out ``V (num_classes, H)``, ``c (num_classes,)`` uniform in
    ``+-1/sqrt(H)`` (both as PyTorch's ``nn.Linear`` default, which the reference code uses); with
    ``learn_step`` also ``step (H,)`` filled with ``dt``. LSTM/GRU: see ``noisy_dyn._baselines``
    (same ``V, c`` read-out).

    Arguments:
        key: PRNG key.
        cfg: the configuration.
        dtype: floating dtype of the arrays; default JAX's default float (float32, or float64
            with ``jax_enable_x64``).

    Returns:
        The parameter dict.
    """
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(f"cfg must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    dtype = jnp.zeros((), dtype=dtype if dtype is not None else float).dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"init_params: dtype must be a real floating dtype, got {dtype}.")
    if cfg.cell == "lipschitz":
        return init_lipschitz(key, cfg, dtype)
    from ._baselines import init_gated

    return init_gated(key, cfg, dtype)


def param_shapes(cfg: NoisyRNNConfig) -> dict[str, tuple[int, ...]]:
    """The exact key set and shapes that :func:`init_params` returns for ``cfg``."""
    H, n_in, C = cfg.hidden_size, cfg.input_size, cfg.num_classes
    readout = {"V": (C, H), "c": (C,)}
    if cfg.cell == "lipschitz":
        shapes = {"M_A": (H, H), "M_W": (H, H), "U": (H, n_in), "b": (H,), **readout}
        if cfg.learn_step:
            shapes["step"] = (H,)
        return shapes
    from ._baselines import gated_shapes

    return {**gated_shapes(cfg), **readout}


def check_params(params: object, cfg: NoisyRNNConfig) -> None:
    """Raise a clear error when ``params`` does not fit ``cfg`` (keys, shapes, float dtype)."""
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be the dict returned by init_params, got {type(params).__name__}."
        )
    expected = param_shapes(cfg)
    if set(params) != set(expected):
        missing = sorted(set(expected) - set(params))
        extra = sorted(set(params) - set(expected))
        raise ValueError(
            f"params do not match cfg (cell={cfg.cell!r}, learn_step={cfg.learn_step}): missing "
            f"keys {missing}, unexpected keys {extra}. Build them with init_params(key, cfg)."
        )
    for name, shape in expected.items():
        value = params[name]
        got = tuple(getattr(value, "shape", ()))
        if got != shape:
            raise ValueError(
                f"params[{name!r}] has shape {got} but cfg (input_size={cfg.input_size}, "
                f"hidden_size={cfg.hidden_size}, num_classes={cfg.num_classes}) needs {shape}."
            )
        dtype = getattr(value, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"params[{name!r}] must be a real floating array, got dtype {dtype}.")


def count_params(params: object) -> int:
    """Total number of scalar parameters in a pytree of arrays.

    With ``H = 128``, one input, ten classes and a learned step this is 34,442 (SPEC 1.3).
    Works on arrays and on ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape`` of init_params).
    """
    shapes = [leaf.shape if hasattr(leaf, "shape") else jnp.shape(leaf) for leaf in
              jax.tree_util.tree_leaves(params)]  # fmt: skip
    return int(sum(math.prod(shape) for shape in shapes))
