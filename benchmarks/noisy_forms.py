"""Benchmark: the train step of both noise forms against the PyTorch eager loop, side by side.

A short run of :func:`benchmarks.noisy_step.bench_train_step` for ``form="ito"`` and
``form="reference"`` (the paper's configuration: random step, additive noise, learned step) at
the full size, with the batch on one JAX device and sharded over the CPU's cores (with the mesh
in context, as ``fit`` runs it, and with ``jit``'s partitioner alone), the PyTorch eager loop of
the same update, and the matmul roofline. Prints one Markdown table of ratios.

Usage (before JAX starts; the CPU is exposed as one device per core)::

    python -m benchmarks.noisy_forms [--repeats 3] [--size 128 128 784] [--torch-threads N]

On a machine shared with other jobs PyTorch's intra-op threads spin-wait and its loop slows far
more than JAX's (measured: 14.5 s against 0.40 s idle with 2 threads); ``--torch-threads 1``
gives a fairer comparison there.
"""

from __future__ import annotations

import argparse
import json


def main(batch: int = 128, hidden: int = 128, time: int = 784, repeats: int = 3) -> dict:
    """Measure both forms; return ``{form: {variant: min seconds, ...}, "roofline_s": ...}``."""
    from . import _common
    from . import noisy_step as ns

    rate = _common.matmul_rate(2048)["flops_per_s"]
    out = {"roofline_s": ns.closed_form_flops(batch, hidden, time) / rate}
    for form in ("ito", "reference"):
        r = ns.bench_train_step(batch, hidden, time, repeats=repeats,
                                variants=("jax_library",), torch=True, form=form)  # fmt: skip
        out[form] = {name: s["min_s"] for name, s in r["impl"].items()}
    rows = ["| form | library, 1 device | library, batch over all cores | same, partitioner "
            "only | PyTorch eager | speed-up 1 device | speed-up all cores | time / roofline "
            "(all cores) |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for form in ("ito", "reference"):
        t = out[form]
        nan = float("nan")
        one, torch = t["jax_library"], t["torch_eager"]
        dp, part = t.get("jax_library_dp", nan), t.get("jax_library_dp_partitioner", nan)
        roof = dp / out["roofline_s"]
        rows.append(f"| {form} | {one:.3f} | {dp:.3f} | {part:.3f} | {torch:.3f} | "
                    f"{torch / one:.2f}x | {torch / dp:.2f}x | {roof:.2f} |")  # fmt: skip
    print("\n".join(rows))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=3, default=(128, 128, 784))
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    import noisy_dyn

    noisy_dyn.use_cpu_devices(noisy_dyn.cpu_devices_for(args.size[0]))
    main(*args.size, repeats=args.repeats)
