"""Compression, refinement and the sweep harness, checked against NumPy and closed forms."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from basis_ode import (
    TAG,
    ConvODENet,
    Hat,
    Legendre,
    PiecewiseConstant,
    accuracy,
    compress,
    compression_residual,
    compression_sweep,
    count_params,
    refine_variables,
    tagged_basis,
)

from . import fill

K = 4
MODEL = ConvODENet(width=2, n_basis=K, param_dtype=jnp.float64)
#: one jitted forward shared by all tests, so equal configurations compile once
FWD = jax.jit(MODEL.apply, static_argnames=("train", "n_steps", "scheme", "basis"))


@pytest.fixture(scope="module")
def trained():
    x = jnp.asarray(np.random.default_rng(2).standard_normal((6, 8, 8, 1)))
    shapes = dict(jax.eval_shape(MODEL.init, jax.random.key(0), x))
    tags = shapes.pop(TAG)  # filled apart, so the random fill of the rest is what it always was
    v = fill(shapes)
    v[TAG] = jax.tree_util.tree_map(lambda s: np.int32(K), tags)
    return v, x


def _block_leaves(v):
    """{path: leaf} of every ODE-block leaf (params and statistics)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(v)[0]:
        keys = tuple(p.key for p in path)
        if "basis_coeffs" in keys:
            out[keys] = np.asarray(leaf)
    return out


def _other_leaves(v):
    return {
        tuple(p.key for p in path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(v)[0]
        if "basis_coeffs" not in tuple(p.key for p in path) and path[0].key != TAG
    }


def test_compress_to_the_same_basis_is_the_identity(trained):
    v, x = trained
    same = compress(v, PiecewiseConstant(K), src_basis="piecewise_constant")
    for path, leaf in _block_leaves(v).items():
        np.testing.assert_allclose(_block_leaves(same)[path], leaf, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(FWD(same, x), FWD(v, x), rtol=1e-10, atol=1e-12)


def test_piecewise_constant_2k_to_k_averages_pairs(trained):
    """Projecting PiecewiseConstant(2K) onto PiecewiseConstant(K) averages node pairs,
    for the weights and the BatchNorm statistics alike; the rest of the model is untouched."""
    v, x = trained
    small = compress(v, PiecewiseConstant(K // 2), src_basis="piecewise_constant")
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
    kept = _block_leaves(compress(v, PiecewiseConstant(K // 2), method="interpolate"))
    for path, leaf in _block_leaves(v).items():
        np.testing.assert_array_equal(kept[path], leaf[0::2])


def test_compressed_model_runs_with_other_steps_and_schemes(trained):
    """Projected onto Legendre(3) (smooth in depth), Euler converges at order 1 to RK4."""
    v, x = trained
    smooth = compress(v, Legendre(3), src_basis="piecewise_constant")
    ref = FWD(smooth, x, n_steps=8, scheme="rk4", basis="legendre")
    errs = [
        float(jnp.max(jnp.abs(FWD(smooth, x, n_steps=n, scheme="euler", basis="legendre") - ref)))
        for n in (4, 8)
    ]
    assert 1.5 < errs[0] / errs[1] < 2.7, errs


def test_refine_variables_preserves_the_function(trained):
    v, x = trained
    fine, basis = refine_variables(v, "piecewise_constant")
    assert basis == PiecewiseConstant(2 * K)
    for path, leaf in _block_leaves(v).items():
        np.testing.assert_array_equal(_block_leaves(fine)[path], np.repeat(leaf, 2, axis=0))
    # the same theta(t): same outputs with the same steps (each step reads the left cell)
    np.testing.assert_allclose(FWD(fine, x, n_steps=K), FWD(v, x), rtol=1e-12, atol=1e-12)
    hat, hat2 = refine_variables(compress(v, Hat(3)), Hat(3))
    assert hat2 == Hat(5)
    for leaf in _block_leaves(hat).values():
        np.testing.assert_allclose(leaf[1::2], 0.5 * (leaf[0:-1:2] + leaf[2::2]), rtol=1e-6)


def test_compress_rejects_bad_input(trained):
    v, _ = trained
    with pytest.raises(TypeError, match="Basis"):
        compress(v, "hat")
    with pytest.raises(ValueError, match="project"):
        compress(v, Hat(2), method="nearest")
    with pytest.raises(ValueError, match="K = 3"):
        compress(v, Hat(2), src_basis=PiecewiseConstant(3))
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
        methods=["euler"],
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
    assert sum(line.startswith("| yes") or line.startswith("| no") for line in table) == 3
    for png in ("accuracy_vs_K.png", "accuracy_vs_n_steps.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_variables_know_their_basis(trained):
    """compress/refine rewrite the tag; the model then evaluates the coefficients in that basis
    whatever its own attribute says, and an explicit contradicting basis is refused."""
    v, x = trained
    assert tagged_basis(v) == PiecewiseConstant(K)
    small = compress(v, Legendre(2), method="project")
    assert tagged_basis(small) == Legendre(2)
    assert set(small[TAG]) == {"stage0", "stage1", "stage2"}
    assert all(list(t) == ["legendre_K2"] for t in small[TAG].values())
    as_legendre = MODEL.clone(basis="legendre").apply(small, x)
    # MODEL says piecewise_constant; the tag makes it read the coefficients as Legendre
    np.testing.assert_allclose(FWD(small, x), as_legendre, rtol=1e-12, atol=1e-12)
    labels = np.asarray(jnp.argmax(as_legendre, -1))
    assert accuracy(MODEL, small, x, labels) == 1.0
    with pytest.raises(ValueError, match=r"Legendre\(K=2\).*Hat\(K=2\)"):
        FWD(small, x, basis="hat")
    with pytest.raises(ValueError, match=r"Legendre\(K=2\).*PiecewiseConstant\(K=2\)"):
        compress(small, Hat(2), src_basis="piecewise_constant")
    with pytest.raises(ValueError, match=r"Legendre\(K=2\).*PiecewiseConstant\(K=2\)"):
        refine_variables(small, "piecewise_constant")
    # a second compress reads the tag: Legendre(2) -> Legendre(3) is exact (nested spaces)
    again = compress(small, Legendre(3))
    np.testing.assert_allclose(
        FWD(again, x, n_steps=4), FWD(small, x, n_steps=4), rtol=1e-10, atol=1e-12
    )
    fine, b = refine_variables(small)
    assert b == tagged_basis(fine) == Legendre(4)


def test_tag_survives_jit_and_a_generic_save_and_load(trained):
    from flax import serialization

    v, x = trained
    small = compress(v, Hat(3))
    back = serialization.msgpack_restore(serialization.msgpack_serialize(small))
    assert tagged_basis(back) == Hat(3)
    np.testing.assert_array_equal(jax.jit(MODEL.apply)(back, x), FWD(small, x, basis="hat"))
    bad = {**back, TAG: {k: {"hat_K4": np.int32(4)} for k in back[TAG]}}
    with pytest.raises(ValueError, match="K = 4 but the coefficients have K = 3"):
        FWD(bad, x)
    untagged = {c: t for c, t in v.items() if c != TAG}
    with pytest.raises(ValueError, match="no basis tag"):
        compress(untagged, Hat(2))
    assert tagged_basis(compress(untagged, Hat(2), src_basis="piecewise_constant")) is None


def _residual_by_quadrature(v, src, dst, n=4000):
    """||theta - P theta||^2 / ||theta||^2 with P theta = argmin over span(dst), by sampling
    theta on a fine grid and a float64 least-squares fit (independent of the Gram matrices)."""
    t = (np.arange(n) + 0.5) / n
    Ps = np.stack([src._values_at(float(s), 1) for s in t])
    Pd = np.stack([dst._values_at(float(s), 1) for s in t])
    lost = total = 0.0
    for leaf in _block_leaves({"params": v["params"]}).values():
        theta = Ps @ leaf.reshape(src.K, -1)
        fit = Pd @ np.linalg.lstsq(Pd, theta, rcond=None)[0]
        lost, total = lost + np.sum((theta - fit) ** 2), total + np.sum(theta**2)
    return lost / total


def test_compression_residual_is_the_projection_error(trained):
    """r = ||theta - P theta||^2 / ||theta||^2 in closed form equals a fine-grid least-squares
    fit; about 1 - K_dst/K_src for independent layers, 0 for theta already in span(dst)."""
    v, x = trained
    dst = PiecewiseConstant(K // 2)
    r_indep = compression_residual(v, dst)
    assert r_indep == pytest.approx(_residual_by_quadrature(v, tagged_basis(v), dst), rel=1e-3)
    assert 0.3 < r_indep < 0.7  # independent N(0, 0.3^2) layers: about 1 - 2/4
    hat = Hat(3)
    assert compression_residual(v, hat) == pytest.approx(
        _residual_by_quadrature(v, tagged_basis(v), hat), rel=1e-3
    )
    smooth, _ = refine_variables(compress(v, dst))  # pairs of equal layers
    assert compression_residual(smooth, dst) < 1e-12
    np.testing.assert_allclose(
        FWD(compress(smooth, dst), x, n_steps=K), FWD(smooth, x), rtol=1e-10, atol=1e-12
    )
