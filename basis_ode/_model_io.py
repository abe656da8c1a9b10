"""Save and load a trained basis_ode model: the Flax module's configuration and its variables.

``save_model(path, model, variables)`` writes one ``.npz`` file (``trainkit``'s model file,
``docs/data_formats.md``) holding

- the model's class (``ConvODENet``, ``ODETransformerTagger`` or ``ResNet``) and every
  configuration field of the module, objects by their names: the init basis ``basis`` by its
  family name (its K is the file's ``K``), the scheme ``method`` by its name (``"rk4"``),
  ``param_dtype`` by its dtype name;
- every variable collection (``params``, ``batch_stats``, ...) with its exact pytree keys: each
  array leaf is a member ``v<i>`` of the archive, each plain leaf (a string, number or None) is
  stored in the JSON, and the list of key paths rebuilds the same nested dicts; a
  :class:`basis_ode.BasisExpansion` is one entry ``{"path": [...], "expansion": "<family>"}``
  followed by its coefficients under the same path (K is their leading axis);
- K, the number of basis functions (the leading axis of the expansions), once more at the top
  level, which checks the arrays.

Files of the earlier format (fields ``basis`` and ``n_basis``, the basis name-encoded in a
collection ``"basis"`` of tags ``"<family>_K<K>"``) still load: the family is read from the tag
and the coefficients are wrapped in expansions, each tag's K checked against their leading axis
(:func:`upgrade_legacy_variables`; ``fit`` converts training checkpoints of that format with the
same function).

``load_model(path) -> Loaded(model, variables)`` rebuilds both and refuses a file that is truncated,
malformed, written by something else, or whose configuration lacks a field or has an unknown
one, with ``trainkit.FileFormatError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from trainkit import FileFormatError, Loaded, load_model_file, save_model_file
from trainkit.internal import check_fields

from ._bases import Basis, basis_by_name
from ._expansion import BasisExpansion
from ._integrate import ButcherTableau, scheme_by_name, scheme_name
from ._models import ConvODENet, ODETransformerTagger, ResNet

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

MODEL_CLASSES = {cls.__name__: cls for cls in (ConvODENet, ODETransformerTagger, ResNet)}
"""The model classes a model file can hold, by name."""

_MODULE_FIELDS = ("parent", "name")  # Flax's own dataclass fields, not configuration
_DTYPE_FIELDS = ("param_dtype", "dtype")


def _config_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in _MODULE_FIELDS]


def _field_to_json(cls: type, name: str, value: Any) -> Any:
    if name in _DTYPE_FIELDS and value is not None:
        return np.dtype(value).name
    if isinstance(value, Basis):
        return value.name
    if isinstance(value, ButcherTableau):
        return scheme_name(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple) and all(isinstance(v, int | np.integer) for v in value):
        return [int(v) for v in value]  # n_steps per block
    raise TypeError(f"{cls.__name__}.{name} = {value!r} cannot be stored in a model file.")


def _field_from_json(path: Path, name: str, value: Any, K: Any) -> Any:
    if name in _DTYPE_FIELDS and value is not None:
        if not isinstance(value, str) or not hasattr(jnp, value):
            raise FileFormatError(f"{path}: field {name} holds an unknown dtype {value!r}.")
        return getattr(jnp, value)
    if name == "n_steps" and isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise FileFormatError(f"{path}: field n_steps = {value!r} is not a list of ints.")
        return tuple(value)  # one count per block
    try:
        if name == "basis":
            return basis_by_name(value, int(K))
        if name == "method":
            return scheme_by_name(value)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: field {name} = {value!r} is invalid ({e}).") from e
    return value


def _flatten(tree: Mapping, prefix: tuple[str, ...], out: list, arrays: dict) -> None:
    """Record every leaf of the nested mapping ``tree`` with its key path."""
    if not tree:
        out.append({"path": list(prefix), "empty": True})
    for key, value in tree.items():
        if not isinstance(key, str):
            raise TypeError(f"variables keys must be strings, got {key!r} at {list(prefix)}.")
        path = (*prefix, key)
        if isinstance(value, BasisExpansion):
            out.append({"path": list(path), "expansion": value.family.name})
            _flatten(value.coeffs, path, out, arrays)
        elif isinstance(value, Mapping):
            _flatten(value, path, out, arrays)
        elif isinstance(value, jax.Array | np.ndarray | np.generic):
            name = f"v{len(arrays)}"
            arrays[name] = np.asarray(jax.device_get(value))
            out.append({"path": list(path), "array": name})
        elif value is None or isinstance(value, bool | int | float | str):
            out.append({"path": list(path), "value": value})
        else:
            raise TypeError(
                f"variables{''.join(f'[{k!r}]' for k in path)} is a {type(value).__name__}; a "
                "model file holds arrays, strings, numbers and None."
            )


def _basis_K(variables: Mapping) -> int | None:
    """K: the leading axis of the first ``basis_coeffs`` leaf in ``params`` (None if none)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(dict(variables.get("params", {}))):
        if any(getattr(p, "key", None) == "basis_coeffs" for p in path):
            return int(np.shape(leaf)[0])
    return None


def _wrap_expansions(path: Any, tree: Any, marks: list[tuple[list[str], str]]) -> Any:
    """Replace the subtree at each marked path by ``BasisExpansion(family(K), subtree)``."""
    for keys, family in marks:
        node = tree
        for k in keys[:-1]:
            node = node[k]
        coeffs = node[keys[-1]]
        try:
            K = int(np.shape(jax.tree_util.tree_leaves(coeffs)[0])[0])
            node[keys[-1]] = BasisExpansion(basis_by_name(family, K), coeffs)
        except (IndexError, TypeError, ValueError) as e:
            raise FileFormatError(f"{path}: the basis expansion at {keys} is invalid ({e}).") from e
    return tree


def legacy_tags(path: Any, tags: Any) -> tuple[str, int]:
    """``(family, K)`` of the earlier format's tag collection ``{<block>: {"<family>_K<K>": K}}``
    (every tag must name the same family and K)."""
    found: set[tuple[str, str]] = set()

    def walk(t: Any) -> None:
        for k, v in t.items():
            walk(v) if isinstance(v, Mapping) else found.add(k.rpartition("_K")[::2])

    walk(tags)
    if len({name for name, _ in found}) != 1:
        names = sorted({name for name, _ in found})
        raise FileFormatError(f"{path}: the basis tags name {names}, not one family.")
    if len(found) != 1 or not next(iter(found))[1].isdigit():
        raise FileFormatError(f"{path}: the basis tags name the sizes {sorted(found)}, not one K.")
    family, K = found.pop()
    return family, int(K)


def _legacy_marks(tree: Any, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """The key paths of every ``basis_coeffs`` subtree (the earlier format's blocks)."""
    out = []
    for k, v in tree.items():
        if k == "basis_coeffs":
            out.append([*prefix, k])
        elif isinstance(v, Mapping):
            out += _legacy_marks(v, (*prefix, k))
    return out


def wrap_legacy_coefficients(path: Any, tree: Any, family: str, K: int) -> Any:
    """A nested dict of the earlier format with every ``basis_coeffs`` subtree (plain arrays
    with a leading K axis) wrapped as ``BasisExpansion(family(K), subtree)`` (in place).

    Raises:
        trainkit.FileFormatError: a subtree's leading axis is not ``K``, naming ``path``.
    """
    marks = _legacy_marks(tree)
    for keys in marks:
        node = tree
        for k in keys:
            node = node[k]
        axes = {np.shape(x)[0] if np.ndim(x) else None for x in jax.tree_util.tree_leaves(node)}
        if axes != {K}:
            raise FileFormatError(
                f"{path}: the coefficients at {keys} have leading axes {sorted(axes, key=str)}; "
                f"the basis tags say K = {K}."
            )
    return _wrap_expansions(path, tree, [(keys, family) for keys in marks])


def upgrade_legacy_variables(path: Any, variables: dict[str, Any]) -> dict[str, Any]:
    """Variables of the earlier format in today's layout (in place): the tag collection
    ``"basis"`` is dropped and every block's ``basis_coeffs`` becomes a
    :class:`BasisExpansion` in the tagged family, its K checked against the tags.

    Raises:
        trainkit.FileFormatError: the tags name several families or sizes, or disagree with
            the coefficients' leading axis; the message names ``path``.
    """
    family, K = legacy_tags(path, variables.pop("basis"))
    return wrap_legacy_coefficients(path, variables, family, K)


def save_model(path: str | os.PathLike, model: Any, variables: Mapping[str, Any]) -> Path:
    """Save a model's configuration and its variables to one ``.npz`` file (written atomically).

    Arguments:
        path: target file (``.npz`` is appended when missing).
        model: a :class:`ConvODENet`, :class:`ODETransformerTagger` or :class:`ResNet`, as
            returned by ``fit`` (after refinement its ``basis`` and ``n_steps`` are the final
            ones).
        variables: its variables ``{"params": ..., "batch_stats": ..., ...}``; every collection
            and key is stored.

    Returns:
        The path written.
    """
    cls = type(model)
    if MODEL_CLASSES.get(cls.__name__) is not cls:
        raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {cls.__name__}.")
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise TypeError("variables must be the dict of collections returned by init or fit.")
    fields = {n: _field_to_json(cls, n, getattr(model, n)) for n in _config_fields(cls)}
    leaves: list = []
    arrays: dict[str, np.ndarray] = {}
    _flatten(variables, (), leaves, arrays)
    config = {"class": cls.__name__, "fields": fields, "K": _basis_K(variables),
              "variables": leaves}  # fmt: skip
    return save_model_file(path, package="basis_ode", config=config, arrays=arrays)


def _unflatten(path: Path, leaves: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if not isinstance(leaves, list):
        raise FileFormatError(f"{path}: the stored variables are not a list of leaves.")
    tree: dict[str, Any] = {}
    used = set()
    for entry in leaves:
        keys = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise FileFormatError(f"{path}: a stored variable has no key path ({entry!r}).")
        node = tree
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if entry.get("empty"):
            if keys:
                node.setdefault(keys[-1], {})
        elif "expansion" in entry:
            node.setdefault(keys[-1], {})
        elif "array" in entry:
            if entry["array"] not in arrays:
                raise FileFormatError(f"{path}: the array {entry['array']!r} of {keys} is missing.")
            node[keys[-1]] = jnp.asarray(arrays[entry["array"]])
            used.add(entry["array"])
        else:
            node[keys[-1]] = entry.get("value")
    if set(arrays) - used:
        raise FileFormatError(f"{path}: arrays {sorted(set(arrays) - used)} belong to no variable.")
    return tree


def load_model(path: str | os.PathLike) -> Loaded:
    """Load a :class:`trainkit.Loaded` ``(model, params)`` written by :func:`save_model`: the
    Flax module and its variables (``model.apply(variables, xs, train=False)``), the same order
    as ``noisy_dyn.load_model`` and ``fit``'s :class:`trainkit.Trained`.

    Raises:
        FileNotFoundError: no such file.
        trainkit.FileFormatError: (a ``ValueError``) the file is truncated, malformed or was
            written by something else, or its configuration lacks a field, has an unknown one
            or an invalid value; the message names the file and what is wrong.
    """
    path = Path(path)
    config, arrays = load_model_file(path, package="basis_ode")
    check_fields(path, config, ("class", "fields", "K", "variables"), what="model description")
    cls = MODEL_CLASSES.get(config["class"])
    if cls is None:
        raise FileFormatError(
            f"{path}: unknown model class {config['class']!r}; expected one of "
            f"{sorted(MODEL_CLASSES)}."
        )
    fields = config["fields"]
    if not isinstance(fields, dict):
        raise FileFormatError(f"{path}: the stored {cls.__name__} fields are not a JSON object.")
    fields = dict(fields)
    n_basis = fields.pop("n_basis", None)  # the earlier format's init K
    check_fields(path, fields, _config_fields(cls), what=f"{cls.__name__} configuration")
    variables = _unflatten(path, config["variables"], arrays)
    marks = [
        (e["path"], e["expansion"])
        for e in config["variables"]
        if isinstance(e, dict) and "expansion" in e
    ]
    legacy = "basis" in variables and not marks  # the earlier format: tags, plain coefficients
    if _basis_K(variables) != config["K"]:
        raise FileFormatError(
            f"{path}: the variables hold K = {_basis_K(variables)} basis functions but the file "
            f"records K = {config['K']}; the file is corrupt."
        )
    if legacy:
        variables = upgrade_legacy_variables(path, variables)
    else:
        variables = _wrap_expansions(path, variables, marks)
    K = config["K"] if config["K"] is not None else n_basis
    try:
        model = cls(**{k: _field_from_json(path, k, v, K) for k, v in fields.items()})
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: the stored {cls.__name__} is invalid ({e}).") from e
    return Loaded(model, variables)
