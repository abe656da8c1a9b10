"""Training throughput of the digits demo: ``noisy_dyn.fit`` steps per second, before and after.

The digits demo (``python -m noisy_dyn demo``) trains ``nrnn_ito`` with hidden size 64, batch 64,
learning rate 1e-2 on the 64-step digits sequences, ``dt`` scaled by 784/64. This module times
whole ``fit`` calls of that configuration (no validation, no checkpoints, no progress output)
after a warm-up call that compiles the step, so the number is the loop's steady state: the
training step plus the loop's own costs (batch placement, host synchronisation).

"Before" is an older checkout of the project, loaded side by side in the same process as the
package ``noisy_dyn_before``: set ``BENCH_BEFORE_ROOT`` to the folder that holds its
``noisy_dyn/`` (e.g. ``git worktree add /tmp/before 6e475bd``, the commit before the shared
training engine, whose loop read the loss and the finiteness flag on the host after every step).
Without it only "after" is measured. Both are timed interleaved (round-robin), so a loaded machine
slows both alike; speed is never asserted.

    BENCH_BEFORE_ROOT=/tmp/before python -m benchmarks.train_throughput [--mode quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import _common

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"hidden": 8, "batch_size": 32, "limit": 128, "epochs": 1, "repeats": 1},
    "quick": {"hidden": 64, "batch_size": 64, "limit": None, "epochs": 2, "repeats": 3},
    "full": {"hidden": 64, "batch_size": 64, "limit": None, "epochs": 5, "repeats": 5},
}


def load_before(root: str | os.PathLike) -> Any:
    """Import ``root/noisy_dyn`` as the package ``noisy_dyn_before`` (relative imports only)."""
    if "noisy_dyn_before" in sys.modules:
        return sys.modules["noisy_dyn_before"]
    pkg = Path(root) / "noisy_dyn"
    spec = importlib.util.spec_from_file_location(
        "noisy_dyn_before", pkg / "__init__.py", submodule_search_locations=[str(pkg)]
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no noisy_dyn package under {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["noisy_dyn_before"] = module
    spec.loader.exec_module(module)
    return module


def _fit_fn(pkg: Any, xs: np.ndarray, ys: np.ndarray, size: dict[str, Any]):
    base = pkg.preset("nrnn_ito", input_size=1, num_classes=10)
    cfg = pkg.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=size["hidden"],
                     dt=base.dt * 784 / 64)  # fmt: skip

    def run(epochs: int):
        _, params, _ = pkg.fit(cfg, (xs, ys), epochs=epochs, batch_size=size["batch_size"],
                            learning_rate=1e-2, seed=0, progress=False)  # fmt: skip
        return params

    return run


def bench(mode: str = "quick", before_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Steps per second of ``fit`` on the digits demo's configuration, "after" and "before"."""
    import noisy_dyn
    from noisy_dyn.data import load_digits

    size = SIZES[mode]
    before_root = before_root or os.environ.get("BENCH_BEFORE_ROOT")
    xs, ys = load_digits(seed=0).train[:2]
    if size["limit"]:
        xs, ys = xs[: size["limit"]], ys[: size["limit"]]
    pkgs = {"after": noisy_dyn}
    if before_root:
        pkgs["before"] = load_before(before_root)
    runs = {name: _fit_fn(pkg, xs, ys, size) for name, pkg in pkgs.items()}
    for run in runs.values():  # compile
        _common.block(run(1))
    epochs = size["epochs"]
    timed = _common.time_interleaved(
        {name: (lambda r=run: r(epochs)) for name, run in runs.items()}, size["repeats"], warmup=0
    )
    steps = epochs * (len(xs) // size["batch_size"])
    res = {**{k: v for k, v in size.items()}, "steps": steps, "n_train": len(xs),
           "before_root": None if before_root is None else str(before_root)}  # fmt: skip
    res["steps_per_s"] = {name: steps / t["median_s"] for name, t in timed.items()}
    res["seconds"] = {name: t["runs_s"] for name, t in timed.items()}
    if "before" in timed:
        res["speedup"] = res["steps_per_s"]["after"] / res["steps_per_s"]["before"]
    return res


def markdown_lines(res: dict[str, Any]) -> list[str]:
    """The report's section."""
    lines = [
        "## Training throughput (digits demo, `noisy_dyn.fit`)",
        "",
        f"`nrnn_ito`, hidden {res['hidden']}, batch {res['batch_size']}, {res['n_train']} "
        f"sequences of 64 steps, {res['steps']} steps per timed `fit` (median of "
        f"{res['repeats']}, interleaved, after a compiling warm-up).",
        "",
        "| code | steps / s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {v:.1f} |" for name, v in res["steps_per_s"].items()]
    if "speedup" in res:
        lines += ["", f"after / before: {res['speedup']:.2f}x (before: {res['before_root']})"]
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput")
    parser.add_argument("--mode", default="quick", choices=sorted(SIZES))
    parser.add_argument("--before", default=None, help="root of the older checkout")
    parser.add_argument(
        "--cpu-devices", type=int, default=None, help="default: cpu_devices_for(batch), as the demo"
    )
    args = parser.parse_args(argv)
    import trainkit

    batch = SIZES[args.mode]["batch_size"]
    trainkit.use_cpu_devices(args.cpu_devices or trainkit.cpu_devices_for(batch))
    res = bench(args.mode, args.before)
    print(json.dumps({k: v for k, v in res.items() if k != "seconds"}, indent=1))
    print("\n".join(markdown_lines(res)))


if __name__ == "__main__":
    main()
