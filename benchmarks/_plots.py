"""PNG plots of a results dict (matplotlib, Agg backend; nothing is shown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_all(res: dict[str, Any], out: Path, tag: str) -> list[Path]:
    """Write every plot the results allow; return the paths written."""
    paths = []
    if res.get("train_step"):
        paths.append(_train_step(res, out / f"{tag}_train_step.png"))
    if res.get("scaling"):
        paths.append(_scaling(res["scaling"], out / f"{tag}_scaling.png"))
    if res.get("ode") and "latency" in res["ode"]:
        paths.append(_ode(res["ode"], out / f"{tag}_ode.png"))
    return paths


def _train_step(res: dict[str, Any], path: Path) -> Path:
    ts = res["train_step"]
    names = list(ts["impl"])
    mins = [ts["impl"][n]["min_s"] for n in names]
    meds = [ts["impl"][n]["median_s"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    y = range(len(names))
    ax.barh(y, meds, color="0.8", label="median")
    ax.barh(y, mins, color="C0", label="min")
    ax.axvline(ts["roofline_s"], color="C3", ls="--", label="matmul roofline")
    ax.set_yticks(list(y), names)
    ax.set_xlabel("seconds per step (value and gradient)")
    ax.set_title(f"Noisy RNN train step B={ts['batch']} H={ts['hidden']} T={ts['time']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _scaling(sc: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, axis, fit in (
        (axes[0], "vs_time", "time", "fit_time"),
        (axes[1], "vs_batch", "batch", "fit_batch"),
    ):
        rows = sc[key]
        xs = [r[axis] for r in rows]
        ax.loglog(
            xs, [r["min_s"] for r in rows], "o-", label=f"time ~ x^{sc[fit]['time_exponent']:.2f}"
        )
        ax.set_xlabel("T (steps)" if axis == "time" else "batch")
        ax.set_ylabel("seconds")
        ax2 = ax.twinx()
        ax2.loglog(xs, [r["peak_bytes"] / 1e6 for r in rows], "s--", color="C1",
                   label=f"peak MB ~ x^{sc[fit]['memory_exponent']:.2f}")  # fmt: skip
        ax2.set_ylabel("peak MB")
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper left")
    fig.suptitle("Noisy RNN train step: cost growth")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _ode(ode: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    la = ode["latency"]
    ax = axes[0]
    ax.loglog([r["steps"] for r in la["vs_n_steps"]], [r["min_s"] for r in la["vs_n_steps"]],
              "o-", label=f"vs n_steps (K={la['K_fixed']})")  # fmt: skip
    ax.loglog([r["K"] for r in la["vs_K"]], [r["min_s"] for r in la["vs_K"]], "s--",
              label=f"vs K (n_steps={la['steps_fixed']})")  # fmt: skip
    ax.set_xlabel("n_steps or K")
    ax.set_ylabel("latency s")
    ax.set_title("ConvODENet inference")
    ax.legend(fontsize=8)
    c = ode["compile"]
    ax = axes[1]
    ns = [r["n_steps"] for r in c["rows"]]
    ax.plot(ns, [r["scan_compile_s"] for r in c["rows"]], "o-", label="odeint (lax.scan)")
    ax.plot(ns, [r["unrolled_compile_s"] for r in c["rows"]], "s--", label="Python-unrolled")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n_steps")
    ax.set_ylabel("compile s")
    ax.set_title("compile time (RK4)")
    ax.legend(fontsize=8)
    mem = ode["memory"]
    ax = axes[2]
    Ks = [str(r["K"]) for r in mem["rows"]]
    ax.bar(Ks, [r["param_bytes"] / 1e6 for r in mem["rows"]], label="parameter MB")
    ax.plot(Ks, [r["peak_bytes"] / 1e6 for r in mem["rows"]], "o-", color="C3",
            label="peak MB (inference)")  # fmt: skip
    ax.set_xlabel("K (compressed from the first)")
    ax.set_title("compression")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
