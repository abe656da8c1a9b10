"""Bad input files and training labels: one ``error:`` line naming the file and the fix, exit 2.

Each case writes a real small file and runs ``python -m noisy_dyn train`` in-process (its
``main``), or the reader the command uses; none reaches a training step.
"""

from __future__ import annotations

import errno
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

import noisy_dyn
import trainkit
from noisy_dyn.__main__ import main
from trainkit.internal import LabelGapWarning

RNG = np.random.default_rng(0)


def _npz(path: Path, **arrays) -> Path:
    base = dict(
        x_train=RNG.normal(size=(20, 5, 1)).astype(np.float32), y_train=np.arange(20) % 2,
        x_test=RNG.normal(size=(6, 5, 1)).astype(np.float32), y_test=np.arange(6) % 2,
    )  # fmt: skip
    np.savez(path, **{**base, **arrays})
    return path


def _train(capsys, tmp_path, *data) -> str:
    argv = ["train", "--preset", "nrnn_ito", "--epochs", "1", "--batch-size", "2", "--quiet"]
    code = main([*argv, "--out", str(tmp_path / "out"), *data])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _cases(tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (command-line data flags, phrases the error line must hold)."""
    npy = tmp_path / "renamed.npz"
    np.save(tmp_path / "renamed.npy", np.zeros(3))
    os.replace(tmp_path / "renamed.npy", npy)
    ucr = tmp_path / "ucr"
    ucr.mkdir()
    (ucr / "X_TRAIN.txt").write_text("1,0.1,0.2\ninf,0.3,0.4\n2,0.5,0.6\n")
    (ucr / "X_TEST.txt").write_text("1,0.1,0.2\n")
    ucr_big = tmp_path / "ucr_big"
    ucr_big.mkdir()
    (ucr_big / "Y_TRAIN.txt").write_text("1,0.1,0.2\n2,1e39,0.4\n")
    (ucr_big / "Y_TEST.txt").write_text("1,0.1,0.2\n")
    one = dict(x_train=np.zeros((1, 5, 1), np.float32), y_train=np.array([0]))
    one["y_test"] = np.zeros(6, int)  # one class everywhere: the split is what fails first
    two = dict(x_train=np.zeros((2, 5, 1), np.float32), y_train=np.array([0, 1]))
    big = np.r_[np.arange(19) % 2, 2**32 + 1].astype(np.int64)
    huge = np.array([*(np.arange(19) % 2), 2**63], np.uint64)
    neg = np.r_[np.arange(19) % 2, -1]
    f64 = np.zeros((20, 5, 1))
    f64[3, 2, 0] = 1e39
    npz = lambda name, **kw: ["--data", "npz", "--data-path", str(_npz(tmp_path / name, **kw))]  # noqa: E731
    return {
        "npy_renamed": (
            ["--data", "npz", "--data-path", str(npy)],
            [str(npy), "is a .npy file", "np.savez("],
        ),
        "ucr_label_inf": (
            ["--data", "ucr", "--data-path", str(ucr)],
            ["X_TRAIN.txt, line 2", "label inf is not an integer"],
        ),
        "ucr_float32_overflow": (
            ["--data", "ucr", "--data-path", str(ucr_big)],
            ["Y_TRAIN.txt", "beyond the float32 range", "cast from float64 to float32 overflows"],
        ),
        "int64_wraps": (npz("big.npz", y_train=big), ["big.npz: y_train", "4294967297"]),
        "uint64_wraps": (npz("huge.npz", y_train=huge), ["huge.npz", "9223372036854775808"]),
        "negative": (npz("neg.npz", y_train=neg), ["neg.npz: y_train", "negative label (-1"]),
        "float64_1e39": (
            npz("f64.npz", x_train=f64),
            ["f64.npz: x_train", "index (3, 2, 0): 1e+39", "float64 to float32 overflows"],
        ),
        "single_example": (npz("one.npz", **one), ["no validation example", "1 training examples"]),
        "empty_validation": (
            npz("two.npz", **two),
            ["no validation example", "2 training examples", "--validation-fraction"],
        ),
    }


CASES = [
    "npy_renamed", "ucr_label_inf", "ucr_float32_overflow", "int64_wraps", "uint64_wraps",
    "negative", "float64_1e39", "single_example", "empty_validation",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_file_is_one_line_and_status_2(case, tmp_path, capsys):
    data, phrases = _cases(tmp_path)[case]
    line = _train(capsys, tmp_path, *data)
    for phrase in phrases:
        assert phrase in line, (phrase, line)
    assert "Traceback" not in line and "NaN or infinite" not in line


def test_pickle_asking_for_a_huge_array_is_refused(tmp_path):
    class Huge:  # REDUCE numpy.ndarray((2**37,), "f8"): 1 TiB
        def __reduce__(self):
            return (np.ndarray, ((2**37,), np.dtype("f8")))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Huge()}, protocol=2))
    # MemoryError where the kernel refuses 1 TiB (as here); a machine that overcommits may get
    # as far as the CIFAR layout check. Either way: a FileFormatError naming the file.
    with pytest.raises(trainkit.FileFormatError, match=r"data_batch_1: "):
        trainkit.read_cifar_batch(path)


def test_full_disk_names_the_path(tmp_path):
    target = tmp_path / "model.npz"

    def write(f):  # a real ENOSPC from the kernel: /dev/full refuses every write
        with open("/dev/full", "wb", buffering=0) as full:
            full.write(b"x" * 1024)

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(OSError) as info:
        trainkit.atomic_write(target, write)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    line = trainkit._cli.error_line(info.value)
    assert line.startswith("error: ") and str(target) in line and "No space left" in line
    assert not list(tmp_path.iterdir())  # the temporary file is gone


def _cfg(num_classes):
    return noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=num_classes, hidden_size=4)


def test_fit_refuses_one_class_and_warns_about_gaps():
    xs = RNG.normal(size=(8, 4, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="`train` labels: every one of the 8 examples has the cl"):
        noisy_dyn.fit(_cfg(3), (xs, np.full(8, 2)), learning_rate=1e-2, epochs=1, batch_size=4)
    ys = np.array([0, 100000] * 4)
    with pytest.warns(LabelGapWarning, match=r"2 of the 100001 classes .*found \{0, 100000\}"):
        noisy_dyn.fit(_cfg(100001), (xs, ys), learning_rate=1e-2, epochs=1, batch_size=8,
                      progress=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelGapWarning)
        noisy_dyn.fit(_cfg(2), (xs, ys % 99999), learning_rate=1e-2, epochs=1, batch_size=8,
                      progress=False)  # fmt: skip


def test_basis_fit_refuses_one_class_and_an_empty_validation():
    import basis_ode

    model = basis_ode.ConvODENet(num_classes=3, width=2, basis=basis_ode.PiecewiseConstant(1))
    xs = RNG.uniform(size=(8, 4, 4, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="train labels: every one of the 8 examples has the cl"):
        basis_ode.fit(model, (xs, np.ones(8, int)), learning_rate=0.1, epochs=1, batch_size=4)
    ys = np.arange(8) % 3
    with pytest.raises(ValueError, match="validation holds no examples .*8 training examples"):
        basis_ode.fit(model, (xs, ys), validation=(xs[:0], ys[:0]), learning_rate=0.1, epochs=1,
                      batch_size=4)  # fmt: skip
