"""The training engine's contract, checked on the engine itself (a toy task) and through both
packages' ``fit``:

- a process killed by SIGKILL mid-epoch and rerun ends bit-identical to an uninterrupted run;
- an unfinalized (half-written) checkpoint step is ignored on resume;
- a checkpoint folder of another run (other package, configuration, data or seed, or an older
  checkpoint layout) is refused with a message naming each differing field and both values;
- a divergence stops training with the last good checkpoint kept;
- N devices train like 1, and two ``jax.distributed`` processes x 2 CPU devices like one process
  x 4 devices (gloo collectives).

The independent references are the uninterrupted run (in its own process), the finalized steps
found on disk, and the values passed in.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import trainkit
from trainkit import CheckpointMismatchError, Settings, TrainingDiverged, train
from trainkit._checkpoint import CheckpointStore, list_checkpoints, load_latest_checkpoint

from ._toy import ToyTask, toy_data

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = ("toy", "noisy_dyn", "basis_ode")


def _env(devices: int | None = None) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("JAX_ENABLE_X64", None)
    flags = "--xla_cpu_multi_thread_eigen=false"
    if devices:
        flags += f" --xla_force_host_platform_device_count={devices}"
    env["XLA_FLAGS"] = flags
    return env


def _child(runner, out, *extra, devices=None):
    cmd = [sys.executable, "-m", "tests.trainkit._child", runner, str(out), *map(str, extra)]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip


def _finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode()[-3000:]


def _same_npz(a, b, atol=0.0):
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for k in x.files:
            if atol:
                np.testing.assert_allclose(x[k], y[k], rtol=0, atol=atol, err_msg=k)
            else:
                np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _steps(directory):
    return [int(p.name[5:]) for p in list_checkpoints(directory)]


# ------------------------------------------------------------------------------------------------
# SIGKILL mid-epoch, then the same command again


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["toy"])  # the packages': tests/*/test_train.py::test_sigkill*
def test_sigkill_mid_epoch_then_rerun_is_bit_identical(runner, tmp_path):
    ref = _child(runner, tmp_path / "ref.npz")
    victim = _child(runner, tmp_path / "kill.npz", "--ckpt", tmp_path / "ckpt", "--slow")
    killed_at, deadline = None, time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        steps = _steps(tmp_path / "ckpt")
        if steps and steps[-1] >= 15:  # 12 steps an epoch: mid epoch 2
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = steps[-1]
            break
        time.sleep(0.01)
    victim.wait()
    out = victim.stdout.read().decode()[-2000:]
    assert killed_at is not None and killed_at < 36 and victim.returncode == -signal.SIGKILL, out
    assert not (tmp_path / "kill.npz").exists()
    restart = _child(runner, tmp_path / "kill.npz", "--ckpt", tmp_path / "ckpt")
    _finish(ref)
    _finish(restart)
    _same_npz(tmp_path / "ref.npz", tmp_path / "kill.npz")


# ------------------------------------------------------------------------------------------------
# the engine on the toy task, in process


def _toy(tmp_path, **kw):
    s = dict(epochs=2, batch_size=8, seed=0, checkpoint_dir=tmp_path, progress=False)
    s.update(kw)
    return Settings(**s)


def test_unfinalized_step_is_ignored(tmp_path, caplog):
    data = toy_data()
    ref, _, _ = train(ToyTask(), data, _toy(None))
    train(ToyTask(), data, _toy(tmp_path, checkpoint_every=4, stop_after_steps=10))
    assert _steps(tmp_path) == [4, 8]
    fake = tmp_path / "ckpt_0000000009.orbax-checkpoint-tmp-1700000000"
    (fake / "state").mkdir(parents=True)
    (fake / "state" / "manifest.ocdbt").write_bytes(b"\x00half written")
    (fake / "_CHECKPOINT_METADATA").write_text("{not json")
    assert _steps(tmp_path) == [4, 8]
    with caplog.at_level(logging.INFO, logger="trainkit"):
        out, hist, _ = train(ToyTask(), data, _toy(tmp_path, checkpoint_every=4))
    assert "resumed from step 8 (epoch 1 of 2)" in caplog.text
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])
    assert hist["epoch"] == [1, 2] and hist["step"] == [12, 24]
    assert not fake.exists()


def test_mismatch_is_refused_naming_both_values(tmp_path):
    data = toy_data()
    train(ToyTask(), data, _toy(tmp_path, epochs=1))
    cases = [
        (ToyTask(n_cls=3, lr=0.2), data, {}, r"optimizer.lr: checkpoint 0.1, now 0.2"),
        (ToyTask(), toy_data(seed=5), {}, r"data: checkpoint '[0-9a-f]{64}', now '[0-9a-f]{64}'"),
        (ToyTask(), data, {"seed": 3}, r"seed: checkpoint 0, now 3"),
        (ToyTask(package="other"), data, {}, r"package: checkpoint 'toy', now 'other'"),
    ]
    for task, d, kw, pattern in cases:
        with pytest.raises(CheckpointMismatchError, match=pattern) as info:
            train(task, d, _toy(tmp_path, epochs=1, **kw))
        assert "--no-resume" in str(info.value)
    # a configuration with other shapes
    with pytest.raises(CheckpointMismatchError, match="config.n_in: checkpoint 4, now 5"):
        train(ToyTask(n_in=5), toy_data(n_in=5), _toy(tmp_path, epochs=1))
    # resume=False starts afresh there
    train(ToyTask(), data, _toy(tmp_path, epochs=1, seed=3, resume=False))
    assert load_latest_checkpoint(tmp_path)["meta"]["fingerprint"]["seed"] == 3


@pytest.mark.parametrize("layout", ["noisy_dyn_v2", "basis_ode_v1", "foreign"])
def test_older_or_foreign_layouts_are_refused_without_key_error(tmp_path, layout):
    metas = {
        "noisy_dyn_v2": {"format": 2, "run": {"config": {"hidden_size": 8}, "seed": 0}},
        "basis_ode_v1": {"format": None, "fingerprint": {"model": {"class": "ConvODENet"}}},
        "foreign": {"hello": 1},
    }
    with CheckpointStore(tmp_path, 3) as store:
        store.save(5, {"w": np.zeros(3)}, None, metas[layout])
    with pytest.raises(CheckpointMismatchError, match="package: checkpoint '") as info:
        train(ToyTask(), toy_data(), _toy(tmp_path, epochs=1))
    assert "now 'toy'" in str(info.value)
    if layout != "foreign":
        assert layout.split("_v")[0] in str(info.value) and "older" in str(info.value)


@pytest.mark.parametrize("check_every", [1, 50])
def test_divergence_stops_with_last_good_checkpoint(tmp_path, check_every):
    xs, ys = toy_data()
    xs = xs.copy()
    order = trainkit.epoch_order(len(xs), seed=0, epoch=0)
    xs[order[8 * 6 + 2], 1] = np.inf  # the 7th step's batch (0-based batch 6) is non-finite
    # (the input check is the packages'; the toy task takes what it gets)
    with pytest.raises(TrainingDiverged, match="global step 7 ") as info:
        train(ToyTask(), (xs, ys), _toy(tmp_path, checkpoint_every=2, check_every=check_every))
    err = info.value
    assert err.step == 7 and err.epoch == 1
    assert _steps(tmp_path) == [2, 4, 6]  # the flag is read at every checkpoint
    assert str(err.checkpoint) == str(list_checkpoints(tmp_path)[-1]) and str(
        err.checkpoint
    ) in str(err)
    # the parameters are those after step 6: the same as a run stopped there
    good, _, _ = train(ToyTask(), (xs, ys), _toy(None, stop_after_steps=6))
    for k in good:
        np.testing.assert_array_equal(err.params[k], good[k])
    stored = load_latest_checkpoint(tmp_path)["state"]
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(stored) if a.dtype.kind == "f")


def test_history_callback_best_and_finished_runs(tmp_path, caplog):
    data, val = toy_data(), toy_data(30, seed=1)
    seen = []

    def cb(epoch, params):
        seen.append(epoch)
        return {"w_norm": float(np.linalg.norm(params["w"]))}

    task = ToyTask(validation=val)
    best, hist, _ = train(task, data, _toy(tmp_path, epochs=3, callback=cb))
    last, _, _ = train(task, data, _toy(None, epochs=3, return_params=trainkit.LastEpoch()))
    with pytest.warns(DeprecationWarning, match=r"trainkit\.LastEpoch\(\)"):  # the former name
        named, _, _ = train(task, data, _toy(None, epochs=3, return_params="last"))
    np.testing.assert_array_equal(named["w"], last["w"])
    assert seen == [1, 2, 3] and hist["epoch"] == [1, 2, 3] and len(hist["w_norm"]) == 3
    b = int(np.argmax(hist["val_accuracy"]))  # the first epoch of the best accuracy
    assert hist["best_epoch"] == b + 1
    assert hist["w_norm"][b] == pytest.approx(float(np.linalg.norm(best["w"])))
    assert hist["w_norm"][-1] == pytest.approx(float(np.linalg.norm(last["w"])))
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows == trainkit.epoch_rows(hist)
    mtime = (tmp_path / "log.jsonl").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="trainkit"):
        again, h2, _ = train(task, data, _toy(tmp_path, epochs=3))
    assert "already complete: 3 epochs (36 steps)" in caplog.text
    assert (tmp_path / "log.jsonl").stat().st_mtime_ns == mtime  # nothing rewritten
    assert h2["val_accuracy"] == hist["val_accuracy"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, h3, _ = train(task, data, _toy(tmp_path, epochs=4))
    assert "resumed from step 36 (epoch 4 of 4)" in caplog.text and h3["epoch"] == [1, 2, 3, 4]


def test_key_streams_do_not_overlap():
    # the engine initialises from split(key(seed))[0]; step s draws from
    # fold_in(split(key(seed))[1], s), so no step key is an init key or one of its splits
    from trainkit import _loop

    run = _loop._fresh(ToyTask(), 0, trainkit.default_mesh())
    init_key, noise_key = jax.random.split(jax.random.key(0))
    w0 = 0.1 * jax.random.normal(init_key, (4, 3), np.float32)
    np.testing.assert_array_equal(np.asarray(run.carry["train"]["params"]["w"]), np.asarray(w0))
    stored = np.asarray(run.carry["train"]["key"])
    np.testing.assert_array_equal(stored, np.asarray(jax.random.key_data(noise_key)))
    data = lambda k: tuple(np.asarray(jax.random.key_data(k)).ravel())  # noqa: E731
    step_keys = {data(jax.random.fold_in(noise_key, s)) for s in range(8)}
    init_keys = {data(k) for k in [init_key, *jax.random.split(init_key, 8)]}
    assert not step_keys & init_keys


def test_progress_lines_when_not_a_terminal(tmp_path, capsys):
    train(ToyTask(), toy_data(), _toy(tmp_path, progress=True))
    err = capsys.readouterr().err
    assert "epoch 1 step 12/24" in err and "epoch 2 step 24/24" in err
    train(ToyTask(), toy_data(), _toy(tmp_path, progress=True))
    assert "already complete" in capsys.readouterr().err


def test_bad_settings():
    data = toy_data()
    with pytest.raises(ValueError, match="larger than the training set"):
        train(ToyTask(), data, _toy(None, batch_size=200))
    with pytest.raises(ValueError, match="return_params"):
        train(ToyTask(), data, _toy(None, return_params="first"))
    with pytest.raises(ValueError, match="`epochs` must be an int >= 1"):
        train(ToyTask(), data, _toy(None, epochs=0))


# ------------------------------------------------------------------------------------------------
# devices and processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_devices_and_processes_train_like_one_device(runner, tmp_path):
    # (the packages' 4-devices-vs-1 checks are in tests/*/test_train.py)
    procs = [_child(runner, tmp_path / "four.npz", devices=4)]
    if runner == "toy":
        procs.append(_child(runner, tmp_path / "one.npz", devices=1))
    port = _free_port()
    procs += [
        _child(runner, tmp_path / "two.npz", "--dist", i, 2, port, devices=2) for i in range(2)
    ]
    for p in procs:
        _finish(p)
    # 2 processes x 2 devices run the program of 1 process x 4 devices; only the order of the
    # cross-process (gloo) sums of the gradients may differ: float32 rounding
    _same_npz(tmp_path / "four.npz", tmp_path / "two.npz", atol=1e-5)
    if runner == "toy":  # 4 devices vs 1: the batch sums are split differently
        _same_npz(tmp_path / "one.npz", tmp_path / "four.npz", atol=1e-5)
    with np.load(tmp_path / "four.npz") as z:  # training moved the parameters far beyond that
        assert max(float(np.max(np.abs(z[k]))) for k in z.files) > 1e-2
