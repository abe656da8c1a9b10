"""basis_ode.fit_ensemble: every member equals its own ``fit`` run (the independent path: one
model, one seed, no member axis), through a refinement and with its own data order; resume after
an interruption equals the uninterrupted run; bad seeds and ensembles over models are refused."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import basis_ode
import trainkit
from basis_ode import data
from tests._shape_checks import library_checks_only

SEEDS, DATA_SEEDS = (3, 5), (7, 5)
N, BATCH = 64, 16  # 4 steps an epoch
KW = dict(
    epochs=2,
    batch_size=BATCH,
    learning_rate=0.05,
    refine_at=(1,),
    return_params=basis_ode.LastEpoch(),
    progress=False,
)


@pytest.fixture(scope="module")
def digits():
    s = data.load_digits(seed=0)
    return (s.train[0][:N], s.train[1][:N]), (s.validation[0][:32], s.validation[1][:32])


@pytest.fixture(scope="module")
def model():
    return basis_ode.ConvODENet(width=4, basis=basis_ode.PiecewiseConstant(1), n_steps=1)


@pytest.fixture(scope="module")
def ensemble(digits, model):
    train, val = digits
    return basis_ode.fit_ensemble(model, train, seeds=SEEDS, data_seeds=DATA_SEEDS,
                                  validation=val, **KW)  # fmt: skip


def _pairs(a, b):
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in la] == [p for p, _ in lb]
    keystr = jax.tree_util.keystr
    return [(keystr(p), np.asarray(x), np.asarray(y)) for (p, x), (_, y) in zip(la, lb)]


def test_every_member_equals_its_own_fit(digits, model, ensemble):
    train, val = digits
    refined, variables, history = ensemble
    assert history["K"] == [1, 2] and refined.n_steps == 2
    assert history["global_step"] == 2 * (N // BATCH)
    for j, (seed, data_seed) in enumerate(zip(SEEDS, DATA_SEEDS)):
        _, alone, h = basis_ode.fit(
            model, train, seed=seed, data_seed=data_seed, validation=val, **KW
        )
        member = jax.tree.map(lambda a, j=j: a[j], variables)
        for path, x, y in _pairs(member, alone):
            assert x.shape == y.shape and x.dtype == y.dtype, path
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=path)
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose([e[j] for e in history[name]], h[name], rtol=1e-5,
                                       atol=1e-6, err_msg=name)  # fmt: skip
        for name in ("K", "n_steps", "learning_rate"):
            assert history[name] == h[name], name
        assert history["best_epoch"][j] == h["best_epoch"]
    # the members are different runs (not one run copied)
    leaf = jax.tree.leaves(variables["params"])[0]
    assert not np.allclose(np.asarray(leaf[0]), np.asarray(leaf[1]))


def test_best_epoch_of_each_member_equals_its_own_fit(digits, model, ensemble):
    """Without refinement, ``return_params="best"`` gives each member the variables of its own
    best validation epoch, as ``fit`` does (the K = 1 programs of the first test are reused)."""
    train, val = digits
    kw = {**KW, "refine_at": (), "return_params": basis_ode.BestValidation()}
    _, variables, history = basis_ode.fit_ensemble(model, train, seeds=SEEDS, validation=val, **kw)
    for j, seed in enumerate(SEEDS):
        _, alone, h = basis_ode.fit(model, train, seed=seed, validation=val, **kw)
        assert history["best_epoch"][j] == h["best_epoch"]
        member = jax.tree.map(lambda a, j=j: a[j], variables)
        for path, x, y in _pairs(member, alone):
            assert x.shape == y.shape, path
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=path)


def test_resume_after_interruption_is_identical(digits, model, ensemble, tmp_path, caplog):
    train, val = digits
    _, reference, h_ref = ensemble
    kw = dict(seeds=SEEDS, data_seeds=DATA_SEEDS, validation=val, checkpoint_dir=tmp_path,
              checkpoint_every=1, **KW)  # fmt: skip
    # stopped mid-epoch 2, after the refinement at its start (checkpoints after every step)
    _, _, part = basis_ode.fit_ensemble(model, train, stop_after_steps=6, **kw)
    assert part["interrupted"] and part["global_step"] == 6
    with caplog.at_level(logging.INFO, logger="trainkit"):
        _, resumed, history = basis_ode.fit_ensemble(model, train, **kw)
    assert "resumed from step 6" in caplog.text
    for path, x, y in _pairs(resumed, reference):
        np.testing.assert_array_equal(x, y, err_msg=path)
    assert history["train_loss"] == h_ref["train_loss"] and history["K"] == [1, 2]
    with pytest.raises(basis_ode.CheckpointMismatchError):
        basis_ode.fit_ensemble(model, train, **{**kw, "seeds": (3, 6)})


def _poison(key, inputs):
    """An augmentation that turns a batch holding a marked image (pixel 1e4) into NaN."""
    return jnp.where(jnp.max(inputs) > 1e3, jnp.nan, inputs)


def test_a_diverging_member_is_frozen_and_the_other_trains_on(digits, model):
    """One image is marked so that it poisons member 0's batch at a known step and lies in the
    dropped tail of member 1's order (60 examples, 3 batches of 16): ``on_divergence="freeze"``
    keeps member 0 at the variables its own ``fit`` stops with, member 1 equals its own run;
    the default raises, naming member 0."""
    (xs, ys), _ = digits
    xs, ys = xs[:60].copy(), ys[:60]
    first, second = (data.epoch_order(60, seed=s, epoch=0) for s in SEEDS)
    marked = next(int(i) for i in second[48:] if i in first[:48])
    step = int(np.flatnonzero(first == marked)[0]) // BATCH + 1
    xs[marked, 0, 0, 0] = 1e4  # finite: the input checks let it through
    kw = dict(epochs=1, batch_size=BATCH, learning_rate=0.05, augment=_poison, progress=False)
    with pytest.raises(basis_ode.TrainingDiverged, match=r"members \[0\]"):
        basis_ode.fit_ensemble(model, (xs, ys), seeds=SEEDS, **kw)
    freeze = trainkit.FreezeDiverged()
    _, variables, history = basis_ode.fit_ensemble(model, (xs, ys), seeds=SEEDS,
                                                on_divergence=freeze, **kw)  # fmt: skip
    assert history["diverged_step"] == [step, None]
    with pytest.raises(basis_ode.TrainingDiverged) as info:
        basis_ode.fit(model, (xs, ys), seed=SEEDS[0], **kw)
    _, alone, _ = basis_ode.fit(model, (xs, ys), seed=SEEDS[1], **kw)
    for j, reference in enumerate((info.value.variables, alone)):
        member = jax.tree.map(lambda a, j=j: a[j], variables)
        for path, x, y in _pairs(member, reference):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=f"member {j} {path}")


def test_bad_seeds_and_ensembles_of_models_are_refused(digits, model):
    """The library's own one-line errors (read with the shape checks off, as users run)."""
    train, val = digits
    kw = dict(epochs=1, batch_size=BATCH, learning_rate=0.05, progress=False)
    cases = [
        (ValueError, "repeated", dict(seeds=[1, 1])),
        (ValueError, "non-empty", dict(seeds=[])),
        (ValueError, "non-empty", dict(seeds=[True, 2])),
        (TypeError, "sequence of ints", dict(seeds=4)),
        (ValueError, "one value per seed", dict(seeds=[1, 2], data_seeds=[1])),
        (ValueError, "on_divergence", dict(seeds=[1], on_divergence="skip")),
        (TypeError, "seed", dict(seeds=[1], seed=0)),  # seeds replace fit's seed
        (ValueError, r"LastEpoch\(\)", dict(seeds=[1], refine_at=(0,), validation=val)),
    ]
    with library_checks_only():
        for error, message, given in cases:
            with pytest.raises(error, match=message):
                basis_ode.fit_ensemble(model, train, **given, **kw)
        with pytest.raises(TypeError, match="once per model"):
            basis_ode.fit_ensemble([model, model.clone(width=8)], train, seeds=[1], **kw)
