"""Robustness tables: accuracy of several models under test-time perturbations and attacks.

The paper lists its perturbations (additive white noise, multiplicative white noise,
salt and pepper, adversarial) without recoverable levels, so this module sweeps them and reports
curves: accuracy against level for every kind, and the mean DeepFool distance.
"""

import json
import math
import os
import warnings
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

from ._config import NoisyRNNConfig
from ._perturb import _valid_steps, deepfool, perturb
from ._perturbations import (
    Attack,
    DeepFool,
    Perturbation,
    RandomPerturbation,
    as_perturbations,
    perturbations_from_levels,
)
from ._solve import apply
from ._train import check_fit_cfg, check_split, evaluate_split
from ._types import Params

_DEFAULT_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "salt_pepper": (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
    "multiplicative": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "fgsm": (0.005, 0.01, 0.02, 0.05, 0.1),
    "pgd": (0.005, 0.01, 0.02, 0.05, 0.1),
    "deepfool": (),
}

DEFAULT_PERTURBATIONS: tuple[Perturbation, ...] = perturbations_from_levels(_DEFAULT_LEVELS)
"""The default sweeps (the paper gives no levels): ``Gaussian`` standard deviations 0.1-1.0,
``SaltPepper`` fractions 0.01-0.3, ``Multiplicative`` 0.1-1.0, l-infinity radii 0.005-0.1 of
``FGSM`` and of ``PGD`` (10 steps of ``2.5 eps / 10``, random start), and ``DeepFool()``, which
takes no level and reports distances."""

KINDS = tuple(_DEFAULT_LEVELS)

_perturb_jit = jax.jit(perturb)


@partial(jax.jit, static_argnums=(1,))
def _attack_jit(params: dict, cfg: Any, attack: Attack, key: Any, x, y, lengths) -> jax.Array:
    """``attack`` on the deterministic inference path, the padding after ``lengths`` left as
    it is (and, for PGD, outside the ball's budget)."""
    fn = lambda z: apply(params, z, cfg, lengths=lengths)  # noqa: E731
    mask = None if lengths is None else _valid_steps(x, lengths)
    return attack.attack(fn, x, y, key=key, mask=mask)


@partial(jax.jit, static_argnums=(1, 2))
def _deepfool_jit(params: dict, cfg: Any, attack: DeepFool, x, y, lengths) -> jax.Array:
    return deepfool(params, x, cfg, max_iter=attack.max_iter, overshoot=attack.overshoot,
                    lengths=lengths)  # fmt: skip


def _groups(perturbations: Sequence[Perturbation]) -> dict[str, list[Perturbation]]:
    """The perturbations by name in order of first appearance; one setting (norm, steps, ...)
    per name, as a table's column holds one kind."""
    groups: dict[str, list[Perturbation]] = {}
    for p in perturbations:
        groups.setdefault(p.name, []).append(p)
    for name, group in groups.items():
        settings = {p if isinstance(p, DeepFool) else p.with_level(0.0) for p in group}
        if len(settings) > 1:
            shown = sorted(map(repr, settings))
            raise ValueError(
                f"The {name} perturbations differ in more than their level ({shown}); run one "
                "robustness table per setting."
            )
        if isinstance(group[0], DeepFool) and len(group) > 1:
            raise ValueError("DeepFool() appears more than once; it has no level.")
    return groups


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


def _model_pairs(models: Mapping[str, Any]) -> dict[str, tuple[NoisyRNNConfig, Params]]:
    """``models`` as name -> ``(cfg, params)``; the former ``(params, cfg)`` warns."""
    if not models:
        raise ValueError("`models` is empty; pass a mapping name -> (cfg, params).")
    pairs = {}
    for name, entry in models.items():
        if not isinstance(entry, tuple | list) or len(entry) != 2:
            raise TypeError(f"models[{name!r}] must be a pair (cfg, params), as load_model gives.")
        cfg, params = entry
        if isinstance(params, NoisyRNNConfig) and not isinstance(cfg, NoisyRNNConfig):
            warnings.warn(
                f"models[{name!r}] is (params, cfg), the former order; pass (cfg, params), the "
                "order of load_model and fit.",
                DeprecationWarning,
                stacklevel=3,
            )
            cfg, params = params, cfg
        check_fit_cfg(cfg)
        pairs[name] = (cfg, params)
    return pairs


def robustness_table(
    models: Mapping[str, tuple[Any, Any]],
    test: Sequences | tuple,
    perturbations: Sequence[Perturbation] | Mapping[str, Sequence[float]] | None = None,
    *,
    key: PRNGKeyArray,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 512,
    pgd_steps: int = 10,
    deepfool_max_iter: int = 50,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy of each model under every perturbation and level.

    For a random perturbation (:class:`~noisy_dyn.attacks.Gaussian`,
    :class:`~noisy_dyn.attacks.SaltPepper`, :class:`~noisy_dyn.attacks.Multiplicative`, see
    :func:`noisy_dyn.attacks.perturb`) the accuracy of deterministic inference on ``perturb(xs, p,
    key=k)`` is reported, with the same draw ``k`` for every model. For an attack
    (:class:`~noisy_dyn.attacks.FGSM`, :class:`~noisy_dyn.attacks.PGD`) the level is the radius
    ``eps`` of an attack on each model's own gradients (PGD: ``steps`` steps of ``2.5 eps /
    steps``, random start). For :class:`~noisy_dyn.attacks.DeepFool` the mean and median l2 size
    ``||x_adv - x||`` of the DeepFool perturbation over the correctly classified test examples it
    fools, its mean relative size ``||x_adv - x|| / ||x||``, and the fraction fooled. Level ``j``
    of the ``i``-th perturbation name (in order of first appearance, DeepFool left out) draws
    with ``fold_in(fold_in(key, i), j)``.

    Arguments:
        models: name -> ``(cfg, params)``, e.g. what ``load_model`` returns (a
            :class:`trainkit.Loaded`). The former order ``(params, cfg)`` still works and warns.
        test: the test split, a :class:`trainkit.Sequences` or a tuple ``(xs, ys)`` / ``(xs, ys,
            lengths)``; with lengths, sequences padded after their ``lengths`` valid steps are
            read out at each row's own last step (the random perturbations and the attacks leave
            the padding untouched). Padded inputs without lengths are refused
            (``noisy_dyn.accuracy`` says when that check applies).
        perturbations: the perturbation objects, one setting per name (e.g. ``(Gaussian(0.1),
            Gaussian(0.3), PGD(0.01, steps=10), DeepFool())``); default
            :data:`DEFAULT_PERTURBATIONS` (with ``pgd_steps`` and ``deepfool_max_iter``). A
            ``{name: levels}`` mapping (the old spelling) still works and warns.
        key: PRNG key of the random perturbations and of PGD's random start.
        out_dir: if given, write ``robustness.json``, ``robustness.md`` and ``robustness.png``
            (one panel per kind, accuracy against level) there.
        batch_size: batch size of inference and attacks.
        pgd_steps, deepfool_max_iter: PGD's iterations and DeepFool's cap in the default
            perturbations (and a mapping); the objects carry their own.
        progress: show a tqdm progress bar (on a terminal only: none in piped logs).

    Returns:
        ``{"models": [...], "clean": {name: acc}, "kinds": {kind: {"levels": [...],
        "accuracy": {name: [...]}}}, "deepfool": {name: {"mean_l2", "median_l2",
        "mean_relative", "fooled"}}}``, ``kind`` the perturbation's ``name``.

    Examples:
        >>> import jax, noisy_dyn as nd
        >>> from noisy_dyn.attacks import FGSM, Gaussian
        >>> s = nd.data.load_digits(seed=0)
        >>> cfg = nd.NoisyRNNConfig(input_size=1, hidden_size=8, num_classes=10)
        >>> models = {"untrained": (cfg, nd.init_params(jax.random.key(0), cfg))}
        >>> table = nd.attacks.robustness_table(models, s.test, (Gaussian(0.1), FGSM(0.01)),
        ...                                     key=jax.random.key(1), progress=False)
        >>> sorted(table["kinds"]), table["kinds"]["gaussian"]["levels"]
        (['fgsm', 'gaussian'], [0.1])
    """
    models = _model_pairs(models)
    options = {"pgd_steps": pgd_steps, "deepfool_max_iter": deepfool_max_iter}
    if perturbations is None:
        perturbations = perturbations_from_levels(_DEFAULT_LEVELS, **options)
    groups = _groups(as_perturbations(perturbations, "robustness_table", **options))
    test = as_sequences(test, "test")
    names = list(models)
    xs, ys, lengths = check_split("test", test, models[names[0]][0])
    total = len(names) * (1 + sum(len(g) for g in groups.values()))
    bar = progress_bar(progress, total=total, desc="robustness", unit="eval")
    leveled = {k: g for k, g in groups.items() if not isinstance(g[0], DeepFool)}
    kinds = {k: {"levels": [float(p.level) for p in g], "accuracy": {}} for k, g in leveled.items()}
    result: dict[str, Any] = {"models": names, "clean": {}, "kinds": kinds, "deepfool": {}}
    for name in names:
        cfg, params = models[name]
        check_split("test", (xs, ys, lengths), cfg)
        run = partial(_accuracy_under, params, cfg, (xs, ys, lengths), batch_size)
        result["clean"][name] = run(None, key)
        _tick(bar)
        for k_index, (kind, group) in enumerate(leveled.items()):
            accs = []
            for l_index, p in enumerate(group):
                accs.append(run(p, jax.random.fold_in(jax.random.fold_in(key, k_index), l_index)))
                _tick(bar)
            result["kinds"][kind]["accuracy"][name] = accs
        for group in groups.values():
            if isinstance(group[0], DeepFool):
                result["deepfool"][name] = _deepfool_sizes(params, cfg, group[0], (xs, ys, lengths),
                                                           batch_size)  # fmt: skip
                _tick(bar)
    if bar is not None:
        bar.close()
    if out_dir is not None:
        write_robustness(result, out_dir)
    return result


def _tick(bar: Any) -> None:
    if bar is not None:
        bar.update(1)


def _accuracy_under(
    params: dict, cfg: Any, test: tuple, batch_size: int, p: Perturbation | None, k: Any
) -> float:
    """Accuracy of one model on ``test`` perturbed by ``p`` (None: clean) drawn with ``k``."""
    xs, ys, lengths = test
    if isinstance(p, RandomPerturbation):
        xs = np.asarray(_perturb_jit(jnp.asarray(xs), p, key=k, lengths=lengths))
    elif isinstance(p, Attack):
        xs = _attack_batched(partial(_attack_jit, params, cfg, p, k), xs, ys, lengths, batch_size)
    return evaluate_split(params, xs, ys, cfg, lengths, batch_size)[0]


def _deepfool_sizes(params: dict, cfg: Any, p: DeepFool, test: tuple, batch_size: int) -> dict:
    """DeepFool's perturbation sizes over the correctly classified examples it fools."""
    xs, ys, lengths = test
    adv = _attack_batched(partial(_deepfool_jit, params, cfg, p), xs, ys, lengths, batch_size)
    clean_pred = _predict(params, xs, cfg, lengths, batch_size)
    adv_pred = _predict(params, adv, cfg, lengths, batch_size)
    correct = clean_pred == ys
    fooled = correct & (adv_pred != clean_pred)
    dist = np.linalg.norm((adv - xs).reshape(len(xs), -1), axis=-1)
    rel = dist / np.maximum(np.linalg.norm(xs.reshape(len(xs), -1), axis=-1), 1e-12)
    return {
        "mean_l2": float(dist[fooled].mean()) if fooled.any() else float("nan"),
        "median_l2": float(np.median(dist[fooled])) if fooled.any() else float("nan"),
        "mean_relative": float(rel[fooled].mean()) if fooled.any() else float("nan"),
        "fooled": float(fooled.sum() / max(correct.sum(), 1)),
    }


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
