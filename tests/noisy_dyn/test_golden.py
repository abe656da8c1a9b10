"""The current code reproduces the golden outputs recorded from the code before the
configuration became a pytree (``golden/make_golden.py``, run once on that code, float64).

Tolerances. Forward, loss and gradients, the theory functions and the attacks are checked to
``rtol = 1e-12`` (float64): where the operation order is unchanged they are bit-identical, but
the numeric fields of a config now enter a compiled program as values instead of constants
folded into it, which lets XLA fuse and order a few scalar products differently (a few ulp).
Training is chaotic in the parameters, so 2 epochs of Adam are checked to ``1e-9``; the model
files and the resumed checkpoint to ``1e-12``.
"""

import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import noisy_dyn as nd

from .golden import make_decay_golden as mdg
from .golden import make_golden as mg

HERE = Path(__file__).parent / "golden"
GOLDEN = np.load(HERE / "golden.npz")
RTOL = 1e-12


def _check(out: dict, rtol: float = RTOL, atol: float = 1e-14) -> None:
    assert out, "nothing was computed"
    for k, v in out.items():
        assert k in GOLDEN, f"{k} has no golden value"
        np.testing.assert_allclose(np.asarray(v), GOLDEN[k], rtol=rtol, atol=atol, err_msg=k)


def _prefixed(prefix: str) -> list[str]:
    return [k for k in GOLDEN if k.startswith(prefix)]


@pytest.mark.slow
def test_forward_loss_and_gradients_of_every_form_and_cell():
    out = mg.core_outputs(
        nd.apply, nd.trajectory, nd.final_state, nd.random.sample_noise, mg.config
    )
    theory = (
        "/regularizer",
        "/regularized_loss",
        "/contraction",
        "/lyapunov",
        "/margin",
        "/fgsm",
        "/pgd",
        "/deepfool",
        "perturb/",
        "model/",
        "fit/",
        "ensemble/",
        "study/",
    )
    expected = [k for k in GOLDEN if not any(t in k for t in theory)]
    assert sorted(out) == sorted(expected)
    _check(out)


@pytest.mark.slow
def test_theory_and_attacks():
    out = mg.theory_outputs(mg.config)
    assert len(out) == 3 * 9 + 3
    _check(out)


def test_old_model_files_load_with_the_same_logits():
    xs, _, _ = mg.inputs()
    for name in ("reference", "antisymmetric", "gru"):
        cfg, params = nd.load_model(HERE / f"model_{name}.npz")
        assert cfg == mg.config(name)
        _check({f"model/{name}/logits": nd.apply(params, xs, cfg)})


@pytest.mark.slow
def test_fit_ensemble_and_study(tmp_path):
    xs, ys, xv, yv = mg.digits()
    out = {}
    for name in ("ito", "reference"):
        cfg = mg.small(f"nrnn_{name}")
        _, p, h = nd.fit(cfg, (xs, ys), seed=1, validation=(xv, yv), **mg.FIT)
        out.update({f"fit/{name}/{k}": v for k, v in p.items()})
        out[f"fit/{name}/train_loss"] = h["train_loss"]
        out[f"fit/{name}/val_accuracy"] = h["val_accuracy"]
    cfg = mg.small("nrnn_ito")
    cfgs = [cfg.replace(sigma_add=0.0, sigma_mult=0.0), cfg.replace(sigma_add=0.1, sigma_mult=0.2)]
    _, p, h = nd.fit_ensemble(cfgs, (xs, ys), seeds=(3, 5), validation=(xv, yv), **mg.FIT)
    out.update({f"ensemble/{k}": v for k, v in p.items()})
    out["ensemble/train_loss"] = h["train_loss"]
    assert sorted(out) == sorted(_prefixed("fit/") + _prefixed("ensemble/"))
    _check(out, rtol=1e-9, atol=1e-12)
    rows = nd.study.robustness_study(p, cfgs, (3, 5), (xv, yv), key=jax.random.key(9),
                               perturbations={"gaussian": (0.3,), "fgsm": (0.05,)})  # fmt: skip
    # accuracies on 32 examples are multiples of 1/32: any change of a prediction shows
    np.testing.assert_array_equal([r["mean"] for r in rows], GOLDEN["study/mean"])


@pytest.mark.slow
def test_old_checkpoint_resumes_to_the_golden_run(tmp_path):
    xs, ys, xv, yv = mg.digits()
    run = tmp_path / "run"
    shutil.copytree(HERE / "ckpt", run)
    cfg = mg.small("nrnn_reference")
    _, p, h = nd.fit(cfg, (xs, ys), seed=1, validation=(xv, yv), checkpoint_dir=run, **mg.FIT)
    assert h["epoch"][-1] == 2
    _check({f"fit/reference/{k}": v for k, v in p.items()}, rtol=1e-12)


@pytest.mark.slow
def test_step_decay_explicit_regularizer_and_decaying_ensemble_reproduce_their_goldens():
    """The decay taking effect (epochs 3-4 at a tenth of the rate), training on the explicit
    regularizer and a decaying ensemble, spelled with today's objects, give the numbers the
    keywords ``decay_at``, ``decay_factor``, ``regularizer="explicit"``, ``lam`` gave before
    (``golden/make_decay_golden.py``): the same parameters bit for bit."""
    golden = np.load(HERE / "decay_golden.npz")
    out = mdg.outputs(
        fit=lambda *a, **k: nd.fit(*a, **k)[1:],  # the record's (params, history) of Trained
        fit_ensemble=lambda *a, **k: nd.fit_ensemble(*a, **k)[1:],
        decay=lambda at, factor: {"recipe": nd.AdamStepDecay(decay_at=at, factor=factor)},
        explicit=lambda lam: {"regularizer": nd.ExplicitRegularizer(lam=lam)},
    )
    assert sorted(out) == sorted(golden.files)
    np.testing.assert_array_equal(out["decay/learning_rate"], [1e-2, 1e-2, 1e-3, 1e-3])
    for k, v in out.items():
        np.testing.assert_array_equal(v, golden[k], err_msg=k)
