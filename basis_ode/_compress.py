"""Compression (a change of basis without retraining) and refinement of a model's variables.

Every ODE block keeps its unit's parameters and statistics as a :class:`basis_ode.BasisExpansion`
(``variables[<collection>][<block>]["basis_coeffs"]``). A change of basis ``src -> dst`` is one
``(K_dst, K_src)`` matrix ``P`` computed once (:func:`basis_ode.change_of_basis`, the exact L2
projection ``M^-1 B``; or nodal interpolation), applied to every leaf of every expansion as
``einsum("ij,j...->i...", P, leaf)``: :func:`compress` is that linear map over the whole pytree,
and each new expansion knows its new basis, so ``model.apply(compress(v, dst), x)`` evaluates it
in ``dst`` with any ``n_steps`` and scheme. No data is touched; everything outside the blocks
(stem, stitches, head) is returned unchanged.
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import numpy as np

from trainkit.internal import variant

from ._bases import Basis
from ._expansion import BasisExpansion, basis_of, expansions, is_expansion
from ._projection import change_of_basis, gram_matrix

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


@dataclasses.dataclass(frozen=True)
class CompressionMap(abc.ABC):
    """How trained coefficients reach another basis: a linear map ``theta -> P theta`` from an
    expansion's own basis to ``dst`` (:class:`Project` or :class:`Interpolate`). ``name`` is the
    word written on the command line and in files."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def __call__(self, expansion: BasisExpansion, dst: Basis) -> BasisExpansion:
        """The expansion re-expressed in ``dst``."""


@dataclasses.dataclass(frozen=True)
class Project(CompressionMap):
    """The exact L2 projection: ``P = M^-1 B`` with ``M`` the Gram matrix of dst and ``B_ij =
    int phi^dst_i phi^src_j`` (:func:`basis_ode.change_of_basis`); the best approximation of
    theta in span(dst)."""

    name: ClassVar[str] = "project"

    def __call__(self, expansion: BasisExpansion, dst: Basis) -> BasisExpansion:
        return expansion.project(dst)


@dataclasses.dataclass(frozen=True)
class Interpolate(CompressionMap):
    """Nodal interpolation: theta sampled at dst's nodes."""

    name: ClassVar[str] = "interpolate"

    def __call__(self, expansion: BasisExpansion, dst: Basis) -> BasisExpansion:
        return expansion.interpolate(dst)


PROJECT = Project()
"""The default map (a module-level instance, for argument defaults)."""

COMPRESSION_MAPS: dict[str, type[CompressionMap]] = {c.name: c for c in (Project, Interpolate)}
"""The compression maps by the name written on the command line and in files."""


def compression_by_name(name: str | CompressionMap) -> CompressionMap:
    """``"project"`` -> ``Project()``, ``"interpolate"`` -> ``Interpolate()``; an object is
    returned as it is. The parser of the command line and of files."""
    return variant(name, CompressionMap, COMPRESSION_MAPS, "method", prefix="basis_ode.")


def as_compression_map(method: str | CompressionMap, where: str) -> CompressionMap:
    """A :class:`CompressionMap`; a name (the old spelling) is accepted with a
    ``DeprecationWarning``."""
    if isinstance(method, str):
        found = compression_by_name(method)
        warnings.warn(
            f"{where}: the name {method!r} is deprecated; pass basis_ode.{type(found).__name__}().",
            DeprecationWarning,
            stacklevel=3,
        )
    return compression_by_name(method)


def _map_expansions(variables: Any, fn: Any, what: str) -> Any:
    """``variables`` with every expansion replaced by ``fn(expansion)``; refuses none found."""
    if not expansions(variables):
        raise ValueError(
            f"{what}: no basis expansion (no ODE block) in the variables; pass the variables of "
            "a ConvODENet, ODETransformerTagger or a model built from ODEBlock (or a pytree of "
            "BasisExpansion)."
        )
    return jax.tree_util.tree_map(
        lambda x: fn(x) if is_expansion(x) else x, variables, is_leaf=is_expansion
    )


def compress(variables: Any, dst_basis: Basis, *, method: CompressionMap | str = Project()) -> Any:
    """Re-express every basis expansion of ``variables`` in ``dst_basis`` (a linear map).

    Each expansion becomes ``BasisExpansion(dst, P theta_src)`` leaf by leaf, ``P`` the
    ``(K_dst, K_src)`` matrix of the L2 projection ``M^-1 B`` (``method=Project()``; ``M`` the
    Gram matrix of dst, ``B_ij = int phi^dst_i phi^src_j``) or of nodal interpolation
    (``method=Interpolate()``: theta sampled at dst's nodes). The source basis is each
    expansion's own. Use projection: in the README's measurements (refinement-trained and
    directly trained models, digits and Fashion-MNIST) it was as good as interpolation or better
    in 32 of 41 cases (projection won by up to 18 points at K = 1; interpolation by up to 3.9
    when run with as few steps as the coarsest model, where it keeps exactly the layers those
    steps read); :func:`compression_residual` predicts the loss.

    Arguments:
        variables: a pytree holding :class:`basis_ode.BasisExpansion` nodes (a model's
            variables ``{"params": ..., "batch_stats": ...}``, or one expansion).
        dst_basis: the target basis, e.g. ``PiecewiseConstant(4)`` or ``basis_by_name("hat", 5)``.
        method: ``Project()`` (L2 projection, the default) or ``Interpolate()`` (sample at
            dst's nodes); the names ``"project"``, ``"interpolate"`` still work and warn.

    Returns:
        The same pytree with every expansion in ``dst_basis`` (leading axis ``dst_basis.K``,
        dtypes kept) and everything else unchanged.

    Examples:
        >>> import jax, jax.numpy as jnp, basis_ode as bo
        >>> model = bo.ConvODENet(width=4, basis=bo.PiecewiseConstant(4))
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
        >>> small = bo.compress(variables, bo.PiecewiseConstant(2))  # L2 projection, K 4 -> 2
        >>> bo.basis_of(small), model.apply(small, jnp.ones((3, 8, 8, 1)), train=False).shape
        (PiecewiseConstant(K=2), (3, 10))
    """
    if not isinstance(dst_basis, Basis) or type(dst_basis) is Basis:
        raise TypeError(
            f"dst_basis must be a Basis such as basis_ode.Hat(4) or basis_by_name('hat', 4), got "
            f"{type(dst_basis).__name__}."
        )
    method = as_compression_map(method, "compress")
    return _map_expansions(variables, lambda e: method(e, dst_basis), "compress")


def refine_variables(variables: Any) -> tuple[Any, Basis]:
    """Function-preserving refinement of every basis expansion (for refinement training).

    Piecewise constant K -> 2K (duplicated nodes), hat K -> 2K - 1 (midpoints inserted),
    piecewise linear K -> 2K, global families K -> 2K (zero padding): ``theta(t)`` and ``s(t)`` are
    unchanged at every t, so the model computes the same function when ``n_steps`` is scaled
    with the cells (e.g. doubled for piecewise constant with ``n_steps = K``). Queiruga et al.
    2021, section 4 (docs/basis_ode.md, "Refinement").

    Arguments:
        variables: a pytree holding :class:`basis_ode.BasisExpansion` nodes in one basis.

    Returns:
        ``(new_variables, new_basis)``.
    """
    basis_of(variables)  # one basis, or a refusal naming them
    out = _map_expansions(variables, BasisExpansion.refine, "refine_variables")
    return out, basis_of(out)


def _residual(e: BasisExpansion, dst: Basis) -> tuple[float, float]:
    """``(lost, norm2)``: the squared L2(0, 1) distance from theta to its projection onto
    span(dst), and theta's squared L2 norm, summed over the leaves (closed forms)."""
    src = e.basis
    M, P, Md = gram_matrix(src), change_of_basis(src, dst), gram_matrix(dst)
    lost = total = 0.0
    for leaf in jax.tree_util.tree_leaves(e.coeffs):
        c = np.asarray(leaf, np.float64).reshape(src.K, -1)
        d = P @ c
        norm2 = float(np.einsum("ij,ik,jk->", M, c, c))
        lost += norm2 - float(np.einsum("ij,ik,jk->", Md, d, d))  # Pythagoras
        total += norm2
    return max(lost, 0.0), total


def compression_residual(
    variables: Any, dst_basis: Basis, *, collections: Sequence[str] | None = None
) -> float:
    """The relative squared L2 error of theta(t) after the projection onto ``dst_basis``.

    ``r = sum ||theta - P theta||^2 / sum ||theta||^2`` in L2(0, 1) over every leaf of every
    expansion in ``collections`` (closed forms with the Gram matrices, no sampling; ``P theta``
    is the best approximation of theta in span(dst)). It says, before any data is touched, how
    far a compression moves the model: r is near 0 for weights and statistics smooth in depth
    (refinement-trained models) and near ``1 - K_dst / K_src`` for independent layers (directly
    trained models); the findings page has the measurements and the rule read from them.

    By default every collection is measured, the batch statistics of the stateful
    normalisation (``batch_stats``) with the trainable parameters: a compression that keeps the
    weights but moves the statistics moves the model too. Measured on the parameters alone
    (``collections=("params",)``, the default before) r missed losses: 5e-6, 8e-5 and 1.3e-3
    for K = 4, 2, 1 on a Fashion-MNIST model whose K = 2 and K = 1 compressions lost 1.4 and 3.4
    test points at 4 steps, where the statistics included gave 0.0093 and 0.036.

    Arguments:
        variables: model variables holding basis expansions.
        dst_basis: the target basis.
        collections: the collections measured (default None: all of them, ``params`` and
            ``batch_stats``).

    Returns:
        r in [0, 1] (0 when theta lies in span(dst)).
    """
    names = list(variables) if collections is None else list(collections)
    lost = total = 0.0
    for c in names:
        for e in expansions(variables.get(c, {})):
            a, b = _residual(e, dst_basis)
            lost, total = lost + a, total + b
    return lost / total if total > 0 else 0.0


def param_bytes(tree: Any) -> int:
    """Bytes of all leaves of a pytree: ``sum(leaf.size * leaf.dtype.itemsize)``."""
    return int(
        sum(
            int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
            for leaf in jax.tree_util.tree_leaves(tree)
        )
    )
