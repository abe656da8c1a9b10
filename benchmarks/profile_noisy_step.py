"""Where the time of the Noisy RNN train step goes: a per-operation breakdown from a
``jax.profiler`` trace of the compiled step (the source of the README's "what made the CPU step
fast" figures).

Usage::

    python -m benchmarks.profile_noisy_step                  # B=128, H=128, T=784, one device
    python -m benchmarks.profile_noisy_step --cpu-devices 2  # batch sharded over 2 CPU devices
    python -m benchmarks.profile_noisy_step --batch 8 --hidden 16 --time 32 --top 10

Prints the XLA operations (thunks) with the most time per step and their calls per step (with
several devices, summed over the devices: divide by their number for one device's share). Names
are XLA's: ``ynn_fusion`` are matmuls, ``while`` the scans (their time includes the operations
inside them), ``wrapped_broadcast`` the zero-filling of output buffers.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import tempfile
from typing import Any


def profile(batch: int, hidden: int, time: int, repeats: int = 3) -> list[dict[str, Any]]:
    """Trace ``repeats`` calls of the library train step; return rows sorted by total time."""
    import jax

    from . import noisy_step as ns

    prob = ns.make_problem(batch, hidden, time)
    cfg, params, xs, ys, key = (prob[k] for k in ("cfg", "params", "xs", "ys", "key"))
    step = jax.jit(jax.value_and_grad(lambda *a: ns.library_loss(*a, cfg)))
    args = (params, xs, ys, key)
    if ns.data_parallel_devices(batch):  # as fit runs it: batch sharded, the mesh in context
        mesh, args = ns.shard_like_fit(*args)
        step = ns.on_mesh(mesh, step)
    jax.block_until_ready(step(*args))  # compile outside the trace
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            for _ in range(repeats):
                jax.block_until_ready(step(*args))
        (path,) = glob.glob(f"{tmp}/**/*.trace.json.gz", recursive=True)
        events = json.load(gzip.open(path))["traceEvents"]
    total: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    skip = ("$", "end: ", "ThunkExecutor", "PjitFunction", "Rendezvous", "Wait")
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(skip):
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1
    return [
        {"op": name, "ms_per_step": us / repeats / 1e3, "calls_per_step": count[name] // repeats}
        for name, us in total.most_common()
    ]


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_noisy_step", description=__doc__)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--time", type=int, default=784)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=30, help="rows to print")
    p.add_argument("--cpu-devices", type=int, default=1, help="shard the batch over N CPU devices")
    args = p.parse_args(argv)
    if args.cpu_devices > 1:
        import noisy_dyn

        noisy_dyn.use_cpu_devices(args.cpu_devices)
    rows = profile(args.batch, args.hidden, args.time, args.repeats)
    print(f"{'ms/step':>9} {'calls':>6}  operation")
    for r in rows[: args.top]:
        print(f"{r['ms_per_step']:9.2f} {r['calls_per_step']:6d}  {r['op'][:80]}")


if __name__ == "__main__":
    main()
