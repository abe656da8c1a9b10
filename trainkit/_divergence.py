"""What a run does when an update is not finite: the divergence policy, as an object.

:class:`RaiseOnDivergence` (the default) stops the run with :class:`trainkit.TrainingDiverged`
naming the step and the members; :class:`FreezeDiverged` (runs with a member axis only) keeps a
diverged member at its last finite parameters while the others train on, and stops as the first
does when every member has diverged. ``name`` is the word written on the command line and in
files; :func:`divergence_policy` parses it.
"""

import dataclasses
from typing import ClassVar

from ._named import variant, variant_or_warn

__all__ = [
    "DIVERGENCE_POLICIES",
    "DivergencePolicy",
    "FreezeDiverged",
    "RaiseOnDivergence",
    "as_divergence_policy",
    "divergence_policy",
]


@dataclasses.dataclass(frozen=True)
class DivergencePolicy:
    """What a run does after a non-finite loss or gradient. ``freezes``: whether diverged
    members are frozen (the others train on) rather than the run stopped."""

    name: ClassVar[str] = ""
    freezes: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True)
class RaiseOnDivergence(DivergencePolicy):
    """Stop the run: ``TrainingDiverged`` names the global step and the members."""

    name: ClassVar[str] = "raise"
    freezes: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True)
class FreezeDiverged(DivergencePolicy):
    """Freeze each diverged member at its last finite parameters; the others train on (a study
    should not lose 95 members to one unstable noise level). Every member diverged: as
    :class:`RaiseOnDivergence`."""

    name: ClassVar[str] = "freeze"
    freezes: ClassVar[bool] = True


RAISE_ON_DIVERGENCE = RaiseOnDivergence()
"""The default policy (a module-level instance, for argument defaults)."""

DIVERGENCE_POLICIES: dict[str, type[DivergencePolicy]] = {
    cls.name: cls for cls in (RaiseOnDivergence, FreezeDiverged)
}
"""The policies by the name written on the command line and in files."""


def divergence_policy(name: str | DivergencePolicy) -> DivergencePolicy:
    """``"raise"`` -> ``RaiseOnDivergence()``, ``"freeze"`` -> ``FreezeDiverged()``; a policy is
    returned as it is. The parser of the command line and of files."""
    return variant(name, DivergencePolicy, DIVERGENCE_POLICIES, "on_divergence")


def as_divergence_policy(value: str | DivergencePolicy, where: str) -> DivergencePolicy:
    """A policy; a name (the old spelling) is accepted with a ``DeprecationWarning``."""
    return variant_or_warn(value, DivergencePolicy, DIVERGENCE_POLICIES, "on_divergence", where)
