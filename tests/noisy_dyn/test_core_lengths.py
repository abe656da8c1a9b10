"""Variable-length batches: a padded batch with ``lengths`` equals each row run unpadded.

The reference is the library run one row at a time on the row's unpadded sequence (no lengths,
no masks), so every masked path (the fused kernel, the plain scan, the theory scans, the attacks)
is checked against the unmasked recursion. The padding holds large values, so a path that let it
in would be far off.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import noisy_dyn
from noisy_dyn import NoisyRNNConfig
from tests._shape_checks import library_checks_only

B, T, IN, H, C = 3, 9, 2, 4, 3
LENGTHS = (9, 3, 6)


def _model(key, form):
    ref = form == "reference"
    cfg = NoisyRNNConfig(IN, H, C, dt=0.2, sigma_add=0.3, sigma_mult=0.4, noise_form=form,
                         learn_step=ref, remat=2 if ref else None)  # fmt: skip
    kp, kx = jax.random.split(key)
    params = noisy_dyn.init_params(kp, cfg)
    params["M_A"], params["M_W"] = params["M_A"] * 30.0, params["M_W"] * 30.0
    xs = jax.random.normal(kx, (B, T, IN))
    valid = np.arange(T)[None, :, None] < np.array(LENGTHS)[:, None, None]
    padded = jnp.where(valid, xs, 100.0)
    return cfg, params, padded, jnp.array(LENGTHS)


@pytest.fixture(params=["ito", "reference"])
def model(request, key):
    return _model(key, request.param)


@pytest.fixture
def reference_model(key):
    return _model(key, "reference")


def _rows(fn, padded):
    """``fn(x_row[None, :L], row)`` for every row, unpadded."""
    return [fn(padded[r : r + 1, :n], r) for r, n in enumerate(LENGTHS)]


def test_apply_final_state_trajectory_and_noise_equal_unpadded_rows(model):
    cfg, params, padded, lengths = model
    sample = noisy_dyn.random.sample_noise(jax.random.key(4), cfg, batch=B, time=T)
    # the reference model checkpoints chunks of 2 steps (time padded, masked); the unpadded
    # rows run without chunks, so no mask is involved in the reference at all
    plain = cfg.replace(remat=None)
    logits = noisy_dyn.apply(params, padded, cfg, noise=sample, lengths=lengths)
    final = noisy_dyn.final_state(params, padded, cfg, lengths=lengths)
    traj = noisy_dyn.trajectory(params, padded, cfg, noise=sample, lengths=lengths)
    for r, n in enumerate(LENGTHS):
        row = noisy_dyn.NoiseSample(*(None if a is None else a[r : r + 1, :n] for a in sample))
        want = noisy_dyn.apply(params, padded[r : r + 1, :n], plain, noise=row)
        np.testing.assert_allclose(logits[r], want[0], rtol=1e-12, atol=1e-13)
        want_h = noisy_dyn.final_state(params, padded[r : r + 1, :n], plain)
        np.testing.assert_allclose(final[r], want_h[0], rtol=1e-12, atol=1e-13)
        want_t = noisy_dyn.trajectory(params, padded[r : r + 1, :n], plain, noise=row)[0]
        np.testing.assert_allclose(traj[r, : n + 1], want_t, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(traj[r, n + 1 :], np.broadcast_to(want_t[-1], (T - n, H)),
                                   rtol=1e-12, atol=1e-13)  # fmt: skip


def test_gradients_with_lengths_equal_the_sum_over_unpadded_rows(model):
    cfg, params, padded, lengths = model
    k = jax.random.key(6)
    sample = noisy_dyn.random.sample_noise(k, cfg, batch=B, time=T)

    def loss(p, xs, noise, lengths=None):
        c = cfg if lengths is not None else cfg.replace(remat=None)  # unpadded rows: no masks
        return jnp.sum(jnp.sin(noisy_dyn.apply(p, xs, c, noise=noise, lengths=lengths)))

    g = jax.grad(loss, argnums=(0, 1))(params, padded, sample, lengths)
    want = jax.tree_util.tree_map(jnp.zeros_like, params)
    for r, n in enumerate(LENGTHS):
        row = noisy_dyn.NoiseSample(*(None if a is None else a[r : r + 1, :n] for a in sample))
        gp, gx = jax.grad(loss, argnums=(0, 1))(params, padded[r : r + 1, :n], row)
        want = jax.tree_util.tree_map(jnp.add, want, gp)
        np.testing.assert_allclose(g[1][r, :n], gx[0], rtol=1e-10, atol=1e-13)
        assert np.all(g[1][r, n:] == 0.0)  # the padding does not enter the logits
    for a, b in zip(jax.tree_util.tree_leaves(g[0]), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_faces_and_attacks_with_lengths(reference_model):
    cfg, params, padded, lengths = reference_model
    ys = jnp.array([0, 1, 2])
    want = noisy_dyn.apply(params, padded, cfg, lengths=lengths)
    face = noisy_dyn.nn.NoisyRNN(cfg, params=params)
    np.testing.assert_allclose(face(padded, lengths=lengths), want, rtol=1e-12)
    eqx_face = noisy_dyn.nn.EqxNoisyRNN(cfg, params=params)
    np.testing.assert_allclose(eqx_face(padded[1], lengths=LENGTHS[1]), want[1], rtol=1e-12)
    valid = np.arange(T)[None, :, None] < np.array(LENGTHS)[:, None, None]
    noisy = noisy_dyn.attacks.perturb(
        padded, noisy_dyn.attacks.Gaussian(0.5), key=jax.random.key(1), lengths=lengths
    )
    adv = noisy_dyn.attacks.pgd(params, padded, ys, cfg, 0.1, steps=3, step_size=0.05,
                        norm=noisy_dyn.attacks.L2(),
                        key=jax.random.key(2), lengths=lengths)  # fmt: skip
    for out in (noisy, adv, noisy_dyn.attacks.fgsm(params, padded, ys, cfg, 0.1, lengths=lengths)):
        np.testing.assert_array_equal(np.where(valid, 0.0, out), np.where(valid, 0.0, padded))
        assert not np.allclose(np.where(valid, out, 0.0), np.where(valid, padded, 0.0))
    assert isinstance(face, nnx.Module)


def test_theory_with_lengths_equals_unpadded_rows(reference_model):
    cfg, params, padded, lengths = reference_model
    ys = jnp.array([0, 1, 2])
    reg = noisy_dyn.theory.explicit_regularizer(params, padded, ys, cfg, lengths=lengths)
    k = jax.random.key(3)
    hut = noisy_dyn.theory.explicit_regularizer(
        params, padded, ys, cfg, lengths=lengths, trace=noisy_dyn.Hutchinson(1), key=k
    )
    margin = noisy_dyn.theory.input_margin(params, padded, ys, cfg, lengths=lengths)
    for r, n in enumerate(LENGTHS):
        x, y = padded[r : r + 1, :n], ys[r : r + 1]
        single = noisy_dyn.theory.explicit_regularizer(params, x, y, cfg)[0]
        np.testing.assert_allclose(reg[r], single, rtol=1e-10)
        np.testing.assert_allclose(margin[r], noisy_dyn.theory.input_margin(params, x, y, cfg)[0],
                                   rtol=1e-10)  # fmt: skip
    assert np.all(np.isfinite(hut))


def test_lengths_validation(reference_model):
    cfg, params, padded, _ = reference_model
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 9\]"):
        noisy_dyn.apply(params, padded, cfg, lengths=jnp.array([0, 3, 4]))
    with library_checks_only():  # the library's own messages (the shape checks refuse first)
        with pytest.raises(TypeError, match="integer"):
            noisy_dyn.apply(params, padded, cfg, lengths=jnp.array([1.0, 3.0, 4.0]))
        with pytest.raises(ValueError, match=r"shape \(batch,\)"):
            noisy_dyn.trajectory(params, padded, cfg, lengths=jnp.array([3, 4]))


def test_robustness_table_reads_each_rows_own_last_state(reference_model):
    cfg, params, padded, lengths = reference_model
    ys = jnp.array([0, 1, 2])
    other = jnp.where(jnp.isclose(padded, 100.0), -7.0, padded)  # another padding value
    kinds = (noisy_dyn.attacks.Gaussian(0.0), noisy_dyn.attacks.FGSM(0.0))
    tables = [
        noisy_dyn.attacks.robustness_table(
            {"m": (cfg, params)}, (x, ys, lengths), kinds, key=jax.random.key(0), progress=False
        )  # fmt: skip
        for x in (padded, other)
    ]
    preds = [int(jnp.argmax(noisy_dyn.apply(params, padded[r : r + 1, :n], cfg)[0]))
             for r, n in enumerate(LENGTHS)]  # fmt: skip
    want = float(np.mean(np.array(preds) == np.asarray(ys)))
    for table in tables:
        assert table["clean"]["m"] == pytest.approx(want)
        assert table["kinds"]["gaussian"]["accuracy"]["m"] == [pytest.approx(want)]
        assert table["kinds"]["fgsm"]["accuracy"]["m"] == [pytest.approx(want)]
