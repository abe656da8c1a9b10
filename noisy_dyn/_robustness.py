"""Robustness tables: accuracy of several models under test-time perturbations and attacks.

The paper lists its perturbations (additive white noise, multiplicative white noise,
salt and pepper, adversarial) without recoverable levels, so this module sweeps them and reports
curves: accuracy against level for every kind, and the mean DeepFool distance.
"""

import json
import math
import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from trainkit import Sequences, as_sequences, atomic_write_text
from trainkit.internal import progress_bar

from ._perturb import deepfool, fgsm, perturb, pgd
from ._solve import apply
from ._train import check_fit_cfg, check_split, evaluate_split

DEFAULT_PERTURBATIONS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "salt_pepper": (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
    "multiplicative": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "fgsm": (0.005, 0.01, 0.02, 0.05, 0.1),
    "pgd": (0.005, 0.01, 0.02, 0.05, 0.1),
    "deepfool": (),
}
"""The default sweeps (the paper gives no levels): noise standard deviations, salt-and-pepper
fractions, and l-infinity radii of FGSM and of PGD (10 steps of ``2.5 eps / 10``, random start);
DeepFool takes no level and reports distances."""

KINDS = tuple(DEFAULT_PERTURBATIONS)
_RANDOM = ("gaussian", "salt_pepper", "multiplicative")

_perturb_jit = jax.jit(perturb, static_argnames=("kind",))


@partial(jax.jit, static_argnums=(1,))
def _fgsm_jit(params: dict, cfg: Any, eps: Any, x, y, lengths) -> jax.Array:
    return fgsm(params, x, y, cfg, eps, lengths=lengths)


@partial(jax.jit, static_argnums=(1, 3))
def _pgd_jit(params, cfg, eps, steps, key, x, y, lengths):
    step_size = 2.5 * eps / steps
    return pgd(params, x, y, cfg, eps, steps=steps, step_size=step_size, key=key, lengths=lengths)


@partial(jax.jit, static_argnums=(1, 2))
def _deepfool_jit(params: dict, cfg: Any, max_iter: int, x, y, lengths) -> jax.Array:
    return deepfool(params, x, cfg, max_iter=max_iter, lengths=lengths)


def _attack_batched(fn, xs: np.ndarray, ys: np.ndarray, lengths, batch_size: int) -> np.ndarray:
    """Apply ``fn(xb, yb, lb)`` over padded batches (one compiled shape) and concatenate."""
    n = len(xs)
    batch_size = min(batch_size, n)
    out = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        pad = batch_size - (stop - start)
        xb, yb = xs[start:stop], ys[start:stop]
        lb = None if lengths is None else lengths[start:stop]
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[:1], pad, axis=0)])
            yb = np.concatenate([yb, np.repeat(yb[:1], pad)])
            lb = None if lb is None else np.concatenate([lb, np.repeat(lb[:1], pad)])
        lb = None if lb is None else jnp.asarray(lb)
        out.append(np.asarray(fn(jnp.asarray(xb), jnp.asarray(yb), lb))[: stop - start])
    return np.concatenate(out)


def robustness_table(
    models: Mapping[str, tuple[dict, Any]],
    test: Sequences | tuple,
    perturbations: Mapping[str, Sequence[float]] | None = None,
    *,
    key: PRNGKeyArray,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 512,
    pgd_steps: int = 10,
    deepfool_max_iter: int = 50,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy of each model under every perturbation kind and level.

    For a random kind (``"gaussian"``, ``"salt_pepper"``, ``"multiplicative"``, see
    :func:`noisy_dyn.attacks.perturb`) the accuracy of deterministic inference on ``perturb(xs,
    kind, level, key=k)`` is reported, with the same draw ``k`` for every model. For ``"fgsm"`` and
    ``"pgd"`` the level is the l-infinity radius ``eps`` of an attack on each model's own gradients
    (PGD: ``pgd_steps`` steps of ``2.5 eps / pgd_steps``, random start). For ``"deepfool"`` the mean
    and median l2 size ``||x_adv - x||`` of the DeepFool perturbation over the correctly classified
    test examples it fools, its mean relative size ``||x_adv - x|| / ||x||``, and the fraction
    fooled.

    Arguments:
        models: name -> ``(params, cfg)``.
        test: the test split, a :class:`trainkit.Sequences` or a tuple ``(xs, ys)`` / ``(xs, ys,
            lengths)``; with lengths, sequences padded after their ``lengths`` valid steps are
            read out at each row's own last step (the random perturbations and the attacks leave
            the padding untouched). Padded inputs without lengths are refused
            (``noisy_dyn.accuracy`` says when that check applies).
        perturbations: kind -> levels; default :data:`DEFAULT_PERTURBATIONS` (give
            ``"deepfool": ()`` to include DeepFool).
        key: PRNG key of the random perturbations and of PGD's random start.
        out_dir: if given, write ``robustness.json``, ``robustness.md`` and ``robustness.png``
            (one panel per kind, accuracy against level) there.
        batch_size: batch size of inference and attacks.
        pgd_steps: PGD iterations.
        deepfool_max_iter: DeepFool's iteration cap.
        progress: show a tqdm progress bar (on a terminal only: none in piped logs).

    Returns:
        ``{"models": [...], "clean": {name: acc}, "kinds": {kind: {"levels": [...],
        "accuracy": {name: [...]}}}, "deepfool": {name: {"mean_l2", "median_l2",
        "mean_relative", "fooled"}}}``.
    """
    if not models:
        raise ValueError("`models` is empty; pass a mapping name -> (params, cfg).")
    perturbations = dict(DEFAULT_PERTURBATIONS if perturbations is None else perturbations)
    unknown = sorted(set(perturbations) - set(KINDS))
    if unknown:
        raise ValueError(f"Unknown perturbation kinds {unknown}; choose from {KINDS}.")
    for kind, levels in perturbations.items():
        for level in levels:
            if not math.isfinite(float(level)) or float(level) < 0:
                raise ValueError(f"Levels of {kind!r} must be finite and >= 0, got {level!r}.")
    test = as_sequences(test, "test")
    names = list(models)
    for name in names:
        entry = models[name]
        if not isinstance(entry, tuple | list) or len(entry) != 2:
            raise TypeError(f"models[{name!r}] must be a tuple (params, cfg).")
        check_fit_cfg(entry[1])
    xs, ys, lengths = check_split("test", test, models[names[0]][1])

    jobs = [(n, k, lv) for n in names for k, lvs in perturbations.items() for lv in lvs]
    jobs += [(n, "deepfool", None) for n in names if "deepfool" in perturbations]
    bar = progress_bar(progress, total=len(jobs) + len(names), desc="robustness", unit="eval")

    result: dict[str, Any] = {"models": names, "clean": {}, "kinds": {}, "deepfool": {}}
    level_kinds = [k for k in perturbations if k != "deepfool"]
    for kind in level_kinds:
        result["kinds"][kind] = {"levels": [float(v) for v in perturbations[kind]]}
        result["kinds"][kind]["accuracy"] = {}
    for name in names:
        params, cfg = models[name]
        check_split("test", (xs, ys, lengths), cfg)
        result["clean"][name] = evaluate_split(params, xs, ys, cfg, lengths, batch_size)[0]
        if bar is not None:
            bar.update(1)
        for k_index, kind in enumerate(level_kinds):
            accs = []
            for l_index, level in enumerate(perturbations[kind]):
                k = jax.random.fold_in(jax.random.fold_in(key, k_index), l_index)
                if kind in _RANDOM:
                    xp = _perturb_jit(jnp.asarray(xs), kind, float(level), key=k, lengths=lengths)
                    xp = np.asarray(xp)
                elif kind == "fgsm":
                    attack = partial(_fgsm_jit, params, cfg, level)
                    xp = _attack_batched(attack, xs, ys, lengths, batch_size)
                else:
                    attack = partial(_pgd_jit, params, cfg, level, pgd_steps, k)
                    xp = _attack_batched(attack, xs, ys, lengths, batch_size)
                accs.append(evaluate_split(params, xp, ys, cfg, lengths, batch_size)[0])
                if bar is not None:
                    bar.update(1)
            result["kinds"][kind]["accuracy"][name] = accs
        if "deepfool" in perturbations:
            attack = partial(_deepfool_jit, params, cfg, deepfool_max_iter)
            adv = _attack_batched(attack, xs, ys, lengths, batch_size)
            clean_pred = _predict(params, xs, cfg, lengths, batch_size)
            adv_pred = _predict(params, adv, cfg, lengths, batch_size)
            correct = clean_pred == ys
            fooled = correct & (adv_pred != clean_pred)
            dist = np.linalg.norm((adv - xs).reshape(len(xs), -1), axis=-1)
            rel = dist / np.maximum(np.linalg.norm(xs.reshape(len(xs), -1), axis=-1), 1e-12)
            result["deepfool"][name] = {
                "mean_l2": float(dist[fooled].mean()) if fooled.any() else float("nan"),
                "median_l2": float(np.median(dist[fooled])) if fooled.any() else float("nan"),
                "mean_relative": float(rel[fooled].mean()) if fooled.any() else float("nan"),
                "fooled": float(fooled.sum() / max(correct.sum(), 1)),
            }
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if out_dir is not None:
        write_robustness(result, out_dir)
    return result


def _predict(params: dict, xs: np.ndarray, cfg: Any, lengths, batch_size: int) -> np.ndarray:
    fn = lambda x, y, lb: jnp.argmax(apply(params, x, cfg, lengths=lb), axis=-1)  # noqa: E731
    return _attack_batched(fn, xs, np.zeros(len(xs), np.int32), lengths, batch_size)


def to_markdown(result: dict[str, Any]) -> str:
    """The table as Markdown: clean accuracy, one table per kind (rows models, columns levels),
    and the DeepFool distances."""
    names = result["models"]
    lines = ["## Clean accuracy", "", "| model | accuracy |", "|---|---|"]
    lines += [f"| {n} | {result['clean'][n]:.4f} |" for n in names]
    for kind, data in result["kinds"].items():
        levels = data["levels"]
        lines += ["", f"## {kind} (accuracy against level)", ""]
        lines.append("| model | " + " | ".join(f"{lv:g}" for lv in levels) + " |")
        lines.append("|---|" + "---|" * len(levels))
        for n in names:
            lines.append(f"| {n} | " + " | ".join(f"{a:.4f}" for a in data["accuracy"][n]) + " |")
    if result["deepfool"]:
        lines += ["", "## DeepFool (over correctly classified examples it fools)", ""]
        lines += [
            "| model | mean l2 | median l2 | mean relative | fooled |",
            "|---|---|---|---|---|",
        ]
        for n, d in result["deepfool"].items():
            lines.append(
                f"| {n} | {d['mean_l2']:.4f} | {d['median_l2']:.4f} | {d['mean_relative']:.4f} | "
                f"{d['fooled']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot_robustness(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per kind, accuracy against level (level 0 = clean), and a DeepFool panel."""
    # Drawn without pyplot: no global backend switch, so a notebook keeps its inline plots.
    from matplotlib.figure import Figure

    kinds = list(result["kinds"])
    panels = len(kinds) + (1 if result["deepfool"] else 0)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    flat = axes.ravel()
    for ax, kind in zip(flat, kinds):
        data = result["kinds"][kind]
        for n in result["models"]:
            ax.plot([0.0] + data["levels"], [result["clean"][n]] + data["accuracy"][n], "o-",
                    ms=3, label=n)  # fmt: skip
        ax.set_title(kind)
        ax.set_xlabel("eps" if kind in ("fgsm", "pgd") else "level")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    if result["deepfool"]:
        ax = flat[len(kinds)]
        names = list(result["deepfool"])
        ax.bar(range(len(names)), [result["deepfool"][n]["mean_l2"] for n in names])
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title("DeepFool mean l2 distance")
    for ax in flat[panels:]:
        ax.axis("off")
    flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def write_robustness(result: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``robustness.json``, ``robustness.md`` and ``robustness.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "robustness.json",
        "markdown": out / "robustness.md",
        "png": out / "robustness.png",
    }
    atomic_write_text(paths["json"], json.dumps(result, indent=2))
    atomic_write_text(paths["markdown"], to_markdown(result))
    plot_robustness(result, paths["png"])
    return paths
