"""Models: the conv ODE-Net, its ResNet twin and the ODE transformer tagger.

The architectures of Queiruga et al. 2021, sections 5.1 and 5.2 (docs/basis_ode.md).

Calling convention (all models are Flax linen modules; variables ``{"params", "batch_stats"}``)::

    model = ConvODENet(num_classes=10, width=16, basis=PiecewiseConstant(8),
                       method=EULER)                   # n_steps=None: n_steps = K
    variables = model.init(jax.random.key(0), x, train=False)          # x: NHWC float
    logits = model.apply(variables, x, train=False)                    # inference
    logits, updates = model.apply(variables, x, train=True,
                                  mutable=["batch_stats"])            # training step
    variables = {"params": new_params, "batch_stats": updates["batch_stats"]}
    # inference with other integration settings (the basis is the variables' own):
    logits = model.apply(variables, x, train=False, n_steps=16, scheme=RK4)
    small = compress(variables, Hat(4))                # coefficients that know their basis
    logits = model.apply(small, x, train=False)        # evaluated in Hat(4)
    n = count_params(variables["params"])

``scheme`` is the per-call name of the attribute ``method`` (Flax's ``apply`` reserves the keyword
``method``); ``model.clone(n_steps=16, method=RK4)`` does the same by cloning. The attribute
``basis`` is the basis at ``init`` only: every ODE block reads the basis of the
:class:`basis_ode.BasisExpansion` it is given.

The tagger: ``ODETransformerTagger(vocab_size, num_tags)`` is called as
``model.apply(variables, tokens, mask=valid, train=False)`` with integer ``tokens`` ``(batch, L)``
and boolean ``valid`` ``(batch, L)`` (True at real tokens; None means all real); it has no
``batch_stats``, so ``variables = {"params": ...}`` and training needs no ``mutable``.

Every ODE block keeps its unit's variables under the name ``basis_coeffs`` as a
:class:`basis_ode.BasisExpansion` in every collection (see :class:`basis_ode.ODEBlock`);
:func:`basis_ode.compress` and :func:`basis_ode.refine_variables` map every expansion they find.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from trainkit.internal import FloatLike, IntLike, check_positive_int

from ._bases import Basis, PiecewiseConstant
from ._block import ODEBlock
from ._integrate import EULER, ButcherTableau, resolve_unroll
from ._units import PreActConvUnit, ResidualStitch, TransformerUnit, sinusoidal_positions

FeatureMap = Float[Array, "batch height width channels"]
"""NHWC features between two stages."""
StageOutput = Float[Array, "batch height_out width_out channels_out"]
"""A stage's output (strided or widened)."""

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


def count_params(params: Any) -> int:
    """Number of scalars in a parameter pytree: ``sum(leaf.size)``.

    Arguments:
        params: any pytree of arrays (e.g. ``variables["params"]``, or the output of
            ``jax.eval_shape``).

    Returns:
        The total count as a Python int.
    """
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params)))


def _check_images(x: Any) -> None:
    if getattr(x, "ndim", None) != 4:
        raise ValueError(
            "x must be a batch of images shaped (batch, height, width, channels) (NHWC); got shape "
            f"{getattr(x, 'shape', type(x))}. Add a batch axis with x[None] or a channel axis "
            "with x[..., None]."
        )


def _check_positive(name: str, value: Any) -> int:
    """``value`` as a Python int (NumPy integers accepted), or a clear error."""
    return check_positive_int(name, value)


class _ConvBackbone(nn.Module):
    """Stem, three stages and head shared by ConvODENet and ResNet; ``stage`` builds a stage."""

    num_classes: IntLike
    width: IntLike
    bn_momentum: FloatLike
    param_dtype: Any

    def norm(self, train: bool, name: str) -> nn.BatchNorm:
        return nn.BatchNorm(
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=1e-5,
            param_dtype=self.param_dtype,
            name=name,
        )

    def stage(self, i: int, h: FeatureMap, train: bool, **kw: Any) -> StageOutput:
        raise TypeError("_ConvBackbone is abstract")  # pragma: no cover

    def run(self, x: ArrayLike, train: bool, **kw: Any) -> Array:
        _check_images(x)
        w = _check_positive("width", self.width)
        num_classes = _check_positive("num_classes", self.num_classes)
        stem = nn.Conv(
            w,
            (3, 3),
            padding=((1, 1), (1, 1)),
            use_bias=False,
            param_dtype=self.param_dtype,
            name="stem_conv",
        )
        h = stem(x)
        h = nn.relu(self.norm(train, "stem_norm")(h))
        for i, (features, stride) in enumerate(zip((w, 2 * w, 4 * w), (1, 2, 2))):
            stitch = ResidualStitch(
                features,
                stride,
                bn_momentum=self.bn_momentum,
                param_dtype=self.param_dtype,
                name=f"stitch{i}",
            )
            h = stitch(h, train=train)
            h = self.stage(i, h, train, **kw)
        h = self.norm(train, "head_norm")(h)
        h = jnp.mean(h, axis=(1, 2))
        return nn.Dense(num_classes, param_dtype=self.param_dtype, name="head")(h)


#: The number of ODE blocks (stages) of a ConvODENet.
N_STAGES = 3


def _stage_steps(n_steps: Any, i: int, what: str) -> IntLike | None:
    """Stage ``i``'s steps: ``n_steps`` itself (an int or None), or its i-th entry (a tuple of one
    count per stage)."""
    if not isinstance(n_steps, tuple | list):
        return n_steps
    if len(n_steps) != N_STAGES:
        raise ValueError(
            f"ConvODENet: {what} {tuple(n_steps)} must give one step count per ODE block "
            f"({N_STAGES}: stage0, stage1, stage2), or be one int for all of them."
        )
    return n_steps[i]


class ConvODENet(_ConvBackbone):
    """Three-stage convolutional ODE-Net with stateful, basis-expanded ODE blocks (paper 5.1).

    ``Conv3x3(C_in -> w, no bias) -> BN -> ReLU``; for stage widths ``w, 2w, 4w`` and strides
    ``1, 2, 2``: ``ResidualStitch(in -> out, stride)`` then an :class:`ODEBlock` whose unit is
    :class:`PreActConvUnit` (``BN -> ReLU -> Conv3x3 -> BN -> ReLU -> Conv3x3``); then
    ``BN -> global average pool -> Dense(num_classes)``. No convolution has a bias. With
    ``width = 16`` and 3 input channels the trainable parameter count is exactly
    ``78,074 + 97,216 K`` (every ODE unit: ``18 c^2 + 4 c`` per coefficient set, c = 16, 32, 64).

    Attributes:
        num_classes: number of logits.
        width: width ``w`` of the first stage.
        basis: the basis at ``init``, family and K (afterwards the variables' own).
        n_steps: default steps of every ODE block (None: ``n_steps = K`` of each block), or a
            tuple of three, one per block (``stage0, stage1, stage2``).
        method: default scheme, a :class:`basis_ode.ButcherTableau` (``EULER``, ``RK4``, ...).
        bn_momentum: BatchNorm momentum (Flax convention; 0.9 = PyTorch's 0.1).
        param_dtype: dtype of the parameters.
        unroll: unroll the depth loop of every block (True), keep one ``lax.scan`` (False), or
            None: unrolled on the CPU backend only, where XLA runs a convolution inside a loop
            body far slower (see :func:`basis_ode.odeint`). The result is the same either way.

    Call: ``model.apply(variables, x, train=False, n_steps=None, scheme=None)`` with ``x`` NHWC;
    returns logits ``(batch, num_classes)``. ``n_steps`` is one int for every block or a tuple
    of three; each block may hold its own basis and K (``basis_ode.adapt`` maps blocks
    separately), as every block reads the basis of its own coefficients.

    Examples:
        >>> import jax, jax.numpy as jnp, basis_ode as bo
        >>> model = bo.ConvODENet(num_classes=10, width=8, basis=bo.PiecewiseConstant(4))
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
        >>> sorted(variables), model.apply(variables, jnp.ones((2, 8, 8, 1)), train=False).shape
        (['batch_stats', 'params'], (2, 10))
    """

    num_classes: IntLike = 10
    width: IntLike = 16
    basis: Basis = PiecewiseConstant(4)
    n_steps: IntLike | tuple[int, ...] | None = None
    method: ButcherTableau = EULER
    bn_momentum: FloatLike = 0.9
    param_dtype: Any = jnp.float32
    unroll: bool | None = None

    def __post_init__(self) -> None:
        if self.n_steps is not None:  # 0 would otherwise read as "unset" somewhere
            per_block = isinstance(self.n_steps, tuple | list)
            for steps in self.n_steps if per_block else (self.n_steps,):
                _check_positive("ConvODENet: n_steps (None for K)", steps)
        super().__post_init__()

    def stage(self, i: int, h: FeatureMap, train: bool, **kw: Any) -> StageOutput:
        unit = functools.partial(
            PreActConvUnit, bn_momentum=self.bn_momentum, param_dtype=self.param_dtype
        )
        block = ODEBlock(
            unit=unit,
            basis=self.basis,
            n_steps=_stage_steps(self.n_steps, i, "n_steps"),
            method=self.method,
            unroll=self.unroll,
            name=f"stage{i}",
        )
        kw["n_steps"] = _stage_steps(kw.get("n_steps"), i, "the n_steps argument")
        return block(h, train=train, **kw)

    @nn.compact
    def __call__(
        self,
        x: Float[ArrayLike, "batch height width channel"],
        *,
        train: bool = False,
        n_steps: int | tuple[int, ...] | None = None,
        scheme: ButcherTableau | None = None,
    ) -> Float[Array, "batch num_classes"]:
        """Logits of a batch of NHWC images (see the class docstring for the overrides)."""
        return self.run(x, train, n_steps=n_steps, scheme=scheme)


class _ResidualBlock(nn.Module):
    """``h <- h + scale * F(theta_k, h)``, the body of the ResNet's scanned stage."""

    unit: Any
    scale: FloatLike
    train: bool

    @nn.compact
    def __call__(self, h: ArrayLike, _: Any) -> tuple[Array, None]:
        return h + self.scale * self.unit(name="unit")(h, train=self.train), None


class ResNet(_ConvBackbone):
    """Discrete twin of :class:`ConvODENet`: each stage is ``n_blocks`` residual blocks.

    Stem, stitches and head as in :class:`ConvODENet`; each stage applies
    ``h <- h + residual_scale * F(theta_k, h)`` for ``k = 0..n_blocks-1`` with ordinary Flax
    BatchNorm inside ``F`` (:class:`PreActConvUnit`), as one ``nn.scan`` over depth. With
    ``residual_scale = 1 / n_blocks`` (the default) it equals ConvODENet with Euler,
    ``PiecewiseConstant(n_blocks)`` and ``n_steps = n_blocks`` (docs/basis_ode.md, "Model");
    ``residual_scale = 1`` is the usual ResNet. Variables: ``params["stage{i}"]["unit"]`` stacks
    the blocks (leading axis ``n_blocks``), the same leaves as ConvODENet's
    ``params["stage{i}"]["basis_coeffs"]``.

    Attributes:
        num_classes, width, bn_momentum, param_dtype: as in :class:`ConvODENet`.
        n_blocks: residual blocks per stage.
        residual_scale: the factor in front of ``F`` (None: ``1 / n_blocks``).
        unroll: unroll the scan over blocks (True), keep it rolled (False), or None: unrolled
            on the CPU backend only, as in :class:`ConvODENet`.
    """

    num_classes: IntLike = 10
    width: IntLike = 16
    n_blocks: IntLike = 4
    residual_scale: FloatLike | None = None
    bn_momentum: FloatLike = 0.9
    param_dtype: Any = jnp.float32
    unroll: bool | None = None

    def stage(self, i: int, h: FeatureMap, train: bool, **kw: Any) -> StageOutput:
        n_blocks = _check_positive("n_blocks", self.n_blocks)
        unit = functools.partial(
            PreActConvUnit, bn_momentum=self.bn_momentum, param_dtype=self.param_dtype
        )
        scale = 1.0 / n_blocks if self.residual_scale is None else float(self.residual_scale)
        scanned = nn.scan(
            _ResidualBlock,
            variable_axes={"params": 0, "batch_stats": 0},
            split_rngs={"params": True},
            length=n_blocks,
            unroll=n_blocks if resolve_unroll(self.unroll) else 1,
        )
        h, _ = scanned(unit=unit, scale=scale, train=train, name=f"stage{i}")(h, None)
        return h

    @nn.compact
    def __call__(
        self, x: Float[ArrayLike, "batch height width channel"], *, train: bool = False
    ) -> Float[Array, "batch num_classes"]:
        """Logits of a batch of NHWC images."""
        return self.run(x, train)


class ODETransformerTagger(nn.Module):
    """Sequence tagger with a transformer ODE block (paper 5.2).

    ``x(0) = Embed(tokens) + P`` (sinusoidal positions),
    ``dx/dt = SA(LN(x)) + MLP(LN(x + SA(LN(x))))`` (:class:`TransformerUnit`, single head, MLP
    ``width -> ELU -> width``) with basis-expanded weights, then ``LayerNorm -> Dense(num_tags)``
    per position. Padding positions are masked out of
    the attention keys, so outputs at real positions do not depend on padding tokens.

    Attributes:
        vocab_size: number of token ids.
        num_tags: number of tags (logits per position).
        width: model width.
        basis, n_steps, method: as in :class:`ConvODENet`.
        num_heads: attention heads (1 in the paper).
        param_dtype: dtype of the parameters.
        unroll: as in :class:`ConvODENet`.

    Call: ``model.apply(variables, tokens, mask=None, train=False, n_steps=None, scheme=None)``
    with ``tokens`` int ``(batch, L)`` and ``mask`` bool ``(batch, L)`` (True at real
    tokens); returns ``(batch, L, num_tags)`` logits.
    """

    vocab_size: IntLike
    num_tags: IntLike
    width: IntLike = 128
    basis: Basis = PiecewiseConstant(4)
    n_steps: IntLike | None = None
    method: ButcherTableau = EULER
    num_heads: IntLike = 1
    param_dtype: Any = jnp.float32
    unroll: bool | None = None

    @nn.compact
    def __call__(
        self,
        tokens: Int[ArrayLike, "batch length"],
        *,
        mask: Bool[ArrayLike, "batch length"] | None = None,
        train: bool = False,
        n_steps: int | None = None,
        scheme: ButcherTableau | None = None,
    ) -> Float[Array, "batch length num_tags"]:
        """Per-position tag logits (see the class docstring)."""
        vocab, tags, width = (
            _check_positive(name, getattr(self, name))
            for name in ("vocab_size", "num_tags", "width")
        )
        if getattr(tokens, "ndim", None) != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ValueError(
                "tokens must be an integer array shaped (batch, length); got "
                f"{getattr(tokens, 'dtype', type(tokens))} {getattr(tokens, 'shape', '')}."
            )
        if mask is not None and tuple(mask.shape) != tuple(tokens.shape):
            raise ValueError(
                f"mask must have the shape of tokens {tuple(tokens.shape)} (True at real tokens); "
                f"got {tuple(mask.shape)}."
            )
        x = nn.Embed(vocab, width, param_dtype=self.param_dtype, name="embed")(tokens)
        x = x + sinusoidal_positions(tokens.shape[1], width, x.dtype)
        attn_mask = None if mask is None else nn.make_attention_mask(mask, mask)
        unit = functools.partial(
            TransformerUnit, num_heads=int(self.num_heads), param_dtype=self.param_dtype
        )
        block = ODEBlock(
            unit=unit,
            basis=self.basis,
            n_steps=self.n_steps,
            method=self.method,
            state_collections=(),
            unroll=self.unroll,
            name="encoder",
        )
        x = block(x, train=train, n_steps=n_steps, scheme=scheme, mask=attn_mask)
        x = nn.LayerNorm(param_dtype=self.param_dtype, name="final_norm")(x)
        return nn.Dense(tags, param_dtype=self.param_dtype, name="head")(x)
