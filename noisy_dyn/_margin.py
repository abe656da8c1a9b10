"""The input-space margin of a classifier RNN: logit margin over its input-gradient norm."""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from ._config import NoisyRNNConfig
from ._params import check_params
from ._solve import apply
from ._theory_common import _check_cfg, _check_xs, _check_ys
from ._types import Params


def _margin_over_gradient(logits_fn, x: Array, y: Array) -> Array:
    """``m(x) / ||grad_x m(x)||`` with ``m`` the logit margin (true class minus best other)."""

    def margin(xx: Array) -> Array:
        z = logits_fn(xx)
        others = jnp.where(jnp.arange(z.shape[-1]) == y, -jnp.inf, z)
        return z[y] - jnp.max(others)

    m, g = jax.value_and_grad(margin)(x)
    norm = jnp.sqrt(jnp.sum(g * g))
    return jnp.where(norm > 0, m / jnp.where(norm > 0, norm, 1.0), jnp.sign(m) * jnp.inf)


def input_margin(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
) -> Float[Array, " batch"]:
    """Local estimate of the input-space l2 margin: logit margin over its input-gradient norm.

    ``m(x) = z_y(x) - max_{j != y} z_j(x)`` with ``z`` the deterministic logits, and the estimate
    ``m(x) / ||grad_x m(x)||_2`` (SPEC 1.6), the gradient taken over the whole sequence. It is the
    distance to the decision boundary between ``y`` and the runner-up for a model whose logits
    are affine in the input, and a first-order estimate otherwise. Negative for misclassified
    examples.

    Arguments:
        params: Lipschitz-cell parameters.
        xs: input sequences ``(batch, time, input_size)``.
        ys: integer labels ``(batch,)``.
        cfg: the configuration (inference path, noise off).

    Returns:
        The margin estimates ``(batch,)`` (``+-inf`` where the gradient vanishes).
    """
    fn = "input_margin"
    cfg = _check_cfg(cfg, fn)
    check_params(params, cfg)
    xs = _check_xs(xs, cfg, fn)
    ys = _check_ys(ys, xs, cfg, fn)
    if cfg.num_classes < 2:
        raise ValueError(f"{fn}: a margin needs cfg.num_classes >= 2, got {cfg.num_classes}.")

    return _input_margin_jit(params, xs, ys, cfg)


@partial(jax.jit, static_argnames=("cfg",))
def _input_margin_jit(params: Params, xs: Array, ys: Array, cfg: NoisyRNNConfig) -> Array:
    def logits_fn(x: Array) -> Array:
        return apply(params, x[None], cfg)[0]

    return jax.vmap(lambda x, y: _margin_over_gradient(logits_fn, x, y))(xs, ys)
