"""Tests of basis_ode's trainer: loss decrease, refinement, checkpoints and resume, NaN detection,
data parallelism.

Facts are checked against independent references: the chance-level loss log(10), the numpy
duplication of nodes that piecewise-constant refinement must produce, an uninterrupted run (for
resume, in process and after SIGKILL), the data order computed here from (seed, epoch) (for the
step at which a NaN appears), and a one-device run (for four devices).
"""

import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from basis_ode import EULER, Basis, ButcherTableau, ODEBlock, PiecewiseConstant, data
from basis_ode._train import (
    CheckpointMismatchError,
    NonFiniteError,
    accuracy,
    block_K,
    fit,
    list_checkpoints,
    load_latest_checkpoint,
)
from tests._shape_checks import library_checks_only
from trainkit import TrainingDiverged

N_TRAIN, BATCH = 240, 16  # 15 steps per epoch
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Unit(nn.Module):
    """dh/dt = Dense(tanh(BN(h))): a unit with parameters and batch statistics."""

    param_dtype: object = jnp.float32

    @nn.compact
    def __call__(self, h, *, train=False):
        bn = nn.BatchNorm(use_running_average=not train, momentum=0.9, param_dtype=self.param_dtype)
        return nn.Dense(h.shape[-1], param_dtype=self.param_dtype)(jnp.tanh(bn(h)))


class MLPODENet(nn.Module):
    """A small ODE-Net on flattened images (compiles in seconds; the trainer is model-generic).

    The CLI test trains the ConvODENet itself.
    """

    width: int = 16
    basis: Basis = PiecewiseConstant(1)
    n_steps: int | None = None
    method: ButcherTableau = EULER
    param_dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x, *, train=False, n_steps=None, scheme=None):
        h = nn.Dense(self.width, param_dtype=self.param_dtype)(x.reshape(x.shape[0], -1))
        block = ODEBlock(
            unit=functools.partial(_Unit, param_dtype=self.param_dtype),
            basis=self.basis,
            n_steps=self.n_steps,
            method=self.method,
            name="block",
        )
        h = block(h, train=train, n_steps=n_steps, scheme=scheme)
        return nn.Dense(10, param_dtype=self.param_dtype)(h)


SPE = N_TRAIN // BATCH
CONFIG = dict(batch_size=BATCH, learning_rate=0.05, seed=0, progress=False)


@pytest.fixture(scope="module")
def digits():
    splits = data.load_digits(seed=0)
    xs, ys = splits.train
    return (xs[:N_TRAIN], ys[:N_TRAIN]), (splits.validation[0][:100], splits.validation[1][:100])


@pytest.fixture(scope="module")
def model():
    return MLPODENet(basis=PiecewiseConstant(1), n_steps=1)


@pytest.fixture(scope="module")
def refined_run(digits, model):
    """Uninterrupted reference: 2 epochs, K = n_steps = 1 -> 2 at epoch 1."""
    train, val = digits
    return fit(model, train, epochs=2, refine_at=(1,), validation=val, **CONFIG)


def _coeff_leaves(variables):
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        if any(getattr(p, "key", None) == "basis_coeffs" for p in path):
            out[jax.tree_util.keystr(path)] = np.asarray(leaf)
    return out


def _assert_trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        assert np.array_equal(np.asarray(x), np.asarray(y)), jax.tree_util.keystr(path)


def test_fit_reduces_loss_on_digits(digits, model, refined_run):
    _, _, history = refined_run
    # chance level of a 10-class cross-entropy is log(10) = 2.30
    assert history["train_loss"][0] < math.log(10)
    assert history["train_loss"][-1] < 0.85 * history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.3  # chance is 0.1
    assert all(np.isfinite(history["train_loss"]))
    assert history["K"] == [1, 2] and history["n_steps"] == [1, 2]
    assert history["epoch"] == [1, 2] and history["step"] == [SPE, 2 * SPE]
    assert history["global_step"] == 2 * SPE


def test_refinement_preserves_function_at_switch(digits, model, refined_run):
    train, val = digits
    _, before, h_before = fit(model, train, epochs=1, **CONFIG)
    # interrupting right after the refinement at the start of epoch 1 gives the switch state
    refined, after, h_after = fit(
        model, train, epochs=2, refine_at=(1,), stop_after_steps=SPE, **CONFIG
    )
    assert h_after["interrupted"] and block_K(before) == 1 and block_K(after) == 2
    assert refined.n_steps == 2 and refined.basis == PiecewiseConstant(2)
    assert model.n_steps == 1 and model.basis == PiecewiseConstant(1)  # the input is unchanged
    # piecewise-constant refinement duplicates every node (params and statistics): numpy reference
    cb, ca = _coeff_leaves(before), _coeff_leaves(after)
    assert cb.keys() == ca.keys() and len(cb) > 0
    for k in cb:
        np.testing.assert_array_equal(ca[k], np.repeat(cb[k], 2, axis=0))
    # theta(t) is unchanged, so eval-mode outputs agree at any solver setting
    x = val[0][:32]
    for n in (1, 2, 3):
        out_b = model.apply(before, x, train=False, n_steps=n)
        out_a = refined.apply(after, x, train=False, n_steps=n)
        np.testing.assert_allclose(np.asarray(out_a), np.asarray(out_b), rtol=1e-5, atol=1e-6)
    # and training continues from there (the uninterrupted run passes through the same state)
    final_model, final, history = refined_run
    assert history["train_loss"][1] < history["train_loss"][0]
    assert accuracy(final_model, final, *val) > 0.3


def test_resume_is_bit_identical_and_mismatch_refused(digits, model, refined_run, tmp_path, caplog):
    train, val = digits
    kw = dict(epochs=2, refine_at=(1,), validation=val, checkpoint_dir=tmp_path, keep=2, **CONFIG)
    # interrupted mid-epoch 1 (after the refinement), 2 steps past the last checkpoint
    _, _, h1 = fit(model, train, checkpoint_every=4, stop_after_steps=SPE + 3, **kw)
    assert h1["interrupted"] and h1["global_step"] == SPE + 3
    assert len(list_checkpoints(tmp_path)) == 2  # keep=2
    assert load_latest_checkpoint(tmp_path)["meta"]["step"] == 16
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, resumed, h2 = fit(model, train, checkpoint_every=4, **kw)
    assert "resumed from step 16" in caplog.text
    _, reference, h_ref = refined_run
    _assert_trees_equal(resumed, reference)
    assert h2["train_loss"] == h_ref["train_loss"]
    assert h2["val_accuracy"] == h_ref["val_accuracy"]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and log[1]["K"] == 2
    with pytest.raises(CheckpointMismatchError, match="learning_rate: checkpoint 0.05, now 0.1"):
        fit(model, train, checkpoint_every=4, **{**kw, "learning_rate": 0.1})
    # other training data is refused too, with both hashes
    other = (train[0][::-1].copy(), train[1][::-1].copy())
    with pytest.raises(CheckpointMismatchError, match="data: checkpoint '[0-9a-f]{64}', now"):
        fit(model, other, checkpoint_every=4, **kw)
    # a finished run is returned as it is, and says so
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, again, _ = fit(model, train, checkpoint_every=4, **kw)
    assert "already complete" in caplog.text
    _assert_trees_equal(again, reference)


def test_unfinalized_step_directory_is_ignored_on_resume(
    digits, model, refined_run, tmp_path, caplog
):
    # A kill during an orbax save leaves ``ckpt_<step>.orbax-checkpoint-tmp-<time>``; resume must
    # use the newest finalized step instead, and still end bit-identical to the uninterrupted run.
    train, _ = digits
    kw = dict(epochs=2, refine_at=(1,), checkpoint_dir=tmp_path, checkpoint_every=4, **CONFIG)
    fit(model, train, stop_after_steps=10, **kw)
    assert [int(p.name[5:]) for p in list_checkpoints(tmp_path)] == [4, 8]
    fake = tmp_path / "ckpt_0000000009.orbax-checkpoint-tmp-1700000000"
    (fake / "state").mkdir(parents=True)
    (fake / "state" / "manifest.ocdbt").write_bytes(b"\x00half written")
    (fake / "_CHECKPOINT_METADATA").write_text("{not json")
    assert [int(p.name[5:]) for p in list_checkpoints(tmp_path)] == [4, 8]
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, resumed, history = fit(model, train, **kw)
    assert "resumed from step 8" in caplog.text  # the finalized checkpoint, not step 9
    assert history["global_step"] == 2 * SPE
    _assert_trees_equal(resumed, refined_run.params)
    assert not fake.exists()  # orbax removed the unfinalized directory


def _poison(key, inputs):
    """An augmentation that turns a batch holding a marked image (pixel 1e4) into NaN."""
    return jnp.where(jnp.max(inputs) > 1e3, jnp.nan, inputs)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(digits, model, tmp_path):
    (xs, ys), _ = digits
    xs = xs.copy()
    # the data order is epoch_order(N, seed, epoch): batch 5 (0-based) is the 6th global step
    order = data.epoch_order(N_TRAIN, seed=0, epoch=0)
    xs[order[5 * BATCH + 3], 0, 0, 0] = 1e4  # finite, so the input check lets it through
    assert NonFiniteError is TrainingDiverged
    with pytest.raises(TrainingDiverged, match="learning_rate") as info:
        fit(model, (xs, ys), epochs=1, checkpoint_dir=tmp_path, checkpoint_every=1,
            augment=_poison, **CONFIG)  # fmt: skip
    assert info.value.step == 6 and info.value.epoch == 1
    assert "global step 6" in str(info.value)
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(info.value.variables))
    ckpt = load_latest_checkpoint(tmp_path)
    assert ckpt["meta"]["step"] == 5  # written after step 5, the last good one
    assert str(ckpt["path"]) in str(info.value)
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(ckpt["state"]))


def test_bad_arguments_raise_clear_errors(digits, model):
    train, _ = digits
    with (
        library_checks_only(),
        pytest.raises(TypeError, match=r"recipe_by_name\('adagrad', \.\.\.\)"),
    ):
        fit(model, train, epochs=1, recipe="adagrad", **CONFIG)
    with pytest.raises(ValueError, match="larger than the training set"):
        fit(model, (train[0][:8], train[1][:8]), epochs=1, **CONFIG)
    with pytest.raises(TypeError, match="tuple"):
        fit(model, train[0], epochs=1, **CONFIG)
    # inputs are checked before anything is traced
    nan = train[0].copy()
    nan[3, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        fit(model, (nan, train[1]), epochs=1, **CONFIG)
    with pytest.raises(ValueError, match=r"num_classes=10\), got range \[0, 12\]"):
        fit(model, (train[0], np.where(train[1] == 9, 12, train[1])), epochs=1, **CONFIG)
    with pytest.raises(ValueError, match="channels-first"):
        fit(model, (train[0].transpose(0, 3, 1, 2), train[1]), epochs=1, **CONFIG)
    with pytest.raises(TypeError, match="floating"):
        fit(model, ((train[0] * 16).astype(np.int32), train[1]), epochs=1, **CONFIG)
    with pytest.raises(ValueError, match="learning_rate"):
        fit(model, train, epochs=1, **{**CONFIG, "learning_rate": -0.1})


_CHILD = textwrap.dedent(
    """
    import sys, time
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from basis_ode import data
    from basis_ode._train import fit
    from trainkit import _checkpoint
    save = _checkpoint.CheckpointStore.save
    def slow_save(*a, **k):  # widen the window between checkpoints so the kill lands mid-epoch
        time.sleep(0.05)
        return save(*a, **k)
    _checkpoint.CheckpointStore.save = slow_save
    from tests.basis_ode.test_train import MLPODENet
    splits = data.load_digits(seed=0)
    xs, ys = splits.train
    model = MLPODENet(n_steps=1)  # K = 1 at init
    out = sys.argv[1]
    _, variables, history = fit(
        model, (xs[:{n}], ys[:{n}]), epochs=2, refine_at=(1,), batch_size={b},
        learning_rate=0.05, seed=0, progress=False, checkpoint_dir=out + "/ckpt",
        checkpoint_every=1,
    )
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(variables))
    np.savez(out + "/final.npz", **{{jax.tree_util.keystr(p): x for p, x in leaves}})
    """
).format(n=N_TRAIN, b=BATCH)


def test_sigkill_mid_epoch_then_restart_is_bit_identical(refined_run, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    cmd = [sys.executable, str(script), str(tmp_path)]
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": ROOT,
        # the restarted child reuses the first child's compilations (speed only)
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        ckpts = list_checkpoints(tmp_path / "ckpt")
        if ckpts and int(ckpts[-1].name[5:15]) >= 4:  # mid-epoch 0
            proc.send_signal(signal.SIGKILL)
            killed_at = int(ckpts[-1].name[5:15])
            break
        time.sleep(0.02)
    proc.wait()
    assert killed_at is not None and killed_at < SPE, proc.stdout.read().decode()[-2000:]
    assert not (tmp_path / "final.npz").exists()
    latest = load_latest_checkpoint(tmp_path / "ckpt")["meta"]
    assert 4 <= latest["step"] < SPE and latest["position"]["batch"] == latest["step"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    final = dict(np.load(tmp_path / "final.npz"))
    reference = jax.tree_util.tree_leaves_with_path(jax.device_get(refined_run.params))
    assert sorted(final) == sorted(jax.tree_util.keystr(p) for p, _ in reference)
    for path, x in reference:
        assert np.array_equal(final[jax.tree_util.keystr(path)], np.asarray(x)), path


_DEVICES = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import Mesh
    from basis_ode import data
    from basis_ode._train import fit
    from basis_ode import PiecewiseConstant
    from tests.basis_ode.test_train import MLPODENet
    assert len(jax.devices()) == 4, jax.devices()
    splits = data.load_digits(seed=0)
    xs, ys = splits.train
    train = (xs[:64].astype(np.float64), ys[:64])
    model = MLPODENet(basis=PiecewiseConstant(2), n_steps=2, param_dtype=jnp.float64)
    kw = dict(epochs=1, batch_size=16, learning_rate=0.05, seed=0, progress=False)
    _, v4, h4 = fit(model, train, mesh=Mesh(np.array(jax.devices()), ("batch",)), **kw)
    _, v1, h1 = fit(model, train, mesh=Mesh(np.array(jax.devices()[:1]), ("batch",)), **kw)
    pairs = zip(jax.tree.leaves(v4), jax.tree.leaves(v1))
    diff = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    scale = max(float(np.max(np.abs(b))) for b in jax.tree.leaves(v1))
    try:
        fit(model, train, **{**kw, "batch_size": 6})
        err = ""
    except ValueError as e:
        err = str(e)
    print(json.dumps({"diff": diff, "scale": scale, "loss4": h4["train_loss"],
                      "loss1": h1["train_loss"], "err": err}))
    """
)


def test_four_devices_equal_one_device(tmp_path):
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    }
    done = subprocess.run(
        [sys.executable, "-c", _DEVICES], env=env, cwd=ROOT, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert result["diff"] <= 1e-10 * max(result["scale"], 1.0)
    np.testing.assert_allclose(result["loss4"], result["loss1"], rtol=1e-12)
    assert "multiple of the 4 devices" in result["err"]
