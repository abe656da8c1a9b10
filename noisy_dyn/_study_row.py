"""One row of a robustness study as a typed record, and its ``study.json`` form.

A :class:`StudyRow` is one noise level (``sigma_add, sigma_mult``) under one perturbation
object, read deterministically (``draws = 0``) or with its training noise kept at inference
(``draws = N``): the mean accuracy over ``n`` seeds with its interval, and, where the study has
them, the difference paired by seed against the deterministic twin (:class:`Difference`), the
difference at matched clean accuracy (:class:`Matched`) and stochastic against deterministic
inference of the same members.

``study.json`` keeps its format: :meth:`StudyRow.to_dict` writes the keys and order that
studies have always written, :meth:`StudyRow.from_dict` reads them (rows stored before a field
existed included; keys it does not know are kept and written back), and the row also reads as
that mapping (``row["mean"]``, ``row.get("p_holm")``), so code written against the dicts keeps
working.
"""

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from ._perturbations import Clean, Perturbation, parse_perturbation

__all__: list[str] = []  # public names are re-exported by noisy_dyn/study.py

DETERMINISTIC = "deterministic"


def stochastic_inference(draws: int) -> str:
    """The ``inference`` label of rows read with ``draws`` draws: ``"stochastic, N draws"``."""
    return f"stochastic, {draws} draw" + ("" if draws == 1 else "s")


def inference_draws(label: str) -> int:
    """The draws of an ``inference`` label: 0 for ``"deterministic"``, N for ``"stochastic, N
    draws"`` (the inverse of :func:`stochastic_inference`)."""
    if label == DETERMINISTIC:
        return 0
    found = re.fullmatch(r"stochastic, (\d+) draws?", label)
    if found is None:
        raise ValueError(f"Unknown inference {label!r}: 'deterministic' or 'stochastic, N draws'.")
    return int(found.group(1))


class Difference(NamedTuple):
    """A difference of accuracies paired by seed: its mean, interval, sign-flip p-value and
    that p-value adjusted by Holm's method over its family (None before the adjustment)."""

    mean: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None = None

    def holm_rejects(self, alpha: float = 0.05) -> bool:
        """Whether Holm's adjusted p-value is at most ``alpha`` (False before the adjustment)."""
        return self.p_holm is not None and self.p_holm <= alpha

    def excludes_zero(self) -> bool:
        """Whether the 95 % interval of the difference lies on one side of zero."""
        if self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low > 0 or self.ci_high < 0


class Matched(NamedTuple):
    """The difference at matched clean accuracy over ``n`` kept pairs (None without pairs)."""

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None = None


_SUMMARY = ("sigma", "sigma_add", "sigma_mult", "perturbation", "level", "mean", "ci_low",
            "ci_high", "n", "inference")  # fmt: skip
_DIFF = ("diff_mean", "diff_ci_low", "diff_ci_high", "p_value", "p_holm")
_MATCHED = ("matched_n", "matched_diff_mean", "matched_diff_ci_low", "matched_diff_ci_high",
            "matched_p_value", "matched_p_holm")  # fmt: skip
_VERSUS = ("inference_diff_mean", "inference_diff_ci_low", "inference_diff_ci_high",
           "inference_p_value", "inference_p_holm")  # fmt: skip
_KNOWN = frozenset(_SUMMARY + _DIFF + _MATCHED + _VERSUS + ("split", "examples"))


@dataclasses.dataclass(frozen=True)
class StudyRow(Mapping):
    """One configuration under one perturbation in a study (see the module docstring).

    Attributes:
        sigma_add, sigma_mult: the noise levels the members were trained with.
        perturbation: the perturbation object (:class:`~noisy_dyn.attacks.Clean` for the clean
            accuracy); ``level`` is its level.
        mean, ci_low, ci_high, n: mean accuracy over ``n`` seeds and its bootstrap interval.
        draws: 0 for deterministic inference, ``N`` for the training noise kept at inference
            (logits averaged over ``N`` draws); ``inference`` is its label. None: a row stored
            before studies recorded it (deterministic; written back without the field).
        paired: the difference against the deterministic twin (None for the twin).
        matched: the difference at matched clean accuracy (deterministic noisy rows only).
        versus_deterministic: stochastic minus deterministic inference (stochastic rows only).
        split, examples: the split scored and its size (None in rows stored without them).
        extra: keys of a stored row this version does not know, written back unchanged.
    """

    sigma_add: float
    sigma_mult: float
    perturbation: Perturbation
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    draws: int | None = 0
    paired: Difference | None = None
    matched: Matched | None = None
    versus_deterministic: Difference | None = None
    split: str | None = None
    examples: int | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def level(self) -> float:
        """The perturbation's level (0 for the clean row)."""
        return float(self.perturbation.level)

    @property
    def sigma(self) -> float | None:
        """The common noise level when ``sigma_add == sigma_mult``, else None."""
        return float(self.sigma_add) if self.sigma_add == self.sigma_mult else None

    @property
    def inference(self) -> str:
        """``"deterministic"`` or ``"stochastic, N draws"``, as ``study.json`` writes it."""
        return stochastic_inference(self.draws) if self.draws else DETERMINISTIC

    @property
    def is_clean(self) -> bool:
        """Whether this is the clean accuracy (no perturbation)."""
        return isinstance(self.perturbation, Clean)

    @property
    def config(self) -> tuple[float, float]:
        """``(sigma_add, sigma_mult)``: which configuration the row describes."""
        return (float(self.sigma_add), float(self.sigma_mult))

    @property
    def comparison(self) -> tuple:
        """``(sigma_add, sigma_mult, name, level, inference)``: what the row compares, the key
        that matches rows of two studies (the name and level, not the object, so rows read from
        files match rows computed now)."""
        return (*self.config, self.perturbation.name, self.level, self.inference)

    def to_dict(self) -> dict[str, Any]:
        """The row as ``study.json`` writes it (keys and order of every study so far)."""
        out: dict[str, Any] = {
            "sigma": self.sigma, "sigma_add": float(self.sigma_add),
            "sigma_mult": float(self.sigma_mult), "perturbation": self.perturbation.name,
            "level": self.level, "mean": self.mean, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "n": self.n, "inference": self.inference,
        }  # fmt: skip
        if self.draws is None:
            del out["inference"]
        if self.paired is not None:
            out |= dict(zip(_DIFF, self.paired))
        if self.matched is not None:
            out |= dict(zip(_MATCHED, self.matched))
        if self.versus_deterministic is not None:
            out |= dict(zip(_VERSUS, self.versus_deterministic))
        if self.split is not None:
            out["split"] = self.split
        if self.examples is not None:
            out["examples"] = self.examples
        return out | dict(self.extra)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "StudyRow":
        """A row of ``study.json`` (any version) as a record; the inverse of :meth:`to_dict`."""
        if isinstance(row, StudyRow):
            return row
        missing = [k for k in ("sigma_add", "sigma_mult", "perturbation", "mean", "n")
                   if k not in row]  # fmt: skip
        if missing:
            raise ValueError(f"A study row needs {missing}; got the keys {sorted(row)}.")
        name = row["perturbation"]
        level = None if name in ("clean", "deepfool") else row.get("level", 0.0)
        parts = {
            "paired": Difference(*(row.get(k) for k in _DIFF)) if "diff_mean" in row else None,
            "matched": Matched(*(row.get(k) for k in _MATCHED)) if "matched_n" in row else None,
            "versus_deterministic": Difference(*(row.get(k) for k in _VERSUS))
            if "inference_diff_mean" in row else None,
        }  # fmt: skip
        return cls(
            sigma_add=row["sigma_add"], sigma_mult=row["sigma_mult"],
            perturbation=parse_perturbation(name, level), mean=row["mean"],
            ci_low=row.get("ci_low"), ci_high=row.get("ci_high"), n=row["n"],
            draws=inference_draws(row["inference"]) if "inference" in row else None, **parts,
            split=row.get("split"), examples=row.get("examples"),
            extra={k: v for k, v in row.items() if k not in _KNOWN},
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        """Field by field against a record; against a mapping, as its ``study.json`` dict."""
        if isinstance(other, StudyRow):
            fields = [f.name for f in dataclasses.fields(self)]
            return all(getattr(self, k) == getattr(other, k) for k in fields)
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    # the mapping view: the row as study.json holds it
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def study_rows_of(rows: Sequence[Mapping[str, Any]]) -> list[StudyRow]:
    """Rows as records: :class:`StudyRow` kept, dicts (``study.json``) read by
    :meth:`StudyRow.from_dict`. The edge where stored studies come in."""
    return [StudyRow.from_dict(r) for r in rows]
