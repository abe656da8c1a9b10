"""The (stateful) ODE block as a Flax linen module.

``ODEBlock(unit=...)`` integrates ``dh/dt = F(theta(t), h)`` on ``t in [0, 1]`` where ``F`` is any
Flax unit and every variable of the unit - trainable parameters *and* mutable state such as
BatchNorm statistics - is a basis expansion in depth (SPEC 2.1, 2.6). The block owns

    params["basis_coeffs"]        the unit's params, every leaf with a leading axis K
    batch_stats["basis_coeffs"]   the unit's statistics (only if the unit has any), leading axis K

K is read from these shapes, never from configuration, so the same module runs variables that
were compressed or refined to another K (:func:`basis_ode.compress`,
:func:`basis_ode.refine_variables`); ``n_basis`` is used at ``init`` only. The K coefficient sets
are initialised with K different keys (split from the ``params`` key).

Integration settings are attributes, overridable per call::

    block = ODEBlock(unit=PreActConvUnit, n_basis=8)            # n_steps defaults to K
    y = block.apply(v, h, train=False, n_steps=16, scheme="rk4", basis="hat")
    y = block.clone(n_steps=16, method="rk4").apply(v, h)       # the same, by cloning

The per-call name of the scheme is ``scheme`` because ``method`` is a reserved keyword of Flax's
``Module.apply``; the attribute is ``method``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from ._bases import basis_by_name
from ._stateful import solve_stateful

#: Name of the variable holding the basis coefficients of a block's unit, in every collection.
COEFFS = "basis_coeffs"


def _leading_k(tree: Any, what: str) -> int:
    ks = {int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves(tree) if leaf.ndim > 0}
    if len(ks) != 1:
        raise ValueError(
            f"ODEBlock: every leaf of {what} must have the same leading axis K (the number of "
            f"basis functions); found {sorted(ks)}. Compress or refine all blocks together."
        )
    return ks.pop()


def _check_steps(n_steps: Any) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"ODEBlock: n_steps must be a positive Python int, got {n_steps!r}.")
    return n_steps


class ODEBlock(nn.Module):
    """ODE block ``h(1) = h(0) + int_0^1 F(theta(t), s(t); h(t)) dt`` with basis-expanded variables.

    ``theta(t) = sum_k phi_k(t) theta_k`` for the parameters and ``s(t) = sum_k phi_k(t) s_k`` for
    every mutable collection of the unit (SPEC 2.6). Solved with a fixed-step explicit scheme by
    :func:`basis_ode.odeint`; in training the state is refitted onto the K nodes after the solve
    (:func:`basis_ode.solve_stateful`). With Euler, ``PiecewiseConstant(K)`` and ``n_steps = K`` the
    block is a ResNet stage of K blocks ``h <- h + F(theta_k, h) / K`` with ordinary BatchNorm.

    Attributes:
        unit: a Flax module class (or ``functools.partial`` of one) accepting ``parent=None``; its
            instances are called as ``unit(h, *, train, **context)`` and return ``dh/dt`` shaped
            like ``h``.
        n_basis: K, used at ``init`` only (afterwards K is read from the variables).
        n_steps: default number of steps; None means ``n_steps = K``.
        basis: basis family name for :func:`basis_ode.basis_by_name` ("piecewise_constant", "hat",
            "piecewise_linear", "legendre", "chebyshev", "fourier").
        method: default scheme ("euler", "midpoint", "rk4", "rk4_38").
        state_collections: the unit's mutable collections kept as coefficients.
        stats_ridge: ridge ``lambda`` of the state refit.
        unroll: unroll the depth loop (True), keep one ``lax.scan`` (False), or None: unrolled
            on the CPU backend only (:func:`basis_ode.odeint`).
    """

    unit: Callable[..., nn.Module]
    n_basis: int = 1
    n_steps: int | None = None
    basis: str = "piecewise_constant"
    method: str = "euler"
    state_collections: tuple[str, ...] = ("batch_stats",)
    stats_ridge: float = 1e-6
    unroll: bool | None = None

    @nn.compact
    def __call__(
        self,
        h: Any,
        *,
        train: bool = False,
        n_steps: int | None = None,
        scheme: str | None = None,
        basis: str | None = None,
        **context: Any,
    ) -> Any:
        """Integrate the block from ``h(0) = h`` to ``h(1)``.

        Arguments:
            h: the input state (any array or pytree the unit accepts).
            train: batch statistics and a state update (needs ``mutable=["batch_stats"]``).
            n_steps: overrides the attribute for this call (None: attribute, then K).
            scheme: overrides ``method`` for this call.
            basis: overrides the basis family name for this call.
            **context: passed to the unit at every stage (e.g. ``mask=``).

        Returns:
            ``h(1)``, shaped like ``h``.
        """
        template = self.unit(parent=None)
        name = basis if basis is not None else self.basis
        scheme = scheme if scheme is not None else self.method

        init_vars: dict[str, Any] = {}
        if self.is_initializing() and not self.has_variable("params", COEFFS):
            basis_by_name(name, self.n_basis)  # validates (name, K) before any work
            keys = jax.random.split(self.make_rng("params"), self.n_basis)
            init_vars = jax.vmap(lambda k: template.init(k, h, train=False, **context))(keys)
            init_vars = {
                c: v for c, v in init_vars.items() if c == "params" or c in self.state_collections
            }

        if init_vars:
            params = self.param(COEFFS, lambda _: init_vars["params"])
        elif self.has_variable("params", COEFFS):
            # read directly: ``self.param`` would shape-check against ``n_basis`` and K is read
            # from the variables instead
            params = self.get_variable("params", COEFFS)
        else:
            raise ValueError(
                f"ODEBlock {self.name!r}: no params[{COEFFS!r}] in the variables; initialise the "
                "model with model.init(key, x) and pass the resulting variables to apply."
            )
        state_vars = {}
        for c in self.state_collections:
            if c in init_vars or self.has_variable(c, COEFFS):
                state_vars[c] = self.variable(c, COEFFS, lambda c=c: init_vars[c])

        variables = {"params": params, **{c: v.value for c, v in state_vars.items()}}
        k = _leading_k(variables, f"ODE block {self.name!r}")
        basis_obj = basis_by_name(name, k)
        steps = _check_steps(n_steps if n_steps is not None else self.n_steps or k)

        out, new_state = solve_stateful(
            template,
            h,
            variables,
            basis_obj,
            n_steps=steps,
            method=scheme,
            train=train,
            ridge=self.stats_ridge,
            context=context,
            unroll=self.unroll,
        )
        if train and not self.is_initializing():
            for c, var in state_vars.items():
                if self.is_mutable_collection(c):
                    var.value = new_state[c]
        return out
