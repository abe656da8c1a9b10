"""Faults a long run meets, injected for real: a second run into a live run's folder, two runs
started together, SIGTERM/SIGINT at random points, a tampered run state, a kill mid-rotation,
concurrent result writes.

The independent references: an uninterrupted run in its own process (bit-identical parameters),
the process ids of the real holder processes, the steps found on disk, the step counter the
child writes before every step.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from trainkit import Settings, train, write_if_changed
from trainkit._checkpoint import CheckpointStore
from trainkit._lock import LOCK_NAME, RunFolderLocked, RunLock

from ._toy import ToyTask, toy_data
from .test_contract import ROOT, _child, _env, _same_npz, _steps

TOY_STEPS = 12  # steps per epoch of the toy runner (96 examples, batch 8)


def _out(proc, timeout=300) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode()


def _wait_for(pred, timeout=120, poll=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return False


def _read_step(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return -1


# ------------------------------------------------------------------------------------------------
# the lock


HOLDER = """
import sys, time
from trainkit._lock import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_live_holder_refuses_a_second_run_before_orbax_opens_the_folder(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    # a live run's half-written save: orbax's clean-up on opening the folder would delete it
    half = ckpt / "ckpt_0000000008.orbax-checkpoint-tmp-1700000000"
    (half / "state").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ckpt)], env=_env(),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderLocked) as err:
            train(ToyTask(), toy_data(), Settings(epochs=1, batch_size=8, checkpoint_dir=ckpt,
                                                 progress=False))  # fmt: skip
        text = str(err.value)
        assert f"process {holder.pid} on host" in text and "--out" in text
        assert "\n" not in text
        assert err.value.holder["pid"] == holder.pid
        assert half.is_dir()  # untouched
        assert list(ckpt.glob("ckpt_*")) == [half]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed: it did not clear its record): taken over with a warning
    with pytest.warns(UserWarning, match=f"took over the lock .* process {holder.pid}"):
        train(ToyTask(), toy_data(), Settings(epochs=1, batch_size=8, checkpoint_dir=ckpt,
                                             progress=False))  # fmt: skip
    assert _steps(ckpt) == [TOY_STEPS]
    assert (ckpt / LOCK_NAME).read_text() == ""  # released cleanly: no holder left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean release is taken over without a word
        with RunLock(ckpt), RunLock(ckpt):  # re-entrant in one process
            assert json.loads((ckpt / LOCK_NAME).read_text())["pid"] == os.getpid()


@pytest.mark.slow
def test_an_intruder_leaves_a_live_run_untouched(tmp_path):
    ckpt, steps = tmp_path / "ckpt", tmp_path / "steps"
    args = ("--epochs", 4, "--step-sleep", 0.02)
    ref = _child("toy", tmp_path / "ref.npz", *args)
    live = _child("toy", tmp_path / "live.npz", *args, "--ckpt", ckpt, "--slow",
                  "--steps-file", steps)  # fmt: skip
    assert _wait_for(lambda: _read_step(steps) >= 3)
    intruder = _child("toy", tmp_path / "intruder.npz", *args, "--ckpt", ckpt)
    rc, text = _out(intruder)
    assert rc == 2, text
    assert f"in use by the run of process {live.pid}" in text and "Traceback" not in text
    assert _read_step(steps) < 4 * TOY_STEPS - 1, "the live run ended before the intruder came"
    rc, text = _out(live)
    assert rc == 0, text
    assert not (tmp_path / "intruder.npz").exists()
    assert _out(ref)[0] == 0
    _same_npz(tmp_path / "ref.npz", tmp_path / "live.npz")


@pytest.mark.slow
def test_two_runs_started_together_one_proceeds(tmp_path):
    ckpt = tmp_path / "ckpt"
    args = ("--epochs", 6, "--step-sleep", 0.02, "--ckpt", ckpt)
    a = _child("toy", tmp_path / "a.npz", *args, "--seed", 0)
    b = _child("toy", tmp_path / "b.npz", *args, "--seed", 1)
    (rc_a, out_a), (rc_b, out_b) = _out(a), _out(b)
    assert sorted([rc_a, rc_b]) == [0, 2], (out_a, out_b)
    winner, loser_out = ("a", out_b) if rc_a == 0 else ("b", out_a)
    assert "in use by the run of process" in loser_out and "Traceback" not in loser_out
    assert not (tmp_path / ("b.npz" if winner == "a" else "a.npz")).exists()
    # the folder holds the winner's steps only, each of the winner's seed
    with CheckpointStore(ckpt, None, reading=True) as store:
        seeds = {store.read_meta(s)["fingerprint"]["seed"] for s in store.steps()}
        assert store.steps()[-1] == 6 * TOY_STEPS
    assert seeds == {0 if winner == "a" else 1}


# ------------------------------------------------------------------------------------------------
# SIGTERM and SIGINT


def _interrupt(tmp_path, name, sig, delay_steps, *, twice=False):
    """Signal a toy run (checkpoints at epoch ends only) once it reached ``delay_steps``."""
    ckpt, steps = tmp_path / f"ckpt_{name}", tmp_path / f"steps_{name}"
    args = ("--epochs", 4, "--every", 0, "--step-sleep", 0.01, "--ckpt", ckpt)
    slow = ["--slow", "--save-sleep", 2.0] if twice else []  # the stop's save takes 2 s
    victim = _child("toy", tmp_path / f"{name}.npz", *args, "--steps-file", steps, *slow)
    assert _wait_for(lambda: _read_step(steps) >= delay_steps)
    reached = _read_step(steps)
    os.kill(victim.pid, sig)
    if twice:  # once the first one was handled (a step is 10 ms), during the save
        time.sleep(0.5)
        os.kill(victim.pid, sig)
    rc, text = _out(victim)
    return ckpt, reached, rc, text


@pytest.mark.slow
def test_signals_at_random_points_save_the_current_step_and_resume_bit_identical(tmp_path):
    ref = _child("toy", tmp_path / "ref.npz", "--epochs", 4, "--every", 0)
    rng = random.Random(24)
    cases = [(signal.SIGTERM, rng.randrange(1, 44)), (signal.SIGINT, rng.randrange(1, 44)),
             (signal.SIGTERM, rng.randrange(1, 44))]  # fmt: skip
    assert _out(ref)[0] == 0
    for i, (sig, at) in enumerate(cases):
        ckpt, reached, rc, text = _interrupt(tmp_path, f"run{i}", sig, at)
        assert rc == 128 + sig, text
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"interrupted: {sig.name}: stopped"), text
        saved = _steps(ckpt)[-1]
        # the step that was running is finished and saved, nothing before it lost
        assert f"checkpoint of step {saved} in" in lines[0]
        assert reached <= saved <= reached + 2, (reached, saved)
        rc, text = _out(_child("toy", tmp_path / f"run{i}.npz", "--epochs", 4, "--every", 0,
                               "--ckpt", ckpt))  # fmt: skip
        assert rc == 0, text
        _same_npz(tmp_path / "ref.npz", tmp_path / f"run{i}.npz")


@pytest.mark.slow
def test_a_second_signal_exits_at_once_and_the_run_still_resumes(tmp_path):
    ref = _child("toy", tmp_path / "ref.npz", "--epochs", 4, "--every", 0)
    ckpt, _, rc, text = _interrupt(tmp_path, "twice", signal.SIGTERM, 16, twice=True)
    assert rc == 143, text
    assert "SIGTERM again: exiting at once" in text and "Traceback" not in text, text
    rc, text = _out(_child("toy", tmp_path / "twice.npz", "--epochs", 4, "--every", 0,
                           "--ckpt", ckpt))  # fmt: skip
    assert rc == 0, text
    assert _out(ref)[0] == 0
    _same_npz(tmp_path / "ref.npz", tmp_path / "twice.npz")


# ------------------------------------------------------------------------------------------------
# the run state


def _toy(ckpt, **kw):
    s = dict(epochs=2, batch_size=8, seed=0, checkpoint_dir=ckpt, progress=False)
    s.update(kw)
    return Settings(**s)


def _meta_file(step_dir: Path) -> Path:
    return step_dir / "meta" / "metadata"  # orbax's JSON item


@pytest.mark.parametrize("rehash", [False, True])
def test_a_changed_digit_in_the_position_falls_back_with_a_warning(tmp_path, rehash):
    import re

    from trainkit._checkpoint import run_state_sha256

    data = toy_data()
    ref, _, _ = train(ToyTask(), data, _toy(None))
    train(ToyTask(), data, _toy(tmp_path, checkpoint_every=4, stop_after_steps=10))
    assert _steps(tmp_path) == [4, 8]
    f = _meta_file(tmp_path / "ckpt_0000000008")
    text = f.read_text()
    assert json.loads(text)["position"] == {"epoch": 0, "batch": 8, "step": 8}
    text, n = re.subn(r'("batch":\s*)8\b', r"\g<1>9", text)  # one digit: 8 -> 9
    assert n == 1
    if rehash:  # a checksum that fits: the position is still inconsistent with the step
        meta = json.loads(text)
        meta["run_state_sha256"] = run_state_sha256(meta)
        text = json.dumps(meta)
    f.write_text(text)
    reason = "inconsistent" if rehash else "does not match its checksum"
    with pytest.warns(UserWarning, match=f"skipping checkpoint .*ckpt_0000000008: .*{reason}"):
        out, hist, _ = train(ToyTask(), data, _toy(tmp_path, checkpoint_every=4))
    assert hist["step"] == [12, 24]
    for k in ref:  # resumed from step 4: the same model, not another one
        np.testing.assert_array_equal(out[k], ref[k])


# ------------------------------------------------------------------------------------------------
# rotation, listing, result files


def test_rotation_renames_away_and_only_complete_steps_are_listed(tmp_path):
    train(ToyTask(), toy_data(), _toy(tmp_path, keep=2, checkpoint_every=5))
    assert _steps(tmp_path) == [20, 24]
    # what a kill leaves: a step renamed away mid-deletion, a step folder without its items
    away = tmp_path / ".deleting-ckpt_0000000015"
    (away / "state").mkdir(parents=True)
    bare = tmp_path / "ckpt_0000000030"
    (bare / "state").mkdir(parents=True)
    assert _steps(tmp_path) == [20, 24]
    with CheckpointStore(tmp_path, 2):
        assert not away.exists()  # removed when the folder is opened for writing


def test_write_if_changed_uses_a_unique_temporary_name(tmp_path):
    target, seen = tmp_path / "result.json", []

    def write(text):
        def w(tmp):
            seen.append(tmp)
            time.sleep(0.05)  # both writers hold their temporary file at once
            tmp.write_text(text)

        return w

    texts = [json.dumps({"writer": i, "pad": "x" * 10000}) for i in range(2)]
    threads = [threading.Thread(target=write_if_changed, args=(target, write(t))) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 2 and all(p.suffix == ".json" for p in seen)
    assert target.read_text() in texts  # whole, one writer's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert write_if_changed(target, write(target.read_text())) is False


# ------------------------------------------------------------------------------------------------
# a finished run in a read-only folder


def _read_only_view(src: Path, dst: Path) -> bool:
    """Bind-mount ``src`` read-only at ``dst`` (root on Linux); False where that is refused."""
    dst.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True)
    if ok.returncode != 0:
        return False
    ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], capture_output=True)
    if ro.returncode != 0:
        subprocess.run(["umount", str(dst)])
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                    reason="a read-only bind mount needs root on Linux")  # fmt: skip
def test_finished_run_in_a_read_only_folder_reports_and_exits_0(tmp_path):
    ckpt, view = tmp_path / "ckpt", tmp_path / "view"
    rc, text = _out(_child("toy", tmp_path / "a.npz", "--ckpt", ckpt))
    assert rc == 0, text
    if not _read_only_view(ckpt, view):
        pytest.skip("mount --bind -o ro refused here")
    try:
        assert subprocess.run(["touch", str(view / "x")], capture_output=True).returncode != 0
        rc, text = _out(_child("toy", tmp_path / "b.npz", "--ckpt", view))
        assert rc == 0, text
        assert "Traceback" not in text
        _same_npz(tmp_path / "a.npz", tmp_path / "b.npz")  # the finished run's model, as it is
    finally:
        subprocess.run(["umount", str(view)])


# ------------------------------------------------------------------------------------------------
# the command line end to end: --no-resume sets the old outputs aside, SIGTERM, rerun


@pytest.mark.slow
def test_cli_no_resume_sigterm_and_rerun_end_bit_identical(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "noisy_dyn", "train", "--preset", "lipschitz", "--data",
           "digits", "--epochs", "5", "--hidden", "16", "--limit", "600", "--batch-size", "16",
           "--out", str(out), "--quiet"]  # fmt: skip

    def start(*extra):
        return subprocess.Popen([*cmd, *extra], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)  # fmt: skip

    rc, text = _out(start())
    assert rc == 0, text
    first = (out / "model.npz").read_bytes()
    spe = _steps(out / "checkpoints")[-1] // 5  # the steps of an epoch (5 epochs)
    victim = start("--no-resume")
    assert _wait_for(lambda: (out / "model.npz").exists() is False, timeout=120)
    aside = list(out.glob("previous-*"))
    assert len(aside) == 1 and (aside[0] / "model.npz").read_bytes() == first
    # the new run's epoch-1 checkpoint (the old steps are deleted first): it is training
    assert _wait_for(lambda: 0 < len(st := _steps(out / "checkpoints")) and st[-1] < 5 * spe,
                     timeout=240, poll=0.002)  # fmt: skip
    os.kill(victim.pid, signal.SIGTERM)
    rc, text = _out(victim)
    assert rc == 143, text
    assert "interrupted: SIGTERM: stopped after step" in text and "Traceback" not in text, text
    assert not (out / "model.npz").exists()  # no half-trained model in the run's place
    rc, text = _out(start())
    assert rc == 0 and "Traceback" not in text, text
    assert (out / "model.npz").read_bytes() == first  # resumed: the uninterrupted model, bitwise


# ------------------------------------------------------------------------------------------------
# several processes agree on the step to save at


@pytest.mark.slow
def test_sigterm_to_one_of_two_processes_saves_both_at_one_step(tmp_path):
    from .test_contract import _free_port

    def pair(out, *extra):
        port = _free_port()
        return [_child("toy", out, "--epochs", 4, "--every", 0, *extra, "--dist", i, 2, port,
                       devices=2) for i in range(2)]  # fmt: skip

    ref = pair(tmp_path / "ref.npz")
    ckpt, sf = tmp_path / "ckpt", tmp_path / "steps"
    victims = pair(tmp_path / "run.npz", "--ckpt", ckpt, "--step-sleep", 0.02, "--steps-file", sf)
    assert _wait_for(lambda: _read_step(sf) >= 17)
    os.kill(victims[1].pid, signal.SIGTERM)  # only process 1 is told
    results = [_out(p) for p in victims]
    for rc, text in results:
        assert rc == 143, text
        assert "Traceback" not in text, text
    saved = [re.search(r"checkpoint of step (\d+)", t).group(1) for _, t in results]
    assert saved[0] == saved[1] and int(saved[0]) == _steps(ckpt)[-1] > 12
    for p in ref:
        assert _out(p)[0] == 0
    for rc, text in (_out(p) for p in pair(tmp_path / "run.npz", "--ckpt", ckpt)):
        assert rc == 0, text
    _same_npz(tmp_path / "ref.npz", tmp_path / "run.npz")
