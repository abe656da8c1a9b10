"""Perturbations and attacks, checked against closed forms and float64 NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisy_dyn._perturb import deepfool_fn, fgsm_fn, perturb, pgd_fn
from noisy_dyn.attacks import (
    FGSM,
    L2,
    PGD,
    DeepFool,
    Gaussian,
    Linf,
    Multiplicative,
    SaltPepper,
    parse_norm,
    parse_perturbation,
    perturbations_from_levels,
)
from tests._shape_checks import library_checks_only

SETTINGS = settings(max_examples=8, deadline=None, derandomize=True)
_perturb = jax.jit(perturb)  # one compilation per kind and shape: the level is a traced leaf


def _linear(rng: np.random.Generator, shape: tuple[int, ...], classes: int):
    """A classifier affine in its input: logits = flat(x) @ W.T + b; float64 NumPy copies."""
    d = int(np.prod(shape))
    w = rng.normal(size=(classes, d))
    b = rng.normal(size=classes)
    fn = lambda x: x.reshape(x.shape[0], -1) @ jnp.asarray(w).T + jnp.asarray(b)  # noqa: E731
    return fn, w, b


# ------------------------------------------------------------------ random perturbations


@settings(max_examples=3, deadline=None, derandomize=True)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 3)),
    level=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_perturb_shapes_dtypes_and_bounds(shape, level, seed, dtype):
    xs = jnp.asarray(np.random.default_rng(seed).uniform(size=shape), dtype)
    key = jax.random.key(seed)
    for kind in (Gaussian, Multiplicative, SaltPepper):
        out = perturb(xs, kind(level), key=key)
        assert out.shape == xs.shape and out.dtype == xs.dtype
        assert bool(jnp.all(jnp.isfinite(out)))
    sp = np.asarray(perturb(xs, SaltPepper(level, low=-1.0, high=2.0), key=key))
    changed = sp != np.asarray(xs)
    # Every changed entry is exactly low or high; unchanged entries are the inputs.
    assert np.all(np.isin(sp[changed], [-1.0, 2.0]))
    assert sp.min() >= -1.0 and sp.max() <= 2.0
    # Level 0 is the identity for every kind.
    for kind in (Gaussian, Multiplicative, SaltPepper):
        np.testing.assert_array_equal(perturb(xs, kind(0.0), key=key), xs)


@SETTINGS
@given(level=st.floats(0.02, 0.98), seed=st.integers(0, 2**16))
def test_salt_pepper_fraction_matches_level(level, seed):
    n = 40_000
    xs = jnp.full((n,), 0.5)
    out = np.asarray(_perturb(xs, SaltPepper(level), key=jax.random.key(seed)))
    frac = np.mean(out != 0.5)
    # Binomial(n, level): 5 standard deviations.
    assert abs(frac - level) < 5 * np.sqrt(level * (1 - level) / n)
    salt = np.mean(out[out != 0.5] == 1.0)
    m = np.sum(out != 0.5)
    assert abs(salt - 0.5) < 5 * np.sqrt(0.25 / m)


@SETTINGS
@given(level=st.floats(0.05, 2.0), seed=st.integers(0, 2**16), x0=st.floats(-2, 2))
def test_gaussian_and_multiplicative_moments(level, seed, x0):
    n = 40_000
    xs = jnp.full((n,), x0)
    key = jax.random.key(seed)
    g = np.asarray(_perturb(xs, Gaussian(level), key=key))
    # Mean x0 and std level; standard errors level/sqrt(n) and ~level/sqrt(2n).
    assert abs(g.mean() - x0) < 5 * level / np.sqrt(n)
    assert abs(g.std() - level) < 5 * level / np.sqrt(2 * n)
    m = np.asarray(_perturb(xs, Multiplicative(level), key=key))
    # x (1 + level n): mean x0, std |x0| level.
    assert abs(m.mean() - x0) < 5 * abs(x0) * level / np.sqrt(n) + 1e-12
    assert abs(m.std() - abs(x0) * level) < 5 * abs(x0) * level / np.sqrt(2 * n) + 1e-12


def test_perturb_under_jit_and_vmap_over_levels(key):
    xs = jnp.linspace(0, 1, 12).reshape(3, 4)
    levels = jnp.array([0.0, 0.1, 0.5])
    out = jax.jit(jax.vmap(lambda lv: perturb(xs, Gaussian(lv), key=key)))(levels)
    np.testing.assert_array_equal(out[0], xs)
    # The same draw scaled: (out_l - xs) / l is the same normal sample for every l > 0.
    np.testing.assert_allclose((out[1] - xs) / 0.1, (out[2] - xs) / 0.5, rtol=1e-10)


def test_perturb_rejects_bad_input(key):
    xs = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="Gaussian"):
        perturb(xs, "speckle", 0.1, key=key)
    with pytest.raises(ValueError, match="sigma"):
        perturb(xs, Gaussian(-0.1), key=key)
    with pytest.raises(ValueError, match=r"\[0, 1"):
        SaltPepper(1.5)
    with pytest.raises(ValueError, match="steps"):
        PGD(0.1, steps=0)
    with pytest.raises(TypeError, match="belong to the perturbation"):
        perturb(xs, Gaussian(0.1), 0.2, key=key)
    with library_checks_only(), pytest.raises(TypeError, match="floating"):
        perturb(jnp.ones((2, 3), jnp.int32), Gaussian(0.1), key=key)


def test_old_names_warn_and_give_the_same_draws(key):
    xs = jnp.linspace(0, 1, 24).reshape(2, 3, 4)
    for name, obj in (("gaussian", Gaussian(0.3)), ("multiplicative", Multiplicative(0.3)),
                      ("salt_pepper", SaltPepper(0.3, low=-1.0, high=2.0))):  # fmt: skip
        with pytest.warns(DeprecationWarning, match=type(obj).__name__):
            old = perturb(xs, name, 0.3, key=key, low=-1.0, high=2.0)
        np.testing.assert_array_equal(old, perturb(xs, obj, key=key))
    with pytest.warns(DeprecationWarning, match="L2"):
        parse = pgd_fn(lambda x: x.reshape(2, -1)[:, :3], xs, jnp.array([0, 1]), 0.2, steps=2,
                       step_size=0.1, norm="l2")  # fmt: skip
    np.testing.assert_array_equal(parse, pgd_fn(lambda x: x.reshape(2, -1)[:, :3], xs,
                                                jnp.array([0, 1]), 0.2, steps=2, step_size=0.1,
                                                norm=L2()))  # fmt: skip


def test_names_parse_at_the_edge():
    assert parse_perturbation("gaussian", 0.1) == Gaussian(0.1)
    assert parse_perturbation("pgd", 0.03, steps=7, norm="l2") == PGD(0.03, steps=7, norm=L2())
    assert parse_perturbation("deepfool") == DeepFool()
    assert parse_norm("linf") == Linf() and parse_norm(L2()) == L2()
    levels = {"salt_pepper": (0.1, 0.2), "fgsm": (0.05,), "pgd": (0.01,), "deepfool": ()}
    assert perturbations_from_levels(levels, pgd_steps=4, deepfool_max_iter=9) == (
        SaltPepper(0.1), SaltPepper(0.2), FGSM(0.05), PGD(0.01, steps=4), DeepFool(max_iter=9)
    )  # fmt: skip
    # the name and level written in files, and a level changed in place
    assert [(p.name, p.level) for p in (Gaussian(0.2), FGSM(0.1, norm=L2()))] == [
        ("gaussian", 0.2), ("fgsm", 0.1)]  # fmt: skip
    assert PGD(0.1, steps=3, norm=L2()).with_level(0.5) == PGD(0.5, steps=3, norm=L2())
    with pytest.raises(ValueError, match="choose one of"):
        parse_perturbation("speckle", 0.1)
    with pytest.raises(ValueError, match="no level"):
        parse_perturbation("deepfool", 0.1)
    with pytest.raises(ValueError, match="norm"):
        parse_norm("l1")


# ------------------------------------------------------------------ attacks


def test_fgsm_on_linear_model_matches_closed_form():
    rng = np.random.default_rng(1)
    fn, w, b = _linear(rng, (5, 2), 4)
    x = rng.uniform(size=(6, 5, 2))
    y = rng.integers(0, 4, size=6)
    eps = 0.07
    out = np.asarray(fgsm_fn(fn, jnp.asarray(x), jnp.asarray(y), eps))
    # grad_x CE = W^T (softmax(z) - onehot(y)).
    z = x.reshape(6, -1) @ w.T + b
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(6), y] -= 1
    expected = x + eps * np.sign((p @ w).reshape(x.shape))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", [Linf(), L2()])
def test_pgd_stays_in_ball_and_never_lowers_loss(norm, key):
    rng = np.random.default_rng(2)
    shape, classes = (4, 3), 5
    w1 = rng.normal(size=(8, 12))
    w2 = rng.normal(size=(classes, 8))

    def fn(x):  # a small nonlinear model, so ascent is not monotone by construction
        return jnp.tanh(x.reshape(x.shape[0], -1) @ jnp.asarray(w1).T) @ jnp.asarray(w2).T

    x = jnp.asarray(rng.uniform(size=(16, *shape)))
    y = jnp.asarray(rng.integers(0, classes, size=16))
    eps = 0.3 if isinstance(norm, Linf) else 0.8

    def ce(z):
        logp = jax.nn.log_softmax(fn(z), -1)
        return -np.asarray(jnp.take_along_axis(logp, y[:, None], -1)[:, 0])

    clean = ce(x)
    attack = jax.jit(
        lambda step, k: pgd_fn(fn, x, y, eps, steps=6, step_size=step, norm=norm, key=k)
    )
    for start_key in (None, key):
        # An over-large step makes plain iterates oscillate; keeping the best must still hold.
        for step in (eps / 4, 3 * eps):
            adv = attack(step, start_key)
            d = np.asarray(adv - x).reshape(16, -1)
            size = np.abs(d).max(-1) if isinstance(norm, Linf) else np.linalg.norm(d, axis=-1)
            assert np.all(size <= eps * (1 + 1e-9))
            assert np.all(ce(adv) >= clean - 1e-12)


def test_pgd_on_linear_binary_model_reaches_closed_form():
    # Binary affine model: the loss grows along w = w_other - w_true; the linf maximiser over the
    # ball is x + eps * sign(w) and the l2 maximiser is x + eps * w / ||w||.
    rng = np.random.default_rng(3)
    fn, w, b = _linear(rng, (6,), 2)
    x = rng.uniform(size=(5, 6))
    y = rng.integers(0, 2, size=5)
    direction = w[1 - y] - w[y]
    eps = 0.2
    adv = pgd_fn(fn, jnp.asarray(x), jnp.asarray(y), eps, steps=5, step_size=eps / 2, norm=Linf())
    np.testing.assert_allclose(adv, x + eps * np.sign(direction), atol=1e-12)
    adv = pgd_fn(fn, jnp.asarray(x), jnp.asarray(y), eps, steps=5, step_size=eps / 2, norm=L2())
    unit = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    np.testing.assert_allclose(adv, x + eps * unit, atol=1e-10)
    # The objects: PGD(eps, steps, step_size, norm), no random start; FGSM in the l2 ball is
    # one step along the unit gradient, which for a binary affine model is the same maximiser.
    attack = PGD(eps, steps=5, step_size=eps / 2, norm=L2(), random_start=False)
    np.testing.assert_allclose(attack.attack(fn, jnp.asarray(x), jnp.asarray(y)), x + eps * unit,
                               atol=1e-10)  # fmt: skip
    fgsm_l2 = FGSM(eps, norm=L2()).attack(fn, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(fgsm_l2, x + eps * unit, atol=1e-12)


def test_deepfool_lands_on_linear_decision_boundary():
    rng = np.random.default_rng(4)
    classes = 6
    fn, w, b = _linear(rng, (3, 4), classes)
    x = rng.normal(size=(20, 3, 4))
    overshoot = 0.02
    adv = np.asarray(deepfool_fn(fn, jnp.asarray(x), overshoot=overshoot))
    flat = x.reshape(20, -1)
    z = flat @ w.T + b
    k0 = z.argmax(-1)
    # Exact l2 distance to misclassification of an affine classifier: the nearest pairwise
    # boundary f_k = f_k0, at distance (f_k0 - f_k) / ||w_k - w_k0||.
    dist = np.full(20, np.inf)
    for i in range(20):
        for k in range(classes):
            if k != k0[i]:
                dw = w[k] - w[k0[i]]
                dist[i] = min(dist[i], (z[i, k0[i]] - z[i, k]) / np.linalg.norm(dw))
    moved = np.linalg.norm((adv - x).reshape(20, -1), axis=-1)
    wmin = min(np.linalg.norm(w[k] - w[j]) for k in range(classes) for j in range(k))
    # One round: (1 + overshoot) (dist + 1e-4 / ||w_l||) and the label changes.
    assert np.all(moved >= (1 + overshoot) * dist - 1e-9)
    assert np.all(moved <= (1 + overshoot) * (dist + 1e-4 / wmin) + 1e-9)
    assert np.all((adv.reshape(20, -1) @ w.T + b).argmax(-1) != k0)
    # Without the overshoot the point lies on the boundary: top two logits tie.
    on = x + (adv - x) / (1 + overshoot)
    zo = np.sort(on.reshape(20, -1) @ w.T + b, axis=-1)
    np.testing.assert_allclose(zo[:, -1], zo[:, -2], atol=1e-3)
