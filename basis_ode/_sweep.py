"""The compression sweep: compress a trained model to every (basis, K), evaluate every (scheme,
n_steps), time the forward pass and write ``sweep.json``, ``sweep.md`` and two plots.

An experiment driver (files, latency timing, plots), re-exported by
:mod:`basis_ode.experiments`; the linear maps it calls are :func:`basis_ode.compress` and
:class:`basis_ode.BasisExpansion`'s.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from trainkit.internal import lookup

from ._bases import BASES, Basis
from ._compress import PROJECT, CompressionMap, as_compression_map, compress, param_bytes
from ._eval_data import EvalData, pad_eval_data, peak_memory, unpack
from ._expansion import basis_of
from ._integrate import EULER, ButcherTableau, scheme_by_name, scheme_name
from ._models import count_params

__all__ = ["compression_sweep"]


def compression_sweep(
    model: Any,
    variables: Mapping[str, Any],
    data: Sequence[Any],
    *,
    bases: Iterable[type[Basis] | str],
    Ks: Iterable[int],
    n_steps_list: Iterable[int],
    methods: Iterable[ButcherTableau | str] = (EULER,),
    out_dir: str | os.PathLike[str],
    compress_method: CompressionMap | str = PROJECT,
    batch_size: int = 256,
    repeats: int = 5,
    progress: bool = True,
    split: str | None = None,
) -> list[dict[str, Any]]:
    """Compress a trained model to every (basis, K) and evaluate every (scheme, n_steps).

    For each configuration the row holds: the accuracy on ``data``, trainable parameters,
    parameter bytes (``params`` only; ``state_bytes`` for the statistics), the median latency of
    a jit-compiled forward pass on one batch (``block_until_ready``, after a warm-up call, over
    ``repeats`` runs), and ``peak_bytes``: argument + output + temporary buffer bytes of the
    compiled executable from ``compiled.memory_analysis()`` (XLA's static buffer assignment for
    one batch, not a measured process high-water mark; None where the backend gives no
    analysis). The first rows
    (``compressed = False``) evaluate the model as trained.

    Arguments:
        model: a :class:`ConvODENet` or :class:`ODETransformerTagger` (anything with a ``basis``
            the ``n_steps`` and ``scheme`` call keywords).
        variables: its trained variables.
        data: ``(inputs, labels)``, or ``(tokens, tags, mask)`` / ``(tokens, tags, lengths)`` for
            the tagger (accuracy over real tokens).
        bases: target families: :class:`basis_ode.Basis` subclasses such as ``Hat`` (or their
            names, "hat", as given on the command line).
        Ks: target K values (combinations a family rejects, e.g. odd K for ``PiecewiseLinear``,
            are skipped and listed in the JSON under ``"skipped"``).
        n_steps_list: step counts to evaluate.
        methods: integration schemes to evaluate: :class:`basis_ode.ButcherTableau` objects or
            their names ("euler", "midpoint", "rk4", "rk4_38"), as given on the command line.
        out_dir: where ``sweep.json``, ``sweep.md``, ``accuracy_vs_K.png`` and
            ``accuracy_vs_n_steps.png`` are written (created if missing).
        compress_method: ``Project()`` or ``Interpolate()`` (see :func:`compress`); a name still
            works and warns. The rows and the metadata name it (``"project"``, ...).
        batch_size: evaluation batch size (latency and memory are for one such batch).
        repeats: timed repeats for the median latency.
        progress: show a tqdm bar (on a terminal only: none in a piped log).
        split: which split ``data`` is (e.g. ``"validation"``), written into ``sweep.json``
            (``meta.split``) and the head of ``sweep.md``. Choose K and n_steps on a
            validation split; the test split is for the final number of the chosen model.

    Returns:
        The list of rows (dicts) also written to ``sweep.json``.
    """
    xs, ys, mask = unpack(data)
    if len(xs) != len(ys) or len(xs) == 0:
        raise ValueError(
            "data: inputs and labels must be non-empty and equally long, got "
            f"{len(xs)} and {len(ys)}."
        )
    families = [_family(b) for b in bases]
    methods = [scheme_by_name(m) if isinstance(m, str) else m for m in methods]
    compress_method = as_compression_map(compress_method, "compression_sweep")
    n_steps_list = [int(n) for n in n_steps_list]
    src = basis_of(variables)
    if src is None:
        raise ValueError("compression_sweep: no ODE block (basis expansion) in the variables.")
    src_name, k_src = src.name, src.K
    os.makedirs(out_dir, exist_ok=True)
    evaluation = EvalData(*pad_eval_data(xs, ys, mask, min(batch_size, len(xs))), repeats)
    configs = [(False, type(src), k_src)] + [(True, f, int(k)) for f in families for k in Ks]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    per_config = len(methods) * len(n_steps_list)
    terminal = sys.stderr.isatty()  # no bar (no carriage returns) in a piped log
    bar = tqdm(total=len(configs) * per_config, desc="compression sweep",
               disable=not (progress and terminal))  # fmt: skip
    for compressed, family, K in configs:
        name = family.name
        try:
            dst = family(K)
        except (ValueError, TypeError) as err:
            skipped.append({"basis": name, "K": K, "reason": str(err)})
            bar.update(per_config)
            continue
        v = compress(variables, dst, method=compress_method) if compressed else variables
        chosen = compress_method.name if compressed else None
        head = dict(compressed=compressed, compress_method=chosen, basis=name, K=K)
        rows += _sweep_config(model, v, head, evaluation, methods, n_steps_list, bar)
    bar.close()
    meta = dict(
        src_basis=src_name,
        src_K=k_src,
        compress_method=compress_method.name,
        batch_size=batch_size,
        repeats=repeats,
        n_examples=int(len(xs)),
        split=split,
        backend=jax.default_backend(),
        peak_bytes_meaning="argument + output + temp bytes of the compiled executable "
        "(XLA memory_analysis, one batch), minus aliased bytes",
    )
    _write_sweep(out_dir, rows, skipped, meta)
    return rows


def _family(b: Any) -> type[Basis]:
    """A basis family (a Basis subclass), from itself or its name."""
    if isinstance(b, str):
        return lookup(b, BASES, "basis")
    if isinstance(b, type) and issubclass(b, Basis) and b is not Basis:
        return b
    raise TypeError(
        f"bases: expected basis families such as basis_ode.Hat (the class; K comes from Ks), "
        f"got {b!r}."
    )


def _sweep_config(model, v, head, data: EvalData, methods, n_steps_list, bar) -> list[dict]:
    """The rows of one (compressed?, basis, K) configuration: every scheme and step count."""
    sizes = dict(
        params=count_params(v["params"]),
        param_bytes=param_bytes(v["params"]),
        state_bytes=param_bytes({c: t for c, t in v.items() if c != "params"}),
    )
    rows = []
    for scheme in methods:
        for n in n_steps_list:
            acc, latency, peak = _evaluate(model, v, data, n=n, scheme=scheme)
            rows.append(
                dict(**head, scheme=scheme_name(scheme), n_steps=n, accuracy=acc, **sizes,
                     latency_s=latency, peak_bytes=peak)
            )  # fmt: skip
            bar.update(1)
    return rows


def _evaluate(model, v, data: EvalData, *, n: int, scheme: ButcherTableau) -> tuple:
    """Accuracy over the valid labels, median latency of one batch, and compiled peak bytes."""

    def forward(v, x, m):
        kw = {} if m is None else {"mask": m}
        return model.apply(v, x, train=False, n_steps=n, scheme=scheme, **kw)

    bs = data.batch_size

    def batch(a, i):
        return None if a is None else jnp.asarray(a[i : i + bs])

    compiled = jax.jit(forward).lower(v, batch(data.xs, 0), batch(data.mask, 0)).compile()
    correct = 0.0
    for i in range(0, len(data.xs), bs):
        pred = np.asarray(jnp.argmax(compiled(v, batch(data.xs, i), batch(data.mask, i)), -1))
        correct += float(((pred == data.ys[i : i + bs]) * data.valid[i : i + bs]).sum())
    x0, m0 = batch(data.xs, 0), batch(data.mask, 0)
    jax.block_until_ready(compiled(v, x0, m0))
    times = []
    for _ in range(max(1, data.repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(v, x0, m0))
        times.append(time.perf_counter() - t0)
    return correct / float(data.valid.sum()), float(np.median(times)), peak_memory(compiled)


def _write_sweep(out_dir, rows: list[dict], skipped: list[dict], meta: dict) -> None:
    with open(os.path.join(out_dir, "sweep.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "skipped": skipped}, f, indent=1)
    with open(os.path.join(out_dir, "sweep.md"), "w") as f:
        f.write(_markdown(rows, meta))
    _plots(rows, out_dir)


def _compressed_cell(row: dict[str, Any]) -> str:
    if not row["compressed"]:
        return "no"
    return f"yes ({row['compress_method']})" if row.get("compress_method") else "yes"


SWEEP_COLUMNS = ("basis", "K", "n_steps", "accuracy", "latency (ms)", "scheme", "compressed",
                 "params", "param bytes", "peak bytes")  # fmt: skip
"""The columns of ``sweep.md``: the configuration and the two numbers a reader compares first
(accuracy, latency), then how it was reached and its sizes."""


def _cells(r: dict[str, Any]) -> tuple[str, ...]:
    peak = "n/a" if r["peak_bytes"] is None else format(r["peak_bytes"], ",")
    return (r["basis"], str(r["K"]), str(r["n_steps"]), f"{100 * r['accuracy']:.2f} %",
            f"{1e3 * r['latency_s']:.2f}", r["scheme"], _compressed_cell(r), f"{r['params']:,}",
            f"{r['param_bytes']:,}", peak)  # fmt: skip


def sweep_table(rows: list[dict[str, Any]]) -> str:
    """The rows of ``sweep.json`` as the Markdown table of ``sweep.md`` (:data:`SWEEP_COLUMNS`)."""
    lines = ["| " + " | ".join(SWEEP_COLUMNS) + " |", "|" + "---|" * len(SWEEP_COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(_cells(r)) + " |" for r in rows]) + "\n"


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    where = f" of the {meta['split']} split" if meta.get("split") else ""
    head = (
        f"Compression sweep: source {meta['src_basis']} K={meta['src_K']}, "
        f"{meta['compress_method']}, accuracy on {meta['n_examples']} examples{where}, backend "
        f"{meta['backend']}, batch {meta['batch_size']}.\n\n"
    )
    return head + sweep_table(rows)


def _plots(rows: list[dict[str, Any]], out_dir: str | os.PathLike[str]) -> None:
    # Figures drawn without pyplot: no global backend switch, so a notebook keeps its inline plots.
    from matplotlib.figure import Figure

    comp = [r for r in rows if r["compressed"]]
    n_max = max(r["n_steps"] for r in rows)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for b in sorted({r["basis"] for r in comp}):
        for s in sorted({r["scheme"] for r in comp}):
            pts = sorted(
                (r["K"], r["accuracy"])
                for r in comp
                if r["basis"] == b and r["scheme"] == s and r["n_steps"] == n_max
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{b}, {s}")
    ax.set(xlabel="K (basis functions)", ylabel="accuracy", title=f"n_steps = {n_max}")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "accuracy_vs_K.png"), dpi=120)

    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    curves: dict[tuple, list[tuple[int, float]]] = {}
    for r in rows:
        key = (r["compressed"], r["basis"], r["K"], r["scheme"])
        curves.setdefault(key, []).append((r["n_steps"], r["accuracy"]))
    for key, pts in curves.items():
        pts = sorted(pts)
        label = f"{key[1]} K={key[2]}, {key[3]}" + ("" if key[0] else " (trained)")
        ax.plot(*zip(*pts), marker="o", label=label, linestyle="-" if key[0] else "--")
    ax.set(xlabel="n_steps", ylabel="accuracy")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "accuracy_vs_n_steps.png"), dpi=120)
