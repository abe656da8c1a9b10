"""Training recipes as objects: their updates against float64 NumPy references, their names at
the edge, runs checkpointed with the former recipe strings resuming, and custom recipes."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import basis_ode as bo
from basis_ode import CheckpointMismatchError
from tests._shape_checks import library_checks_only
from trainkit import load_latest_checkpoint

from ._rounding import rounding_only

GOLDEN = Path(__file__).parent / "golden"


def _make_runs_v1():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_runs_v1", GOLDEN / "make_runs_v1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps(recipe, lr0, spe, grads, w0):
    """Run the recipe's optimizer as the training step does: lr set from the schedule."""
    opt, schedule = recipe.optimizer(lr0), recipe.schedule(lr0, spe)
    w, state, out = jnp.asarray(w0, jnp.float32), None, []
    state = opt.init(w)
    for s, g in enumerate(grads):
        state = bo.set_learning_rate(state, schedule(s))
        updates, state = opt.update(jnp.asarray(g, jnp.float32), state, w)
        w = optax.apply_updates(w, updates)
        out.append(np.asarray(w, np.float64))
    return np.stack(out)


def test_sgd_recipe_is_heavy_ball_with_l2_decay_and_step_drops():
    rng = np.random.default_rng(0)
    grads, w0 = rng.standard_normal((9, 5)), rng.standard_normal(5)
    recipe = bo.SGDRecipe(momentum=0.8, weight_decay=1e-2, lr_drops=(1, 2), lr_factor=0.5)
    got = _steps(recipe, 0.1, 3, grads, w0)
    w, m, want = w0.copy(), np.zeros(5), []
    for s, g in enumerate(grads):
        lr = 0.1 * 0.5 ** sum(d * 3 <= s for d in (1, 2))
        m = 0.8 * m + (g + 1e-2 * w)
        w = w - lr * m
        want.append(w.copy())
    np.testing.assert_allclose(got, np.stack(want), rtol=2e-6, atol=1e-6)


def test_adam_rsqrt_recipe_is_adamw_with_warmup_and_inverse_sqrt_decay():
    rng = np.random.default_rng(1)
    grads, w0 = rng.standard_normal((12, 4)), rng.standard_normal(4)
    recipe = bo.AdamRsqrtRecipe(warmup_steps=4, weight_decay=0.1)
    got = _steps(recipe, 0.01, 5, grads, w0)
    b1, b2, eps = 0.9, 0.98, 1e-9
    w, mu, nu, want = w0.copy(), np.zeros(4), np.zeros(4), []
    for s, g in enumerate(grads):
        lr = 0.01 * min((s + 1) / 4, np.sqrt(4 / (s + 1)))
        mu, nu = b1 * mu + (1 - b1) * g, b2 * nu + (1 - b2) * g**2
        m_hat, v_hat = mu / (1 - b1 ** (s + 1)), nu / (1 - b2 ** (s + 1))
        w = w - lr * (m_hat / (np.sqrt(v_hat) + eps) + 0.1 * w)
        want.append(w.copy())
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-5, atol=1e-6)


def test_recipes_by_name_are_the_objects_and_bad_settings_are_refused():
    assert bo.recipe_by_name("sgd", lr_drops=[30, 60]) == bo.SGDRecipe(lr_drops=(30, 60))
    assert bo.recipe_by_name("adam_rsqrt") == bo.AdamRsqrtRecipe()
    assert {name: cls.name for name, cls in bo.RECIPES.items()} == {
        "sgd": "sgd",
        "adam_rsqrt": "adam_rsqrt",
        "adam_step": "adam_step",
    }
    assert hash(bo.SGDRecipe(lr_drops=[2])) == hash(bo.SGDRecipe(lr_drops=(2,)))
    with pytest.raises(ValueError, match=r"unknown recipe 'adagrad'; choose one of"):
        bo.recipe_by_name("adagrad")
    with pytest.raises(TypeError, match=r"has no setting\(s\) \['warmup_steps'\]"):
        bo.recipe_by_name("sgd", warmup_steps=10)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\)"):
        bo.SGDRecipe(momentum=1.0)
    with pytest.raises(ValueError, match="lr_factor must be a finite number > 0"):
        bo.SGDRecipe(lr_factor=0.0)
    with library_checks_only(), pytest.raises(ValueError, match="whole epochs"):
        bo.SGDRecipe(lr_drops=(1.5,))
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        bo.AdamRsqrtRecipe(warmup_steps=0)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        bo.AdamRsqrtRecipe(weight_decay=float("nan"))


def _copy_run(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(GOLDEN / "runs_v1" / name, dst)
    return dst


@pytest.mark.parametrize("name", ["sgd", "adam_rsqrt"])
def test_runs_checkpointed_with_recipe_strings_resume_with_recipe_objects(name, tmp_path, caplog):
    """Folders written by ``fit(..., recipe="sgd", lr_drops=..., momentum=0.8)`` (and the
    adam_rsqrt run) before recipes were objects: their fingerprints match today's objects, and
    the resumed runs end where the uninterrupted runs of that code ended."""
    make = _make_runs_v1()
    finished = np.load(GOLDEN / "runs_v1" / "finished.npz")
    new = {
        "sgd": bo.SGDRecipe(lr_drops=(2,), momentum=0.8),
        "adam_rsqrt": bo.AdamRsqrtRecipe(warmup_steps=3),
    }
    ((_, model, data, options, _),) = [r for r in make.runs() if r[0] == name]
    folder = _copy_run(name, tmp_path)
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, variables, hist = bo.fit(
            model, data, checkpoint_dir=folder, keep=1, progress=False, recipe=new[name], **options
        )
    assert "resumed from step 6" in caplog.text
    got = make.flat(variables, f"{name}|")
    assert set(got) == {k for k in finished.files if k.startswith(f"{name}|[")}
    for key, value in got.items():
        if rounding_only(key):  # exactly-zero gradient: rounding noise (_rounding.py)
            continue
        np.testing.assert_allclose(value, finished[key], rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(hist["train_loss"], finished[f"{name}|train_loss"], rtol=1e-5)
    np.testing.assert_allclose(hist["learning_rate"], finished[f"{name}|learning_rate"], rtol=1e-6)


def test_an_old_run_resumed_with_other_recipe_settings_is_refused_naming_them(tmp_path):
    make = _make_runs_v1()
    ((_, model, data, options, _),) = [r for r in make.runs() if r[0] == "sgd"]
    folder = _copy_run("sgd", tmp_path)
    with pytest.raises(CheckpointMismatchError, match="momentum: checkpoint 0.8, now 0.9"):
        bo.fit(model, data, checkpoint_dir=folder, progress=False,
               recipe=bo.SGDRecipe(lr_drops=(2,)), **options)  # fmt: skip
    with pytest.raises(CheckpointMismatchError, match="recipe: checkpoint 'sgd', now 'adam_rsqrt'"):
        bo.fit(model, data, checkpoint_dir=folder, progress=False,
               recipe=bo.AdamRsqrtRecipe(), **options)  # fmt: skip


class CosineSGD(bo.Recipe):
    """A custom recipe: plain SGD with ``lr(s) = lr0 (1 + cos(pi s / T)) / 2``."""

    name = "cosine_sgd"

    def __init__(self, total_steps: int):
        self.total_steps = total_steps

    def optimizer(self, learning_rate):
        return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate)

    def schedule(self, learning_rate, steps_per_epoch):
        return optax.cosine_decay_schedule(learning_rate, self.total_steps)


def test_a_custom_recipe_trains_and_is_recorded_by_class_and_settings(tmp_path):
    """Its settings are its public attributes (``Recipe.settings``), so other settings are
    refused on resume."""
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    ys = (xs.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    model = bo.ConvODENet(num_classes=2, width=2, basis=bo.PiecewiseConstant(1))
    kw = dict(epochs=2, batch_size=8, learning_rate=0.05, seed=0, progress=False)
    _, _, hist = bo.fit(model, (xs, ys), recipe=CosineSGD(4), checkpoint_dir=tmp_path, **kw)
    # lr recorded after the last step of each epoch: the cosine at s = 1 and s = 3 of T = 4
    want = [0.05 * (1 + np.cos(np.pi * s / 4)) / 2 for s in (1, 3)]
    np.testing.assert_allclose(hist["learning_rate"], want, rtol=1e-6)
    fingerprint = load_latest_checkpoint(tmp_path)["meta"]["fingerprint"]["optimizer"]
    assert fingerprint["recipe"] == "cosine_sgd"
    assert fingerprint["recipe_class"].endswith("test_recipes.CosineSGD")
    assert fingerprint["total_steps"] == 4
    with pytest.raises(CheckpointMismatchError, match="total_steps: checkpoint 4, now 8"):
        bo.fit(model, (xs, ys), recipe=CosineSGD(8), checkpoint_dir=tmp_path, **kw)


def test_fit_refuses_a_name_or_another_object_as_recipe():
    model = bo.ConvODENet(num_classes=2, width=2, basis=bo.PiecewiseConstant(1))
    xs, ys = np.zeros((8, 8, 8, 1), np.float32), np.arange(8) % 2
    # the library's own messages (the test run's type checks would refuse these first)
    with library_checks_only(), pytest.raises(TypeError, match=r"recipe_by_name\('sgd', \.\.\.\)"):
        bo.fit(model, (xs, ys), learning_rate=0.1, recipe="sgd", epochs=1, batch_size=4)
    with library_checks_only(), pytest.raises(TypeError, match="recipe must be a basis_ode.Recipe"):
        bo.fit(model, (xs, ys), learning_rate=0.1, recipe=optax.sgd(0.1), epochs=1, batch_size=4)
    with pytest.raises(ValueError, match=r"lr_drops \(--lr-drops\) epochs \[3\]"):
        bo.fit(model, (xs, ys), learning_rate=0.1, recipe=bo.SGDRecipe(lr_drops=(3,)), epochs=2,
               batch_size=4)  # fmt: skip


def test_recipes_are_values():
    """Equal settings give equal, equally hashed objects (the jitted step is cached per recipe)
    and the same schedule."""
    a, b = bo.SGDRecipe(lr_drops=(1,)), bo.recipe_by_name("sgd", lr_drops=(1,))
    assert a == b and hash(a) == hash(b) and a is not b
    sa, sb = a.schedule(0.1, 4), b.schedule(0.1, 4)
    steps = jnp.arange(10)
    np.testing.assert_array_equal(jax.vmap(sa)(steps), jax.vmap(sb)(steps))
