"""What ``noisy_dyn.fit`` minimises: the regularizer of a training run, as an object.

- :class:`NoiseInjection` (the default): the mean cross-entropy of the *noisy* forward pass, with
  fresh noise at every step: the implicit regulariser of Lim et al., 2021, *Noisy Recurrent
  Neural Networks*, Sec. 3;
- :class:`ExplicitRegularizer` ``(lam, trace)``: the mean cross-entropy of the deterministic pass
  plus ``lam`` times the mean small-noise regulariser ``r`` (:func:`noisy_dyn.theory.
  regularized_loss`; derived in ``docs/derivations.md``, Sec. 1), its trace taken by
  :class:`noisy_dyn.Exact` or :class:`noisy_dyn.Hutchinson`.

The names ``"noise"`` and ``"explicit"`` are parsed once at the edge by
:func:`regularizer_by_name`. :func:`logits_with_lengths` is the forward pass both read.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, ClassVar

import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from trainkit.internal import lookup

from ._config import NoisyRNNConfig
from ._regularizer import Exact, Trace, regularized_loss, trace_by_name
from ._solve import apply, trajectory
from ._types import Params

__all__ = [
    "REGULARIZERS",
    "ExplicitRegularizer",
    "NoiseInjection",
    "Regularizer",
    "logits_with_lengths",
    "regularizer_by_name",
]


def logits_with_lengths(
    params: Params,
    xs: Float[ArrayLike, "batch time feature"],
    cfg: NoisyRNNConfig,
    *,
    lengths: Int[ArrayLike, " batch"] | None = None,
    key: PRNGKeyArray | None = None,
) -> Float[Array, "batch classes"]:
    """Logits ``V h_L + c`` read at each sequence's own length ``L`` (``h_T`` without lengths).

    With ``lengths`` this runs :func:`noisy_dyn.trajectory` and reads the state after step
    ``L - 1`` of sequence ``i`` (``hs[i, L_i]``), so right-padding after the real steps has no
    effect; without it, it is :func:`noisy_dyn.apply`. ``cfg``'s numbers may be traced.
    """
    if lengths is None:
        return apply(params, xs, cfg, key=key)
    hs = trajectory(params, xs, cfg, key=key)
    h = jnp.take_along_axis(hs, jnp.asarray(lengths)[:, None, None], axis=1)[:, 0]
    return h @ params["V"].T + params["c"]


def cross_entropy(logits: ArrayLike, ys: ArrayLike) -> Array:
    """``logsumexp(logits) - logits[y]`` per example (optax's; its gradient is bit-identical)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, ys)


class Regularizer(abc.ABC):
    """What a training step minimises over a batch, as a frozen (hashable) dataclass.

    :meth:`loss` gives ``(scalar loss, logits of the pass it used)``; :meth:`check` refuses a
    configuration it cannot train; :meth:`settings` its part of a run's fingerprint.
    """

    name: ClassVar[str]
    lam: float = 0.0  # the penalty weight (the step takes it traced, one program for every lam)

    def check(self, cfg: NoisyRNNConfig) -> None:  # noqa: B027 - a hook: nothing by default
        """Refuse ``cfg`` in one line if this regularizer cannot train it."""

    @abc.abstractmethod
    def loss(
        self,
        params: Params,
        xs: Float[ArrayLike, "batch time feature"],
        ys: Int[ArrayLike, " batch"],
        lengths: Int[ArrayLike, " batch"] | None,
        key: PRNGKeyArray,
        cfg: NoisyRNNConfig,
        lam: Any = None,
    ) -> tuple[Float[Array, ""], Float[Array, "batch classes"]]:
        """``(loss, logits)`` of one batch; ``key`` is the step's noise key, ``lam`` the traced
        weight (default :attr:`lam`)."""

    def settings(self) -> dict[str, Any]:
        """The fingerprint entries (the keys runs recorded before the objects existed)."""
        return {"regularizer": self.name, "lam": None}


@dataclasses.dataclass(frozen=True)
class NoiseInjection(Regularizer):
    """Noise injection: ``mean_{i in B} CE(apply(params, x_i, cfg, key=k_s), y_i)``, the loss of
    the noisy forward pass with fresh noise ``k_s`` at global step ``s`` (no noise for a
    deterministic configuration)."""

    name: ClassVar[str] = "noise"

    def loss(
        self,
        params: Params,
        xs: Float[ArrayLike, "batch time feature"],
        ys: Int[ArrayLike, " batch"],
        lengths: Int[ArrayLike, " batch"] | None,
        key: PRNGKeyArray,
        cfg: NoisyRNNConfig,
        lam: Any = None,
    ) -> tuple[Float[Array, ""], Float[Array, "batch classes"]]:
        logits = logits_with_lengths(params, xs, cfg, lengths=lengths, key=key)
        return jnp.mean(cross_entropy(logits, ys)), logits


@dataclasses.dataclass(frozen=True)
class ExplicitRegularizer(Regularizer):
    """The explicit penalty: ``mean CE(deterministic) + lam * mean r_i`` with ``r`` the
    second-order small-noise regulariser of ``cfg``'s noise (Lipschitz cell only; variable
    lengths as for the noise: steps past a series' length are the identity).

    Attributes:
        lam: the weight of the penalty, finite and >= 0 (``1`` matches the noise).
        trace: how ``r``'s trace is taken: :class:`noisy_dyn.Exact` (default) or
            :class:`noisy_dyn.Hutchinson` ``(num_samples)`` (probes drawn from the step's key).
    """

    lam: float = 1.0
    trace: Trace = Exact()
    name: ClassVar[str] = "explicit"

    def __post_init__(self):
        try:
            lam = float(self.lam)
        except (TypeError, ValueError):
            lam = math.nan
        if isinstance(self.lam, bool) or not math.isfinite(lam) or lam < 0:
            raise ValueError(f"`lam` must be a finite number >= 0, got {self.lam!r}.")
        if not isinstance(self.trace, Trace):
            raise TypeError(
                "ExplicitRegularizer trace must be noisy_dyn.Exact() or noisy_dyn.Hutchinson(n), "
                f"got {self.trace!r}."
            )
        object.__setattr__(self, "lam", lam)

    def check(self, cfg: NoisyRNNConfig) -> None:
        if not cfg.cell.noisy:
            raise ValueError(
                f"ExplicitRegularizer needs cell='lipschitz' (got {cfg.cell.name!r}); use "
                "NoiseInjection() for the LSTM/GRU baselines."
            )

    def loss(
        self,
        params: Params,
        xs: Float[ArrayLike, "batch time feature"],
        ys: Int[ArrayLike, " batch"],
        lengths: Int[ArrayLike, " batch"] | None,
        key: PRNGKeyArray,
        cfg: NoisyRNNConfig,
        lam: Any = None,
    ) -> tuple[Float[Array, ""], Float[Array, "batch classes"]]:
        lam = self.lam if lam is None else lam
        logits = logits_with_lengths(params, xs, cfg, lengths=lengths)
        key = key if self.trace.needs_key else None
        loss = regularized_loss(params, xs, ys, cfg, lam, trace=self.trace, key=key,
                                lengths=lengths)  # fmt: skip
        return loss, logits

    def settings(self) -> dict[str, Any]:
        out = {"regularizer": self.name, "lam": self.lam}
        if not isinstance(self.trace, Exact):  # runs recorded before the objects had none
            out["trace"] = {"name": self.trace.name, **dataclasses.asdict(self.trace)}
        return out


REGULARIZERS: dict[str, type[Regularizer]] = {
    "noise": NoiseInjection,
    "explicit": ExplicitRegularizer,
}
"""The regularizers by name (the names of :func:`regularizer_by_name` and the command line)."""


def regularizer_by_name(
    name: str, *, lam: float = 1.0, trace: str | Trace = "exact"
) -> Regularizer:
    """The regularizer called ``name``: ``"noise"`` (:class:`NoiseInjection`; ``lam`` and
    ``trace`` unused) or ``"explicit"`` (:class:`ExplicitRegularizer` ``(lam, trace)``, a trace
    given by name as for :func:`noisy_dyn.trace_by_name`). Strings are for the edges (command
    line, run files); the library takes the objects."""
    if lookup(name, REGULARIZERS, "regularizer") is NoiseInjection:
        return NoiseInjection()
    trace = trace_by_name(trace) if isinstance(trace, str) else trace
    return ExplicitRegularizer(lam=lam, trace=trace)
