"""Record two interrupted training runs of the code before the basis-expansion refactor: run
ONCE, on commit c60054b.

On that code an ODE block's coefficients were plain arrays with a leading K axis, the family a
tag collection ``variables["basis"][<block>]["<family>_K<K>"]``, and the models took
``n_basis=``, ``basis="<name>"``, ``method="<name>"``; ``fit`` took recipe strings. Each run
stops mid-way (``stop_after_steps``), leaving a checkpoint folder of that layout;
``runs_v0/<name>/`` holds the folder and ``runs_v0/finished.npz`` the parameters and losses of
the same runs carried to the end without interruption (``<name>|...`` the returned best
parameters, ``<name>|last|...`` the last ones). The ``sgd`` run refines at epoch 1 and
stops after it (its task meta records the refined ``n_basis``) and keeps its best parameters on
a validation split; the ``adam_rsqrt`` run is a tagger in a hat basis.
``tests/basis_ode/test_checkpoint_upgrade.py`` resumes the folders with today's API and checks
it ends where the uninterrupted runs ended. Kept for the record (from a worktree of c60054b)::

    git worktree add /tmp/old c60054b && cd /tmp/old
    PYTHONPATH=$PWD python <this file> <destination runs_v0 folder>
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent / "runs_v0"


def image_data():
    rng = np.random.default_rng(21)
    xs = rng.standard_normal((40, 8, 8, 1)).astype(np.float32)
    ys = (xs.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    return (xs[:32], ys[:32]), (xs[32:], ys[32:])


def tagging_data():
    rng = np.random.default_rng(22)
    toks = rng.integers(0, 12, size=(8, 6)).astype(np.int32)
    lengths = np.array([6, 5, 3, 6, 2, 4, 6, 1], np.int32)
    return toks, (toks % 3).astype(np.int32), lengths


SGD_RUN = dict(
    epochs=3, batch_size=8, learning_rate=0.05, seed=0, refine_at=(1,), checkpoint_every=2
)
ADAM_RUN = dict(epochs=3, batch_size=2, learning_rate=0.01, seed=0, checkpoint_every=3)


def flat(tree, prefix):
    return {
        prefix + jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def old_runs():
    """(name, model, data, keywords) in the API of c60054b."""
    import basis_ode as bo

    conv = bo.ConvODENet(num_classes=2, width=2, n_basis=1, basis="piecewise_constant")
    tagger = bo.ODETransformerTagger(vocab_size=12, num_tags=3, width=8, n_basis=2, basis="hat")
    train, val = image_data()
    sgd = dict(SGD_RUN, recipe="sgd", lr_drops=(2,), momentum=0.8, validation=val)
    adam = dict(ADAM_RUN, recipe="adam_rsqrt", warmup_steps=3)
    return [("sgd", conv, train, sgd), ("adam_rsqrt", tagger, tagging_data(), adam)]


def main(dest: Path = HERE) -> None:
    import basis_ode as bo

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    store = {}
    for name, model, data, kw in old_runs():
        kw = dict(kw, progress=False)
        done = dest / f"{name}-uninterrupted"
        variables, hist = bo.fit(model, data, checkpoint_dir=done, **kw)
        store.update(flat(variables, f"{name}|"))
        last, _ = bo.fit(model, data, checkpoint_dir=done, return_params="last", **kw)
        store.update(flat(last, f"{name}|last|"))
        shutil.rmtree(done)
        store[f"{name}|train_loss"] = np.asarray(hist["train_loss"])
        store[f"{name}|learning_rate"] = np.asarray(hist["learning_rate"])
        store[f"{name}|K"] = np.asarray(hist["K"])
        stop = hist["global_step"] // 2 + 1
        bo.fit(model, data, checkpoint_dir=dest / name, stop_after_steps=stop, keep=1, **kw)
        store[f"{name}|stopped_at"] = np.asarray(stop)
    for lock in dest.rglob(".trainkit.lock*"):
        lock.unlink()
    np.savez(dest / "finished.npz", **store)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
