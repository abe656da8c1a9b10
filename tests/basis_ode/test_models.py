"""Models: exact parameter counts, ResNet equivalence, the tagger against float64 NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from basis_ode import (
    BASES,
    BasisExpansion,
    ConvODENet,
    ODEBlock,
    ODETransformerTagger,
    PiecewiseConstant,
    PiecewiseLinear,
    PreActConvUnit,
    ResNet,
    basis_by_name,
    count_params,
    evaluate,
)
from tests._shape_checks import library_checks_only

from . import fill

F64 = jnp.float64


@pytest.mark.parametrize("K", [1, 8, 16])
def test_conv_odenet_parameter_count_is_exact(K):
    """Paper 5.1: P(K) = 78,074 + 97,216 K for width 16 on 32x32x3 inputs."""
    model = ConvODENet(num_classes=10, width=16, basis=PiecewiseConstant(K))
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.float32))
    )
    assert count_params(shapes["params"]) == 78_074 + 97_216 * K


def test_count_params_closed_form():
    tree = {"a": jnp.zeros((3, 4)), "b": [jnp.zeros(5), {"c": jnp.zeros((2, 2, 2))}]}
    assert count_params(tree) == 12 + 5 + 8


def _as_expansions(tree, K):
    """The ResNet's variables as ConvODENet's: each stage's stacked ``unit`` (leading axis K)
    becomes ``basis_coeffs``, a piecewise-constant expansion of the same leaves."""
    if isinstance(tree, dict):
        return {
            ("basis_coeffs" if k == "unit" else k): (
                BasisExpansion(PiecewiseConstant(K), v) if k == "unit" else _as_expansions(v, K)
            )
            for k, v in tree.items()
        }
    return tree


@pytest.mark.parametrize("unroll", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_resnet_equals_conv_odenet_euler_piecewise_constant(key, train, unroll):
    """K discrete blocks h <- h + F(theta_k, h)/K == Euler, PiecewiseConstant(K), n_steps = K,
    with the depth loops of both models unrolled (the CPU default) or rolled (GPU and TPU)."""
    K = 2
    x = jax.random.normal(key, (3, 8, 8, 1), F64)
    resnet = ResNet(width=2, n_blocks=K, param_dtype=F64, unroll=unroll)
    odenet = ConvODENet(width=2, basis=PiecewiseConstant(K), param_dtype=F64, unroll=not unroll)
    rv = fill(jax.eval_shape(resnet.init, jax.random.key(1), x))
    ov = {c: _as_expansions(t, K) for c, t in rv.items()}
    if train:
        r_out, r_upd = jax.jit(
            lambda v, x: resnet.apply(v, x, train=True, mutable=["batch_stats"])
        )(rv, x)
        o_out, o_upd = jax.jit(
            lambda v, x: odenet.apply(v, x, train=True, mutable=["batch_stats"])
        )(ov, x)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            _as_expansions(r_upd["batch_stats"], K),
            o_upd["batch_stats"],
        )
    else:
        r_out = jax.jit(resnet.apply)(rv, x)
        o_out = jax.jit(odenet.apply)(ov, x)
    np.testing.assert_allclose(o_out, r_out, rtol=1e-10, atol=1e-10)


def _layer_norm(x, p, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _dense(x, p):
    return x @ p["kernel"] + p["bias"]


def _unit_np(x, p, valid):
    """dx/dt = SA(LN(x)) + MLP(LN(x + SA(LN(x)))), single head, padding keys masked."""
    y = _layer_norm(x, p["LayerNorm_0"])
    a = p["MultiHeadDotProductAttention_0"]
    q, k, v = (
        np.einsum("bld,dhe->blhe", y, a[n]["kernel"]) + a[n]["bias"]
        for n in ("query", "key", "value")
    )
    logits = np.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(q.shape[-1])
    allowed = valid[:, None, :, None] & valid[:, None, None, :]
    logits = np.where(allowed, logits, np.finfo(logits.dtype).min)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    att = np.einsum("bhqk,bkhe->bqhe", w, v)
    sa = np.einsum("bqhe,hed->bqd", att, a["out"]["kernel"]) + a["out"]["bias"]
    z = _layer_norm(x + sa, p["LayerNorm_1"])
    hidden = _dense(z, p["Dense_0"])
    elu = np.where(hidden > 0, hidden, np.expm1(np.minimum(hidden, 0)))
    return sa + _dense(elu, p["Dense_1"])


def _positions_np(L, W):
    pe = np.zeros((L, W))
    for pos in range(L):
        for i in range(0, W, 2):
            pe[pos, i] = np.sin(pos / 10000 ** (i / W))
            if i + 1 < W:
                pe[pos, i + 1] = np.cos(pos / 10000 ** (i / W))
    return pe


def test_tagger_matches_numpy_and_respects_padding(key):
    K, W, L = 2, 8, 5
    model = ODETransformerTagger(
        vocab_size=13, num_tags=4, width=W, basis=PiecewiseConstant(K), param_dtype=F64
    )
    tokens = jax.random.randint(key, (3, L), 1, 13)
    valid = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], bool)
    v = fill(jax.eval_shape(lambda: model.init(jax.random.key(1), tokens, mask=valid)))
    assert set(v) == {"params"}  # a stateless unit: no batch_stats
    p = jax.tree_util.tree_map(np.asarray, v["params"])
    assert p["encoder"]["basis_coeffs"].basis == PiecewiseConstant(K)
    blocks = p["encoder"]["basis_coeffs"].coeffs

    apply = jax.jit(lambda t: model.apply(v, t, mask=jnp.asarray(valid)))
    out = np.asarray(apply(tokens))
    # float64 NumPy reference: Euler, piecewise constant, n_steps = K (two residual updates)
    x = p["embed"]["embedding"][np.asarray(tokens)] + _positions_np(L, W)
    for k in range(K):
        theta = jax.tree_util.tree_map(lambda a, k=k: a[k], blocks)
        x = x + _unit_np(x, theta, valid) / K
    ref = _dense(_layer_norm(x, p["final_norm"]), p["head"])
    np.testing.assert_allclose(out[valid], ref[valid], rtol=1e-9, atol=1e-10)

    # padding tokens changed: outputs at real positions unchanged, at padding positions changed
    other = jnp.where(jnp.asarray(valid), tokens, (tokens + 5) % 13)
    out2 = np.asarray(apply(other))
    np.testing.assert_allclose(out2[valid], out[valid], rtol=1e-12, atol=1e-12)
    assert not np.allclose(out2[~valid], out[~valid])


def test_models_reject_bad_inputs(key):
    """The library's own messages (the shape checks of the test run would refuse first)."""

    def init(model, *args, **kw):
        return jax.eval_shape(lambda: model.init(key, *args, **kw))

    with library_checks_only():
        with pytest.raises(ValueError, match="NHWC"):
            init(ConvODENet(width=2, basis=PiecewiseConstant(1)), jnp.zeros((8, 8, 1)))
        with pytest.raises(ValueError, match="even"):
            PiecewiseLinear(3)
        with pytest.raises(TypeError, match="basis_by_name"):
            init(ConvODENet(width=2, basis="hat"), jnp.zeros((1, 8, 8, 1)))
        with pytest.raises(ValueError, match="width"):
            init(ConvODENet(width=0, basis=PiecewiseConstant(1)), jnp.zeros((1, 8, 8, 1)))
        tagger = ODETransformerTagger(vocab_size=5, num_tags=2, width=4, basis=PiecewiseConstant(1))
        with pytest.raises(ValueError, match="integer"):
            init(tagger, jnp.zeros((2, 3)))
        with pytest.raises(ValueError, match="mask"):
            init(tagger, jnp.zeros((2, 3), jnp.int32), mask=jnp.ones((2, 4), bool))


def test_configuration_accepts_numpy_scalars(key):
    """NumPy integers and floats in the configuration build the same model as Python numbers."""
    x = jax.random.normal(key, (2, 8, 8, 1), F64)
    plain = ConvODENet(
        num_classes=3, width=2, basis=PiecewiseConstant(2), n_steps=2, param_dtype=F64
    )
    numpy_cfg = ConvODENet(
        num_classes=np.int64(3),
        width=np.int32(2),
        basis=PiecewiseConstant(2),
        n_steps=np.int64(2),
        bn_momentum=np.float32(0.9),
        param_dtype=F64,
    )
    v = plain.init(key, x)
    np.testing.assert_array_equal(numpy_cfg.apply(v, x), plain.apply(v, x))
    assert jax.tree_util.tree_structure(numpy_cfg.init(key, x)) == jax.tree_util.tree_structure(v)
    resnet = ResNet(num_classes=np.int64(3), width=np.int64(2), n_blocks=np.int64(2))
    assert resnet.apply(resnet.init(key, x), x).shape == (2, 3)
    tagger = ODETransformerTagger(vocab_size=np.int64(5), num_tags=np.int64(2), width=np.int64(4))
    tokens = jnp.zeros((1, 3), jnp.int32)
    assert tagger.apply(tagger.init(key, tokens), tokens).shape == (1, 3, 2)


FAMILIES = [(b, 4) for b in BASES]


def _lagrange_spread(basis, t):
    """sqrt(sum_j L_j(t)^2) for the Lagrange functions of the nodes, in float64 from the
    interpolation conditions (the std of theta(t) over the std of one draw)."""
    nodes = [basis._values_at(x, side) for x, side in basis._exact_nodes()]
    L = np.stack([basis._values_at(float(s), 1) for s in t]) @ np.linalg.inv(np.stack(nodes))
    return np.sqrt((L**2).sum(1))


@pytest.mark.parametrize("name,K", FAMILIES)
def test_initial_depth_functions_of_every_family(key, name, K):
    """At 50 depths: BatchNorm state exactly the unit's constants, weights with the unit's init
    spread times the closed-form Lagrange factor (exactly 1 at the nodes)."""
    c = 16
    h = jnp.zeros((1, 4, 4, c), jnp.float32)
    basis = basis_by_name(name, K)
    v = ODEBlock(unit=PreActConvUnit, basis=basis).init(key, h)
    t = np.linspace(0.0, 1.0, 50)
    for coll in ("batch_stats", "params"):
        for path, leaf in jax.tree_util.tree_flatten_with_path(v[coll]["basis_coeffs"].coeffs)[0]:
            leaf_name = path[-1].key
            theta = np.stack([np.asarray(evaluate(leaf, basis, s)) for s in t])
            if leaf_name in ("mean", "var", "scale", "bias"):
                want = {"mean": 0.0, "var": 1.0, "scale": 1.0, "bias": 0.0}[leaf_name]
                np.testing.assert_allclose(theta, want, atol=2e-7)
    ref = PreActConvUnit().init(jax.random.key(7), h)["params"]["Conv_0"]["kernel"]
    sigma = float(np.std(np.asarray(ref)))  # the unit's own init spread (9 c^2 = 2304 draws)
    kernel = v["params"]["basis_coeffs"].coeffs["Conv_0"]["kernel"]
    spread = np.array([np.std(np.asarray(evaluate(kernel, basis, s))) for s in t])
    expected = sigma * _lagrange_spread(basis, t)
    np.testing.assert_allclose(spread, expected, rtol=0.12)  # sampling error of 2304 draws
    assert np.all(spread > 0.6 * sigma) and np.all(spread < 1.45 * sigma)


@pytest.mark.parametrize("name", list(BASES))
def test_fresh_model_is_finite_in_train_and_eval_mode(key, name):
    """The issue's reproducer (Fourier gave NaN logits in eval mode), for all six families."""
    x = jax.random.normal(key, (4, 8, 8, 3))
    basis = basis_by_name(name, 4 if name == "piecewise_linear" else 3)
    m = ConvODENet(num_classes=3, width=2, basis=basis)
    v = m.init(jax.random.key(0), x, train=False)
    assert np.all(np.isfinite(m.apply(v, x, train=False)))
    logits, upd = m.apply(v, x, train=True, mutable=["batch_stats"])
    assert np.all(np.isfinite(logits))
    for leaf in jax.tree_util.tree_leaves(upd):
        assert np.all(np.isfinite(leaf))


@pytest.mark.parametrize("K", [1, 3])
def test_benchmark_pytorch_twin_has_the_same_parameters(key, K):
    """The PyTorch eager model of benchmarks/ode_nets.py is the same architecture: its
    parameter count equals ConvODENet's for every K (and 78,074 + 97,216 K at width 16)."""
    pytest.importorskip("torch")
    from benchmarks.ode_nets import _torch_conv_odenet

    for width in (2, 16):
        model = ConvODENet(width=width, basis=PiecewiseConstant(K))
        shapes = jax.eval_shape(model.init, key, jnp.zeros((1, 32, 32, 3)))
        net = _torch_conv_odenet(width, K)
        assert sum(p.numel() for p in net.parameters()) == count_params(shapes["params"])
    assert count_params(shapes["params"]) == 78_074 + 97_216 * K
