"""The training options shared by ``noisy_dyn.fit``, ``basis_ode.fit`` and both command lines.

One home for what both packages' ``fit`` take besides the model and its optimizer: the number
of epochs, the batch size, the seeds, checkpoints and resume, the mesh, progress, the log, the
callback and what to return. :class:`TrainOptions` holds them (a frozen dataclass; each field's
documentation is in its metadata), and from it are derived

- the keyword arguments of each ``fit`` (:func:`takes_train_options` adds them to the
  signature and their documentation to the docstring, and hands ``fit`` one ``options``
  object): ``fit(..., epochs=2, batch_size=32)`` and ``fit(..., options=TrainOptions(2, 32))``
  are the same call, and keywords given beside ``options`` replace its fields;
- the command-line flags (:func:`add_train_flags`, :func:`cli_train_options`): ``--epochs``,
  ``--batch-size``, ``--lr``, ``--seed``, ``--checkpoint-every`` with the same meaning in
  ``python -m noisy_dyn`` and ``python -m basis_ode``;
- the loop's own :class:`trainkit.Settings`, which is a ``TrainOptions`` plus the member axis.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import os
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ._returned import BEST_VALIDATION, ParamsChoice, as_params_choice

__all__ = [
    "EVAL_BATCH_SIZE",
    "TrainOptions",
    "add_train_flags",
    "cli_train_options",
    "takes_former_keywords",
    "takes_train_options",
]

EVAL_BATCH_SIZE = 512
"""The default evaluation batch size of both packages (``fit(eval_batch_size=...)``, ``accuracy``):
examples per padded batch of a deterministic pass. It sets memory and speed only: the last
batch is padded to this size with zero-weight rows, so one shape compiles, and the accuracy does
not depend on it (the mean loss up to the order of a floating-point sum)."""

MARKER = "<train options>"
"""The line of a ``fit`` docstring that :func:`takes_train_options` replaces by the options."""


def _option(default: Any = dataclasses.MISSING, *, doc: str) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of a training run that are the same for every model (see module docstring).

    Example::

        opts = trainkit.TrainOptions(epochs=2, batch_size=32, checkpoint_dir="runs/a")
        noisy_dyn.fit(cfg, train, learning_rate=1e-2, options=opts)
        basis_ode.fit(model, train, learning_rate=0.1, options=opts.replace(seed=1))
    """

    epochs: int = _option(
        doc="number of passes over the training data (the last incomplete batch of an epoch is "
        "dropped); a resumed run continues up to it, a finished run asked for more continues "
        "to the new total."
    )
    batch_size: int = _option(
        doc="global batch size (examples per step); a multiple of the number of devices in "
        "``mesh`` and at most the number of training examples."
    )
    seed: int = _option(
        0,
        doc="``split(key(seed))`` gives the initialisation key and the noise key, step ``s`` "
        "using ``fold_in(noise_key, s)``; also the seed of the example order unless "
        "``data_seed`` is given.",
    )
    data_seed: int | None = _option(
        None,
        doc="seed of the example order ``trainkit.epoch_order(N, seed=data_seed, epoch=e)`` "
        "(default ``seed``).",
    )
    checkpoint_dir: str | os.PathLike | None = _option(
        None,
        doc="folder of the checkpoints (orbax steps ``ckpt_<global step>``, one after every "
        "epoch) and, by default, of ``log.jsonl``; a run there is resumed (refused, naming each "
        "differing field with both values, if another run wrote it).",
    )
    checkpoint_every: int | None = _option(
        None, doc="also checkpoint every this many global steps (default: at epoch ends only)."
    )
    resume: bool = _option(
        True,
        doc="continue from the newest checkpoint in ``checkpoint_dir``; False deletes the "
        "checkpoints there and starts afresh.",
    )
    keep: int = _option(3, doc="number of checkpoints kept.")
    mesh: Any = _option(
        None,
        doc="a one-axis ``jax.sharding.Mesh`` over which the batch is sharded, the parameters "
        'replicated (default ``trainkit.default_mesh()``: axis ``"batch"`` over all devices).',
    )
    progress: bool = _option(
        True,
        doc="a tqdm bar when stderr is a terminal, else one line per epoch; also the "
        '"resumed from step N" / "already complete" lines.',
    )
    log_path: str | os.PathLike | None = _option(
        None,
        doc="JSON-lines file with one line per epoch, rewritten atomically each epoch "
        "(default ``checkpoint_dir/log.jsonl`` when there is a ``checkpoint_dir``).",
    )
    callback: Callable[[int, Any], dict | None] | None = _option(
        None,
        doc="``callback(epoch, params) -> dict | None`` after every epoch (1-based), with the "
        "parameters ``fit`` would return then; the dict (JSON numbers or strings) is merged "
        "into that epoch's history.",
    )
    stop_after_steps: int | None = _option(
        None,
        doc="stop, without saving, once this many global steps are done, as if the process "
        "were killed there (for tests of resumption); ``history['interrupted']`` is True.",
    )
    return_params: ParamsChoice | str = _option(
        BEST_VALIDATION,
        doc="``trainkit.BestValidation()``: the parameters of the best validation accuracy (the "
        "first epoch of the best; the last ones without validation); ``trainkit.LastEpoch()``: "
        'the final ones. (The names ``"best"``, ``"last"`` still work, with a DeprecationWarning.)',
    )
    check_every: int = _option(
        50,
        doc="read the on-device finiteness flag every this many steps (and at every checkpoint "
        "and epoch end); a non-finite loss or gradient raises ``trainkit.TrainingDiverged``.",
    )

    def __post_init__(self) -> None:
        if not isinstance(self.return_params, ParamsChoice):  # a name: parsed here, once
            choice = as_params_choice(self.return_params, type(self).__name__)
            object.__setattr__(self, "return_params", choice)

    def replace(self, **changes: Any) -> TrainOptions:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in order (the fields of :class:`TrainOptions` alone)."""
        return tuple(FIELDS)

    @classmethod
    def docs(cls, indent: str = "", width: int = 96, exclude: Sequence[str] = ()) -> str:
        """The options' documentation as Google-style argument lines, wrapped at ``width``."""
        lines = []
        for f in FIELDS.values():
            if f.name in exclude:
                continue
            lines += textwrap.wrap(
                f"{f.name}: {f.metadata['doc']}",
                width,
                initial_indent=indent,
                subsequent_indent=indent + "    ",
                break_on_hyphens=False,
            )
        return "\n".join(lines)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainOptions)}

F = TypeVar("F", bound=Callable[..., Any])


def takes_train_options(
    *, exclude: Sequence[str] = (), renamed: Mapping[str, str] | None = None
) -> Callable[[F], F]:
    """Give a ``fit(..., *, options: TrainOptions, ...)`` the options as keyword arguments.

    The decorated function is called with ``options=`` a :class:`TrainOptions` built from the
    keywords named like its fields (or from an ``options=`` the caller passes, those keywords
    replacing its fields). Its signature shows the options as keyword-only parameters and the
    line ``<train options>`` of its docstring becomes their documentation.

    Arguments:
        exclude: option names the function does not take (e.g. ``seed`` where seeds come in
            another form); passing one is the usual ``TypeError``, and an ``options`` object
            that sets one away from its default is refused.
        renamed: former keyword names still accepted, ``{old: option name}``.
    """
    renamed = dict(renamed or {})
    fields = {k: f for k, f in FIELDS.items() if k not in exclude}

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn)
        if "options" not in sig.parameters:
            raise TypeError(f"{fn.__qualname__} needs a keyword-only `options` parameter.")
        clash = sorted(set(fields) & set(sig.parameters))
        if clash:
            raise TypeError(f"{fn.__qualname__} takes the options {clash} itself.")
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, options: Any = None, **kwargs: Any) -> Any:  # checked below
            options = _resolve_options(name, fields, renamed, exclude, options, kwargs)
            return fn(*args, options=options, **kwargs)

        wrapper.__signature__ = _with_option_parameters(sig, fields)  # type: ignore[attr-defined]
        wrapper.__doc__ = _with_option_docs(fn.__doc__ or "", exclude)
        wrapper.train_option_names = tuple(fields)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return wrap


def _resolve_options(
    name: str,
    fields: Mapping[str, dataclasses.Field],
    renamed: Mapping[str, str],
    exclude: Sequence[str],
    options: Any,
    kwargs: dict[str, Any],
) -> TrainOptions:
    """The :class:`TrainOptions` of one call of a :func:`takes_train_options` function: the
    option keywords (popped from ``kwargs``, former names included) over ``options`` or the
    defaults."""
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
    for old, new in renamed.items():
        if old in kwargs:
            if new in given:
                raise TypeError(f"{name}() got both `{old}` and `{new}`; pass `{new}`.")
            given[new] = kwargs.pop(old)
    if options is None:
        missing = [k for k, f in fields.items() if _required(f) and k not in given]
        if missing:
            raise TypeError(
                f"{name}() needs {', '.join(f'`{k}`' for k in missing)} (or "
                "`options=trainkit.TrainOptions(...)`)."
            )
        options = TrainOptions(**given)
    elif not isinstance(options, TrainOptions):
        raise TypeError(f"`options` must be a trainkit.TrainOptions, got {type(options).__name__}.")
    else:
        options = options.replace(**given)
    for k in exclude:
        if getattr(options, k) != FIELDS[k].default:
            raise ValueError(f"{name}() does not take the option `{k}`; leave it unset.")
    return options


def _with_option_parameters(
    sig: inspect.Signature, fields: Mapping[str, dataclasses.Field]
) -> inspect.Signature:
    """``sig`` without ``options`` and with the option fields as keyword-only parameters
    (first among the keyword-only ones), then ``options=None``."""
    params = [p for p in sig.parameters.values() if p.name != "options"]
    kinds = [p.kind for p in params]
    at = next((i for i, k in enumerate(kinds) if k >= inspect.Parameter.KEYWORD_ONLY), len(kinds))
    added = [
        inspect.Parameter(
            k,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if _required(f) else f.default,
            annotation=f.type,
        )
        for k, f in fields.items()
    ]
    options_param = inspect.Parameter(
        "options", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="TrainOptions"
    )
    return sig.replace(parameters=[*params[:at], *added, options_param, *params[at:]])


def takes_former_keywords(
    names: Sequence[str],
    convert: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    *,
    instead: str,
) -> Callable[[F], F]:
    """Accept keywords a function no longer takes, with a DeprecationWarning.

    When a call passes any of ``names``, a ``DeprecationWarning`` says to use ``instead`` and the
    function is called with ``convert(former, kwargs)``: ``former`` the keywords of ``names`` that
    were given, ``kwargs`` the others; ``convert`` returns the keywords to call with (and raises a
    one-line ``TypeError`` on a clash, e.g. the former keyword and its replacement both given).
    The signature shown is the function's own (without the former keywords).
    """
    names = tuple(names)

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            former = {k: kwargs.pop(k) for k in names if k in kwargs}
            if former:
                warnings.warn(
                    f"{fn.__name__}({', '.join(f'{k}=' for k in former)}...) is deprecated; "
                    f"{instead}.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs = convert(former, kwargs)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _with_option_docs(doc: str, exclude: Sequence[str]) -> str:
    lines = doc.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == MARKER:
            indent = line[: len(line) - len(line.lstrip())]
            block = TrainOptions.docs(indent, exclude=exclude)
            block += (
                f"\n{indent}options: a ``trainkit.TrainOptions`` holding the options above "
                "(keywords given beside it\n"
                f"{indent}    replace its fields)."
            )
            return "\n".join(lines[:i] + [block] + lines[i + 1 :])
    raise ValueError(f"the docstring has no line {MARKER!r} to put the training options at.")


# --------------------------------------------------------------------------------------------
# the command line


def add_train_flags(
    parser: argparse.ArgumentParser,
    *,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    lr_help: str = "learning rate",
    seed_help: str = "seed of init, noise and data order",
    batch_help: str = "global batch size",
    checkpoint_every: bool = True,
    epochs_help: str = "number of epochs",
) -> None:
    """Add the training flags both command lines share, with this command's defaults.

    ``--epochs``, ``--batch-size``, ``--lr``, ``--seed`` and (``checkpoint_every``)
    ``--checkpoint-every``; :func:`cli_train_options` reads them back with ``--no-resume`` and
    ``--quiet`` (``trainkit.add_run_flags``). A default of None leaves the choice to the command
    (e.g. from the data).
    """
    parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help)
    parser.add_argument("--batch-size", type=int, default=batch_size, help=batch_help)
    parser.add_argument("--lr", type=float, default=learning_rate, help=lr_help)
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    if checkpoint_every:
        parser.add_argument(
            "--checkpoint-every",
            type=int,
            default=None,
            help="also checkpoint every N steps (default: every epoch only)",
        )


def cli_train_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`TrainOptions` fields the shared flags set, as keyword arguments.

    ``epochs``, ``batch_size``, ``seed``, ``checkpoint_every`` (when the command has the flag),
    ``resume`` (not ``--no-resume``) and ``progress`` (not ``--quiet``); a flag the command does
    not have is left out, so the callee's default holds.
    """
    out: dict[str, Any] = {}
    for name in ("epochs", "batch_size", "seed", "checkpoint_every"):
        if hasattr(args, name):
            out[name] = getattr(args, name)
    if hasattr(args, "no_resume"):
        out["resume"] = not args.no_resume
    if hasattr(args, "quiet"):
        out["progress"] = not args.quiet
    return out
