"""Which parameters a run returns, as an object: :class:`BestValidation` or :class:`LastEpoch`.

``BestValidation()`` (the default of :class:`trainkit.TrainOptions`) returns the parameters of
the epoch with the best validation accuracy (the first such epoch; the last parameters where
there is no validation set); ``LastEpoch()`` returns the final parameters. ``name`` is the word
written on the command line (``--return-params best|last``); :func:`params_choice` parses it.

Examples:
    >>> import trainkit
    >>> trainkit.params_choice("last")
    LastEpoch()
    >>> trainkit.TrainOptions(epochs=1, batch_size=8).return_params
    BestValidation()
"""

import dataclasses
from typing import ClassVar

from ._named import variant, variant_or_warn

__all__ = [
    "BEST_VALIDATION",
    "PARAMS_CHOICES",
    "BestValidation",
    "LastEpoch",
    "ParamsChoice",
    "as_params_choice",
    "params_choice",
]


@dataclasses.dataclass(frozen=True)
class ParamsChoice:
    """Which parameters a run returns. ``best``: whether the best validation epoch's (kept as
    the run goes) rather than the last."""

    name: ClassVar[str] = ""
    best: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True)
class BestValidation(ParamsChoice):
    """The parameters of the epoch with the best validation accuracy (the first epoch of the
    best); without a validation set, the last ones."""

    name: ClassVar[str] = "best"
    best: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class LastEpoch(ParamsChoice):
    """The parameters after the last step."""

    name: ClassVar[str] = "last"
    best: ClassVar[bool] = False


BEST_VALIDATION = BestValidation()
"""The default choice (a module-level instance, for argument defaults)."""

PARAMS_CHOICES: dict[str, type[ParamsChoice]] = {c.name: c for c in (BestValidation, LastEpoch)}
"""The choices by the name written on the command line."""


def params_choice(name: str | ParamsChoice) -> ParamsChoice:
    """``"best"`` -> ``BestValidation()``, ``"last"`` -> ``LastEpoch()``; a choice is returned
    as it is. The parser of the command line."""
    return variant(name, ParamsChoice, PARAMS_CHOICES, "return_params")


def as_params_choice(value: str | ParamsChoice, where: str) -> ParamsChoice:
    """A choice; a name (the former spelling) is accepted with a ``DeprecationWarning``."""
    return variant_or_warn(value, ParamsChoice, PARAMS_CHOICES, "return_params", where, 4)
