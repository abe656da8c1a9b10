"""The integrator: one step of the Noisy RNN and the ``lax.scan`` over time.

Method (SPEC 1.2), with ``d = dt`` or the learned per-unit step ``params["step"]``:

- Ito form, Euler-Maruyama (strong order 1/2, weak order 1), Ito interpretation::

      h_{k+1} = h_k + d f(h_k, x_k) + sqrt(d) (sigma_add + sigma_mult h_k) * xi_k

- reference form::

      h_{k+1} = h_k + (d * m_k) * f(h_k, x_k) + sigma_add xi_k,  m_k ~ U[1 - sigma_mult, 1)

- no key and no noise (inference): ``h_{k+1} = h_k + d f(h_k, x_k)``, exactly.

``h_0 = 0``, ``x_k`` enters the step that produces ``h_{k+1}``, logits ``V h_T + c``.

Cost: the input projection ``U x_k + b`` of all steps is one matmul before the scan; per step
there is one fused ``h [W^T | A^T]`` matmul plus elementwise work; each step draws its own noise
from ``fold_in(key, k)`` (measured faster on CPU than one draw of all steps before the scan); the
read-out is outside the scan. ``cfg.remat = N`` checkpoints chunks of ``N`` steps (a nested
scan), trading a second forward pass for storing only every ``N``-th state.

Fast path: the final state of the Ito form with a fixed step (``noise_form="ito"``,
``learn_step=False``; the noise-free recursion included), i.e. ``apply`` and ``final_state`` and
hence training, runs through ``noisy_dyn._fused.ito_final_state``: the same recursion with the
same noise draws, one fused ``h [I + dt alpha A^T | W^T]`` matmul per step and a hand-written
backward pass (a reverse scan with one fused matmul per step, the weight gradients contracted
per chunk of steps at the dense-matmul rate; with ``remat`` the noise of a chunk is drawn again
instead of stored). Equal to the plain scan up to floating-point reassociation. Its gradient is
reverse-mode only (``jax.custom_vjp``): for forward-mode derivatives (``jax.jvp``,
``jax.jacfwd``, Hessians) of the final state, scan :func:`euler_maruyama_step` yourself, or use
:func:`trajectory` (always the plain scan).
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike

from ._baselines import gated_scan_parts
from ._cell import check_params, recurrent_matrices
from ._config import NoisyRNNConfig
from ._fused import ito_final_state
from ._noise import NoiseSample, needs_u, needs_xi, step_factor, step_noise
from ._types import Hidden, Input, Key, Logits, Params, Sequences, Trajectory

# --------------------------------------------------------------------------------------------
# one step


def _lipschitz_update(
    h: Array,
    pre: Array,
    lin: Array | None,
    d: Array | float,
    sqrt_d: Array | float,
    xi: Array | None,
    u: Array | None,
    cfg: NoisyRNNConfig,
) -> Array:
    """``h_{k+1}`` from ``pre = W h + U x + b`` and ``lin = A h`` (``None`` when alpha = 0)."""
    f = jnp.tanh(pre)
    if lin is not None:
        f = f + cfg.alpha * lin
    if cfg.noise_form == "reference":
        step = d if u is None or cfg.sigma_mult == 0.0 else d * step_factor(u, cfg)
        h_new = h + step * f
        if xi is not None and cfg.sigma_add != 0.0:
            h_new = h_new + cfg.sigma_add * xi
        return h_new
    h_new = h + d * f
    if xi is not None and (cfg.sigma_add != 0.0 or cfg.sigma_mult != 0.0):
        if cfg.sigma_mult == 0.0:
            diffusion = cfg.sigma_add
        else:
            diffusion = cfg.sigma_add + cfg.sigma_mult * h
        h_new = h_new + sqrt_d * diffusion * xi
    return h_new


def _step_size(params: Params, cfg: NoisyRNNConfig) -> tuple[Array | float, Array | float]:
    """``(d, sqrt(|d|))``: the learned per-unit step, or ``dt``."""
    if cfg.learn_step:
        d = params["step"]
        return d, jnp.sqrt(jnp.abs(d))
    return cfg.dt, cfg.dt**0.5


@partial(jax.jit, static_argnames="cfg")
def euler_maruyama_step(
    params: Params,
    h: Hidden,
    x: Input,
    cfg: NoisyRNNConfig,
    xi: Hidden | None = None,
    u: Hidden | None = None,
) -> Hidden:
    """One step of the Noisy RNN, ``h_k -> h_{k+1}`` (the scheme in the module docstring).

    Pure and usable on its own (e.g. under ``jax.jacfwd`` for step Jacobians). Leading batch axes
    are allowed on ``h, x, xi, u``.

    Arguments:
        params: Lipschitz-cell parameters.
        h: state ``h_k``, ``(H,)``.
        x: input ``x_k``, ``(input_size,)``.
        cfg: configuration (noise form and levels, ``dt``/``learn_step``).
        xi: standard normals ``(H,)``; ``None`` means no Brownian/additive noise.
        u: reference form only: uniforms on ``[0, 1)`` giving the step factor
            ``m = 1 - sigma_mult + sigma_mult u``; ``None`` means ``m = 1``.

    Returns:
        ``h_{k+1}``, same shape as ``h``.
    """
    if cfg.cell != "lipschitz":
        raise ValueError(
            "euler_maruyama_step is the Lipschitz-cell step; for cell="
            f"{cfg.cell!r} use noisy_dyn._baselines.lstm_step / gru_step."
        )
    A, W = recurrent_matrices(params, cfg)
    pre = h @ W.T + x @ params["U"].T + params["b"]
    lin = h @ A.T if cfg.alpha != 0.0 else None
    d, sqrt_d = _step_size(params, cfg)
    return _lipschitz_update(h, pre, lin, d, sqrt_d, xi, u, cfg)


# --------------------------------------------------------------------------------------------
# the scan


def _scan(
    step: Callable,
    carry: object,
    inputs: object,
    length: int,
    remat: int | None,
    out: Callable | None,
    prepare: Callable,
) -> tuple[object, Array | None]:
    """``lax.scan`` of ``carry, input_k -> carry`` emitting ``out(carry)`` per step when given.

    ``prepare`` maps a time-major block of raw inputs to the per-step scan inputs (the input
    projection, one matmul per block). Without remat the block is the whole sequence. With
    ``remat = N`` the steps are grouped in chunks of ``N`` (an outer scan over chunks, an inner
    scan inside ``jax.checkpoint``), plus a remainder chunk when ``N`` does not divide the length;
    each chunk prepares its own inputs, so the backward pass stores only the chunk-boundary states
    (not the per-step residuals, nor the projected inputs of all steps).
    """

    def body(c, x):
        c = step(c, x)
        return c, (out(c) if out is not None else None)

    if remat is None:
        return lax.scan(body, carry, prepare(inputs), length=length)

    def chunk(c, xs_chunk):
        return lax.scan(body, c, prepare(xs_chunk))

    chunk = jax.checkpoint(chunk, prevent_cse=False)
    n_chunks, rest = divmod(length, remat)
    ys_parts = []
    if n_chunks > 0:
        head = jax.tree_util.tree_map(
            lambda a: a[: n_chunks * remat].reshape(n_chunks, remat, *a.shape[1:]), inputs
        )
        carry, ys = lax.scan(chunk, carry, head, length=n_chunks)
        if ys is not None:
            ys_parts.append(ys.reshape(n_chunks * remat, *ys.shape[2:]))
    if rest > 0:
        tail = jax.tree_util.tree_map(lambda a: a[n_chunks * remat :], inputs)
        carry, ys = chunk(carry, tail)
        if ys is not None:
            ys_parts.append(ys)
    if out is None:
        return carry, None
    return carry, ys_parts[0] if len(ys_parts) == 1 else jnp.concatenate(ys_parts, axis=0)


def _time_major(a: Array | None) -> Array | None:
    return None if a is None else jnp.swapaxes(a, 0, 1)


def _run(
    params: Params,
    xs: Array,
    cfg: NoisyRNNConfig,
    key: Key | None,
    noise: NoiseSample | None,
    collect: bool,
) -> tuple[Array, Array | None]:
    """Final hidden state ``(B, H)`` and, when ``collect``, the states ``h_1..h_T`` time-major."""
    dtype = jnp.result_type(xs, *jax.tree_util.tree_leaves(params))
    xs_tm = jnp.swapaxes(xs.astype(dtype), 0, 1)  # (T, B, in)
    T, B = xs_tm.shape[0], xs_tm.shape[1]
    if cfg.cell != "lipschitz":
        carry0, project, step, hidden_of = gated_scan_parts(params, cfg, batch=B, dtype=dtype)
        out = hidden_of if collect else None
        carry, hs = _scan(step, carry0, xs_tm, T, cfg.remat, out, project)
        return hidden_of(carry), hs

    if cfg.noise_form == "ito" and not cfg.learn_step and not collect:
        return _run_fused(params, xs_tm, cfg, key, noise, dtype), None

    H = cfg.hidden_size
    A, W = recurrent_matrices(params, cfg)
    use_lin = cfg.alpha != 0.0
    K = jnp.concatenate([W.T, A.T], axis=1) if use_lin else W.T  # (H, 2H) or (H, H)
    U_t, b = params["U"].T, params["b"]

    def project(inputs):  # U x_k + b of a block of steps in one matmul: (steps, B, H)
        return (inputs[0] @ U_t + b, *inputs[1:])

    d, sqrt_d = _step_size(params, cfg)

    def update(h, ux_k, xi_k, u_k):
        z = h @ K
        pre, lin = (z[:, :H] + ux_k, z[:, H:]) if use_lin else (z + ux_k, None)
        return _lipschitz_update(h, pre, lin, d, sqrt_d, xi_k, u_k, cfg)

    if noise is not None:  # pre-sampled draws, time-major
        xi = None if noise.xi is None or not needs_xi(cfg) else noise.xi.astype(dtype)
        u = None if noise.u is None or not needs_u(cfg) else noise.u.astype(dtype)
        inputs = (xs_tm, _time_major(xi), _time_major(u))
        step = lambda h, inp: update(h, *inp)  # noqa: E731
    elif key is not None and cfg.noisy:  # draw each step's noise from fold_in(key, k)
        inputs = (xs_tm, jnp.arange(T))

        def step(h, inp):
            ux_k, k = inp
            return update(h, ux_k, *step_noise(key, k, cfg, batch=B, dtype=dtype))

    else:  # inference: the deterministic Euler recursion
        inputs = (xs_tm,)
        step = lambda h, inp: update(h, inp[0], None, None)  # noqa: E731

    h0 = jnp.zeros((B, H), dtype=dtype)
    out = (lambda h: h) if collect else None
    hT, hs = _scan(step, h0, inputs, T, cfg.remat, out, project)
    return hT, hs


def _draw_xi(key: Key, k: Array, shape: tuple[int, ...], dtype, *, cfg: NoisyRNNConfig) -> Array:
    """``xi_k`` exactly as the plain scan draws it (``step_noise``), for the fused kernel."""
    return step_noise(key, k, cfg, batch=shape[0], dtype=dtype)[0]


def _run_fused(
    params: Params,
    xs_tm: Array,
    cfg: NoisyRNNConfig,
    key: Key | None,
    noise: NoiseSample | None,
    dtype: jnp.dtype,
) -> Array:
    """``h_T`` of the Ito form with fixed ``dt`` through the fused kernel (same draws)."""
    A, W = recurrent_matrices(params, cfg)
    h0 = jnp.zeros((xs_tm.shape[1], cfg.hidden_size), dtype=dtype)
    kw: dict = {}
    if noise is not None:
        if noise.xi is not None and needs_xi(cfg):
            kw["xi"] = _time_major(noise.xi.astype(dtype))
    elif key is not None and cfg.noisy and needs_xi(cfg):
        kw["key"] = key
        kw["draw"] = partial(_draw_xi, cfg=cfg)
    return ito_final_state(
        A,
        W,
        params["U"],
        params["b"],
        xs_tm,
        h0,
        dt=cfg.dt,
        alpha=cfg.alpha,
        sigma_add=cfg.sigma_add,
        sigma_mult=cfg.sigma_mult,
        remat=cfg.remat,
        **kw,
    )


@partial(jax.jit, static_argnames=("cfg",))
def _apply_jit(params, xs, cfg, key, noise):
    hT, _ = _run(params, xs, cfg, key, noise, collect=False)
    return hT @ params["V"].T + params["c"]


@partial(jax.jit, static_argnames=("cfg",))
def _trajectory_jit(params, xs, cfg, key, noise):
    hT, hs = _run(params, xs, cfg, key, noise, collect=True)
    h0 = jnp.zeros_like(hT)[None]
    return jnp.swapaxes(jnp.concatenate([h0, hs], axis=0), 0, 1)


# --------------------------------------------------------------------------------------------
# validation (eager: shapes and dtypes are known even for tracers)


def _check_key(key: object) -> None:
    dtype = getattr(key, "dtype", None)
    if dtype is None:
        raise TypeError(
            f"key must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}."
        )
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"key must be a single PRNG key, got a key array of shape {key.shape}; "
                "split it outside and pass one key (noise is independent across the batch)."
            )
        return
    if dtype == jnp.uint32 and key.shape == (2,):
        return
    raise TypeError(
        f"key must be a JAX PRNG key (jax.random.key(seed)), got an array of dtype {dtype} "
        f"and shape {getattr(key, 'shape', None)}."
    )


def _as_float_array(name: str, value: object) -> Array:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        value = jnp.asarray(value)
        dtype = value.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real floating, got complex dtype {dtype}.")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name} must be a floating array, got dtype {dtype}; convert it first, "
            f"e.g. {name}.astype(jnp.float32)."
        )
    return value if isinstance(value, jax.Array) else jnp.asarray(value)


def _check_inputs(params: object, xs: object, cfg: object, key: object, noise: object):
    if not isinstance(cfg, NoisyRNNConfig):
        raise TypeError(f"cfg must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    check_params(params, cfg)
    xs = _as_float_array("xs", xs)
    if xs.ndim != 3:
        hint = " Add a batch axis: xs[None]." if xs.ndim == 2 else ""
        raise ValueError(
            f"xs must have shape (batch, time, input_size={cfg.input_size}), got shape "
            f"{xs.shape} (rank {xs.ndim}).{hint}"
        )
    if xs.shape[1] < 1:
        raise ValueError(f"xs must have at least one time step, got shape {xs.shape}.")
    if xs.shape[2] != cfg.input_size:
        raise ValueError(
            f"xs has {xs.shape[2]} features per step (last axis) but cfg.input_size is "
            f"{cfg.input_size}."
        )
    if key is not None and noise is not None:
        raise ValueError("Pass either key (sample the noise) or noise (pre-sampled), not both.")
    if key is not None:
        _check_key(key)
    if noise is None:
        return xs, None
    if cfg.cell != "lipschitz":
        raise ValueError(f"noise= is not used by cell={cfg.cell!r} (a deterministic baseline).")
    if isinstance(noise, tuple):
        if len(noise) not in (1, 2):
            raise ValueError("noise must be an xi array, or a NoiseSample / (xi, u) tuple.")
        sample = NoiseSample(*noise)
    else:
        sample = NoiseSample(noise, None)
    B, T, H = xs.shape[0], xs.shape[1], cfg.hidden_size
    checked = []
    for name, value, needed in (("xi", sample.xi, needs_xi(cfg)), ("u", sample.u, needs_u(cfg))):
        if value is None:
            if needed:
                raise ValueError(
                    f"noise.{name} is None but cfg (noise_form={cfg.noise_form!r}, sigma_add="
                    f"{cfg.sigma_add}, sigma_mult={cfg.sigma_mult}) needs it; build the noise with "
                    "noisy_dyn.sample_noise(key, cfg, batch=..., time=...)."
                )
            checked.append(None)
            continue
        value = _as_float_array(f"noise.{name}", value)
        if value.shape != (B, T, H):
            raise ValueError(
                f"noise.{name} must have shape (batch, time, hidden) = {(B, T, H)}, got "
                f"{value.shape}."
            )
        checked.append(value)
    return xs, NoiseSample(*checked)


# --------------------------------------------------------------------------------------------
# public


def apply(
    params: Params,
    xs: Sequences,
    cfg: NoisyRNNConfig,
    *,
    key: Key | None = None,
    noise: NoiseSample | ArrayLike | None = None,
) -> Logits:
    """Logits of a batch of sequences: ``V h_T + c`` after ``T`` steps from ``h_0 = 0``.

    Without ``key`` and ``noise`` this is inference, the deterministic Euler recursion
    ``h_{k+1} = h_k + d f(h_k, x_k)`` (``d = dt``, or ``params["step"]`` with ``learn_step``).
    With a ``key`` the noise of ``cfg`` is drawn (independent across batch, units and steps;
    none if both sigmas are 0), with ``noise`` the given draws are used (see
    :class:`~noisy_dyn.NoiseSample`). LSTM/GRU cells are deterministic and ignore ``key``.

    Arguments:
        params: from :func:`init_params` for ``cfg``.
        xs: ``(batch, time, input_size)`` real floating inputs.
        cfg: the configuration (a static argument under ``jax.jit``).
        key: PRNG key turning the training noise on.
        noise: pre-sampled noise: an ``xi`` array ``(batch, time, hidden)`` of standard normals, or
            a :class:`~noisy_dyn.NoiseSample` / ``(xi, u)`` with reference-form uniforms ``u``.

    Returns:
        ``(batch, num_classes)`` logits in the promoted dtype of ``params`` and ``xs``.
    """
    xs, noise = _check_inputs(params, xs, cfg, key, noise)
    return _apply_jit(params, xs, cfg, key, noise)


def trajectory(
    params: Params,
    xs: Sequences,
    cfg: NoisyRNNConfig,
    *,
    key: Key | None = None,
    noise: NoiseSample | ArrayLike | None = None,
) -> Trajectory:
    """All hidden states ``h_0 = 0, h_1, ..., h_T`` of the recursion that :func:`apply` runs.

    Same arguments and noise semantics as :func:`apply` (same key, same draws).

    Returns:
        ``(batch, time + 1, hidden)`` states.
    """
    xs, noise = _check_inputs(params, xs, cfg, key, noise)
    return _trajectory_jit(params, xs, cfg, key, noise)


def final_state(
    params: Params,
    xs: Sequences,
    cfg: NoisyRNNConfig,
    *,
    key: Key | None = None,
    noise: NoiseSample | ArrayLike | None = None,
) -> Hidden:
    """The last hidden state ``h_T`` ``(batch, hidden)`` (what :func:`apply` reads out)."""
    xs, noise = _check_inputs(params, xs, cfg, key, noise)
    return _final_jit(params, xs, cfg, key, noise)


@partial(jax.jit, static_argnames=("cfg",))
def _final_jit(params, xs, cfg, key, noise):
    return _run(params, xs, cfg, key, noise, collect=False)[0]
