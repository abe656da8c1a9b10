"""The accuracy-cost frontier of a trained model: configurations, measured points, the choice.

A :class:`Configuration` is one way to run the trained coefficients without retraining: per ODE
block a basis (family and K, reached by :func:`basis_ode.compress`'s linear maps) and a number
of steps, one scheme for all blocks. A :class:`Point` is a configuration measured: validation
accuracy, costs (latency, model bytes, peak memory) and its convergence certificate
(:class:`basis_ode.Certificate`). A :class:`Frontier` holds every measured point; a point is
*dominated* when another has at least its accuracy and at most each of its costs, one of them
strictly; the others are Pareto-optimal.

The choice under a budget (:meth:`Frontier.choose`) is deterministic given the measurements:
among the certified points within every limit, the most correct validation examples; ties go
to fewer model bytes, then lower latency, then lower peak memory, then the configuration's
label. It is never made on the test split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ._bases import BASES, Basis
from ._budget import COSTS, Budget, as_budgets
from ._certificate import Certificate
from ._compress import (
    PROJECT,
    CompressionMap,
    Interpolate,
    Project,
    as_compression_map,
    compression_by_name,
)
from ._integrate import ButcherTableau, scheme_by_name, scheme_name

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


class BudgetError(ValueError):
    """No measured configuration meets the budget; the message names the cheapest one."""


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One way to run a trained ODE-Net: a basis and steps per block, a scheme, a map.

    Attributes:
        bases: one :class:`basis_ode.Basis` per ODE block (in the model's order: ``stage0``,
            ``stage1``, ``stage2`` for a ConvODENet).
        n_steps: one step count per block.
        scheme: the fixed-step scheme of every block (``EULER``, ``MIDPOINT``, ``RK4``, ...).
        method: how the trained coefficients reach ``bases``: ``Project()`` (L2 projection) or
            ``Interpolate()`` (see :func:`basis_ode.compress`); a name still works and warns.
    """

    bases: tuple[Basis, ...]
    n_steps: tuple[int, ...]
    scheme: ButcherTableau
    method: CompressionMap | str = Project()

    def __post_init__(self) -> None:
        bases, steps = tuple(self.bases), tuple(int(n) for n in self.n_steps)
        if not bases or len(bases) != len(steps):
            raise ValueError(
                f"Configuration: one basis and one step count per ODE block, got {len(bases)} "
                f"bases and {len(steps)} step counts."
            )
        if not all(isinstance(b, Basis) and type(b) is not Basis for b in bases):
            raise TypeError(f"Configuration: bases must be basis objects such as Hat(4), got "
                            f"{bases!r}.")  # fmt: skip
        if min(steps) < 1:
            raise ValueError(f"Configuration: step counts must be >= 1, got {steps}.")
        object.__setattr__(self, "method", as_compression_map(self.method, "Configuration"))
        object.__setattr__(self, "bases", bases)
        object.__setattr__(self, "n_steps", steps)

    @classmethod
    def uniform(
        cls,
        basis: Basis,
        n_steps: int,
        scheme: ButcherTableau,
        blocks: int,
        method: CompressionMap | str = PROJECT,
    ) -> Configuration:
        """The same basis and steps in each of ``blocks`` blocks."""
        return cls((basis,) * blocks, (int(n_steps),) * blocks, scheme, method)

    @property
    def is_uniform(self) -> bool:
        """True when every block has the same basis and steps (one K for all)."""
        return len(set(self.bases)) == 1 and len(set(self.n_steps)) == 1

    @property
    def structure(self) -> tuple:
        """What the compiled forward pass depends on (not the coefficient values, nor the map
        that produced them): the bases, the steps and the scheme."""
        return (self.bases, self.n_steps, self.scheme)

    @property
    def n_steps_arg(self) -> int | tuple[int, ...]:
        """The ``n_steps`` call argument: one int when all blocks agree, else the tuple."""
        return self.n_steps[0] if len(set(self.n_steps)) == 1 else self.n_steps

    def refined(self, factor: int) -> Configuration:
        """The same configuration with every block's steps multiplied by ``factor``."""
        return dataclasses.replace(self, n_steps=tuple(factor * n for n in self.n_steps))

    @property
    def label(self) -> str:
        """A short readable name, e.g. ``"hat K=4, 8 midpoint steps"`` or, per block,
        ``"piecewise_constant K=8/8/2, 8/8/8 euler steps"``."""
        fams = sorted({b.name for b in self.bases})
        if self.is_uniform:
            k, n = str(self.bases[0].K), str(self.n_steps[0])
        else:
            k = "/".join(str(b.K) for b in self.bases)
            n = "/".join(str(s) for s in self.n_steps)
        via = " (interpolated)" if isinstance(self.method, Interpolate) else ""
        plural = "" if n == "1" else "s"
        return f"{'+'.join(fams)} K={k}, {n} {self.scheme.name} step{plural}{via}"

    def to_json(self) -> dict[str, Any]:
        """The configuration with names for objects (read back by :meth:`from_json`)."""
        return {
            "bases": [b.name for b in self.bases],
            "K": [b.K for b in self.bases],
            "n_steps": list(self.n_steps),
            "scheme": scheme_name(self.scheme),
            "method": self.method.name,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Configuration:
        """The inverse of :meth:`to_json`."""
        bases = tuple(BASES[n](int(k)) for n, k in zip(d["bases"], d["K"]))
        method = compression_by_name(d["method"])
        return cls(bases, tuple(d["n_steps"]), scheme_by_name(d["scheme"]), method)


@dataclasses.dataclass(frozen=True)
class Point:
    """A configuration measured on the validation data.

    Attributes:
        config: the :class:`Configuration`.
        correct: validation examples (real tokens for a tagger) classified correctly.
        total: validation examples (or real tokens) evaluated.
        latency_ms: median latency of the compiled forward pass on one batch (None: not
            timed).
        model_bytes: bytes of every variable (parameters and statistics), exact.
        param_bytes: bytes of the trainable parameters alone.
        peak_bytes: argument + output + temporary bytes of the compiled forward pass on one
            batch (None where the backend gives no memory analysis).
        certificate: the :class:`basis_ode.Certificate` (None before it is computed).
        search: how the point was reached: "grid" (one K and steps for all blocks),
            "per-block" (the greedy per-block search) or "trained" (the configuration the
            model was trained in, measured as the walks' start).
    """

    config: Configuration
    correct: int
    total: int
    latency_ms: float | None
    model_bytes: int
    param_bytes: int
    peak_bytes: int | None
    certificate: Certificate | None = None
    search: str = "grid"

    @property
    def accuracy(self) -> float:
        """``correct / total``."""
        return self.correct / self.total

    @property
    def costs(self) -> dict[str, float | None]:
        """``{"latency_ms", "model_bytes", "peak_bytes"}``: the costs budgets limit."""
        return {c: getattr(self, c) for c in COSTS}

    @property
    def certified(self) -> bool:
        """True when the certificate says the configuration is a converged ODE."""
        return self.certificate is not None and self.certificate.converged

    def to_json(self) -> dict[str, Any]:
        """The point as JSON (configuration by names, certificate as a dict)."""
        d = {k: getattr(self, k) for k in ("correct", "total", "latency_ms", "model_bytes",
                                          "param_bytes", "peak_bytes", "search")}  # fmt: skip
        cert = None if self.certificate is None else dataclasses.asdict(self.certificate)
        if cert is not None:
            cert["converged"] = self.certificate.converged
        return {"config": self.config.to_json(), "label": self.config.label,
                "accuracy": self.accuracy, **d, "certificate": cert}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Point:
        """The inverse of :meth:`to_json` (extra keys such as ``pareto`` are ignored)."""
        c = d.get("certificate")
        cert = None
        if c is not None:
            fields = {f.name for f in dataclasses.fields(Certificate)}
            kw = {k: v for k, v in c.items() if k in fields}  # JSON lists back to tuples
            kw |= {"n_steps": tuple(tuple(n) for n in kw["n_steps"]),
                   "accuracy": tuple(kw["accuracy"]), "change": tuple(kw["change"])}  # fmt: skip
            cert = Certificate(**kw)
        keys = ("correct", "total", "latency_ms", "model_bytes", "param_bytes", "peak_bytes",
                "search")  # fmt: skip
        return cls(Configuration.from_json(d["config"]), **{k: d[k] for k in keys},
                   certificate=cert)  # fmt: skip


def _dominates(a: Point, b: Point, costs: Sequence[str]) -> bool:
    """``a`` has at least ``b``'s accuracy and at most each of its costs, one strictly."""
    if a.correct * b.total < b.correct * a.total:
        return False
    strict = a.correct * b.total > b.correct * a.total
    for c in costs:
        x, y = getattr(a, c), getattr(b, c)
        if x is None or y is None:
            continue
        if x > y:
            return False
        strict = strict or x < y
    return strict


def pareto(points: Sequence[Point], costs: Sequence[str] = COSTS) -> list[bool]:
    """For each point, True when no other point dominates it over ``costs`` (and accuracy)."""
    return [not any(_dominates(q, p, costs) for q in points if q is not p) for p in points]


def _key(p: Point) -> tuple:
    """The selection order: most correct, then fewer bytes, lower latency, lower peak, label."""
    inf = float("inf")
    return (-p.correct / p.total, p.model_bytes, inf if p.latency_ms is None else p.latency_ms,
            inf if p.peak_bytes is None else p.peak_bytes, p.config.label)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Frontier:
    """Every measured configuration of one trained model, and how they were measured.

    Attributes:
        points: the measured :class:`Point` objects (grid first, then the per-block search).
        source: the configuration the model was trained in (its own basis and steps).
        batch_size: the batch of one timed forward pass (latency and peak memory are per batch).
        device: the device the costs were measured on (e.g. ``"cpu: 2 cores"``).
        notes: anything the measurement should be read with (e.g. other load on the machine).
        stats: how the measurement went: points, distinct structures, compilations, seconds.
    """

    points: tuple[Point, ...]
    source: Configuration
    batch_size: int
    device: str
    notes: str = ""
    stats: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def optimal(self, costs: Sequence[str] = COSTS) -> list[Point]:
        """The Pareto-optimal points over accuracy and ``costs``."""
        return [p for p, ok in zip(self.points, pareto(self.points, costs)) if ok]

    def dominated(self, costs: Sequence[str] = COSTS) -> list[Point]:
        """The points some other point dominates over accuracy and ``costs``."""
        return [p for p, ok in zip(self.points, pareto(self.points, costs)) if not ok]

    def choose(
        self, budget: Budget | Sequence[Budget], *, allow_uncertified: bool = False
    ) -> Point:
        """The most accurate certified point within every limit (see the module docstring).

        Arguments:
            budget: a budget (``Latency(3.0)``, ``Bytes(200_000)``, ``PeakMemory(...)``) or a
                tuple of them.
            allow_uncertified: also consider points whose certificate fails (not converged
                ODEs); off by default.

        Raises:
            BudgetError: no point fits; the message names the cheapest point for each limit
                that nothing meets, and what it costs.
        """
        budgets = as_budgets(budget)
        pool = [p for p in self.points if allow_uncertified or p.certified]
        fits = [p for p in pool if all(b.admits(p.costs) for b in budgets)]
        if fits:
            return min(fits, key=_key)
        raise BudgetError(self._refusal(budgets, pool, allow_uncertified))

    def _refusal(self, budgets: tuple[Budget, ...], pool: list[Point], allowed: bool) -> str:
        if not pool:
            return ("no measured configuration is a converged ODE (every certificate fails): "
                    "retrain by refinement, raise the certificate tolerance, or pass "
                    "allow_uncertified=True (--allow-uncertified).")  # fmt: skip
        which = "" if allowed else "certified "
        for b in budgets:
            measured = [p for p in pool if b.value(p.costs) is not None]
            if not measured:
                return f"{b.describe()}: {b.cost_words} was not measured on this device."
            cheapest = min(measured, key=lambda p: (b.value(p.costs), _key(p)))
            v = b.value(cheapest.costs)
            if v > b.limit:
                flag = f"{b.flag} {b.limit_at_least(v)}" if b.flag else ""
                return (f"no {which}configuration meets {b.describe()}: the cheapest, "
                        f"{cheapest.config.label}, needs {b.format(v)}"
                        + (f" (batch {self.batch_size})" if b.per_batch else "")
                        + f"; raise the limit to at least {b.format(v)} ({flag}).")  # fmt: skip
        named = " and ".join(b.describe() for b in budgets)
        return (f"no {which}configuration meets {named} at once, though each alone is met; "
                "relax one of the limits.")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The frontier as JSON: every point with a ``pareto`` flag, and the conditions."""
        flags = pareto(self.points)
        return {
            "source": self.source.to_json(),
            "batch_size": self.batch_size,
            "device": self.device,
            "notes": self.notes,
            "stats": dict(self.stats),
            "points": [dict(p.to_json(), pareto=ok) for p, ok in zip(self.points, flags)],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Frontier:
        """The inverse of :meth:`to_json`: a stored frontier (``plan.json["frontier"]``), to
        choose again for other budgets without measuring again."""
        return cls(
            tuple(Point.from_json(p) for p in d["points"]),
            Configuration.from_json(d["source"]),
            int(d["batch_size"]),
            d["device"],
            d.get("notes", ""),
            dict(d.get("stats", {})),
        )
