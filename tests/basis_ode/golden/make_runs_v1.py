"""Record two interrupted training runs of the recipe-string API: run ONCE, on the code before
learning-rate recipes became objects.

Written and run on commit 7f7a41e (``fit(..., recipe="sgd" | "adam_rsqrt", lr_drops=...,
warmup_steps=...)``). Each run stops mid-way (``stop_after_steps``), leaving a checkpoint folder
whose fingerprint names the recipe in that day's format; ``runs_v1/<name>/`` holds the folder and
``runs_v1/finished.npz`` the parameters and losses of the same runs carried to the end without
interruption. ``tests/basis_ode/test_recipes.py`` resumes the folders with today's recipe
objects and checks it ends where the uninterrupted runs ended. Kept for the record::

    python tests/basis_ode/golden/make_runs_v1.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import basis_ode as bo  # noqa: E402

HERE = Path(__file__).resolve().parent / "runs_v1"


def image_data():
    rng = np.random.default_rng(11)
    xs = rng.standard_normal((32, 8, 8, 1)).astype(np.float32)
    return xs, (xs.mean(axis=(1, 2, 3)) > 0).astype(np.int32)


def tagging_data():
    rng = np.random.default_rng(12)
    toks = rng.integers(0, 12, size=(8, 6)).astype(np.int32)
    lengths = np.array([6, 5, 3, 6, 2, 4, 6, 1], np.int32)
    return toks, (toks % 3).astype(np.int32), lengths


SGD_RUN = dict(
    epochs=3, batch_size=8, learning_rate=0.05, seed=0, refine_at=(1,), checkpoint_every=2
)
ADAM_RUN = dict(epochs=3, batch_size=2, learning_rate=0.01, seed=0, checkpoint_every=3)


def runs():
    """(name, model, data, options, old recipe keywords), the runs recorded."""
    conv = bo.ConvODENet(num_classes=2, width=2, basis=bo.PiecewiseConstant(1))
    tagger = bo.ODETransformerTagger(vocab_size=12, num_tags=3, width=8, basis=bo.Hat(2))
    return [
        ("sgd", conv, image_data(), SGD_RUN, dict(recipe="sgd", lr_drops=(2,), momentum=0.8)),
        ("adam_rsqrt", tagger, tagging_data(), ADAM_RUN, dict(recipe="adam_rsqrt", warmup_steps=3)),
    ]


def flat(tree, prefix):
    return {
        prefix + jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    store = {}
    for name, model, data, options, old in runs():
        kw = dict(options, progress=False, **old)
        variables, hist = bo.fit(model, data, **kw)
        store.update(flat(variables, f"{name}|"))
        store[f"{name}|train_loss"] = np.asarray(hist["train_loss"])
        store[f"{name}|learning_rate"] = np.asarray(hist["learning_rate"])
        stop = hist["global_step"] // 2 + 1
        bo.fit(model, data, checkpoint_dir=HERE / name, stop_after_steps=stop, keep=1, **kw)
        store[f"{name}|stopped_at"] = np.asarray(stop)
    np.savez(HERE / "finished.npz", **store)


if __name__ == "__main__":
    main()
