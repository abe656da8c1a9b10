"""Inputs that used to end in a traceback, a silent change or a divergence blamed on the
learning rate are refused in one line naming the fix: series of length 0, images without
pixels, values beyond float32's range, validation images of another channel count, a batch
larger than the training set, ``ConvODENet(n_steps=0)``; and a run folder's ``result.json`` is
checked against the model and the data it describes before ``compress`` or ``robustness`` use
it (a missing key, an edited seed, another model's record).

The independent references: the values the test writes into the files, and the data and model
the test trained.
"""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest

import basis_ode as bo
import noisy_dyn as nd
from basis_ode.__main__ import main as bo_main
from noisy_dyn.__main__ import main as nd_main

RNG = np.random.default_rng(0)


def _error(capsys) -> str:
    """The one error line on stderr (a data loader's warnings about a small split aside)."""
    err = [ln for ln in capsys.readouterr().err.strip().splitlines()
           if not ln.startswith("warning: ")]  # fmt: skip
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_series_of_length_zero_are_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "empty.npz"
    np.savez(path, x_train=np.zeros((20, 0, 1), np.float32), y_train=np.arange(20) % 2,
             x_test=np.zeros((6, 0, 1), np.float32), y_test=np.arange(6) % 2)  # fmt: skip
    argv = ["train", "--preset", "nrnn_ito", "--data", "npz", "--data-path", str(path),
            "--epochs", "1", "--batch-size", "2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert nd_main(argv) == 2
    assert "x_train has examples of shape (0, 1), which hold no values" in _error(capsys)
    cfg = nd.preset("nrnn_ito", input_size=1, num_classes=2, hidden_size=4)
    with pytest.raises(ValueError, match=r"shape \(N, time >= 1, input_size=1\), got \(4, 0, 1\)"):
        nd.fit(cfg, (np.zeros((4, 0, 1)), np.arange(4) % 2), epochs=1, batch_size=2,
               learning_rate=1e-2, progress=False)  # fmt: skip


def test_values_beyond_float32_are_refused_not_blamed_on_the_learning_rate():
    xs = RNG.normal(size=(16, 5, 1))
    xs[3, 2, 0] = 1e39  # finite in float64; infinite once cast to float32
    cfg = nd.preset("nrnn_ito", input_size=1, num_classes=2, hidden_size=4)
    images = RNG.normal(size=(16, 8, 8, 1))
    images[0, 1, 2, 0] = -1e39
    with jax.enable_x64(False):  # float32 training, the default
        with pytest.raises(ValueError, match=r"1 value\(s\) beyond the float32 range.*1e\+39"):
            nd.fit(cfg, (xs, np.arange(16) % 2), epochs=1, batch_size=8, learning_rate=1e-2,
                   progress=False)  # fmt: skip
        with pytest.raises(ValueError, match=r"image array holds 1 value\(s\) beyond the float32"):
            bo.fit(bo.ConvODENet(num_classes=2, width=2), (images, np.arange(16) % 2),
                   epochs=1, batch_size=8, learning_rate=0.1, progress=False)  # fmt: skip


def test_images_without_pixels_and_validation_of_other_channels_are_refused():
    xs, ys = RNG.normal(size=(16, 8, 8, 1)), np.arange(16) % 2
    model = bo.ConvODENet(num_classes=2, width=2)
    kw = dict(epochs=1, batch_size=8, learning_rate=0.1, progress=False)
    with pytest.raises(ValueError, match=r"images of shape \(0, 8, 1\) hold no pixels"):
        bo.fit(model, (xs[:, :0], ys), **kw)
    with pytest.raises(ValueError, match="validation: images with 3 channel"):
        bo.fit(model, (xs, ys), validation=(np.repeat(xs[:4], 3, axis=3), ys[:4]), **kw)
    with pytest.raises(ValueError, match=r"n_steps \(None for K\)` must be an int >= 1, got 0"):
        bo.ConvODENet(num_classes=2, width=2, n_steps=0)


def test_a_batch_larger_than_the_training_set_is_refused_not_clamped(tmp_path, capsys):
    argv = ["train", "--data", "digits", "--limit", "180", "--epochs", "1", "--width", "2",
            "--K", "1", "--batch-size", "5000", "--out", str(tmp_path / "b")]  # fmt: skip
    assert bo_main(argv) == 2
    line = _error(capsys)
    assert "`batch_size` (5000) is larger than the training set (180 examples)" in line
    assert "--batch-size" in line
    argv = ["train", "--preset", "lipschitz", "--limit", "100", "--epochs", "1", "--hidden", "4",
            "--batch-size", "5000", "--out", str(tmp_path / "n"), "--quiet"]  # fmt: skip
    assert nd_main(argv) == 2
    assert "`batch_size` (5000) is larger than the training set" in _error(capsys)


@pytest.fixture(scope="module")
def basis_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bo") / "run"
    result = bo_main(["train", "--data", "digits", "--limit", "64", "--eval-limit", "32",
                      "--epochs", "1", "--width", "2", "--K", "1", "--n-steps", "1",
                      "--batch-size", "32", "--out", str(run), "--quiet"])  # fmt: skip
    assert isinstance(result, dict) and "train_sha256" in result
    return run


def _compress(capsys, run) -> int:
    code = bo_main(["compress", "--run", str(run), "--Ks", "1", "--n-steps-list", "1",
                    "--limit", "16", "--quiet"])  # fmt: skip
    if code != 2:
        capsys.readouterr()
    return code


def _edited(run, tmp_path, name, edit):
    dst = tmp_path / name
    shutil.copytree(run, dst)
    record = json.loads((dst / "result.json").read_text())
    edit(record)
    (dst / "result.json").write_text(json.dumps(record))
    return dst


@pytest.mark.slow  # a basis_ode run trained and compressed: 70 s on the busy 2-core CPU
def test_compress_checks_the_record_against_its_model_and_data(basis_run, tmp_path, capsys):
    assert _compress(capsys, basis_run) != 2  # the run as written is used
    cases = {
        "missing": (lambda r: r.pop("seed"), "'seed' is missing"),
        "seed": (lambda r: r.update(seed=r["seed"] + 1), "do not give the training data"),
        "width": (lambda r: r["model"].update(width=16), "another model than"),
        "type": (lambda r: r.update(K="1"), "'K' must be an integer"),
    }
    for name, (edit, said) in cases.items():
        assert _compress(capsys, _edited(basis_run, tmp_path, name, edit)) == 2, name
        assert said in _error(capsys), name
    # a record written before it held the data's sha256: checked against the checkpoint's
    old = _edited(basis_run, tmp_path, "old", lambda r: r.update(seed=1) or r.pop("train_sha256"))
    assert _compress(capsys, old) == 2
    assert "sha256 differs from the checkpoint's" in _error(capsys)


@pytest.mark.slow
def test_robustness_checks_the_record_against_its_model(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--preset", "lipschitz", "--epochs", "1", "--hidden", "4", "--limit", "48",
            "--batch-size", "16", "--out", str(run), "--quiet"]  # fmt: skip
    assert nd_main(argv) == 0
    capsys.readouterr()
    record = json.loads((run / "result.json").read_text())
    record["config"]["hidden_size"] = 8
    (run / "result.json").write_text(json.dumps(record))
    rob = ["robustness", "--checkpoints", str(run), "--kinds", "gaussian", "--limit", "16",
           "--out", str(tmp_path / "rob"), "--quiet"]  # fmt: skip
    assert nd_main(rob) == 2
    line = _error(capsys)
    assert "describes another model than" in line and "hidden_size: 8 in the record" in line
