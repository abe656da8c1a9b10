"""Parameters: initialisation, the expected shapes and the checks, for every cell.

The layout of each cell's parameters is the cell object's (``noisy_dyn._cell.LipschitzCell``,
``noisy_dyn._baselines.LSTMCell`` / ``GRUCell``); this module adds the read-out and the checks.
"""

import math

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from ._config import NoisyRNNConfig
from ._types import Key, Params


def init_params(key: Key, cfg: NoisyRNNConfig, *, dtype: DTypeLike | None = None) -> Params:
    """Initial parameters for ``cfg.cell``, as a flat dict of arrays.

    Lipschitz cell: ``M_A, M_W`` of shape ``(H, H)`` with entries
    ``N(0, (init_std / H)^2)``; ``U (H, input_size)`` and ``b (H,)`` uniform in
    ``+-1/sqrt(input_size)``; read-out ``V (num_classes, H)``, ``c (num_classes,)`` uniform in
    ``+-1/sqrt(H)`` (both as PyTorch's ``nn.Linear`` default, which the reference code uses); with
    ``learn_step`` also ``step (H,)`` filled with ``dt``. LSTM/GRU: every entry uniform in
    ``+-1/sqrt(H)`` (PyTorch's default; layout in ``noisy_dyn._baselines``), same read-out.

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
    return cfg.cell.init(key, cfg, dtype)


def param_shapes(cfg: NoisyRNNConfig) -> dict[str, tuple[int, ...]]:
    """The exact key set and shapes that :func:`init_params` returns for ``cfg``."""
    H, C = cfg.hidden_size, cfg.num_classes
    return {**cfg.cell.shapes(cfg), "V": (C, H), "c": (C,)}


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
            f"params do not match cfg (cell={cfg.cell.name!r}, learn_step={cfg.learn_step}): "
            f"missing keys {missing}, unexpected keys {extra}. Build them with "
            "init_params(key, cfg)."
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

    With ``H = 128``, one input, ten classes and a learned step this is 34,442 (the paper's
    MNIST models).
    Works on arrays and on ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape`` of init_params).
    """
    shapes = [leaf.shape if hasattr(leaf, "shape") else jnp.shape(leaf) for leaf in
              jax.tree_util.tree_leaves(params)]  # fmt: skip
    return int(sum(math.prod(shape) for shape in shapes))
