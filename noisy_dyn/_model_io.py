"""Save and load a trained Noisy RNN: its parameters and its configuration in one ``.npz`` file.

The file layout is ``trainkit``'s model file (``docs/data_formats.md``): the parameter arrays
``param_<name>`` and the configuration's fields as JSON. A model trained on standardised inputs
also stores the standardisation (:class:`noisy_dyn.data.InputScaling`) as the arrays
``input_mean`` and ``input_scale`` ``(input_size,)``; files without them (all files written
before this existed) load exactly as before and mean inputs used as they are. Loading checks the
file, the fields of the stored configuration and the parameters' shapes against it, and names
the file in every error.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from trainkit import FileFormatError, Loaded, load_model_file, save_model_file
from trainkit.internal import check_fields

from ._config import NoisyRNNConfig
from ._params import check_params
from ._scaling import InputScaling
from ._types import Params  # noqa: E402

_PREFIX = "param_"
_SCALING = ("input_mean", "input_scale")


def save_model(
    path: str | os.PathLike,
    params: Params,
    cfg: NoisyRNNConfig,
    *,
    scaling: InputScaling | None = None,
) -> Path:
    """Save parameters and configuration to one ``.npz`` file (written atomically).

    Arguments:
        path: target file (``.npz`` is appended when missing).
        params: the parameter dict (``init_params`` / ``fit``).
        cfg: its configuration (stored as JSON, restored by :func:`load_model`).
        scaling: the standardisation the model's inputs went through in training
            (``noisy_dyn.data.standardize``), stored so that evaluation applies it again;
            None (the default): inputs used as they are, and the file is byte-identical to one
            written before this argument existed.

    Returns:
        The path written.

    Examples:
        >>> import jax, noisy_dyn as nd
        >>> cfg = nd.NoisyRNNConfig(input_size=1, hidden_size=8, num_classes=3)
        >>> params = nd.init_params(jax.random.key(0), cfg)
        >>> path = nd.save_model("model.npz", params, cfg)
        >>> cfg2, params2 = nd.load_model(path)
        >>> cfg2 == cfg, sorted(params2) == sorted(params)
        (True, True)
    """
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(f"cfg must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    check_params(params, cfg)
    arrays = {_PREFIX + k: np.asarray(v) for k, v in jax.device_get(params).items()}
    if scaling is not None:
        mean, scale = (np.asarray(a, np.float64).reshape(-1) for a in scaling)
        if mean.shape != (cfg.input_size,) or scale.shape != mean.shape or np.any(scale <= 0):
            raise ValueError(
                f"scaling must hold a mean and a positive scale per input feature "
                f"({cfg.input_size}), got shapes {mean.shape} and {scale.shape}."
            )
        arrays |= dict(zip(_SCALING, (mean, scale)))
    return save_model_file(path, package="noisy_dyn", config=cfg.to_dict(), arrays=arrays)


def load_model(
    path: str | os.PathLike, *, with_scaling: bool = False
) -> Loaded | tuple[NoisyRNNConfig, Params, InputScaling | None]:
    """Load a :class:`trainkit.Loaded` ``(model, params)`` written by :func:`save_model`: the
    configuration and its parameters (``apply(params, xs, cfg)``), the same order as
    ``basis_ode.load_model`` and ``fit``'s :class:`trainkit.Trained`. With
    ``with_scaling=True``, ``(cfg, params, scaling)``: the stored
    :class:`noisy_dyn.data.InputScaling`, or None for a model trained on inputs used as they are
    (every file written before scalings were stored). Earlier releases returned
    ``(params, cfg)`` (CHANGELOG.md).

    A model trained on standardised inputs must be evaluated on inputs standardised the same
    way (``scaling.apply(data)``): loading one without ``with_scaling=True`` warns
    (``UserWarning``), since its accuracy on raw inputs would be silently wrong.

    Raises:
        FileNotFoundError: no such file.
        trainkit.FileFormatError: (a ``ValueError``) the file is truncated, malformed or was
            written by something else; the stored configuration lacks a field, has an unknown
            one or an invalid value; or the parameters do not fit it. The message names the
            file and what is wrong.

    Examples:
        >>> import jax, noisy_dyn as nd
        >>> cfg = nd.NoisyRNNConfig(input_size=1, hidden_size=8, num_classes=3)
        >>> nd.save_model("model.npz", nd.init_params(jax.random.key(0), cfg), cfg).name
        'model.npz'
        >>> cfg, params = nd.load_model("model.npz")  # a trainkit.Loaded: model, then parameters
        >>> cfg.hidden_size, params["M_W"].shape
        (8, (8, 8))
    """
    path = Path(path)
    config, arrays = load_model_file(path, package="noisy_dyn", legacy_config_key="config")
    fields = [f.name for f in dataclasses.fields(NoisyRNNConfig)]
    check_fields(path, config, fields, what="NoisyRNNConfig")
    try:
        cfg = NoisyRNNConfig(**config)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: the stored NoisyRNNConfig is invalid ({e}).") from e
    scaling = _scaling(path, arrays, cfg)
    foreign = sorted(k for k in arrays if not k.startswith(_PREFIX))
    if foreign:
        raise FileFormatError(f"{path}: unknown arrays {foreign} (parameters are param_<name>).")
    params = {k[len(_PREFIX) :]: jnp.asarray(v) for k, v in arrays.items()}
    try:
        check_params(params, cfg)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: the parameters do not fit the stored config ({e}).") from e
    if with_scaling:
        return cfg, params, scaling
    if scaling is not None:
        warnings.warn(
            f"{path}: the model was trained on standardised inputs; evaluate it on "
            "scaling.apply(data) with the scaling from load_model(path, with_scaling=True).",
            stacklevel=2,
        )
    return Loaded(cfg, params)


def _scaling(path: Path, arrays: dict, cfg: NoisyRNNConfig) -> InputScaling | None:
    """The stored standardisation (popped from ``arrays``), checked against ``cfg``."""
    found = [k for k in _SCALING if k in arrays]
    if not found:
        return None
    if len(found) != 2:
        raise FileFormatError(f"{path}: holds {found} without its pair {list(_SCALING)}.")
    mean, scale = (np.asarray(arrays.pop(k), np.float64) for k in _SCALING)
    if mean.shape != (cfg.input_size,) or scale.shape != mean.shape or np.any(scale <= 0):
        raise FileFormatError(
            f"{path}: the stored input scaling does not fit the model ({cfg.input_size} "
            f"features): shapes {mean.shape}, {scale.shape}, or a scale <= 0."
        )
    return InputScaling(mean, scale)
