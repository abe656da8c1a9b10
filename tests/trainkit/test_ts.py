"""The .ts reader (UEA/UCR archive format) on files written here, and the noisy_dyn loader on
top of it; the aeon wheel's real files when it has been downloaded."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import noisy_dyn
import trainkit
from trainkit import FileFormatError, read_ts

HEADER_MULTI = """# a comment line
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions {dims}
@equalLength false
@classLabel true {labels}
@data
"""


def _write(path: Path, series: list[np.ndarray], labels: list[str], *, header: str) -> Path:
    """One line per series: each dimension's values joined by ',', dimensions by ':'."""
    lines = [
        ":".join(",".join(repr(float(v)) for v in s[:, d]) for d in range(s.shape[1])) + f":{lab}"
        for s, lab in zip(series, labels)
    ]
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def _random_set(rng, n, dims, low, high, labels):
    series = [rng.standard_normal((int(rng.integers(low, high + 1)), dims)) for _ in range(n)]
    return series, [labels[i % len(labels)] for i in range(n)]


def test_multivariate_variable_length_series_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    series, labels = _random_set(rng, 9, 3, 4, 11, ["1", "2", "10"])
    path = _write(tmp_path / "Toy_TRAIN.ts", series, labels,
                  header=HEADER_MULTI.format(dims=3, labels="1 2 10"))  # fmt: skip
    got = read_ts(path)
    assert got.labels == labels and got.header["problemname"] == "Toy"
    assert len(got.series) == len(series)
    for a, b in zip(got.series, series):
        np.testing.assert_array_equal(a, b)  # repr() round-trips float64 exactly


def test_univariate_equal_length_and_trailing_missing_values(tmp_path):
    text = ("@problemName Uni\n@univariate true\n@equalLength true\n@seriesLength 4\n"
            "@classLabel true a b\n@data\n1.5,2,3,4:a\n-1,0.25,?,?:b\n")  # fmt: skip
    (tmp_path / "u.ts").write_text(text)
    got = read_ts(tmp_path / "u.ts")
    np.testing.assert_array_equal(got.series[0][:, 0], [1.5, 2, 3, 4])
    np.testing.assert_array_equal(got.series[1][:, 0], [-1, 0.25])  # the ? padding dropped
    assert got.labels == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("1,?,3:a\n", "missing values"),
        ("(2007-01-01 00:00:00,1.0),(2007-01-01 00:01:00,2.0):a\n", "timestamped"),
        ("1,2:3,4:a\n", "2 dimension"),
        ("1,x,3:a\n", "'x' is not a number"),
        ("", "no series"),
    ],
)
def test_malformed_files_are_refused_naming_the_line(tmp_path, body, match):
    path = tmp_path / "bad.ts"
    path.write_text("@univariate true\n@classLabel true a\n@data\n" + body)
    with pytest.raises(FileFormatError, match=match) as info:
        read_ts(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unlabelled_files_and_ragged_dimensions_are_refused(tmp_path):
    path = tmp_path / "r.ts"
    path.write_text("@classLabel false\n@data\n1,2,3\n")
    with pytest.raises(FileFormatError, match="no class labels"):
        read_ts(path)
    path.write_text("@dimensions 2\n@classLabel true a\n@data\n1,2,3:4,5:a\n")
    with pytest.raises(FileFormatError, match="equally long"):
        read_ts(path)


def test_load_ts_pads_variable_lengths_and_orders_numeric_labels(tmp_path):
    rng = np.random.default_rng(1)
    header = HEADER_MULTI.format(dims=2, labels="1 2 10")
    train, y_train = _random_set(rng, 40, 2, 3, 9, ["10", "2", "1"])
    test, y_test = _random_set(rng, 11, 2, 3, 12, ["2", "1"])
    _write(tmp_path / "Toy_TRAIN.ts", train, y_train, header=header)
    _write(tmp_path / "Toy_TEST.ts", test, y_test, header=header)
    s = noisy_dyn.data.load_ts(tmp_path / "Toy_TRAIN.ts", val_fraction=0.25)
    assert isinstance(s, noisy_dyn.data.SequenceSplits)
    assert (s.train.size, s.validation.size, s.test.size) == (30, 10, 11)
    assert s.test.steps == max(len(a) for a in train + test)
    order = {"1": 0, "2": 1, "10": 2}  # numeric order, not "1" < "10" < "2"
    np.testing.assert_array_equal(s.test.labels, [order[c] for c in y_test])
    for i, a in enumerate(test):
        assert s.test.lengths[i] == len(a)
        np.testing.assert_allclose(s.test.inputs[i, : len(a)], a.astype(np.float32))
        assert not s.test.inputs[i, len(a) :].any()
    rows = {tuple(np.round(a[0], 5)) for a in train}
    for x, n in zip(s.train.inputs, s.train.lengths):
        assert tuple(np.round(x[0].astype(float), 5)) in rows and not x[n:].any()


def test_load_ts_refuses_test_labels_the_training_file_lacks(tmp_path):
    rng = np.random.default_rng(2)
    header = HEADER_MULTI.format(dims=1, labels="a b c")
    _write(tmp_path / "T_TRAIN.ts", *_random_set(rng, 6, 1, 3, 3, ["a", "b"]), header=header)
    _write(tmp_path / "T_TEST.ts", *_random_set(rng, 3, 1, 3, 3, ["c"]), header=header)
    with pytest.raises(FileFormatError, match=r"labels \['c'\] do not occur"):
        noisy_dyn.data.load_ts(tmp_path)
    equal = noisy_dyn.data.load_ts  # equal lengths everywhere: no lengths carried
    _write(tmp_path / "T_TEST.ts", *_random_set(rng, 3, 1, 3, 3, ["a"]), header=header)
    assert equal(tmp_path / "T_TRAIN.ts").train.lengths is None


AEON_WHEEL = "aeon-1.6.0-py3-none-any.whl"
AEON_MEMBERS = {  # sha256 of the members, recorded from aeon 1.6.0 (docs/data.md)
    "aeon/datasets/data/JapaneseVowels/JapaneseVowels_TRAIN.ts":
        "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "aeon/datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts":
        "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}  # fmt: skip


def _aeon_wheel() -> Path | None:
    for folder in (os.environ.get("NOISY_DYN_DATA"), Path.home() / ".cache" / "noisy_dyn"):
        if folder and (Path(folder) / AEON_WHEEL).is_file():
            return Path(folder) / AEON_WHEEL
    return None


@pytest.mark.skipif(_aeon_wheel() is None, reason=f"{AEON_WHEEL} not downloaded")
def test_japanese_vowels_from_the_aeon_wheel(tmp_path):
    """The archive's published layout: 270 training and 370 test utterances of 12 LPC
    coefficients, 7 to 29 frames, 9 speakers."""
    with zipfile.ZipFile(_aeon_wheel()) as z:
        for member, digest in AEON_MEMBERS.items():
            data = z.read(member)
            assert hashlib.sha256(data).hexdigest() == digest
            (tmp_path / Path(member).name).write_bytes(data)
    train, test = (read_ts(tmp_path / f"JapaneseVowels_{p}.ts") for p in ("TRAIN", "TEST"))
    assert (len(train.series), len(test.series)) == (270, 370)
    lengths = [len(s) for f in (train, test) for s in f.series]
    assert (min(lengths), max(lengths)) == (7, 29)
    assert {s.shape[1] for s in train.series} == {12} and len(set(train.labels)) == 9
    s = noisy_dyn.data.load_ts(tmp_path / "JapaneseVowels_TRAIN.ts")
    assert isinstance(s.test, trainkit.Sequences) and s.test.lengths is not None
