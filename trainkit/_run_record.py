"""A trained run's ``result.json``, checked before another command relies on it.

``compress`` (basis_ode) rebuilds a run's data from its ``result.json`` (data set, file, split
seed, size) and ``robustness`` (noisy_dyn) reads a run folder's model beside it. A record with a
key missing or of the wrong type, one that describes another model than ``model.npz``, or one
whose data no longer give the run's training set (an edited seed evaluates another split) is
refused in one line naming the file, instead of a ``KeyError`` or a silent evaluation of other
data. The training set is checked against the ``train_sha256`` the record holds, or, for runs
written before it did, against the data hash in the fingerprint of the run's newest checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._checkpoint import data_hash, load_latest_checkpoint
from ._errors import FileFormatError

_TYPES = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list"}


def read_run_record(
    path: str | os.PathLike, required: dict[str, Any], optional: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON object in ``path`` (a run's ``result.json``) with every key of ``required``
    and, when present, those of ``optional`` (key -> type, or tuple of types; ``float`` accepts
    integers, None a null).

    Raises:
        FileNotFoundError: no such file.
        FileFormatError: not a JSON object, a key missing or of another type (naming both).
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no {path.name} in {path.parent}: pass the output folder of a finished `train`."
        ) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{path}: not readable JSON ({err}).") from None
    if not isinstance(record, dict):
        raise FileFormatError(f"{path}: must hold a JSON object, got {type(record).__name__}.")
    for key, want in {**required, **(optional or {})}.items():
        want = want if isinstance(want, tuple) else (want,)
        if key not in record and key not in required:
            continue
        if key not in record:
            raise FileFormatError(
                f"{path}: the key {key!r} is missing; `train` writes it: restore the file, or "
                "train the run again."
            )
        if not _is(record[key], want):
            names = " or ".join(_TYPES.get(t, "null") for t in want)
            raise FileFormatError(
                f"{path}: {key!r} must be {names}, got {record[key]!r}; restore the file."
            )
    return record


def _is(value: Any, types: tuple) -> bool:
    for t in types:
        if t is None and value is None:
            return True
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t not in (None, float, int) and isinstance(value, t):
            return True
    return False


def check_record_fields(
    path: str | os.PathLike, stored: dict, actual: dict, what: str | os.PathLike
) -> None:
    """Refuse a record whose fields ``stored`` differ from the ``actual`` ones of ``what`` (e.g.
    the model file), naming the first differing field with both values."""
    for key in sorted(set(stored) | set(actual)):
        a, b = stored.get(key), actual.get(key)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            raise FileFormatError(
                f"{path}: describes another model than {what} ({key}: {a!r} in the record, "
                f"{b!r} in {what}); restore the run's own files."
            )


def check_training_data(record_path: str | os.PathLike, record: dict, train: tuple) -> str:
    """Refuse training data ``train`` (the arrays ``fit`` was given, rebuilt from the record)
    that are not the run's; returns what they were checked against (``"result.json"``,
    ``"checkpoint"``) or ``"nothing"`` when the run kept neither hash.

    Raises:
        FileFormatError: the data differ (e.g. an edited seed, another file).
    """
    record_path = Path(record_path)
    want, source = record.get("train_sha256"), "result.json"
    if want is None:
        found = load_latest_checkpoint(record_path.parent / "checkpoints")
        fingerprint = (found or {}).get("meta", {}).get("fingerprint") or {}
        want, source = fingerprint.get("data"), "checkpoint"
    if want is None:
        return "nothing"
    if data_hash(*train) != want:
        raise FileFormatError(
            f"{record_path}: its data set, file and split (data, data_path, seed, "
            f"validation_fraction, n_train) do not give the training data the run was trained "
            f"on (their sha256 differs from the {source}'s); restore the record, or give the "
            "data explicitly (--data, --data-path)."
        )
    return source
