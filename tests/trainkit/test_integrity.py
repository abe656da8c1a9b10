"""Checkpoints are verified before they are resumed: files, meta (the fingerprint included) and
arrays against their sha256 digests; a damaged step is set aside and the newest step that
verifies is resumed; divergence right after a resume names the checkpoint it came from; a step
written before digests existed still resumes, with a note.

The independent references: the uninterrupted run's parameters (bit for bit), the bits flipped
by the test itself (one random bit of one file at a time), and the steps found on disk.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import trainkit
from trainkit import CheckpointMismatchError, Settings, TrainingDiverged, train
from trainkit._checkpoint import SET_ASIDE, list_checkpoints, load_latest_checkpoint
from trainkit._integrity import MANIFEST

from ._toy import ToyTask, toy_data

FLIPS_PER_FILE = 2


def _toy(ckpt, **kw):
    s = dict(epochs=2, batch_size=8, seed=0, checkpoint_dir=ckpt, progress=False)
    s.update(kw)
    return Settings(**s)


def _steps(d):
    return [int(p.name[5:]) for p in list_checkpoints(d)]


def _same(a, b):
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run stopped after step 10 with checkpoints at steps 4 and 8, and the uninterrupted
    run's parameters."""
    d = tmp_path_factory.mktemp("interrupted")
    data = toy_data()
    ref, _, _ = train(ToyTask(), data, _toy(None))
    train(ToyTask(), data, _toy(d / "ckpt", checkpoint_every=4, stop_after_steps=10))
    assert _steps(d / "ckpt") == [4, 8]
    return d / "ckpt", ref


def _flip(path: Path, rng: random.Random) -> int:
    data = bytearray(path.read_bytes())
    bit = rng.randrange(8 * len(data))
    data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))
    return bit


def _resume_point(ckpt):
    """The step the toy run in ``ckpt`` resumes from (the loop's resume path, nothing trained)."""
    from trainkit import _loop

    s = _toy(ckpt, checkpoint_every=4)
    mesh = trainkit.default_mesh()
    fingerprint = _loop.make_fingerprint("toy", ToyTask().config, ToyTask().optimizer,
                                         trainkit.data_hash(*toy_data()), 0)  # fmt: skip
    store, run = _loop._start(ToyTask(), fingerprint, s, mesh, 12)
    store.close()
    return run.step


def test_a_flipped_bit_in_any_file_of_a_step_is_caught(interrupted, tmp_path):
    """Every file of the newest step (orbax's metadata, the array data, the meta, the file list
    itself), two random bits each, one flip at a time: each is caught, the step set aside with
    one warning, and step 4 resumed; the run then ends bit-identical to the uninterrupted one."""
    ckpt, ref = interrupted
    step = ckpt / "ckpt_0000000008"
    files = sorted(p.relative_to(step) for p in step.rglob("*") if p.is_file())
    assert MANIFEST in {str(f) for f in files} and len(files) >= 10
    rng, caught, tried = random.Random(34), 0, 0
    for i, rel in enumerate(files):
        for j in range(FLIPS_PER_FILE):
            work = tmp_path / f"{i}_{j}"
            shutil.copytree(ckpt, work)
            _flip(work / step.name / rel, rng)
            tried += 1
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                resumed = _resume_point(work)
            lines = [str(w.message) for w in seen if "ckpt_0000000008" in str(w.message)]
            assert len(lines) == 1 and "skipping checkpoint" in lines[0], (rel, lines)
            assert "set aside as" in lines[0] and "ckpt_0000000004" in lines[0]
            caught += resumed == 4 and (work / SET_ASIDE / step.name).is_dir()
            shutil.rmtree(work)
    assert caught == tried == FLIPS_PER_FILE * len(files)
    print(f"caught {caught} of {tried} flipped bits in the {len(files)} files of a step")
    work = tmp_path / "last"  # the largest array file, trained to the end
    shutil.copytree(ckpt, work)
    data = max((work / step.name).rglob("ocdbt.process_0/d/*"), key=lambda p: p.stat().st_size)
    _flip(data, rng)
    with pytest.warns(UserWarning, match="ckpt_0000000008: its file state/ocdbt.process_0/d/"):
        out, hist, _ = train(ToyTask(), toy_data(), _toy(work, checkpoint_every=4))
    _same(out, ref)  # resumed from step 4: the uninterrupted model, not another one
    assert hist["step"] == [12, 24] and _steps(work) == [16, 20, 24]


def _edit_meta(step: Path, edit, *, keep_manifest=True) -> None:
    f = step / "meta" / "metadata"
    meta = json.loads(f.read_text())
    edit(meta)
    f.write_text(json.dumps(meta))
    if not keep_manifest:
        (step / MANIFEST).unlink()


def test_a_changed_fingerprint_is_damage_not_another_run(interrupted, tmp_path):
    """One character of the stored data hash (a fingerprint field) changed, with and without
    the file list: the meta's checksum fails, so the step is set aside and step 4 resumed (no
    refusal, no advice to start afresh)."""
    ckpt, ref = interrupted
    for keep in (True, False):
        work = tmp_path / f"keep{keep}"
        shutil.copytree(ckpt, work)

        def change(meta):
            h = meta["fingerprint"]["data"]
            meta["fingerprint"]["data"] = ("0" if h[0] != "0" else "1") + h[1:]

        _edit_meta(work / "ckpt_0000000008", change, keep_manifest=keep)
        with pytest.warns(UserWarning, match=r"ckpt_0000000008: .*does not match its checksum"):
            out, _, _ = train(ToyTask(), toy_data(), _toy(work, checkpoint_every=4))
        _same(out, ref)


def test_another_run_is_refused_only_without_an_intact_step_of_this_run(interrupted, tmp_path):
    ckpt, _ = interrupted
    work = tmp_path / "w"
    shutil.copytree(ckpt, work)
    with pytest.raises(CheckpointMismatchError, match="seed: checkpoint 0, now 5") as err:
        train(ToyTask(), toy_data(), _toy(work, seed=5))  # every step is another run's
    assert "--no-resume" in str(err.value)
    assert _steps(work) == [4, 8]  # nothing moved


def test_an_array_changed_with_its_meta_resealed_is_still_caught(interrupted, tmp_path):
    """The array digests alone (no file list): a step whose stored array differs from its
    digest is set aside, even with a consistent run state."""
    import orbax.checkpoint as ocp

    ckpt, ref = interrupted
    work = tmp_path / "w"
    shutil.copytree(ckpt, work)
    (work / "ckpt_0000000008" / MANIFEST).unlink()
    step = work / "ckpt_0000000008" / "state"
    with ocp.StandardCheckpointer() as c:
        tree = c.restore(step)
        tree["train"]["params"]["w"] = np.asarray(tree["train"]["params"]["w"]) + 1e-7
        shutil.rmtree(step)
        c.save(step, tree)
    with pytest.warns(UserWarning, match=r"array \['train'\]\['params'\]\['w'\] does not match"):
        out, _, _ = train(ToyTask(), toy_data(), _toy(work, checkpoint_every=4))
    _same(out, ref)


def test_a_step_without_its_file_list_resumes_verified_by_its_digests(interrupted, tmp_path):
    """A run killed after orbax finalised a step but before the file list was written."""
    ckpt, ref = interrupted
    work = tmp_path / "w"
    shutil.copytree(ckpt, work)
    (work / "ckpt_0000000008" / MANIFEST).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _, _ = train(ToyTask(), toy_data(), _toy(work, checkpoint_every=4))
    _same(out, ref)
    assert not (work / SET_ASIDE).exists()


def test_a_step_written_before_digests_resumes_with_a_note(interrupted, tmp_path, caplog):
    ckpt, ref = interrupted
    work = tmp_path / "w"
    shutil.copytree(ckpt, work)

    def strip(meta):
        del meta["digests"], meta["meta_sha256"]

    _edit_meta(work / "ckpt_0000000008", strip, keep_manifest=False)
    with caplog.at_level(logging.INFO, logger="trainkit"):
        out, _, _ = train(ToyTask(), toy_data(), _toy(work, checkpoint_every=4))
    assert "resumed from step 8 (epoch 1 of 2)" in caplog.text
    assert "its arrays could not be verified" in caplog.text
    _same(out, ref)


def test_load_latest_checkpoint_skips_a_damaged_step(interrupted, tmp_path):
    ckpt, _ = interrupted
    work = tmp_path / "w"
    shutil.copytree(ckpt, work)
    data = sorted((work / "ckpt_0000000008" / "state").rglob("ocdbt.process_0/d/*"))[0]
    _flip(data, random.Random(1))
    with pytest.warns(UserWarning, match="ckpt_0000000008: its file state/ocdbt.process_0/d/"):
        found = load_latest_checkpoint(work)
    assert found["path"].name == "ckpt_0000000004" and _steps(work) == [4, 8]


def test_divergence_right_after_a_resume_names_the_checkpoint_it_came_from(tmp_path):
    xs, ys = toy_data()
    xs = xs.copy()
    order = trainkit.epoch_order(len(xs), seed=0, epoch=0)
    xs[order[8 * 6 + 2], 1] = np.inf  # step 7's batch is non-finite
    s = _toy(tmp_path, checkpoint_every=2)
    train(ToyTask(), (xs, ys), s.replace(stop_after_steps=6))  # checkpoints 2, 4, 6
    with pytest.raises(TrainingDiverged) as info:
        train(ToyTask(), (xs, ys), s)
    text = str(info.value)
    assert "at global step 7" in text and "resumed 1 step(s) before from the checkpoint" in text
    assert str(tmp_path / "ckpt_0000000006") in text and "match their digests" in text
    assert info.value.checkpoint == tmp_path / "ckpt_0000000006"


def test_a_resume_on_other_devices_is_warned_about(tmp_path, monkeypatch):
    from trainkit import _devices

    data = toy_data()
    real = _devices.layout
    monkeypatch.setattr(_devices, "layout", lambda mesh: {**real(mesh), "devices": 2})
    train(ToyTask(), data, _toy(tmp_path, stop_after_steps=14))
    monkeypatch.setattr(_devices, "layout", real)
    said = r"resumes on 1 cpu device\(s\) in 1 process\(es\); its checkpoint was written on 2 cpu"
    with pytest.warns(UserWarning, match=said + r" device\(s\).*--cpu-devices 2"):
        train(ToyTask(), data, _toy(tmp_path))
    with warnings.catch_warnings():  # the same devices: no word
        warnings.simplefilter("error")
        train(ToyTask(), data, _toy(tmp_path, epochs=3))
