"""Stochastic against deterministic inference, both noise forms: inference.md and inference.png.

Reads ``reference/study.json`` and ``ito/study.json`` (rows of ``python -m noisy_dyn study
--inference-draws 16``) next to this file and writes, beside them, ``inference.md`` (one line per
form, perturbation and level: each inference's mean accuracy and the difference paired by seed,
stochastic minus deterministic, with its 95 % interval and Holm-adjusted p-value) and
``inference.png`` (those differences with their intervals, one panel per form).
"""

import json
from pathlib import Path

from matplotlib.figure import Figure

HERE = Path(__file__).parent
FORMS = {"reference": "reference form, sigma_add = 0.03, sigma_mult = 0.02",
         "ito": "Ito form, sigma = 0.1"}  # fmt: skip


def pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def main() -> None:
    lines = ["| form | perturbation | level | deterministic % | stochastic % | "
             "stochastic - deterministic [95% CI] | p (Holm) |", "|" + "---|" * 7]  # fmt: skip
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, len(FORMS), sharey=True)
    for ax, (form, label) in zip(axes, FORMS.items()):
        rows = json.loads((HERE / form / "study.json").read_text())
        det = {(r["perturbation"], r["level"]): r for r in rows
               if r["inference"] == "deterministic" and r["sigma_add"] > 0}  # fmt: skip
        sto = [r for r in rows if r["inference"] != "deterministic"]
        for r in sto:
            d = det[(r["perturbation"], r["level"])]
            ci = f"{pts(r['inference_diff_mean'])} [{pts(r['inference_diff_ci_low'])}, " \
                 f"{pts(r['inference_diff_ci_high'])}]"  # fmt: skip
            if r["inference_diff_ci_low"] > 0 or r["inference_diff_ci_high"] < 0:
                ci = f"**{ci}**"
            lines.append(f"| {form} | {r['perturbation']} | {r['level']:g} | "
                         f"{100 * d['mean']:.1f} | {100 * r['mean']:.1f} | {ci} | "
                         f"{r['inference_p_holm']:.3g} |")  # fmt: skip
        names = [f"{r['perturbation']} {r['level']:g}" for r in sto]
        mean = [100 * r["inference_diff_mean"] for r in sto]
        err = [
            [100 * (r["inference_diff_mean"] - r["inference_diff_ci_low"]) for r in sto],
            [100 * (r["inference_diff_ci_high"] - r["inference_diff_mean"]) for r in sto],
        ]
        ax.errorbar(range(len(sto)), mean, yerr=err, fmt="o", ms=4, capsize=2)
        ax.axhline(0.0, color="0.5", lw=1)
        ax.set_xticks(range(len(sto)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{label}\n({sto[0]['inference']}, {sto[0]['n']} seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("stochastic - deterministic\n(points of accuracy, 95 % CI)", fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "inference.png", dpi=110)
    legend = ("\n\nDifferences paired by seed (the same 16 members read both ways); 95 % "
              "percentile-bootstrap intervals over seeds; p: two-sided sign-flip p-value, Holm "
              "over the 13 rows of each form. Bold: the interval excludes zero.\n")  # fmt: skip
    (HERE / "inference.md").write_text("\n".join(lines) + legend)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
