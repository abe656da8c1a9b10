"""The code against outputs recorded before the basis-expansion refactor (golden/make_golden.py).

``golden/golden.npz`` holds init, forward (train and eval, stateful normalisation), refinement,
compression to smaller K by projection and by interpolation for all six families, a 2-epoch fit,
the tagger and the learning-rate schedules, as computed by the code of that day (seeded, float64
on, float32 parameters). ``golden/model_v0.npz`` is a model file written by that day's
``save_model``, with the basis still name-encoded in a tag collection; it must keep loading and
give the logits it gave. Since then the coefficients are :class:`basis_ode.BasisExpansion` nodes
(their paths gain the attribute ``coeffs``, dropped here to compare with the old paths) and the
tag collection is gone.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import basis_ode as bo

from ._rounding import rounding_only

HERE = Path(__file__).resolve().parent / "golden"
FAMILIES = ("piecewise_constant", "hat", "piecewise_linear", "legendre", "chebyshev", "fourier")
K = 4
RTOL, ATOL = 2e-5, 2e-6


@pytest.fixture(scope="module")
def golden():
    """{key: array} unpacked from golden.npz (make_golden.save_packed's layout)."""
    with np.load(HERE / "golden.npz") as f:
        index = json.loads(bytes(f["index"]).decode())
        data = {k: f[k] for k in f.files if k != "index"}
    out = {}
    for key, dt, offset, shape in index:
        flat_ = data["data" + dt.replace("<", "_").replace("|", "_")]
        size = int(np.prod(shape, dtype=np.int64))
        out[key] = flat_[offset : offset + size].reshape(shape)
    return out


def flat(tree, prefix=""):
    """{path: array} with the old variable paths: keys joined by '/', the tag collection and the
    expansions' attribute names left out."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        keys = [str(p.key) for p in path if hasattr(p, "key")]
        if keys[0] == "basis":
            continue
        out[prefix + "/".join(keys)] = np.asarray(leaf)
    return out


def same(golden, got: dict, prefix: str, rtol=RTOL, atol=ATOL):
    want = {k: v for k, v in golden.items() if k.startswith(prefix)}
    want = {k: v for k, v in want.items() if k[len(prefix) :] in {p[len(prefix) :] for p in got}}
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:5]
    for k, v in want.items():
        if rounding_only(k) and "_fit|" in prefix:  # trained: rounding noise (_rounding.py)
            continue
        np.testing.assert_allclose(got[k], v, rtol=rtol, atol=atol, err_msg=k)


def close(got, want, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def test_odeint_every_scheme(golden):
    coeffs = {"w": jnp.asarray(np.random.default_rng(3).standard_normal((4, 5)))}
    h0 = jnp.linspace(-1.0, 1.0, 5)

    def field(theta, h):
        return jnp.tanh(theta["w"] * h) - 0.5 * h

    for scheme in ("euler", "midpoint", "rk4", "rk4_38", "tsit5", "dopri5"):
        got = bo.odeint(field, h0, coeffs, bo.Hat(4), n_steps=6, method=bo.scheme_by_name(scheme))
        close(got, golden[f"odeint|{scheme}"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fam", FAMILIES)
def test_conv_init_forward_compress_refine(golden, fam):
    x = jnp.asarray(golden["input|images"])
    model = bo.ConvODENet(num_classes=3, width=2, basis=bo.basis_by_name(fam, K), method=bo.RK4)
    v = model.init(jax.random.key(0), x, train=False)
    same(golden, flat(v, f"init|{fam}|"), f"init|{fam}|", rtol=1e-6, atol=1e-7)
    close(model.apply(v, x, train=False), golden[f"eval|{fam}"])
    close(
        model.apply(v, x, train=False, n_steps=7, scheme=bo.MIDPOINT),
        golden[f"eval_n7_midpoint|{fam}"],
    )
    logits, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
    close(logits, golden[f"train|{fam}"])
    same(golden, flat(upd, f"train_stats|{fam}|"), f"train_stats|{fam}|")
    for method in (bo.Project(), bo.Interpolate()):
        for dst in (bo.basis_by_name(fam, 2), bo.Hat(3)):
            small = bo.compress(v, dst, method=method)
            case = f"compress_{method.name}_{dst.name}{dst.K}|{fam}"
            same(golden, flat(small, case + "|"), case + "|")
            assert bo.basis_of(small) == dst
            close(model.apply(small, x, train=False), golden[case + "|logits"])
    fine, fine_basis = bo.refine_variables(v)
    same(golden, flat(fine, f"refine|{fam}|"), f"refine|{fam}|")
    assert fine_basis.K == int(golden[f"refine|{fam}|K"])
    close(model.apply(fine, x, train=False, n_steps=2 * K), golden[f"refine|{fam}|logits"])


def test_two_epoch_fit_with_refinement(golden):
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((32, 8, 8, 1)).astype(np.float32)
    ys = (xs.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    model = bo.ConvODENet(num_classes=2, width=2, basis=bo.PiecewiseConstant(1))
    refined, fitted, hist = bo.fit(
        model, (xs, ys), epochs=2, batch_size=8, learning_rate=0.05, seed=0,
        refine_at=(1,), recipe=bo.SGDRecipe(lr_drops=(1,)), progress=False,
    )  # fmt: skip
    same(golden, flat(fitted, "fit|"), "fit|", rtol=1e-4, atol=1e-5)
    close(hist["train_loss"], golden["fit|train_loss"], rtol=1e-5)
    x = jnp.asarray(golden["input|images"])
    close(refined.apply(fitted, x, train=False), golden["fit|logits"], rtol=1e-4, atol=1e-5)


def test_tagger(golden):
    toks, lengths = golden["input|tokens"], golden["input|lengths"]
    mask = np.arange(toks.shape[1])[None, :] < lengths[:, None]
    tagger = bo.ODETransformerTagger(vocab_size=12, num_tags=3, width=8, basis=bo.Hat(2))
    tv = tagger.init(jax.random.key(1), toks, mask=mask, train=False)
    same(golden, flat(tv, "tagger_init|"), "tagger_init|", rtol=1e-6, atol=1e-7)
    close(tagger.apply(tv, toks, mask=mask, train=False), golden["tagger|logits"])
    close(
        tagger.apply(tv, toks, mask=mask, train=False, n_steps=5, scheme=bo.RK4),
        golden["tagger|logits_rk4_n5"],
    )
    small = bo.compress(tv, bo.PiecewiseConstant(1))
    close(
        tagger.apply(small, toks, mask=mask),
        golden["tagger|compressed_logits"],
    )
    tags = (toks % 3).astype(np.int32)
    _, tfit, thist = bo.fit(
        tagger, (toks, tags, lengths), epochs=2, batch_size=2, learning_rate=0.01, seed=0,
        recipe=bo.AdamRsqrtRecipe(warmup_steps=3), progress=False,
    )  # fmt: skip
    same(golden, flat(tfit, "tagger_fit|"), "tagger_fit|", rtol=1e-4, atol=1e-5)
    close(thist["train_loss"], golden["tagger_fit|train_loss"], rtol=1e-5)
    close(thist["learning_rate"], golden["tagger_fit|learning_rate"], rtol=1e-6)


def test_learning_rate_schedules(golden):
    steps = np.arange(30)
    sgd_lr = bo.SGDRecipe(lr_drops=(2, 4)).schedule(0.1, steps_per_epoch=5)
    rsq_lr = bo.recipe_by_name("adam_rsqrt", warmup_steps=7).schedule(0.1, steps_per_epoch=5)
    close([float(sgd_lr(s)) for s in steps], golden["schedule|sgd"], rtol=1e-6)
    close([float(rsq_lr(s)) for s in steps], golden["schedule|adam_rsqrt"], rtol=1e-6)


def test_model_file_of_the_old_format_loads_and_gives_its_logits(golden, tmp_path):
    x = jnp.asarray(golden["input|images"])
    model, v = bo.load_model(HERE / "model_v0.npz")
    assert (type(model).__name__, model.basis, model.method) == (
        "ConvODENet",
        bo.Hat(3),
        bo.MIDPOINT,
    )
    assert "basis" not in v and bo.basis_of(v) == bo.Hat(3)
    # written again in today's format, it still gives the same logits
    model, v = bo.load_model(bo.save_model(tmp_path / "again.npz", model, v))
    assert bo.basis_of(v) == bo.Hat(3)
    # float32 logits of size ~1: 1e-6 is a few units in the last place (1.5e-7 seen here)
    close(model.apply(v, x, train=False), golden["model_v0|logits"], rtol=1e-6, atol=1e-6)
    close(
        model.apply(v, x, train=False, n_steps=6, scheme=bo.RK4),
        golden["model_v0|logits_rk4_n6"],
        rtol=1e-6,
        atol=1e-6,
    )
