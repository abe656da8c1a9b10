"""A plain residual network exported from a basis_ode ConvODENet: runs with JAX and Flax only.

This file is written next to ``weights.npz`` and ``config.json`` by ``basis_ode.export_resnet``
and needs neither basis_ode nor trainkit::

    import model                      # this file, saved as model.py in the exported folder
    net, variables = model.load("path/to/folder")
    logits = net.apply(variables, images)          # images: (batch, height, width, channels)

The network: ``Conv3x3 -> BN -> ReLU``; three stages of widths ``w, 2w, 4w`` (strides 1, 2, 2),
each a residual stitch followed by ``len(layers[i])`` residual layers
``h <- h + F(W_j, h) / len(layers[i])`` with ``F = BN -> ReLU -> Conv3x3 -> BN -> ReLU ->
Conv3x3``; then ``BN -> global average pool -> Dense``. Layer ``j`` of stage ``i`` uses the
weight set ``layers[i][j]`` (several layers may share one set). Every BatchNorm uses its stored
running statistics (inference only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

FORMAT = "basis_ode exported ResNet"
VERSION = 1
_PAD = ((1, 1), (1, 1))


def _norm(name: str | None = None) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=True, epsilon=1e-5, name=name)


def _conv(features: int, stride: int = 1, name: str | None = None) -> nn.Conv:
    return nn.Conv(features, (3, 3), strides=(stride, stride), padding=_PAD, use_bias=False,
                   name=name)  # fmt: skip


class Residual(nn.Module):
    """``F(W, h) = conv(relu(bn(conv(relu(bn(h))))))``, as many channels out as in."""

    @nn.compact
    def __call__(self, h: Any) -> Any:
        c = h.shape[-1]
        y = _conv(c)(nn.relu(_norm()(h)))
        return _conv(c)(nn.relu(_norm()(y)))


class Stitch(nn.Module):
    """``shortcut(h) + conv(relu(bn(conv_s(relu(bn(h))))))``; the shortcut is
    ``bn(conv1x1_s(h))`` where the shape changes, else ``h``."""

    features: int
    strides: int

    @nn.compact
    def __call__(self, h: Any) -> Any:
        y = _conv(self.features, self.strides, "conv1")(nn.relu(_norm("norm1")(h)))
        y = _conv(self.features, 1, "conv2")(nn.relu(_norm("norm2")(y)))
        if h.shape[-1] != self.features or self.strides != 1:
            s = (self.strides, self.strides)
            conv = nn.Conv(self.features, (1, 1), strides=s, use_bias=False, name="shortcut_conv")
            return _norm("shortcut_norm")(conv(h)) + y
        return h + y


class ExportedResNet(nn.Module):
    """The exported network (see the module docstring).

    Attributes:
        num_classes: number of logits.
        width: channels of the first stage.
        layers: per stage, the weight set of each residual layer.
    """

    num_classes: int
    width: int
    layers: tuple[tuple[int, ...], ...]

    @nn.compact
    def __call__(self, x: Any) -> Any:
        """Logits ``(batch, num_classes)`` of NHWC images ``x``."""
        h = nn.Conv(self.width, (3, 3), padding=_PAD, use_bias=False, name="stem_conv")(x)
        h = nn.relu(_norm("stem_norm")(h))
        for i, (feats, stride) in enumerate(zip((1, 2, 4), (1, 2, 2))):
            h = Stitch(feats * self.width, stride, name=f"stitch{i}")(h)
            units = {k: Residual(name=f"stage{i}_w{k}") for k in sorted(set(self.layers[i]))}
            scale = 1.0 / len(self.layers[i])
            for k in self.layers[i]:
                h = h + scale * units[k](h)
        h = jnp.mean(_norm("head_norm")(h), axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(h)


def _nest(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, last = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = jnp.asarray(value)
    return tree


def load(folder: str | Path) -> tuple[ExportedResNet, dict[str, Any]]:
    """``(network, variables)`` of an exported folder (``config.json`` and ``weights.npz``)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise ValueError(f"{folder}: not an exported ResNet of version {VERSION}.")
    with np.load(folder / "weights.npz", allow_pickle=False) as f:
        variables = _nest({k: f[k] for k in f.files})
    layers = tuple(tuple(int(k) for k in stage) for stage in config["layers"])
    net = ExportedResNet(int(config["num_classes"]), int(config["width"]), layers)
    return net, variables
