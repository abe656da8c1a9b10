"""Convergence certificates: is a configuration an ODE, or a network that only works at its steps?

A trained ODE-Net evaluated with ``n`` steps is a discretisation of ``dh/dt = F(theta(t), h)``.
If the weights describe an ODE (Queiruga et al. 2020, "Continuous-in-depth neural networks";
Krishnapriyan et al. 2022, "Learning continuous models for continuous physics"), refining the
steps changes the output less and less: with a scheme of order ``q`` the logits ``z_n`` obey
``z_n - z_* = C n^-q + o(n^-q)``. A network trained directly at ``n_steps = K`` usually does not:
its layers were fitted to the step ``1 / K`` and the output moves when the steps are refined.

The certificate evaluates the same coefficients at ``n``, ``2n`` and ``4n`` steps (every block
refined alike) and records, over the certificate's examples,

    change_n  = ||z_n  - z_4n|| / ||z_4n||      (Frobenius norms over examples and classes)
    change_2n = ||z_2n - z_4n|| / ||z_4n||
    order     = log2(||z_n - z_2n|| / ||z_2n - z_4n||)   (the observed order, Richardson)

with the accuracies at the three step counts and the share of examples whose predicted class
is the same at ``n`` and ``4n``. A configuration is a converged ODE when ``change_n`` is at
most the stated tolerance; the planner never chooses one that is not, unless asked.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike, Float, Int, Shaped

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

#: The default tolerance on ``change_n`` (relative change of the logits from n to 4n steps).
TOLERANCE = 0.1


@dataclasses.dataclass(frozen=True)
class Certificate:
    """How the outputs of one configuration change when its steps are refined (n, 2n, 4n).

    Attributes:
        n_steps: the three step counts, each one count per ODE block.
        accuracy: accuracy on the certificate's examples at each step count.
        change: ``(change_n, change_2n)``, the relative Frobenius distances of the logits at
            n and 2n steps from those at 4n.
        order: the observed order ``log2(||z_n - z_2n|| / ||z_2n - z_4n||)`` (None when the
            logits at 2n and 4n agree exactly).
        agreement: share of examples with the same predicted class at n and 4n steps.
        tolerance: the largest ``change_n`` of a converged configuration.
        n_examples: examples (or real tokens) the certificate was computed on.
    """

    n_steps: tuple[tuple[int, ...], ...]
    accuracy: tuple[float, ...]
    change: tuple[float, ...]
    order: float | None
    agreement: float
    tolerance: float
    n_examples: int

    @property
    def converged(self) -> bool:
        """True when the logits at n steps are within ``tolerance`` of those at 4n."""
        return bool(self.change[0] <= self.tolerance)

    def describe(self) -> str:
        """One phrase: converged or not, with the change and the tolerance."""
        word = "converged" if self.converged else "not a converged ODE"
        return (
            f"{word} (logits move {100 * self.change[0]:.2g} % from n to 4n steps, "
            f"tolerance {100 * self.tolerance:.3g} %)"
        )


def certify(
    logits: Sequence[Float[np.ndarray, "batch ... classes"]],
    labels: Int[ArrayLike, "batch ..."],
    weights: Shaped[ArrayLike, "batch ..."],
    n_steps: Sequence[tuple[int, ...]],
    *,
    tolerance: float = TOLERANCE,
) -> Certificate:
    """The certificate of logits computed at ``n_steps = (n, 2n, 4n)`` on the same examples.

    Arguments:
        logits: three arrays ``(N, ..., C)``: the logits at n, 2n and 4n steps.
        labels: ``(N, ...)`` integer labels.
        weights: ``(N, ...)`` 0/1 weights (0 at padding and at padded tokens).
        n_steps: the three step counts (one count per block each).
        tolerance: the largest relative change ``change_n`` of a converged configuration.

    Returns:
        The :class:`Certificate`.
    """
    if len(logits) != 3 or len(n_steps) != 3:
        raise ValueError("certify needs the logits at exactly three step counts: n, 2n and 4n.")
    w = np.asarray(weights, np.float64)
    z = [np.asarray(a, np.float64) for a in logits]

    def norm(a: np.ndarray) -> float:
        return math.sqrt(float(np.sum(w[..., None] * a * a)))

    ref = norm(z[2]) or 1.0
    d_n, d_2n, d_12 = norm(z[0] - z[2]), norm(z[1] - z[2]), norm(z[0] - z[1])
    order = math.log2(d_12 / d_2n) if d_2n > 0 and d_12 > 0 else None
    total = float(w.sum())
    preds = [np.argmax(a, axis=-1) for a in z]
    acc = tuple(float(np.sum(w * (p == labels)) / total) for p in preds)
    agree = float(np.sum(w * (preds[0] == preds[2])) / total)
    return Certificate(
        n_steps=tuple(tuple(int(k) for k in n) for n in n_steps),
        accuracy=acc,
        change=(d_n / ref, d_2n / ref),
        order=order,
        agreement=agree,
        tolerance=float(tolerance),
        n_examples=int(round(total)),
    )
