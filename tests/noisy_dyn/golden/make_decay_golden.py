"""Golden outputs of the paths of ``noisy_dyn.fit`` the first goldens do not reach: the step
decay of the learning rate taking effect, the explicit regularizer as the training loss, and an
ensemble whose learning rate decays. Recorded once (float64) from the code before the decay and
the regularizer became objects (commit cce118d), with the keywords of that code
(``decay_at``, ``decay_factor``, ``regularizer="explicit"``, ``lam``).

Run once, on that code: ``python tests/noisy_dyn/golden/make_decay_golden.py`` writes
``decay_golden.npz``; ``test_golden.py`` checks that the current code reproduces it through the
current spelling (``recipe=AdamStepDecay(...)``, ``regularizer=ExplicitRegularizer(...)``).
"""

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import noisy_dyn as nd  # noqa: E402

HERE = Path(__file__).parent
# 4 epochs of 4 steps; the decay after ceil(0.5 * 4) = 2 epochs (global step 8)
DECAY = dict(epochs=4, batch_size=16, learning_rate=1e-2, progress=False)


def digits():
    s = nd.data.load_digits(seed=0)
    xs, ys = s.train[0][:64].astype(np.float64), s.train[1][:64]
    xv, yv = s.validation[0][:32].astype(np.float64), s.validation[1][:32]
    return xs, ys, xv, yv


def small(preset, **over):
    return nd.preset(preset, input_size=1, num_classes=10, hidden_size=6, dt=0.1, **over)


def outputs(fit=nd.fit, fit_ensemble=nd.fit_ensemble, decay=None, explicit=None):
    """Every recorded array; ``decay(at, factor)`` and ``explicit(lam)`` give the keywords of
    the code under test (the old keywords by default)."""
    decay = decay or (lambda at, factor: {"decay_at": at, "decay_factor": factor})
    explicit = explicit or (lambda lam: {"regularizer": "explicit", "lam": lam})
    xs, ys, xv, yv = digits()
    xs, xv = xs[:, ::4], xv[:, ::4]  # 16 steps
    out = {}
    cfg = small("nrnn_ito")
    p, h = fit(cfg, (xs, ys), seed=2, validation=(xv, yv), **decay(0.5, 0.1), **DECAY)
    out.update({f"decay/{k}": v for k, v in p.items()})
    out.update({f"decay/{k}": np.asarray(h[k]) for k in ("learning_rate", "train_loss")})
    p, h = fit(cfg, (xs, ys), seed=2, **explicit(0.5), **decay(0.75, 0.3), **DECAY)
    out.update({f"explicit/{k}": v for k, v in p.items()})
    out.update({f"explicit/{k}": np.asarray(h[k]) for k in ("learning_rate", "train_loss")})
    cfgs = [cfg.replace(sigma_add=0.0, sigma_mult=0.0), cfg.replace(sigma_add=0.1)]
    p, h = fit_ensemble(cfgs, (xs, ys), seeds=(3, 5), **decay(0.5, 0.2), **DECAY)
    out.update({f"ensemble/{k}": v for k, v in p.items()})
    out.update({f"ensemble/{k}": np.asarray(h[k]) for k in ("learning_rate", "train_loss")})
    return {k: np.asarray(v) for k, v in out.items()}


if __name__ == "__main__":
    arrays = outputs()
    np.savez(HERE / "decay_golden.npz", **arrays)
    print(f"{len(arrays)} arrays written; learning rates {arrays['decay/learning_rate']}")
