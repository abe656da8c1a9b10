"""Compression, refinement and the sweep harness, checked against NumPy and closed forms."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from basis_ode import (
    EULER,
    RK4,
    BasisExpansion,
    ConvODENet,
    Hat,
    Interpolate,
    Legendre,
    PiecewiseConstant,
    Project,
    accuracy,
    basis_of,
    compress,
    compression_by_name,
    compression_residual,
    count_params,
    refine_variables,
)
from basis_ode.experiments import compression_sweep

from . import fill

K = 4
MODEL = ConvODENet(width=2, basis=PiecewiseConstant(K), param_dtype=jnp.float64)
#: one jitted forward shared by all tests, so equal configurations compile once
FWD = jax.jit(MODEL.apply, static_argnames=("train", "n_steps", "scheme"))


@pytest.fixture(scope="module")
def trained():
    x = jnp.asarray(np.random.default_rng(2).standard_normal((6, 8, 8, 1)))
    v = fill(dict(jax.eval_shape(MODEL.init, jax.random.key(0), x)))
    return v, x


def _keys(path):
    """The dict keys of a pytree path (an expansion's ``.coeffs`` attribute step left out)."""
    return tuple(p.key for p in path if hasattr(p, "key"))


def _block_leaves(v):
    """{path: leaf} of every ODE-block leaf (params and statistics)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(v)[0]:
        keys = _keys(path)
        if "basis_coeffs" in keys:
            out[keys] = np.asarray(leaf)
    return out


def _other_leaves(v):
    return {
        _keys(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(v)[0]
        if "basis_coeffs" not in _keys(path)
    }


def test_compress_to_the_same_basis_is_the_identity(trained):
    v, x = trained
    same = compress(v, PiecewiseConstant(K))
    for path, leaf in _block_leaves(v).items():
        np.testing.assert_allclose(_block_leaves(same)[path], leaf, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(FWD(same, x), FWD(v, x), rtol=1e-10, atol=1e-12)


def test_piecewise_constant_2k_to_k_averages_pairs(trained):
    """Projecting PiecewiseConstant(2K) onto PiecewiseConstant(K) averages node pairs,
    for the weights and the BatchNorm statistics alike; the rest of the model is untouched."""
    v, x = trained
    small = compress(v, PiecewiseConstant(K // 2))
    got = _block_leaves(small)
    for path, leaf in _block_leaves(v).items():
        expected = 0.5 * (leaf[0::2] + leaf[1::2])
        np.testing.assert_allclose(
            got[path], expected, rtol=1e-6 if leaf.dtype == np.float32 else 1e-12
        )
        assert got[path].dtype == leaf.dtype
    for path, leaf in _other_leaves(v).items():
        np.testing.assert_array_equal(_other_leaves(small)[path], leaf)
    assert count_params(small["params"]) == count_params(v["params"]) - (K // 2) * 1568
    # nodal interpolation keeps every second layer instead
    kept = _block_leaves(compress(v, PiecewiseConstant(K // 2), method=Interpolate()))
    for path, leaf in _block_leaves(v).items():
        np.testing.assert_array_equal(kept[path], leaf[0::2])


def test_compressed_model_runs_with_other_steps_and_schemes(trained):
    """Projected onto Legendre(3) (smooth in depth), Euler converges at order 1 to RK4."""
    v, x = trained
    smooth = compress(v, Legendre(3))
    ref = FWD(smooth, x, n_steps=8, scheme=RK4)
    errs = [float(jnp.max(jnp.abs(FWD(smooth, x, n_steps=n, scheme=EULER) - ref))) for n in (4, 8)]
    assert 1.5 < errs[0] / errs[1] < 2.7, errs


def test_refine_variables_preserves_the_function(trained):
    v, x = trained
    fine, basis = refine_variables(v)
    assert basis == PiecewiseConstant(2 * K)
    for path, leaf in _block_leaves(v).items():
        np.testing.assert_array_equal(_block_leaves(fine)[path], np.repeat(leaf, 2, axis=0))
    # the same theta(t): same outputs with the same steps (each step reads the left cell)
    np.testing.assert_allclose(FWD(fine, x, n_steps=K), FWD(v, x), rtol=1e-12, atol=1e-12)
    hat, hat2 = refine_variables(compress(v, Hat(3)))
    assert hat2 == Hat(5)
    for leaf in _block_leaves(hat).values():
        np.testing.assert_allclose(leaf[1::2], 0.5 * (leaf[0:-1:2] + leaf[2::2]), rtol=1e-6)


def test_maps_are_objects_and_names_are_parsed_at_the_edge(trained):
    v, _ = trained
    assert compression_by_name("project") == Project() and compression_by_name("interpolate") == (
        Interpolate())  # fmt: skip
    # The maps act on one expansion as its own methods do: the L2 projection and the samples.
    e = [x for x in jax.tree_util.tree_leaves(v, is_leaf=lambda x: isinstance(x, BasisExpansion))
         if isinstance(x, BasisExpansion)][0]  # fmt: skip
    for m, ref in ((Project(), e.project(Hat(3))), (Interpolate(), e.interpolate(Hat(3)))):
        got = m(e, Hat(3))
        assert got.basis == Hat(3)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref)):
            np.testing.assert_array_equal(a, b)
    # the old names still work, warn, and give the same numbers
    for name, obj in (("project", Project()), ("interpolate", Interpolate())):
        with pytest.warns(DeprecationWarning, match=type(obj).__name__):
            old = compress(v, Hat(2), method=name)
        new = compress(v, Hat(2), method=obj)
        for a, b in zip(jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new)):
            np.testing.assert_array_equal(a, b)


def test_compress_rejects_bad_input(trained):
    v, _ = trained
    with pytest.raises(TypeError, match="Basis"):
        compress(v, "hat")
    with pytest.raises(ValueError, match="Project"):
        compress(v, Hat(2), method="nearest")
    with pytest.raises(TypeError, match="unexpected keyword"):
        compress(v, Hat(2), src_basis=PiecewiseConstant(4))  # the source is each expansion's
    with pytest.raises(ValueError, match="no ODE block"):
        compress({"params": {"dense": {"kernel": jnp.ones((2, 2))}}}, Hat(2))


def test_compression_sweep_writes_table_and_plots(trained, tmp_path):
    v, x = trained
    labels = np.array(jnp.argmax(FWD(v, x), -1))
    labels[:2] = (labels[:2] + 1) % 10  # two labels the trained model surely gets wrong
    rows = compression_sweep(
        MODEL,
        v,
        (x, labels),
        bases=["piecewise_linear"],
        Ks=[2, 3, 4],
        n_steps_list=[4],
        methods=[EULER],
        out_dir=tmp_path,
        batch_size=4,
        repeats=2,
        progress=False,
    )
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["rows"] == rows
    assert [(r["basis"], r["K"]) for r in rows] == [
        ("piecewise_constant", 4),
        ("piecewise_linear", 2),
        ("piecewise_linear", 4),
    ]
    assert [(s["basis"], s["K"]) for s in data["skipped"]] == [("piecewise_linear", 3)]
    assert rows[0]["compressed"] is False
    # accuracy of the trained model (n_steps = K = 4), computed directly: 4 of 6
    direct = np.mean(np.asarray(jnp.argmax(FWD(v, x), -1)) == labels)
    assert rows[0]["accuracy"] == pytest.approx(direct) == pytest.approx(4 / 6)
    # trainable parameters: 1,568 per coefficient set at width 2 (sum of 18c^2 + 4c, c = 2, 4, 8)
    assert rows[2]["params"] - rows[1]["params"] == 2 * 1568
    assert rows[2]["params"] == rows[0]["params"]
    assert rows[1]["param_bytes"] == 8 * rows[1]["params"]
    assert all(r["latency_s"] > 0 for r in rows)
    assert all(r["peak_bytes"] is None or r["peak_bytes"] >= r["param_bytes"] for r in rows)
    table = (tmp_path / "sweep.md").read_text().splitlines()
    compressed = [line.split(" | ")[6] for line in table if line.startswith("| ") and "%" in line]
    assert [c.startswith("yes") for c in compressed] == [False, True, True]
    for png in ("accuracy_vs_K.png", "accuracy_vs_n_steps.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_variables_know_their_basis(trained):
    """compress/refine return expansions in their new basis; the model evaluates the
    coefficients in that basis whatever its own ``basis`` attribute says (init only)."""
    v, x = trained
    assert basis_of(v) == PiecewiseConstant(K)
    small = compress(v, Legendre(2), method=Project())
    assert basis_of(small) == Legendre(2)
    for c in ("params", "batch_stats"):
        for stage in ("stage0", "stage1", "stage2"):
            e = small[c][stage]["basis_coeffs"]
            assert isinstance(e, BasisExpansion) and e.basis == Legendre(2) and e.K == 2
    # span(Legendre(2)) = span(Hat(2)) = the linear functions: the exact change of basis gives
    # the same theta(t), so the same logits, though the coefficients differ (to the rounding of
    # the BatchNorm statistics, which Flax keeps in float32; misread, they would differ by O(1)).
    as_hat = compress(small, Hat(2))
    assert basis_of(as_hat) == Hat(2)
    assert not np.allclose(
        as_hat["params"]["stage0"]["basis_coeffs"].coeffs["Conv_0"]["kernel"],
        small["params"]["stage0"]["basis_coeffs"].coeffs["Conv_0"]["kernel"],
    )
    for n in (2, 5):
        np.testing.assert_allclose(
            FWD(as_hat, x, n_steps=n), FWD(small, x, n_steps=n), rtol=1e-6, atol=1e-6
        )
    labels = np.asarray(jnp.argmax(FWD(small, x), -1))
    assert accuracy(MODEL, small, x, labels) == 1.0
    # a second compress reads the expansions: Legendre(2) -> Legendre(3) is exact (nested spaces)
    again = compress(small, Legendre(3))
    np.testing.assert_allclose(
        FWD(again, x, n_steps=4), FWD(small, x, n_steps=4), rtol=1e-10, atol=1e-12
    )
    fine, b = refine_variables(small)
    assert b == basis_of(fine) == Legendre(4)
    mixed = {**small, "batch_stats": compress(v, Hat(2))["batch_stats"]}
    with pytest.raises(ValueError, match=r"Hat\(K=2\).*Legendre\(K=2\)"):
        refine_variables(mixed)


def test_expansions_survive_jit_vmap_optax_and_orbax(trained, tmp_path):
    """The basis rides along every pytree transformation: jit, vmap over another axis, an optax
    update and an orbax checkpoint round trip all return expansions in the same basis."""
    import orbax.checkpoint as ocp

    v, x = trained
    small = compress(v, Hat(3))
    out = jax.jit(lambda t: t)(small)
    assert basis_of(out) == Hat(3)
    np.testing.assert_array_equal(FWD(out, x), FWD(small, x))
    e = small["params"]["stage0"]["basis_coeffs"]
    pair = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a], axis=1), e)  # axis 1: a batch
    assert pair.basis == Hat(3)
    thetas = jax.vmap(lambda c: c(0.25), in_axes=1)(pair)  # each c: an expansion in Hat(3)
    np.testing.assert_allclose(
        thetas["Conv_0"]["kernel"][1], 2 * e(0.25)["Conv_0"]["kernel"], rtol=1e-12
    )
    opt = optax.sgd(0.1)
    grads = jax.tree_util.tree_map(jnp.ones_like, small["params"])
    updates, _ = opt.update(grads, opt.init(small["params"]), small["params"])
    stepped = optax.apply_updates(small["params"], updates)
    assert basis_of(stepped) == Hat(3)
    np.testing.assert_allclose(
        stepped["stage1"]["basis_coeffs"].coeffs["Conv_1"]["kernel"],
        small["params"]["stage1"]["basis_coeffs"].coeffs["Conv_1"]["kernel"] - 0.1,
        rtol=1e-12,
    )
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "ckpt", small)
        ckpt.wait_until_finished()
        back = ckpt.restore(tmp_path / "ckpt", jax.eval_shape(lambda: small))
    assert basis_of(back) == Hat(3)
    np.testing.assert_array_equal(FWD(back, x), FWD(small, x))
    # flax's state dicts (msgpack; trainkit's checkpoints) restore into a template
    from flax import serialization

    raw = serialization.msgpack_serialize(serialization.to_state_dict(small))
    assert "coeffs" in serialization.msgpack_restore(raw)["params"]["stage0"]["basis_coeffs"]
    again = serialization.from_bytes(jax.eval_shape(lambda: small), raw)
    assert basis_of(again) == Hat(3)
    np.testing.assert_array_equal(FWD(again, x), FWD(small, x))


def _residual_by_quadrature(v, src, dst, n=4000):
    """||theta - P theta||^2 / ||theta||^2 with P theta = argmin over span(dst), by sampling
    theta on a fine grid and a float64 least-squares fit (independent of the Gram matrices)."""
    return _quadrature_over(v, src, dst, ("params",), n)


def _quadrature_over(v, src, dst, collections, n=4096):
    t = (np.arange(n) + 0.5) / n
    Ps = np.stack([src._values_at(float(s), 1) for s in t])
    Pd = np.stack([dst._values_at(float(s), 1) for s in t])
    lost = total = 0.0
    for leaf in _block_leaves({c: v[c] for c in collections}).values():
        theta = Ps @ leaf.reshape(src.K, -1)
        fit = Pd @ np.linalg.lstsq(Pd, theta, rcond=None)[0]
        lost, total = lost + np.sum((theta - fit) ** 2), total + np.sum(theta**2)
    return lost / total


def test_compression_residual_counts_the_batch_statistics_by_default(trained):
    """By default r measures every collection: the statistics' theta(t) error enters with the
    parameters' (a fine-grid least-squares fit over both collections gives the same r), and a
    model whose weights are smooth in depth but whose statistics are not has r > 0."""
    v, _ = trained
    assert set(v) == {"params", "batch_stats"}
    dst = PiecewiseConstant(K // 2)
    both = _quadrature_over(v, basis_of(v), dst, ("params", "batch_stats"))
    assert compression_residual(v, dst) == pytest.approx(both, rel=1e-3)
    assert compression_residual(v, dst, collections=("params", "batch_stats")) == (
        pytest.approx(compression_residual(v, dst), rel=1e-12)
    )
    smooth_params = refine_variables(compress(v, dst))[0]["params"]
    mixed = {"params": smooth_params, "batch_stats": v["batch_stats"]}
    assert compression_residual(mixed, dst, collections=("params",)) < 1e-12
    r_stats = _quadrature_over(mixed, basis_of(mixed), dst, ("batch_stats",))
    assert r_stats > 0.01  # the fixture's statistics differ layer by layer
    assert compression_residual(mixed, dst) == pytest.approx(
        _quadrature_over(mixed, basis_of(mixed), dst, ("params", "batch_stats")), rel=1e-3
    )
    assert compression_residual(mixed, dst) > 1e-3


def test_compression_residual_is_the_projection_error(trained):
    """r = ||theta - P theta||^2 / ||theta||^2 in closed form equals a fine-grid least-squares
    fit; about 1 - K_dst/K_src for independent layers, 0 for theta already in span(dst)."""
    v, x = trained
    dst = PiecewiseConstant(K // 2)
    r_indep = compression_residual(v, dst, collections=("params",))
    assert r_indep == pytest.approx(_residual_by_quadrature(v, basis_of(v), dst), rel=1e-3)
    assert 0.3 < r_indep < 0.7  # independent N(0, 0.3^2) layers: about 1 - 2/4
    hat = Hat(3)
    assert compression_residual(v, hat, collections=("params",)) == pytest.approx(
        _residual_by_quadrature(v, basis_of(v), hat), rel=1e-3
    )
    smooth, _ = refine_variables(compress(v, dst))  # pairs of equal layers
    assert compression_residual(smooth, dst) < 1e-12
    np.testing.assert_allclose(
        FWD(compress(smooth, dst), x, n_steps=K), FWD(smooth, x), rtol=1e-10, atol=1e-12
    )
