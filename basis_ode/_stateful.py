"""Continuous-in-depth state: mutable Flax collections kept as basis coefficients.

Queiruga et al. 2021, section 3.2; docs/basis_ode.md, "Continuous-in-depth BatchNorm".

A unit ``F`` (any Flax linen module) has trainable ``params`` and, possibly, mutable *state*
collections such as BatchNorm's ``batch_stats``. In a stateful ODE-Net both are functions of depth
stored as coefficients on the same basis: every leaf carries a leading axis of length ``K`` and

    theta(t) = sum_k phi_k(t) theta_k,      s(t) = sum_k phi_k(t) s_k.

At each stage time ``tau`` the unit is applied functionally with the evaluated variables,
``F.apply({"params": theta(tau), "batch_stats": s(tau)}, h, train=train, mutable=[...])``.

- Inference: the state is only read, so normalisation follows the stage times and stays
  consistent when ``n_steps``, the scheme or the basis change.
- Training: each stage normalises with its batch statistics and emits updated statistics
  ``s'(tau)``. After the solve, the ``S`` emitted samples (all stages of all steps) are fitted back
  onto the ``K`` nodes by ridge least squares *anchored at the old coefficients*:

      s_new = argmin_c ||Phi c - s'||^2 + lambda ||c - s_old||^2
            = s_old + (Phi^T Phi + lambda I)^{-1} Phi^T (s' - Phi s_old),

  with ``Phi`` the ``S x K`` basis matrix at the stage times. Fitting the increments
  ``s'(tau) - s(tau)`` with :func:`basis_ode.least_squares_fit` gives exactly this; a node that no
  stage touches keeps its old statistics (the plain ridge fit would shrink it to zero).
  With Euler, the piecewise-constant basis and ``n_steps = K`` every node gets exactly one sample,
  ``Phi = I`` and ``s_new = s_old + (s' - s_old) / (1 + lambda)``: ordinary per-layer BatchNorm up
  to a relative ``lambda`` (1e-6 by default; pass ``ridge=0`` for an exact copy in that case).

The functions here are pure: they take and return coefficient pytrees; the Flax face is
:class:`basis_ode.ODEBlock`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, Float

from ._bases import Basis
from ._integrate import EULER, ButcherTableau, least_squares_fit, odeint
from ._types import State

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

#: Variables of one ODE block: ``{"params": coeffs, "batch_stats": coeffs}``, leaves ``(K, ...)``.
BlockVariables = Mapping[str, Any]


def _strip(tree: Any) -> Any:
    """Plain nested dicts (Flax may hand out FrozenDicts)."""
    if isinstance(tree, Mapping):
        return {k: _strip(v) for k, v in tree.items()}
    return tree


def unit_field(
    unit: nn.Module,
    *,
    train: bool,
    state_collections: Sequence[str],
    context: Mapping[str, Any] | None = None,
) -> Callable[[BlockVariables, Any], Any]:
    """The vector field ``(theta, h) -> dh`` of a Flax unit applied functionally.

    Arguments:
        unit: an unbound Flax module with call signature ``unit(h, *, train, **context)``.
        train: passed to the unit. With state collections present and ``train=True`` the field
            returns ``(dh, delta)`` where ``delta = s'(tau) - s(tau)`` is the change the unit made
            to its state collections at this stage (a pytree like ``theta`` minus ``"params"``).
        state_collections: names of the mutable collections in ``theta`` (e.g. "batch_stats").
        context: extra keyword arguments for the unit (e.g. an attention mask).

    Returns:
        ``field(theta, h)``: ``dh``, or ``(dh, delta)`` in the stateful training case.
    """
    return _UnitField(unit, bool(train), tuple(state_collections), dict(context or {}))


class _UnitField(eqx.Module):
    """``(theta, h) -> dh`` of a Flax unit: the unit, ``train`` and the collection names static,
    the context (e.g. an attention mask) a leaf, so :func:`basis_ode.odeint` compiles one
    program per unit configuration and shapes rather than one per call."""

    unit: nn.Module = eqx.field(static=True)
    train: bool = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    context: dict[str, Any]

    def __call__(self, theta: BlockVariables, h: Any) -> Any:
        names = list(self.names)
        if self.train and names:
            dh, mutated = self.unit.apply(theta, h, train=True, mutable=names, **self.context)
            delta = {
                c: jax.tree_util.tree_map(jnp.subtract, _strip(mutated[c]), _strip(theta[c]))
                for c in names
            }
            return dh, delta
        return self.unit.apply(theta, h, train=self.train, **self.context)


def fit_state(
    state: Mapping[str, Any],
    basis: Basis,
    stage_times: Float[ArrayLike, "n_steps stages"],
    deltas: Mapping[str, Any],
    *,
    method: ButcherTableau,
    ridge: float = 1e-6,
) -> dict[str, Any]:
    """Fit stage-wise state increments back onto the K nodes (anchored ridge least squares).

    ``s_new = s_old + (Phi^T Phi + ridge I)^{-1} Phi^T delta`` per leaf, where ``delta`` stacks the
    increments ``s'(tau) - s(tau)`` of all stages and ``Phi`` is the basis each stage read (the
    exact stage basis of :func:`basis_ode.least_squares_fit` with ``method``, so a stage at a
    step's right end counts for the step's own cell).

    Arguments:
        state: ``{collection: coefficient pytree}``, leaves ``(K, ...)``.
        basis: the basis of the coefficients.
        stage_times: ``(n_steps, S)`` stage times of the solve.
        deltas: ``{collection: pytree}`` with leaves ``(n_steps, S, ...)``.
        method: the scheme of the solve.
        ridge: the ridge parameter ``lambda`` (>= 0).

    Returns:
        The updated state, same structure and dtypes as ``state``.
    """
    out = {}
    for c in state:
        step = least_squares_fit(basis, stage_times, deltas[c], ridge=ridge, method=method)
        out[c] = jax.tree_util.tree_map(
            lambda old, d: (old + d).astype(old.dtype), _strip(state[c]), step
        )
    return out


def solve_stateful(
    unit: nn.Module,
    h0: State,
    variables: BlockVariables,
    basis: Basis,
    *,
    n_steps: int,
    method: ButcherTableau = EULER,
    train: bool = False,
    ridge: float = 1e-6,
    context: Mapping[str, Any] | None = None,
    unroll: bool | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Integrate ``dh/dt = F(theta(t), s(t); h)`` on [0, 1] and, in training, refit the state.

    Arguments:
        unit: unbound Flax unit, call signature ``unit(h, *, train, **context)``.
        h0: initial state ``h(0)``.
        variables: ``{"params": coeffs, <state collection>: coeffs, ...}``; every leaf ``(K, ...)``.
        basis: the basis of all coefficients (``basis.K == K``).
        n_steps: number of fixed steps (independent of K).
        method: explicit scheme of :func:`basis_ode.odeint` (a :class:`basis_ode.ButcherTableau`).
        train: batch statistics and a state update if True.
        ridge: ridge ``lambda`` of the state fit (see :func:`fit_state`).
        context: extra keyword arguments for the unit.
        unroll: unroll the depth loop (None: on the CPU only; see :func:`basis_ode.odeint`).

    Returns:
        ``(h(1), new_state)`` where ``new_state`` maps each state collection to its coefficients:
        refitted in training, unchanged at inference.
    """
    variables = _strip(variables)
    state = {c: v for c, v in variables.items() if c != "params"}
    field = unit_field(unit, train=train, state_collections=tuple(state), context=context)
    if train and state:
        sol = odeint(
            field, h0, variables, basis, n_steps=n_steps, method=method, has_aux=True, unroll=unroll
        )
        return sol.h, fit_state(state, basis, sol.stage_times, sol.aux, method=method, ridge=ridge)
    h1 = odeint(field, h0, variables, basis, n_steps=n_steps, method=method, unroll=unroll)
    return h1, state
