"""Experiment pipelines of ``python -m basis_ode``, importable: train a ConvODENet on images,
compress a trained run without retraining (the compression sweep, with its latency timing,
files and plots), train the ODE transformer tagger, and the digits demo (refinement
K = n_steps = 1 -> 8, then compression to K/2 and K/4).

These drivers read and write files, time and plot; the mathematics they call is the pure
library (``basis_ode.compress``, ``basis_ode.fit``, ``basis_ode.odeint``, ...), which imports
none of this (``import basis_ode`` loads no matplotlib). They take objects, as the library does:
a basis such as ``Hat(4)`` and a scheme such as ``RK4``; names are turned into objects by the
command line (``basis_ode.__main__``, with ``basis_by_name`` and ``scheme_by_name``), which
only parses arguments and calls these functions. In a trained run's folder ``out``
(``train_images``, ``train_tagger``): ``model.npz``, the model's class, configuration (basis, K,
n_steps, ...) and variables (``basis_ode.save_model``, ``basis_ode.load_model``), beside the
``history.json``, ``result.json``, ``log.jsonl`` and ``checkpoints/`` that
:func:`trainkit.write_run_files` and ``fit`` write for both packages.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainkit import (
    AdamRsqrtRecipe,
    CLIError,
    LastEpoch,
    SGDRecipe,
    at_chance,
    atomic_write_text,
    chance_level,
    data_hash,
    label_space,
    markdown_table,
    start_afresh,
    write_run_files,
)
from trainkit.internal import (
    check_record_fields,
    check_training_data,
    limit_splits,
    open_data_source,
    read_run_record,
    require_validation,
)

from . import data
from ._bases import Basis, PiecewiseConstant
from ._budget import Budget, as_budgets
from ._compress import compress
from ._expansion import basis_of
from ._export import export_resnet
from ._frontier import BudgetError
from ._integrate import EULER, ButcherTableau, scheme_name
from ._model_io import load_model, save_model
from ._models import ConvODENet, ODETransformerTagger, count_params
from ._plan import adapt, measure_frontier
from ._plan_files import budgets_from_flags, frontier_markdown, frontier_plot, write_plan
from ._sweep import compression_sweep
from ._train import accuracy, fit
from .data import augment as augment_fn

__all__ = [
    "IMAGE_DATA",
    "RUN_FILES",
    "block_K",
    "budgets_from_flags",
    "check_run_data",
    "compress_run",
    "compression_sweep",
    "demo",
    "demo_plots",
    "frontier_markdown",
    "frontier_plot",
    "load_images",
    "load_run",
    "num_classes",
    "plan_run",
    "rows_markdown",
    "synthetic_tagging_splits",
    "train_images",
    "train_tagger",
    "write_plan",
    "write_run",
]

_IMAGE_BASIS = PiecewiseConstant(4)  # the default initial basis of train_images
_TAGGER_BASIS = PiecewiseConstant(16)  # and of train_tagger

IMAGE_DATA = tuple(data.SOURCES)
"""The image data sets of ``train`` (``npz``: your own arrays, see ``data.load_npz``)."""

# --------------------------------------------------------------------------------------------
# data


def load_images(
    name: str,
    *,
    data_path: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    eval_limit: int | None = None,
    validation_fraction: float | None = None,
) -> Any:
    """An image data set by name, with at most ``limit`` training and ``eval_limit`` validation
    and test examples.

    ``digits`` is embedded; ``fashion_mnist`` reads the IDX folder ``data_path`` (default: the
    Debian package's); ``cifar10`` the python-pickle folder ``data_path``; ``npz`` the file
    ``data_path`` (``data.load_npz``). ``seed`` chooses the split; ``validation_fraction``
    (digits and npz; default 0.1) the share of the training examples held out for validation.
    The classes are the training split's (``trainkit.label_space``); a validation split too
    small to rank epochs is announced on stderr.
    """
    splits = open_data_source(name, data.SOURCES, data_path=data_path, seed=seed,
                              validation_fraction=validation_fraction)  # fmt: skip
    splits = limit_splits(splits, (limit, eval_limit, eval_limit))
    train, val, test = splits[:3]
    label_space(train[1], {"validation": val[1], "test": test[1]})
    require_validation(len(val[1]), len(train[1]), data.SOURCES[name].fraction(validation_fraction),
                       "images")  # fmt: skip
    return splits


def num_classes(splits: Any) -> int:
    """1 + the largest training label (validation and test labels must be training classes:
    ``trainkit.label_space``)."""

    train, val, test = splits[:3]
    return label_space(train[1], {"validation": val[1], "test": test[1]})


def block_K(variables: Any) -> int:
    """K of the ODE blocks: the leading axis of their expansions (``basis_of(variables).K``)."""
    basis = basis_of(variables)
    if basis is None:
        raise ValueError("no ODE block (no basis expansion) in these variables.")
    return basis.K


# --------------------------------------------------------------------------------------------
# a trained run's files


def write_run(out: Path, model: Any, variables: Any, history: dict, result: dict) -> bool:
    """Write ``model.npz``, ``history.json`` and ``result.json`` to ``out``
    (:func:`trainkit.write_run_files`); True if any changed."""

    return write_run_files(out, lambda p: save_model(p, model, variables), history, result)


RUN_FILES = ("model.npz", "history.json", "result.json", "log.jsonl")
"""The output files of a trained run (moved aside by ``--no-resume``)."""


def _fit_files(out: Path | None, resume: bool) -> dict[str, Any]:
    if out is None:
        return {}
    if not resume:  # nothing may read the previous run's model while this one trains
        start_afresh(out, RUN_FILES)
    return {"checkpoint_dir": out / "checkpoints", "log_path": out / "log.jsonl", "resume": resume}


def _model_config(model: Any, names: Sequence[str]) -> dict[str, Any]:
    """The model's configuration for ``result.json``: objects by their names (a basis by its
    family name, its K is the result's ``K``; a scheme by its name)."""

    def as_json(value: Any) -> Any:
        if isinstance(value, Basis):
            return value.name
        if isinstance(value, ButcherTableau):
            return scheme_name(value)
        return value

    return {k: as_json(getattr(model, k)) for k in names}


# --------------------------------------------------------------------------------------------
# train on images


def train_images(
    splits: Any,
    *,
    data_name: str = "digits",
    width: int = 16,
    basis: Basis = _IMAGE_BASIS,
    n_steps: int | None = None,
    method: ButcherTableau = EULER,
    epochs: int = 10,
    batch_size: int = 128,
    learning_rate: float = 0.1,
    lr_drops: Sequence[int] = (),
    refine_at: Sequence[int] = (),
    augment: bool = False,
    seed: int = 0,
    out: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    data_path: str | None = None,
    validation_fraction: float | None = None,
    **fit_options: Any,
) -> dict[str, Any]:
    """Train a ConvODENet on ``splits`` with the SGD recipe; evaluate on validation and test.

    ``basis`` (family and K, e.g. ``PiecewiseConstant(4)``) is the initial basis (refinement at
    ``refine_at`` doubles it), ``method`` the scheme (``EULER``, ``RK4``, ...).
    ``result.json`` records the data set, its file (``data_path``), the split seed and
    validation fraction and the image shape, so that ``compress`` evaluates the model on the
    same data and refuses data of another kind. A best validation accuracy within noise of the
    majority class is warned about.

    Returns:
        ``{"model", "variables", "history", "result", "written"}``; ``result`` is what
        ``result.json`` holds, ``written`` whether any output file changed.
    """

    names = _IMAGE_MODEL
    model = ConvODENet(num_classes=num_classes(splits), width=width, basis=basis,
                       n_steps=n_steps, method=method)  # fmt: skip
    out = None if out is None else Path(out)
    model, variables, history = fit(
        model, splits.train, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, seed=seed, validation=splits.validation,
        recipe=SGDRecipe(lr_drops=tuple(lr_drops)), refine_at=list(refine_at),
        augment=augment_fn if augment else None, progress=progress,
        **_fit_files(out, resume), **fit_options,
    )  # fmt: skip
    result = {"data": data_name, "model": _model_config(model, names), "K": block_K(variables),
              "epochs": epochs, "val_accuracy": accuracy(model, variables, *splits.validation),
              "test_accuracy": accuracy(model, variables, *splits.test),
              "n_train": int(len(splits.train[0])), "seed": seed,
              "image_shape": [int(d) for d in splits.train[0].shape[1:]],
              "data_path": None if data_path is None else str(Path(data_path).resolve()),
              "validation_fraction": validation_fraction,
              "train_sha256": data_hash(*splits.train)}  # fmt: skip
    _warn_if_at_chance(history, splits.validation[1])
    written = out is not None and write_run(out, model, variables, history, result)
    return {"model": model, "variables": variables, "history": history, "result": result,
            "written": written}  # fmt: skip


# --------------------------------------------------------------------------------------------
# compress a trained run


def _warn_if_at_chance(history: dict, val_labels: Any) -> None:

    vals = [v for v in history.get("val_accuracy") or [] if v is not None]
    if vals and at_chance(max(vals), val_labels):
        print(f"warning: the model ended at chance level: best validation accuracy "
              f"{max(vals):.3f} against {chance_level(val_labels):.3f} for always predicting "
              f"the majority class ({len(val_labels)} validation examples); try another --lr "
              "or more --epochs.", file=sys.stderr, flush=True)  # fmt: skip


def check_run_data(model: Any, variables: Any, info: dict, splits: Any, given: str) -> None:
    """Refuse data of another kind than the run's: images of another shape or channel count
    (``info["image_shape"]``, written by :func:`train_images`; the first convolution's input
    channels otherwise) or labels outside the model's classes, in one line naming both."""
    xs = splits.test[0]
    want = info.get("image_shape")
    kernel = variables.get("params", {}).get("stem_conv", {}).get("kernel")
    if want is None and kernel is not None:
        want = [None, None, int(np.shape(kernel)[2])]
    if xs.ndim != 4 or (want is not None and any(
            w is not None and w != g for w, g in zip(want, xs.shape[1:]))):  # fmt: skip
        shape = "x".join("?" if w is None else str(w) for w in want) if want else "(H, W, C)"
        raise CLIError(
            f"the run's model was trained on {info.get('data', '?')} images of shape {shape}; "
            f"{given} gives inputs of shape {'x'.join(map(str, xs.shape[1:]))}: pass the run's "
            "data (the default) or data of the same kind."
        )
    classes = getattr(model, "num_classes", None)
    labels = [int(np.max(s[1])) for s in splits[:3] if len(s[1])]
    if classes is not None and labels and max(labels) >= classes:
        raise CLIError(
            f"the run's model predicts {classes} classes (0..{classes - 1}); {given} has labels "
            f"up to {max(labels)}: pass the run's data (the default) or data with its classes."
        )


def load_run(
    run: str | Path,
    *,
    data_name: str | None = None,
    data_path: str | None = None,
    limit: int | None = None,
) -> tuple[Any, Any, Any]:
    """``(model, variables, splits)`` of a ``train`` run folder: its ``model.npz`` and its data
    set, data file and split (``result.json``; ``data_name`` and ``data_path`` override them),
    with at most ``limit`` validation and test examples. Data of another kind than the run's
    (image shape, channels, classes) are refused (:func:`check_run_data`)."""

    run = Path(run)
    if not (run / "model.npz").is_file():
        raise FileNotFoundError(
            f"no model file {run / 'model.npz'}: pass the output folder of `python -m basis_ode "
            "train` as --run."
        )
    model, variables = load_model(run / "model.npz")
    info = read_run_record(run / "result.json", _RECORD, _RECORD_OPTIONAL)
    names = [k for k in _IMAGE_MODEL if k in info["model"]]
    check_record_fields(run / "result.json", {**{k: info["model"][k] for k in names},
                        "K": info["K"]}, {**_model_config(model, names),
                        "K": block_K(variables)}, run / "model.npz")  # fmt: skip
    name = data_name or info["data"]
    own = name == info["data"] and data_path is None
    if own:
        data_path = info.get("data_path")  # the run's file (runs written before: none stored)
    splits = load_images(name, data_path=data_path, seed=info["seed"], eval_limit=limit,
                         validation_fraction=info.get("validation_fraction"))  # fmt: skip
    if own:  # the record must give back the run's training set (an edited seed does not)
        n = info.get("n_train")
        check_training_data(run / "result.json", info, tuple(a[:n] for a in splits.train))
    given = f"--data {name}" + ("" if data_path is None else f" ({data_path})")
    check_run_data(model, variables, info, splits, given)
    return model, variables, splits


def plan_run(
    run: str | os.PathLike,
    budgets: Sequence[Budget],
    *,
    data_name: str | None = None,
    data_path: str | None = None,
    limit: int | None = None,
    out: str | os.PathLike | None = None,
    allow_uncertified: bool = False,
    **measure_options: Any,
) -> dict[str, Any]:
    """Plan the model of a ``train`` run folder on its validation split; write the files.

    Measures the frontier (:func:`basis_ode.measure_frontier`) on the run's validation split
    (at most ``limit`` examples), writes ``plan.json``, ``plan.md`` and ``frontier.png`` to
    ``out`` (default ``run/plan``) whether or not a configuration fits, then saves the chosen
    model with :func:`basis_ode.save_model` (``model.npz``) and, for an Euler choice, the plain
    ResNet (:func:`basis_ode.export_resnet`, folder ``resnet``).

    Returns:
        ``{"frontier", "choice", "model", "variables", "out"}``.

    Raises:
        basis_ode.BudgetError: nothing fits (after the files are written).
    """
    budgets = as_budgets(tuple(budgets))
    run = Path(run)
    out = Path(out) if out is not None else run / "plan"
    model, variables, splits = load_run(run, data_name=data_name, data_path=data_path,
                                        limit=limit)  # fmt: skip
    frontier = measure_frontier(model, variables, splits.validation, **measure_options)
    meta = {"run": str(run), "split": "validation", "limit": limit,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip
    try:
        choice = frontier.choose(budgets, allow_uncertified=allow_uncertified)
    except BudgetError:
        write_plan(out, frontier, {"": (budgets, None)}, meta)
        raise
    write_plan(out, frontier, {"": (budgets, choice)}, meta)
    new_model, new_variables = adapt(model, variables, choice.config)
    save_model(out / "model.npz", new_model, new_variables)
    if isinstance(new_model, ConvODENet) and choice.config.scheme == EULER:
        export_resnet(out / "resnet", new_model, new_variables)
    return {"frontier": frontier, "choice": choice, "model": new_model,
            "variables": new_variables, "out": out}  # fmt: skip


_IMAGE_MODEL = ("num_classes", "width", "n_steps", "basis", "method")
"""The model fields ``train_images`` records in ``result.json``."""

_RECORD = {"data": str, "seed": int, "K": int, "model": dict}
_RECORD_OPTIONAL = {"n_train": int, "validation_fraction": (float, None),
                    "data_path": (str, None), "train_sha256": str}  # fmt: skip
"""The keys of ``result.json`` that ``compress`` reads, with their types (the optional ones are
absent from runs written by earlier versions)."""


def compress_run(
    run: str | Path,
    *,
    data_name: str | None = None,
    data_path: str | None = None,
    limit: int | None = None,
    split: str = "validation",
    bases: Sequence[type[Basis]] = (PiecewiseConstant,),
    Ks: Sequence[int] = (8, 4),
    n_steps_list: Sequence[int] = (4, 8),
    methods: Sequence[ButcherTableau] = (EULER,),
    out: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Project the model of a ``train`` run (``run/model.npz``) onto other bases and K, without
    retraining, and sweep ``n_steps`` and schemes on one split (``compression_sweep``).

    The table is scored on the validation split by default: choose K and n_steps there, and
    measure only the chosen model on the test split (``split="test"``); the split is named in
    ``sweep.json`` and ``sweep.md``. The data set and split seed are the run's
    (``run/result.json``) unless ``data_name`` is given. Writes the sweep's table and plots to
    ``out`` (default ``run/compress``).
    """
    run = Path(run)
    model, variables, splits = load_run(run, data_name=data_name, data_path=data_path,
                                        limit=limit)  # fmt: skip
    if split not in ("validation", "test"):
        raise CLIError(f"--split must be validation or test, got {split!r}.")
    if any(int(k) < 1 for k in Ks):
        raise CLIError(f"--Ks must be integers >= 1, got {list(Ks)}.")
    if any(int(n) < 1 for n in n_steps_list):
        raise CLIError(f"--n-steps-list must be integers >= 1, got {list(n_steps_list)}.")
    return compression_sweep(
        model, variables, getattr(splits, split), bases=list(bases), Ks=list(Ks),
        n_steps_list=list(n_steps_list), methods=list(methods),
        out_dir=Path(out) if out else run / "compress", progress=progress, split=split,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# tagging


def synthetic_tagging_splits(n_sentences: int, *, seed: int) -> tuple:
    """``data.synthetic_tagging`` cut into train (80 %), validation and test (10 % each).

    Returns ``(train, validation, test, vocab_size, num_tags)``, each split a tuple
    ``(tokens, tags, lengths)``.
    """

    tokens, tags, lengths, vocab_size, num_tags = data.synthetic_tagging(n_sentences, seed=seed)
    n = len(tokens)
    n_val = n_test = max(1, n // 10)
    cut = n - n_val - n_test
    part = lambda a, b: (tokens[a:b], tags[a:b], lengths[a:b])  # noqa: E731
    return part(0, cut), part(cut, cut + n_val), part(cut + n_val, n), vocab_size, num_tags


def _tagging_data(
    conllu: Sequence[str] | None, sentences: int, seed: int, tag_column: str, progress: bool
) -> tuple:
    """``(train, validation, test, vocab_size, num_tags, column)``: the synthetic task (column
    None) or the CoNLL-U files, their tag column chosen by ``data.tag_column`` (announced)."""

    if not conllu:
        return (*synthetic_tagging_splits(sentences, seed=seed), None)
    if len(conllu) != 3:
        raise CLIError("--conllu takes three paths: the train, dev and test CoNLL-U files.")
    try:
        column, why = data.tag_column(Path(conllu[0]), tag_column)
        ud = data.load_ud(*conllu, column=column)
    except ValueError as err:
        raise CLIError(str(err)) from None
    if progress:
        print(f"{why}: {len(ud.tags)} tags", flush=True)
    return ud.train, ud.validation, ud.test, len(ud.vocab), len(ud.tags), column


def _compressed_rows(
    model: Any, variables: Any, val: tuple, test: tuple, compress_to: Sequence[int]
) -> list[dict[str, Any]]:
    """The trained K and every K of ``compress_to``: validation accuracy (the column to choose K
    on) and test accuracy (the final number of the K chosen)."""

    src = basis_of(variables)
    K_full = src.K
    rows = []
    for K in [K_full] + [k for k in compress_to if k != K_full]:
        vs = variables if K == K_full else compress(variables, type(src)(K))
        acc = {f"{name}_accuracy": accuracy(model, vs, s[0], s[1], lengths=s[2])
               for name, s in (("val", val), ("test", test))}  # fmt: skip
        rows.append({"K": K, "n_steps": model.n_steps or K_full, **acc})
    return rows


def train_tagger(
    *,
    conllu: Sequence[str] | None = None,
    sentences: int = 2000,
    width: int = 32,
    basis: Basis = _TAGGER_BASIS,
    n_steps: int | None = None,
    method: ButcherTableau = EULER,
    refine_at: Sequence[int] = (),
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    warmup: int = 100,
    compress_to: Sequence[int] = (8,),
    seed: int = 0,
    out: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    tag_column: str = "auto",
) -> dict[str, Any]:
    """Train the ODE transformer tagger (synthetic task, or UD CoNLL-U files) with the
    Adam + inverse-square-root recipe, then test it at its K and compressed to ``compress_to``.

    The CoNLL-U tags come from ``tag_column``: ``"xpos"``, ``"upos"``, or ``"auto"`` (XPOS
    when the training file fills it, else UPOS; ``basis_ode.data.tag_column``), the choice
    printed; a training file whose tags are one tag is refused.

    Returns:
        ``{"model", "variables", "history", "result", "written"}``; ``result["rows"]`` holds
        ``K, n_steps, val_accuracy, test_accuracy`` for the trained and every compressed K
        (choose K on ``val_accuracy``; ``test_accuracy`` is the final number of the K chosen);
        ``result`` also
        records the model (``K`` trained, ``K_start``, ``width``, ``n_steps``, ``basis``,
        ``method``), the refinement schedule ``refine_at``, the tag column and the number of
        tags, and the training settings.
    """

    train, dev, test, vocab_size, num_tags, column = _tagging_data(
        conllu, sentences, seed, tag_column, progress
    )
    model = ODETransformerTagger(
        vocab_size=vocab_size, num_tags=num_tags, width=width, basis=basis, n_steps=n_steps,
        method=method,
    )  # fmt: skip
    out = None if out is None else Path(out)
    model, variables, history = fit(
        model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        seed=seed, validation=dev, recipe=AdamRsqrtRecipe(warmup_steps=warmup),
        refine_at=list(refine_at), progress=progress, **_fit_files(out, resume),
    )  # fmt: skip
    rows = _compressed_rows(model, variables, dev, test, compress_to)
    result = {"data": "conllu" if conllu else "synthetic", "rows": rows,
              "val_accuracy": history["val_accuracy"], "epochs": epochs, "seed": seed,
              "K": basis_of(variables).K, "K_start": basis.K, "width": width,
              "n_steps": model.n_steps, "basis": type(basis).__name__, "method": method.name,
              "refine_at": [int(e) for e in refine_at], "tag_column": column,
              "num_tags": num_tags, "batch_size": batch_size, "learning_rate": learning_rate,
              "warmup": warmup}  # fmt: skip
    written = out is not None and write_run(out, model, variables, history, result)
    return {"model": model, "variables": variables, "history": history, "result": result,
            "written": written}  # fmt: skip


def rows_markdown(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """``trainkit``'s Markdown table of ``rows``."""
    return markdown_table(rows, columns)


# --------------------------------------------------------------------------------------------
# the digits demo


def _quarters(epochs: int) -> tuple[int, ...]:
    q = max(epochs // 4, 1)
    return tuple(e for e in (q, 2 * q, 3 * q) if e < epochs)


def demo(
    *,
    out: str | Path = "runs/basis_ode/demo",
    epochs: int = 8,
    width: int = 8,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    refine_at: Sequence[int] | None = None,
    batch_size: int = 64,
    learning_rate: float = 0.1,
    n_steps_list: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Digits ConvODENet with refinement K = n_steps = 1 -> 2 -> 4 -> 8, then compression.

    Trains from K = n_steps = 1, doubling both at ``refine_at`` (default: every quarter of the
    epochs, so 8 epochs give 1 -> 2 -> 4 -> 8), with the SGD recipe, and keeps the last
    (refined) variables; the validation split is evaluated every epoch. The final model (K) is
    compressed to K/2 and K/4 by L2 projection without retraining and every (K, n_steps) pair
    is evaluated on the validation split, where K and n_steps are chosen, with its latency; the
    test split gives one number, the trained model's (``summary.json``). Writes ``sweep.md``,
    ``sweep.json``, ``history.json``, ``summary.json``, ``model.npz``, ``accuracy_vs_K.png``,
    ``accuracy_vs_n_steps.png``, ``latency.png`` and ``training.png`` to ``out``.

    Returns:
        ``{"summary", "rows", "model", "variables", "splits"}``.
    """

    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = load_images("digits", seed=seed, limit=limit)
    refine_at = _quarters(epochs) if refine_at is None else tuple(refine_at)
    model, variables, history = fit(
        ConvODENet(num_classes=10, width=width, basis=PiecewiseConstant(1), n_steps=1),
        splits.train,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        validation=splits.validation, refine_at=refine_at,
        recipe=SGDRecipe(lr_drops=(max(epochs - 1, 1),)), return_params=LastEpoch(),
        progress=progress,
        log_path=out / "log.jsonl",
    )  # fmt: skip
    K = block_K(variables)
    save_model(out / "model.npz", model, variables)
    t_train = time.perf_counter() - t_start
    rows = compression_sweep(
        model, variables, splits.validation, bases=[type(basis_of(variables))],
        Ks=sorted({max(K // 2, 1), max(K // 4, 1)} - {K}, reverse=True),
        n_steps_list=list(n_steps_list or sorted({max(K // 4, 1), max(K // 2, 1), K})),
        methods=[EULER], out_dir=out, progress=progress, split="validation",
    )  # fmt: skip
    atomic_write_text(out / "history.json", json.dumps(history, indent=2))
    demo_plots(rows, history, out)
    summary = {"final_K": K, "final_n_steps": model.n_steps, "refine_at": list(refine_at),
               "params": count_params(variables["params"]), "train_seconds": t_train,
               "test_accuracy": accuracy(model, variables, *splits.test),
               "total_seconds": time.perf_counter() - t_start,
               "val_accuracy": history["val_accuracy"]}  # fmt: skip
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    print((out / "sweep.md").read_text())
    total = summary["total_seconds"]
    print(f"demo: K = n_steps = 1 -> {K} (refined at epochs {list(refine_at)}), trained in "
          f"{t_train:.0f} s, total {total:.0f} s; results in {out}/")  # fmt: skip
    return {"summary": summary, "rows": rows, "model": model, "variables": variables,
            "splits": splits}  # fmt: skip


def demo_plots(rows: list[dict], history: dict, out: Path) -> None:
    """``latency.png`` (latency against n_steps per K) and ``training.png`` (loss, validation
    accuracy and the refinement epochs) of the demo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (K, compressed), group in _group(rows, ("K", "compressed")).items():
        group = sorted(group, key=lambda r: r["n_steps"])
        label = f"K={K}" + (" (compressed)" if compressed else " (trained)")
        ax.plot([r["n_steps"] for r in group], [1e3 * r["latency_s"] for r in group], "o-",
                label=label)  # fmt: skip
    ax.set(
        xlabel="n_steps", ylabel="latency per batch (ms)", title="inference latency (jit, median)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=120)
    plt.close(fig)
    _training_plot(history, out, plt)


def _training_plot(history: dict, out: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(history["epoch"], history["train_loss"], "o-", label="train loss")
    if history.get("val_accuracy"):
        ax.plot(history["epoch"], history["val_accuracy"], "s-", label="validation accuracy")
    for e, K, prev in zip(history["epoch"][1:], history["K"][1:], history["K"][:-1]):
        if K != prev:
            ax.axvline(e - 0.5, color="grey", ls=":")
            ax.text(e - 0.45, ax.get_ylim()[1] * 0.95, f"K={K}", fontsize=8, va="top")
    ax.set(xlabel="epoch", title="training with refinement")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=120)
    plt.close(fig)


def _group(rows: list[dict], keys: tuple[str, ...]) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups
