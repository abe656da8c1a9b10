"""Test-time perturbations and adversarial attacks.

Random corruptions of the input sequences (additive Gaussian, multiplicative Gaussian,
salt-and-pepper) and three gradient attacks (FGSM, PGD in the l-infinity or l2 ball, multi-class
DeepFool). Every attack exists twice: a generic version acting on any batched ``logits_fn(xs) ->
logits`` (``fgsm_fn``, ``pgd_fn``, ``deepfool_fn``), and a Noisy-RNN version taking
``(params, xs, ..., cfg)`` that attacks the deterministic inference path ``apply(params, xs, cfg)``.

All functions are pure, work under ``jax.jit`` and ``jax.vmap``, and treat every example of the
batch independently: norms and balls are taken over all non-batch axes of one example.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from trainkit.internal import takes_sequences

from ._solve import apply
from ._types import Params

PERTURBATION_KINDS = ("gaussian", "multiplicative", "salt_pepper")
ATTACK_NORMS = ("linf", "l2")

LogitsFn = Callable[[Float[Array, "batch ..."]], Float[Array, "batch classes"]]


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_level(name: str, level: Any, *, upper: float | None = None) -> None:
    """Eager validation of a noise level or radius (skipped when it is traced)."""
    if not _is_concrete(level):
        return
    value = np.asarray(level)
    if value.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar, got an array of shape {value.shape}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {float(value)}.")
    if upper is not None and value > upper:
        raise ValueError(f"`{name}` must lie in [0, {upper}], got {float(value)}.")


def _check_floating(name: str, xs: Any) -> None:
    dtype = jnp.result_type(xs)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a real floating-point array, got dtype {dtype}; "
            f"convert it first, e.g. `{name}.astype(jnp.float32)`."
        )


@takes_sequences(position=0, labels=False, rewrap=True)
def perturb(
    xs: Float[ArrayLike, "*shape"],
    kind: str,
    level: float | Float[ArrayLike, ""],
    *,
    key: PRNGKeyArray,
    low: float = 0.0,
    high: float = 1.0,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "*shape"]:
    """Corrupt inputs with random noise of a given kind and level.

    With ``n`` i.i.d. standard normal and ``u`` i.i.d. uniform on [0, 1), entry by entry:

    - ``"gaussian"``: ``x + level * n`` (additive white noise of standard deviation ``level``);
    - ``"multiplicative"``: ``x * (1 + level * n)``;
    - ``"salt_pepper"``: with probability ``level`` the entry is replaced, by ``low`` or ``high``
      with equal chance (so a fraction ``level`` of the entries is corrupted on average);
      otherwise it is kept.

    No clipping is applied. ``level`` may be a traced scalar (e.g. under ``vmap`` over levels).

    Arguments:
        xs: inputs of any shape and floating dtype, or a :class:`trainkit.Sequences` (its
            lengths used; a ``Sequences`` with the perturbed inputs is returned).
        kind: one of ``"gaussian"``, ``"multiplicative"``, ``"salt_pepper"``.
        level: noise standard deviation (gaussian, multiplicative, >= 0) or corruption
            probability (salt_pepper, in [0, 1]).
        key: PRNG key (keyword-only).
        low, high: the "pepper" and "salt" values of salt-and-pepper noise.
        lengths: for ``xs`` of shape ``(batch, time, ...)`` with padding after each row's
            ``lengths[b]`` valid steps: the padding is left untouched.

    Returns:
        The perturbed array, same shape and dtype as ``xs``.
    """
    out = _perturb(xs, kind, level, key=key, low=low, high=high)
    return out if lengths is None else jnp.where(_valid_steps(out, lengths), out, xs)


def _valid_steps(xs: ArrayLike, lengths: Any) -> Array:
    """Boolean mask of the valid steps of ``xs`` ``(batch, time, ...)``, broadcastable."""
    if xs.ndim < 2 or np.shape(lengths) != (xs.shape[0],):
        raise ValueError(
            f"`lengths` must have shape (batch,) = ({xs.shape[0]},) for xs of shape (batch, time, "
            f"...), got {np.shape(lengths)} and xs {xs.shape}."
        )
    valid = jnp.arange(xs.shape[1]) < jnp.asarray(lengths)[:, None]
    return valid.reshape(valid.shape + (1,) * (xs.ndim - 2))


def _perturb(xs, kind, level, *, key, low, high):
    if kind not in PERTURBATION_KINDS:
        raise ValueError(f"`kind` must be one of {PERTURBATION_KINDS}, got {kind!r}.")
    _check_floating("xs", xs)
    _check_level("level", level, upper=1.0 if kind == "salt_pepper" else None)
    xs = jnp.asarray(xs)
    dtype = xs.dtype
    level = jnp.asarray(level, dtype)
    if kind == "gaussian":
        return xs + level * jax.random.normal(key, xs.shape, dtype)
    if kind == "multiplicative":
        return xs * (1 + level * jax.random.normal(key, xs.shape, dtype))
    k_mask, k_value = jax.random.split(key)
    hit = jax.random.uniform(k_mask, xs.shape, dtype) < level
    salt = jax.random.bernoulli(k_value, 0.5, xs.shape)
    value = jnp.where(salt, jnp.asarray(high, dtype), jnp.asarray(low, dtype))
    return jnp.where(hit, value, xs)


# --------------------------------------------------------------------------------------------
# Generic attacks on a batched logits function.


def _per_example_ce(logits: ArrayLike, ys: ArrayLike) -> Array:
    """Softmax cross-entropy of each example, (batch,): ``logsumexp(logits) - logits[y]``."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, ys)


def _example_axes(x: ArrayLike) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def _bcast(v: ArrayLike, x: ArrayLike) -> Array:
    """Reshape a (batch,) vector to broadcast against x (batch, ...)."""
    return v.reshape(v.shape + (1,) * (x.ndim - 1))


def _l2(x: ArrayLike) -> Array:
    return jnp.sqrt(jnp.sum(x * x, axis=_example_axes(x)))


def _check_batch(xs: Any, ys: Any) -> None:
    _check_floating("xs", xs)
    if np.ndim(xs) < 1 or np.ndim(ys) != 1 or np.shape(ys)[0] != np.shape(xs)[0]:
        raise ValueError(
            f"`ys` must be a vector of one integer label per example of `xs`; got xs of shape "
            f"{np.shape(xs)} and ys of shape {np.shape(ys)}."
        )
    if not jnp.issubdtype(jnp.result_type(ys), jnp.integer):
        raise TypeError(f"`ys` must hold integer class labels, got dtype {jnp.result_type(ys)}.")


def fgsm_fn(
    logits_fn: LogitsFn,
    xs: Float[ArrayLike, "batch ..."],
    ys: Int[ArrayLike, " batch"],
    eps: float | Float[ArrayLike, ""],
) -> Float[Array, "batch ..."]:
    """Fast gradient sign method (Goodfellow et al. 2015) on any batched logits function.

    ``x_adv = x + eps * sign(grad_x CE(logits_fn(x), y))`` per example, the steepest ascent step of
    the cross-entropy in the l-infinity ball of radius ``eps``.

    Arguments:
        logits_fn: maps a batch ``xs`` to logits (batch, classes); examples must not interact.
        xs: clean inputs (batch, ...).
        ys: integer labels (batch,).
        eps: l-infinity radius, >= 0.

    Returns:
        The adversarial inputs, same shape and dtype as ``xs``.
    """
    _check_batch(xs, ys)
    _check_level("eps", eps)
    grad = jax.grad(lambda x: jnp.sum(_per_example_ce(logits_fn(x), ys)))(xs)
    return xs + jnp.asarray(eps, xs.dtype) * jnp.sign(grad)


def _project(delta: ArrayLike, eps: ArrayLike, norm: str) -> Array:
    if norm == "linf":
        return jnp.clip(delta, -eps, eps)
    n = _l2(delta)
    scale = jnp.minimum(1.0, eps / jnp.maximum(n, jnp.finfo(delta.dtype).tiny))
    return delta * _bcast(scale, delta)


def _ascent_direction(grad: ArrayLike, norm: str) -> Array:
    if norm == "linf":
        return jnp.sign(grad)
    n = _l2(grad)
    return grad / _bcast(jnp.maximum(n, jnp.finfo(grad.dtype).tiny), grad)


def _random_start(key: PRNGKeyArray, xs: ArrayLike, eps: ArrayLike, norm: str) -> Array:
    if norm == "linf":
        return jax.random.uniform(key, xs.shape, xs.dtype, -1.0, 1.0) * eps
    # Uniform in the l2 ball: a uniform direction times radius eps * u^(1/d).
    k_dir, k_rad = jax.random.split(key)
    d = int(np.prod(xs.shape[1:]))
    direction = _ascent_direction(jax.random.normal(k_dir, xs.shape, xs.dtype), "l2")
    radius = eps * jax.random.uniform(k_rad, (xs.shape[0],), xs.dtype) ** (1.0 / d)
    return direction * _bcast(radius, xs)


def pgd_fn(
    logits_fn: LogitsFn,
    xs: Float[ArrayLike, "batch ..."],
    ys: Int[ArrayLike, " batch"],
    eps: float | Float[ArrayLike, ""],
    *,
    steps: int,
    step_size: float | Float[ArrayLike, ""],
    norm: str = "linf",
    key: PRNGKeyArray | None = None,
    mask: Bool[ArrayLike, "..."] | None = None,
) -> Float[Array, "batch ..."]:
    """Projected gradient ascent on the cross-entropy in an eps-ball (Madry et al. 2018).

    Iterates ``delta <- Proj_eps(delta + step_size * s(grad))`` with ``s = sign`` for
    ``norm="linf"`` and ``s(g) = g / ||g||_2`` for ``norm="l2"``, ``Proj_eps`` the Euclidean
    projection onto ``{||delta|| <= eps}`` of one example. The start is ``delta = 0``, or uniform in
    the ball when ``key`` is given. The returned iterate is, per example, the one of highest loss
    among the clean input and all iterates, so the attack never lowers the loss it climbs. One
    ``lax.scan`` over the steps.

    Arguments:
        logits_fn: maps a batch ``xs`` to logits (batch, classes); examples must not interact.
        xs: clean inputs (batch, ...).
        ys: integer labels (batch,).
        eps: radius of the ball, >= 0.
        steps: number of ascent steps, >= 1.
        step_size: ascent step length, >= 0 (a common choice is 2.5 * eps / steps).
        norm: ``"linf"`` or ``"l2"``.
        key: optional PRNG key for a random start.
        mask: optional boolean array broadcastable to ``xs``: entries where it is ``False``
            (e.g. padding) are never changed.

    Returns:
        The adversarial inputs, same shape and dtype as ``xs``, with ``||x_adv - x|| <= eps``.
    """
    _check_batch(xs, ys)
    _check_level("eps", eps)
    _check_level("step_size", step_size)
    if norm not in ATTACK_NORMS:
        raise ValueError(f"`norm` must be one of {ATTACK_NORMS}, got {norm!r}.")
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"`steps` must be a Python int >= 1, got {steps!r}.")
    xs = jnp.asarray(xs)
    eps = jnp.asarray(eps, xs.dtype)
    step_size = jnp.asarray(step_size, xs.dtype)

    def loss_and_grad(delta: Array) -> tuple[Array, Array]:
        def total(d: Array) -> tuple[Array, Array]:
            per = _per_example_ce(logits_fn(xs + d), ys)
            return jnp.sum(per), per

        (_, per), grad = jax.value_and_grad(total, has_aux=True)(delta)
        return per, grad

    zero = jnp.zeros_like(xs)
    best_loss, _ = loss_and_grad(zero)
    best = zero
    keep = (lambda d: d) if mask is None else (lambda d: jnp.where(mask, d, 0.0))  # noqa: E731
    start = zero if key is None else keep(_random_start(key, xs, eps, norm))
    delta = _project(start, eps, norm)

    def body(carry: tuple[Array, Array, Array], _: None) -> tuple[tuple[Array, Array, Array], None]:
        delta, best, best_loss = carry
        loss, grad = loss_and_grad(delta)
        better = loss > best_loss
        best = jnp.where(_bcast(better, delta), delta, best)
        best_loss = jnp.where(better, loss, best_loss)
        step = keep(_ascent_direction(keep(grad), norm))
        delta = _project(delta + step_size * step, eps, norm)
        return (delta, best, best_loss), None

    (delta, best, best_loss), _ = jax.lax.scan(body, (delta, best, best_loss), None, length=steps)
    final_loss, _ = loss_and_grad(delta)
    best = jnp.where(_bcast(final_loss > best_loss, delta), delta, best)
    return xs + best


def deepfool_fn(
    logits_fn: LogitsFn,
    xs: Float[ArrayLike, "batch ..."],
    *,
    max_iter: int = 50,
    overshoot: float = 0.02,
) -> Float[Array, "batch ..."]:
    """Multi-class DeepFool (Moosavi-Dezfooli et al. 2016), per example.

    With ``k0`` the clean prediction, ``w_k = grad f_k - grad f_k0`` and ``g_k = f_k - f_k0`` at
    the current point, each iteration moves to the nearest linearised boundary,
    ``r_i = (|g_l| + 1e-4) / ||w_l||^2 * w_l`` with ``l = argmin_{k != k0} |g_k| / ||w_k||``, and
    accumulates ``r = sum r_i``; the current point is ``x + (1 + overshoot) r``. An example stops
    as soon as its prediction changes (masked ``lax.while_loop``, at most ``max_iter`` rounds). For
    a classifier affine in its input one round lands on the nearest decision boundary, so
    ``||x_adv - x|| = (1 + overshoot)`` times the distance to it (plus the 1e-4 margin).

    Arguments:
        logits_fn: maps a batch ``xs`` to logits (batch, classes); examples must not interact.
        xs: clean inputs (batch, ...).
        max_iter: most rounds, >= 1.
        overshoot: relative overshoot past the boundary, >= 0.

    Returns:
        The adversarial inputs ``x + (1 + overshoot) r``, same shape and dtype as ``xs``. Examples
        still correctly classified after ``max_iter`` rounds carry their last iterate.
    """
    _check_floating("xs", xs)
    _check_level("overshoot", overshoot)
    if not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a Python int >= 1, got {max_iter!r}.")
    xs = jnp.asarray(xs)
    scale = jnp.asarray(1.0 + overshoot, xs.dtype)
    k0 = jnp.argmax(logits_fn(xs), axis=-1)
    tiny = jnp.finfo(xs.dtype).tiny

    def logits_and_jac(x: Array) -> tuple[Array, Array]:
        logits = logits_fn(x)
        # Rows of the per-example Jacobian: examples do not interact, so d sum_b f_bk / d x_b.
        jac = jax.jacrev(lambda z: jnp.sum(logits_fn(z), axis=0))(x)  # (classes, batch, ...)
        return logits, jnp.moveaxis(jac, 0, 1)  # (batch, classes, ...)

    def cond(state: tuple[Array, Array, Array]) -> Array:
        i, _, active = state
        return (i < max_iter) & jnp.any(active)

    def body(state: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        i, r, active = state
        logits, jac = logits_and_jac(xs + scale * r)
        still = jnp.argmax(logits, axis=-1) == k0
        active = active & still
        f0 = jnp.take_along_axis(logits, k0[:, None], axis=-1)
        g = logits - f0  # (batch, classes)
        j0 = jnp.take_along_axis(jac, k0.reshape((-1, 1) + (1,) * (jac.ndim - 2)), axis=1)
        w = jac - j0  # (batch, classes, ...)
        wnorm = jnp.sqrt(jnp.sum(w * w, axis=tuple(range(2, w.ndim))))
        ratio = jnp.abs(g) / jnp.maximum(wnorm, tiny)
        ratio = jnp.where(jax.nn.one_hot(k0, logits.shape[-1], dtype=bool), jnp.inf, ratio)
        lbest = jnp.argmin(ratio, axis=-1)
        g_l = jnp.take_along_axis(g, lbest[:, None], axis=-1)[:, 0]
        w_l = jnp.take_along_axis(w, lbest.reshape((-1, 1) + (1,) * (w.ndim - 2)), axis=1)[:, 0]
        wn_l = jnp.take_along_axis(wnorm, lbest[:, None], axis=-1)[:, 0]
        step = (jnp.abs(g_l) + 1e-4) / jnp.maximum(wn_l * wn_l, tiny)
        r = r + jnp.where(_bcast(active, r), (_bcast(step, w_l) * w_l).astype(r.dtype), 0)
        return i + 1, r, active

    active0 = jnp.ones(xs.shape[0], dtype=bool)
    _, r, _ = jax.lax.while_loop(cond, body, (jnp.asarray(0), jnp.zeros_like(xs), active0))
    return xs + scale * r


# --------------------------------------------------------------------------------------------
# Attacks on a Noisy RNN (deterministic inference path).


def _model_logits(params: dict, cfg: Any, lengths: Any = None) -> LogitsFn:
    return lambda x: apply(params, x, cfg, lengths=lengths)


@takes_sequences(rewrap=True)
def fgsm(
    params: Params,
    xs: Float[ArrayLike, "batch time feature"],
    ys: Int[ArrayLike, " batch"],
    cfg: Any,
    eps: float | Float[ArrayLike, ""],
    *,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "batch time feature"]:
    """FGSM on the deterministic inference path ``apply(params, xs, cfg)``; see ``fgsm_fn``.

    With ``lengths`` (valid steps per row) the padding is left untouched. ``fgsm(params, data,
    cfg, eps)`` takes a :class:`trainkit.Sequences` in place of ``xs, ys`` (its lengths used)
    and returns one with the adversarial inputs."""
    adv = fgsm_fn(_model_logits(params, cfg, lengths), xs, ys, eps)
    return adv if lengths is None else jnp.where(_valid_steps(adv, lengths), adv, xs)


@takes_sequences(rewrap=True)
def pgd(
    params: Params,
    xs: Float[ArrayLike, "batch time feature"],
    ys: Int[ArrayLike, " batch"],
    cfg: Any,
    eps: float | Float[ArrayLike, ""],
    *,
    steps: int,
    step_size: float | Float[ArrayLike, ""],
    norm: str = "linf",
    key: PRNGKeyArray | None = None,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "batch time feature"]:
    """PGD on the deterministic inference path ``apply(params, xs, cfg)``; see ``pgd_fn``.

    With ``lengths`` (valid steps per row) the padding is left untouched and does not use the
    ball's budget. ``pgd(params, data, cfg, eps, ...)`` takes a :class:`trainkit.Sequences` in
    place of ``xs, ys`` and returns one with the adversarial inputs."""
    fn = _model_logits(params, cfg, lengths)
    mask = None if lengths is None else _valid_steps(jnp.asarray(xs), lengths)
    return pgd_fn(fn, xs, ys, eps, steps=steps, step_size=step_size, norm=norm, key=key, mask=mask)


@takes_sequences(labels=False, rewrap=True)
def deepfool(
    params: Params,
    xs: Float[ArrayLike, "batch time feature"],
    cfg: Any,
    *,
    max_iter: int = 50,
    overshoot: float = 0.02,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "batch time feature"]:
    """DeepFool on the deterministic inference path ``apply(params, xs, cfg)``; see
    ``deepfool_fn``. With ``lengths`` the padding is left untouched. ``deepfool(params, data,
    cfg)`` takes a :class:`trainkit.Sequences` in place of ``xs`` and returns one."""
    fn = _model_logits(params, cfg, lengths)
    adv = deepfool_fn(fn, xs, max_iter=max_iter, overshoot=overshoot)
    return adv if lengths is None else jnp.where(_valid_steps(adv, lengths), adv, xs)
