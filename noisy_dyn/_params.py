"""Parameters: initialisation, the expected shapes and the checks, for every cell.

The one place that knows the parameter layout of the Lipschitz cell and (through
``noisy_dyn._baselines.gated_shapes``) of the gated baselines, so neither cell module imports the
other.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._baselines import gated_shapes
from ._config import NoisyRNNConfig
from ._types import Key, Params


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

    Lipschitz cell: ``M_A, M_W`` of shape ``(H, H)`` with entries
    ``N(0, (init_std / H)^2)``; ``U (H, input_size)`` and ``b (H,)`` uniform in
    ``+-1/sqrt(input_size)``; read-out ``V (num_classes, H)``, ``c (num_classes,)`` uniform in
    ``+-1/sqrt(H)`` (both as PyTorch's ``nn.Linear`` default, which the reference code uses); with
    ``learn_step`` also ``step (H,)`` filled with ``dt``. LSTM/GRU: every entry uniform in
    ``+-1/sqrt(H)`` (PyTorch's default; layout in ``noisy_dyn._baselines``), same read-out.

    Args:
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
    shapes = gated_shapes(cfg)
    keys = jax.random.split(key, len(shapes) + 1)
    bound = 1.0 / math.sqrt(cfg.hidden_size)
    params = {
        name: _uniform(k, shape, bound, dtype)
        for k, (name, shape) in zip(keys[:-1], shapes.items(), strict=True)
    }
    return {**params, **init_readout(keys[-1], cfg, dtype)}


def param_shapes(cfg: NoisyRNNConfig) -> dict[str, tuple[int, ...]]:
    """The exact key set and shapes that :func:`init_params` returns for ``cfg``."""
    H, n_in, C = cfg.hidden_size, cfg.input_size, cfg.num_classes
    readout = {"V": (C, H), "c": (C,)}
    if cfg.cell == "lipschitz":
        shapes = {"M_A": (H, H), "M_W": (H, H), "U": (H, n_in), "b": (H,), **readout}
        if cfg.learn_step:
            shapes["step"] = (H,)
        return shapes
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

    With ``H = 128``, one input, ten classes and a learned step this is 34,442 (the paper's
    MNIST models).
    Works on arrays and on ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape`` of init_params).
    """
    shapes = [leaf.shape if hasattr(leaf, "shape") else jnp.shape(leaf) for leaf in
              jax.tree_util.tree_leaves(params)]  # fmt: skip
    return int(sum(math.prod(shape) for shape in shapes))
