"""Data-file formats shared by both packages: IDX, array-only pickles, CIFAR-10 batches, npz
arrays, and sha256 checks. The layouts are described in ``docs/data_formats.md``.

Every reader refuses a truncated, malformed or foreign file with :class:`FileFormatError` (a
``ValueError``) whose message names the file and what is wrong with it; a missing file raises
``FileNotFoundError``. Pickles are read with an unpickler that rebuilds NumPy arrays and plain
containers and nothing else, so a pickle that tries to import ``os.system`` is refused.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Int, Real, Shaped, UInt8

from ._errors import FileFormatError
from ._validate import check_finite, check_labels

PathLike = str | os.PathLike

# --------------------------------------------------------------------------------------------
# sha256


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(data: bytes | PathLike, expected: str | None, *, name: str) -> None:
    """Raise :class:`FileFormatError` naming ``name`` unless ``sha256(data) == expected``.

    ``data`` is the bytes or the path of a file; ``expected=None`` skips the check.
    """
    if expected is None:
        return
    got = hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else sha256_file(data)
    if got != expected:
        raise FileFormatError(
            f"{name}: sha256 {got} does not match the expected {expected}"
            "; the file is corrupt or another version, fetch it again."
        )


def read_zip_member(
    archive: PathLike, member: str, *, archive_sha256: str | None, member_sha256: str | None
) -> bytes:
    """The bytes of ``member`` of a zip archive (e.g. a wheel), both hashes checked first.

    Raises:
        FileNotFoundError: no such archive.
        FileFormatError: a hash mismatch, a corrupt or truncated archive, or no such member.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} does not exist.")
    check_sha256(archive, archive_sha256, name=str(archive))
    try:
        with zipfile.ZipFile(archive) as z:
            data = z.read(member)
    except KeyError:
        raise FileFormatError(f"{archive}: has no member {member!r}.") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise FileFormatError(f"{archive}: corrupt or truncated zip archive ({e}).") from e
    check_sha256(data, member_sha256, name=f"{archive}!{member}")
    return data


def _gunzip(raw: bytes, source: str) -> bytes:
    """Decompress ``raw`` if it starts with the gzip magic ``1f 8b``; otherwise return it."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise FileFormatError(f"{source}: corrupt or truncated gzip stream ({e}).") from e


# --------------------------------------------------------------------------------------------
# IDX

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> element type (big-endian where it matters)."""


def read_idx(path: PathLike) -> Real[np.ndarray, "n ..."]:
    """Read one IDX file (raw or gzip-compressed, detected from the content).

    Layout: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions ``d >= 1``,
    then ``d`` big-endian uint32 sizes, then the values in C order, big-endian. The file must
    hold exactly ``4 + 4 d + prod(sizes) * itemsize`` bytes.

    Arguments:
        path: the file.

    Returns:
        The array, in native byte order, with the stored shape.

    Raises:
        FileNotFoundError: the file does not exist.
        FileFormatError: bad gzip stream, wrong magic number, zero dimensions, or a length that
            does not match the header (corrupt or truncated file); the message names the file.
    """
    path = Path(path)
    raw = _gunzip(path.read_bytes(), str(path))
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise FileFormatError(
            f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; expected "
            "00 00 <type code> <ndim >= 1>, e.g. 00000803 for images)."
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FileFormatError(
            f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})."
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise FileFormatError(
            f"{path}: size {len(raw)} bytes does not match the header's shape {shape} "
            f"({expected} bytes expected); the file is truncated or corrupt, fetch it again."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_idx_pair(
    images_path: PathLike, labels_path: PathLike
) -> tuple[Real[np.ndarray, "n height width"], Int[np.ndarray, " n"]]:
    """An IDX image file ``(N, H, W)`` and its IDX label file ``(N,)``; labels as int32.

    Raises:
        FileFormatError: not 3-D images, or not exactly one label per image.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise FileFormatError(
            f"{images_path}: expected images (N, H, W), got shape {images.shape}."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise FileFormatError(
            f"{labels_path}: expected {len(images)} labels to match {images_path}, "
            f"got shape {labels.shape}."
        )
    return images, labels.astype(np.int32)


FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package installs the four IDX files."""


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(
        f"{root / (stem + '.gz')} not found: a folder of IDX files holds "
        "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. For Fashion-MNIST on Debian/Ubuntu: "
        f"`apt-get install -y dataset-fashion-mnist` (installs into {FASHION_MNIST_ROOT}); or "
        "pass a folder with the four IDX files."
    )


def read_idx_folder(
    root: PathLike,
) -> tuple[
    tuple[Real[np.ndarray, "n_train height width"], Int[np.ndarray, " n_train"]],
    tuple[Real[np.ndarray, "n_test height width"], Int[np.ndarray, " n_test"]],
]:
    """The training and test pairs of an MNIST-layout folder (MNIST, Fashion-MNIST).

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` (each gzip-compressed ``.gz`` or raw, the ``.gz`` preferred)
    with :func:`read_idx_pair`; the images as stored (uint8), the labels int32.

    Raises:
        FileNotFoundError: one of the four files is missing; the message names it and how to
            get Fashion-MNIST.
    """
    root = Path(root)
    return tuple(  # type: ignore[return-value]
        read_idx_pair(
            _find_idx(root, f"{prefix}-images-idx3-ubyte"),
            _find_idx(root, f"{prefix}-labels-idx1-ubyte"),
        )
        for prefix in ("train", "t10k")
    )


# --------------------------------------------------------------------------------------------
# array-only pickles


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds NumPy arrays and plain containers, and nothing else.

    Allowed globals: ``numpy.ndarray``, ``numpy.dtype``, the array reconstructors
    ``numpy[._]core.multiarray._reconstruct`` and ``numpy[._]core.numeric._frombuffer``, and
    ``_codecs.encode`` (how protocol-2 pickles written by Python 3 store an array's raw bytes).
    Any other global (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError``.
    """

    _ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed: only NumPy arrays may be unpickled"
            )
        if module == "_codecs":
            return codecs.encode
        if module.startswith("numpy.core."):  # NumPy 2 moved numpy.core to numpy._core
            try:
                return super().find_class("numpy._core." + module.split(".", 2)[2], name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def restricted_load(data: bytes, *, source: str, encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` (optionally gzip-compressed) allowing only NumPy array globals.

    Arguments:
        data: the pickle's bytes.
        source: the file's name, for error messages.
        encoding: how Python 2 ``str`` objects are decoded (``"latin1"`` for array pickles,
            ``"bytes"`` to keep them as bytes, as CIFAR-10's batches need).

    Raises:
        FileFormatError: a forbidden global, a truncated or corrupt stream; names ``source``.
    """
    data = _gunzip(data, source)
    try:
        return ArrayOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError) as e:
        raise FileFormatError(f"{source}: not a valid pickle of NumPy arrays ({e}).") from e
    except (MemoryError, OverflowError) as e:
        raise FileFormatError(
            f"{source}: the pickle asks for an array larger than this machine can hold "
            f"({type(e).__name__}: {e or 'out of memory'}); the file is corrupt or not what it "
            "claims to be: download it again."
        ) from None


# --------------------------------------------------------------------------------------------
# CIFAR-10 python batches


def read_cifar_batch(
    path: PathLike,
) -> tuple[UInt8[np.ndarray, "n 3072"], Int[np.ndarray, " n"]]:
    """One CIFAR-10 python batch: ``(data uint8 (N, 3072), labels int32 (N,))``.

    The file (optionally gzip-compressed) is a pickled dict with ``b"data"`` uint8
    ``(N, 3072)``, each row channel-major (1024 red, 1024 green, 1024 blue values, each
    row-major over 32 x 32), and ``b"labels"``, ``N`` classes in ``0..9``.

    Raises:
        FileNotFoundError: the file does not exist.
        FileFormatError: not an array-only pickle, or the dict lacks or mis-shapes its entries.
    """
    path = Path(path)
    obj = restricted_load(path.read_bytes(), source=str(path), encoding="bytes")
    if not isinstance(obj, dict):
        raise FileFormatError(
            f"{path}: expected a dict with b'data' and b'labels', got {type(obj).__name__}."
        )
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if data is None or labels is None:
        raise FileFormatError(f"{path}: missing b'data' or b'labels' (keys: {list(obj)}).")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise FileFormatError(
            f"{path}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}."
        )
    if (
        labels.shape != (len(data),)
        or not np.issubdtype(labels.dtype, np.integer)
        or labels.min(initial=0) < 0
        or labels.max(initial=0) > 9
    ):
        raise FileFormatError(f"{path}: b'labels' must be {len(data)} integer labels in 0..9.")
    return data, labels.astype(np.int32)


def cifar_folder(root: PathLike) -> Path:
    """The folder holding ``test_batch``: ``root`` or ``root/cifar-10-batches-py``."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not (root / "test_batch").exists():
        raise FileNotFoundError(
            f"{root / 'test_batch'} not found: pass the folder holding data_batch_1..5 and "
            "test_batch (the extracted python version, cifar-10-python.tar.gz)."
        )
    return root


def read_cifar_folder(
    root: PathLike,
) -> tuple[tuple[UInt8[np.ndarray, "n 3072"], Int[np.ndarray, " n"]], ...]:
    """``((train data, train labels), (test data, test labels))`` of a CIFAR-10 folder.

    Training batches ``data_batch_1..5`` that are missing are skipped (at least one is needed);
    ``test_batch`` is required. Data stay uint8 ``(N, 3072)`` as in :func:`read_cifar_batch`.
    """
    root = cifar_folder(root)
    names = [f"data_batch_{i}" for i in range(1, 6) if (root / f"data_batch_{i}").exists()]
    if not names:
        raise FileNotFoundError(f"no data_batch_1..5 in {root}.")
    parts = [read_cifar_batch(root / n) for n in names]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, read_cifar_batch(root / "test_batch")


# --------------------------------------------------------------------------------------------
# npz arrays (a user's own data)

NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")
"""The arrays a classification ``.npz`` must hold."""

NPZ_OPTIONAL = ("lengths_train", "lengths_test")
"""The arrays it may hold (valid steps per sequence; both or neither)."""


def read_npz(
    path: PathLike, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (no pickles), with exactly the keys allowed.

    Raises:
        FileNotFoundError: no such file.
        FileFormatError: not a readable npz (truncated, corrupt, holds pickled objects), a
            required key missing or an unknown key present; the message names the file and keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected an .npz file).")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise FileFormatError(
            f"{path}: is a .npy file (one array), not an .npz archive of named arrays; write it "
            f"with np.savez(path, {', '.join(f'{k}=...' for k in required)})."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, KeyError) as e:
        raise FileFormatError(f"{path}: not a readable .npz file of arrays ({e}).") from e
    except (TypeError, AttributeError) as e:  # np.load returned something that is not an npz
        raise FileFormatError(
            f"{path}: not an .npz archive of arrays ({e}); write it with np.savez."
        ) from e
    missing = [k for k in required if k not in arrays]
    unknown = sorted(set(arrays) - set(required) - set(optional))
    if missing or unknown:
        raise FileFormatError(
            f"{path}: "
            + (f"missing the arrays {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"unknown arrays {unknown}" if unknown else "")
            + f" (it must hold {list(required)}"
            + (f", optionally {list(optional)}" if optional else "")
            + ")."
        )
    return arrays


def _check_xy(path: Path, part: str, x: np.ndarray, y: np.ndarray) -> None:
    """Checks on the raw arrays, before the casts to float32 and int32 (none may wrap)."""
    if x.dtype.kind not in "biuf" or x.ndim < 2 or len(x) == 0:
        raise FileFormatError(
            f"{path}: x_{part} must be a non-empty real array (N, ...), got {x.dtype} {x.shape}."
        )
    if 0 in x.shape[1:]:
        raise FileFormatError(
            f"{path}: x_{part} has examples of shape {x.shape[1:]}, which hold no values (a "
            "series of length 0, or an image without pixels); every axis needs length >= 1."
        )
    if y.dtype.kind not in "iu" or y.shape != (len(x),):
        raise FileFormatError(
            f"{path}: y_{part} must be {len(x)} integer labels (shape ({len(x)},)), got "
            f"{y.dtype} {y.shape}."
        )
    try:
        check_finite(f"{path}: x_{part}", x, cast_to=np.float32)
        check_labels(f"{path}: y_{part}", y, training=False)
    except ValueError as e:
        raise FileFormatError(str(e)) from None


def _check_lengths(path: Path, part: str, lengths: np.ndarray, x: np.ndarray) -> None:
    if lengths.dtype.kind not in "iu" or lengths.shape != (len(x),):
        raise FileFormatError(
            f"{path}: lengths_{part} must be {len(x)} integers, got {lengths.dtype} "
            f"{lengths.shape}."
        )
    if lengths.min() < 1 or lengths.max() > x.shape[1]:
        raise FileFormatError(
            f"{path}: lengths_{part} must lie in 1..{x.shape[1]} (the padded length of "
            f"x_{part}), got {lengths.min()}..{lengths.max()}."
        )


def read_classification_npz(
    path: PathLike, *, lengths: bool = True
) -> dict[str, Shaped[np.ndarray, "n ..."]]:
    """A user's classification data: ``x_train, y_train, x_test, y_test`` [+ ``lengths_*``].

    Checks, on the raw arrays before any cast: ``x_*`` real (bool, integer or float), finite
    and within the float32 range, with the same trailing shape; ``y_*`` integer, one label per
    example in ``[0, 2**31 - 1)`` (an int64 ``2**32 + 1`` is refused, not wrapped to 1);
    ``lengths_*`` (only when ``lengths`` is True; both or neither) integer, one per example, in
    ``1..x.shape[1]``.

    Returns:
        The arrays by name, ``x_*`` as float32, ``y_*`` and ``lengths_*`` as int32.

    Raises:
        FileFormatError: naming the file and the array that fails a check.
    """
    path = Path(path)
    arrays = read_npz(path, required=NPZ_REQUIRED, optional=NPZ_OPTIONAL if lengths else ())
    for part in ("train", "test"):
        _check_xy(path, part, arrays[f"x_{part}"], arrays[f"y_{part}"])
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise FileFormatError(
            f"{path}: x_train has examples of shape {arrays['x_train'].shape[1:]}, x_test "
            f"{arrays['x_test'].shape[1:]}; they must match."
        )
    have = [k for k in NPZ_OPTIONAL if k in arrays]
    if len(have) == 1:
        raise FileFormatError(f"{path}: has {have[0]} but not its twin; give both or neither.")
    for part in ("train", "test") if have else ():
        _check_lengths(path, part, arrays[f"lengths_{part}"], arrays[f"x_{part}"])
    return {
        k: a.astype(np.float32) if k.startswith("x_") else a.astype(np.int32)
        for k, a in arrays.items()
    }
