"""The ``.ts`` time-series format of the UEA/UCR archive (sktime, aeon): univariate and
multivariate, equal or variable length.

A file is a header of ``@key value`` lines (``@problemName``, ``@timeStamps``, ``@missing``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true l1 l2
...``), ``#`` comment lines, then ``@data`` and one series a line::

    v1,v2,...,vT:w1,w2,...,wT:label        (one field per dimension, the class label last)

Values are decimal numbers; ``?`` is a missing value. Series may have different lengths; the
dimensions of one series must be equally long. A series whose every dimension ends in missing
values is read as ending before them (the archive pads some variable-length sets that way);
missing values anywhere else are refused, as are timestamped files (``(t, v)`` pairs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from jaxtyping import Float, Float32, Int32

from ._errors import FileFormatError

__all__ = ["TsFile", "read_ts"]


class TsFile(NamedTuple):
    """What a ``.ts`` file holds: ``series[i]`` float64 ``(T_i, F)``, ``labels[i]`` as written
    (strings), and the header ``{key (lower case): value string}``."""

    series: list[Float[np.ndarray, "_time features"]]
    labels: list[str]
    header: dict[str, str]


def _header_line(path: Path, lineno: int, line: str, header: dict[str, str]) -> None:
    key, _, value = line[1:].partition(" ")
    header[key.strip().lower()] = value.strip()


def _flag(header: dict[str, str], key: str) -> bool | None:
    value = header.get(key, "").split()
    return None if not value else value[0].lower() == "true"


def _values(path: Path, lineno: int, field: str) -> np.ndarray:
    try:
        return np.asarray(field.replace("?", "nan").split(","), dtype=np.float64)
    except ValueError:
        bad = next(v for v in field.split(",") if not _number(v))
        raise FileFormatError(
            f"{path}, line {lineno}: {bad.strip()[:30]!r} is not a number (values are separated "
            "by ',' and dimensions by ':'; '?' marks a missing value)."
        ) from None


def _number(text: str) -> bool:
    try:
        float(text.replace("?", "nan"))
        return True
    except ValueError:
        return False


def _trim_missing(path: Path, lineno: int, x: np.ndarray) -> np.ndarray:
    """``x`` ``(T, F)`` without a common trailing run of missing values; interior NaN refused."""
    finite = np.all(np.isfinite(x), axis=1)
    if finite.all():
        return x
    end = len(finite) - int(np.argmax(finite[::-1])) if finite.any() else 0
    if end == 0 or not finite[:end].all() or np.isfinite(x[end:]).any():
        raise FileFormatError(
            f"{path}, line {lineno}: missing values ('?') inside the series; only a common "
            "trailing run (padding) is read. Impute them first."
        )
    return x[:end]


def _series(path: Path, lineno: int, line: str, labelled: bool, dims: int | None) -> tuple:
    if "(" in line:
        raise FileFormatError(
            f"{path}, line {lineno}: timestamped series ((t, v) pairs) are not read; save the "
            "values alone, one dimension a ':'-separated field."
        )
    fields = line.split(":")
    label = fields.pop().strip() if labelled else ""
    if labelled and (not label or not fields):
        raise FileFormatError(f"{path}, line {lineno}: expected values:...:label.")
    if dims is not None and len(fields) != dims:
        raise FileFormatError(
            f"{path}, line {lineno}: {len(fields)} dimension(s), the header declares {dims}."
        )
    columns = [_values(path, lineno, f) for f in fields]
    if len({len(c) for c in columns}) != 1:
        raise FileFormatError(
            f"{path}, line {lineno}: dimensions of lengths {[len(c) for c in columns]}; the "
            "dimensions of one series must be equally long."
        )
    return _trim_missing(path, lineno, np.stack(columns, axis=1)), label


def read_ts(path: str | os.PathLike) -> TsFile:
    """Read a ``.ts`` file (module docstring): its series, labels and header.

    Raises:
        FileNotFoundError: no such file.
        FileFormatError: a malformed line, naming the file, the line and the fix; no ``@data``;
            no series; a file without class labels (``@classLabel false``: a regression or
            unlabelled set); series of different numbers of dimensions.
    """
    path = Path(path)
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower() == "@data":
                    in_data = True
                    labelled = _labelled(path, header)
                    dims = _dimensions(header)
                elif line.startswith("@"):
                    _header_line(path, lineno, line, header)
                else:
                    raise FileFormatError(f"{path}, line {lineno}: a data line before @data.")
                continue
            x, label = _series(path, lineno, line, labelled, dims)
            dims = x.shape[1] if dims is None else dims
            series.append(x)
            labels.append(label)
    if not in_data:
        raise FileFormatError(f"{path}: no @data line; not a .ts file.")
    if not series:
        raise FileFormatError(f"{path}: no series after @data.")
    return TsFile(series, labels, header)


def _labelled(path: Path, header: dict[str, str]) -> bool:
    flag = _flag(header, "classlabel")
    if flag is False or (flag is None and "targetlabel" in header):
        raise FileFormatError(
            f"{path}: the file has no class labels (@classLabel false or @targetLabel: a "
            "regression or unlabelled set); classification needs @classLabel true."
        )
    return True


def _dimensions(header: dict[str, str]) -> int | None:
    if _flag(header, "univariate"):
        return 1
    value = header.get("dimensions", "").split()
    return int(value[0]) if value and value[0].isdigit() else None


def label_order(labels: list[str]) -> list[str]:
    """The distinct ``labels`` in class order: numerically when every label is a number
    (``1, 2, 10``), else sorted as text."""
    distinct = sorted(set(labels))
    try:
        numbers = {label: float(label) for label in distinct}
    except ValueError:
        return distinct
    if not all(math.isfinite(v) for v in numbers.values()):
        return distinct
    return sorted(distinct, key=lambda label: (numbers[label], label))


def pad_series(
    series: list[Float[np.ndarray, "_time features"]], steps: int | None = None
) -> tuple[Float32[np.ndarray, "n max_time features"], Int32[np.ndarray, " n"]]:
    """``(inputs float32 (N, T, F) zero-padded on the right, lengths int32 (N,))`` with ``T``
    the longest series (or ``steps``)."""
    lengths = np.asarray([len(s) for s in series], np.int32)
    steps = int(lengths.max()) if steps is None else steps
    inputs = np.zeros((len(series), steps, series[0].shape[1]), np.float32)
    for i, s in enumerate(series):
        inputs[i, : len(s)] = s
    return inputs, lengths
