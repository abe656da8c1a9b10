"""Coefficients that carry their basis: ``BasisExpansion(basis, coeffs)``, a pytree node.

``theta(t) = sum_k phi_k(t) theta_k`` needs two things: the coefficients ``theta_k`` (arrays, the
pytree's leaves, each with a leading axis K) and the family ``phi`` (static: hashable, no
arrays). A :class:`BasisExpansion` holds both, as an ``equinox.Module`` whose basis *family* is a
static field. K is not stored a second time: it is the coefficients' leading axis, and
``expansion.basis`` is the family with that K. Everything that maps pytrees keeps the basis:
``jax.jit``, ``jax.vmap`` (over another axis than K), ``jax.grad``, ``optax`` updates, orbax
checkpoints and :func:`basis_ode.save_model` / :func:`basis_ode.load_model`.

A change of basis is a linear map of the leaves by one ``(K_dst, K_src)`` matrix ``P``
(:func:`basis_ode.change_of_basis`); :meth:`BasisExpansion.project`,
:meth:`BasisExpansion.interpolate` and :meth:`BasisExpansion.refine` return new expansions that
know their new basis, and :func:`basis_ode.compress` maps every expansion of a pytree (a model's
variables) that way.

Examples:
    >>> import jax.numpy as jnp, basis_ode as bo
    >>> e = bo.BasisExpansion(bo.Hat(3), {"w": jnp.array([[0.0], [1.0], [2.0]])})
    >>> e.basis, e.K
    (Hat(K=3), 3)
    >>> e.project(bo.Hat(2)).basis
    Hat(K=2)
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import numpy as np
from flax import serialization

from ._bases import Basis
from ._projection import _check_basis, check_coefficients, evaluate, interpolate, project, refine
from ._types import Coefficients, Parameters, Time

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


def _leading_axis(coeffs: Any) -> int | None:
    """The common leading axis of the array leaves (None while unflattening with placeholders)."""
    shapes = [np.shape(x) for x in jax.tree_util.tree_leaves(coeffs) if hasattr(x, "shape")]
    return int(shapes[0][0]) if shapes and len(shapes[0]) else None


class BasisExpansion(eqx.Module):
    """``theta(t) = sum_k phi_k(t) coeffs[k]``: coefficients together with their basis family.

    Attributes:
        family: the basis family (a :class:`basis_ode.Basis` subclass such as ``Hat``); static.
        coeffs: a pytree of arrays, every leaf of shape ``(K, ...)``: the K coefficient sets.

    Construct it from a basis object, ``BasisExpansion(Hat(4), coeffs)``: the basis's K must be
    the leaves' leading axis (checked), and only the family is kept.
    """

    family: type[Basis] = eqx.field(static=True)
    coeffs: Coefficients

    def __init__(self, basis: Basis, coeffs: Coefficients):
        _check_basis(basis, "basis")
        check_coefficients(coeffs, basis, argname="BasisExpansion coeffs")
        self.family = type(basis)
        self.coeffs = coeffs

    @property
    def K(self) -> int:
        """The number of basis functions: the coefficients' leading axis."""
        k = _leading_axis(self.coeffs)
        if k is None:
            raise ValueError("BasisExpansion: the coefficients have no array leaves.")
        return k

    @property
    def basis(self) -> Basis:
        """The basis of the coefficients: ``family(K)``."""
        return self.family(self.K)

    def __call__(self, t: Time) -> Parameters:
        """``theta(t)``, leaf by leaf (see :func:`basis_ode.evaluate`)."""
        return evaluate(self.coeffs, self.basis, t)

    def project(self, dst: Basis) -> BasisExpansion:
        """The L2 projection onto span(dst), as an expansion in ``dst`` (dtypes kept)."""
        return BasisExpansion(dst, _keep_dtype(project(self.coeffs, self.basis, dst), self.coeffs))

    def interpolate(self, dst: Basis) -> BasisExpansion:
        """Nodal interpolation into span(dst), as an expansion in ``dst`` (dtypes kept)."""
        new = interpolate(self.coeffs, self.basis, dst)
        return BasisExpansion(dst, _keep_dtype(new, self.coeffs))

    def refine(self) -> BasisExpansion:
        """The same ``theta(t)`` in the family's next finer basis (:func:`basis_ode.refine`)."""
        fine, fine_basis = refine(self.coeffs, self.basis)
        return BasisExpansion(fine_basis, _keep_dtype(fine, self.coeffs))


def _to_state_dict(e: BasisExpansion) -> dict[str, Any]:
    return {"coeffs": serialization.to_state_dict(e.coeffs)}


def _from_state_dict(target: BasisExpansion, state: dict[str, Any]) -> BasisExpansion:
    coeffs = serialization.from_state_dict(target.coeffs, state["coeffs"])
    K = _leading_axis(coeffs)
    return BasisExpansion(target.basis if K is None else target.family(K), coeffs)


# Flax's state dicts (msgpack files, the orbax checkpoints of trainkit) hold an expansion as
# {"coeffs": ...}; restoring into a template rebuilds it in the template's family, with the K of
# the restored arrays (a best state saved before a refinement has a smaller K than the template).
serialization.register_serialization_state(BasisExpansion, _to_state_dict, _from_state_dict)


def _keep_dtype(new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda n, o: n.astype(o.dtype), new, old)


def is_expansion(x: Any) -> bool:
    """True for a :class:`BasisExpansion` (the ``is_leaf`` of maps over a model's variables)."""
    return isinstance(x, BasisExpansion)


def expansions(tree: Any) -> list[BasisExpansion]:
    """Every :class:`BasisExpansion` in a pytree, in flattening order."""
    leaves = jax.tree_util.tree_leaves(tree, is_leaf=is_expansion)
    return [x for x in leaves if is_expansion(x)]


def basis_of(tree: Any) -> Basis | None:
    """The one basis of every expansion in ``tree`` (None when it holds none).

    Raises:
        ValueError: the expansions are in different bases (both named).

    Examples:
        >>> import jax, jax.numpy as jnp, basis_ode as bo
        >>> model = bo.ConvODENet(width=4, basis=bo.Hat(3))
        >>> bo.basis_of(model.init(jax.random.key(0), jnp.ones((1, 8, 8, 1))))
        Hat(K=3)
    """
    found = sorted({e.basis for e in expansions(tree)}, key=repr)
    if len(found) > 1:
        raise ValueError(
            f"the ODE blocks' coefficients are in different bases {found}; map them to one "
            f"with basis_ode.compress(variables, {found[0]!r})."
        )
    return found[0] if found else None
