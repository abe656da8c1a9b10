"""Export an Euler configuration of a ConvODENet as a plain ResNet that needs no basis_ode.

With explicit Euler and ``n`` steps, block ``i`` of a ConvODENet computes
``h_{j+1} = h_j + F(theta(t_j), s(t_j); h_j) / n`` at ``t_j = j / n`` (parameters ``theta`` and
BatchNorm statistics ``s`` alike): an ``n``-layer residual stage whose layer ``j`` has the
weights ``W_j = sum_k phi_k(t_j) theta_k``. For the piecewise-constant basis ``phi(t_j)`` is a
unit vector, so ``W_j`` is one of the K coefficient sets (``k = floor(j K / n)``, exact
rationals, :func:`basis_ode.stage_basis`) and the export stores each used set once, with the
layer-to-set table; for the other families the ``n`` weight sets ``W_j`` are formed in float64
and stored. The folder written holds

- ``model.py``: a Flax module and a ``load(folder)`` function (JAX, Flax and NumPy only);
- ``weights.npz``: the variables, one array per ``collection/module/.../name`` key;
- ``config.json``: classes, width, the layer table, and the configuration it came from.

``model.py`` is the source of ``basis_ode._standalone_resnet``, copied verbatim.
"""

from __future__ import annotations

import inspect
import io
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from trainkit import atomic_write, atomic_write_text

from . import _standalone_resnet
from ._integrate import EULER, stage_basis
from ._models import ConvODENet
from ._plan import block_names, source_configuration

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


def _layer_weights(coeffs: Any, basis: Any, n: int) -> tuple[list[Any], list[int]]:
    """``(weight sets, layer table)`` of one block run with ``n`` Euler steps: the used
    coefficient sets and the set of each layer where the basis is a unit vector at every stage
    time (piecewise constant), else the ``n`` sets ``Phi @ coeffs`` (float64, then the
    coefficients' dtype)."""
    phi = stage_basis(basis, n, EULER)[:, 0, :]
    cells = np.argmax(phi, axis=1)
    if np.array_equal(phi, np.eye(basis.K)[cells]):
        used = sorted(set(cells.tolist()))
        sets = [jax.tree_util.tree_map(lambda c, k=k: np.asarray(c)[k], coeffs) for k in used]
        return sets, [used.index(k) for k in cells.tolist()]

    def mix(row: np.ndarray) -> Any:
        return jax.tree_util.tree_map(
            lambda c: np.tensordot(row, np.asarray(c, np.float64), axes=1).astype(c.dtype), coeffs
        )

    return [mix(row) for row in phi], list(range(n))


def _flat(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    for k, v in tree.items():
        key = f"{prefix}/{k}"
        if isinstance(v, dict):
            _flat(v, key, out)
        else:
            out[key] = np.asarray(jax.device_get(v))


def export_resnet(path: str | os.PathLike, model: ConvODENet, variables: Any) -> Path:
    """Write an Euler configuration of a ConvODENet as a plain ResNet folder (no basis_ode).

    The model's ``method`` must be Euler; its ``n_steps`` (one int, a tuple per block, or None
    for each block's K) and each block's basis are the configuration exported, e.g. the model
    and variables of :func:`basis_ode.adapt` or of ``basis_ode.plan(...)``. Logits of the
    exported network equal the ODE-Net's to float32 rounding (bit for bit for the
    piecewise-constant basis on the CPU in the tests).

    Arguments:
        path: the folder to write (created; ``model.py``, ``weights.npz``, ``config.json``).
        model: a :class:`basis_ode.ConvODENet` with ``method=EULER``.
        variables: its variables (each block in any basis).

    Returns:
        The folder. Load it anywhere with ``import model; net, v = model.load(folder)`` and
        ``net.apply(v, x)``.

    Raises:
        ValueError: the scheme is not Euler, or the model is not a ConvODENet.

    Examples:
        >>> import jax, jax.numpy as jnp, basis_ode as bo
        >>> model = bo.ConvODENet(width=4, basis=bo.PiecewiseConstant(2), n_steps=2)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
        >>> bo.export_resnet("resnet", model, variables).name  # a plain Flax ResNet, 2 blocks
        'resnet'
    """
    if not isinstance(model, ConvODENet):
        raise ValueError(
            f"export_resnet exports a ConvODENet, got {type(model).__name__}; the tagger's "
            "attention unit has no plain-ResNet twin here."
        )
    config = source_configuration(model, variables)
    if config.scheme != EULER:
        raise ValueError(
            f"export_resnet: only an Euler configuration is a ResNet, this one uses "
            f"{config.scheme.name}; choose an Euler configuration (plan with "
            "SearchSpace(schemes=(EULER,)), or model.clone(method=basis_ode.EULER))."
        )
    params = {k: v for k, v in variables["params"].items()}
    stats = {k: v for k, v in variables.get("batch_stats", {}).items()}
    names = block_names(variables)
    tables = []
    for i, (name, basis, n) in enumerate(zip(names, config.bases, config.n_steps)):
        table = None
        for coll in (params, stats):
            if name[0] not in coll:
                continue
            e = coll.pop(name[0])["basis_coeffs"]
            sets, table = _layer_weights(e.coeffs, basis, n)
            for k, s in enumerate(sets):
                coll[f"stage{i}_w{k}"] = s
        tables.append(table)
    flat: dict[str, np.ndarray] = {}
    _flat({"params": params, "batch_stats": stats}, "", flat)
    flat = {k.lstrip("/"): v for k, v in flat.items()}
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **flat)
    atomic_write(out / "weights.npz", buf.getvalue())
    meta = {
        "format": _standalone_resnet.FORMAT,
        "version": _standalone_resnet.VERSION,
        "num_classes": int(model.num_classes),
        "width": int(model.width),
        "layers": tables,
        "exported_from": config.to_json() | {"label": config.label},
    }
    atomic_write_text(out / "config.json", json.dumps(meta, indent=1) + "\n")
    atomic_write_text(out / "model.py", inspect.getsource(_standalone_resnet))
    return out
