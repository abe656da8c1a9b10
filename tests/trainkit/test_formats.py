"""trainkit's file formats and splits against files written here byte by byte from the published
layouts (IDX, pickle, CIFAR-10 python batches, zip, npz), independently of the readers."""

import gzip
import hashlib
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trainkit import FileFormatError
from trainkit._formats import (
    check_sha256,
    read_cifar_batch,
    read_cifar_folder,
    read_classification_npz,
    read_idx,
    read_idx_pair,
    read_npz,
    read_zip_member,
    restricted_load,
    sha256_file,
)
from trainkit._splits import limit, limit_splits, split_off_validation, split_three

IDX_CODES = {">u1": 0x08, ">i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, built with struct: magic, sizes, big-endian values."""
    be = array.dtype.newbyteorder(">")
    code = IDX_CODES[be.str.replace("|", ">")]
    head = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    values = b"".join(struct.pack(">" + be.char, v) for v in array.ravel().tolist())
    return head + values


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_decodes_every_type_code(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 2)) * 50).astype(dtype)
    blob = idx_bytes(array)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    got = read_idx(path)
    assert got.shape == (3, 4, 2) and got.dtype == np.dtype(dtype)  # native byte order
    np.testing.assert_array_equal(got, array)


def _idx_corruptions(blob: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "wrong magic": b"\x01" + blob[1:],
        "unknown type code": blob[:2] + b"\x07" + blob[3:],
        "zero dimensions": blob[:3] + b"\x00",
        "truncated header": blob[:6],
        "truncated values": blob[:-1],
        "extra bytes": blob + b"\x00",
        "truncated gzip": gzip.compress(blob)[:-6],
    }


@pytest.mark.parametrize("kind", list(_idx_corruptions(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")))
def test_read_idx_refuses_corrupt_files_naming_them(tmp_path, kind):
    blob = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    path = tmp_path / f"{kind.replace(' ', '_')}.idx"
    path.write_bytes(_idx_corruptions(blob)[kind])
    with pytest.raises(FileFormatError, match=path.name):
        read_idx(path)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.idx")


def test_idx_pair_needs_one_label_per_image(tmp_path):
    (tmp_path / "i").write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    (tmp_path / "l").write_bytes(idx_bytes(np.arange(2, dtype=np.uint8)))
    with pytest.raises(FileFormatError, match="expected 3 labels"):
        read_idx_pair(tmp_path / "i", tmp_path / "l")
    (tmp_path / "l").write_bytes(idx_bytes(np.array([7, 0, 255], np.uint8)))
    images, labels = read_idx_pair(tmp_path / "i", tmp_path / "l")
    assert labels.dtype == np.int32 and labels.tolist() == [7, 0, 255]


class Evil:
    """Unpickling this calls os.system(...) unless the unpickler refuses the global."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_rebuilds_arrays_and_refuses_other_globals(tmp_path, protocol):
    arrays = {b"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": [np.int64(3).item(), 4]}
    blob = pickle.dumps(arrays, protocol=protocol)
    got = restricted_load(gzip.compress(blob), source="a.pkl", encoding="bytes")
    np.testing.assert_array_equal(got[b"x"], arrays[b"x"])
    assert got["y"] == [3, 4]
    marker = tmp_path / "pwned"
    for evil in (Evil(marker), {"data": Evil(marker)}):
        with pytest.raises(FileFormatError, match=r"evil\.pkl.*os\.system|evil\.pkl.*posix"):
            restricted_load(pickle.dumps(evil, protocol=protocol), source="evil.pkl")
    assert not marker.exists()  # os.system never ran
    with pytest.raises(
        FileFormatError, match=r"f\.pkl.*(__builtin__|builtins)\.eval is not allowed"
    ):
        restricted_load(pickle.dumps(eval, protocol=protocol), source="f.pkl")
    with pytest.raises(FileFormatError, match="t.pkl"):
        restricted_load(blob[: len(blob) // 2], source="t.pkl")


def _cifar_batch(data: np.ndarray, labels) -> bytes:
    return pickle.dumps({b"data": data, b"labels": list(labels)}, protocol=2)


def test_cifar_batch_and_folder(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    (tmp_path / "data_batch_2").write_bytes(_cifar_batch(data, [0, 9, 3, 3]))
    (tmp_path / "test_batch").write_bytes(gzip.compress(_cifar_batch(data[:2], [1, 2])))
    x, y = read_cifar_batch(tmp_path / "data_batch_2")
    np.testing.assert_array_equal(x, data)
    assert y.dtype == np.int32 and y.tolist() == [0, 9, 3, 3]
    (train_x, train_y), (test_x, test_y) = read_cifar_folder(tmp_path)  # batch 1 missing: skipped
    assert len(train_x) == 4 and test_y.tolist() == [1, 2]
    bad = {
        "labels10": _cifar_batch(data, [0, 10, 1, 1]),
        "float": _cifar_batch(data.astype(np.float32), [0, 1, 1, 1]),
        "short": _cifar_batch(data[:, :100], [0, 1, 1, 1]),
        "list": pickle.dumps([data], protocol=2),
    }
    for name, blob in bad.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(FileFormatError, match=name):
            read_cifar_batch(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        read_cifar_folder(tmp_path / "nowhere")


def test_zip_members_and_hashes(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/data.bin", b"payload")
    whl_hash = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert sha256_file(wheel) == whl_hash
    member_hash = hashlib.sha256(b"payload").hexdigest()
    got = read_zip_member(wheel, "pkg/data.bin", archive_sha256=whl_hash, member_sha256=member_hash)
    assert got == b"payload"
    with pytest.raises(FileFormatError, match=r"w\.whl: sha256 .* does not match"):
        read_zip_member(wheel, "pkg/data.bin", archive_sha256="0" * 64, member_sha256=None)
    with pytest.raises(FileFormatError, match=r"w\.whl!pkg/data\.bin: sha256"):
        read_zip_member(wheel, "pkg/data.bin", archive_sha256=None, member_sha256="0" * 64)
    with pytest.raises(FileFormatError, match="no member 'other'"):
        read_zip_member(wheel, "other", archive_sha256=None, member_sha256=None)
    cut = tmp_path / "cut.whl"
    cut.write_bytes(wheel.read_bytes()[:-30])
    with pytest.raises(FileFormatError, match=r"cut\.whl: corrupt or truncated zip"):
        read_zip_member(cut, "pkg/data.bin", archive_sha256=None, member_sha256=None)
    check_sha256(b"payload", None, name="x")  # None skips the check
    with pytest.raises(FileFormatError, match="blob"):
        check_sha256(b"payload", whl_hash, name="blob")


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _good(rng, n=6, t=5, lengths=False):
    arrays = {"x_train": rng.normal(size=(n, t, 2)), "y_train": np.arange(n) % 3,
              "x_test": rng.normal(size=(3, t, 2)), "y_test": np.array([0, 1, 2])}  # fmt: skip
    if lengths:
        arrays.update(lengths_train=np.full(n, t), lengths_test=np.array([1, 2, t]))
    return arrays


def test_classification_npz_reads_and_checks_each_array(tmp_path):
    rng = np.random.default_rng(2)
    good = _good(rng, lengths=True)
    got = read_classification_npz(_npz(tmp_path / "ok.npz", **good))
    assert got["x_train"].dtype == np.float32 and got["lengths_test"].tolist() == [1, 2, 5]
    np.testing.assert_allclose(got["x_test"], good["x_test"].astype(np.float32))
    cases = {
        "missing": (
            {k: v for k, v in good.items() if k != "y_test"},
            r"missing the arrays \['y_test'\]",
        ),
        "unknown": ({**good, "extra": np.zeros(1)}, r"unknown arrays \['extra'\]"),
        "nan": (
            {**good, "x_train": np.full((6, 5, 2), np.nan)},
            "x_train holds 60 NaN or infinite",
        ),
        "floatlabels": ({**good, "y_train": np.zeros(6)}, "y_train must be 6 integer labels"),
        "negative": (
            {**good, "y_test": np.array([0, -1, 2])},
            r"y_test holds a negative label \(-1",
        ),
        "count": ({**good, "y_train": np.zeros(5, int)}, "y_train must be 6"),
        "shape": ({**good, "x_test": np.zeros((3, 4, 2))}, "must match"),
        "onelength": ({k: v for k, v in good.items() if k != "lengths_test"}, "twin"),
        "longlength": ({**good, "lengths_test": np.array([1, 2, 6])}, r"lie in 1\.\.5"),
        "strings": ({**good, "x_test": np.array([["a"]])}, "x_test must be a non-empty real"),
    }
    for name, (arrays, message) in cases.items():
        path = _npz(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(FileFormatError, match=f"{name}.npz.*{message}"):
            read_classification_npz(path)
    no_lengths = _npz(tmp_path / "images.npz", **good)
    with pytest.raises(FileFormatError, match="unknown arrays"):
        read_classification_npz(no_lengths, lengths=False)


def test_npz_refuses_truncated_files_and_pickled_objects(tmp_path):
    path = _npz(tmp_path / "a.npz", **_good(np.random.default_rng(3)))
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:-40])
    with pytest.raises(FileFormatError, match="cut.npz"):
        read_npz(tmp_path / "cut.npz", required=("x_train",))
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FileFormatError, match="obj.npz"):
        read_npz(tmp_path / "obj.npz", required=("x_train",))
    with pytest.raises(FileNotFoundError, match="none.npz"):
        read_npz(tmp_path / "none.npz", required=())


def test_splits_follow_the_documented_permutation():
    xs, ys = np.arange(20) * 10, np.arange(20)
    train, val, test = split_three((xs, ys), seed=4, val_fraction=0.25, test_fraction=0.1)
    order = np.random.default_rng(4).permutation(20)
    assert test[1].tolist() == order[:2].tolist() and val[1].tolist() == order[2:7].tolist()
    assert train[1].tolist() == order[7:].tolist()
    np.testing.assert_array_equal(train[0], train[1] * 10)
    train, val = split_off_validation((xs, ys), seed=4, val_size=5)
    assert val[1].tolist() == sorted(order[:5]) and train[1].tolist() == sorted(order[5:])
    assert limit((xs, ys), 3)[1].tolist() == [0, 1, 2] and limit((xs,), None)[0] is xs
    with pytest.raises(ValueError, match="val_size must be in"):
        split_off_validation((xs, ys), seed=0, val_size=20)
    with pytest.raises(ValueError, match=r"must be < 1"):
        split_three((xs, ys), seed=0, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(TypeError, match="seed"):
        split_three((xs, ys), seed=-1, val_fraction=0.1, test_fraction=0.1)
    with pytest.raises(ValueError, match="limit"):
        limit((xs,), 0)
    from typing import NamedTuple

    class S(NamedTuple):
        train: tuple
        validation: tuple
        test: tuple
        vocab: dict

    s = limit_splits(S((xs,), (xs,), (xs,), {"a": 0}), (2, None, 1))
    assert [len(p[0]) for p in s[:3]] == [2, 20, 1] and s.vocab == {"a": 0}
