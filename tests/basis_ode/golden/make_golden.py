"""Record basis_ode's golden outputs: run ONCE, on the code before the basis-expansion refactor.

Written and run on the commit "basis_ode golden outputs: ..." (the code where the basis still
travelled as a name-encoded tag ``variables["basis"][<block>]["<family>_K<K>"]``). Its outputs,
``golden.npz`` and ``model_v0.npz`` (a model file in that day's format, written by that day's
``save_model``), are the fixed reference of ``tests/basis_ode/test_golden.py``: later code must
reproduce them, it must never regenerate them. Kept for the record of how they were made::

    python tests/basis_ode/golden/make_golden.py

Everything is seeded (``jax.random.key``, ``numpy.random.default_rng``), float64 is on (as in
the test session, ``tests/conftest.py``), parameters are float32 (the models' default).
Arrays are stored under ``"<case>|<collection>/<path>"`` with the old variable paths (the tag
collection left out: it is what the refactor removes).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import basis_ode as bo  # noqa: E402

HERE = Path(__file__).resolve().parent
FAMILIES = ("piecewise_constant", "hat", "piecewise_linear", "legendre", "chebyshev", "fourier")
K = 4


def images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 1)).astype(np.float32)


def tokens(n=4, length=7, seed=1):
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, 12, size=(n, length)).astype(np.int32)
    lengths = np.array([7, 5, 3, 6][:n], dtype=np.int32)
    return toks, lengths


def flat(tree, prefix=""):
    """{path: array}: every leaf, keys joined by '/', the tag collection left out."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        keys = [str(getattr(p, "key", getattr(p, "name", p))) for p in path]
        if keys[0] == "basis":
            continue
        out[prefix + "/".join(keys)] = np.asarray(leaf)
    return out


def main() -> None:
    store: dict[str, np.ndarray] = {}
    x = jnp.asarray(images())
    store["input|images"] = np.asarray(x)

    # -- odeint: every fixed-step scheme and an adaptive solve ---------------------------------
    coeffs = {"w": jnp.asarray(np.random.default_rng(3).standard_normal((4, 5)))}
    h0 = jnp.linspace(-1.0, 1.0, 5)

    def field(theta, h):
        return jnp.tanh(theta["w"] * h) - 0.5 * h

    for scheme in ("euler", "midpoint", "rk4", "rk4_38", "tsit5", "dopri5"):
        store[f"odeint|{scheme}"] = np.asarray(
            bo.odeint(field, h0, coeffs, bo.Hat(4), n_steps=6, method=scheme)
        )

    # -- conv models: init, forward train/eval, for every family --------------------------------
    for fam in FAMILIES:
        model = bo.ConvODENet(num_classes=3, width=2, n_basis=K, basis=fam, method="rk4")
        v = model.init(jax.random.key(0), x, train=False)
        store.update(flat(v, f"init|{fam}|"))
        store[f"eval|{fam}"] = np.asarray(model.apply(v, x, train=False))
        store[f"eval_n7_midpoint|{fam}"] = np.asarray(
            model.apply(v, x, train=False, n_steps=7, scheme="midpoint")
        )
        logits, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
        store[f"train|{fam}"] = np.asarray(logits)
        store.update(flat(upd, f"train_stats|{fam}|"))
        # compression to K = 2 of the same family and to Hat(3), both methods
        for method in ("project", "interpolate"):
            for dst in (bo.basis_by_name(fam, 2), bo.Hat(3)):
                small = bo.compress(v, dst, method=method)
                case = f"compress_{method}_{dst.name}{dst.K}|{fam}"
                store.update(flat(small, case + "|"))
                store[case + "|logits"] = np.asarray(
                    model.apply(small, x, train=False, basis=dst.name)
                )
        # refinement: the same function with n_steps scaled with the cells
        fine, fine_basis = bo.refine_variables(v)
        store.update(flat(fine, f"refine|{fam}|"))
        store[f"refine|{fam}|K"] = np.asarray(fine_basis.K)
        store[f"refine|{fam}|logits"] = np.asarray(model.apply(fine, x, train=False, n_steps=2 * K))

    # -- a 2-epoch fit with a refinement (sgd recipe, step schedule) -----------------------------
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((32, 8, 8, 1)).astype(np.float32)
    ys = (xs.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    model = bo.ConvODENet(num_classes=2, width=2, n_basis=1, basis="piecewise_constant")
    fitted, hist = bo.fit(
        model, (xs, ys), epochs=2, batch_size=8, learning_rate=0.05, seed=0,
        refine_at=(1,), lr_drops=(1,), progress=False,
    )  # fmt: skip
    store.update(flat(fitted, "fit|"))
    store["fit|train_loss"] = np.asarray(hist["train_loss"])
    store["fit|logits"] = np.asarray(hist["model"].apply(fitted, x, train=False))

    # -- the tagger: init, forward, a 2-epoch fit (adam_rsqrt), compression -----------------------
    toks, lengths = tokens()
    mask = np.arange(toks.shape[1])[None, :] < lengths[:, None]
    store["input|tokens"], store["input|lengths"] = toks, lengths
    tagger = bo.ODETransformerTagger(vocab_size=12, num_tags=3, width=8, n_basis=2, basis="hat")
    tv = tagger.init(jax.random.key(1), toks, mask=mask, train=False)
    store.update(flat(tv, "tagger_init|"))
    store["tagger|logits"] = np.asarray(tagger.apply(tv, toks, mask=mask, train=False))
    store["tagger|logits_rk4_n5"] = np.asarray(
        tagger.apply(tv, toks, mask=mask, train=False, n_steps=5, scheme="rk4")
    )
    small = bo.compress(tv, bo.PiecewiseConstant(1))
    store["tagger|compressed_logits"] = np.asarray(
        tagger.apply(small, toks, mask=mask, basis="piecewise_constant")
    )
    tags = (toks % 3).astype(np.int32)
    tfit, thist = bo.fit(
        tagger, (toks, tags, lengths), epochs=2, batch_size=2, learning_rate=0.01, seed=0,
        recipe="adam_rsqrt", warmup_steps=3, progress=False,
    )  # fmt: skip
    store.update(flat(tfit, "tagger_fit|"))
    store["tagger_fit|train_loss"] = np.asarray(thist["train_loss"])
    store["tagger_fit|learning_rate"] = np.asarray(thist["learning_rate"])

    # -- learning-rate recipes: the schedules' values on steps 0..29 ------------------------------
    steps = np.arange(30)
    _, sgd_lr = bo.make_optimizer("sgd", learning_rate=0.1, steps_per_epoch=5, lr_drops=(2, 4))
    _, rsq_lr = bo.make_optimizer("adam_rsqrt", learning_rate=0.1, steps_per_epoch=5,
                                  warmup_steps=7)  # fmt: skip
    store["schedule|sgd"] = np.asarray([float(sgd_lr(s)) for s in steps])
    store["schedule|adam_rsqrt"] = np.asarray([float(rsq_lr(s)) for s in steps])

    # -- a model file of today's format (name-encoded tag), and the logits it gives ------------
    model = bo.ConvODENet(num_classes=3, width=2, n_basis=3, basis="hat", method="midpoint")
    v = model.init(jax.random.key(2), x, train=False)
    bo.save_model(HERE / "model_v0.npz", model, v)
    m2, v2 = bo.load_model(HERE / "model_v0.npz")
    store["model_v0|logits"] = np.asarray(m2.apply(v2, x, train=False))
    store["model_v0|logits_rk4_n6"] = np.asarray(
        m2.apply(v2, x, train=False, n_steps=6, scheme="rk4")
    )

    save_packed(HERE / "golden.npz", store)
    print(f"{len(store)} arrays, {sum(a.nbytes for a in store.values())} bytes")


def save_packed(path: Path, store: dict[str, np.ndarray]) -> None:
    """One concatenated vector per dtype plus a JSON index ``[key, dtype, offset, shape]``
    (thousands of small members would cost more in zip headers than in data)."""
    index, packs = [], {}
    for k in sorted(store):
        a = np.asarray(store[k])
        parts = packs.setdefault(a.dtype.str, [])
        index.append([k, a.dtype.str, int(sum(x.size for x in parts)), list(a.shape)])
        parts.append(a.ravel())
    out = {"index": np.frombuffer(json.dumps(index).encode(), np.uint8)}
    for dt, parts in packs.items():
        out["data" + dt.replace("<", "_").replace("|", "_")] = np.concatenate(parts)
    np.savez_compressed(path, **out)


if __name__ == "__main__":
    main()
