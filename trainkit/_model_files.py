"""Model files: named arrays plus a JSON configuration in one ``.npz``, written atomically.

Layout (``docs/data_formats.md``): an uncompressed, byte-reproducible NumPy ``.npz`` archive
whose member ``__meta__`` is the UTF-8 JSON ``{"format": "trainkit-model", "version": 1,
"package": ..., "config": {...}, "dtypes": {...}}`` stored as a uint8 array, and whose other
members are the model's arrays. Arrays of a dtype NumPy cannot store (bfloat16) are stored as
unsigned integers of the same width and their dtype name recorded under ``"dtypes"``.

:func:`load_model_file` refuses a truncated, malformed or foreign file with
:class:`FileFormatError` naming the file and what is wrong; :func:`check_fields` does the same
for a stored configuration with a missing or unknown field.
"""

from __future__ import annotations

import errno
import filecmp
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Shaped

from ._atomic import atomic_write, fsync_dir, unique_temporary
from ._errors import FileFormatError
from ._jax_private import process_index

MODEL_FORMAT = "trainkit-model"
"""The ``"format"`` tag of a model file's metadata."""

MODEL_VERSION = 1
"""The layout version written; files of a newer version are refused."""

META_KEY = "__meta__"
"""The member of a model file that holds the JSON metadata."""


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):  # NumPy scalars in a configuration
        return obj.item()
    raise TypeError(f"cannot store {obj!r} ({type(obj).__name__}) in a model file's JSON.")


def _storable(name: str, value: Any) -> tuple[np.ndarray, str | None]:
    arr = np.asarray(value)
    if arr.dtype.kind == "V":  # e.g. bfloat16 (ml_dtypes): store the bits
        return arr.view(f"u{arr.dtype.itemsize}"), arr.dtype.name
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"array {name!r} has dtype {arr.dtype}; a model file holds numbers only.")
    return arr, None


def save_model_file(
    path: str | os.PathLike, *, package: str, config: Mapping[str, Any], arrays: Mapping[str, Any]
) -> Path:
    """Write ``arrays`` and the JSON ``config`` to ``path`` (``.npz`` appended when missing).

    The write is atomic (temporary file, fsync, rename, fsync of the directory), so a reader
    sees the old file or the new one. Returns the path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    stored, dtypes = {}, {}
    for name, value in arrays.items():
        if name == META_KEY:
            raise ValueError(f"{META_KEY!r} is reserved for the metadata of a model file.")
        stored[name], dtype = _storable(name, value)
        if dtype is not None:
            dtypes[name] = dtype
    meta = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "package": package,
            "config": dict(config), "dtypes": dtypes}  # fmt: skip
    blob = json.dumps(meta, default=_json_default, allow_nan=False).encode()
    stored[META_KEY] = np.frombuffer(blob, dtype=np.uint8)
    return atomic_write(path, lambda f: write_npz(f, stored))


def write_npz(file: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to the binary ``file``, byte-reproducibly.

    Like ``numpy.savez`` (``np.load`` reads it), but every member carries the fixed timestamp
    1980-01-01, so the same arrays always give the same bytes.
    """
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as z:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


def write_if_changed(path: str | os.PathLike, write: Callable[[Path], Any]) -> bool:
    """Let ``write(tmp)`` write a new version of ``path``; keep the old file if it is identical.

    ``tmp`` is a temporary name beside ``path`` unique to this call (two writers never share
    one), renamed over ``path`` when the bytes differ. Returns True when ``path`` was
    (re)written, False when its bytes were already the new ones (e.g. the outputs of a run that
    was already complete), in which case it is not touched; that holds in a read-only folder
    and on a full disk too (the new version is then compared from the system's temporary
    folder). A full disk otherwise raises ``OSError`` naming ``path``. In a job of several
    processes (``jax.distributed``) only process 0 writes; the others return False.
    """
    path = Path(path)
    if process_index() != 0:
        return False
    tmp = unique_temporary(path)
    try:
        try:
            write(tmp)
        except OSError as err:
            if path.is_file() and _cannot_write(err) and _same_as(path, write):
                return False
            named = _named(err, path)
            if named is err:
                raise
            raise named from err
        if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
            return False
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def write_run_files(
    out: str | os.PathLike,
    save_model: Callable[[Path], Any],
    history: Mapping[str, Any],
    result: Mapping[str, Any],
) -> bool:
    """Write a trained run's files to the folder ``out`` (both command lines' run folders).

    ``model.npz`` is written by ``save_model(path)``, ``history.json`` and ``result.json`` are
    ``json.dumps(obj, indent=1)`` and a newline. Each goes through :func:`write_if_changed`, so
    a file whose bytes would not change is left untouched and rerunning a finished job leaves
    its outputs as they are. Returns True when any file was (re)written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    changed = write_if_changed(out / "model.npz", save_model)
    for name, obj in (("history.json", history), ("result.json", result)):
        text = json.dumps(obj, indent=1) + "\n"
        changed |= write_if_changed(out / name, lambda p, t=text: p.write_text(t))
    return changed


def _cannot_write(err: OSError) -> bool:
    return err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


def _named(err: OSError, path: Path) -> OSError:
    """``err`` as an error naming ``path`` (not the temporary file beside it)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return OSError(err.errno, f"{err.strerror} while writing {path}; free some space (or "
                       "use another --out) and run the same command again", str(path))  # fmt: skip
    return err


def _same_as(path: Path, write: Callable[[Path], Any]) -> bool:
    """Whether ``write`` would produce ``path``'s bytes (written in the temporary folder)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / path.name
        write(tmp)
        return tmp.is_file() and filecmp.cmp(tmp, path, shallow=False)


def _read_members(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"No model file {path}.")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, Mapping):
                raise FileFormatError(f"{path}: a single .npy array, not a model file (.npz).")
            return {k: z[k] for k in z.files}
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, KeyError) as e:
        raise FileFormatError(
            f"{path}: not a readable model file (truncated, corrupt or not an .npz: {e})."
        ) from e


def _read_meta(path: Path, members: dict[str, np.ndarray], package: str) -> dict[str, Any]:
    try:
        meta = json.loads(members.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: the model file's metadata is not valid JSON ({e}).") from e
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise FileFormatError(f"{path}: not a model file (its metadata has no trainkit format).")
    if meta.get("version") != MODEL_VERSION:
        raise FileFormatError(
            f"{path}: model file version {meta.get('version')!r}; this version reads "
            f"{MODEL_VERSION}. Update the package or save the model again."
        )
    if meta.get("package") != package:
        raise FileFormatError(
            f"{path}: written by {meta.get('package')}.save_model, not {package}'s; load it "
            f"with {meta.get('package')}.load_model."
        )
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("dtypes", {}), dict):
        raise FileFormatError(f"{path}: the model file's metadata has no configuration.")
    return meta


def load_model_file(
    path: str | os.PathLike, *, package: str, legacy_config_key: str | None = None
) -> tuple[dict[str, Any], dict[str, Shaped[np.ndarray, ...]]]:
    """Read ``(config, arrays)`` written by :func:`save_model_file` for ``package``.

    Arguments:
        path: the file.
        package: the package that must have written it (``"noisy_dyn"`` or ``"basis_ode"``).
        legacy_config_key: also accept an older layout whose configuration is the JSON member
            of this name (with no ``__meta__``).

    Raises:
        FileNotFoundError: no such file.
        FileFormatError: truncated, corrupt, not a model file, another package's, or a newer
            layout; the message names the file.
    """
    path = Path(path)
    members = _read_members(path)
    if META_KEY not in members and legacy_config_key in members:
        try:
            config = json.loads(members.pop(legacy_config_key).tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FileFormatError(f"{path}: the stored configuration is not JSON ({e}).") from e
        if not isinstance(config, dict):
            raise FileFormatError(f"{path}: the stored configuration is not a JSON object.")
        return config, members
    if META_KEY not in members:
        raise FileFormatError(
            f"{path}: not a model file written by {package}.save_model (no {META_KEY} member)."
        )
    meta = _read_meta(path, members, package)
    for name, dtype in meta.get("dtypes", {}).items():
        if name not in members:
            raise FileFormatError(f"{path}: the metadata names an array {name!r} it lacks.")
        members[name] = members[name].view(_named_dtype(path, dtype))
    return meta["config"], members


def _named_dtype(path: Path, name: str) -> np.dtype:
    try:
        return np.dtype(getattr(jnp, name))
    except (AttributeError, TypeError):
        raise FileFormatError(f"{path}: unknown array dtype {name!r} in the metadata.") from None


def check_fields(
    path: str | os.PathLike, config: Mapping[str, Any], fields: Iterable[str], *, what: str
) -> None:
    """Raise :class:`FileFormatError` unless ``config`` has exactly the keys ``fields``.

    The message names the file, ``what`` (e.g. ``"NoisyRNNConfig"``), the missing and the
    unknown fields.
    """
    fields = list(fields)
    missing = [f for f in fields if f not in config]
    unknown = sorted(set(config) - set(fields))
    if missing or unknown:
        parts = ([f"lacks the fields {missing}"] if missing else []) + (
            [f"has unknown fields {unknown}"] if unknown else []
        )
        raise FileFormatError(
            f"{path}: the stored {what} " + " and ".join(parts) + " (written by another "
            "version of the package, or edited); save the model again with this version."
        )
