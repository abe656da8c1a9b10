"""The noise trade-off of both noise forms, read off two studies: a figure and a headline.

The digits demo trains, for each noise form, the deterministic twin and a few noise levels from
the same seeds as one ensemble (``noisy_dyn.experiments.study``). Its rows (``noisy_dyn._study``)
carry, for every level and perturbation, the difference in accuracy paired by seed against the
twin with its 95 % bootstrap interval and its Holm-adjusted sign-flip p-value. This module draws
those differences against the noise level, one panel per form (:func:`plot_tradeoff`), and
states in words what they show (:func:`headline`): which level of each form moves robustness
most, by how much, at what cost in clean accuracy, and whether the intervals and Holm's
correction let the data say so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainkit import MIN_SEEDS, interval_legend, interval_text

from ._study_row import StudyRow, study_rows_of

Rows = Sequence[StudyRow | Mapping[str, Any]]
"""Rows of a study: :class:`~noisy_dyn.study.StudyRow` records, or the dicts of ``study.json``."""


def level_label(level: tuple[float, float]) -> str:
    """``sigma=s`` when ``sigma_add = sigma_mult = s``, else ``sigma_add=a, sigma_mult=m``."""
    a, m = level
    return f"sigma={a:g}" if a == m else f"sigma_add={a:g}, sigma_mult={m:g}"


def noisy_levels(rows: Rows) -> list[tuple[float, float]]:
    """The noise levels of a study other than the deterministic twin, in study order."""
    rows = study_rows_of(rows)
    return [lv for lv in dict.fromkeys(r.config for r in rows) if lv != (0.0, 0.0)]


def _compared(rows: Sequence[StudyRow], level: tuple[float, float]) -> list[StudyRow]:
    """The rows of ``level`` compared with the twin, read deterministically (as in the paper)."""
    return [r for r in rows if r.config == level and r.paired is not None
            and r.paired.mean is not None and not r.draws]  # fmt: skip


def robustness_gain(rows: Rows, level: tuple[float, float]) -> float:
    """Mean paired difference (points of accuracy) over the perturbed rows of ``level``."""
    compared = _compared(study_rows_of(rows), level)
    diffs = [r.paired.mean for r in compared if not r.is_clean]
    return 100.0 * sum(diffs) / len(diffs) if diffs else float("nan")


def _points(row: StudyRow) -> str:
    """``+3.7 [+0.4, +6.7]`` (marked below 16 seeds, no interval below 3:
    ``trainkit.interval_text``)."""
    d = row.paired
    return interval_text(d.mean, d.ci_low, d.ci_high, row.n, signed=True)


def _verdict(rows: Sequence[StudyRow]) -> str:
    """What the perturbed rows of one level support, from the intervals and Holm's p-values."""
    up = [r for r in rows if r.paired.ci_low > 0]
    down = [r for r in rows if r.paired.ci_high < 0]
    held = [r for r in rows if r.paired.p_holm is not None and r.paired.p_holm < 0.05]
    n = len(rows)
    if held:
        sign = "gains" if all(r.paired.mean > 0 for r in held) else "changes"
        return (f"{len(held)} of {n} perturbed {sign} survive Holm's correction; "
                f"the interval excludes zero in {len(up)} up and {len(down)} down")  # fmt: skip
    if up or down:
        return (f"the interval excludes zero in {len(up)} rows up and {len(down)} down of {n}, "
                "but none survives Holm's correction: suggestive, not established")  # fmt: skip
    return f"every one of the {n} intervals spans zero: no effect shown at this many seeds"


def form_headline(label: str, rows: Rows) -> str:
    """One sentence for one noise form: its level of largest mean robustness gain, that gain,
    its clean-accuracy difference, and the verdict of the intervals."""
    rows = study_rows_of(rows)
    levels = noisy_levels(rows)
    if not levels:
        return f"{label}: no noisy level was trained."
    best = max(levels, key=lambda lv: robustness_gain(rows, lv))
    compared = _compared(rows, best)
    clean = [r for r in compared if r.is_clean]
    perturbed = [r for r in compared if not r.is_clean]
    n = compared[0].n
    clean_text = f"clean {_points(clean[0])}" if clean else "clean not measured"
    top = max(perturbed, key=lambda r: r.paired.mean)
    return (
        f"{label}, best level {level_label(best)} against its deterministic twin ({n} seeds): "
        f"{clean_text} points, mean over perturbations {robustness_gain(rows, best):+.1f} points "
        f"(largest: {top.perturbation.name} {top.level:g} {_points(top)}); "
        f"{_verdict(perturbed)}."
    )


def headline(studies: Mapping[str, Rows]) -> str:
    """The demo's headline: one sentence per noise form (:func:`form_headline`), label -> rows,
    and the note on intervals over fewer than 16 seeds (``trainkit.interval_legend``)."""
    lines = [form_headline(label, rows) for label, rows in studies.items()]
    fewest = min((r.n for rows in studies.values() for r in study_rows_of(rows)),
                 default=MIN_SEEDS)  # fmt: skip
    note = interval_legend(fewest)
    return "\n".join(lines + ([note] if note else []))


def _panel(ax: Any, label: str, rows: Rows) -> None:
    from matplotlib import colormaps

    colors = colormaps["tab20"]
    rows = study_rows_of(rows)
    levels = noisy_levels(rows)
    kinds = list(dict.fromkeys((r.perturbation.name, r.level, r.is_clean) for r in rows))
    compared = {(r.config, r.perturbation.name, r.level): r
                for lv in levels for r in _compared(rows, lv)}  # fmt: skip
    width = 0.8 / max(len(kinds), 1)
    for index, (kind, level, is_clean) in enumerate(kinds):
        here = [compared.get((lv, kind, level)) for lv in levels]
        xs = [i + (index - (len(kinds) - 1) / 2) * width for i, r in enumerate(here) if r]
        got = [r for r in here if r]
        if not got:
            continue
        mean = [100 * r.paired.mean for r in got]
        err = [[100 * (r.paired.mean - r.paired.ci_low) for r in got],
               [100 * (r.paired.ci_high - r.paired.mean) for r in got]]  # fmt: skip
        name = kind if is_clean else f"{kind} {level:g}"
        style = {"color": "k", "marker": "s"}
        if not is_clean:
            style = {"color": colors(index % 20), "marker": "o"}
        ax.errorbar(xs, mean, yerr=err, ls="none", ms=4, capsize=2, label=name, **style)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xticks(range(len(levels)), [level_label(lv).replace(", ", "\n") for lv in levels],
                  fontsize=7)  # fmt: skip
    ax.set_title(label, fontsize=9)
    ax.set_ylabel("accuracy - deterministic twin (points)", fontsize=8)
    ax.grid(alpha=0.3, axis="y")


def plot_tradeoff(studies: Mapping[str, Rows], path: str | os.PathLike) -> Path:
    """One panel per noise form: at each noise level, the difference to the deterministic twin
    paired by seed (clean and under each perturbation) with its 95 % interval. Above the grey
    line the noise helps; an interval crossing it is not evidence either way."""
    from matplotlib.figure import Figure  # no pyplot: notebooks keep their backend

    fig = Figure(figsize=(5.2 * len(studies) + 1.6, 4.0), layout="constrained")
    axes = fig.subplots(1, len(studies), squeeze=False).ravel()
    for ax, (label, rows) in zip(axes, studies.items()):
        _panel(ax, label, rows)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, loc="outside right center")
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path
