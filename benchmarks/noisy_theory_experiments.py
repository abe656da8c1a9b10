"""Experiments on the theory of Noisy RNNs (docs/derivations.md), CPU-sized, each under two minutes.

1. ``stabilization``: stochastic stabilization. A Lipschitz RNN whose drift has a positive
   one-sided Lipschitz constant ``mu`` (unstable without noise). Its top Lyapunov exponent is
   estimated (QR method, ``noisy_dyn.theory.lyapunov_exponents``) as Ito multiplicative noise grows,
   for a *scalar* Brownian motion (one normal per step shared by all units: the setting of the
   derived bound ``mu - sigma_mult^2 / 2``) and for the library's *per-unit* noise (one Brownian
   motion per unit, worst-case bound ``mu + sigma_mult^2 (1/2 - 1/H)``). Scalar noise stabilises the
   system once ``sigma_mult^2 / 2 > mu``; per-unit noise, with the strongly rotating (skew) ``A`` of
   the Lipschitz cell, does not.
2. ``training``: a Noisy RNN (Ito form) and its deterministic twin (same initialisation and data
   order, noise off) trained on sklearn digits (64-step pixel sequences, 8 x 8 row-major, scaled
   to [0, 1]); optionally (``--explicit``, slower) a third model trained deterministically with
   the explicit regularizer as a penalty (``regularizer=ExplicitRegularizer(lam=1.0)``). After
   every epoch: ``mu``, the mean finite-time top Lyapunov exponent along test sequences, the mean
   input margin (logit margin over its input gradient norm) on test examples, the mean explicit
   regularizer (at the NRNN's noise levels) and the test accuracy.

Each writes ``benchmarks/results/<name>.json`` and ``<name>.png``. Run::

    python -m benchmarks.noisy_theory_experiments stabilization
    python -m benchmarks.noisy_theory_experiments training
    python -m benchmarks.noisy_theory_experiments all
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm import tqdm

import noisy_dyn
from noisy_dyn.theory import PerUnitBrownian, ScalarBrownian

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _write(name: str, payload: dict[str, Any], fig: Any, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2))
    fig.savefig(out_dir / f"{name}.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out_dir / name}.json and .png")


# ----------------------------------------------------------------------------------------------
# 1. stochastic stabilization


def unstable_params(
    hidden: int, *, mu_target: float, skew: float, w_norm: float, seed: int
) -> tuple[dict, noisy_dyn.NoisyRNNConfig]:
    """Parameters with ``mu = mu_target``: ``sym A = lambda I``, a strong skew part, small ``W``.

    ``A = beta (M - M^T) + (1 - beta)(M + M^T) - gamma I`` with ``beta = 0.75``, ``gamma = 0``
    and ``M = c I + S`` with ``S`` skew-symmetric of scale ``skew``: ``sym A = 2 (1 - beta) c I``
    (uniform growth) and ``A``'s skew part ``2 beta S`` rotates. ``W`` has ``||W||_2 = w_norm``
    and ``c`` makes ``mu = 2 (1 - beta) c + w_norm = mu_target``; ``b = 0``, so that ``h = 0`` is
    an equilibrium under zero input.
    """
    cfg = noisy_dyn.NoisyRNNConfig(1, hidden, 2, dt=0.01, gamma_a=0.0, gamma_w=0.0)
    params = noisy_dyn.init_params(jax.random.key(seed), cfg)
    kr, kw = jax.random.split(jax.random.key(seed + 1))
    R = jax.random.normal(kr, (hidden, hidden))
    S = skew * (R - R.T) / (2 * np.sqrt(hidden))
    M_W = jax.random.normal(kw, (hidden, hidden))
    W = noisy_dyn.lipschitz_matrix(M_W, cfg.beta, 0.0)
    M_W = M_W * (w_norm / float(jnp.linalg.norm(W, ord=2)))
    c = (mu_target - w_norm) / (2 * (1 - cfg.beta))
    params = {**params, "M_A": S + c * jnp.eye(hidden), "M_W": M_W, "b": 0 * params["b"]}
    return params, cfg


def stabilization(
    *,
    hidden: int = 8,
    mu_target: float = 0.5,
    skew: float = 1.5,
    w_norm: float = 0.1,
    sigmas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0),
    steps: int = 20000,
    burn_in: int = 2000,
    seeds: int = 3,
    out_dir: Path = RESULTS,
) -> dict[str, Any]:
    """Top Lyapunov exponent against ``sigma_mult``, scalar vs per-unit Brownian noise."""
    params, base = unstable_params(hidden, mu_target=mu_target, skew=skew, w_norm=w_norm, seed=0)
    mu = float(noisy_dyn.theory.contraction_rate(params, base))
    A, W = noisy_dyn.recurrent_matrices(params, base)
    top_real = float(np.max(np.linalg.eigvals(np.asarray(A + W, dtype=np.float64)).real))
    # Zero input and b = 0: the path stays at the equilibrium h = 0 and the exponent is that of its
    # linearisation, h -> (I + dt (A + W)) h + sqrt(dt) sigma_mult h * xi (the unstable nonlinear
    # path itself would overflow: its linear part grows like exp(mu t)).
    xs = jnp.zeros((steps, 1))
    rows = []
    t0 = time.perf_counter()
    for sigma in tqdm(sigmas, desc="stabilization: sigma_mult"):
        cfg = base.replace(sigma_mult=float(sigma))
        row: dict[str, Any] = {"sigma_mult": float(sigma)}
        for brownian in (ScalarBrownian(), PerUnitBrownian()):
            values = [
                float(
                    noisy_dyn.theory.lyapunov_exponents(
                        params, xs, cfg, key=jax.random.key(s), brownian=brownian, burn_in=burn_in
                    )[0]
                )
                for s in range(seeds)
            ]
            row[f"lyapunov_{brownian.name}"] = float(np.mean(values))
            row[f"lyapunov_{brownian.name}_std"] = float(np.std(values))
        row["bound_scalar"] = mu - sigma**2 / 2
        row["bound_per_unit"] = mu + sigma**2 * (0.5 - 1.0 / hidden)
        rows.append(row)
    seconds = time.perf_counter() - t0
    s = np.array([r["sigma_mult"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key_, label, color in (("scalar", "scalar Brownian", "C0"), ("unit", "per-unit", "C3")):
        mean = [r[f"lyapunov_{key_}"] for r in rows]
        std = [r[f"lyapunov_{key_}_std"] for r in rows]
        ax.errorbar(s, mean, std, marker="o", color=color, label=f"top exponent, {label} noise")
    ax.plot(s, [r["bound_scalar"] for r in rows], "--", color="C0", label="bound mu - s^2/2")
    ax.plot(s, [r["bound_per_unit"] for r in rows], ":", color="C3",
            label="bound mu + s^2 (1/2 - 1/H)")  # fmt: skip
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("sigma_mult")
    ax.set_ylabel("exponent per unit time")
    ax.axhline(top_real, color="gray", lw=0.8, ls="-.", label="max Re eig(A + W)")
    ax.set_title(f"Stochastic stabilization of h = 0 (H={hidden}, mu={mu:.3f}, Ito, dt={base.dt})")
    ax.legend(fontsize=8)
    payload = {
        "experiment": "stochastic stabilization",
        "mu": mu,
        "hidden": hidden,
        "dt": base.dt,
        "steps": steps,
        "burn_in": burn_in,
        "seeds": seeds,
        "seconds": seconds,
        "rows": rows,
        "top_real_eig_A_plus_W": top_real,
        "note": "exponents of the equilibrium h = 0 (zero input, b = 0), mean and std over "
        "noise keys; Euler-Maruyama with dt = 0.01.",
    }
    _write("stochastic_stabilization", payload, fig, out_dir)
    return payload


# ----------------------------------------------------------------------------------------------
# 2. training curves on digits


def training(
    *,
    hidden: int = 32,
    epochs: int = 15,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    dt: float = 0.1,
    sigma_add: float = 0.3,
    sigma_mult: float = 0.3,
    explicit: bool = False,
    n_eval: int = 128,
    n_lyapunov: int = 8,
    seed: int = 0,
    out_dir: Path = RESULTS,
) -> dict[str, Any]:
    """Per-epoch theory diagnostics for a Noisy RNN, its deterministic twin and (optionally) the
    deterministic model trained with the explicit regularizer as a penalty."""
    splits = noisy_dyn.data.load_digits(seed=seed)
    xs_tr, ys_tr = splits.train
    xs_val, ys_val = splits.validation
    xs_te, ys_te = (jnp.asarray(a) for a in splits.test)
    noisy_cfg = noisy_dyn.NoisyRNNConfig(
        1, hidden, 10, dt=dt, sigma_add=sigma_add, sigma_mult=sigma_mult, noise_form="ito"
    )
    det_cfg = noisy_cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    ex, ey = xs_te[:n_eval], ys_te[:n_eval]

    def diagnostics(epoch: int, params: dict) -> dict[str, float]:
        mu = float(noisy_dyn.theory.contraction_rate(params, det_cfg))
        lyap = np.mean(
            [
                float(noisy_dyn.theory.lyapunov_exponents(params, ex[i], det_cfg)[0])
                for i in range(n_lyapunov)
            ]
        )
        margin = np.asarray(noisy_dyn.theory.input_margin(params, ex, ey, det_cfg))
        reg = np.asarray(noisy_dyn.theory.explicit_regularizer(params, ex, ey, noisy_cfg))
        test_acc = float(np.mean(np.argmax(noisy_dyn.apply(params, xs_te, det_cfg), -1) == ys_te))
        return {
            "mu": mu,
            "lyapunov_top": float(lyap),
            "margin_mean": float(np.mean(margin)),
            "margin_median": float(np.median(margin)),
            "regularizer_mean": float(np.mean(reg)),
            "test_accuracy": test_acc,
        }

    runs: dict[str, dict[str, Any]] = {}
    variants = [("noisy (Ito)", noisy_cfg, "noise"), ("deterministic", det_cfg, "noise")]
    if explicit:
        variants.append(("explicit regularizer", noisy_cfg, "explicit"))
    for name, cfg, regularizer in variants:
        t0 = time.perf_counter()
        init = noisy_dyn.init_params(jax.random.key(seed), det_cfg)
        before = {"epoch": 0, **diagnostics(0, init)}
        _, _, history = noisy_dyn.fit(
            cfg,
            (xs_tr, ys_tr),
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            validation=(xs_val, ys_val),
            regularizer=noisy_dyn.regularizer_by_name(regularizer, lam=1.0),
            callback=diagnostics,
            init=init,
        )
        runs[name] = {
            "regularizer": regularizer,
            "history": [before] + [{k: v for k, v in h.items()} for h in history],
            "seconds": time.perf_counter() - t0,
        }

    fig = plot_training(
        runs,
        title=(
            f"digits, H={hidden}, dt={dt}, Ito noise sigma_add={sigma_add}, sigma_mult={sigma_mult}"
        ),
    )
    payload = {
        "experiment": "training curves on sklearn digits",
        "config": noisy_cfg.to_dict(),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "n_eval": n_eval,
        "n_lyapunov": n_lyapunov,
        "runs": runs,
    }
    _write("noisy_theory_training", payload, fig, out_dir)
    return payload


def plot_training(runs: dict[str, dict[str, Any]], *, title: str) -> Any:
    """The six panels of the training experiment (also usable on a saved JSON's ``runs``)."""
    keys = [
        ("test_accuracy", "test accuracy (noise off)", "linear"),
        ("mu", "mu = lambda_max(sym A) + ||W||", "linear"),
        ("lyapunov_top", "top finite-time Lyapunov exponent", "linear"),
        ("margin_median", "median input margin (test; symlog)", "symlog"),
        ("regularizer_mean", "mean explicit regularizer r", "linear"),
        ("train_loss", "training loss (noisy for the NRNN)", "linear"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (k, name, scale) in zip(axes.ravel(), keys):
        for label, run in runs.items():
            pts = [(h["epoch"], h[k]) for h in run["history"] if k in h]
            ax.plot(*zip(*pts), marker=".", label=label)
        if scale == "symlog":
            ax.set_yscale("symlog", linthresh=0.1)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    """Command line: ``stabilization``, ``training`` or ``all``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", choices=["stabilization", "training", "all"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--explicit",
        action="store_true",
        help="also train with the explicit regularizer as a penalty (O(T H^3) per example: "
        "several minutes on two CPU cores)",
    )
    args = parser.parse_args(argv)
    if args.which in ("stabilization", "all"):
        stabilization(out_dir=args.out)
    if args.which in ("training", "all"):
        training(out_dir=args.out, epochs=args.epochs, explicit=args.explicit)


if __name__ == "__main__":
    main()
