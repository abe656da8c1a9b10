"""Golden outputs of noisy_dyn, recorded once from the code before the configuration became a
pytree (commit e572207, float64).

Run once, on that code: ``python tests/noisy_dyn/golden/make_golden.py``. It writes
``golden.npz`` (forward, loss, gradients, theory, attacks, training, ensemble and study outputs),
three model files ``model_*.npz`` written by that version's ``save_model`` and one checkpoint
folder ``ckpt/`` of a 1-epoch ``fit``. ``test_golden.py`` checks that the current code reproduces
them. The calls are written against the old API; ``test_golden.py`` makes the same calls through
the current one (the only change of spelling is how a config is built and passed).
"""

import shutil
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import noisy_dyn as nd  # noqa: E402

HERE = Path(__file__).parent

# the namespaces of the current API; the flat top level of the code the goldens were recorded on
theory = getattr(nd, "theory", nd)
attacks = getattr(nd, "attacks", nd)
random = getattr(nd, "random", nd)
study = getattr(nd, "study", nd)
B, T, I, H, C = 5, 7, 3, 6, 4

# name -> (preset, overrides)
CASES = {
    "ito": ("nrnn_ito", {}),
    "ito_step": ("nrnn_ito", {"learn_step": True}),
    "ito_add": ("nrnn_ito", {"sigma_mult": 0.0}),
    "reference": ("nrnn_reference", {}),
    "reference_fixed": ("nrnn_reference", {"learn_step": False}),
    "lipschitz": ("lipschitz", {}),
    "antisymmetric": ("antisymmetric", {}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "ito_remat": ("nrnn_ito", {"remat": 3}),
}


def config(name):
    p, over = CASES[name]
    return nd.preset(p, input_size=I, num_classes=C, hidden_size=H, **over)


def inputs():
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    ys = jnp.asarray(rng.integers(0, C, size=B), jnp.int32)
    lengths = jnp.asarray([7, 3, 5, 1, 6], jnp.int32)
    return xs, ys, lengths


def params_of(name, cfg):
    p = nd.init_params(jax.random.key(11), cfg)
    if cfg.learn_step:  # a step vector that is not constant, so its gradient is exercised
        p["step"] = p["step"] * (1.0 + 0.1 * jnp.arange(H) / H)
    return p


def ce(logits, ys):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), ys[:, None], 1))


def core_outputs(apply, trajectory, final_state, sample_noise, cfg_of):
    """Forward, loss and gradient of every case (the same calls through either API)."""
    xs, ys, lengths = inputs()
    out = {}
    key = jax.random.key(3)
    for name in CASES:
        cfg = cfg_of(name)
        p = params_of(name, cfg)
        out[f"{name}/logits"] = apply(p, xs, cfg)
        out[f"{name}/logits_key"] = apply(p, xs, cfg, key=key)
        out[f"{name}/traj_key"] = trajectory(p, xs, cfg, key=key)
        out[f"{name}/final_key"] = final_state(p, xs, cfg, key=key)

        def loss(p, xs, cfg=cfg):
            return ce(apply(p, xs, cfg, key=key, lengths=lengths), ys)

        val, (gp, gx) = jax.value_and_grad(loss, argnums=(0, 1))(p, xs)
        out[f"{name}/loss"] = val
        for k, v in gp.items():
            out[f"{name}/grad/{k}"] = v
        out[f"{name}/grad_xs"] = gx

        def loss_traj(p, cfg=cfg):
            hs = trajectory(p, xs, cfg, key=key)
            return ce(hs[:, -1] @ p["V"].T + p["c"], ys)

        for k, v in jax.grad(loss_traj)(p).items():
            out[f"{name}/grad_traj/{k}"] = v
        # (the cell by name: a string before the config became a pytree, an object after)
        if getattr(cfg.cell, "name", cfg.cell) == "lipschitz" and (
            cfg.sigma_add > 0 or cfg.sigma_mult > 0
        ):
            noise = sample_noise(key, cfg, batch=B, time=T)
            out[f"{name}/noise_xi"] = noise.xi
            if noise.u is not None:
                out[f"{name}/noise_u"] = noise.u
            out[f"{name}/logits_noise"] = apply(p, xs, cfg, noise=noise)
    return out


def theory_outputs(cfg_of):
    xs, ys, lengths = inputs()
    out = {}
    for name in ("ito", "reference", "lipschitz"):
        cfg = cfg_of(name)
        p = params_of(name, cfg)
        out[f"{name}/regularizer"] = theory.explicit_regularizer(p, xs, ys, cfg)
        out[f"{name}/regularized_loss"] = theory.regularized_loss(p, xs, ys, cfg, 0.5)
        out[f"{name}/contraction"] = theory.contraction_rate(p, cfg)
        out[f"{name}/lyapunov"] = theory.lyapunov_exponents(p, xs[0], cfg, k=2)
        out[f"{name}/lyapunov_key"] = theory.lyapunov_exponents(
            p, xs[0], cfg, k=2, key=jax.random.key(5)
        )
        out[f"{name}/margin"] = theory.input_margin(p, xs, ys, cfg)
        out[f"{name}/fgsm"] = attacks.fgsm(p, xs, ys, cfg, 0.1)
        out[f"{name}/pgd"] = attacks.pgd(
            p, xs, ys, cfg, 0.1, steps=3, step_size=0.05, key=jax.random.key(6)
        )
        out[f"{name}/deepfool"] = attacks.deepfool(p, xs, cfg, max_iter=3)
    for kind in ("gaussian", "multiplicative", "salt_pepper"):
        out[f"perturb/{kind}"] = attacks.perturb(xs, kind, 0.1, key=jax.random.key(7))
    return out


def digits():
    s = nd.data.load_digits(seed=0)
    xs, ys = s.train[0][:64].astype(np.float64), s.train[1][:64]
    xv, yv = s.validation[0][:32].astype(np.float64), s.validation[1][:32]
    return xs, ys, xv, yv


def small(preset, **over):
    return nd.preset(preset, input_size=1, num_classes=10, hidden_size=8, dt=0.1, **over)


FIT = dict(epochs=2, batch_size=16, learning_rate=3e-3, progress=False)


def training_outputs(tmp):
    xs, ys, xv, yv = digits()
    out = {}
    for name, cfg in (("ito", small("nrnn_ito")), ("reference", small("nrnn_reference"))):
        p, h = nd.fit(cfg, (xs, ys), seed=1, validation=(xv, yv), **FIT)
        for k, v in p.items():
            out[f"fit/{name}/{k}"] = v
        out[f"fit/{name}/train_loss"] = np.asarray(h["train_loss"])
        out[f"fit/{name}/val_accuracy"] = np.asarray(h["val_accuracy"])
    cfg = small("nrnn_ito")
    cfgs = [cfg.replace(sigma_add=0.0, sigma_mult=0.0), cfg.replace(sigma_add=0.1, sigma_mult=0.2)]
    p, h = nd.fit_ensemble(cfgs, (xs, ys), seeds=(3, 5), validation=(xv, yv), **FIT)
    for k, v in p.items():
        out[f"ensemble/{k}"] = v
    out["ensemble/train_loss"] = np.asarray(h["train_loss"])
    rows = study.robustness_study(
        p,
        cfgs,
        (3, 5),
        (xv, yv),
        key=jax.random.key(9),
        perturbations={"gaussian": (0.3,), "fgsm": (0.05,)},
    )
    out["study/mean"] = np.asarray([r["mean"] for r in rows])
    out["study/diff"] = np.asarray([np.nan if r.get("diff") is None else r["diff"] for r in rows])
    # a checkpoint of the first epoch, to be resumed to the second by the current code
    ckpt = HERE / "ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    cfg = small("nrnn_reference")
    nd.fit(
        cfg,
        (xs, ys),
        seed=1,
        validation=(xv, yv),
        checkpoint_dir=tmp / "run",
        **{**FIT, "epochs": 1},
    )
    shutil.copytree(tmp / "run", ckpt)
    return out


def model_files():
    xs, _, _ = inputs()
    out = {}
    for name in ("reference", "antisymmetric", "gru"):
        cfg = config(name)
        p = params_of(name, cfg)
        nd.save_model(HERE / f"model_{name}.npz", p, cfg)
        out[f"model/{name}/logits"] = nd.apply(p, xs, cfg)
    return out


def main():
    import tempfile

    out = {}
    out.update(core_outputs(nd.apply, nd.trajectory, nd.final_state, random.sample_noise, config))
    out.update(theory_outputs(config))
    out.update(model_files())
    with tempfile.TemporaryDirectory() as tmp:
        out.update(training_outputs(Path(tmp)))
    arrays = {k: np.asarray(v) for k, v in out.items()}
    np.savez_compressed(HERE / "golden.npz", **arrays)
    print(len(arrays), "arrays,", sum(a.nbytes for a in arrays.values()), "bytes")


if __name__ == "__main__":
    main()
