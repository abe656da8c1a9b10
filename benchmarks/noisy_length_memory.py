"""Which sequence lengths and steps ``dt`` the Lipschitz cell handles: accuracy against length
on a synthetic task whose answer sits at the start of the series.

The task: four classes, each a fixed random pattern of ``+-1`` over the first ``K = 8`` steps
(plus N(0, 0.3^2) noise); after them, ``T - K`` steps of N(0, 1) noise that carry nothing.
So a model must keep what it saw in the first 8 steps through ``T - 8`` steps of distraction;
chance is 25 %. Inputs have mean 0 and standard deviation about 1 (what standardisation gives).

For each length ``T`` one ensemble (``noisy_dyn.fit_ensemble``) trains the deterministic
Lipschitz cell (preset ``lipschitz``, H = 32) at several fixed steps ``dt`` and at the library's
default for that length (``noisy_dyn.experiments.scaled_dt``: the preset's 0.03 x 784 / T), from
two seeds, with Adam at the library's own-data rate 1e-2, batch 32, the best validation epoch
kept; the test accuracy of every member is recorded. Writes ``results.json``, ``results.md`` and
``accuracy.png`` to ``--out``::

    python -m benchmarks.noisy_length_memory --out docs/results/noisy_dyn/length_memory
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import noisy_dyn
from noisy_dyn.experiments import scaled_dt

PATTERN_STEPS = 8
CLASSES = 4


def task(n: int, steps: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` series of ``steps`` steps (one feature) and their classes (module docstring); the
    class patterns are fixed (seed 12345), the draws follow ``seed``."""
    patterns = np.random.default_rng(12345).choice([-1.0, 1.0], size=(CLASSES, PATTERN_STEPS))
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, CLASSES, n)
    xs = rng.standard_normal((n, steps, 1))
    head = min(PATTERN_STEPS, steps)
    xs[:, :head, 0] = patterns[ys, :head] + 0.3 * rng.standard_normal((n, head))
    return xs.astype(np.float32), ys.astype(np.int32)


def run_length(steps: int, dts: list[float], seeds: list[int], *, n_train: int, epochs: int,
               hidden: int) -> dict:  # fmt: skip
    train, val, test = (task(n, steps, seed=s) for n, s in ((n_train, 1), (256, 2), (512, 3)))
    base = noisy_dyn.preset("lipschitz", input_size=1, num_classes=CLASSES, hidden_size=hidden)
    cfgs = [base.replace(dt=float(dt)) for dt in dts]
    t0 = time.perf_counter()
    _, params, history = noisy_dyn.fit_ensemble(
        cfgs, train, seeds=seeds, epochs=epochs, batch_size=32, learning_rate=1e-2,
        validation=val, progress=False, on_divergence="freeze",
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    acc = []
    for m in range(len(cfgs) * len(seeds)):
        p = {k: v[m] for k, v in params.items()}
        acc.append(noisy_dyn.accuracy(p, test, cfgs[m // len(seeds)]))
    acc = np.asarray(acc).reshape(len(cfgs), len(seeds))
    return {"steps": steps, "dts": dts, "test_accuracy": acc.tolist(),
            "diverged_step": history.get("diverged_step"), "seconds": seconds}  # fmt: skip


def markdown(results: list[dict], rule: dict[int, float]) -> str:
    dts = sorted({dt for r in results for dt in r["dts"] if dt not in rule.values()})
    head = ["T", *(f"dt {dt:g}" for dt in dts), "default dt (0.03 x 784 / T)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        mean = dict(zip(r["dts"], np.mean(r["test_accuracy"], axis=1)))
        cells = [str(r["steps"])] + [f"{100 * mean[dt]:.1f}" for dt in dts]
        cells.append(f"{100 * mean[rule[r['steps']]]:.1f} (dt {rule[r['steps']]:.3g})")
        lines.append("| " + " | ".join(cells) + " |")
    return ("Test accuracy (%) of the deterministic Lipschitz cell, mean of "
            f"{len(results[0]['test_accuracy'][0])} seeds; chance 25 %.\n\n"
            + "\n".join(lines) + "\n")  # fmt: skip


def plot(results: list[dict], rule: dict[int, float], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    dts = sorted({dt for r in results for dt in r["dts"] if dt not in rule.values()})
    steps = [r["steps"] for r in results]
    for dt in dts:
        ys = [100 * np.mean(r["test_accuracy"][r["dts"].index(dt)]) for r in results]
        ax.plot(steps, ys, "o-", label=f"dt = {dt:g}")
    ys = [100 * np.mean(r["test_accuracy"][r["dts"].index(rule[r["steps"]])]) for r in results]
    ax.plot(steps, ys, "ks--", label="default dt = 0.03 x 784 / T")
    ax.axhline(25, color="0.5", lw=0.8)
    ax.set(xscale="log", xlabel="sequence length T", ylabel="test accuracy (%)",
           title="answer in the first 8 steps, then T - 8 steps of noise")  # fmt: skip
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="16,64,256,1024")
    p.add_argument("--dts", default="0.01,0.03,0.1,0.3,1.0")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--train", type=int, default=512)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--out", default="runs/noisy_dyn/length_memory")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lengths = [int(v) for v in a.lengths.split(",")]
    fixed = [float(v) for v in a.dts.split(",")]
    rule = {t: round(scaled_dt(0.03, t), 6) for t in lengths}
    results = []
    for t in lengths:
        dts = fixed + [rule[t]]
        results.append(run_length(t, dts, list(range(a.seeds)), n_train=a.train,
                                  epochs=a.epochs, hidden=a.hidden))  # fmt: skip
        print(f"T = {t}: {np.round(np.mean(results[-1]['test_accuracy'], axis=1), 3).tolist()} "
              f"({results[-1]['seconds']:.0f} s)", flush=True)  # fmt: skip
    meta = {"machine": platform.processor() or platform.machine(), "date": time.strftime("%F"),
            "args": vars(a)}  # fmt: skip
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    (out / "results.md").write_text(markdown(results, rule))
    plot(results, rule, out / "accuracy.png")
    print(markdown(results, rule))


if __name__ == "__main__":
    main()
