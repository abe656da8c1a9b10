"""Checkpoints written before the basis-expansion refactor resume with today's code.

``golden/runs_v0`` holds two folders checkpointed by ``fit`` on commit c60054b (coefficients as
plain arrays beside a tag collection, ``n_basis=`` / ``basis="<name>"`` / ``method="<name>"``
model fields, recipe strings), each stopped after step 7 with its newest checkpoint at step 6,
and ``finished.npz`` what the same runs returned when carried to the end without interruption
on that code (``make_runs_v0.py``). Resumed with today's API, they must end there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import basis_ode as bo
from basis_ode import CheckpointMismatchError
from trainkit import FileFormatError

from ._rounding import rounding_only

GOLDEN = Path(__file__).parent / "golden"
RUNS = GOLDEN / "runs_v0"


def _make():
    spec = importlib.util.spec_from_file_location("make_runs_v0", GOLDEN / "make_runs_v0.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(make):
    """(name, model, train, keywords) of the recorded runs in today's API."""
    conv = bo.ConvODENet(num_classes=2, width=2, basis=bo.PiecewiseConstant(1), method=bo.EULER)
    tagger = bo.ODETransformerTagger(
        vocab_size=12, num_tags=3, width=8, basis=bo.Hat(2), method=bo.EULER
    )
    train, val = make.image_data()
    sgd = dict(make.SGD_RUN, recipe=bo.SGDRecipe(lr_drops=(2,), momentum=0.8), validation=val)
    adam = dict(make.ADAM_RUN, recipe=bo.AdamRsqrtRecipe(warmup_steps=3))
    return {
        "sgd": (conv, train, sgd),
        "adam_rsqrt": (tagger, make.tagging_data(), adam),
    }


def _flat(variables, prefix):
    """Today's variables in the recorded layout: expansions as their plain coefficients, with
    the earlier tag collection derived from each expansion's basis."""
    tags, plain = {}, {}

    def strip(tree, path=()):
        out = {}
        for k, v in tree.items():
            if isinstance(v, bo.BasisExpansion):
                tags[path[1]] = {f"{v.basis.name}_K{v.K}": np.asarray(v.K, np.int32)}
                out[k] = v.coeffs
            elif isinstance(v, dict):
                out[k] = strip(v, (*path, k))
            else:
                out[k] = v
        return out

    plain = strip(jax.device_get(dict(variables)))
    return {
        prefix + jax.tree_util.keystr(p): np.asarray(leaf)
        for p, leaf in jax.tree_util.tree_flatten_with_path({**plain, "basis": tags})[0]
    }


def _copy(name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(RUNS / name, dst)
    return dst


def _assert_ends_where_recorded(variables, finished, prefix):
    got = _flat(variables, prefix)
    want = {k for k in finished.files if k.startswith(prefix + "[")}
    assert set(got) == want
    for key, value in got.items():
        if rounding_only(key):  # exactly-zero gradient: rounding noise (_rounding.py)
            continue
        np.testing.assert_allclose(value, finished[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", ["sgd", "adam_rsqrt"])
def test_a_run_checkpointed_before_the_refactor_resumes_and_ends_where_it_ended(
    name, tmp_path, caplog
):
    make = _make()
    finished = np.load(RUNS / "finished.npz")
    model, train, kw = _runs(make)[name]
    folder = _copy(name, tmp_path)
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, variables, hist = bo.fit(
            model, train, checkpoint_dir=folder, keep=1, progress=False, **kw
        )
    assert "resumed from step 6" in caplog.text
    assert "converted from a checkpoint of an earlier format" in caplog.text
    assert hist["global_step"] == 12 and not hist["interrupted"]
    _assert_ends_where_recorded(variables, finished, f"{name}|")
    np.testing.assert_allclose(hist["train_loss"], finished[f"{name}|train_loss"], rtol=1e-5)
    np.testing.assert_allclose(hist["learning_rate"], finished[f"{name}|learning_rate"], rtol=1e-6)
    assert hist["K"] == finished[f"{name}|K"].tolist()
    # the folder now holds today's format: read again without conversion, last parameters
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, last, _ = bo.fit(model, train, checkpoint_dir=folder, progress=False,
                         return_params=bo.LastEpoch(), **kw)  # fmt: skip
    assert "already complete" in caplog.text and "converted" not in caplog.text
    _assert_ends_where_recorded(last, finished, f"{name}|last|")


def test_an_old_run_with_other_settings_is_still_refused_naming_them(tmp_path):
    make = _make()
    model, train, kw = _runs(make)["sgd"]
    folder = _copy("sgd", tmp_path)
    with pytest.raises(CheckpointMismatchError, match=r"earlier format.*config\.width: checkpoint "
                       r"'2', now '4'"):  # fmt: skip
        bo.fit(model.clone(width=4), train, checkpoint_dir=folder, progress=False, **kw)
    with pytest.raises(CheckpointMismatchError, match="learning_rate: checkpoint 0.05, now 0.1"):
        bo.fit(model, train, checkpoint_dir=folder, progress=False, **{**kw, "learning_rate": 0.1})
    with pytest.raises(CheckpointMismatchError, match=r"config\.basis: checkpoint "
                       r"'PiecewiseConstant\(K=1\)', now 'Hat\(K=1\)'"):  # fmt: skip
        bo.fit(model.clone(basis=bo.Hat(1)), train, checkpoint_dir=folder, progress=False, **kw)
    assert [p.name for p in folder.glob("ckpt_*")] == ["ckpt_0000000006"]  # nothing deleted


def _tamper(folder: Path, edit) -> None:
    path = folder / "ckpt_0000000006" / "meta" / "metadata"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_an_old_run_whose_recorded_K_disagrees_with_its_arrays_is_refused_naming_no_resume(
    tmp_path,
):
    make = _make()
    model, train, kw = _runs(make)["sgd"]
    folder = _copy("sgd", tmp_path)
    _tamper(folder, lambda m: m["task"]["model_updates"].update(n_basis=4))
    with pytest.raises(CheckpointMismatchError, match=r"--no-resume"):
        bo.fit(model, train, checkpoint_dir=folder, progress=False, **kw)


def test_an_old_run_with_an_unknown_basis_name_is_refused_in_one_line(tmp_path):
    make = _make()
    model, train, kw = _runs(make)["sgd"]
    folder = _copy("sgd", tmp_path)
    _tamper(folder, lambda m: m["fingerprint"]["config"].update(basis="'wavelet'"))
    with pytest.raises(
        CheckpointMismatchError, match="earlier format and cannot be converted"
    ) as e:
        bo.fit(model, train, checkpoint_dir=folder, progress=False, **kw)
    assert "\n" not in str(e.value) and "--no-resume" in str(e.value)


def test_a_converted_run_state_is_still_checked_against_its_checksum(tmp_path):
    """The earlier format stored no checksum; one that is there must match (position, task meta,
    history, best as stored, before conversion), else the step is not resumed."""

    def run_state_sha256(meta):  # the documented checksum: sha256 of the canonical JSON
        part = {k: meta.get(k) for k in ("position", "task", "history", "best")}
        return hashlib.sha256(json.dumps(part, sort_keys=True, separators=(",", ":")).encode())

    make = _make()
    model, train, kw = _runs(make)["adam_rsqrt"]
    good, bad = _copy("adam_rsqrt", tmp_path / "good"), _copy("adam_rsqrt", tmp_path / "bad")
    _tamper(good, lambda m: m.update(run_state_sha256=run_state_sha256(m).hexdigest()))
    _, _, hist = bo.fit(model, train, checkpoint_dir=good, progress=False, **kw)
    assert hist["global_step"] == 12
    _tamper(bad, lambda m: m.update(run_state_sha256=run_state_sha256(m).hexdigest()[::-1]))
    with pytest.warns(UserWarning, match="does not match its checksum"):
        with pytest.raises(FileFormatError, match="No readable checkpoint"):
            bo.fit(model, train, checkpoint_dir=bad, progress=False, **kw)


def test_the_shared_conversion_checks_the_tags_K_against_the_coefficients(tmp_path):
    """The one conversion of the earlier layout (model files and checkpoints): a tag naming
    another K than the coefficients' leading axis (3 in ``golden/model_v0.npz``) is refused."""
    import trainkit

    config, arrays = trainkit.load_model_file(GOLDEN / "model_v0.npz", package="basis_ode")
    for entry in config["variables"]:
        if entry["path"][0] == "basis" and entry["path"][1] == "stage1":
            entry["path"][2] = "hat_K2"
    path = trainkit.save_model_file(
        tmp_path / "tags.npz", package="basis_ode", config=config, arrays=arrays
    )
    with pytest.raises(FileFormatError, match=r"sizes \[\('hat', '2'\), \('hat', '3'\)\]"):
        bo.load_model(path)
    for entry in config["variables"]:
        if entry["path"][0] == "basis":
            entry["path"][2] = "hat_K2"
    path = trainkit.save_model_file(
        tmp_path / "tags2.npz", package="basis_ode", config=config, arrays=arrays
    )
    with pytest.raises(FileFormatError, match="leading axes \\[3\\]; the basis tags say K = 2"):
        bo.load_model(path)
