"""The shared training options: one ``TrainOptions`` behind both ``fit``s and both command lines.

The golden file ``golden/fit_runs.npz`` holds the outputs (every parameter leaf, logits on a
held-out set, the history) of a 2-epoch run of each package made by
``python -m tests.trainkit._golden_runs --old-names`` with the code from before the options had
one home (commit 33df24d); the runs here must reproduce them.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path

import numpy as np
import pytest

import basis_ode
import noisy_dyn
import trainkit
from tests.trainkit import _golden_runs as golden
from trainkit.internal import takes_train_options


@pytest.fixture(scope="module")
def stored():
    with np.load(golden.GOLDEN) as f:
        return {k: f[k] for k in f.files}


def _assert_matches(new, stored, prefix):
    mine = {k: v for k, v in stored.items() if k.startswith(prefix)}
    assert mine and set(new) == set(mine)
    for k, v in mine.items():
        # Bit-identical on the machine that stored them; a different CPU may round differently.
        np.testing.assert_allclose(new[k], v, rtol=2e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("form", ["keywords", "old_name", "options_object", "object_and_keyword"])
def test_noisy_fit_reproduces_golden(stored, form):
    opts = dict(golden.OPTIONS)
    if form == "old_name":
        opts["checkpoint_every_steps"] = opts.pop("checkpoint_every")
    elif form == "options_object":
        opts = {"options": trainkit.TrainOptions(**opts)}
    elif form == "object_and_keyword":  # a keyword beside the object replaces its field
        opts = {"options": trainkit.TrainOptions(**{**opts, "seed": 99}), "seed": opts["seed"]}
    with tempfile.TemporaryDirectory() as tmp:
        _assert_matches(golden.noisy_run(Path(tmp), **opts), stored, "noisy/")


@pytest.mark.slow
def test_basis_fit_reproduces_golden(stored):
    with tempfile.TemporaryDirectory() as tmp:
        run = golden.basis_run(Path(tmp), options=trainkit.TrainOptions(**golden.OPTIONS))
    _assert_matches(run, stored, "basis/")


def test_the_golden_file_is_what_it_says():
    with np.load(golden.GOLDEN) as f:
        arrays = {k: f[k] for k in f.files}
    assert golden.checksum(arrays) == (
        "6647373f95cbe8a81fabdb181f1ef87664e635aa3bb3f97327e5782f2e0b4ff1"
    )
    assert len(arrays["noisy/history/train_loss"]) == 2  # two epochs


@pytest.mark.parametrize("fit", [noisy_dyn.fit, basis_ode.fit, noisy_dyn.fit_ensemble])
def test_every_fit_shows_and_documents_the_options(fit):
    params = inspect.signature(fit).parameters
    names = set(fit.train_option_names)
    assert names <= set(params) and "options" in params
    assert params["epochs"].default is inspect.Parameter.empty
    assert params["keep"].default == trainkit.TrainOptions.__dataclass_fields__["keep"].default
    for name in names:
        assert f"\n        {name}: " in fit.__doc__, name
    assert "<train options>" not in fit.__doc__


def test_settings_are_train_options_plus_the_member_axis():
    opts = trainkit.TrainOptions(epochs=3, batch_size=8, keep=1, checkpoint_every=2)
    s = trainkit.Settings.from_options(opts, seeds=(1, 2))
    assert isinstance(s, trainkit.TrainOptions)
    assert all(getattr(s, k) == getattr(opts, k) for k in trainkit.TrainOptions.names())
    assert s.seeds == (1, 2) and s.on_divergence == trainkit.RaiseOnDivergence()


def test_decorator_refusals():
    @takes_train_options(exclude=("seed",))
    def f(*, options):
        """Arguments:
        <train options>
        """
        return options

    assert f(epochs=1, batch_size=2).batch_size == 2
    with pytest.raises(TypeError, match="needs `batch_size`"):
        f(epochs=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'seed'"):
        f(epochs=1, batch_size=2, seed=3)
    with pytest.raises(ValueError, match="does not take the option `seed`"):
        f(options=trainkit.TrainOptions(1, 2, seed=3))
    with pytest.raises(TypeError, match="must be a trainkit.TrainOptions"):
        f(options={"epochs": 1})
    with pytest.raises(TypeError, match="got both `checkpoint_every_steps`"):
        noisy_dyn.fit(None, None, learning_rate=1.0, epochs=1, batch_size=1,
                      checkpoint_every=2, checkpoint_every_steps=2)  # fmt: skip


def test_both_command_lines_share_the_flags():
    from basis_ode.__main__ import build_parser as basis_parser
    from noisy_dyn.__main__ import build_parser as noisy_parser

    argv = ["--epochs", "3", "--batch-size", "16", "--seed", "5", "--checkpoint-every", "7"]
    noisy = noisy_parser().parse_args(["train", "--preset", "nrnn_ito", *argv, "--no-resume"])
    basis = basis_parser().parse_args(["train", *argv, "--quiet"])
    common = dict(epochs=3, batch_size=16, seed=5, checkpoint_every=7)
    assert trainkit.cli_train_options(noisy) == {**common, "resume": False, "progress": True}
    assert trainkit.cli_train_options(basis) == {**common, "resume": True, "progress": False}
    tag = basis_parser().parse_args(["tag"])
    assert trainkit.cli_train_options(tag) == dict(
        epochs=10, batch_size=64, seed=0, resume=True, progress=True
    )
    # every key is a TrainOptions field, so fit(**cli_train_options(args)) is well-formed
    assert set(trainkit.cli_train_options(noisy)) <= set(trainkit.TrainOptions.names())
