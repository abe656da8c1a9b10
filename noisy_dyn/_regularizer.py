"""The explicit regularizer of noise injection: the second-order small-noise expansion of the
expected loss (derived for this project; ``docs/derivations.md``), exact or by Hutchinson probes.

Notation (column vectors, one example): ``hbar_k`` the noise-free path, ``z_k = W hbar_k + U x_k
+ b``, ``J_k = alpha A + diag(1 - tanh^2 z_k) W`` the drift Jacobian, ``s`` the step vector
(``dt``, or the learned ``step``), ``Jhat_k = I + diag(s) J_k`` the step Jacobian, ``l`` the
softmax cross-entropy of the read-out ``V h_L + c``.

How the trace ``R + Q = sum_k tr(S_k^T d^2 l / d e_k^2 S_k)`` is taken is an object:
:class:`Exact` (the covariance recursion and the adjoint) or :class:`Hutchinson` (``num_samples``
Hessian-vector probes); :func:`trace_by_name` parses the names ``"exact"`` and ``"hutchinson"``
at the edge.
"""

import abc
import dataclasses
import math
import warnings
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from trainkit.internal import FloatScalar, named, takes_sequences

from ._cell import recurrent_matrices
from ._config import NoisyRNNConfig
from ._noise import needs_u, needs_xi
from ._params import check_params
from ._solve import apply, check_lengths, trajectory
from ._step import euler_maruyama_step
from ._theory_common import (
    check_theory_cfg,
    check_theory_xs,
    check_theory_ys,
    concrete_or_none,
    example_cross_entropy,
    tanh_second_derivative,
    theory_step_vector,
)
from ._types import Key, Params


class Trace(abc.ABC):
    """How the regularizer's trace ``R + Q`` is taken: :class:`Exact` or :class:`Hutchinson`.

    Frozen dataclasses (hashable: a compiled program is cached per trace). :meth:`regularizer`
    gives ``r = shift + (R + Q) / 2`` per example after the checks of
    :func:`explicit_regularizer`.
    """

    name: ClassVar[str]
    needs_key: ClassVar[bool] = False

    @abc.abstractmethod
    def regularizer(
        self,
        params: Params,
        xs: Float[ArrayLike, "batch time input"],
        ys: Int[ArrayLike, " batch"],
        cfg: NoisyRNNConfig,
        key: Key | None,
        lengths: Int[ArrayLike, " batch"],
    ) -> Float[Array, " batch"]:
        """``r`` per example (``key`` used only where :attr:`needs_key`)."""


@dataclasses.dataclass(frozen=True)
class Exact(Trace):
    """The trace exactly: the first-order covariance recursion forward and the BPTT adjoint
    backward, one ``lax.scan`` each way; ``O(T H^3)`` per example, deterministic."""

    name: ClassVar[str] = "exact"

    def regularizer(
        self,
        params: Params,
        xs: Float[ArrayLike, "batch time input"],
        ys: Int[ArrayLike, " batch"],
        cfg: NoisyRNNConfig,
        key: Key | None,
        lengths: Int[ArrayLike, " batch"],
    ) -> Float[Array, " batch"]:
        R, Q, shift = _terms_jit(params, xs, ys, cfg, lengths)
        return shift + 0.5 * (R + Q)


@dataclasses.dataclass(frozen=True)
class Hutchinson(Trace):
    """An unbiased estimate of the trace from ``num_samples`` Hessian-vector products of the
    loss in the step's noise inputs (Rademacher probes scaled to the noise covariance);
    ``O(T H^2)`` per sample, needs a key. The relative error falls as ``1 / sqrt(num_samples)``:
    at 16 it was 40-130 % per example and 24 % for the mean of 16 examples on a measured Ito
    model (``docs/derivations.md``): fine for a training penalty (a batch mean), not for
    per-example values.

    Attributes:
        num_samples: the number of probes, an int >= 1.
    """

    num_samples: int = 16
    name: ClassVar[str] = "hutchinson"
    needs_key: ClassVar[bool] = True

    def __post_init__(self):
        n = self.num_samples
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"Hutchinson num_samples must be an int >= 1, got {n!r}.")
        object.__setattr__(self, "num_samples", int(n))

    def regularizer(
        self,
        params: Params,
        xs: Float[ArrayLike, "batch time input"],
        ys: Int[ArrayLike, " batch"],
        cfg: NoisyRNNConfig,
        key: Key | None,
        lengths: Int[ArrayLike, " batch"],
    ) -> Float[Array, " batch"]:
        shift = _shift_jit(params, xs, ys, cfg, lengths)
        return shift + 0.5 * _hutchinson_jit(params, xs, ys, cfg, key, self.num_samples, lengths)


TRACES: dict[str, type[Trace]] = {"exact": Exact, "hutchinson": Hutchinson}
"""The traces by name (the names of :func:`trace_by_name`, the command line and run files)."""


def trace_by_name(name: str, **settings: Any) -> Trace:
    """The trace called ``name`` (``"exact"`` or ``"hutchinson"``) with ``settings`` (its
    fields): ``trace_by_name("hutchinson", num_samples=8) == Hutchinson(8)``. Strings are for
    the edges; the library takes the objects."""
    return named(name, TRACES, "trace", **settings)


def _as_trace(fn: str, trace: Any, method: Any, num_samples: Any, key: Any) -> Trace:
    """The trace of a theory call: ``trace`` (an object, or a name with a DeprecationWarning),
    or the former keywords ``method=`` / ``num_samples=`` mapped onto one (with a
    DeprecationWarning); checked against ``key``."""
    if method is not None or num_samples is not None:
        if trace is not None:
            raise TypeError(f"{fn}: pass trace=Exact() or trace=Hutchinson(n), not also method=.")
        warnings.warn(
            f"{fn}(method=..., num_samples=...) is deprecated; pass trace=noisy_dyn.Exact() or "
            "trace=noisy_dyn.Hutchinson(num_samples).",
            DeprecationWarning,
            stacklevel=4,
        )
        name = "exact" if method is None else method
        if name not in TRACES:
            raise ValueError(f"{fn}: method must be one of {tuple(TRACES)}, got {method!r}.")
        hutchinson = TRACES[name] is Hutchinson and num_samples is not None
        n = {"num_samples": num_samples} if hutchinson else {}
        trace = trace_by_name(name, **n)
    elif isinstance(trace, str):
        warnings.warn(
            f"{fn}(trace={trace!r}) is deprecated; pass the object (noisy_dyn.Exact(), "
            "noisy_dyn.Hutchinson(n)) or trace_by_name at the edge.",
            DeprecationWarning,
            stacklevel=4,
        )
        trace = trace_by_name(trace)
    trace = Exact() if trace is None else trace
    if not isinstance(trace, Trace):
        raise TypeError(
            f"{fn}: trace must be noisy_dyn.Exact() or noisy_dyn.Hutchinson(n), got {trace!r}."
        )
    if trace.needs_key and key is None:
        raise ValueError(
            f"{fn}: trace={trace!r} needs a PRNG key (key=jax.random.key(0)); use "
            "trace=Exact() for the deterministic covariance recursion."
        )
    return trace


def _expansion_point(params: Params, cfg: NoisyRNNConfig) -> tuple[Params, NoisyRNNConfig, float]:
    """Parameters/config of the path the small-noise expansion is taken around.

    Ito form: the inference path itself. Reference form: the mean-step path, step
    ``dbar = d (1 - sigma_mult / 2)`` (``E[m_k] = 1 - sigma_mult / 2``). Returns also the factor
    ``dbar / d``.
    """
    quiet = cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    if not cfg.noise_form.uses(cfg.sigma_add, cfg.sigma_mult).u:  # no random step
        return params, quiet, 1.0
    factor = cfg.noise_form.mean_factor(cfg.sigma_mult)
    if cfg.learn_step:
        return {**params, "step": params["step"] * factor}, quiet, factor
    return params, quiet.replace(dt=cfg.dt * factor), factor


def _step_covariance(h: ArrayLike, f: ArrayLike, d: ArrayLike, cfg: NoisyRNNConfig) -> Array:
    """Diagonal of the covariance added by one step's noise, at the expansion point.

    Ito: ``|d| (sigma_add + sigma_mult h)^2`` (increment ``sqrt(|d|) sigma(h) xi``). Reference:
    ``sigma_add^2 + (sigma_mult^2 / 12) d^2 f^2`` (additive kick plus the variance of the random
    step ``d m``, ``Var m = sigma_mult^2 / 12``).
    """
    return cfg.noise_form.step_covariance(h, f, d, cfg.sigma_add, cfg.sigma_mult)


def _exact_terms(
    params: Params,
    path_params: Params,
    path_cfg: NoisyRNNConfig,
    hbar: Float[ArrayLike, "time_plus_1 hidden"],
    x: Float[ArrayLike, "time input"],
    y: ArrayLike,
    cfg: NoisyRNNConfig,
    length: ArrayLike,
) -> tuple[Array, Array]:
    """``(R, Q)`` for one example by the covariance recursion and the BPTT adjoint; steps
    ``k >= length`` are the identity (no noise, no drift)."""
    A, W = recurrent_matrices(params, cfg)
    dtype = hbar.dtype
    H = hbar.shape[-1]
    d = theory_step_vector(params, cfg, dtype)  # the noise's step (inference step)
    s = theory_step_vector(path_params, path_cfg, dtype)  # the expansion path's step
    eye = jnp.eye(H, dtype=dtype)
    pre = x @ params["U"].T + params["b"]  # (T, H): U x_k + b for all steps at once
    hs = hbar[:-1]

    def jac_parts(h: Array, p: Array) -> tuple[Array, Array, Array]:
        z = W @ h + p
        t = jnp.tanh(z)
        J = cfg.alpha * A + (1.0 - t * t)[:, None] * W
        f = cfg.alpha * (A @ h) + t
        return z, J, f

    def forward(C: Array, inp: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        h, p, valid = inp
        z, J, f = jac_parts(h, p)
        # (q_k)_i = tanh''(z_i) w_i^T C_k w_i, scaled by the step: the second-order drift term.
        q = s * tanh_second_derivative(z) * jnp.sum((W @ C) * W, axis=1)
        Jh = eye + s[:, None] * J
        C_next = Jh @ C @ Jh.T + jnp.diag(_step_covariance(h, f, d, cfg))
        return jnp.where(valid, C_next, C), jnp.where(valid, q, 0.0)

    valid = jnp.arange(hs.shape[0]) < length
    C_T, qs = jax.lax.scan(forward, jnp.zeros((H, H), dtype=dtype), (hs, pre, valid))

    logits = params["V"] @ hbar[-1] + params["c"]
    p = jax.nn.softmax(logits)
    onehot = jax.nn.one_hot(y, logits.shape[-1], dtype=dtype)
    grad_T = params["V"].T @ (p - onehot)  # g = d l / d h_T
    hess_T = params["V"].T @ (jnp.diag(p) - jnp.outer(p, p)) @ params["V"]  # PSD
    R = jnp.sum(hess_T * C_T)  # tr(Hs C_T), both symmetric

    def backward(lam: Array, inp: tuple[Array, Array, Array, Array]) -> tuple[Array, Array]:
        h, pk, q, valid = inp  # lam = lambda_{k+1} = d l / d h_{k+1}
        _, J, _ = jac_parts(h, pk)
        contrib = lam @ q
        return jnp.where(valid, lam + J.T @ (s * lam), lam), contrib

    _, contribs = jax.lax.scan(backward, grad_T, (hs, pre, qs, valid), reverse=True)
    return R, jnp.sum(contribs)


def _probe_loss(
    params: Params,
    xs: ArrayLike,
    ys: ArrayLike,
    cfg: NoisyRNNConfig,
    xi: ArrayLike | None,
    u: ArrayLike | None,
    lengths: ArrayLike,
) -> Array:
    """Summed cross-entropy of the noisy model driven by the given noise ``(batch, time, H)``.

    A ``lax.scan`` of the core's one-step map ``euler_maruyama_step`` (plain autodiff, so that
    forward-over-reverse works whatever custom gradient ``apply`` may use).
    """
    tm = lambda a: None if a is None else jnp.swapaxes(a, 0, 1)  # noqa: E731

    def body(h: Array, inp: tuple) -> tuple[Array, None]:
        k, x_k, xi_k, u_k = inp
        h_next = euler_maruyama_step(params, h, x_k, cfg, xi_k, u_k)
        return jnp.where((k < lengths)[:, None], h_next, h), None

    h0 = jnp.zeros((xs.shape[0], cfg.hidden_size), jnp.result_type(xs, params["V"]))
    hT, _ = jax.lax.scan(body, h0, (jnp.arange(xs.shape[1]), tm(xs), tm(xi), tm(u)))
    return jnp.sum(example_cross_entropy(hT @ params["V"].T + params["c"], ys))


def _hutchinson_curvature(
    params: Params,
    xs: ArrayLike,
    ys: ArrayLike,
    cfg: NoisyRNNConfig,
    key: Key,
    num_samples: int,
    lengths: ArrayLike,
) -> Array:
    """Unbiased estimate of ``R + Q`` per example from Hessian-vector products in the noise.

    The loss as a function of the noise inputs ``(xi, u)`` of the step is expanded around their
    mean ``(0, 1/2)``; its expected value is ``l + (1/2) tr(Cov Hess)`` to second order, where
    the diagonal (same step) blocks of the Hessian are ``S_k^T d^2 l / d e_k^2 S_k`` (the
    probe form; cross-step blocks have zero mean). Each draw is one forward-over-reverse HVP with
    Rademacher probes ``v`` scaled to the noise covariance: ``v^T Hess v``.
    """
    batch, time = xs.shape[:2]
    H = cfg.hidden_size
    dtype = jnp.result_type(xs.dtype, params["V"].dtype)
    use_xi, use_u = needs_xi(cfg), needs_u(cfg)
    base_xi = jnp.zeros((batch, time, H), dtype) if use_xi else None
    base_u = jnp.full((batch, time, H), 0.5, dtype) if use_u else None

    def loss_of(noise: tuple[Array | None, Array | None]) -> Array:
        # summed over the batch: examples do not interact, so the Hessian is block-diagonal
        # per example and v^T H v splits into per-example terms; we return them per example.
        return _probe_loss(params, xs, ys, cfg, *noise, lengths)

    def per_example_quadratic(k: Key) -> Array:
        k_xi, k_u = jax.random.split(k)
        v_xi = jax.random.rademacher(k_xi, (batch, time, H), dtype=dtype) if use_xi else None
        v_u = (
            jax.random.rademacher(k_u, (batch, time, H), dtype=dtype) / math.sqrt(12.0)
            if use_u
            else None
        )
        _, hv = jax.jvp(jax.grad(loss_of), ((base_xi, base_u),), ((v_xi, v_u),))
        total = jnp.zeros((batch,), dtype)
        if use_xi:
            total = total + jnp.sum(v_xi * hv[0], axis=(1, 2))
        if use_u:
            total = total + jnp.sum(v_u * hv[1], axis=(1, 2))
        return total

    keys = jax.random.split(key, num_samples)
    return jnp.mean(jax.lax.map(per_example_quadratic, keys), axis=0)


@takes_sequences()
def explicit_regularizer(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
    *,
    trace: Trace | None = None,
    key: Key | None = None,
    lengths: Int[ArrayLike, " batch"] | None = None,
    method: str | None = None,
    num_samples: int | None = None,
) -> Float[Array, " batch"]:
    """The explicit regularizer of noise injection: the second-order small-noise term ``r_i``.

    For each example, ``E[l_i(noisy)] = l_i(inference) + r_i + O(sigma^4)`` with ``l_i`` the softmax
    cross-entropy and the noise levels and form of ``cfg`` (derived for this project:
    ``docs/derivations.md``).

    Ito form, around the inference path ``hbar``: ``r = (R + Q) / 2`` with the first-order state
    covariance ``C_0 = 0``, ``C_{k+1} = Jhat_k C_k Jhat_k^T + diag(d (sigma_add +
    sigma_mult hbar_k)^2)``, ``R = tr(Hs C_T) >= 0`` (``Hs = V^T (diag p - p p^T) V`` the loss
    Hessian at ``hbar_T``) and ``Q = sum_k lambda_{k+1}^T (d * q_k)``, ``(q_k)_i = tanh''(z_{k,i})
    w_i^T C_k w_i`` (``lambda`` the BPTT adjoint, ``w_i`` the rows of ``W``). ``Q`` is the
    curvature of the flow; it does not vanish away from a minimum.

    Reference form (``m_k ~ U[1 - sigma_mult, 1)``): the same around the mean-step path
    (``dbar = d (1 - sigma_mult / 2)`` in the path, ``Jhat`` and ``Q``), with step covariance
    ``sigma_add^2 + (sigma_mult^2 / 12) d^2 f(hbar_k)^2``, plus the first-order shift
    ``l(mean-step path) - l(inference path)``, since inference uses the step ``d``.

    Arguments:
        params: Lipschitz-cell parameters (``init_params``).
        xs: input sequences ``(batch, time, input_size)``.
        ys: integer labels ``(batch,)``.
        cfg: the configuration; its ``sigma_add``, ``sigma_mult`` and ``noise_form`` set the noise.
        trace: how ``R + Q`` is taken: :class:`noisy_dyn.Exact` (default; covariance
            recursion and adjoint, one ``lax.scan`` each way; ``O(T H^3)`` per example) or
            :class:`noisy_dyn.Hutchinson` ``(num_samples)`` (unbiased estimate from
            Hessian-vector products of the loss in the noise inputs of the step; ``O(T H^2)``
            per sample; needs ``key``; its error is in its docstring).
        key: PRNG key, keyword-only, required by ``Hutchinson``.
        lengths: ``(batch,)`` valid steps per row, padding after them: steps past a row's
            length are the identity (no noise, no drift) and the loss reads ``h_L``.
        method, num_samples: the former spelling (``"exact"`` / ``"hutchinson"`` and the probe
            count), still accepted with a DeprecationWarning.

    Returns:
        ``r`` per example, ``(batch,)``; differentiable with respect to ``params``. Zero without
        noise.

    Examples:
        >>> import jax, noisy_dyn
        >>> cfg = noisy_dyn.NoisyRNNConfig(2, 4, 3, dt=0.1, sigma_add=0.1, sigma_mult=0.1)
        >>> params = noisy_dyn.init_params(jax.random.key(0), cfg)
        >>> xs, ys = jax.numpy.ones((5, 6, 2)), jax.numpy.zeros(5, int)
        >>> noisy_dyn.theory.explicit_regularizer(params, xs, ys, cfg).shape
        (5,)
    """
    fn = "explicit_regularizer"
    cfg = check_theory_cfg(cfg, fn)
    check_params(params, cfg)
    xs = check_theory_xs(xs, cfg, fn)
    ys = check_theory_ys(ys, xs, cfg, fn)
    trace = _as_trace(fn, trace, method, num_samples, key)
    lengths = _full_lengths(lengths, xs)
    return _regularizer_impl(params, xs, ys, cfg, trace, key, lengths)


def _full_lengths(lengths: object, xs: ArrayLike) -> Array:
    """Checked ``lengths``, or every row's full length ``T``."""
    checked = check_lengths(lengths, xs.shape[0], xs.shape[1])
    return jnp.full((xs.shape[0],), xs.shape[1], jnp.int32) if checked is None else checked


def _regularizer_impl(
    params: Params,
    xs: ArrayLike,
    ys: ArrayLike,
    cfg: NoisyRNNConfig,
    trace: Trace,
    key: Key | None,
    lengths: ArrayLike,
) -> Array:
    """:func:`explicit_regularizer` after validation."""
    if cfg.is_deterministic():
        return jnp.zeros((xs.shape[0],), jnp.result_type(xs.dtype, params["V"].dtype))
    return trace.regularizer(params, xs, ys, cfg, key, lengths)


def _shift(
    params: Params, xs: ArrayLike, ys: ArrayLike, cfg: NoisyRNNConfig, lengths: ArrayLike
) -> Array:
    """``l(expansion path) - l(inference path)`` (zero for the Ito form)."""
    path_params, path_cfg, factor = _expansion_point(params, cfg)
    if factor == 1.0:
        return jnp.zeros((xs.shape[0],), jnp.result_type(xs, params["V"]))
    loss_path = example_cross_entropy(apply(path_params, xs, path_cfg, lengths=lengths), ys)
    return loss_path - example_cross_entropy(apply(params, xs, cfg, lengths=lengths), ys)


@partial(jax.jit, static_argnames=("cfg",))
def _terms_jit(params: Params, xs: ArrayLike, ys: ArrayLike, cfg: NoisyRNNConfig, lengths) -> tuple:
    path_params, path_cfg, factor = _expansion_point(params, cfg)
    hbar = trajectory(path_params, xs, path_cfg, lengths=lengths)  # (batch, T + 1, H), noise off
    terms = partial(_exact_terms, params, path_params, path_cfg, cfg=cfg)
    R, Q = jax.vmap(lambda h, x, y, n: terms(h, x, y, length=n))(hbar, xs, ys, lengths)
    if factor == 1.0:
        shift = jnp.zeros_like(R)
    else:
        loss_path = example_cross_entropy(hbar[:, -1] @ params["V"].T + params["c"], ys)
        shift = loss_path - example_cross_entropy(apply(params, xs, cfg, lengths=lengths), ys)
    return R, Q, shift


_shift_jit = partial(jax.jit, static_argnames=("cfg",))(_shift)
_hutchinson_jit = partial(jax.jit, static_argnames=("cfg", "num_samples"))(
    lambda params, xs, ys, cfg, key, num_samples, lengths: _hutchinson_curvature(
        params, xs, ys, cfg, key, num_samples, lengths
    )
)


@takes_sequences()
def regularizer_terms(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
    *,
    lengths: Int[ArrayLike, " batch"] | None = None,
) -> dict[str, Float[Array, " batch"]]:
    """The parts of :func:`explicit_regularizer` (``trace=Exact()``) separately, per example
    (``lengths`` as there).

    Returns:
        ``{"R": tr(Hs C_T), "Q": sum_k lambda_{k+1}^T d q_k, "shift": l(expansion path) -
        l(inference path)}``, each ``(batch,)``; ``explicit_regularizer = shift + (R + Q) / 2``.
        ``R`` alone is *not* the regularizer away from a minimum.
    """
    fn = "regularizer_terms"
    cfg = check_theory_cfg(cfg, fn)
    check_params(params, cfg)
    xs = check_theory_xs(xs, cfg, fn)
    ys = check_theory_ys(ys, xs, cfg, fn)
    R, Q, shift = _terms_jit(params, xs, ys, cfg, _full_lengths(lengths, xs))
    return {"R": R, "Q": Q, "shift": shift}


@takes_sequences()
def regularized_loss(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
    lam: FloatScalar,
    *,
    trace: Trace | None = None,
    key: Key | None = None,
    lengths: Int[ArrayLike, " batch"] | None = None,
    method: str | None = None,
) -> Float[Array, ""]:
    """Mean cross-entropy of the deterministic model plus ``lam`` times the mean regularizer.

    ``mean_i l_i(inference) + lam * mean_i r_i``: with ``lam = 1`` this is the second-order
    approximation of the expected noisy training loss, so training on it replaces noise injection
    by an explicit penalty (``fit(regularizer=ExplicitRegularizer(lam, trace))``).

    Arguments:
        params: Lipschitz-cell parameters.
        xs: input sequences ``(batch, time, input_size)``.
        ys: integer labels ``(batch,)``.
        cfg: the configuration (noise levels and form define ``r``).
        lam: weight of the penalty (``>= 0``; ``1`` matches the noise).
        trace: :class:`noisy_dyn.Exact` (default) or :class:`noisy_dyn.Hutchinson` (see
            :func:`explicit_regularizer`).
        key: PRNG key, required for ``Hutchinson``.
        lengths: valid steps per row (padding after them), as in :func:`explicit_regularizer`.
        method: the former spelling (``"exact"`` / ``"hutchinson"``, 16 probes), still accepted
            with a DeprecationWarning.

    Returns:
        The scalar loss, differentiable with respect to ``params``.
    """
    fn = "regularized_loss"
    cfg = check_theory_cfg(cfg, fn)
    check_params(params, cfg)
    xs = check_theory_xs(xs, cfg, fn)
    ys = check_theory_ys(ys, xs, cfg, fn)
    lam_c = concrete_or_none(lam)
    if lam_c is not None:
        if lam_c.shape != () or not np.isfinite(lam_c) or lam_c < 0:
            raise ValueError(f"{fn}: lam must be a finite number >= 0, got {lam!r}.")
    trace = _as_trace(fn, trace, method, None, key)
    lengths = _full_lengths(lengths, xs)
    return _regularized_loss_jit(params, xs, ys, cfg, lam, trace, key, lengths)


@partial(jax.jit, static_argnames=("cfg", "trace"))
def _regularized_loss_jit(
    params: Params,
    xs: ArrayLike,
    ys: ArrayLike,
    cfg: NoisyRNNConfig,
    lam: ArrayLike,
    trace: Trace,
    key: Key | None,
    lengths: ArrayLike,
) -> Array:
    data = jnp.mean(example_cross_entropy(apply(params, xs, cfg, lengths=lengths), ys))
    r = _regularizer_impl(params, xs, ys, cfg, trace, key, lengths)
    return data + lam * jnp.mean(r)
