"""Data carry their lengths: every entry point takes one ``Sequences`` and gives what the
arrays-and-lengths form gives; padded data without lengths is refused where it can be told;
``fit(regularizer=ExplicitRegularizer(...))`` trains on variable-length data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn as nd

CFG = nd.NoisyRNNConfig(input_size=2, hidden_size=6, num_classes=3, dt=0.3, sigma_add=0.05,
                        sigma_mult=0.05)  # fmt: skip
N, T = 24, 9


@pytest.fixture(scope="module")
def ragged():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, T + 1, N).astype(np.int32)
    lengths[0] = T
    xs = rng.standard_normal((N, T, 2))
    xs[np.arange(T)[None, :] >= lengths[:, None]] = 0.0  # zero-padded on the right
    ys = (np.arange(N) % 3).astype(np.int32)
    params = nd.init_params(jax.random.key(1), CFG)
    params = {k: (3.0 * v if k in ("U", "V") else v) for k, v in params.items()}
    return nd.Sequences(xs, ys, lengths), params


def _row_by_row_accuracy(params, data):
    """Each series evaluated alone, unpadded (its own length, no lengths argument)."""
    hits = []
    for x, y, n in zip(data.inputs, data.labels, data.lengths):
        logits = nd.apply(params, x[None, :n], CFG)
        hits.append(int(np.argmax(np.asarray(logits)[0]) == y))
    return float(np.mean(hits))


def test_accuracy_forms_agree_and_read_each_series_at_its_length(ragged):
    data, params = ragged
    expected = _row_by_row_accuracy(params, data)
    xs, ys, lengths = data
    assert nd.accuracy(params, data, CFG) == pytest.approx(expected, abs=1e-12)
    assert nd.accuracy(params, (xs, ys, lengths), CFG) == nd.accuracy(params, data, CFG)
    assert nd.accuracy(params, *data, CFG) == nd.accuracy(params, data, CFG)  # the README form
    assert nd.accuracy(params, xs, ys, CFG, lengths=lengths) == nd.accuracy(params, data, CFG)
    with pytest.raises(TypeError, match="lengths given twice"):
        nd.accuracy(params, data, CFG, lengths=lengths)
    with pytest.raises(TypeError, match=r"accuracy takes \(params, data, cfg\)"):
        nd.accuracy(params, xs, ys, lengths, CFG, CFG)


def test_padded_data_without_lengths_is_refused_in_one_line(ragged):
    data, params = ragged
    xs, ys, _ = data
    padded = int(np.sum(data.lengths < T))
    for call in (
        lambda: nd.accuracy(params, xs, ys, CFG),
        lambda: nd.accuracy(params, (xs, ys), CFG),
        lambda: nd.fit(CFG, (xs, ys), learning_rate=1e-2, epochs=1, batch_size=8,
                       progress=False),
        lambda: nd.attacks.robustness_table({"m": (CFG, params)}, (xs, ys),
                                            (nd.attacks.Gaussian(0.1),), key=jax.random.key(0),
                                            progress=False),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=f"{padded} of {N} rows end in all-zero steps") as e:
            call()
        assert "\n" not in str(e.value) and "lengths" in str(e.value)
    # the escape hatch the message names: those zeros are values
    full = np.full(N, T, np.int32)
    hits = np.argmax(np.asarray(nd.apply(params, xs, CFG)), -1) == ys
    assert nd.accuracy(params, xs, ys, CFG, lengths=full) == pytest.approx(hits.mean())


def test_loaders_return_sequences_that_read_as_the_old_tuples(tmp_path):
    s = nd.data.load_digits()
    assert isinstance(s.train, nd.Sequences) and s.train.lengths is None
    xs, ys = s.train
    assert xs.shape == (s.train.size, 64, 1) and ys.dtype == np.int32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 6, 2)).astype(np.float32)
    n = rng.integers(1, 7, 30)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(30) % 2, x_test=x[:8],
             y_test=np.arange(8) % 2, lengths_train=n, lengths_test=n[:8])  # fmt: skip
    ragged = nd.data.load_npz(tmp_path / "d.npz")
    assert isinstance(ragged, nd.data.SequenceSplits)
    np.testing.assert_array_equal(ragged.test.lengths, n[:8])
    assert len(ragged.test) == 3 and ragged.test[2] is ragged.test.lengths


def test_attacks_perturbations_and_theory_take_one_sequences(ragged):
    data, params = ragged
    xs, ys, lengths = data
    key = jax.random.key(2)
    pairs = [
        (nd.attacks.fgsm(params, data, CFG, 0.1).inputs,
         nd.attacks.fgsm(params, xs, ys, CFG, 0.1, lengths=lengths)),
        (nd.attacks.pgd(params, data, CFG, 0.1, steps=2, step_size=0.05, key=key).inputs,
         nd.attacks.pgd(params, xs, ys, CFG, 0.1, steps=2, step_size=0.05, key=key,
                        lengths=lengths)),
        (nd.attacks.perturb(data, nd.attacks.Gaussian(0.2), key=key).inputs,
         nd.attacks.perturb(xs, nd.attacks.Gaussian(0.2), key=key, lengths=lengths)),
        (nd.theory.explicit_regularizer(params, data, CFG),
         nd.theory.explicit_regularizer(params, xs, ys, CFG, lengths=lengths)),
        (nd.theory.input_margin(params, data, CFG),
         nd.theory.input_margin(params, xs, ys, CFG, lengths=lengths)),
        (nd.apply(params, data, CFG), nd.apply(params, xs, CFG, lengths=lengths)),
    ]  # fmt: skip
    for got, want in pairs:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    adv = nd.attacks.fgsm(params, data, CFG, 0.1)
    assert isinstance(adv, nd.Sequences) and adv.lengths is lengths
    assert not np.asarray(adv.inputs)[data.valid_steps() == 0].any()  # padding untouched
    one = data.take(slice(3, 4))
    np.testing.assert_array_equal(
        nd.theory.lyapunov_exponents(params, one, CFG),
        nd.theory.lyapunov_exponents(params, xs[3], CFG, length=int(lengths[3])),
    )


def test_explicit_regularizer_trains_on_variable_length_data(ragged):
    """The padding has no effect on explicit training (garbage in it changes nothing), and the
    loss of one step equals the per-series losses of the series evaluated alone, unpadded."""
    data, params = ragged
    kw = dict(learning_rate=1e-2, epochs=2, batch_size=8, init=params, progress=False,
              regularizer=nd.ExplicitRegularizer(lam=0.5))  # fmt: skip
    _, p1, h1 = nd.fit(CFG, data, **kw)
    garbage = np.where(data.valid_steps()[..., None], data.inputs, 7.0)
    _, p2, h2 = nd.fit(CFG, data.with_inputs(garbage), **kw)
    for k in p1:
        np.testing.assert_allclose(np.asarray(p1[k]), np.asarray(p2[k]), rtol=1e-10, atol=1e-12)
    assert np.isfinite(h1["train_loss"]).all()
    batch = data.take(slice(0, 8))
    joint = nd.theory.regularized_loss(params, batch, CFG, 0.5)
    alone = [
        nd.theory.regularized_loss(
            params, batch.inputs[i : i + 1, : batch.lengths[i]], batch.labels[i : i + 1], CFG, 0.5
        )
        for i in range(8)
    ]
    assert float(joint) == pytest.approx(float(np.mean(alone)), rel=1e-10)


def test_a_loss_far_above_chance_is_announced_once_naming_the_causes(ragged, capsys):
    data, params = ragged
    huge = {**params, "V": 1e6 * params["V"]}  # logits of 1e6: a loss of ~1e6, finite
    _, _, history = nd.fit(CFG, data, learning_rate=1e-12, epochs=2, batch_size=8, init=huge,
                        progress=False)  # fmt: skip
    assert min(history["train_loss"]) > 100 * np.log(3)
    err = capsys.readouterr().err
    assert err.count("warning: the training loss after epoch 1 is") == 1  # once, not per epoch
    assert "times the 1.1 of a chance-level guess" in err and "dt = 0.3: lower dt" in err
    big = data.with_inputs(500.0 * data.inputs)
    nd.fit(CFG, big, learning_rate=1e-12, epochs=1, batch_size=8, init=huge, progress=False)
    assert "inputs of scale" in capsys.readouterr().err  # large inputs named first
    nd.fit(CFG, data, learning_rate=1e-12, epochs=1, batch_size=8, init=params, progress=False)
    assert "training loss" not in capsys.readouterr().err


def test_the_readme_example_runs_on_variable_length_data(tmp_path):
    """README's ten lines with a split that carries lengths (it used to raise TypeError)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 7, 2)).astype(np.float32)
    n = rng.integers(2, 8, 40)
    x[np.arange(7)[None, :] >= n[:, None]] = 0
    np.savez(tmp_path / "r.npz", x_train=x, y_train=np.arange(40) % 3, x_test=x[:9],
             y_test=np.arange(9) % 3, lengths_train=n, lengths_test=n[:9])  # fmt: skip
    s = nd.data.load_npz(tmp_path / "r.npz", val_fraction=0.2)
    _, params, _ = nd.fit(CFG, s.train, learning_rate=1e-2, epochs=1, batch_size=8,
                       validation=s.validation, progress=False)  # fmt: skip
    assert 0.0 <= nd.accuracy(params, *s.test, CFG) == nd.accuracy(params, s.test, CFG) <= 1.0
    assert jnp.isfinite(nd.theory.explicit_regularizer(params, s.test.take(slice(0, 4)), CFG)).all()
