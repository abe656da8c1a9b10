"""The theory of Noisy RNNs as code: explicit regularizer, stability, Lyapunov exponents, margin.

Paths, one-step maps and the matrices ``A, W`` come from the core (``_cell``, ``_solve``); the
quantities are computed from them by automatic differentiation or by a ``lax.scan`` over time
(the covariance recursion, the adjoint, the QR iteration). The formulas are
those of SPEC 1.4-1.6, *derived* for this project (the paper's own theorems could not be obtained)
and written out in ``docs/derivations.md``; each is checked in ``tests/noisy_dyn/test_theory.py``
against an independent estimate (Monte Carlo, NumPy eigenvalues, closed forms).

Notation (column vectors, one example): ``hbar_k`` the noise-free path, ``z_k = W hbar_k + U x_k
+ b``, ``J_k = alpha A + diag(1 - tanh^2 z_k) W`` the drift Jacobian, ``s`` the step vector
(``dt``, or the learned ``step``), ``Jhat_k = I + diag(s) J_k`` the step Jacobian, ``l`` the
softmax cross-entropy of the read-out ``V h_T + c``.
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._cell import check_params, recurrent_matrices
from ._config import NoisyRNNConfig
from ._noise import needs_u, needs_xi
from ._solve import apply, euler_maruyama_step, trajectory
from ._types import Key, Params

_METHODS = ("exact", "hutchinson")
_BROWNIAN = ("unit", "scalar")


# ----------------------------------------------------------------------------------------------
# validation (eager, before tracing, where the inputs are concrete)


def _check_cfg(cfg: object, fn: str) -> NoisyRNNConfig:
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(f"{fn}: cfg must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    if cfg.cell != "lipschitz":
        raise ValueError(
            f"{fn}: the theory is derived for the Lipschitz cell only (cfg.cell='lipschitz'), got "
            f"cell={cfg.cell!r}. Use a Lipschitz/Noisy RNN config."
        )
    return cfg


def _check_xs(xs: object, cfg: NoisyRNNConfig, fn: str, *, batched: bool = True) -> Array:
    arr = jnp.asarray(xs)
    want = "(batch, time, input_size)" if batched else "(time, input_size)"
    ndim = 3 if batched else 2
    if arr.ndim != ndim:
        raise ValueError(f"{fn}: xs must have shape {want}, got shape {arr.shape}.")
    if arr.shape[-1] != cfg.input_size:
        raise ValueError(
            f"{fn}: xs has {arr.shape[-1]} features per step but cfg.input_size is "
            f"{cfg.input_size}; reshape xs to {want}."
        )
    if arr.shape[-2] < 1:
        raise ValueError(f"{fn}: xs needs at least one time step, got shape {arr.shape}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise TypeError(f"{fn}: xs must be a real floating array, got dtype {arr.dtype}.")
    return arr


def _concrete(value: object) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` when it is traced (inside ``jit``/``grad``)."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_ys(ys: object, xs: Array, cfg: NoisyRNNConfig, fn: str) -> Array:
    concrete_ys = _concrete(ys)
    concrete = concrete_ys is not None
    arr = concrete_ys if concrete else ys
    if arr.shape != (xs.shape[0],):
        raise ValueError(
            f"{fn}: ys must hold one integer label per sequence, shape ({xs.shape[0]},), got "
            f"shape {arr.shape}."
        )
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{fn}: ys must be integer class labels, got dtype {arr.dtype}.")
    if concrete and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= cfg.num_classes:
            raise ValueError(
                f"{fn}: labels must lie in [0, {cfg.num_classes - 1}] (cfg.num_classes), got "
                f"values in [{lo}, {hi}]."
            )
    return jnp.asarray(arr)


def _step_vector(params: Params, cfg: NoisyRNNConfig, dtype: jnp.dtype) -> Array:
    """The step ``d`` as an ``(H,)`` vector: the learned ``step`` or ``dt`` everywhere."""
    if cfg.learn_step:
        return params["step"]
    return jnp.full((cfg.hidden_size,), cfg.dt, dtype=dtype)


def _expansion_point(params: Params, cfg: NoisyRNNConfig) -> tuple[Params, NoisyRNNConfig, float]:
    """Parameters/config of the path the small-noise expansion is taken around.

    Ito form: the inference path itself. Reference form: the mean-step path, step
    ``dbar = d (1 - sigma_mult / 2)`` (``E[m_k] = 1 - sigma_mult / 2``). Returns also the factor
    ``dbar / d``.
    """
    quiet = cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    if cfg.noise_form == "ito" or cfg.sigma_mult == 0.0:
        return params, quiet, 1.0
    factor = 1.0 - cfg.sigma_mult / 2.0
    if cfg.learn_step:
        return {**params, "step": params["step"] * factor}, quiet, factor
    return params, quiet.replace(dt=cfg.dt * factor), factor


def _cross_entropy(logits: Array, y: Array) -> Array:
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(
        logits, y[..., None], axis=-1
    ).squeeze(-1)


def _tanh_second(z: Array) -> Array:
    t = jnp.tanh(z)
    return -2.0 * t * (1.0 - t * t)


# ----------------------------------------------------------------------------------------------
# explicit regularizer (SPEC 1.4)


def _step_covariance(h: Array, f: Array, d: Array, cfg: NoisyRNNConfig) -> Array:
    """Diagonal of the covariance added by one step's noise, at the expansion point.

    Ito: ``|d| (sigma_add + sigma_mult h)^2`` (increment ``sqrt(|d|) sigma(h) xi``). Reference:
    ``sigma_add^2 + (sigma_mult^2 / 12) d^2 f^2`` (additive kick plus the variance of the random
    step ``d m``, ``Var m = sigma_mult^2 / 12``).
    """
    if cfg.noise_form == "ito":
        return jnp.abs(d) * (cfg.sigma_add + cfg.sigma_mult * h) ** 2
    return cfg.sigma_add**2 + (cfg.sigma_mult**2 / 12.0) * (d * f) ** 2


def _exact_terms(
    params: Params,
    path_params: Params,
    path_cfg: NoisyRNNConfig,
    hbar: Float[Array, "time_plus_1 hidden"],
    x: Float[Array, "time input"],
    y: Array,
    cfg: NoisyRNNConfig,
) -> tuple[Array, Array]:
    """``(R, Q)`` for one example by the covariance recursion and the BPTT adjoint."""
    A, W = recurrent_matrices(params, cfg)
    dtype = hbar.dtype
    H = hbar.shape[-1]
    d = _step_vector(params, cfg, dtype)  # the noise's step (inference step)
    s = _step_vector(path_params, path_cfg, dtype)  # the expansion path's step
    eye = jnp.eye(H, dtype=dtype)
    pre = x @ params["U"].T + params["b"]  # (T, H): U x_k + b for all steps at once
    hs = hbar[:-1]

    def jac_parts(h: Array, p: Array) -> tuple[Array, Array, Array]:
        z = W @ h + p
        t = jnp.tanh(z)
        J = cfg.alpha * A + (1.0 - t * t)[:, None] * W
        f = cfg.alpha * (A @ h) + t
        return z, J, f

    def forward(C: Array, inp: tuple[Array, Array]) -> tuple[Array, Array]:
        h, p = inp
        z, J, f = jac_parts(h, p)
        # (q_k)_i = tanh''(z_i) w_i^T C_k w_i, scaled by the step: the second-order drift term.
        q = s * _tanh_second(z) * jnp.sum((W @ C) * W, axis=1)
        Jh = eye + s[:, None] * J
        C_next = Jh @ C @ Jh.T + jnp.diag(_step_covariance(h, f, d, cfg))
        return C_next, q

    C_T, qs = jax.lax.scan(forward, jnp.zeros((H, H), dtype=dtype), (hs, pre))

    logits = params["V"] @ hbar[-1] + params["c"]
    p = jax.nn.softmax(logits)
    onehot = jax.nn.one_hot(y, logits.shape[-1], dtype=dtype)
    grad_T = params["V"].T @ (p - onehot)  # g = d l / d h_T
    hess_T = params["V"].T @ (jnp.diag(p) - jnp.outer(p, p)) @ params["V"]  # PSD
    R = jnp.sum(hess_T * C_T)  # tr(Hs C_T), both symmetric

    def backward(lam: Array, inp: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        h, pk, q = inp  # lam = lambda_{k+1} = d l / d h_{k+1}
        _, J, _ = jac_parts(h, pk)
        contrib = lam @ q
        return lam + J.T @ (s * lam), contrib

    _, contribs = jax.lax.scan(backward, grad_T, (hs, pre, qs), reverse=True)
    return R, jnp.sum(contribs)


def _probe_loss(
    params: Params,
    xs: Array,
    ys: Array,
    cfg: NoisyRNNConfig,
    xi: Array | None,
    u: Array | None,
) -> Array:
    """Summed cross-entropy of the noisy model driven by the given noise ``(batch, time, H)``.

    A ``lax.scan`` of the core's one-step map ``euler_maruyama_step`` (plain autodiff, so that
    forward-over-reverse works whatever custom gradient ``apply`` may use).
    """
    tm = lambda a: None if a is None else jnp.swapaxes(a, 0, 1)  # noqa: E731

    def body(h: Array, inp: tuple) -> tuple[Array, None]:
        x_k, xi_k, u_k = inp
        return euler_maruyama_step(params, h, x_k, cfg, xi_k, u_k), None

    h0 = jnp.zeros((xs.shape[0], cfg.hidden_size), jnp.result_type(xs, params["V"]))
    hT, _ = jax.lax.scan(body, h0, (tm(xs), tm(xi), tm(u)))
    return jnp.sum(_cross_entropy(hT @ params["V"].T + params["c"], ys))


def _hutchinson_curvature(
    params: Params, xs: Array, ys: Array, cfg: NoisyRNNConfig, key: Key, num_samples: int
) -> Array:
    """Unbiased estimate of ``R + Q`` per example from Hessian-vector products in the noise.

    The loss as a function of the noise inputs ``(xi, u)`` of the step is expanded around their
    mean ``(0, 1/2)``; its expected value is ``l + (1/2) tr(Cov Hess)`` to second order, where
    the diagonal (same step) blocks of the Hessian are ``S_k^T d^2 l / d e_k^2 S_k`` (SPEC 1.4's
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
        return _probe_loss(params, xs, ys, cfg, *noise)

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


def explicit_regularizer(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
    *,
    method: str = "exact",
    key: Key | None = None,
    num_samples: int = 16,
) -> Float[Array, " batch"]:
    """The explicit regularizer of noise injection: the second-order small-noise term ``r_i``.

    For each example, ``E[l_i(noisy)] = l_i(inference) + r_i + O(sigma^4)`` with ``l_i`` the softmax
    cross-entropy and the noise levels and form of ``cfg`` (derived, SPEC 1.4, docs/derivations.md).

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
        method: ``"exact"`` (covariance recursion and adjoint, one ``lax.scan`` each way;
            ``O(T H^3)`` per example) or ``"hutchinson"`` (unbiased estimate of ``R + Q`` from
            ``num_samples`` Hessian-vector products of the loss in the noise inputs of the step;
            ``O(T H^2)`` per sample; needs ``key``).
        key: PRNG key, keyword-only, required by ``method="hutchinson"``.
        num_samples: number of Hutchinson probes.

    Returns:
        ``r`` per example, ``(batch,)``; differentiable with respect to ``params``. Zero without
        noise.

    Example:
        >>> import jax, noisy_dyn
        >>> cfg = noisy_dyn.NoisyRNNConfig(2, 4, 3, dt=0.1, sigma_add=0.1, sigma_mult=0.1)
        >>> params = noisy_dyn.init_params(jax.random.key(0), cfg)
        >>> xs, ys = jax.numpy.ones((5, 6, 2)), jax.numpy.zeros(5, int)
        >>> noisy_dyn.explicit_regularizer(params, xs, ys, cfg).shape
        (5,)
    """
    fn = "explicit_regularizer"
    cfg = _check_cfg(cfg, fn)
    check_params(params, cfg)
    xs = _check_xs(xs, cfg, fn)
    ys = _check_ys(ys, xs, cfg, fn)
    if method not in _METHODS:
        raise ValueError(f"{fn}: method must be one of {_METHODS}, got {method!r}.")
    if method == "hutchinson":
        if key is None:
            raise ValueError(
                f"{fn}: method='hutchinson' needs a PRNG key (key=jax.random.key(0)); use "
                "method='exact' for the deterministic covariance recursion."
            )
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"{fn}: num_samples must be an int >= 1, got {num_samples!r}.")

    return _regularizer_impl(params, xs, ys, cfg, method, key, num_samples)


def _regularizer_impl(
    params: Params,
    xs: Array,
    ys: Array,
    cfg: NoisyRNNConfig,
    method: str,
    key: Key | None,
    num_samples: int,
) -> Array:
    """:func:`explicit_regularizer` after validation."""
    if not cfg.noisy:
        return jnp.zeros((xs.shape[0],), jnp.result_type(xs.dtype, params["V"].dtype))
    if method == "exact":
        R, Q, shift = _terms_jit(params, xs, ys, cfg)
        return shift + 0.5 * (R + Q)
    shift = _shift_jit(params, xs, ys, cfg)
    return shift + 0.5 * _hutchinson_jit(params, xs, ys, cfg, key, num_samples)


def _shift(params: Params, xs: Array, ys: Array, cfg: NoisyRNNConfig) -> Array:
    """``l(expansion path) - l(inference path)`` (zero for the Ito form)."""
    path_params, path_cfg, factor = _expansion_point(params, cfg)
    if factor == 1.0:
        return jnp.zeros((xs.shape[0],), jnp.result_type(xs, params["V"]))
    loss_path = _cross_entropy(apply(path_params, xs, path_cfg), ys)
    return loss_path - _cross_entropy(apply(params, xs, cfg), ys)


@partial(jax.jit, static_argnames=("cfg",))
def _terms_jit(params: Params, xs: Array, ys: Array, cfg: NoisyRNNConfig) -> tuple:
    path_params, path_cfg, factor = _expansion_point(params, cfg)
    hbar = trajectory(path_params, xs, path_cfg)  # (batch, T + 1, H), noise off
    R, Q = jax.vmap(lambda h, x, y: _exact_terms(params, path_params, path_cfg, h, x, y, cfg))(
        hbar, xs, ys
    )
    if factor == 1.0:
        shift = jnp.zeros_like(R)
    else:
        loss_path = _cross_entropy(hbar[:, -1] @ params["V"].T + params["c"], ys)
        shift = loss_path - _cross_entropy(apply(params, xs, cfg), ys)
    return R, Q, shift


_shift_jit = partial(jax.jit, static_argnames=("cfg",))(_shift)
_hutchinson_jit = partial(jax.jit, static_argnames=("cfg", "num_samples"))(
    lambda params, xs, ys, cfg, key, num_samples: _hutchinson_curvature(
        params, xs, ys, cfg, key, num_samples
    )
)


def regularizer_terms(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
) -> dict[str, Array]:
    """The parts of :func:`explicit_regularizer` (``method="exact"``) separately, per example.

    Returns:
        ``{"R": tr(Hs C_T), "Q": sum_k lambda_{k+1}^T d q_k, "shift": l(expansion path) -
        l(inference path)}``, each ``(batch,)``; ``explicit_regularizer = shift + (R + Q) / 2``.
        ``R`` alone is *not* the regularizer away from a minimum.
    """
    fn = "regularizer_terms"
    cfg = _check_cfg(cfg, fn)
    check_params(params, cfg)
    xs = _check_xs(xs, cfg, fn)
    ys = _check_ys(ys, xs, cfg, fn)
    R, Q, shift = _terms_jit(params, xs, ys, cfg)
    return {"R": R, "Q": Q, "shift": shift}


def regularized_loss(
    params: Params,
    xs: Float[ArrayLike, "batch time input"],
    ys: Int[ArrayLike, " batch"],
    cfg: NoisyRNNConfig,
    lam: float,
    *,
    method: str = "exact",
    key: Key | None = None,
) -> Float[Array, ""]:
    """Mean cross-entropy of the deterministic model plus ``lam`` times the mean regularizer.

    ``mean_i l_i(inference) + lam * mean_i r_i``: with ``lam = 1`` this is the second-order
    approximation of the expected noisy training loss, so training on it replaces noise injection
    by an explicit penalty (the trainer's ``regularizer="explicit"``).

    Arguments:
        params: Lipschitz-cell parameters.
        xs: input sequences ``(batch, time, input_size)``.
        ys: integer labels ``(batch,)``.
        cfg: the configuration (noise levels and form define ``r``).
        lam: weight of the penalty (``>= 0``; ``1`` matches the noise).
        method: ``"exact"`` or ``"hutchinson"`` (16 probes; see :func:`explicit_regularizer`).
        key: PRNG key, required for ``"hutchinson"``.

    Returns:
        The scalar loss, differentiable with respect to ``params``.
    """
    fn = "regularized_loss"
    cfg = _check_cfg(cfg, fn)
    check_params(params, cfg)
    xs = _check_xs(xs, cfg, fn)
    ys = _check_ys(ys, xs, cfg, fn)
    lam_c = _concrete(lam)
    if lam_c is not None:
        if lam_c.shape != () or not np.isfinite(lam_c) or lam_c < 0:
            raise ValueError(f"{fn}: lam must be a finite number >= 0, got {lam!r}.")
    if method not in _METHODS:
        raise ValueError(f"{fn}: method must be one of {_METHODS}, got {method!r}.")
    if method == "hutchinson" and key is None:
        raise ValueError(f"{fn}: method='hutchinson' needs a PRNG key (key=jax.random.key(0)).")
    return _regularized_loss_jit(params, xs, ys, cfg, lam, method, key)


@partial(jax.jit, static_argnames=("cfg", "method"))
def _regularized_loss_jit(
    params: Params,
    xs: Array,
    ys: Array,
    cfg: NoisyRNNConfig,
    lam: Array,
    method: str,
    key: Key | None,
) -> Array:
    data = jnp.mean(_cross_entropy(apply(params, xs, cfg), ys))
    r = _regularizer_impl(params, xs, ys, cfg, method, key, 16)
    return data + lam * jnp.mean(r)


# ----------------------------------------------------------------------------------------------
# stability (SPEC 1.5)


def contraction_rate(params: Params, cfg: NoisyRNNConfig) -> Float[Array, ""]:
    """The one-sided Lipschitz constant of the drift, ``mu = alpha lambda_max(sym A) + ||W||_2``.

    For any two states, ``<h - h', f(h, x) - f(h', x)> <= mu ||h - h'||^2`` (tanh is
    1-Lipschitz, so the tanh part contributes at most ``||W||_2``; valid for ``alpha >= 0``, and
    for ``alpha < 0`` with ``lambda_min`` in place of ``lambda_max``, which this function uses).
    ``mu < 0`` means two trajectories driven by the same input (and the same additive noise)
    contract at the exponential rate ``mu``.

    Arguments:
        params: Lipschitz-cell parameters.
        cfg: the configuration.

    Returns:
        ``mu`` (scalar), differentiable with respect to ``params``.
    """
    cfg = _check_cfg(cfg, "contraction_rate")
    check_params(params, cfg)
    A, W = recurrent_matrices(params, cfg)
    eig = jnp.linalg.eigvalsh(0.5 * (A + A.T))
    lin = cfg.alpha * (eig[-1] if cfg.alpha >= 0 else eig[0])
    return lin + jnp.linalg.norm(W, ord=2)


def stability_report(params: Params, cfg: NoisyRNNConfig) -> dict[str, object]:
    """Which sufficient stability condition of SPEC 1.5 holds, with the numbers behind it.

    All bounds are for the distance ``delta = h - h'`` of two trajectories driven by the same
    input and the same noise (additive noise cancels in ``delta``; multiplicative noise
    ``sigma_mult diag(h) dB`` gives ``sigma_mult diag(delta) dB``):

    - deterministic or additive noise: ``||delta_t|| <= e^{mu t} ||delta_0||``;
    - scalar Brownian multiplicative noise: almost-sure exponent ``<= mu - sigma_mult^2 / 2``
      (stochastic stabilization), mean-square exponent ``<= 2 mu + sigma_mult^2``;
    - per-unit Brownian multiplicative noise (the library's Ito form, one Brownian motion per
      unit): almost-sure exponent ``<= mu + sigma_mult^2 (1/2 - 1/H)``, mean-square
      ``<= 2 mu + sigma_mult^2``;
    - reference form: a random step size, not a Brownian term: the deterministic statement with
      the (random, positive) step; no stochastic stabilization.

    Arguments:
        params: Lipschitz-cell parameters (concrete arrays; this is an eager report).
        cfg: the configuration (noise levels and form).

    Returns:
        A dict with ``mu``, ``lambda_max_sym_A``, ``norm_W``, ``eig_A``, ``eig_W`` (complex NumPy
        arrays), ``bounds`` (name -> exponent bound), ``holds`` (name -> bool: bound < 0),
        ``noise`` and ``verdict`` (sentences saying which condition holds and which noise the bound
        assumes).
    """
    cfg = _check_cfg(cfg, "stability_report")
    check_params(params, cfg)
    A, W = (np.asarray(m, dtype=np.float64) for m in recurrent_matrices(params, cfg))
    sym_eig = np.linalg.eigvalsh(0.5 * (A + A.T))
    lam_max = float(sym_eig[-1])
    norm_w = float(np.linalg.norm(W, 2))
    mu = cfg.alpha * (lam_max if cfg.alpha >= 0 else float(sym_eig[0])) + norm_w
    H, sm, sa = cfg.hidden_size, cfg.sigma_mult, cfg.sigma_add
    bounds: dict[str, float] = {"deterministic_or_additive": mu}
    if cfg.noise_form == "ito" and sm > 0:
        bounds["almost_sure_scalar_brownian"] = mu - sm**2 / 2
        bounds["almost_sure_per_unit_brownian"] = mu + sm**2 * (0.5 - 1.0 / H)
        bounds["mean_square"] = 2 * mu + sm**2
    holds = {name: bool(value < 0) for name, value in bounds.items()}

    if cfg.noise_form == "ito":
        noise = (
            f"Ito form: additive sigma_add={sa}, multiplicative sigma_mult={sm} with one "
            f"independent Brownian motion per unit (per-unit, H={H}); the scalar-Brownian bound "
            "is listed for comparison only, this model's noise is per-unit."
        )
    else:
        noise = (
            f"Reference form: additive kick sigma_add={sa} (cancels between trajectories) and a "
            f"random step factor m ~ U[{1 - sm}, 1) (sigma_mult={sm}); not a Brownian term, so "
            "only the deterministic contraction statement applies, with the random step."
        )
    if sm == 0 or cfg.noise_form == "reference":
        if mu < 0:
            verdict = (
                f"mu = {mu:.4g} < 0: the drift is contracting; any two trajectories with the same "
                "input (and the same additive noise) converge exponentially at rate mu."
            )
        else:
            verdict = (
                f"mu = {mu:.4g} >= 0: no contraction guarantee (the condition mu < 0 fails); "
                "estimate the top Lyapunov exponent instead (lyapunov_exponents)."
            )
    else:
        parts = [
            f"mu = {mu:.4g}"
            + (" < 0: contracting without noise;" if mu < 0 else " >= 0: not contracting;"),
            f"per-unit noise (this model): almost-sure bound mu + sigma_mult^2 (1/2 - 1/H) = "
            f"{bounds['almost_sure_per_unit_brownian']:.4g}"
            + (" < 0 holds;" if holds["almost_sure_per_unit_brownian"] else " >= 0, no guarantee;"),
            f"mean-square bound 2 mu + sigma_mult^2 = {bounds['mean_square']:.4g}"
            + (" < 0 holds;" if holds["mean_square"] else " >= 0, no guarantee;"),
            f"a scalar Brownian motion would give mu - sigma_mult^2/2 = "
            f"{bounds['almost_sure_scalar_brownian']:.4g}"
            + (
                " < 0 (stochastic stabilization)."
                if holds["almost_sure_scalar_brownian"]
                else " >= 0."
            ),
        ]
        verdict = " ".join(parts)
    return {
        "mu": mu,
        "lambda_max_sym_A": lam_max,
        "norm_W": norm_w,
        "eig_A": np.linalg.eigvals(A),
        "eig_W": np.linalg.eigvals(W),
        "bounds": bounds,
        "holds": holds,
        "noise": noise,
        "verdict": verdict,
    }


# ----------------------------------------------------------------------------------------------
# Lyapunov exponents


def lyapunov_exponents(
    params: Params,
    xs: Float[ArrayLike, "time input"],
    cfg: NoisyRNNConfig,
    *,
    k: int = 1,
    key: Key | None = None,
    brownian: str = "unit",
    burn_in: int = 0,
) -> Float[Array, " k"]:
    """Top-``k`` Lyapunov exponents per unit time along the path driven by one sequence.

    QR method: ``Q_0`` a fixed generic orthonormal ``H x k`` frame, ``Jhat_k Q_k = Q_{k+1} R_{k+1}``
    with ``Jhat_k = d step / d h (h_k)`` (``jax.jacfwd`` of the one-step map), and
    ``lambda_j = sum_{k >= burn_in} log |(R_k)_{jj}| / ((T - burn_in) dt)``, sorted in decreasing
    order (the first ``burn_in`` steps only align the frame; the estimate's bias is
    ``O(1 / ((T - burn_in) dt))``). With a key the
    step is the noisy one, so the Ito Jacobian includes the multiplicative-noise term
    ``sqrt(d) sigma_mult diag(xi_k)`` and the reference Jacobian the random step ``d m_k``.

    Arguments:
        params: Lipschitz-cell parameters.
        xs: one input sequence ``(time, input_size)``.
        cfg: the configuration.
        k: number of exponents (``1 <= k <= H``).
        key: PRNG key; ``None`` follows the noise-free path.
        brownian: ``"unit"`` (the library's noise: independent normals per unit) or ``"scalar"``
            (one normal per step shared by all units: a scalar Brownian motion, the setting of the
            stochastic-stabilization bound ``mu - sigma_mult^2 / 2``; for the reference form one
            step factor per step).
        burn_in: number of initial steps whose stretching is not counted (``0 <= burn_in < T``).

    Returns:
        The exponents ``(k,)``, largest first, per unit of time ``dt``.
    """
    fn = "lyapunov_exponents"
    cfg = _check_cfg(cfg, fn)
    check_params(params, cfg)
    xs = _check_xs(xs, cfg, fn, batched=False)
    H = cfg.hidden_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= H:
        raise ValueError(f"{fn}: k must be an int in [1, hidden_size={H}], got {k!r}.")
    if brownian not in _BROWNIAN:
        raise ValueError(f"{fn}: brownian must be one of {_BROWNIAN}, got {brownian!r}.")
    time = xs.shape[0]
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or not 0 <= burn_in < time:
        raise ValueError(
            f"{fn}: burn_in must be an int in [0, time={time}), got {burn_in!r}; pass a longer xs."
        )
    return _lyapunov_jit(params, xs, cfg, key, k, brownian, burn_in)


@partial(jax.jit, static_argnames=("cfg", "k", "brownian", "burn_in"))
def _lyapunov_jit(
    params: Params,
    xs: Array,
    cfg: NoisyRNNConfig,
    key: Key | None,
    k: int,
    brownian: str,
    burn_in: int,
) -> Array:
    H, time = cfg.hidden_size, xs.shape[0]
    dtype = jnp.result_type(xs.dtype, params["V"].dtype)
    width = H if brownian == "unit" else 1
    if key is not None and cfg.noisy:
        k_xi, k_u = jax.random.split(key)
        xi = jax.random.normal(k_xi, (time, width), dtype) if needs_xi(cfg) else None
        u = jax.random.uniform(k_u, (time, width), dtype) if needs_u(cfg) else None
        noisy_cfg = cfg
    else:
        xi = u = None
        noisy_cfg = cfg.replace(sigma_add=0.0, sigma_mult=0.0)
    xi = None if xi is None else jnp.broadcast_to(xi, (time, H))
    u = None if u is None else jnp.broadcast_to(u, (time, H))

    def one_step(h: Array, x: Array, xi_k: Array | None, u_k: Array | None) -> Array:
        return euler_maruyama_step(params, h, x, noisy_cfg, xi_k, u_k)

    q0, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(20210), (H, k), dtype))

    def body(carry: tuple[Array, Array, Array], inp: tuple) -> tuple:
        h, Q, acc = carry
        x, xi_k, u_k, counted = inp
        J = jax.jacfwd(one_step)(h, x, xi_k, u_k)
        Q_new, R = jnp.linalg.qr(J @ Q)
        acc = acc + counted * jnp.log(jnp.abs(jnp.diagonal(R)))
        return (one_step(h, x, xi_k, u_k), Q_new, acc), None

    counted = (jnp.arange(time) >= burn_in).astype(dtype)
    h0 = jnp.zeros((H,), dtype)
    carry0 = (h0, q0, jnp.zeros((k,), dtype))
    (_, _, acc), _ = jax.lax.scan(body, carry0, (xs.astype(dtype), xi, u, counted))
    return jnp.sort(acc / ((time - burn_in) * cfg.dt))[::-1]


# ----------------------------------------------------------------------------------------------
# margin (SPEC 1.6)


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
