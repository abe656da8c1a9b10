"""Two-epoch runs of ``noisy_dyn.fit`` and ``basis_ode.fit`` whose outputs are stored as goldens.

``python -m tests.trainkit._golden_runs`` (re)writes ``tests/trainkit/golden/fit_runs.npz``;
run it only when a change of the numbers is intended, and say so in the commit. It runs with
float64 enabled, as the test session does (``tests/conftest.py``).
Each run uses validation, checkpoints every 3 steps into a temporary folder, a log file and a
callback, so that every shared training option travels from ``fit`` to the loop.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

GOLDEN = Path(__file__).with_name("golden") / "fit_runs.npz"


def _leaves(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


def _previous_layout(variables: Any) -> Any:
    """basis_ode variables in the layout the golden file was recorded in: every
    ``BasisExpansion`` as its plain coefficient dict, plus the collection ``"basis"`` of the
    earlier tags ``{block: {"<family>_K<K>": K}}``, derived from each block's expansion (so the
    comparison checks family and K too)."""
    import basis_ode

    def plain(tree: Any) -> Any:
        if isinstance(tree, basis_ode.BasisExpansion):
            return tree.coeffs
        return {k: plain(v) for k, v in tree.items()} if isinstance(tree, dict) else tree

    tags = {
        block: {f"{e.basis.name}_K{e.K}": np.int32(e.K)}
        for block, node in variables["params"].items()
        if isinstance(e := node.get("basis_coeffs"), basis_ode.BasisExpansion)
    }
    return {**{c: plain(t) for c, t in variables.items()}, "basis": tags}


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``arrays`` (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def noisy_run(folder: Path, **how: Any) -> dict[str, np.ndarray]:
    """A Noisy RNN (Ito preset, H = 8, T = 16) on random data: 2 epochs of 4 steps."""
    import noisy_dyn

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(80, 16, 1)).astype(np.float32)
    ys = rng.integers(0, 3, size=80)
    base = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=3)
    cfg = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=3, hidden_size=8,
                           dt=base.dt * 784 / 16)  # fmt: skip
    _, params, hist = noisy_dyn.fit(
        cfg, (xs[:64], ys[:64]), learning_rate=1e-2, validation=(xs[64:], ys[64:]),
        callback=lambda epoch, p: {"norm_U": float(np.linalg.norm(p["U"]))},
        checkpoint_dir=folder / "ckpt", log_path=folder / "log.jsonl", **how,
    )  # fmt: skip
    out = _leaves(params, "noisy/params")
    out["noisy/logits"] = np.asarray(noisy_dyn.apply(params, xs[64:], cfg))
    for key in ("train_loss", "val_loss", "val_accuracy", "norm_U"):
        out[f"noisy/history/{key}"] = np.asarray(hist[key], np.float64)
    return out


def basis_run(folder: Path, **how: Any) -> dict[str, np.ndarray]:
    """A ConvODENet (width 4, K = 1 refined to 2 at epoch 1) on 64 digits: 2 epochs of 4 steps."""
    import basis_ode

    splits = basis_ode.data.load_digits(seed=0)
    (xs, ys), (xv, yv) = splits.train, splits.validation
    model = basis_ode.ConvODENet(num_classes=10, width=4, basis=basis_ode.PiecewiseConstant(1))
    refined, variables, hist = basis_ode.fit(
        model, (xs[:64], ys[:64]), learning_rate=0.05, validation=(xv[:32], yv[:32]),
        refine_at=(1,), callback=lambda epoch, v: {"seen": float(epoch)},
        checkpoint_dir=folder / "ckpt", log_path=folder / "log.jsonl", **how,
    )  # fmt: skip
    out = _leaves(_previous_layout(variables), "basis/variables")
    out["basis/logits"] = np.asarray(refined.apply(variables, xv[:32], train=False))
    for key in ("train_loss", "val_loss", "val_accuracy", "seen"):
        out[f"basis/history/{key}"] = np.asarray(hist[key], np.float64)
    return out


OPTIONS = dict(epochs=2, batch_size=16, seed=3, checkpoint_every=3, keep=2, progress=False)
"""The shared training options of both golden runs (``checkpoint_every`` every 3 steps)."""


def runs(*, old_names: bool = False, **how: Any) -> dict[str, np.ndarray]:
    """Both runs, each in a fresh temporary folder; ``how`` gives the training options.

    ``old_names``: pass ``checkpoint_every`` to ``noisy_dyn.fit`` under the name it had before
    the options were shared (``checkpoint_every_steps``, still accepted).
    """
    out = {}
    for run in (noisy_run, basis_run):
        kw = dict(how)
        if old_names and run is noisy_run and "checkpoint_every" in kw:
            kw["checkpoint_every_steps"] = kw.pop("checkpoint_every")
        with tempfile.TemporaryDirectory() as tmp:
            out.update(run(Path(tmp), **kw))
    return out


if __name__ == "__main__":
    import sys

    jax.config.update("jax_enable_x64", True)  # as tests/conftest.py sets for the test session

    arrays = runs(old_names="--old-names" in sys.argv, **OPTIONS)
    if "--check" in sys.argv:
        print(checksum(arrays))
    else:
        GOLDEN.parent.mkdir(exist_ok=True)
        np.savez(GOLDEN, **arrays)
        print(f"{GOLDEN}: {len(arrays)} arrays, sha256 {checksum(arrays)}")
