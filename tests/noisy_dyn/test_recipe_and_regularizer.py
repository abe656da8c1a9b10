"""The training variants of ``noisy_dyn.fit`` as objects: the recipe (``AdamStepDecay`` by
default, any ``trainkit.Recipe``) and the regularizer (``NoiseInjection``,
``ExplicitRegularizer(lam, trace)``). The former keywords (``decay_at``, ``decay_factor``,
``lam``, ``regularizer="explicit"``) map onto them with a DeprecationWarning and the same
numbers, and the run fingerprint keeps the keys runs were recorded with."""

import math

import jax
import numpy as np
import pytest

import noisy_dyn
import trainkit
from trainkit import load_latest_checkpoint

from .test_train import _same


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(4)
    xs = rng.normal(size=(32, 8, 1))
    ys = rng.integers(0, 3, size=32)
    cfg = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=3, hidden_size=4, dt=0.5)
    return cfg, xs, ys


@pytest.mark.parametrize(
    ("decay_at", "epochs", "steps_per_epoch"),
    [(0.9, 100, 3), (0.5, 3, 6), (0.9, 2, 4), (0.0, 4, 2)],
)
def test_step_decay_schedule_is_the_closed_form_at_every_step(decay_at, epochs, steps_per_epoch):
    """``lr(s) = lr0`` before ``ceil(decay_at E) * steps_per_epoch``, ``lr0 * factor`` from there
    (written here from the definition, in Python floats), on device and on the host."""
    recipe = trainkit.AdamStepDecay(decay_at=decay_at, factor=0.3)
    boundary = math.ceil(decay_at * epochs - 1e-9) * steps_per_epoch
    schedule = recipe.run_schedule(2e-3, steps_per_epoch, epochs)
    for s in range(epochs * steps_per_epoch + 2):
        want = 2e-3 * 0.3 if s >= boundary else 2e-3
        assert float(schedule(s)) == pytest.approx(want, rel=1e-15)
        assert recipe.learning_rate_at(2e-3, steps_per_epoch, epochs, s) == want  # exactly
    with pytest.raises(TypeError, match="run_schedule"):
        recipe.schedule(2e-3, steps_per_epoch)


def test_step_decay_refuses_bad_settings_and_is_a_named_value():
    with pytest.raises(ValueError, match=r"decay_at must lie in \[0, 1\]"):
        trainkit.AdamStepDecay(decay_at=1.5)
    with pytest.raises(ValueError, match="factor must be a finite number >= 0"):
        trainkit.AdamStepDecay(factor=-0.1)
    assert trainkit.recipe_by_name("adam_step", decay_at=0.5) == trainkit.AdamStepDecay(0.5)
    assert hash(trainkit.AdamStepDecay()) == hash(noisy_dyn.AdamStepDecay(0.9, 0.1))


def test_former_keywords_warn_and_give_the_same_parameters(small):
    cfg, xs, ys = small
    kw = dict(epochs=4, batch_size=8, learning_rate=1e-2, seed=1, progress=False)
    _, new, hist = noisy_dyn.fit(cfg, (xs, ys), recipe=noisy_dyn.AdamStepDecay(0.5, 0.2), **kw)
    with pytest.warns(DeprecationWarning, match="decay_at=, decay_factor="):
        _, old, old_hist = noisy_dyn.fit(cfg, (xs, ys), decay_at=0.5, decay_factor=0.2, **kw)
    _same(new, old)
    assert hist["learning_rate"] == old_hist["learning_rate"] == [1e-2, 1e-2, 2e-3, 2e-3]
    explicit = noisy_dyn.ExplicitRegularizer(lam=0.5)
    _, new, _ = noisy_dyn.fit(cfg, (xs, ys), regularizer=explicit, **{**kw, "epochs": 1})
    with pytest.warns(DeprecationWarning, match="lam="):
        _, old, _ = noisy_dyn.fit(
            cfg, (xs, ys), regularizer="explicit", lam=0.5, **{**kw, "epochs": 1}
        )
    _same(new, old)
    with pytest.raises(TypeError, match="pass recipe only"):
        with pytest.warns(DeprecationWarning):
            noisy_dyn.fit(cfg, (xs, ys), decay_at=0.5, recipe=noisy_dyn.AdamStepDecay(), **kw)
    with pytest.raises(TypeError, match=r"ExplicitRegularizer\(lam=...\)"):
        with pytest.warns(DeprecationWarning):
            noisy_dyn.fit(cfg, (xs, ys), regularizer=explicit, lam=2.0, **kw)


def test_fingerprint_keeps_the_former_keys(small, tmp_path):
    """What a run recorded before the objects existed: ``decay_at``, ``decay_factor``,
    ``regularizer`` by name and ``lam`` (None for noise); a Hutchinson trace adds its own."""
    cfg, xs, ys = small
    kw = dict(epochs=1, batch_size=16, learning_rate=1e-2, progress=False)
    noisy_dyn.fit(cfg, (xs, ys), checkpoint_dir=tmp_path / "a", **kw)
    opt = load_latest_checkpoint(tmp_path / "a")["meta"]["fingerprint"]["optimizer"]
    assert {k: opt[k] for k in ("decay_at", "decay_factor", "regularizer", "lam")} == {
        "decay_at": 0.9, "decay_factor": 0.1, "regularizer": "noise", "lam": None}  # fmt: skip
    assert "recipe" not in opt and "trace" not in opt
    hutch = noisy_dyn.ExplicitRegularizer(lam=0.25, trace=noisy_dyn.Hutchinson(2))
    noisy_dyn.fit(cfg, (xs, ys), regularizer=hutch, checkpoint_dir=tmp_path / "b", **kw)
    opt = load_latest_checkpoint(tmp_path / "b")["meta"]["fingerprint"]["optimizer"]
    assert (opt["regularizer"], opt["lam"]) == ("explicit", 0.25)
    assert opt["trace"] == {"name": "hutchinson", "num_samples": 2}
    with pytest.raises(trainkit.CheckpointMismatchError, match="trace"):
        noisy_dyn.fit(cfg, (xs, ys), regularizer=noisy_dyn.ExplicitRegularizer(lam=0.25),
                      checkpoint_dir=tmp_path / "b", **{**kw, "epochs": 2})  # fmt: skip


def test_another_recipe_trains_a_noisy_rnn_with_its_own_schedule(small, tmp_path):
    """SGD with a drop after epoch 1 (``trainkit.SGDRecipe``, as in basis_ode): the recorded
    rates follow its schedule and its settings go into the fingerprint."""
    cfg, xs, ys = small
    sgd = trainkit.SGDRecipe(momentum=0.5, weight_decay=0.0, lr_drops=(1,), lr_factor=0.5)
    _, params, hist = noisy_dyn.fit(
        cfg, (xs, ys), recipe=sgd, epochs=2, batch_size=16, learning_rate=0.1,
        checkpoint_dir=tmp_path, progress=False,
    )  # fmt: skip
    np.testing.assert_allclose(hist["learning_rate"], [0.1, 0.05], rtol=1e-6)
    assert all(np.all(np.isfinite(v)) for v in params.values())
    opt = load_latest_checkpoint(tmp_path)["meta"]["fingerprint"]["optimizer"]
    assert opt["recipe"] == "sgd" and opt["lr_drops"] == [1] and "decay_at" not in opt


def test_regularizer_objects_refuse_what_they_cannot_train(small):
    cfg, xs, ys = small
    with pytest.raises(ValueError, match="lam"):
        noisy_dyn.ExplicitRegularizer(lam=-1.0)
    with pytest.raises(ValueError, match="cell='lipschitz'"):
        noisy_dyn.fit(noisy_dyn.preset("lstm", input_size=1, num_classes=3, hidden_size=4),
                      (xs, ys), regularizer=noisy_dyn.ExplicitRegularizer(), epochs=1,
                      batch_size=16, learning_rate=1e-2, progress=False)  # fmt: skip
    assert noisy_dyn.regularizer_by_name("noise") == noisy_dyn.NoiseInjection()
    assert noisy_dyn.regularizer_by_name("explicit", lam=2, trace="hutchinson") == (
        noisy_dyn.ExplicitRegularizer(2.0, noisy_dyn.Hutchinson(16))
    )
    with pytest.raises(ValueError, match="unknown trace"):
        noisy_dyn.trace_by_name("diagonal")


def test_hutchinson_penalty_in_training_uses_the_steps_key(small):
    """With one probe per step the penalty is random; two seeds give different parameters, the
    same seed the same ones (its probes come from the step's noise key)."""
    cfg, xs, ys = small
    reg = noisy_dyn.ExplicitRegularizer(lam=1.0, trace=noisy_dyn.Hutchinson(1))
    kw = dict(regularizer=reg, epochs=1, batch_size=16, learning_rate=1e-2, progress=False)
    init = noisy_dyn.init_params(jax.random.key(0), cfg)
    _, a, _ = noisy_dyn.fit(cfg, (xs, ys), seed=1, init=init, **kw)
    _, b, _ = noisy_dyn.fit(cfg, (xs, ys), seed=1, init=init, **kw)
    _, c, _ = noisy_dyn.fit(cfg, (xs, ys), seed=2, init=init, **kw)
    _same(a, b)
    assert not np.array_equal(a["M_W"], c["M_W"])
