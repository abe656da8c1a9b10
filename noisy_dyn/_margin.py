"""The input-space margin of a classifier RNN: logit margin over its input-gradient norm."""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from trainkit.internal import takes_sequences

from ._config import NoisyRNNConfig
from ._params import check_params
from ._solve import apply, check_lengths
from ._theory_common import check_theory_cfg, check_theory_xs, check_theory_ys
from ._types import Params


def _margin_over_gradient(logits_fn, x: ArrayLike, y: ArrayLike) -> Array:
    """``m(x) / ||grad_x m(x)||`` with ``m`` the logit margin (true class minus best other)."""

    def margin(xx: Array) -> Array:
        z = logits_fn(xx)
        others = jnp.where(jnp.arange(z.shape[-1]) == y, -jnp.inf, z)
        return z[y] - jnp.max(others)

    m, g = jax.value_and_grad(margin)(x)
    norm = jnp.sqrt(jnp.sum(g * g))
    return jnp.where(norm > 0, m / jnp.where(norm > 0, norm, 1.0), jnp.sign(m) * jnp.inf)


@takes_sequences()
def input_margin(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
    *,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, " batch"]:
    """Local estimate of the input-space l2 margin: logit margin over its input-gradient norm.

    ``m(x) = z_y(x) - max_{j != y} z_j(x)`` with ``z`` the deterministic logits, and the
    estimate ``m(x) / ||grad_x m(x)||_2`` (``docs/derivations.md``), the gradient taken over the
    whole sequence. It is the
    distance to the decision boundary between ``y`` and the runner-up for a model whose logits
    are affine in the input, and a first-order estimate otherwise. Negative for misclassified
    examples.

    Arguments:
        params: Lipschitz-cell parameters.
        xs: input sequences ``(batch, time, input_size)``.
        ys: integer labels ``(batch,)``.
        cfg: the configuration (inference path, noise off).
        lengths: ``(batch,)`` valid steps per row, padding after them (the padding does not
            enter the logits, so it adds nothing to the gradient norm).

    Returns:
        The margin estimates ``(batch,)`` (``+-inf`` where the gradient vanishes).
    """
    fn = "input_margin"
    cfg = check_theory_cfg(cfg, fn)
    check_params(params, cfg)
    xs = check_theory_xs(xs, cfg, fn)
    ys = check_theory_ys(ys, xs, cfg, fn)
    if cfg.num_classes < 2:
        raise ValueError(f"{fn}: a margin needs cfg.num_classes >= 2, got {cfg.num_classes}.")

    checked = check_lengths(lengths, xs.shape[0], xs.shape[1])
    full = jnp.full((xs.shape[0],), xs.shape[1], jnp.int32)
    return _input_margin_jit(params, xs, ys, cfg, full if checked is None else checked)


@partial(jax.jit, static_argnames=("cfg",))
def _input_margin_jit(
    params: Params, xs: ArrayLike, ys: ArrayLike, cfg: NoisyRNNConfig, lengths
) -> Array:
    def margin(x: Array, y: Array, n: Array) -> Array:
        logits_fn = lambda xx: apply(params, xx[None], cfg, lengths=n[None])[0]  # noqa: E731
        return _margin_over_gradient(logits_fn, x, y)

    return jax.vmap(margin)(xs, ys, lengths)
