"""Models: exact parameter counts, ResNet equivalence, the tagger against float64 NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from basis_ode import ConvODENet, ODETransformerTagger, ResNet, count_params

from . import fill

F64 = jnp.float64


@pytest.mark.parametrize("K", [1, 8, 16])
def test_conv_odenet_parameter_count_is_exact(K):
    """SPEC 2.7: P(K) = 78,074 + 97,216 K for width 16 on 32x32x3 inputs."""
    model = ConvODENet(num_classes=10, width=16, n_basis=K)
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.float32))
    )
    assert count_params(shapes["params"]) == 78_074 + 97_216 * K


def test_count_params_closed_form():
    tree = {"a": jnp.zeros((3, 4)), "b": [jnp.zeros(5), {"c": jnp.zeros((2, 2, 2))}]}
    assert count_params(tree) == 12 + 5 + 8


def _rename(tree, src, dst):
    if isinstance(tree, dict):
        return {(dst if k == src else k): _rename(v, src, dst) for k, v in tree.items()}
    return tree


@pytest.mark.parametrize("unroll", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_resnet_equals_conv_odenet_euler_piecewise_constant(key, train, unroll):
    """K discrete blocks h <- h + F(theta_k, h)/K == Euler, PiecewiseConstant(K), n_steps = K,
    with the depth loops of both models unrolled (the CPU default) or rolled (GPU and TPU)."""
    K = 2
    x = jax.random.normal(key, (3, 8, 8, 1), F64)
    resnet = ResNet(width=2, n_blocks=K, param_dtype=F64, unroll=unroll)
    odenet = ConvODENet(width=2, n_basis=K, param_dtype=F64, unroll=not unroll)
    rv = fill(jax.eval_shape(resnet.init, jax.random.key(1), x))
    ov = {c: _rename(t, "unit", "basis_coeffs") for c, t in rv.items()}
    if train:
        r_out, r_upd = jax.jit(
            lambda v, x: resnet.apply(v, x, train=True, mutable=["batch_stats"])
        )(rv, x)
        o_out, o_upd = jax.jit(
            lambda v, x: odenet.apply(v, x, train=True, mutable=["batch_stats"])
        )(ov, x)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            _rename(r_upd["batch_stats"], "unit", "basis_coeffs"),
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
    model = ODETransformerTagger(vocab_size=13, num_tags=4, width=W, n_basis=K, param_dtype=F64)
    tokens = jax.random.randint(key, (3, L), 1, 13)
    valid = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], bool)
    v = fill(jax.eval_shape(lambda: model.init(jax.random.key(1), tokens, mask=valid)))
    assert set(v) == {"params"}  # a stateless unit: no batch_stats
    p = jax.tree_util.tree_map(np.asarray, v["params"])
    blocks = p["encoder"]["basis_coeffs"]

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
    def init(model, *args, **kw):
        return jax.eval_shape(lambda: model.init(key, *args, **kw))

    with pytest.raises(ValueError, match="NHWC"):
        init(ConvODENet(width=2, n_basis=1), jnp.zeros((8, 8, 1)))
    with pytest.raises(ValueError, match="even"):
        init(ConvODENet(width=2, n_basis=3, basis="piecewise_linear"), jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="width"):
        init(ConvODENet(width=0, n_basis=1), jnp.zeros((1, 8, 8, 1)))
    tagger = ODETransformerTagger(vocab_size=5, num_tags=2, width=4, n_basis=1)
    with pytest.raises(ValueError, match="integer"):
        init(tagger, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        init(tagger, jnp.zeros((2, 3), jnp.int32), mask=jnp.ones((2, 4), bool))
