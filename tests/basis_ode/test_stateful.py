"""Stateful (continuous-in-depth) ODE block against plain Flax and float64 NumPy references."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from basis_ode import (
    EULER,
    MIDPOINT,
    BasisExpansion,
    Hat,
    ODEBlock,
    PiecewiseConstant,
    PreActConvUnit,
)
from tests._shape_checks import library_checks_only

from . import fill

F64 = jnp.float64


class PlainBlock(nn.Module):
    """Ordinary pre-activation residual branch written out with plain Flax layers."""

    @nn.compact
    def __call__(self, h, train):
        c = h.shape[-1]
        bn = lambda: nn.BatchNorm(  # noqa: E731
            use_running_average=not train, momentum=0.9, epsilon=1e-5, param_dtype=F64
        )
        conv = lambda: nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, param_dtype=F64)  # noqa: E731
        y = conv()(nn.relu(bn()(h)))
        return conv()(nn.relu(bn()(y)))


class PlainStage(nn.Module):
    """A ResNet stage of K blocks h <- h + F(theta_k, h) / K (Python loop, ordinary BatchNorm)."""

    K: int

    @nn.compact
    def __call__(self, h, train):
        for k in range(self.K):
            h = h + PlainBlock(name=f"block{k}")(h, train) / self.K
        return h


def _split(tree, K):
    return {f"block{k}": jax.tree_util.tree_map(lambda a, k=k: a[k], tree) for k in range(K)}


def _conv_block(K, **kw):
    unit = functools.partial(PreActConvUnit, param_dtype=F64)
    return ODEBlock(unit=unit, basis=PiecewiseConstant(K), method=EULER, **kw)


K4 = 4


@pytest.fixture(scope="module")
def conv4():
    """A piecewise-constant conv ODE block with K = 4, its variables and an input batch."""
    h = jnp.asarray(np.random.default_rng(1).standard_normal((4, 4, 4, 2)))
    block = _conv_block(K4)
    v = fill(jax.eval_shape(block.init, jax.random.key(0), h))
    return block, v, h


@pytest.mark.parametrize("train", [True, False])
def test_euler_piecewise_constant_equals_resnet_stage_with_batchnorm(conv4, train):
    block, v, h = conv4
    ref_vars = {c: _split(v[c]["basis_coeffs"].coeffs, K4) for c in v if c != "basis"}
    ref = PlainStage(K4)
    if train:
        mut = ["batch_stats"]
        out, upd = jax.jit(lambda v, h: block.apply(v, h, train=True, n_steps=K4, mutable=mut))(
            v, h
        )
        ref_out, ref_upd = jax.jit(lambda v, h: ref.apply(v, h, True, mutable=["batch_stats"]))(
            ref_vars, h
        )
        got = _split(upd["batch_stats"]["basis_coeffs"].coeffs, K4)
        # the statistics moved, and the refit equals per-layer BatchNorm (ridge 1e-6 relative)
        old = ref_vars["batch_stats"]["block0"]["BatchNorm_0"]["mean"]
        assert not np.allclose(got["block0"]["BatchNorm_0"]["mean"], old)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            got,
            ref_upd["batch_stats"],
        )
    else:
        out = jax.jit(block.apply)(v, h)  # n_steps defaults to K
        ref_out = jax.jit(lambda v, h: ref.apply(v, h, False))(ref_vars, h)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-10)


class EmaUnit(nn.Module):
    """A non-BatchNorm unit with its own mutable collection "stats": dh = tanh((h - c) W)."""

    @nn.compact
    def __call__(self, h, *, train=False):
        d = h.shape[-1]
        w = self.param("w", nn.initializers.normal(0.7), (d, d), F64)
        ema = self.variable("stats", "ema", lambda: jnp.zeros((d,), h.dtype))
        if train:
            mean = h.mean(0)
            ema.value = 0.8 * ema.value + 0.2 * mean
            return jnp.tanh((h - mean) @ w)
        return jnp.tanh((h - ema.value) @ w)


def _hat_np(t, K):
    return np.maximum(0.0, 1.0 - np.abs(t * (K - 1) - np.arange(K)))


@pytest.mark.parametrize("train", [True, False])
def test_generic_unit_hat_basis_matches_numpy(key, train):
    """Any unit with a mutable collection: Hat(3) weights and state, 4 Euler steps, ridge refit."""
    K, n, lam = 3, 4, 1e-3
    h0 = np.asarray(jax.random.normal(key, (5, 4), F64))
    block = ODEBlock(unit=EmaUnit, basis=Hat(K), state_collections=("stats",), stats_ridge=lam)
    v = block.init(jax.random.key(3), jnp.asarray(h0))
    Wc = np.asarray(v["params"]["basis_coeffs"].coeffs["w"])
    # the K coefficient sets are initialised with different keys
    assert not np.allclose(Wc[0], Wc[1]) and not np.allclose(Wc[1], Wc[2])
    Sc = np.asarray(jax.random.normal(jax.random.key(4), (K, 4), F64))
    v = {
        "params": v["params"],
        "stats": {"basis_coeffs": BasisExpansion(Hat(K), {"ema": jnp.asarray(Sc)})},
    }

    h, phis, deltas = h0.copy(), [], []
    for i in range(n):
        phi = _hat_np(i / n, K)
        W, s = np.einsum("k,kij->ij", phi, Wc), phi @ Sc
        if train:
            mean = h.mean(0)
            dh = np.tanh((h - mean) @ W)
            phis.append(phi)
            deltas.append(0.8 * s + 0.2 * mean - s)
        else:
            dh = np.tanh((h - s) @ W)
        h = h + dh / n
    if train:
        fn = jax.jit(lambda v, h: block.apply(v, h, train=True, n_steps=n, mutable=["stats"]))
        out, upd = fn(v, jnp.asarray(h0))
        Phi, D = np.stack(phis), np.stack(deltas)
        S_new = Sc + np.linalg.solve(Phi.T @ Phi + lam * np.eye(K), Phi.T @ D)
        np.testing.assert_allclose(upd["stats"]["basis_coeffs"].coeffs["ema"], S_new, rtol=1e-10)
    else:
        out = jax.jit(lambda v, h: block.apply(v, h, n_steps=n))(v, jnp.asarray(h0))
    np.testing.assert_allclose(out, h, rtol=1e-10, atol=1e-12)


def test_nodes_without_samples_keep_their_statistics(conv4):
    """PiecewiseConstant(4), 2 Euler steps: cells 0 and 2 are sampled, 1 and 3 keep their stats."""
    block, v, h = conv4
    fn = jax.jit(lambda v, h: block.apply(v, h, train=True, n_steps=2, mutable=["batch_stats"]))
    _, upd = fn(v, h)
    for name in ("mean", "var"):
        old = v["batch_stats"]["basis_coeffs"].coeffs["BatchNorm_1"][name]
        new = upd["batch_stats"]["basis_coeffs"].coeffs["BatchNorm_1"][name]
        np.testing.assert_array_equal(new[1::2], old[1::2])
        assert np.all(np.abs(new[0::2] - old[0::2]) > 0)


def test_k_is_read_from_shapes_and_overrides_match_clone(conv4):
    block4, v, h = conv4
    other = _conv_block(1)  # the basis attribute is only an init-time setting
    a = jax.jit(lambda v, h: other.apply(v, h, n_steps=3, scheme=MIDPOINT))(v, h)
    b = jax.jit(other.clone(n_steps=3, method=MIDPOINT).apply)(v, h)
    np.testing.assert_allclose(a, b, rtol=0, atol=0)
    # K = 4 read from the variables: with Euler and n_steps = K this equals the 4-block stage
    ref_vars = {c: _split(v[c]["basis_coeffs"].coeffs, K4) for c in v if c != "basis"}
    ref = jax.jit(lambda v, h: PlainStage(K4).apply(v, h, False))(ref_vars, h)
    np.testing.assert_allclose(jax.jit(other.apply)(v, h), ref, rtol=1e-10)
    assert not np.allclose(a, ref)  # the midpoint override did change the computation


def test_bad_arguments_raise_clear_errors(conv4):
    block, v, h = conv4
    with pytest.raises(ValueError, match="n_steps"):
        block.apply(v, h, n_steps=0)
    with library_checks_only(), pytest.raises(TypeError, match="scheme_by_name"):
        block.apply(v, h, scheme="rk4")
    # params and statistics in different bases: refused, naming both
    stats = v["batch_stats"]["basis_coeffs"]
    other = {**v, "batch_stats": {"basis_coeffs": stats.project(Hat(4))}}
    with pytest.raises(ValueError, match=r"PiecewiseConstant\(K=4\).*Hat\(K=4\)"):
        block.apply(other, h)
    with pytest.raises(ValueError, match="init"):
        block.apply({"params": {}}, h)
