"""Plan a trained ConvODENet for three budgets; re-check the choices; time the planner.

For a run folder of ``python -m basis_ode train``: measure the frontier once on the validation
split (``basis_ode.measure_frontier``, timed, compilations counted by the planner and by JAX's
own compile events), choose for each budget, then

- re-time the chosen configurations and the trained one, interleaved (round-robin over
  ``--recheck-repeats`` rounds, median), so load from other processes hits all alike;
- evaluate every choice and the trained configuration on the whole test split, example by
  example, with the paired difference (choice minus trained) and its 95 % bootstrap interval
  over the test examples (``trainkit.paired_difference``); the same for the best one-K-for-all
  (grid) point within each budget, to say whether per-block choices beat one K for all;
- save each chosen model (``basis_ode.save_model``) and, for Euler choices, the exported ResNet.

A budget is ``NAME:COST=VALUE[,COST=VALUE]`` with COST one of latency_ms, model_bytes,
peak_bytes; a VALUE ending in ``x`` is that fraction of the trained configuration's measured
cost (so budgets are fixed before any test example is seen)::

    python -m benchmarks.plan_study --run runs/plan/digits_refined_s0 \\
        --budget fast:latency_ms=0.5x --budget small:model_bytes=0.3x \\
        --budget both:latency_ms=0.75x,model_bytes=0.5x --out docs/results/basis_ode/plan_digits

Writes ``plan.json``, ``plan.md`` and ``frontier.png`` (plus ``<budget>/model.npz`` and
``<budget>/resnet/``) to ``--out`` and the planner's timing to ``--bench`` (JSON + Markdown).
With ``--frontier plan.json`` the stored measurement is chosen from again (other budgets),
re-checked and tested; its benchmark files are left as they are.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import basis_ode as bo
from basis_ode.experiments import frontier_markdown, load_run, write_plan
from benchmarks._common import machine, time_interleaved
from trainkit import paired_difference

RESULTS = Path(__file__).resolve().parent / "results"


class CompileEvents:
    """Counts XLA backend compilations of this process (JAX's monitoring events)."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on)

    def _on(self, event: str, duration: float, **_: Any) -> None:
        if event == self.EVENT:
            self.count += 1
            self.seconds += duration


def parse_budget(text: str, source: bo.Point) -> tuple[str, tuple[bo.Budget, ...]]:
    """``NAME:COST=VALUE,...`` -> (name, budgets); ``0.5x`` is half the source's cost."""
    name, _, spec = text.partition(":")
    budgets = []
    for item in spec.split(","):
        cost, _, value = item.partition("=")
        cls = {"latency_ms": bo.Latency, "model_bytes": bo.Bytes, "peak_bytes": bo.PeakMemory}[cost]
        v = float(value[:-1]) * getattr(source, cost) if value.endswith("x") else float(value)
        budgets.append(cls(v if cls is bo.Latency else int(v)))
    return name, tuple(budgets)


def _correct(model: Any, variables: Any, xs: np.ndarray, ys: np.ndarray, bs: int) -> np.ndarray:
    f = jax.jit(lambda v, x: model.apply(v, x))
    out = [np.asarray(f(variables, jnp.asarray(xs[i : i + bs]))).argmax(-1) for i in
           range(0, len(xs), bs)]  # fmt: skip
    return (np.concatenate(out) == ys).astype(np.float64)


def _recheck(entries: dict[str, tuple[Any, Any]], x0: np.ndarray, repeats: int) -> dict:
    """Latency of each (model, variables) on the batch ``x0``, timed round-robin."""
    fns = {}
    for name, (model, v) in entries.items():
        f = jax.jit(lambda v, x, m=model: m.apply(v, x)).lower(v, x0).compile()
        fns[name] = lambda f=f, v=v: f(v, x0)
    return {k: 1e3 * t["median_s"] for k, t in time_interleaved(fns, repeats, warmup=2).items()}


def _best_uniform(frontier: bo.Frontier, budgets: tuple[bo.Budget, ...]) -> bo.Point | None:
    grid = bo.Frontier(tuple(p for p in frontier.points if p.search == "grid"),
                       frontier.source, frontier.batch_size, frontier.device)  # fmt: skip
    try:
        return grid.choose(budgets)
    except bo.BudgetError:
        return None


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = paired_difference(a, b, n_boot=2000, seed=0)
    return {"mean": float(d.mean), "low": float(d.low), "high": float(d.high)}


def _space(args: argparse.Namespace) -> bo.SearchSpace:
    """The search space of the flags (None: the planner's default from the trained model)."""

    def ints(text: str | None) -> tuple[int, ...] | None:
        return None if text is None else tuple(int(k) for k in text.split(","))

    bases = None if args.bases is None else tuple(bo.BASES[b] for b in args.bases.split(","))
    schemes = tuple(bo.scheme_by_name(s) for s in args.schemes.split(","))
    return bo.SearchSpace(bases=bases, Ks=ints(args.Ks), n_steps=ints(args.n_steps_list),
                          schemes=schemes, max_walk_steps=args.max_walk_steps,
                          walk_from=(bo.FromBest(), bo.FromTrained()))  # fmt: skip


def study(args: argparse.Namespace) -> dict[str, Any]:
    events = CompileEvents()
    model, variables, splits = load_run(args.run)
    xv, yv = splits.validation
    val = (xv[: args.limit], yv[: args.limit]) if args.limit else (xv, yv)
    if args.frontier:  # a stored measurement: choose again, re-check and test
        stored = json.loads(Path(args.frontier).read_text())
        frontier = bo.Frontier.from_json(stored["frontier"])
        bench = stored["meta"]["bench"]  # the measurement's own machine, date and timing
    else:
        t0, n0 = time.perf_counter(), events.count
        frontier = bo.measure_frontier(model, variables, val, space=_space(args),
            batch_size=args.batch_size, certificate_examples=args.certificate_examples,
            notes=args.notes, progress=args.progress)  # fmt: skip
        bench = _bench(args, frontier, time.perf_counter() - t0, events.count - n0)
    source = next(p for p in frontier.points if p.config == frontier.source)
    choices = {}
    for text in args.budget:
        name, budgets = parse_budget(text, source)
        try:
            choices[name] = (budgets, frontier.choose(budgets))
        except bo.BudgetError as err:
            print(f"{name}: {err}")
            choices[name] = (budgets, None)
    report = _evaluate_choices(args, model, variables, splits, frontier, source, choices)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    meta = {"run": args.run, "split": "validation", "limit": args.limit, "bench": bench,
            "date": now, "budgets": args.budget, "command": args.command}  # fmt: skip
    write_plan(args.out, frontier, choices, meta)
    _write_report(Path(args.out), frontier, choices, report, meta)
    if not args.frontier:  # a stored measurement keeps its benchmark files
        _write_bench(Path(args.bench), bench)
    return report


def _bench(args: argparse.Namespace, frontier: bo.Frontier, seconds: float, events: int) -> dict:
    keys = ("points", "grid_points", "per_block_points", "structures", "evaluations",
            "compilations", "compile_seconds", "validation_examples",
            "certificate_examples")  # fmt: skip
    return {"plan_seconds": seconds, "backend_compilations": events,
            **{k: frontier.stats.get(k) for k in keys}, "machine": machine(),
            "notes": args.notes, "run": args.run, "what": args.what, "command": args.command,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip


def _evaluate_choices(args, model, variables, splits, frontier, source, choices) -> dict:
    xt, yt = splits.test
    out = Path(args.out)
    entries = {"trained": bo.adapt(model, variables, frontier.source)}
    rows = {}
    for name, (budgets, p) in choices.items():
        if p is None:
            continue
        entries[name] = bo.adapt(model, variables, p.config)
        bo.save_model(out / name / "model.npz", *entries[name])
        if p.config.scheme == bo.EULER:
            bo.export_resnet(out / name / "resnet", *entries[name])
        uni = _best_uniform(frontier, budgets)
        if uni is not None and uni.config != p.config:
            entries[f"{name} (one K)"] = bo.adapt(model, variables, uni.config)
        rows[name] = {
            "choice": p.config.label,
            "uniform": None if uni is None else uni.config.label,
        }
    x0 = jnp.asarray(xt[: frontier.batch_size])
    latency = _recheck(entries, x0, args.recheck_repeats)
    correct = {k: _correct(m, v, xt, yt, frontier.batch_size) for k, (m, v) in entries.items()}
    for name, row in rows.items():
        p = choices[name][1]
        row.update(planned_ms=p.latency_ms, recheck_ms=latency[name],
                   val_accuracy=p.accuracy, test_accuracy=float(correct[name].mean()),
                   vs_trained=_paired(correct[name], correct["trained"]))  # fmt: skip
        key = f"{name} (one K)"
        if key in correct:
            row.update(uniform_test_accuracy=float(correct[key].mean()),
                       uniform_recheck_ms=latency[key],
                       vs_uniform=_paired(correct[name], correct[key]))  # fmt: skip
    trained = {"label": source.config.label, "planned_ms": source.latency_ms,
               "recheck_ms": latency["trained"], "val_accuracy": source.accuracy,
               "test_accuracy": float(correct["trained"].mean())}  # fmt: skip
    return {"rows": rows, "trained": trained, "test_examples": int(len(yt))}


def _ci(d: dict[str, float]) -> str:
    return f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def _write_report(out: Path, frontier, choices, report, meta) -> None:
    t = report["trained"]
    lines = [
        f"Trained configuration {t['label']}: validation {100 * t['val_accuracy']:.2f} %, test "
        f"{100 * t['test_accuracy']:.2f} % ({report['test_examples']} test images), "
        f"{t['planned_ms']:.3g} ms planned, {t['recheck_ms']:.3g} ms re-checked.",
        "",
        "## The choices on the test set",
        "",
        "| budget | choice | val. acc. | test acc. | vs trained (points, 95 % CI) | planned ms | "
        "re-checked ms | best one-K point | its test acc. | choice vs it (points) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["rows"].items():
        budget = ", ".join(b.describe() for b in choices[name][0])
        uni = r.get("uniform") or "none fits"
        same = r.get("uniform") == r["choice"]
        lines.append(
            f"| {name}: {budget} | {r['choice']} | {100 * r['val_accuracy']:.2f} % | "
            f"{100 * r['test_accuracy']:.2f} % | {_ci(r['vs_trained'])} | {r['planned_ms']:.3g} | "
            f"{r['recheck_ms']:.3g} | {'the choice' if same else uni} | "
            + (f"{100 * r['uniform_test_accuracy']:.2f} % | {_ci(r['vs_uniform'])} |"
               if "vs_uniform" in r else " | |")
        )  # fmt: skip
    text = "\n".join(lines) + "\n\n" + frontier_markdown(frontier, choices)
    (out / "plan.md").write_text(text)
    doc = json.loads((out / "plan.json").read_text())
    doc["test"] = report
    (out / "plan.json").write_text(json.dumps(doc, indent=1) + "\n")


def _write_bench(stem: Path, bench: dict) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(bench, indent=1) + "\n")
    m = bench["machine"]
    md = [
        f"# What basis_ode.plan costs: {bench.get('what') or '`' + bench['run'] + '`'}",
        "",
        f"Machine: {m['backend']} ({m['device']}), {m['cpu_count']} cores, JAX {m['jax']}; "
        f"load average {m['load_average_1min']:.1f} at the end. {bench['notes']}. "
        f"Date {bench['date']}.",
        "",
        "| measured | value |",
        "|---|---|",
        f"| wall time of measure_frontier | {bench['plan_seconds']:.0f} s |",
        f"| configurations measured (grid + per block) | {bench['points']} "
        f"({bench['grid_points']} + {bench['per_block_points']}) |",
        f"| distinct program structures among them | {bench['structures']} |",
        f"| evaluations on the validation or certificate examples | {bench['evaluations']} |",
        f"| forward programs compiled by the planner | {bench['compilations']} "
        f"({bench['compile_seconds']:.0f} s) |",
        f"| XLA backend compilations in the process during the plan (all programs) | "
        f"{bench['backend_compilations']} |",
        f"| validation / certificate examples | {bench['validation_examples']} / "
        f"{bench['certificate_examples']} |",
    ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="output folder of `python -m basis_ode train`")
    p.add_argument("--budget", action="append", required=True, help="NAME:COST=VALUE[,...]")
    p.add_argument("--limit", type=int, default=None, help="first N validation examples")
    p.add_argument("--schemes", default="euler,midpoint", help="comma-separated schemes")
    p.add_argument("--bases", default=None, help="comma-separated basis families (default: "
                   "the trained one, hat, legendre)")  # fmt: skip
    p.add_argument("--Ks", default=None, help="comma-separated K (default: powers of two)")
    p.add_argument("--n-steps-list", default=None, help="comma-separated step counts")
    p.add_argument("--max-walk-steps", type=int, default=12, help="moves of one per-block walk")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--certificate-examples", type=int, default=512)
    p.add_argument("--recheck-repeats", type=int, default=15)
    p.add_argument("--notes", default="", help="conditions of the timings")
    p.add_argument("--what", default="", help="the planned model in words, for the title")
    p.add_argument(
        "--frontier",
        default=None,
        help="a stored plan.json: choose, re-check and test without measuring again",
    )
    p.add_argument("--progress", action="store_true", help="a progress bar on a terminal")
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument("--bench", default=None, help="benchmark stem, e.g. "
                   "benchmarks/results/plan_x (required unless --frontier)")  # fmt: skip
    args = p.parse_args(argv)
    if args.bench is None and args.frontier is None:
        p.error("--bench is required when the frontier is measured (no --frontier)")
    args.command = shlex.join(["python", "-m", "benchmarks.plan_study", *(argv or sys.argv[1:])])
    return study(args)


if __name__ == "__main__":
    main()
