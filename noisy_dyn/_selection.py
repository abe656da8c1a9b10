"""How a discovery study picks the comparisons a confirmation study re-tests.

:func:`noisy_dyn.study.confirm_rows` takes one of these objects as ``select``:

- :class:`ByHolm` (the default): a comparison is picked when its Holm-adjusted p-value over the
  discovery family is at most ``alpha`` (a claim the discovery study already supports);
- :class:`ByInterval`: picked when the 95 % interval of its paired difference excludes zero (an
  exploratory pick: more candidates, each then tested on fresh seeds).

``selection_by_name("holm" | "interval")`` turns the names used in files and on the command line
into the objects.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

from trainkit.internal import variant

from ._study_row import Difference

__all__ = ["ByHolm", "ByInterval", "SELECTIONS", "Selection", "selection_by_name"]


class Selection(abc.ABC):
    """A rule that picks a paired comparison of a discovery study for confirmation."""

    name: ClassVar[str]
    """The rule's name in ``confirm.json`` and on the command line."""

    @abc.abstractmethod
    def picks(self, difference: Difference, alpha: float) -> bool:
        """Whether the comparison with this paired ``difference`` is picked at level ``alpha``."""


@dataclasses.dataclass(frozen=True)
class ByHolm(Selection):
    """Pick when Holm's adjusted p-value ``p_holm <= alpha``."""

    name: ClassVar[str] = "holm"

    def picks(self, difference: Difference, alpha: float) -> bool:
        return difference.holm_rejects(alpha)


@dataclasses.dataclass(frozen=True)
class ByInterval(Selection):
    """Pick when the 95 % interval of the paired difference excludes zero (``alpha`` unused)."""

    name: ClassVar[str] = "interval"

    def picks(self, difference: Difference, alpha: float) -> bool:
        return difference.excludes_zero()


SELECTIONS: dict[str, Selection] = {s.name: s for s in (ByHolm(), ByInterval())}
"""The rules by name."""


def selection_by_name(name: str) -> Selection:
    """The rule called ``name`` (``"holm"`` or ``"interval"``)."""
    table = {key: type(rule) for key, rule in SELECTIONS.items()}
    return variant(name, Selection, table, "select", prefix="noisy_dyn.study.")


BY_HOLM = ByHolm()
"""The default rule of ``confirm_rows``."""
