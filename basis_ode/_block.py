"""The (stateful) ODE block as a Flax linen module.

``ODEBlock(unit=...)`` integrates ``dh/dt = F(theta(t), h)`` on ``t in [0, 1]`` where ``F`` is any
Flax unit and every variable of the unit - trainable parameters *and* mutable state such as
BatchNorm statistics - is a basis expansion in depth (docs/basis_ode.md; Queiruga et al. 2021,
sections 2 and 3.2). The block owns

    params["basis_coeffs"]        BasisExpansion(basis, the unit's params), leaves (K, ...)
    batch_stats["basis_coeffs"]   BasisExpansion(basis, the unit's statistics), if it has any

The basis is read from these expansions, never from configuration, so the same module runs variables
that were compressed or refined to another family or K (:func:`basis_ode.compress`,
:func:`basis_ode.refine_variables`); the attribute ``basis`` is used at ``init`` only.
Initialisation draws the unit's own init K times (K keys split from the ``params`` key), one draw
per node of the basis, and interpolates them (:func:`init_coefficients`): the normalisation state is
the unit's starting constant at every depth and the weights have the unit's init spread at every
depth, in every family.

Integration settings are attributes, overridable per call::

    block = ODEBlock(unit=PreActConvUnit, basis=Hat(8))          # n_steps defaults to K
    y = block.apply(v, h, train=False, n_steps=16, scheme=RK4)
    y = block.clone(n_steps=16, method=RK4).apply(v, h)          # the same, by cloning

The per-call name of the scheme is ``scheme`` because ``method`` is a reserved keyword of Flax's
``Module.apply``; the attribute is ``method``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from trainkit.internal import FloatLike, IntLike

from ._bases import Basis, PiecewiseConstant
from ._expansion import BasisExpansion
from ._integrate import EULER, ButcherTableau, _check_scheme
from ._stateful import solve_stateful
from ._types import Coefficients, State

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

#: Name of the variable holding the basis expansion of a block's unit, in every collection.
COEFFS = "basis_coeffs"


def _block_expansions(variables: dict, name: str | None) -> Basis:
    """The one basis of a block's expansions (params and state), or a clear refusal."""
    bases = {c: v.basis for c, v in variables.items()}
    if len(set(bases.values())) > 1:
        raise ValueError(
            f"ODEBlock {name!r}: the block's collections are in different bases {bases}; map "
            "the whole model with basis_ode.compress(variables, basis), which maps them together."
        )
    return next(iter(bases.values()))


@functools.lru_cache(maxsize=64)
def _nodal_matrices(basis: Basis) -> tuple[np.ndarray, np.ndarray] | None:
    """``(A, c1)``: ``A = Phi^-1`` maps samples at the K nodes to the coefficients of their
    interpolant (``Phi[j, k] = phi_k(x_j)``) and ``c1`` are the coefficients of the constant 1.
    None for the nodal families (``Phi = I``: the coefficients are the samples)."""
    Phi = np.stack([basis._values_at(x, side) for x, side in basis._exact_nodes()])
    if np.array_equal(Phi, np.eye(basis.K)):
        return None
    A = np.linalg.inv(Phi)
    c1 = np.linalg.solve(Phi, np.ones(basis.K))
    c1 = np.where(np.abs(c1) < 1e-12, 0.0, c1)  # the exact constant: e_0 for global families
    return A, c1


def init_coefficients(samples: Coefficients, basis: Basis) -> Coefficients:
    """Coefficients whose ``theta(t)`` interpolates K independent initialisations at the nodes.

    ``samples`` stacks K draws of the unit's variables (leaves ``(K, ...)``), draw j standing for
    the node ``x_j`` of ``basis``. The result solves ``sum_k phi_k(x_j) c_k = v_j``. A leaf that
    is the same in every draw (BatchNorm running mean 0 and variance 1, scale 1, bias 0) becomes
    exactly that constant at every t (``c = c_1 v_0`` with ``c_1`` the coefficients of the
    constant 1, which every family holds); the other leaves get
    ``c = c_1 v_0 + Phi^-1 (v - v_0)``, so ``Var theta(t) = sigma^2 sum_j L_j(t)^2`` for i.i.d.
    draws of variance sigma^2 (``L_j`` the Lagrange functions of the nodes): exactly sigma^2 at
    the nodes, and between ``0.71 sigma`` and ``1.37 sigma`` in standard deviation at every t
    for K <= 9 in all six families (docs/basis_ode.md, "Initialisation"). For the nodal families
    (piecewise constant, hat, piecewise linear) the coefficients are the draws themselves.
    """
    mats = _nodal_matrices(basis)
    if mats is None:
        return samples
    A, c1 = mats

    def one(v):
        v0 = v[:1]
        const = jnp.asarray(c1, v.dtype).reshape((-1,) + (1,) * (v.ndim - 1)) * v0
        rest = jnp.einsum("ij,j...->i...", jnp.asarray(A, v.dtype), v - v0)
        return const + rest

    return jax.tree_util.tree_map(one, samples)


def _check_steps(n_steps: Any) -> int:
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, numbers.Integral):
        raise ValueError(f"ODEBlock: n_steps must be a positive Python int, got {n_steps!r}.")
    if n_steps < 1:
        raise ValueError(f"ODEBlock: n_steps must be a positive Python int, got {n_steps!r}.")
    return int(n_steps)


class ODEBlock(nn.Module):
    """ODE block ``h(1) = h(0) + int_0^1 F(theta(t), s(t); h(t)) dt`` with basis-expanded variables.

    ``theta(t) = sum_k phi_k(t) theta_k`` for the parameters and ``s(t) = sum_k phi_k(t) s_k`` for
    every mutable collection of the unit (paper section 3.2). Solved with a fixed-step explicit
    scheme by :func:`basis_ode.odeint`; in training the state is refitted onto the K nodes after
    the solve (:func:`basis_ode.solve_stateful`). With Euler, ``PiecewiseConstant(K)`` and
    ``n_steps = K`` the block is a ResNet stage of K blocks ``h <- h + F(theta_k, h) / K`` with
    ordinary BatchNorm.

    Attributes:
        unit: a Flax module class (or ``functools.partial`` of one) accepting ``parent=None``; its
            instances are called as ``unit(h, *, train, **context)`` and return ``dh/dt`` shaped
            like ``h``.
        basis: the basis at ``init`` (family and K), e.g. ``Hat(4)``. Afterwards the variables'
            own :class:`basis_ode.BasisExpansion` says the basis: the block evaluates whatever
            expansion it is given (compressed, refined, another family).
        n_steps: default number of steps; None means ``n_steps = K`` of the variables.
        method: default scheme, a :class:`basis_ode.ButcherTableau` (``EULER``, ``RK4``, ...).
        state_collections: the unit's mutable collections kept as coefficients.
        stats_ridge: ridge ``lambda`` of the state refit.
        unroll: unroll the depth loop (True), keep one ``lax.scan`` (False), or None: unrolled
            on the CPU backend only (:func:`basis_ode.odeint`).
    """

    unit: Callable[..., nn.Module]
    basis: Basis = PiecewiseConstant(1)
    n_steps: IntLike | None = None
    method: ButcherTableau = EULER
    state_collections: tuple[str, ...] = ("batch_stats",)
    stats_ridge: FloatLike = 1e-6
    unroll: bool | None = None

    def _initial_variables(self, template: Any, h: Any, context: Any) -> dict:
        """At init: K draws of the unit's variables, interpolated (:func:`init_coefficients`),
        one :class:`BasisExpansion` per collection; ``{}`` otherwise."""
        if not self.is_initializing() or self.has_variable("params", COEFFS):
            return {}
        basis = self.basis
        if not isinstance(basis, Basis) or type(basis) is Basis:
            raise TypeError(
                f"ODEBlock: basis must be a basis object such as basis_ode.Hat(4) (family and "
                f"K), got {basis!r}; basis_ode.basis_by_name(name, K) turns a name into one."
            )
        keys = jax.random.split(self.make_rng("params"), basis.K)
        draws = jax.vmap(lambda k: template.init(k, h, train=False, **context))(keys)
        keep = ("params", *self.state_collections)
        coeffs = init_coefficients({c: v for c, v in draws.items() if c in keep}, basis)
        return {c: BasisExpansion(basis, dict(v)) for c, v in coeffs.items()}

    def _expansion(self, init_vars: dict) -> BasisExpansion:
        if init_vars:
            return self.param(COEFFS, lambda _: init_vars["params"])
        if self.has_variable("params", COEFFS):
            value = self.get_variable("params", COEFFS)
            if not isinstance(value, BasisExpansion):
                raise TypeError(
                    f"ODEBlock {self.name!r}: params[{COEFFS!r}] must be a "
                    f"basis_ode.BasisExpansion (coefficients with their basis), got "
                    f"{type(value).__name__}; build it with BasisExpansion(basis, coeffs) or "
                    "load a model file with basis_ode.load_model."
                )
            return value
        raise ValueError(
            f"ODEBlock {self.name!r}: no params[{COEFFS!r}] in the variables; initialise the "
            "model with model.init(key, x) and pass the resulting variables to apply."
        )

    @nn.compact
    def __call__(
        self,
        h: State,
        *,
        train: bool = False,
        n_steps: int | None = None,
        scheme: ButcherTableau | None = None,
        **context: Any,
    ) -> State:
        """Integrate the block from ``h(0) = h`` to ``h(1)`` in the basis of the variables.

        Arguments:
            h: the input state (any array or pytree the unit accepts).
            train: batch statistics and a state update (needs ``mutable=["batch_stats"]``).
            n_steps: overrides the attribute for this call (None: attribute, then K).
            scheme: overrides ``method`` for this call (a :class:`basis_ode.ButcherTableau`).
            **context: passed to the unit at every stage (e.g. ``mask=``).

        Returns:
            ``h(1)``, shaped like ``h``.
        """
        template = self.unit(parent=None)
        tab = _check_scheme(scheme if scheme is not None else self.method)
        init_vars = self._initial_variables(template, h, context)
        expansions = {"params": self._expansion(init_vars)}
        state_vars = {}
        for c in self.state_collections:
            if c in init_vars or self.has_variable(c, COEFFS):
                state_vars[c] = self.variable(c, COEFFS, lambda c=c: init_vars[c])
                expansions[c] = state_vars[c].value
        basis = _block_expansions(expansions, self.name)
        variables = {c: e.coeffs for c, e in expansions.items()}
        default = basis.K if self.n_steps is None else self.n_steps  # 0 is refused, not K
        steps = _check_steps(n_steps if n_steps is not None else default)

        out, new_state = solve_stateful(
            template,
            h,
            variables,
            basis,
            n_steps=steps,
            method=tab,
            train=train,
            ridge=self.stats_ridge,
            context=context,
            unroll=self.unroll,
        )
        if train and not self.is_initializing():
            for c, var in state_vars.items():
                if self.is_mutable_collection(c):
                    var.value = BasisExpansion(basis, new_state[c])
        return out
