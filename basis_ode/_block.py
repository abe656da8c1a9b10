"""The (stateful) ODE block as a Flax linen module.

``ODEBlock(unit=...)`` integrates ``dh/dt = F(theta(t), h)`` on ``t in [0, 1]`` where ``F`` is any
Flax unit and every variable of the unit - trainable parameters *and* mutable state such as
BatchNorm statistics - is a basis expansion in depth (docs/basis_ode.md; Queiruga et al. 2021,
sections 2 and 3.2). The block owns

    params["basis_coeffs"]        the unit's params, every leaf with a leading axis K
    batch_stats["basis_coeffs"]   the unit's statistics (only if the unit has any), leading axis K

K is read from these shapes, never from configuration, so the same module runs variables that
were compressed or refined to another K (:func:`basis_ode.compress`,
:func:`basis_ode.refine_variables`); ``n_basis`` is used at ``init`` only. Initialisation draws
the unit's own init K times (K keys split from the ``params`` key), one draw per node of the
basis, and interpolates them (:func:`init_coefficients`): the normalisation state is the unit's
starting constant at every depth and the weights have the unit's init spread at every depth, in
every family.

Integration settings are attributes, overridable per call::

    block = ODEBlock(unit=PreActConvUnit, n_basis=8)            # n_steps defaults to K
    y = block.apply(v, h, train=False, n_steps=16, scheme="rk4", basis="hat")
    y = block.clone(n_steps=16, method="rk4").apply(v, h)       # the same, by cloning

The per-call name of the scheme is ``scheme`` because ``method`` is a reserved keyword of Flax's
``Module.apply``; the attribute is ``method``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._bases import Basis, basis_by_name
from ._stateful import solve_stateful

#: Name of the variable holding the basis coefficients of a block's unit, in every collection.
COEFFS = "basis_coeffs"
#: The collection of basis tags: ``variables["basis"][<block path>]["<family>_K<K>"] = K``.
TAG = "basis"


def tag_key(basis: Basis) -> str:
    """The tag of a basis: the variable name ``"<family>_K<K>"``, e.g. ``"legendre_K4"``."""
    return f"{basis.name}_K{basis.K}"


def parse_tag(key: str) -> Basis:
    """The basis a tag names (inverse of :func:`tag_key`)."""
    name, sep, k = str(key).rpartition("_K")
    if not sep or not k.isdigit():
        raise ValueError(
            f"{key!r} is not a basis tag; tags read '<family>_K<K>', e.g. 'hat_K4' (collection "
            f"{TAG!r} of the variables)."
        )
    return basis_by_name(name, int(k))


def tagged_basis(variables: Any) -> Basis | None:
    """The basis recorded in ``variables[TAG]`` (None for variables without a tag).

    Raises:
        ValueError: the blocks' tags disagree.
    """
    found: set[str] = set()

    def walk(tree: Any) -> None:
        for k, v in tree.items():
            if isinstance(v, Mapping):
                walk(v)
            else:
                found.add(k)

    tags = variables.get(TAG) if isinstance(variables, Mapping) else None
    if isinstance(tags, Mapping):
        walk(tags)
    if len(found) > 1:
        raise ValueError(
            f"the ODE blocks' basis tags disagree: {sorted(found)}; every block of a model must "
            "be expressed in one basis."
        )
    return parse_tag(found.pop()) if found else None


def retag(variables: Mapping[str, Any], basis: Basis) -> dict[str, Any]:
    """``variables`` with every block's tag rewritten to ``basis`` (unchanged without tags)."""

    def walk(tree: Any) -> Any:
        if all(not isinstance(v, Mapping) for v in tree.values()):
            return {tag_key(basis): np.int32(basis.K)}
        return {k: walk(v) if isinstance(v, Mapping) else v for k, v in tree.items()}

    out = dict(variables)
    if isinstance(out.get(TAG), Mapping) and out[TAG]:
        out[TAG] = walk(out[TAG])
    return out


def check_same_basis(claimed: Basis, tagged: Basis | None, what: str) -> None:
    """Refuse ``claimed`` when the variables are tagged with another basis, naming both."""
    if tagged is not None and (claimed.name, claimed.K) != (tagged.name, tagged.K):
        raise ValueError(
            f"{what}: the variables are expressed in {tagged!r} (their {TAG!r} tag "
            f"{tag_key(tagged)!r}) but {claimed!r} was given. Pass the variables' own basis "
            f"(or leave it out: it is read from the tag), or change basis with "
            f"basis_ode.compress(variables, {claimed!r})."
        )


def _leading_k(tree: Any, what: str) -> int:
    ks = {int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves(tree) if leaf.ndim > 0}
    if len(ks) != 1:
        raise ValueError(
            f"ODEBlock: every leaf of {what} must have the same leading axis K (the number of "
            f"basis functions); found {sorted(ks)}. Compress or refine all blocks together."
        )
    return ks.pop()


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


def init_coefficients(samples: Any, basis: Basis) -> Any:
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

    def _initial_variables(self, template: Any, h: Any, basis: str | None, context: Any) -> dict:
        """At init: K draws of the unit's variables, interpolated (:func:`init_coefficients`),
        and the basis tag; ``{}`` otherwise."""
        if not self.is_initializing() or self.has_variable("params", COEFFS):
            return {}
        init_basis = basis_by_name(basis if basis is not None else self.basis, self.n_basis)
        keys = jax.random.split(self.make_rng("params"), init_basis.K)
        draws = jax.vmap(lambda k: template.init(k, h, train=False, **context))(keys)
        keep = ("params", *self.state_collections)
        self.variable(TAG, tag_key(init_basis), lambda: jnp.int32(init_basis.K))
        return init_coefficients({c: v for c, v in draws.items() if c in keep}, init_basis)

    def _coefficients(self, init_vars: dict) -> Any:
        if init_vars:
            return self.param(COEFFS, lambda _: init_vars["params"])
        if self.has_variable("params", COEFFS):
            # read directly: ``self.param`` would shape-check against ``n_basis`` and K is read
            # from the variables instead
            return self.get_variable("params", COEFFS)
        raise ValueError(
            f"ODEBlock {self.name!r}: no params[{COEFFS!r}] in the variables; initialise the "
            "model with model.init(key, x) and pass the resulting variables to apply."
        )

    def _basis(self, override: str | None, k: int) -> Basis:
        """The basis of the coefficients: the variables' tag if they carry one (a per-call
        ``basis`` must then agree), else the per-call name, else the attribute, with K = k."""
        tags = [key for key in self.variables.get(TAG, {}) if not self.is_initializing()]
        if not tags:
            return basis_by_name(override if override is not None else self.basis, k)
        tagged = parse_tag(tags[0])
        if tagged.K != k:
            raise ValueError(
                f"ODEBlock {self.name!r}: the basis tag {tags[0]!r} says K = {tagged.K} but the "
                f"coefficients have K = {k}; change K only with basis_ode.compress or "
                "basis_ode.refine_variables, which rewrite the tag."
            )
        if override is not None:
            check_same_basis(basis_by_name(override, k), tagged, f"ODEBlock {self.name!r}")
        return tagged

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
        scheme = scheme if scheme is not None else self.method
        init_vars = self._initial_variables(template, h, basis, context)
        params = self._coefficients(init_vars)
        state_vars = {}
        for c in self.state_collections:
            if c in init_vars or self.has_variable(c, COEFFS):
                state_vars[c] = self.variable(c, COEFFS, lambda c=c: init_vars[c])
        variables = {"params": params, **{c: v.value for c, v in state_vars.items()}}
        k = _leading_k(variables, f"ODE block {self.name!r}")
        basis_obj = self._basis(basis, k)
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
