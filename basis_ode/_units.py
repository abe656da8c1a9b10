"""The residual units F(theta, h) that the ODE blocks integrate, and the residual stitch.

Every unit is a Flax linen module with the calling convention the stateful ODE block expects
(see ``basis_ode._block``)::

    dh = unit.apply(variables, h, train=train, **context)

``train`` switches BatchNorm between batch statistics (training) and running statistics
(inference); ``context`` carries per-call extras such as an attention mask. A unit keeps the
shape of ``h`` (it is a vector field), so its width is read from the input.

- :class:`PreActConvUnit`: the pre-activation residual branch
  ``BN -> ReLU -> Conv3x3 -> BN -> ReLU -> Conv3x3`` (paper section 5.1); both convolutions without
  bias.
- :class:`TransformerUnit`: ``dx/dt = SA(LN(x)) + MLP(LN(x + SA(LN(x))))`` with single-head
  self-attention and an MLP ``width -> ELU -> width`` (paper 5.2). Stateless.
- :class:`ResidualStitch`: the discrete block that changes width and resolution between stages,
  ``shortcut(h) + branch(h)`` with shortcut ``BN(Conv1x1, stride s)`` when the shape changes and the
  identity otherwise, branch ``BN -> ReLU -> Conv3x3(stride s) -> BN -> ReLU -> Conv3x3``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike
from jaxtyping import Array, ArrayLike, Float, Shaped

from trainkit.internal import FloatLike, IntLike

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

#: Padding of a 3x3 convolution as in the reference (one pixel on each side, also with stride 2).
_PAD1 = ((1, 1), (1, 1))


def _batch_norm(
    train: bool, momentum: FloatLike, epsilon: FloatLike, dtype: Any, name: str | None = None
):
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=momentum,
        epsilon=epsilon,
        param_dtype=dtype,
        name=name,
    )


def _conv3x3(features: int, strides: int, dtype: Any, name: str | None = None) -> nn.Conv:
    return nn.Conv(
        features,
        (3, 3),
        strides=(strides, strides),
        padding=_PAD1,
        use_bias=False,
        param_dtype=dtype,
        name=name,
    )


class PreActConvUnit(nn.Module):
    """Pre-activation residual branch ``BN -> ReLU -> Conv3x3 -> BN -> ReLU -> Conv3x3``.

    ``F(theta, h) = conv_2(relu(bn_2(conv_1(relu(bn_1(h))))))``, the same number of channels ``C``
    in and out (read from ``h``), 3x3 convolutions with one-pixel padding and no bias. Trainable
    parameters: ``18 C^2 + 4 C``; BatchNorm running statistics: ``4 C``.

    Attributes:
        bn_momentum: running-average momentum of the BatchNorms (Flax convention:
            ``new = momentum * old + (1 - momentum) * batch``; 0.9 is PyTorch's 0.1).
        bn_epsilon: variance offset of the BatchNorms.
        param_dtype: dtype of the parameters.
    """

    bn_momentum: FloatLike = 0.9
    bn_epsilon: FloatLike = 1e-5
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, h: Float[ArrayLike, "batch height width channel"], *, train: bool = False
    ) -> Float[Array, "batch height width channel"]:
        """Evaluate the branch. Arguments: ``h`` (NHWC), ``train`` (batch statistics if True).

        Returns: ``F(theta, h)`` with the shape of ``h``.
        """
        c = h.shape[-1]
        y = nn.relu(_batch_norm(train, self.bn_momentum, self.bn_epsilon, self.param_dtype)(h))
        y = _conv3x3(c, 1, self.param_dtype)(y)
        y = nn.relu(_batch_norm(train, self.bn_momentum, self.bn_epsilon, self.param_dtype)(y))
        return _conv3x3(c, 1, self.param_dtype)(y)


class ResidualStitch(nn.Module):
    """Discrete residual block between stages: ``shortcut(h) + branch(h)``.

    branch: ``BN -> ReLU -> Conv3x3(in -> out, stride s) -> BN -> ReLU -> Conv3x3(out -> out)``;
    shortcut: ``BN(Conv1x1(in -> out, stride s))`` when ``in != out`` or ``s != 1``, else identity.
    All convolutions without bias. Trainable parameters:
    ``4 in + 9 in out + 2 out + 9 out^2`` plus ``in out + 2 out`` for a projecting shortcut.

    Attributes:
        features: output channels.
        strides: spatial stride of the first convolution (and of the shortcut).
        bn_momentum, bn_epsilon, param_dtype: as in :class:`PreActConvUnit`.
    """

    features: IntLike
    strides: IntLike = 1
    bn_momentum: FloatLike = 0.9
    bn_epsilon: FloatLike = 1e-5
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, h: Float[ArrayLike, "batch height width in_channel"], *, train: bool = False
    ) -> Float[Array, "batch out_height out_width features"]:
        """Apply the stitch to ``h`` (NHWC); returns NHWC, ``features`` channels."""
        bn = lambda name: _batch_norm(  # noqa: E731
            train, self.bn_momentum, self.bn_epsilon, self.param_dtype, name
        )
        y = nn.relu(bn("norm1")(h))
        y = _conv3x3(self.features, self.strides, self.param_dtype, "conv1")(y)
        y = nn.relu(bn("norm2")(y))
        y = _conv3x3(self.features, 1, self.param_dtype, "conv2")(y)
        if h.shape[-1] != self.features or self.strides != 1:
            s = (self.strides, self.strides)
            conv = nn.Conv(
                self.features,
                (1, 1),
                strides=s,
                use_bias=False,
                param_dtype=self.param_dtype,
                name="shortcut_conv",
            )
            shortcut = bn("shortcut_norm")(conv(h))
        else:
            shortcut = h
        return shortcut + y


def sinusoidal_positions(
    length: int, width: int, dtype: DTypeLike = jnp.float32
) -> Float[Array, "L W"]:
    """Sinusoidal position encodings of Vaswani et al.

    ``P[p, 2i] = sin(p / 10000^(2i / W))``, ``P[p, 2i + 1] = cos(p / 10000^(2i / W))``.

    Arguments:
        length: number of positions ``L``.
        width: encoding width ``W``.
        dtype: dtype of the result.

    Returns:
        ``(L, W)`` array.
    """
    pos = np.arange(length, dtype=np.float64)[:, None]
    i = np.arange(width, dtype=np.float64)[None, :]
    angle = pos / np.power(10000.0, (2.0 * (i // 2)) / width)
    table = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    return jnp.asarray(table, dtype=dtype)


class TransformerUnit(nn.Module):
    """Pre-LayerNorm transformer encoder unit as a vector field (paper 5.2).

    ``a = SA(LN_1(x))``, ``dx/dt = a + MLP(LN_2(x + a))`` where ``SA`` is single-head (by default)
    scaled dot-product self-attention with query/key/value/output projections of width ``W`` (read
    from ``x``) and ``MLP(z) = Dense_W(ELU(Dense_m(z)))``. Stateless: no BatchNorm, ``train`` is
    accepted for the block's calling convention and ignored.

    Attributes:
        mlp_width: hidden width ``m`` of the MLP (default: ``W``).
        num_heads: number of attention heads (1 in the paper).
        param_dtype: dtype of the parameters.
    """

    mlp_width: IntLike | None = None
    num_heads: IntLike = 1
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: Float[ArrayLike, "batch length width"],
        *,
        train: bool = False,
        mask: Shaped[ArrayLike, "batch 1 length length"] | None = None,
    ) -> Float[Array, "batch length width"]:
        """Evaluate the field.

        Arguments:
            x: token states.
            train: ignored (stateless unit).
            mask: attention mask, True (or 1) where query ``i`` may attend to key ``j`` (e.g.
                ``flax.linen.make_attention_mask(valid, valid)``, a float 0/1 array);
                None attends everywhere.

        Returns:
            ``dx/dt`` with the shape of ``x``.
        """
        del train
        w = x.shape[-1]
        attn = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, qkv_features=w, out_features=w, param_dtype=self.param_dtype
        )
        y = nn.LayerNorm(param_dtype=self.param_dtype)(x)
        a = attn(y, y, mask=mask)
        z = nn.LayerNorm(param_dtype=self.param_dtype)(x + a)
        m = nn.Dense(self.mlp_width or w, param_dtype=self.param_dtype)(z)
        m = nn.Dense(w, param_dtype=self.param_dtype)(nn.elu(m))
        return a + m
