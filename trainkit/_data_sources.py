"""The data sets a command line names: ``--data NAME [--data-path P] [--validation-fraction F]``.

Each package keeps one table of :class:`DataSource` (``noisy_dyn.data.SOURCES``,
``basis_ode.data.SOURCES``); :func:`open_data_source` turns the three flags into one call of a
loader, with the same refusals in both command lines (an unknown name, a path for embedded data,
a missing path, a validation fraction for a fixed validation set or outside (0, 1)), and
:func:`require_validation` refuses splits that leave no validation example.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ._data_checks import small_validation
from ._errors import CLIError

__all__ = ["DEFAULT_FRACTION", "DataSource", "open_data_source", "require_validation"]

DEFAULT_FRACTION = 0.1
"""The share of the training examples the loaders hold out for validation by default."""


@dataclasses.dataclass(frozen=True)
class DataSource:
    """How ``--data NAME`` is read: ``loader(**settings, seed=seed, ...)``.

    Attributes:
        loader: the function that returns the splits.
        settings: the keyword arguments the name fixes (``{"permute": True}`` for ``pmnist``).
        path_argument: the loader's keyword for ``--data-path``; None: the data are embedded and
            take no path.
        path_help: what ``--data-path`` names (for embedded data: where they are embedded).
        needs_path: the loader has no default place: ``--data-path`` is required.
        takes_fraction: the loader holds out ``val_fraction`` of the training examples for
            validation (``--validation-fraction``); otherwise its validation set is fixed.
        takes_limit: the loader reads only the first ``limit`` examples itself (faster than
            cutting the splits afterwards).
    """

    loader: Callable[..., Any]
    _: dataclasses.KW_ONLY
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    path_argument: str | None = None
    path_help: str = ""
    needs_path: bool = False
    takes_fraction: bool = False
    takes_limit: bool = False

    def fraction(self, given: float | None) -> float | None:
        """The validation fraction in effect (None: a fixed validation set)."""
        if not self.takes_fraction:
            return None
        return DEFAULT_FRACTION if given is None else float(given)


def open_data_source(
    name: str,
    sources: Mapping[str, DataSource],
    *,
    data_path: str | None = None,
    seed: int = 0,
    validation_fraction: float | None = None,
    limit: int | None = None,
) -> Any:
    """The splits of the data set ``name`` of ``sources``, read from ``data_path``.

    ``validation_fraction`` (None: the loader's default) goes to loaders that take one;
    ``limit`` to loaders that read only that many examples (the caller still cuts the splits).

    Raises:
        CLIError: an unknown name; a path for embedded data or none where one is needed; a
            validation fraction for a data set with a fixed validation set, or outside (0, 1).
    """
    if name not in sources:
        raise CLIError(f"unknown data set {name!r}; choose one of {', '.join(sources)}.")
    source = sources[name]
    kwargs: dict[str, Any] = {**source.settings, "seed": seed}
    if data_path is not None:
        if source.path_argument is None:
            raise CLIError(f"--data {name} is {source.path_help}; it takes no --data-path.")
        kwargs[source.path_argument] = data_path
    elif source.needs_path:
        raise CLIError(f"--data {name} needs --data-path: {source.path_help}.")
    if validation_fraction is not None:
        if not source.takes_fraction:
            takes = ", ".join(n for n, s in sources.items() if s.takes_fraction)
            raise CLIError(
                f"--data {name} has a fixed validation set; --validation-fraction applies to "
                f"{takes}."
            )
        if not 0.0 < float(validation_fraction) < 1.0:
            raise CLIError(
                f"--validation-fraction must lie in (0, 1), got {validation_fraction}; e.g. 0.2."
            )
        kwargs["val_fraction"] = float(validation_fraction)
    if limit is not None and source.takes_limit:
        kwargs["limit"] = limit
    return source.loader(**kwargs)


def require_validation(
    n_validation: int, n_train: int, fraction: float | None, what: str = "examples"
) -> None:
    """Refuse a run with no validation example (nothing would rank its epochs); announce one
    whose validation split is too small to (:func:`trainkit.internal.small_validation`).

    ``fraction`` is the share the validation split was cut by (None: a fixed validation set);
    ``what`` names the training examples in the message (``"images"``).
    """
    if n_validation == 0:
        at = "" if fraction is None else f" at validation fraction {fraction:g}"
        raise CLIError(
            f"no validation example: {n_train} training {what}{at} leave none to select the best "
            "epoch; give more data or a larger --validation-fraction."
        )
    note = small_validation(n_validation, fraction, n_train)
    if note:
        print(note, file=sys.stderr, flush=True)
