"""Training: loss decrease, schedule, resumption (in-process and after SIGKILL), data parallelism,
refusal of foreign checkpoints, divergence detection, input validation."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn import _train
from noisy_dyn.data import load_digits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    s = load_digits(seed=0)
    return s.train[0][:192], s.train[1][:192], s.validation[0][:64], s.validation[1][:64]


def _cfg(name="nrnn_ito", **kw):
    """A preset with dt scaled by 784/64 (MNIST's total time on 64 steps); hidden size 8."""
    base = noisy_dyn.preset(name, input_size=1, num_classes=10)
    kw.setdefault("hidden_size", 8)
    kw.setdefault("dt", base.dt * 784 / 64)
    return noisy_dyn.preset(name, input_size=1, num_classes=10, **kw)


def _np_ce(logits, ys):
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(len(ys)), ys]))


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def _steps(directory):
    """Finalized orbax step directories ``ckpt_<10 digits>`` (not ``*.orbax-checkpoint-tmp-*``)."""
    found = [(int(m.group(1)), p) for p in Path(directory).glob("ckpt_*")
             if (m := re.fullmatch(r"ckpt_(\d{10})", p.name)) and p.is_dir()]  # fmt: skip
    return sorted(found)


def test_fit_reduces_loss_and_follows_step_decay(digits):
    xs, ys, xv, yv = digits
    cfg = _cfg()
    init = noisy_dyn.init_params(jax.random.key(0), cfg)
    before = _np_ce(noisy_dyn.apply(init, xs, cfg), ys)
    _, params, hist = noisy_dyn.fit(
        cfg, (xs, ys), epochs=3, batch_size=32, learning_rate=1e-2, progress=False,
        recipe=noisy_dyn.AdamStepDecay(decay_at=0.5),
    )  # fmt: skip
    after = _np_ce(noisy_dyn.apply(params, xs, cfg), ys)
    assert after < before - 0.3
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    # step decay: x0.1 after ceil(0.5 * 3) = 2 epochs.
    np.testing.assert_allclose(hist["learning_rate"], [1e-2, 1e-2, 1e-3], rtol=1e-6)
    assert hist["epoch"] == [1, 2, 3] and hist["step"] == [6, 12, 18]  # 192 // 32 steps an epoch
    # the paper's x0.1 at epoch 90 of 100; a 2-epoch (or 9-epoch) run does not decay at all
    assert [_train.decay_epoch(0.9, e) for e in (100, 10, 9, 2, 1)] == [90, 9, 9, 2, 1]
    _, _, short = noisy_dyn.fit(cfg, (xs, ys), epochs=2, batch_size=96, learning_rate=1e-2,
                             progress=False)  # fmt: skip
    assert short["learning_rate"] == [1e-2, 1e-2]
    # accuracy() with a batch size that does not divide N equals a plain NumPy count.
    acc = noisy_dyn.accuracy(params, xv, yv, cfg, batch_size=24)
    expected = np.mean(np.asarray(noisy_dyn.apply(params, xv, cfg)).argmax(-1) == yv)
    assert acc == pytest.approx(expected, abs=1e-12)


def test_resume_in_process_is_bit_identical(digits, tmp_path, caplog):
    xs, ys, xv, yv = digits
    cfg = _cfg()
    kw = dict(
        epochs=3, batch_size=32, learning_rate=5e-3, seed=3, validation=(xv, yv),
        checkpoint_every_steps=4, progress=False,
    )  # fmt: skip
    _, ref, ref_hist = noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path / "a", **kw)
    # Interrupted at step 11 (mid epoch 2; last checkpoint at step 8), then the same call again.
    seen = []
    cb = lambda epoch, p: seen.append(epoch) or {"norm_U": float(np.linalg.norm(p["U"]))}  # noqa: E731
    _, _, part = noisy_dyn.fit(
        cfg, (xs, ys), checkpoint_dir=tmp_path / "b", stop_after_steps=11, callback=cb, **kw
    )
    assert part["epoch"] == [1] and part["interrupted"] and part["global_step"] == 11
    _, out, hist = noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path / "b", callback=cb, **kw)
    _same(ref, out)
    assert seen == [1, 2, 3]  # epoch 1 is not redone
    assert hist["val_accuracy"] == ref_hist["val_accuracy"]
    assert hist["train_loss"] == ref_hist["train_loss"]
    assert len(hist["norm_U"]) == 3
    # Best-on-validation params are returned, and the log has one line per epoch.
    best = max(range(3), key=lambda i: (hist["val_accuracy"][i], -i))
    assert hist["best_epoch"] == best + 1
    lines = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]
    assert len(_steps(tmp_path / "b")) == 3  # keep=3
    # A finished run resumes to the same result without training, and says so.
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, again, _ = noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path / "b", **kw)
    assert "already complete: 3 epochs" in caplog.text
    _same(ref, again)


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import noisy_dyn
    from trainkit import _checkpoint

    ckpt, out, slow, data = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
    if slow:  # widen the window between checkpoints so the kill lands mid-epoch
        save = _checkpoint.CheckpointStore.save
        def slow_save(*a, **k):
            time.sleep(0.1)
            return save(*a, **k)
        _checkpoint.CheckpointStore.save = slow_save
    with np.load(data) as z:
        xs, ys = z["xs"], z["ys"]
    cfg = noisy_dyn.preset("nrnn_reference", input_size=1, num_classes=10, hidden_size=8, dt=0.12)
    _, params, _ = noisy_dyn.fit(cfg, (xs, ys), epochs=3, batch_size=16, learning_rate=5e-3,
                              seed=1, checkpoint_dir=ckpt, checkpoint_every_steps=3,
                              progress=False)
    np.savez(out, **params)
    """
)


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    env.pop("JAX_ENABLE_X64", None)
    return env


def test_sigkill_mid_epoch_then_restart_is_bit_identical(digits, tmp_path):
    np.savez(tmp_path / "data.npz", xs=digits[0][:160], ys=digits[1][:160])
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = _child_env()
    run = lambda d, o, slow: subprocess.Popen(  # noqa: E731
        [sys.executable, str(script), str(tmp_path / d), str(tmp_path / o), slow,
         str(tmp_path / "data.npz")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    ref = run("ref", "ref.npz", "0")
    victim = run("kill", "kill.npz", "1")
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline:
        steps = [s for s, _ in _steps(tmp_path / "kill")]
        if steps and max(steps) >= 12:  # epoch 1 has 10 steps: this is mid epoch 2
            assert victim.poll() is None, victim.stdout.read().decode()
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = max(steps)
            break
        time.sleep(0.02)
    victim.wait()
    assert killed_at is not None and killed_at < 30, "the run was not killed mid-training"
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "kill.npz").exists()
    restart = run("kill", "kill.npz", "0")
    for p in (ref, restart):
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0, out.decode()
    with np.load(tmp_path / "ref.npz") as a, np.load(tmp_path / "kill.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


_MULTI = textwrap.dedent(
    """
    import json
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import Mesh
    import noisy_dyn
    import sys

    with np.load(sys.argv[1]) as z:
        xs, ys = z["xs"], z["ys"]
    cfg = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=8, dt=0.12)
    devs = jax.devices()
    kw = dict(epochs=2, batch_size=32, learning_rate=5e-3, progress=False)
    _, p4, _ = noisy_dyn.fit(cfg, (xs, ys), mesh=Mesh(np.array(devs), ("batch",)), **kw)
    _, p1, _ = noisy_dyn.fit(cfg, (xs, ys), mesh=Mesh(np.array(devs[:1]), ("batch",)), **kw)
    _, pd, _ = noisy_dyn.fit(cfg, (xs, ys), **kw)  # default mesh: all local devices
    err = ""
    try:
        noisy_dyn.fit(cfg, (xs, ys), epochs=1, batch_size=30, learning_rate=1e-3,
                      progress=False)
    except ValueError as e:
        err = str(e)
    diff = max(float(np.max(np.abs(p4[k] - p1[k]))) for k in p1)
    diff_d = max(float(np.max(np.abs(pd[k] - p4[k]))) for k in p1)
    moved = max(float(np.max(np.abs(p1[k] - noisy_dyn.init_params(jax.random.key(0), cfg)[k])))
                for k in p1)
    print(json.dumps(dict(n=len(devs), diff=diff, diff_default=diff_d, moved=moved, err=err)))
    """
)


def test_four_devices_match_one_device(digits, tmp_path):
    np.savez(tmp_path / "data.npz", xs=digits[0][:128], ys=digits[1][:128])
    script = tmp_path / "multi.py"
    script.write_text(_MULTI)
    env = _child_env()
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 4
    assert res["moved"] > 1e-3  # training did change the parameters
    assert res["diff"] < 1e-10 and res["diff_default"] < 1e-10
    assert "multiple of the 4 devices" in res["err"]


def test_refuses_checkpoint_of_other_config_or_settings(digits, tmp_path):
    xs, ys, _, _ = digits
    cfg = _cfg()
    kw = dict(epochs=1, batch_size=32, learning_rate=1e-2, progress=False)
    noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path, **kw)
    refused = noisy_dyn.CheckpointMismatchError
    assert issubclass(refused, ValueError)
    with pytest.raises(refused, match=r"config.hidden_size: checkpoint 8, now 12"):
        noisy_dyn.fit(cfg.replace(hidden_size=12), (xs, ys), checkpoint_dir=tmp_path, **kw)
    with pytest.raises(refused, match=r"optimizer.learning_rate: checkpoint 0.01, now 0.1"):
        noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path, **{**kw, "learning_rate": 0.1})
    with pytest.raises(refused, match=r"data: checkpoint '[0-9a-f]{64}', now '[0-9a-f]{64}'"):
        noisy_dyn.fit(cfg, (xs[:160], ys[:160]), checkpoint_dir=tmp_path, **kw)
    with pytest.raises(refused, match=r"seed: checkpoint 0, now 1"):
        noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path, seed=1, **kw)


def test_divergence_stops_and_keeps_last_good_checkpoint(digits, tmp_path):
    xs, ys, _, _ = digits
    cfg = _cfg()
    with pytest.raises(noisy_dyn.TrainingDiverged) as info:
        noisy_dyn.fit(
            cfg, (xs, ys), epochs=2, batch_size=32, learning_rate=1e6,
            checkpoint_dir=tmp_path, checkpoint_every_steps=1, progress=False,
        )  # fmt: skip
    msg = str(info.value)
    assert "learning_rate" in msg and "dt" in msg and "global step" in msg
    failed = int(msg.split("global step ")[1].split(" ")[0])
    assert info.value.step == failed
    ckpts = _steps(tmp_path)
    assert ckpts, "no checkpoint before the failure"
    assert ckpts[-1][0] == failed - 1
    assert str(ckpts[-1][1]) in msg
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as reader:  # read the arrays back independently of fit
        stored = reader.restore(ckpts[-1][1] / "state")
    leaves = jax.tree_util.tree_leaves(stored)
    # params, Adam's two moments and step count, the noise key data, the step counter, the
    # epoch's three running sums, the finiteness flag and the first bad step
    assert len(leaves) == 3 * len(noisy_dyn.init_params(jax.random.key(0), cfg)) + 8
    for leaf in leaves:
        assert np.all(np.isfinite(leaf))


def test_unfinalized_step_directory_is_ignored_on_resume(digits, tmp_path, caplog):
    # A kill during an orbax save leaves ``ckpt_<step>.orbax-checkpoint-tmp-<time>``; resume
    # must use the newest finalized step, not the half-written one.
    xs, ys, _, _ = digits
    cfg = _cfg()
    kw = dict(epochs=1, batch_size=32, learning_rate=5e-3, seed=3, progress=False)
    _, ref, _ = noisy_dyn.fit(cfg, (xs, ys), **kw)
    noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path, checkpoint_every_steps=2,
                  stop_after_steps=5, **kw)  # fmt: skip
    assert [s for s, _ in _steps(tmp_path)] == [2, 4]
    fake = tmp_path / "ckpt_0000000005.orbax-checkpoint-tmp-1700000000"
    (fake / "state").mkdir(parents=True)
    (fake / "state" / "manifest.ocdbt").write_bytes(b"\x00half written")
    (fake / "_CHECKPOINT_METADATA").write_text("{not json")
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, out, hist = noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path,
                                  checkpoint_every_steps=2, **kw)  # fmt: skip
    assert "resumed from step 4" in caplog.text  # not from the half-written step 5
    _same(ref, out)
    assert [s for s, _ in _steps(tmp_path)] == [2, 4, 6]
    assert not fake.exists()  # orbax removed the unfinalized directory


def test_input_validation(digits):
    xs, ys, _, _ = digits
    cfg = _cfg()
    kw = dict(epochs=1, batch_size=32, learning_rate=1e-2, progress=False)
    bad = xs.copy()
    bad[3, 5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        noisy_dyn.fit(cfg, (bad, ys), **kw)
    with pytest.raises(ValueError, match="num_classes"):
        noisy_dyn.fit(cfg, (xs, ys + 5), **kw)
    with pytest.raises(ValueError, match="input_size"):
        noisy_dyn.fit(cfg, (np.repeat(xs, 2, axis=2), ys), **kw)
    with pytest.raises(ValueError, match="batch_size"):
        noisy_dyn.fit(cfg, (xs, ys), **{**kw, "batch_size": 1000})
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="regularizer"):
        noisy_dyn.fit(cfg, (xs, ys), regularizer="dropout", **kw)
    with pytest.raises(TypeError, match="NoisyRNNConfig"):
        noisy_dyn.fit({"hidden_size": 8}, (xs, ys), **kw)
    with pytest.raises(ValueError, match="learning_rate"):
        noisy_dyn.fit(cfg, (xs, ys), **{**kw, "learning_rate": -1e-3})


def test_explicit_regularizer_with_zero_weight_is_deterministic_training(digits):
    # lam = 0: the explicit objective is the deterministic cross-entropy, i.e. noise-free training.
    xs, ys, _, _ = digits
    cfg = _cfg("nrnn_ito", hidden_size=6)
    kw = dict(epochs=1, batch_size=64, learning_rate=1e-2, progress=False,
              init=noisy_dyn.init_params(jax.random.key(0), cfg))  # fmt: skip
    zero = noisy_dyn.ExplicitRegularizer(lam=0.0)
    _, p_explicit, _ = noisy_dyn.fit(cfg, (xs, ys), regularizer=zero, **kw)
    quiet = cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    _, p_quiet, _ = noisy_dyn.fit(quiet, (xs, ys), **kw)
    for k in p_quiet:
        np.testing.assert_allclose(p_explicit[k], p_quiet[k], rtol=1e-9, atol=1e-12)


def test_lengths_read_out_at_each_last_step(digits, tmp_path):
    xs, ys, _, _ = digits
    cfg = _cfg()
    params = noisy_dyn.init_params(jax.random.key(1), cfg)
    lengths = np.array([64, 10, 33, 1], np.int32)
    x4 = xs[:4].copy()
    got = _train.logits_with_lengths(params, x4, cfg, lengths=lengths)
    for i, n in enumerate(lengths):  # independent: run the model on the truncated sequence
        np.testing.assert_allclose(got[i], noisy_dyn.apply(params, x4[i : i + 1, :n], cfg)[0],
                                   rtol=1e-10)  # fmt: skip
    # fit accepts (xs, ys, lengths) and model files round-trip.
    lens = np.random.default_rng(0).integers(20, 65, size=len(xs)).astype(np.int32)
    _, p, _ = noisy_dyn.fit(cfg, (xs, ys, lens), epochs=1, batch_size=32, learning_rate=1e-2,
                         progress=False)  # fmt: skip
    path = noisy_dyn.save_model(tmp_path / "m", p, cfg)
    cfg2, p2 = noisy_dyn.load_model(path)
    assert cfg2 == cfg
    _same(p, p2)
