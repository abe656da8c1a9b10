"""Ensemble training throughput: ``noisy_dyn.fit_ensemble`` against separate ``fit`` calls.

The digits demo's configuration (``nrnn_ito``, hidden 64, batch 64, learning rate 1e-2, 64-step
sequences, ``dt`` scaled by 784/64) at 4 noise levels ``sigma_add = sigma_mult in (0, 0.05,
0.1, 0.2)`` x 2 seeds = 8 members, trained either as one ensemble or as 8 ``fit`` calls (each
on the default mesh, so each already shards its batch over every CPU device).

Compile time is included: before each arm every JAX and loop cache is cleared, so the separate
arm compiles one step per noise level (its config is static) and the ensemble one step in all.
Each arm runs ``e1`` epochs cold (compiling) and then ``e2`` epochs warm; the time per epoch is
``t_warm / e2`` and the fixed cost (compilation, set-up) ``t_cold - e1 * that``, so the time of
``E`` epochs (30, the size of the stored study runs) is extrapolated as
``fixed + E * per_epoch``. Speed is never
asserted; on a shared machine the numbers move with the other jobs' load.

    python -m benchmarks.ensemble [--mode quick] [--repeats 5]

With ``--repeats`` both arms run again that many times, interleaved, and the table shows the
median repeat with every repeat's ratio beside it (on a shared 2-core machine single runs moved
between 1.6x and 2.2x).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"hidden": 8, "batch_size": 32, "limit": 128, "epochs": (1, 1), "levels": (0.0, 0.1),
              "seeds": (0,), "target_epochs": 30},
    "quick": {"hidden": 64, "batch_size": 64, "limit": None, "epochs": (1, 2),
              "levels": (0.0, 0.05, 0.1, 0.2), "seeds": (0, 1), "target_epochs": 30},
    "full": {"hidden": 64, "batch_size": 64, "limit": None, "epochs": (1, 5),
             "levels": (0.0, 0.05, 0.1, 0.2), "seeds": (0, 1), "target_epochs": 30},
}  # fmt: skip


def _fresh_caches() -> None:
    """Forget every compiled program, so the next call pays its compilation."""
    import jax

    import trainkit.internal
    from noisy_dyn import _train

    jax.clear_caches()
    trainkit.internal.compiled_step.cache_clear()
    _train._eval_fn.cache_clear()


def _arms(size: dict[str, Any]):
    import noisy_dyn
    from noisy_dyn.data import load_digits

    xs, ys = load_digits(seed=0).train[:2]
    if size["limit"]:
        xs, ys = xs[: size["limit"]], ys[: size["limit"]]
    base = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=10)
    cfg = base.replace(hidden_size=size["hidden"], dt=base.dt * 784 / 64)
    cfgs = [cfg.replace(sigma_add=s, sigma_mult=s) for s in size["levels"]]
    kw = dict(batch_size=size["batch_size"], learning_rate=1e-2, progress=False)

    def separate(epochs: int) -> None:
        for c in cfgs:
            for seed in size["seeds"]:
                noisy_dyn.fit(c, (xs, ys), epochs=epochs, seed=seed, **kw)

    def ensemble(epochs: int) -> None:
        noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=size["seeds"], epochs=epochs, **kw)

    return {"separate": separate, "ensemble": ensemble}, len(xs)


def _time_arm(arm, e1: int, e2: int) -> dict[str, float]:
    """Seconds of ``e1`` epochs cold (caches cleared first) and then ``e2`` epochs warm."""
    _fresh_caches()
    t0 = time.perf_counter()
    arm(e1)  # cold: compiles
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    arm(e2)  # warm: no compilation
    return {"cold": cold, "warm": time.perf_counter() - t0}


def _totals(s: dict[str, float], e1: int, e2: int, E: int) -> dict[str, float]:
    per_epoch = s["warm"] / e2
    fixed = s["cold"] - e1 * per_epoch
    return {"per_epoch_s": per_epoch, "fixed_s": fixed, "total_s": fixed + E * per_epoch}


def summarize(runs: list[dict[str, dict[str, float]]], e1: int, e2: int, E: int) -> dict:
    """Per repeat, each arm's ``fixed + E x per_epoch`` (``per_epoch = warm / e2``, ``fixed =
    cold - e1 x per_epoch``) and the speed-up ``separate / ensemble``; the table's figures are
    those of the median repeat (by speed-up at ``E`` epochs; the lower middle one for an even
    count)."""
    totals = [{name: _totals(s, e1, e2, E) for name, s in run.items()} for run in runs]
    ratio = lambda t, key: t["separate"][key] / t["ensemble"][key]  # noqa: E731
    speedups = [ratio(t, "total_s") for t in totals]
    middle = int(np.argsort(speedups)[(len(runs) - 1) // 2])
    return {
        **totals[middle],
        "speedups": speedups,
        "speedups_per_epoch": [ratio(t, "per_epoch_s") for t in totals],
        "speedup": speedups[middle],
        "speedup_per_epoch": ratio(totals[middle], "per_epoch_s"),
    }


def bench(mode: str = "quick", repeats: int = 1) -> dict[str, Any]:
    """Seconds of both arms at two epoch counts, ``repeats`` times with the arms interleaved;
    per-epoch and extrapolated totals; the speed-up of every repeat and their median (the
    arms of one repeat ran back to back, so each ratio is measured side by side)."""
    import jax

    size = SIZES[mode]
    arms, n_train = _arms(size)
    e1, e2 = size["epochs"]
    E = size["target_epochs"]
    arms["ensemble"](1)  # JAX's own first-use costs, paid by neither arm
    runs = [{name: _time_arm(arm, e1, e2) for name, arm in arms.items()} for _ in range(repeats)]
    res: dict[str, Any] = {
        **{k: v for k, v in size.items() if k != "epochs"}, "epochs_timed": [e1, e2],
        "members": len(size["levels"]) * len(size["seeds"]), "n_train": n_train,
        "devices": len(jax.devices()), "steps_per_epoch": n_train // size["batch_size"],
        "seconds": runs, "repeats": repeats,
    }  # fmt: skip
    res.update(summarize(runs, e1, e2, E))
    return res


def markdown_lines(res: dict[str, Any]) -> list[str]:
    """The report's section."""
    E = res["target_epochs"]
    lines = [
        "## Ensemble training (digits demo size, `fit_ensemble` vs separate `fit` calls)",
        "",
        f"`nrnn_ito`, hidden {res['hidden']}, batch {res['batch_size']}, {res['n_train']} "
        f"sequences ({res['steps_per_epoch']} steps an epoch), {res['members']} members "
        f"(sigma {list(res['levels'])} x seeds {list(res['seeds'])}) on {res['devices']} "
        f"device(s). Compile time included (caches cleared before each arm); epochs timed cold "
        f"and warm: {res['epochs_timed']}; per epoch from the warm run, fixed = cold - per "
        f"epoch x epochs, {E} epochs extrapolated as fixed + E x per epoch.",
        "",
        f"| arm | fixed s (compile, set-up) | s / epoch | {E} epochs s |",
        "|---|---|---|---|",
    ]
    for name in ("separate", "ensemble"):
        r = res[name]
        lines.append(
            f"| {name} | {r['fixed_s']:.1f} | {r['per_epoch_s']:.2f} | {r['total_s']:.1f} |"
        )
    lines += [
        "",
        f"speed-up at {E} epochs: {res['speedup']:.2f}x (per epoch alone: "
        f"{res['speedup_per_epoch']:.2f}x); threshold >= 1.7x.",
        *_spread_lines(res),
        "",
    ]
    return lines


def _spread_lines(res: dict[str, Any]) -> list[str]:
    if res.get("repeats", 1) < 2:
        return []
    each = ", ".join(f"{r:.2f}x" for r in res["speedups"])
    return [
        "",
        f"The table is the median of {res['repeats']} repeats (arms interleaved, each ratio "
        f"measured side by side); speed-ups at {res['target_epochs']} epochs of every repeat: "
        f"{each}.",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ensemble")
    parser.add_argument("--mode", default="quick", choices=sorted(SIZES))
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="default: cpu_devices_for(batch), as the demo")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1,
                        help="repeat the arms, interleaved; report the median")  # fmt: skip
    args = parser.parse_args(argv)
    import trainkit

    batch = SIZES[args.mode]["batch_size"]
    trainkit.use_cpu_devices(args.cpu_devices or trainkit.cpu_devices_for(batch))
    res = bench(args.mode, args.repeats)
    print(json.dumps(res, indent=1, default=lambda x: np.asarray(x).tolist()))
    print("\n".join(markdown_lines(res)))


if __name__ == "__main__":
    main()
