"""Run the benchmark suite and write JSON, a Markdown report and PNG plots.

Usage::

    python -m benchmarks.run            # default size ("quick" sections at full train-step size)
    python -m benchmarks.run --quick    # about two minutes on an idle 2-core CPU
    python -m benchmarks.run --full     # everything at full size (the GPU run; see gpu.sh)
    python -m benchmarks.run --smoke    # seconds: the smallest configuration (used by the tests)
    python -m benchmarks.run --out DIR  # output folder (default: $OUT, else benchmarks/results)
    python -m benchmarks.run --report FILE.json  # re-render Markdown and plots of a (partial) run
    python -m benchmarks.run --cpu-devices 1     # no data-parallel variant (default: one CPU
                                                 # device per core, see noisy_dyn.use_cpu_devices)

Outputs ``<tag>.json``, ``<tag>.md`` and ``<tag>_*.png`` with ``tag = <backend>_<mode>``. Every
number in them is measured in this one process; nothing is asserted (speed is never tested).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax

from . import _common
from . import noisy_step as ns

MODES: dict[str, dict[str, Any]] = {
    "smoke": {
        "step": (4, 8, 16),
        "repeats": 1,
        "variants": ("jax_library", "jax_fused"),
        "agreement": ("jax_fused",),
        "torch": False,
        "matmul_n": 256,
        "scaling_T": None,
        "scaling_B": None,
        "remat": None,
        "ode": None,
    },
    "quick": {
        "step": (128, 128, 784),
        "repeats": 3,
        "variants": ("jax_library", "jax_fused", "jax_plain_scan", "diffrax"),
        "agreement": ("jax_library_dp", "jax_fused", "jax_plain_scan", "diffrax", "torch_eager"),
        "torch": True,
        "matmul_n": 2048,
        "scaling_T": ((128, 64), (128, 196), (128, 784)),
        "scaling_B": ((16, 196), (64, 196), (256, 196)),
        "remat": (128, 128, 784, 28),
        "ode": {
            "latency": {"batch": 4, "n_steps_list": (2, 4, 8), "K_list": (1, 4, 16), "K_fixed": 4,
                        "steps_fixed": 4, "repeats": 3},
            "compile": {"n_steps_list": (4, 16, 64), "width": 32},
            "train_step": {"repeats": 3},
            "train_compile": {"n_steps_list": (2, 8, 32)},
            "change_of_basis": {"subset": 500, "repeats": 3},
            "memory": {"K_list": (8, 4), "batch": 4, "n_steps": 16},
        },
    },
    "full": {
        "step": (128, 128, 784),
        "repeats": 10,
        "variants": ("jax_library", "jax_fused", "jax_plain_scan", "diffrax", "diffrax_vbt"),
        "agreement": ("jax_library_dp", "jax_fused", "jax_plain_scan", "diffrax", "torch_eager"),
        "torch": True,
        "matmul_n": 4096,
        "scaling_T": ((128, 64), (128, 196), (128, 784), (128, 3136)),
        "scaling_B": ((16, 784), (64, 784), (128, 784), (512, 784)),
        "remat": (128, 128, 784, 28),
        "ode": {
            "latency": {"batch": 128, "n_steps_list": (1, 4, 16), "K_list": (1, 4, 16),
                        "K_fixed": 16, "steps_fixed": 16, "repeats": 10},
            "compile": {"n_steps_list": (4, 16, 64), "width": 64},
            "train_step": {"repeats": 5},
            "train_compile": {"n_steps_list": (2, 8, 32, 64)},
            "change_of_basis": {"subset": 5000, "repeats": 5},
            "memory": {"K_list": (8, 4), "batch": 128, "n_steps": 16},
        },
    },
}  # fmt: skip


FORMS = (("ito", ""), ("reference", "_reference"))
"""The noise forms of the train-step sections and the suffixes of their result keys."""


def run_suite(mode: str = "quick", out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run the suite in ``mode`` ("smoke", "quick", "full"); write and return the results."""
    from tqdm.auto import tqdm

    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}.")
    cfg = MODES[mode]
    out = Path(out_dir or os.environ.get("OUT") or Path(__file__).parent / "results")
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{jax.default_backend()}_{mode}"
    res: dict[str, Any] = {"mode": mode, "machine": _common.machine(), "started": time.time()}
    sections = ["matmul", "agreement", "train_step"]
    sections += ["remat"] if cfg["remat"] else []
    sections += ["scaling"] if cfg["scaling_T"] else []
    sections += ["ode"] if cfg["ode"] else []
    sections += ["train_throughput", "ensemble"]
    bar = tqdm(sections, desc="benchmarks", file=sys.stderr)
    for section in bar:
        bar.set_postfix_str(section)
        if section == "matmul":
            res["matmul"] = _common.matmul_rate(cfg["matmul_n"])
        elif section == "agreement":
            for form, suffix in FORMS:
                names = cfg["agreement"]
                res["agreement_rel_err" + suffix] = ns.check_agreement(names=names, form=form)
        elif section == "train_step":
            B, H, T = cfg["step"]
            for form, suffix in FORMS:
                r = ns.bench_train_step(B, H, T, repeats=cfg["repeats"], variants=cfg["variants"],
                                        torch=cfg["torch"], form=form)  # fmt: skip
                r["roofline_s"] = r["flops_closed_form"] / res["matmul"]["flops_per_s"]
                res["train_step" + suffix] = r
        elif section == "scaling":
            H = cfg["step"][1]
            rows_T = ns.bench_scaling(cfg["scaling_T"], hidden=H, repeats=cfg["repeats"])
            rows_B = ns.bench_scaling(cfg["scaling_B"], hidden=H, repeats=cfg["repeats"])
            res["scaling"] = {
                "hidden": H,
                "vs_time": rows_T,
                "vs_batch": rows_B,
                "fit_time": ns.fit_exponents(rows_T, "time", "batch"),
                "fit_batch": ns.fit_exponents(rows_B, "batch", "time"),
            }
        elif section == "remat":
            B, H, T, chunk = cfg["remat"]
            res["remat"] = ns.bench_remat(B, H, T, chunk, repeats=cfg["repeats"])
        elif section == "train_throughput":  # before/after with BENCH_BEFORE_ROOT set
            from . import train_throughput

            res["train_throughput"] = train_throughput.bench(mode)
        elif section == "ensemble":  # fit_ensemble against separate fit calls
            from . import ensemble

            res["ensemble"] = ensemble.bench(mode)
        elif section == "ode":
            from . import ode_nets

            o = cfg["ode"]
            res["ode"] = {
                "latency": ode_nets.bench_latency(**o["latency"]),
                "compile": ode_nets.bench_compile(**o["compile"]),
                "train_step": ode_nets.bench_train_step(**o["train_step"]),
                "train_compile": ode_nets.bench_train_compile(**o["train_compile"]),
                "change_of_basis": ode_nets.bench_change_of_basis(**o["change_of_basis"]),
                "memory": ode_nets.bench_compressed_memory(**o["memory"]),
            }
        _write_json(out / f"{tag}.json", res)  # partial results survive a timeout
    res["seconds"] = time.time() - res["started"]
    _write_json(out / f"{tag}.json", res)
    (out / f"{tag}.md").write_text(markdown(res))
    from . import _plots

    _plots.plot_all(res, out, tag)
    return res


def _write_json(path: Path, res: dict[str, Any]) -> None:
    path.write_text(json.dumps(res, indent=1, default=float))


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _step_targets(ts: dict[str, Any] | None, form: str) -> list[tuple[str, float, str, bool]]:
    """The train-step thresholds of one noise form."""
    if not ts:
        return []
    rows = []
    impl = ts["impl"]
    libs = [("jax_library", "library, 1 device")]
    if "jax_library_dp" in impl:
        n = impl["jax_library_dp"].get("devices", "several")
        libs.append(("jax_library_dp", f"library, batch sharded over {n} devices"))
    for name, label in libs:
        lib = impl[name]["min_s"]
        if "torch_eager" in impl:  # thresholds: 2x on one device, 3x over the cores
            v, want = impl["torch_eager"]["min_s"] / lib, 2 if name == "jax_library" else 3
            rows.append(
                (f"{form}: speed-up over the PyTorch eager loop ({label})", v, f">= {want}",
                 v >= want)
            )  # fmt: skip
        if "diffrax" in impl:
            v = impl["diffrax"]["min_s"] / lib
            rows.append((f"{form}: speed-up over diffrax, Euler, default adjoint ({label})", v,
                         ">= 1.3", v >= 1.3))  # fmt: skip
        v = lib / ts["roofline_s"]
        rows.append((f"{form}: time / matmul roofline ({label})", v, "<= 3", v <= 3))
    return rows


def targets(res: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(description, measured value, threshold, reached) for every threshold checked."""
    rows = []
    for form, suffix in FORMS:
        rows += _step_targets(res.get("train_step" + suffix), form)
    rm = res.get("remat")
    if rm:
        rows.append(("remat: peak-memory reduction", rm["memory_reduction"], ">= 4",
                     rm["memory_reduction"] >= 4))  # fmt: skip
        rows.append(("remat: time ratio", rm["time_ratio"], "<= 1.5", rm["time_ratio"] <= 1.5))
    ode = res.get("ode")
    if ode:
        c = ode["compile"]
        v = c["scan_ratio_last_to_first"]
        n0, n1 = c["rows"][0]["n_steps"], c["rows"][-1]["n_steps"]
        rows.append((f"odeint compile time n_steps={n1} / n_steps={n0}", v, "<= 1.5", v <= 1.5))
        ts = ode.get("train_step", {})
        if "jax_unrolled_over_torch" in ts:
            v = ts["jax_unrolled_over_torch"]
            rows.append(("ConvODENet train step / PyTorch eager (CPU)", v, "<= 2.5", v <= 2.5))
    return rows


_FORM_TITLE = {
    "ito": "Ito noise (preset nrnn_ito)",
    "reference": "reference form, learned step (preset nrnn_reference, the paper's configuration)",
}


def _step_markdown(ts: dict[str, Any] | None, agreement: dict[str, float] | None) -> list[str]:
    """The Markdown section of one noise form's train step."""
    if not ts:
        return []
    lib = ts["impl"]["jax_library"]["min_s"]
    extra = ""
    if ts.get("flops_kernel_extra"):
        extra = (f", {ts['flops_kernel_extra'] / 1e9:+.3f} G by design, see "
                 "`kernel_extra_flops`")  # fmt: skip
    lines = [
        f"## Noisy RNN train step (B={ts['batch']}, H={ts['hidden']}, T={ts['time']}, "
        f"{_FORM_TITLE[ts.get('form', 'ito')]}, float32, value and gradient of the cross-entropy)",
        "",
        f"Matmul FLOPs: {ts['flops_closed_form'] / 1e9:.3f} G (closed form; jaxpr count of "
        f"the fused step {ts['flops_jaxpr_fused'] / 1e9:.3f} G{extra}); roofline "
        f"{ts['roofline_s']:.3f} s.",
        "",
        "| implementation | time s (median) | compile s | peak MB | time / library |",
        "|---|---|---|---|---|",
    ]
    for name, s in ts["impl"].items():
        peak = s.get("peak_bytes")
        lines.append(
            f"| {name} | {s['min_s']:.3f} ({s['median_s']:.3f}) | {_fmt(s.get('compile_s'))}"
            f" | {_fmt(None if peak is None else peak / 1e6)} | {s['min_s'] / lib:.2f}x |"
        )
    if agreement:
        lines += ["", "Agreement with the library on the same noise (max relative error):",
                  "", "| implementation | rel. error |", "|---|---|"]  # fmt: skip
        lines += [f"| {k} | {v:.1e} |" for k, v in agreement.items()]
    return [*lines, ""]


def markdown(res: dict[str, Any]) -> str:
    """The Markdown report of a results dict."""
    m = res["machine"]
    lines = [
        f"# Benchmarks ({res['mode']})",
        "",
        f"Machine: {m['backend']} / {m['device']}, {m['cpu_count']} CPU cores, jax {m['jax']}, "
        f"torch {m.get('torch')}, {m.get('local_devices', 1)} JAX device(s); 1-min load average "
        f"at start {_fmt(m.get('load_average_1min'))}. "
        f"Matmul rate (float32, {res['matmul']['n']}^3): "
        f"{res['matmul']['flops_per_s'] / 1e9:.1f} GFLOP/s. Total "
        f"{_fmt(res.get('seconds'))} s.",
        "",
        *([f"Note: {res['note']}.", ""] if res.get("note") else []),
        "Times are the minimum over interleaved repeats (median in brackets); peak memory is the "
        "compiled executable's temp + argument + output bytes (XLA buffer assignment).",
        "",
    ]
    for _, suffix in FORMS:
        lines += _step_markdown(
            res.get("train_step" + suffix), res.get("agreement_rel_err" + suffix)
        )
    sc = res.get("scaling")
    if sc:
        for key, axis, fit in (("vs_time", "time", "fit_time"), ("vs_batch", "batch", "fit_batch")):
            f = sc[fit]
            lines += [
                f"## Cost against {axis} (library train step, H={sc['hidden']})",
                "",
                f"Fitted exponents: time ~ {axis}^{f['time_exponent']:.2f}, peak memory ~ "
                f"{axis}^{f['memory_exponent']:.2f}.",
                "",
                "| batch | T | time s (median) | peak MB |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {r['batch']} | {r['time']} | {r['min_s']:.4f} ({r['median_s']:.4f}) | "
                f"{r['peak_bytes'] / 1e6:.1f} |"
                for r in sc[key]
            ]
            lines.append("")
    rm = res.get("remat")
    if rm:
        name = f"remat_{rm['chunk']}"
        lines += [
            f"## Gradient checkpointing (library, cfg.remat = {rm['chunk']}, T = 784)",
            "",
            "| variant | time s (median) | peak MB |",
            "|---|---|---|",
        ]
        for v in ("no_remat", name):
            s = rm[v]
            lines.append(
                f"| {v} | {s['min_s']:.3f} ({s['median_s']:.3f}) | {s['peak_bytes'] / 1e6:.1f} |"
            )
        lines += ["", f"Memory reduction {rm['memory_reduction']:.1f}x for "
                  f"{rm['time_ratio']:.2f}x time.", ""]  # fmt: skip
    ode = res.get("ode")
    if ode:
        la = ode["latency"]
        lines += [
            f"## ConvODENet inference latency (batch {la['batch']}, {la['image']}x{la['image']}x3,"
            " Euler, piecewise constant)",
            "",
            f"Against n_steps (K = {la['K_fixed']}): exponent {la['exponent_n_steps']:.2f}; "
            f"against K (n_steps = {la['steps_fixed']}): exponent {la['exponent_K']:.2f}.",
            "",
            "| n_steps | K | latency s (median) |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['steps']} | {la['K_fixed']} | {r['min_s']:.4f} ({r['median_s']:.4f}) |"
            for r in la["vs_n_steps"]
        ]
        lines += [
            f"| {la['steps_fixed']} | {r['K']} | {r['min_s']:.4f} ({r['median_s']:.4f}) |"
            for r in la["vs_K"]
        ]
        c = ode["compile"]
        lines += [
            "",
            f"## Compile time of odeint ({c['method']}, MLP field width {c['width']}, K={c['K']})",
            "",
            "| n_steps | lax.scan s | unrolled s |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['n_steps']} | {r['scan_compile_s']:.2f} | {r['unrolled_compile_s']:.2f} |"
            for r in c["rows"]
        ]
        ts = ode.get("train_step")
        if ts:
            lines += [
                "",
                f"## ConvODENet training step (width {ts['width']}, K = n_steps = {ts['K']}, "
                f"Euler, piecewise constant, batch {ts['batch']}, {ts['image']}x{ts['image']}x3, "
                "value and gradient, BatchNorm in training mode)",
                "",
                "| variant | parameters | seconds / step (median) | compile s |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {name} | {r['params']:,} | {r['min_s']:.3f} ({r['median_s']:.3f}) | "
                f"{_fmt(r.get('compile_s'))} |"
                for name, r in ts["rows"].items()
            ]
        tc = ode.get("train_compile")
        if tc:
            lines += [
                "",
                f"## Compile time of a ConvODENet training step against n_steps = K (width "
                f"{tc['width']})",
                "",
                "| n_steps | lax.scan s | unrolled s |",
                "|---|---|---|",
            ]
            lines += [
                f"| {r['n_steps']} | {r['scan_compile_s']:.2f} | {r['unrolled_compile_s']:.2f} |"
                for r in tc["rows"]
            ]
        cb = ode["change_of_basis"]
        lines += [
            "",
            f"## Change of basis of a CIFAR-size ConvODENet ({cb['model_params']:,} parameters, "
            f"K {cb['K_src']} -> {cb['K_dst']})",
            "",
            f"`basis_ode.compress`: {cb['compress_min_s']:.4f} s. Per-entry solve (reference "
            f"style): {cb['per_entry_extrapolated_s']:.1f} s ({cb['note']}). Ratio "
            f"{cb['speedup']:.0f}x; max difference {cb['per_entry_vs_matrix_max_abs_diff']:.1e}.",
            "",
        ]
        mem = ode["memory"]
        lines += [
            f"## Compressed models (inference, batch {mem['batch']}, n_steps {mem['n_steps']})",
            "",
            "| K | parameters | parameter MB | peak MB |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['K']} | {r['params']:,} | {r['param_bytes'] / 1e6:.2f} | "
            f"{r['peak_bytes'] / 1e6:.1f} |"
            for r in mem["rows"]
        ]
        lines.append("")
    tg = targets(res)
    if tg:
        head = "| comparison | measured | threshold | reached |"
        lines += ["## Thresholds", "", head, "|---|---|---|---|"]
        lines += [f"| {d} | {v:.2f} | {w} | {'yes' if ok else 'no'} |" for d, v, w, ok in tg]
        lines.append("")
    if res.get("train_throughput"):
        from . import train_throughput

        lines += train_throughput.markdown_lines(res["train_throughput"])
    if res.get("ensemble"):
        from . import ensemble

        lines += ensemble.markdown_lines(res["ensemble"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="about two minutes on a 2-core CPU")
    group.add_argument("--full", action="store_true", help="full size (GPU)")
    group.add_argument("--smoke", action="store_true", help="smallest configuration")
    parser.add_argument("--out", default=None, help="output folder")
    parser.add_argument("--report", default=None, help="re-render FILE.json (no measurement)")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="expose the CPU as this many JAX devices for the data-parallel train-step variant "
        "(default: noisy_dyn.cpu_devices_for(batch), one per core; 1: off)",
    )
    args = parser.parse_args(argv)
    if args.report:
        path = Path(args.report)
        res = json.loads(path.read_text())
        path.with_suffix(".md").write_text(markdown(res))
        from . import _plots

        _plots.plot_all(res, path.parent, path.stem)
        print(markdown(res))
        return
    mode = "full" if args.full else "smoke" if args.smoke else "quick"
    if args.cpu_devices != 1:  # before JAX starts: the CPU as several devices (GPUs unaffected)
        import noisy_dyn

        B = MODES[mode]["step"][0]
        noisy_dyn.use_cpu_devices(args.cpu_devices or noisy_dyn.cpu_devices_for(B))
    res = run_suite(mode, args.out)
    print(markdown(res))


if __name__ == "__main__":
    main()
