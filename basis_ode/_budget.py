"""Budgets: what a configuration may cost on the machine it is meant for.

A budget is a small frozen object naming one cost and its limit; :func:`basis_ode.plan` takes
one, or several at once (a tuple: every one must hold). The costs are those every point of a
frontier carries (:class:`basis_ode.Point`):

=================  ===============  =====================================================
budget             cost             how it is measured
=================  ===============  =====================================================
``Latency(ms)``    ``latency_ms``   median wall time of the compiled forward pass on one
                                    batch of the planner's batch size, after warm-up, on the
                                    device in use (``wall_clock``; injectable)
``Bytes(n)``       ``model_bytes``  exact bytes of every variable the model needs at
                                    inference: parameters and BatchNorm statistics
``PeakMemory(n)``  ``peak_bytes``   argument + output + temporary bytes of the compiled
                                    executable for one batch (XLA's memory analysis)
=================  ===============  =====================================================

Examples:
    >>> import basis_ode as bo
    >>> bo.Latency(3.0).admits({"latency_ms": 2.5})
    True
    >>> bo.Bytes(200_000).describe()
    'model size <= 200,000 bytes'
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

#: The costs every frontier point carries, by name (the keys of ``Point.costs``).
COSTS: tuple[str, ...] = ("latency_ms", "model_bytes", "peak_bytes")


@dataclasses.dataclass(frozen=True)
class Budget:
    """A limit on one cost of a configuration (abstract: use :class:`Latency`, :class:`Bytes`
    or :class:`PeakMemory`).

    Attributes:
        limit: the largest admitted value of the cost, in the cost's unit.
    """

    limit: float
    cost: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    flag: ClassVar[str] = ""  # the command-line flag that sets this budget
    per_batch: ClassVar[bool] = True
    """Measured on one batch of the planner's batch size, so lowered by fewer steps (latency,
    peak memory); False for a cost of the model alone, lowered only by a smaller K (bytes)."""

    def __post_init__(self) -> None:
        if type(self) is Budget:
            raise TypeError("Budget is abstract: use basis_ode.Latency, Bytes or PeakMemory.")
        v = self.limit
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(
                f"{type(self).__name__}: the limit must be a finite positive number of "
                f"{self.unit}, got {v!r}; e.g. {type(self).__name__}({self._example})."
            )
        if v <= 0:
            raise ValueError(
                f"{type(self).__name__}: the limit must be positive, got {v!r} {self.unit}; "
                f"e.g. {type(self).__name__}({self._example})."
            )

    _example: ClassVar[str] = ""

    def value(self, costs: Mapping[str, Any]) -> float | None:
        """This budget's cost in ``costs`` (a point's ``costs``), None where not measured."""
        v = costs.get(self.cost)
        return None if v is None else float(v)

    def admits(self, costs: Mapping[str, Any]) -> bool:
        """True when the cost is measured and at most the limit."""
        v = self.value(costs)
        return v is not None and v <= self.limit

    def describe(self) -> str:
        """``"<cost> <= <limit>"`` in words, e.g. ``"latency <= 3 ms"``."""
        return f"{self.cost_words} <= {self.format(self.limit)}"

    cost_words: ClassVar[str] = ""

    @classmethod
    def number(cls, value: float) -> str:
        """A value of this cost as a table shows it, without the unit (``2.5``)."""
        return f"{value:.3g}"

    @classmethod
    def format(cls, value: float) -> str:
        """A value of this cost with its unit (``2.5 ms``)."""
        return f"{cls.number(value)} {cls.unit}"

    @classmethod
    def limit_at_least(cls, value: float) -> str:
        """The smallest limit, as the command-line flag takes it, that admits ``value``."""
        return f"{math.ceil(value * 1000) / 1000:g}"


@dataclasses.dataclass(frozen=True)
class _ByteBudget(Budget):
    """A budget counted in whole bytes."""

    unit: ClassVar[str] = "bytes"

    @classmethod
    def number(cls, value: float) -> str:
        return f"{int(round(value)):,}"

    @classmethod
    def limit_at_least(cls, value: float) -> str:
        return str(math.ceil(value))


@dataclasses.dataclass(frozen=True)
class Latency(Budget):
    """The forward pass on one batch must take at most ``limit`` milliseconds.

    Measured on the device in use, at the planner's batch size (``plan(batch_size=...)``), as
    the median of repeated compiled calls after warm-up, timed round-robin over all
    configurations (:func:`basis_ode.measure_frontier`).
    """

    cost: ClassVar[str] = "latency_ms"
    unit: ClassVar[str] = "ms"
    flag: ClassVar[str] = "--latency-ms"
    cost_words: ClassVar[str] = "latency"
    _example: ClassVar[str] = "3.0"


@dataclasses.dataclass(frozen=True)
class Bytes(_ByteBudget):
    """The model's variables (parameters and BatchNorm statistics) must fit in ``limit`` bytes
    (exact: the sum of ``leaf.size * itemsize``)."""

    cost: ClassVar[str] = "model_bytes"
    flag: ClassVar[str] = "--bytes"
    per_batch: ClassVar[bool] = False
    cost_words: ClassVar[str] = "model size"
    _example: ClassVar[str] = "200_000"


@dataclasses.dataclass(frozen=True)
class PeakMemory(_ByteBudget):
    """The compiled forward pass on one batch must need at most ``limit`` bytes (argument +
    output + temporary buffers of XLA's executable, aliased bytes counted once)."""

    cost: ClassVar[str] = "peak_bytes"
    flag: ClassVar[str] = "--peak-bytes"
    cost_words: ClassVar[str] = "peak memory"
    _example: ClassVar[str] = "50_000_000"


BUDGETS: dict[str, type[Budget]] = {c.cost: c for c in (Latency, Bytes, PeakMemory)}
"""The budget kinds by the cost they limit."""


def as_budgets(budget: Budget | Sequence[Budget]) -> tuple[Budget, ...]:
    """One budget or several as a tuple; refuses anything else, and two limits on one cost."""
    if isinstance(budget, Budget):
        items: tuple = (budget,)
    elif isinstance(budget, Sequence) and not isinstance(budget, str):
        items = tuple(budget)
    else:
        items = ()
    if not items or not all(isinstance(b, Budget) for b in items):
        raise TypeError(
            f"budget must be a basis_ode budget such as Latency(3.0), Bytes(200_000) or "
            f"PeakMemory(50_000_000), or a tuple of them; got {budget!r}."
        )
    costs = [b.cost for b in items]
    if len(set(costs)) != len(costs):
        raise ValueError(
            f"two budgets limit the same cost ({', '.join(b.describe() for b in items)}); keep "
            "the tighter one."
        )
    return items
