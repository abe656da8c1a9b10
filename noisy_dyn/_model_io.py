"""Save and load a trained Noisy RNN: its parameters and its configuration in one ``.npz`` file.

The file layout is ``trainkit``'s model file (``docs/data_formats.md``): the parameter arrays
``param_<name>`` and the configuration's fields as JSON. Loading checks the file, the fields of
the stored configuration and the parameters' shapes against it, and names the file in every
error.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from trainkit import FileFormatError, load_model_file, save_model_file
from trainkit.internal import check_fields

from ._config import NoisyRNNConfig
from ._params import check_params

Params = dict[str, Array]

_PREFIX = "param_"


def save_model(path: str | os.PathLike, params: Params, cfg: NoisyRNNConfig) -> Path:
    """Save parameters and configuration to one ``.npz`` file (written atomically).

    Arguments:
        path: target file (``.npz`` is appended when missing).
        params: the parameter dict (``init_params`` / ``fit``).
        cfg: its configuration (stored as JSON, restored by :func:`load_model`).

    Returns:
        The path written.
    """
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(f"cfg must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    check_params(params, cfg)
    arrays = {_PREFIX + k: np.asarray(v) for k, v in jax.device_get(params).items()}
    return save_model_file(path, package="noisy_dyn", config=cfg.to_dict(), arrays=arrays)


def load_model(path: str | os.PathLike) -> tuple[Params, NoisyRNNConfig]:
    """Load ``(params, cfg)`` written by :func:`save_model`.

    Raises:
        FileNotFoundError: no such file.
        trainkit.FileFormatError: (a ``ValueError``) the file is truncated, malformed or was
            written by something else; the stored configuration lacks a field, has an unknown
            one or an invalid value; or the parameters do not fit it. The message names the
            file and what is wrong.
    """
    path = Path(path)
    config, arrays = load_model_file(path, package="noisy_dyn", legacy_config_key="config")
    fields = [f.name for f in dataclasses.fields(NoisyRNNConfig)]
    check_fields(path, config, fields, what="NoisyRNNConfig")
    try:
        cfg = NoisyRNNConfig(**config)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: the stored NoisyRNNConfig is invalid ({e}).") from e
    foreign = sorted(k for k in arrays if not k.startswith(_PREFIX))
    if foreign:
        raise FileFormatError(f"{path}: unknown arrays {foreign} (parameters are param_<name>).")
    params = {k[len(_PREFIX) :]: jnp.asarray(v) for k, v in arrays.items()}
    try:
        check_params(params, cfg)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: the parameters do not fit the stored config ({e}).") from e
    return params, cfg
