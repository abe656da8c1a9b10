"""Inputs standardised from the training split (stored with the model, applied at evaluation,
old model files unchanged), and the defaults that follow the data's size."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import noisy_dyn as nd
from noisy_dyn import experiments
from noisy_dyn.__main__ import main
from noisy_dyn._defaults import default_batch_size, default_epochs, standardizes
from tests._shape_checks import library_checks_only

GOLDEN = Path(__file__).parent / "golden"


def _ragged_npz(path, *, n_train=48, n_test=16, T=10, scale=300.0, seed=0):
    """Two features on very different scales (the second x300), series of 3..T steps."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 2
        n_steps = rng.integers(3, T + 1, n)
        x = rng.normal(size=(n, T, 2)) + y[:, None, None]
        x[..., 1] = scale * x[..., 1] + 1000.0
        x[np.arange(T)[None, :] >= n_steps[:, None]] = 0.0
        arrays |= {f"x_{part}": x.astype(np.float32), f"y_{part}": y,
                   f"lengths_{part}": n_steps}  # fmt: skip
    np.savez(path, **arrays)
    return path


def test_input_scaling_uses_the_real_training_steps_only(tmp_path):
    splits = nd.data.load_npz(_ragged_npz(tmp_path / "d.npz"))
    scaled, scaling = nd.data.standardize(splits)
    train = splits.train
    real = np.concatenate([train.inputs[i, :n] for i, n in enumerate(train.lengths)])  # a loop
    np.testing.assert_allclose(scaling.mean, real.astype(np.float64).mean(0), rtol=1e-10)
    np.testing.assert_allclose(scaling.scale, real.astype(np.float64).std(0), rtol=1e-10)
    for part, raw in zip(scaled, splits):
        assert isinstance(part, nd.Sequences) and part.lengths is raw.lengths
        valid = raw.valid_steps()
        want = (raw.inputs[valid] - scaling.mean) / scaling.scale
        np.testing.assert_allclose(part.inputs[valid], want, rtol=1e-5, atol=1e-5)
        assert not part.inputs[~valid].any()  # padding stays zero
    z = scaled.train.inputs[scaled.train.valid_steps()]
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-5)
    assert scaled.validation.inputs.dtype == np.float32


def test_model_files_store_the_scaling_and_old_files_load_as_before(tmp_path):
    cfg, params = nd.load_model(GOLDEN / "model_reference.npz")  # written before scalings
    assert nd.load_model(GOLDEN / "model_reference.npz", with_scaling=True)[2] is None
    again = tmp_path / "again.npz"
    nd.save_model(again, params, cfg)  # no scaling: the old bytes exactly
    assert again.read_bytes() == (GOLDEN / "model_reference.npz").read_bytes()
    scaling = nd.data.InputScaling(np.full(cfg.input_size, 2.0), np.full(cfg.input_size, 4.0))
    nd.save_model(tmp_path / "s.npz", params, cfg, scaling=scaling)
    c2, p2, s2 = nd.load_model(tmp_path / "s.npz", with_scaling=True)
    assert c2 == cfg and all(np.array_equal(p2[k], params[k]) for k in params)
    np.testing.assert_array_equal(s2.mean, scaling.mean)
    np.testing.assert_array_equal(s2.scale, scaling.scale)
    with pytest.warns(UserWarning, match="trained on standardised inputs"):
        nd.load_model(tmp_path / "s.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nd.load_model(GOLDEN / "model_reference.npz")  # no warning for an unscaled model
    with library_checks_only(), pytest.raises(ValueError, match="positive scale per input"):
        nd.save_model(tmp_path / "bad.npz", params, cfg, scaling=(scaling.mean, 0 * scaling.scale))


def test_train_standardises_own_data_stores_it_and_robustness_applies_it(tmp_path, capsys):
    data = _ragged_npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    argv = ["train", "--preset", "lipschitz", "--data", "npz", "--data-path", str(data),
            "--epochs", "2", "--hidden", "4", "--batch-size", "8", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "inputs standardised with the training split's statistics" in out
    result = json.loads((run / "result.json").read_text())
    cfg, params, scaling = nd.load_model(run / "model.npz", with_scaling=True)
    splits = experiments.load_data("npz", data_path=str(data))
    _, expected = nd.data.standardize(splits)  # the same statistics, recomputed
    np.testing.assert_allclose(scaling.mean, expected.mean, rtol=1e-12)
    assert result["input_scaling"]["scale"] == pytest.approx(list(expected.scale), rel=1e-12)
    test = scaling.apply(splits.test)
    assert result["test_accuracy"] == nd.accuracy(params, test, cfg)
    assert main(["robustness", "--checkpoints", str(run), "--data", "npz", "--data-path",
                 str(data), "--kinds", "gaussian", "--out", str(tmp_path / "rob"),
                 "--quiet"]) == 0  # fmt: skip
    table = json.loads((tmp_path / "rob" / "robustness.json").read_text())
    assert table["clean"]["run"] == result["test_accuracy"]
    off = tmp_path / "off"
    assert main([*argv[:-1], str(off), "--standardize", "off"]) == 0
    assert "inputs used as they are (--standardize off" in capsys.readouterr().out
    assert nd.load_model(off / "model.npz", with_scaling=True)[2] is None
    assert json.loads((off / "result.json").read_text())["input_scaling"] is None


@pytest.mark.parametrize(
    "data_name, given, expected",
    [("digits", None, False), ("npz", None, True), ("fsdd", None, False),
     ("digits", True, True), ("npz", False, False)],
)  # fmt: skip
def test_standardize_is_a_bool_or_none_by_data(data_name, given, expected):
    """None: your own files yes, the pixel sets and FSDD (its loader's) no; a bool as given."""
    assert standardizes(data_name, given) is expected


@pytest.mark.parametrize("name, value", [("auto", None), ("on", True), ("off", False)])
def test_the_former_standardize_names_warn_and_mean_the_same(name, value):
    for data_name in ("digits", "npz"):
        with pytest.warns(DeprecationWarning, match=f"pass standardize={value!r}"):
            got = standardizes(data_name, name)
        assert got is standardizes(data_name, value)
    with pytest.raises(ValueError, match="unknown standardize 'yes'; choose one of auto, off, on"):
        standardizes("npz", "yes")


def test_the_pixel_sets_keep_their_inputs_by_default(capsys):
    splits = nd.data.load_digits()
    same, scaling = experiments.prepare_inputs(splits, "digits")
    assert scaling is None and same is splits
    assert "pixel values in [0, 1]" in capsys.readouterr().out
    on, scaling = experiments.prepare_inputs(splits, "digits", True)
    assert scaling is not None and abs(float(on.train.inputs.mean())) < 1e-5


@pytest.mark.parametrize(
    ("n", "name", "batch", "epochs"),
    [
        (243, "ts", 16, 134),  # JapaneseVowels' training split: 15 steps an epoch
        (90, "ts", 16, 200),  # ACSF1: 5 steps an epoch, capped at 200 epochs
        (1294, "digits", 128, 200),
        (50000, "npz", 128, 30),
        (50000, "mnist", 128, 100),  # the paper's recipe on its tasks
        (10, "npz", 10, 200),  # never more than the examples
    ],
)
def test_default_batch_size_and_epochs_follow_the_training_set(n, name, batch, epochs):
    assert default_batch_size(n, name) == batch
    assert default_epochs(n, batch, name) == epochs
    if name != "mnist":  # about 2,000 steps, 30 to 200 epochs
        assert epochs == min(200, max(30, -(-2000 // (n // batch))))


def test_train_and_study_choose_the_same_defaults_and_say_so(tmp_path, capsys):
    data = _ragged_npz(tmp_path / "d.npz", n_train=300, scale=1.0)
    splits = experiments.load_data("npz", data_path=str(data))
    n = len(splits.train[1])
    capsys.readouterr()
    epochs, batch = experiments.training_defaults(n, "npz", epochs=None, batch_size=None)
    line = capsys.readouterr().out
    assert (batch, epochs) == (32, 200) and f"batch size 32 and 200 epochs for {n}" in line
    run = experiments.train_preset("lipschitz", splits, data_name="npz", overrides={
        "hidden_size": 2}, epochs=1, progress=False)  # fmt: skip
    assert run["result"]["batch_size"] == 32 and run["result"]["epochs"] == 1
    study = experiments.study(
        "lipschitz", "npz", data_path=str(data), levels=[(0.0, 0.0), (0.1, 0.1)], seeds=[0, 1],
        epochs=1, hidden=2, kinds=["gaussian"], out=tmp_path / "s", progress=False,
    )  # fmt: skip
    setup = json.loads((tmp_path / "s" / "study_setup.json").read_text())
    assert setup["batch_size"] == 32 and setup["input_scaling"] is not None
    assert study["verdicts"] and study["verdicts"][0].startswith("sigma 0.1: ")


def test_downsample_averages_windows_of_real_steps():
    """Each window of F real steps becomes its mean (the last may be shorter), a series of L
    steps keeps ceil(L / F); checked against a plain loop, for Sequences and for splits."""
    rng = np.random.default_rng(4)
    n, t, f, factor = 7, 11, 2, 3
    lengths = rng.integers(1, t + 1, n)
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    data = nd.Sequences(x, np.arange(n), lengths)
    got = nd.data.downsample(data, factor)
    assert got.steps == -(-t // factor)
    for i in range(n):
        real = x[i, : lengths[i]]
        windows = [real[s : s + factor].mean(axis=0) for s in range(0, lengths[i], factor)]
        assert got.lengths[i] == len(windows)
        np.testing.assert_allclose(got.inputs[i, : len(windows)], windows, rtol=1e-6)
        assert not got.inputs[i, len(windows) :].any()
    splits = nd.data.SequenceSplits(data, data, data)
    assert all(s.steps == got.steps for s in nd.data.downsample(splits, factor))
    assert nd.data.downsample(data, 1) is data
    with pytest.raises(ValueError, match="factor must be an int >= 1"):
        nd.data.downsample(data, 0)
