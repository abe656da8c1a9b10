"""Files of a plan: ``plan.json``, ``plan.md`` and ``frontier.png``, and the run pipeline.

An experiment driver (files, plots), re-exported by :mod:`basis_ode.experiments`; the planner
it calls is :func:`basis_ode.measure_frontier` and :meth:`basis_ode.Frontier.choose`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainkit import atomic_write_text

from ._budget import BUDGETS, COSTS, Budget, as_budgets
from ._frontier import Frontier, Point, pareto

__all__ = ["frontier_markdown", "frontier_plot", "write_plan"]

_WORDS = {"latency_ms": "latency (ms)", "model_bytes": "model bytes", "peak_bytes": "peak bytes"}


def _cost(p: Point, c: str) -> str:
    v = getattr(p, c)
    if v is None:
        return "n/a"
    return BUDGETS[c].number(v)


def _cert(p: Point) -> str:
    c = p.certificate
    if c is None:
        return "not computed"
    mark = "yes" if c.converged else "**no**"
    return f"{mark} ({100 * c.change[0]:.2g} %)"


def frontier_markdown(
    frontier: Frontier, choices: Mapping[str, tuple[tuple[Budget, ...], Point | None]]
) -> str:
    """``plan.md``: conditions, the choice for each budget, and every point (Pareto marked)."""
    st = frontier.stats
    lines = [
        "## The choice for each budget, on the validation examples",
        "",
        f"Frontier of {st.get('points', len(frontier.points))} configurations of the trained "
        f"{frontier.source.label} model, measured on {st.get('validation_examples', '?')} "
        f"validation examples (certificates on the first {st.get('certificate_examples', '?')}, "
        f"tolerance {100 * _tolerance(frontier):.3g} % on the logits from n to 4n steps); "
        f"latency and peak memory per batch of {frontier.batch_size} on {frontier.device}. "
        + (f"Conditions: {frontier.notes}. " if frontier.notes else "")
        + f"{st.get('compilations', '?')} compilations for {st.get('structures', '?')} "
        f"program structures, {st.get('seconds', 0.0):.0f} s in all.",
        "",
        "| budget | choice | validation accuracy | latency (ms) | model bytes | peak bytes | "
        "certified (logit change) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (budgets, p) in choices.items():
        what = name or ", ".join(b.describe() for b in budgets)
        if p is None:
            lines.append(f"| {what} | none fits | | | | | |")
            continue
        lines.append(
            f"| {what} | {p.config.label} | {100 * p.accuracy:.2f} % | "
            + " | ".join(_cost(p, c) for c in COSTS)
            + f" | {_cert(p)} |"
        )
    flags = pareto(frontier.points)
    pts = frontier.points
    order = sorted(range(len(pts)), key=lambda i: (-pts[i].accuracy, pts[i].model_bytes))
    lines += [
        "",
        "## Every measured configuration",
        "",
        "Pareto: no other point has at least its accuracy and at most each of its three costs, "
        "one strictly.",
        "",
        "| configuration | search | validation accuracy | latency (ms) | model bytes | peak bytes "
        "| certified (logit change) | Pareto |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i in order:
        p = frontier.points[i]
        lines.append(
            f"| {p.config.label} | {p.search} | {100 * p.accuracy:.2f} % | "
            + " | ".join(_cost(p, c) for c in COSTS)
            + f" | {_cert(p)} | {'yes' if flags[i] else ''} |"
        )
    return "\n".join(lines) + "\n"


def _tolerance(frontier: Frontier) -> float:
    for p in frontier.points:
        if p.certificate is not None:
            return p.certificate.tolerance
    return float("nan")


def frontier_plot(
    frontier: Frontier,
    choices: Mapping[str, tuple[tuple[Budget, ...], Point | None]],
    path: str | os.PathLike,
) -> None:
    """``frontier.png``: validation accuracy against each cost; Pareto points joined, points
    that fail the certificate crossed, per-block points as triangles, each budget's limit
    dashed on its cost's panel and each choice starred."""
    from matplotlib.figure import Figure  # no pyplot: no global backend switch

    pts = frontier.points
    costs = [c for c in COSTS if any(getattr(p, c) is not None for p in pts)]
    fig = Figure(figsize=(4.2 * len(costs), 3.8))
    axes = fig.subplots(1, len(costs), squeeze=False)[0]
    colours = ["tab:red", "tab:green", "tab:purple", "tab:orange"]
    for ax, c in zip(axes, costs):
        flags = pareto(pts, (c,))
        for p, ok in zip(pts, flags):
            x = getattr(p, c)
            if x is None:
                continue
            marker = "^" if p.search == "per-block" else ("x" if not p.certified else "o")
            ax.scatter(x, 100 * p.accuracy, s=14, marker=marker,
                       color="tab:blue" if ok else "0.7", zorder=2)  # fmt: skip
        front = sorted((getattr(p, c), 100 * p.accuracy) for p, ok in zip(pts, flags) if ok)
        if front:
            ax.step(*zip(*front), where="post", color="tab:blue", lw=1, zorder=1)
        for j, (name, (budgets, choice)) in enumerate(choices.items()):
            col = colours[j % len(colours)]
            for b in budgets:
                if b.cost == c:
                    ax.axvline(b.limit, ls="--", color=col, lw=1)
            if choice is not None and getattr(choice, c) is not None:
                ax.scatter(getattr(choice, c), 100 * choice.accuracy, marker="*", s=160,
                           color=col, edgecolor="k", zorder=3, label=name or "choice")  # fmt: skip
        ax.set(xlabel=_WORDS[c], ylabel="validation accuracy (%)")
        ax.set_xscale("log")
        lo = min(100 * p.accuracy for p in frontier.optimal()) if pts else 0.0
        ax.set_ylim(max(0.0, lo - 5.0), 100.5)
    if any(c is not None for _, c in choices.values()):
        axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{frontier.source.label} (o certified, x not converged, ^ per block)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_plan(
    out: str | os.PathLike,
    frontier: Frontier,
    choices: Mapping[str, tuple[tuple[Budget, ...], Point | None]],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``plan.json``, ``plan.md`` and ``frontier.png`` into ``out`` (created).

    Arguments:
        out: the folder.
        frontier: the measured frontier.
        choices: ``{name: (budgets, chosen point or None)}`` (None: nothing fits).
        meta: anything else for ``plan.json`` (command, data, date).

    Returns:
        The folder.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": dict(meta or {}),
        "choices": {
            name: {"budget": {b.cost: b.limit for b in budgets},
                   "choice": None if p is None else p.to_json()}
            for name, (budgets, p) in choices.items()
        },
        "frontier": frontier.to_json(),
    }  # fmt: skip
    atomic_write_text(out / "plan.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(out / "plan.md", frontier_markdown(frontier, choices))
    frontier_plot(frontier, choices, out / "frontier.png")
    return out


def budgets_from_flags(
    latency_ms: float | None, model_bytes: int | None, peak_bytes: int | None
) -> tuple[Budget, ...]:
    """The budgets the command line gave (at least one)."""
    given = {"latency_ms": latency_ms, "model_bytes": model_bytes, "peak_bytes": peak_bytes}
    budgets = tuple(BUDGETS[c](v) for c, v in given.items() if v is not None)
    if not budgets:
        raise ValueError("give a budget: --latency-ms X, --bytes Y and/or --peak-bytes Z.")
    return as_budgets(budgets)
