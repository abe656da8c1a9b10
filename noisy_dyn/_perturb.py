"""Test-time perturbations and adversarial attacks.

Random corruptions of the input sequences (additive Gaussian, multiplicative Gaussian,
salt-and-pepper) and three gradient attacks (FGSM, PGD in the l-infinity or l2 ball, multi-class
DeepFool). Every attack exists twice: a generic version acting on any batched ``logits_fn(xs) ->
logits`` (``fgsm_fn``, ``pgd_fn``, ``deepfool_fn``), and a Noisy-RNN version taking
``(params, xs, ..., cfg)`` that attacks the deterministic inference path ``apply(params, xs, cfg)``.

All functions are pure, work under ``jax.jit`` and ``jax.vmap``, and treat every example of the
batch independently: norms and balls are taken over all non-batch axes of one example.
"""

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from trainkit.internal import takes_sequences

from ._perturbations import (
    FGSM,
    PERTURBATIONS,
    Linf,
    LogitsFn,
    Norm,
    RandomPerturbation,
    SaltPepper,
    _bcast,
    as_norm,
    pgd_loop,
)
from ._perturbations import check_level as _check_level
from ._solve import apply
from ._types import Params

_LINF = Linf()

PERTURBATION_KINDS = ("gaussian", "multiplicative", "salt_pepper")
"""The names of the random perturbations (the objects: ``Gaussian``, ``Multiplicative``,
``SaltPepper``)."""
ATTACK_NORMS = ("linf", "l2")
"""The names of the attack norms (the objects: ``Linf``, ``L2``)."""


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
    perturbation: RandomPerturbation | str,
    level: float | Float[ArrayLike, ""] | None = None,
    *,
    key: PRNGKeyArray,
    low: float | None = None,
    high: float | None = None,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "*shape"]:
    """Corrupt inputs with random noise: ``perturb(xs, Gaussian(0.1), key=key)``.

    With ``n`` i.i.d. standard normal and ``u`` i.i.d. uniform on [0, 1), entry by entry:

    - :class:`Gaussian` ``(sigma)``: ``x + sigma * n`` (additive white noise);
    - :class:`Multiplicative` ``(sigma)``: ``x * (1 + sigma * n)``;
    - :class:`SaltPepper` ``(p, low=0, high=1)``: with probability ``p`` the entry is replaced,
      by ``low`` or ``high`` with equal chance (a fraction ``p`` of the entries is corrupted on
      average); otherwise it is kept.

    No clipping is applied. The level may be traced (e.g. ``jax.vmap(lambda s: perturb(xs,
    Gaussian(s), key=key))(sigmas)``).

    Arguments:
        xs: inputs of any shape and floating dtype, or a :class:`trainkit.Sequences` (its
            lengths used; a ``Sequences`` with the perturbed inputs is returned).
        perturbation: a random perturbation object. The old spelling ``perturb(xs, "gaussian",
            0.1, key=key)`` (a name, its level and ``low``/``high`` for salt and pepper) still
            works and warns (``DeprecationWarning``).
        level: only with a name (deprecated).
        key: PRNG key (keyword-only).
        low, high: only with the name ``"salt_pepper"`` (deprecated; ``SaltPepper(p, low,
            high)``).
        lengths: for ``xs`` of shape ``(batch, time, ...)`` with padding after each row's
            ``lengths[b]`` valid steps: the padding is left untouched.

    Returns:
        The perturbed array, same shape and dtype as ``xs``.
    """
    perturbation = _random_perturbation(perturbation, level, low, high)
    _check_floating("xs", xs)
    xs = jnp.asarray(xs)
    out = perturbation.sample(xs, key=key)
    return out if lengths is None else jnp.where(_valid_steps(out, lengths), out, xs)


def _random_perturbation(perturbation: Any, level: Any, low: Any, high: Any) -> Any:
    """The object of :func:`perturb`'s argument; a name (the old spelling) warns."""
    if isinstance(perturbation, RandomPerturbation):
        if level is not None or low is not None or high is not None:
            raise TypeError(
                "perturb: the level, low and high belong to the perturbation object (e.g. "
                "SaltPepper(0.1, low=0.0, high=1.0)); do not pass them beside it."
            )
        return perturbation
    if perturbation not in PERTURBATION_KINDS:
        raise ValueError(
            "`perturbation` must be Gaussian(sigma), Multiplicative(sigma) or SaltPepper(p) (or "
            f"one of the names {PERTURBATION_KINDS}), got {perturbation!r}."
        )
    cls = PERTURBATIONS[perturbation]
    warnings.warn(
        f"perturb(xs, {perturbation!r}, level) is deprecated; pass the object, "
        f"perturb(xs, noisy_dyn.attacks.{cls.__name__}(level), key=key).",
        DeprecationWarning,
        stacklevel=4,
    )
    if level is None:
        raise TypeError(f"perturb: the perturbation {perturbation!r} needs a level.")
    _check_level("level", level, upper=1.0 if cls is SaltPepper else None)
    extra = {"low": 0.0 if low is None else low, "high": 1.0 if high is None else high}
    return cls(level, **(extra if cls is SaltPepper else {}))


def _valid_steps(xs: ArrayLike, lengths: Any) -> Array:
    """Boolean mask of the valid steps of ``xs`` ``(batch, time, ...)``, broadcastable."""
    if xs.ndim < 2 or np.shape(lengths) != (xs.shape[0],):
        raise ValueError(
            f"`lengths` must have shape (batch,) = ({xs.shape[0]},) for xs of shape (batch, time, "
            f"...), got {np.shape(lengths)} and xs {xs.shape}."
        )
    valid = jnp.arange(xs.shape[1]) < jnp.asarray(lengths)[:, None]
    return valid.reshape(valid.shape + (1,) * (xs.ndim - 2))


# --------------------------------------------------------------------------------------------
# Generic attacks on a batched logits function.


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
    *,
    norm: Norm | str = _LINF,
) -> Float[Array, "batch ..."]:
    """Fast gradient sign method (Goodfellow et al. 2015) on any batched logits function.

    ``x_adv = x + eps * a(grad_x CE(logits_fn(x), y))`` per example, with ``a`` the norm's
    steepest-ascent direction: ``sign`` for :class:`Linf` (the default; the steepest ascent step of
    the cross-entropy in the l-infinity ball of radius ``eps``), ``g / ||g||_2`` for :class:`L2`.
    The same as ``FGSM(eps, norm=norm).attack(logits_fn, xs, ys)``.

    Arguments:
        logits_fn: maps a batch ``xs`` to logits (batch, classes); examples must not interact.
        xs: clean inputs (batch, ...).
        ys: integer labels (batch,).
        eps: radius, >= 0.
        norm: the ball, ``Linf()`` (default) or ``L2()``.

    Returns:
        The adversarial inputs, same shape and dtype as ``xs``.
    """
    _check_batch(xs, ys)
    return FGSM(eps, norm=as_norm(norm, "fgsm_fn")).attack(logits_fn, jnp.asarray(xs), ys)


def pgd_fn(
    logits_fn: LogitsFn,
    xs: Float[ArrayLike, "batch ..."],
    ys: Int[ArrayLike, " batch"],
    eps: float | Float[ArrayLike, ""],
    *,
    steps: int,
    step_size: float | Float[ArrayLike, ""],
    norm: Norm | str = _LINF,
    key: PRNGKeyArray | None = None,
    mask: Bool[ArrayLike, "..."] | None = None,
) -> Float[Array, "batch ..."]:
    """Projected gradient ascent on the cross-entropy in an eps-ball (Madry et al. 2018).

    Iterates ``delta <- Proj_eps(delta + step_size * s(grad))`` with ``s = sign`` for
    ``norm=Linf()`` and ``s(g) = g / ||g||_2`` for ``norm=L2()``, ``Proj_eps`` the Euclidean
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
        norm: the ball, ``Linf()`` (default) or ``L2()`` (the names ``"linf"``, ``"l2"`` still
            work and warn).
        key: optional PRNG key for a random start.
        mask: optional boolean array broadcastable to ``xs``: entries where it is ``False``
            (e.g. padding) are never changed.

    Returns:
        The adversarial inputs, same shape and dtype as ``xs``, with ``||x_adv - x|| <= eps``.
    """
    _check_batch(xs, ys)
    _check_level("eps", eps)
    _check_level("step_size", step_size)
    norm = as_norm(norm, "pgd_fn")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"`steps` must be a Python int >= 1, got {steps!r}.")
    xs = jnp.asarray(xs)
    eps = jnp.asarray(eps, xs.dtype)
    step_size = jnp.asarray(step_size, xs.dtype)
    return pgd_loop(logits_fn, xs, ys, eps, step_size, steps=steps, norm=norm, key=key, mask=mask)


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
    norm: Norm | str = _LINF,
    key: PRNGKeyArray | None = None,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> Float[Array, "batch time feature"]:
    """PGD on the deterministic inference path ``apply(params, xs, cfg)``; see ``pgd_fn``.

    With ``lengths`` (valid steps per row) the padding is left untouched and does not use the
    ball's budget. ``pgd(params, data, cfg, eps, ...)`` takes a :class:`trainkit.Sequences` in
    place of ``xs, ys`` and returns one with the adversarial inputs."""
    fn = _model_logits(params, cfg, lengths)
    mask = None if lengths is None else _valid_steps(jnp.asarray(xs), lengths)
    norm = as_norm(norm, "pgd")
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
