"""Compression (change of basis without retraining), refinement, and the compression sweep.

Every ODE block keeps its unit's variables under ``"basis_coeffs"`` with a leading axis K in every
collection (parameters *and* BatchNorm statistics). A change of basis ``src -> dst`` is
one ``(K_dst, K_src)`` matrix ``P`` computed once (:func:`basis_ode.change_of_basis`, exact L2
projection ``M^-1 B``; or nodal interpolation), applied to every such leaf as
``einsum("ij,j...->i...", P, leaf)``. No data is touched; the result runs with any ``n_steps`` and
scheme, called with ``basis=dst.name``.

The variables know their basis: every ODE block writes a tag ``variables["basis"][<block>]``
named ``"<family>_K<K>"`` at init (:class:`basis_ode.ODEBlock`); :func:`compress` and
:func:`refine_variables` read it as the source basis, refuse a contradicting ``src_basis`` and
rewrite it to the new basis, so the model evaluates the new coefficients in the right family.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ._bases import Basis, basis_by_name
from ._block import COEFFS, TAG, check_same_basis, retag, tagged_basis
from ._models import count_params
from ._projection import change_of_basis, gram_matrix, interpolate, project, refine


def _as_dict(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _as_dict(v) for k, v in tree.items()}
    return tree


def _map_blocks(variables: Any, fn: Callable[[Any], Any]) -> tuple[Any, int]:
    """Apply ``fn`` to every ``basis_coeffs`` subtree of every collection; count the blocks."""
    count = 0

    def walk(tree: Any) -> Any:
        nonlocal count
        if not isinstance(tree, Mapping):
            return tree
        out = {}
        for k, v in tree.items():
            if k == COEFFS:
                out[k] = fn(_as_dict(v))
                count += 1
            else:
                out[k] = walk(v)
        return out

    return walk(variables), count


def _block_k(coeffs: Any) -> int:
    ks = {int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves(coeffs)}
    if len(ks) != 1:
        raise ValueError(
            f"an ODE block's coefficient leaves have different leading axes {sorted(ks)}; every "
            "leaf must have the leading axis K."
        )
    return ks.pop()


def _resolve_src(src_basis: str | Basis | None, K: int, tagged: Basis | None = None) -> Basis:
    if src_basis is None:
        if tagged is None:
            raise ValueError(
                f"the variables carry no basis tag (no {TAG!r} collection, e.g. built by hand or "
                "saved without it); pass the basis they are expressed in, e.g. "
                "src_basis='piecewise_constant'."
            )
        return tagged
    src = _resolve_named(src_basis, K)
    check_same_basis(src, tagged, "src_basis")
    return src


def _resolve_named(src_basis: str | Basis, K: int) -> Basis:
    if isinstance(src_basis, Basis):
        if src_basis.K != K:
            raise ValueError(
                f"src_basis has K = {src_basis.K} but the variables have K = {K}; pass the family "
                f"name (src_basis={src_basis.name!r}) to read K from the variables."
            )
        return src_basis
    if isinstance(src_basis, str):
        return basis_by_name(src_basis, K)
    raise TypeError(
        f"src_basis must be a basis family name (e.g. 'piecewise_constant') or a Basis, got "
        f"{type(src_basis).__name__}."
    )


def _keep_dtype(new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda n, o: jnp.asarray(n).astype(o.dtype), new, old)


def _block_residual(coeffs: Any, src: Basis, dst: Basis) -> tuple[float, float]:
    """``(lost, norm2)``: the squared L2(0, 1) distance from theta to its projection onto
    span(dst), and theta's squared L2 norm, summed over the leaves (closed forms)."""
    M = gram_matrix(src)
    P = change_of_basis(src, dst)
    Md = gram_matrix(dst)
    lost = total = 0.0
    for leaf in jax.tree_util.tree_leaves(coeffs):
        c = np.asarray(leaf, np.float64).reshape(src.K, -1)
        d = P @ c
        norm2 = float(np.einsum("ij,ik,jk->", M, c, c))
        lost += norm2 - float(np.einsum("ij,ik,jk->", Md, d, d))  # Pythagoras
        total += norm2
    return max(lost, 0.0), total


def compression_residual(
    variables: Mapping[str, Any],
    dst_basis: Basis,
    *,
    src_basis: str | Basis | None = None,
    collections: Sequence[str] = ("params",),
) -> float:
    """The relative squared L2 error of theta(t) after the projection onto ``dst_basis``.

    ``r = sum ||theta - P theta||^2 / sum ||theta||^2`` in L2(0, 1) over every leaf of every
    block in ``collections`` (closed forms with the Gram matrices, no sampling; ``P theta`` is
    the best approximation of theta in span(dst)). It says, before any data is touched, how far
    a compression moves the weights: r is near 0 for weights smooth in depth (refinement-trained
    models: 1e-4 to 1e-3 for K 8 -> 4 -> 2 on Fashion-MNIST, accuracy kept within 1 point) and
    near ``1 - K_dst / K_src`` for independent layers (directly trained models: 0.25 for
    8 -> 4, losing 1-4 points); the README has the measurements.

    Arguments:
        variables: model variables (tagged, or with ``src_basis``).
        dst_basis: the target basis.
        src_basis: the variables' basis (None: read from their tag).
        collections: the collections measured (default: the trainable parameters).

    Returns:
        r in [0, 1] (0 when theta lies in span(dst)).
    """
    tagged = tagged_basis(variables)
    lost = total = 0.0
    blocks: list[Any] = []
    for c in collections:
        _map_blocks({c: _as_dict(variables.get(c, {}))}, lambda b: blocks.append(b) or b)
    for coeffs in blocks:
        src = _resolve_src(src_basis, _block_k(coeffs), tagged)
        a, b = _block_residual(coeffs, src, dst_basis)
        lost, total = lost + a, total + b
    return lost / total if total > 0 else 0.0


def compress(
    variables: Mapping[str, Any],
    dst_basis: Basis,
    *,
    src_basis: str | Basis | None = None,
    method: str = "project",
) -> dict[str, Any]:
    """Re-express every ODE block's parameters and statistics in another basis.

    For each block, ``theta_dst = P theta_src`` leaf by leaf with ``P`` the ``(K_dst, K_src)``
    matrix of the L2 projection ``M^-1 B`` (``method="project"``; ``M`` the Gram matrix of dst,
    ``B_ij = int phi^dst_i phi^src_j``) or of nodal interpolation (``method="interpolate"``:
    theta sampled at dst's nodes). Use projection: in the README's measurements
    (refinement-trained and directly trained models, digits and Fashion-MNIST) it was as good as
    interpolation or better in 32 of 41 cases (projection won by up to 18 points at K = 1;
    interpolation by up to 3.9 when run with as few steps as the coarsest model, where it keeps
    exactly the layers those steps read); :func:`compression_residual` predicts the loss. Everything
    outside the blocks (stem, stitches, head) is returned unchanged, and the blocks' basis tags
    are rewritten to ``dst_basis``.

    Arguments:
        variables: model variables (``{"params": ..., "batch_stats": ..., "basis": ...}``).
        dst_basis: the target basis, e.g. ``PiecewiseConstant(4)`` or ``basis_by_name("hat", 5)``.
        src_basis: the basis the variables are expressed in (name, K read from the shapes; or a
            Basis with the right K). None: read from the variables' tag. A value that contradicts
            the tag raises ``ValueError`` naming both.
        method: "project" (L2 projection, the default) or "interpolate" (sample at dst's nodes).

    Returns:
        New variables with leading axis ``dst_basis.K`` in every block, tagged with
        ``dst_basis``: ``model.apply(new, x)`` evaluates them in ``dst_basis``. Dtypes are kept.
    """
    if not isinstance(dst_basis, Basis):
        raise TypeError(
            f"dst_basis must be a Basis such as basis_ode.Hat(4) or basis_by_name('hat', 4), got "
            f"{type(dst_basis).__name__}."
        )
    ops = {"project": project, "interpolate": interpolate}
    if method not in ops:
        raise ValueError(f"compress: method must be 'project' or 'interpolate', got {method!r}.")
    tagged = tagged_basis(variables)

    def one(coeffs: Any) -> Any:
        src = _resolve_src(src_basis, _block_k(coeffs), tagged)
        return _keep_dtype(ops[method](coeffs, src, dst_basis), coeffs)

    out, count = _map_blocks(_as_dict(variables), one)
    if count == 0:
        raise ValueError(
            f"compress: no ODE block found (no {COEFFS!r} entry) in the variables; pass the "
            "variables of a ConvODENet, ODETransformerTagger or a model built from ODEBlock."
        )
    return retag(out, dst_basis)


def refine_variables(
    variables: Mapping[str, Any], basis: str | Basis | None = None
) -> tuple[dict[str, Any], Basis]:
    """Function-preserving refinement of every ODE block (for refinement training).

    Piecewise constant K -> 2K (duplicated nodes), hat K -> 2K - 1 (midpoints inserted),
    piecewise linear K -> 2K, global families K -> 2K (zero padding): ``theta(t)`` and ``s(t)`` are
    unchanged at every t, so the model computes the same function when ``n_steps`` is scaled
    with the cells (e.g. doubled for piecewise constant with ``n_steps = K``). Queiruga et al.
    2021, section 4 (docs/basis_ode.md, "Refinement").

    Arguments:
        variables: model variables.
        basis: the current basis (family name, K read from the shapes; or a Basis). None: read
            from the variables' tag; a value that contradicts the tag raises ``ValueError``.

    Returns:
        ``(new_variables, new_basis)``; the new variables are tagged with ``new_basis``.
    """
    new_basis: list[Basis] = []
    tagged = tagged_basis(variables)

    def one(coeffs: Any) -> Any:
        src = _resolve_src(basis, _block_k(coeffs), tagged)
        fine, b = refine(coeffs, src)
        new_basis.append(b)
        return _keep_dtype(fine, coeffs)

    out, count = _map_blocks(_as_dict(variables), one)
    if count == 0:
        raise ValueError(f"refine_variables: no ODE block ({COEFFS!r} entry) in the variables.")
    if len(set(new_basis)) != 1:
        raise ValueError(
            f"refine_variables: the blocks have different K ({sorted(set(new_basis), key=str)}); "
            "refine models whose blocks share one basis."
        )
    return retag(out, new_basis[0]), new_basis[0]


def param_bytes(tree: Any) -> int:
    """Bytes of all leaves of a pytree: ``sum(leaf.size * leaf.dtype.itemsize)``."""
    return int(
        sum(
            int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
            for leaf in jax.tree_util.tree_leaves(tree)
        )
    )


def _peak_memory(compiled: Any) -> int | None:
    """Argument + output + temporary bytes of a compiled executable (minus aliased bytes)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - backends without the analysis
        return None
    if m is None:
        return None
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    total = sum(int(getattr(m, f, 0) or 0) for f in fields)
    return total - int(getattr(m, "alias_size_in_bytes", 0) or 0)


def _unpack(data: Sequence[Any]) -> tuple[Any, Any, Any]:
    """(inputs, labels, mask or None); a third entry of shape (N,) holds sequence lengths."""
    if len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1]), None
    if len(data) == 3:
        xs, ys, third = (np.asarray(a) for a in data)
        if third.ndim == 1:  # lengths -> mask
            third = np.arange(ys.shape[1])[None, :] < third[:, None]
        return xs, ys, third.astype(bool)
    raise ValueError(
        "data must be (inputs, labels) or, for the tagger, (tokens, tags, mask) with mask True at "
        f"real tokens (or (tokens, tags, lengths)); got a sequence of length {len(data)}."
    )


def compression_sweep(
    model: Any,
    variables: Mapping[str, Any],
    data: Sequence[Any],
    *,
    bases: Iterable[str],
    Ks: Iterable[int],
    n_steps_list: Iterable[int],
    methods: Iterable[str] = ("euler",),
    out_dir: str | os.PathLike[str],
    compress_method: str = "project",
    batch_size: int = 256,
    repeats: int = 5,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Compress a trained model to every (basis, K) and evaluate every (scheme, n_steps).

    For each configuration the row holds: test accuracy, trainable parameters, parameter bytes
    (``params`` only; ``state_bytes`` for the statistics), the median latency of a jit-compiled
    forward pass on one batch (``block_until_ready``, after a warm-up call, over ``repeats`` runs),
    and ``peak_bytes``: argument + output + temporary buffer bytes of the compiled executable from
    ``compiled.memory_analysis()`` (XLA's static buffer assignment for one batch, not a measured
    process high-water mark; None where the backend gives no analysis). The first rows
    (``compressed = False``) evaluate the model as trained.

    Arguments:
        model: a :class:`ConvODENet` or :class:`ODETransformerTagger` (anything with a ``basis``
            attribute and the ``n_steps/scheme/basis`` call keywords).
        variables: its trained variables.
        data: ``(inputs, labels)``, or ``(tokens, tags, mask)`` / ``(tokens, tags, lengths)`` for
            the tagger (accuracy over real tokens).
        bases: target family names.
        Ks: target K values (combinations a family rejects, e.g. odd K for "piecewise_linear", are
            skipped and listed in the JSON under ``"skipped"``).
        n_steps_list: step counts to evaluate.
        methods: integration schemes to evaluate ("euler", "midpoint", "rk4", "rk4_38").
        out_dir: where ``sweep.json``, ``sweep.md``, ``accuracy_vs_K.png`` and
            ``accuracy_vs_n_steps.png`` are written (created if missing).
        compress_method: "project" or "interpolate" (see :func:`compress`).
        batch_size: evaluation batch size (latency and memory are for one such batch).
        repeats: timed repeats for the median latency.
        progress: show a tqdm bar (on a terminal only: none in a piped log).

    Returns:
        The list of rows (dicts) also written to ``sweep.json``.
    """
    xs, ys, mask = _unpack(data)
    if len(xs) != len(ys) or len(xs) == 0:
        raise ValueError(
            "data: inputs and labels must be non-empty and equally long, got "
            f"{len(xs)} and {len(ys)}."
        )
    methods, n_steps_list = list(methods), [int(n) for n in n_steps_list]
    src_tag = tagged_basis(variables)
    src_name = src_tag.name if src_tag is not None else model.basis
    k_src = _source_k(variables)
    os.makedirs(out_dir, exist_ok=True)
    evaluation = _EvalData(*_pad_eval_data(xs, ys, mask, min(batch_size, len(xs))), repeats)
    configs = [(False, src_name, k_src)] + [(True, b, int(k)) for b in bases for k in Ks]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    per_config = len(methods) * len(n_steps_list)
    terminal = sys.stderr.isatty()  # no bar (no carriage returns) in a piped log
    bar = tqdm(total=len(configs) * per_config, desc="compression sweep",
               disable=not (progress and terminal))  # fmt: skip
    for compressed, name, K in configs:
        try:
            dst = basis_by_name(name, K)
        except (ValueError, TypeError) as err:
            skipped.append({"basis": name, "K": K, "reason": str(err)})
            bar.update(per_config)
            continue
        chosen = compress_method if compressed else None
        v = compress(variables, dst, src_basis=src_name, method=chosen) if compressed else None
        v = _as_dict(variables) if v is None else v
        head = dict(compressed=compressed, compress_method=chosen, basis=name, K=K)
        rows += _sweep_config(model, v, head, evaluation, methods, n_steps_list, bar)
    bar.close()
    meta = dict(
        src_basis=src_name,
        src_K=k_src,
        compress_method=compress_method,
        batch_size=batch_size,
        repeats=repeats,
        n_examples=int(len(xs)),
        backend=jax.default_backend(),
        peak_bytes_meaning="argument + output + temp bytes of the compiled executable "
        "(XLA memory_analysis, one batch), minus aliased bytes",
    )
    _write_sweep(out_dir, rows, skipped, meta)
    return rows


class _EvalData(NamedTuple):
    """Evaluation inputs padded to whole batches, with a 0/1 weight per label."""

    xs: np.ndarray
    ys: np.ndarray
    mask: np.ndarray | None
    valid: np.ndarray
    batch_size: int
    repeats: int


def _pad_eval_data(xs, ys, mask, bs: int) -> tuple:
    pad = (-len(xs)) % bs
    xp = np.concatenate([xs, np.repeat(xs[-1:], pad, axis=0)])
    valid = np.ones(ys.shape, dtype=np.float64) if mask is None else mask.astype(np.float64)
    valid = np.concatenate([valid, np.zeros((pad,) + valid.shape[1:])])
    yp = np.concatenate([ys, np.repeat(ys[-1:], pad, axis=0)])
    mp = None if mask is None else np.concatenate([mask, np.repeat(mask[-1:], pad, axis=0)])
    return xp, yp, mp, valid, bs


def _source_k(variables: Any) -> int:
    """K of the first ODE block's coefficients (the source of the sweep)."""
    for leaf_path, leaf in jax.tree_util.tree_flatten_with_path(_as_dict(variables))[0]:
        if any(getattr(p, "key", None) == COEFFS for p in leaf_path):
            return int(leaf.shape[0])
    raise ValueError(f"compression_sweep: no ODE block ({COEFFS!r}) in the variables.")


def _sweep_config(model, v, head, data: _EvalData, methods, n_steps_list, bar) -> list[dict]:
    """The rows of one (compressed?, basis, K) configuration: every scheme and step count."""
    sizes = dict(
        params=count_params(v["params"]),
        param_bytes=param_bytes(v["params"]),
        state_bytes=param_bytes({c: t for c, t in v.items() if c not in ("params", TAG)}),
    )
    rows = []
    for scheme in methods:
        for n in n_steps_list:
            acc, latency, peak = _evaluate(model, v, data, n=n, scheme=scheme, basis=head["basis"])
            rows.append(
                dict(**head, scheme=scheme, n_steps=n, accuracy=acc, **sizes,
                     latency_s=latency, peak_bytes=peak)
            )  # fmt: skip
            bar.update(1)
    return rows


def _evaluate(model, v, data: _EvalData, *, n: int, scheme: str, basis: str) -> tuple:
    """Accuracy over the valid labels, median latency of one batch, and compiled peak bytes."""

    def forward(v, x, m):
        kw = {} if m is None else {"mask": m}
        return model.apply(v, x, train=False, n_steps=n, scheme=scheme, basis=basis, **kw)

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
    return correct / float(data.valid.sum()), float(np.median(times)), _peak_memory(compiled)


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


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    head = (
        f"Compression sweep: source {meta['src_basis']} K={meta['src_K']}, "
        f"{meta['compress_method']}, {meta['n_examples']} examples, backend {meta['backend']}, "
        f"batch {meta['batch_size']}.\n\n"
        "| compressed | basis | K | scheme | n_steps | accuracy | params | param bytes | "
        "latency (ms) | peak bytes |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {_compressed_cell(r)} | {r['basis']} | {r['K']} | {r['scheme']} | "
        f"{r['n_steps']} | {100 * r['accuracy']:.2f} % | {r['params']:,} | {r['param_bytes']:,} | "
        f"{1e3 * r['latency_s']:.2f} | "
        f"{'n/a' if r['peak_bytes'] is None else format(r['peak_bytes'], ',')} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


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
