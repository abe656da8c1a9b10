"""The integrator: the ``lax.scan`` over time of the one update of ``noisy_dyn._step``.

Method (``docs/noisy_rnn.md``), with ``d = dt`` or the learned per-unit step ``params["step"]``:

- Ito form, Euler-Maruyama (strong order 1/2, weak order 1), Ito interpretation::

      h_{k+1} = h_k + d f(h_k, x_k) + sqrt(d) (sigma_add + sigma_mult h_k) * xi_k

- reference form::

      h_{k+1} = h_k + (d * m_k) * f(h_k, x_k) + sigma_add xi_k,  m_k ~ U[1 - sigma_mult, 1)

- no key and no noise (inference): ``h_{k+1} = h_k + d f(h_k, x_k)``, exactly.

``h_0 = 0``, ``x_k`` enters the step that produces ``h_{k+1}``, logits ``V h_L + c`` of each
row's own last state (``L`` = its length; without ``lengths`` every row has ``T`` steps).

Two paths run the same update (``noisy_dyn._step.advance``) with the same noise draws
(``noisy_dyn._noise.draw_step``) and the same chunking plan (``noisy_dyn._fused.chunk_plan``):

- the final state (``apply``, ``final_state``, hence training) of the Lipschitz cell goes through
  the fused kernel ``noisy_dyn._fused``: one ``h [W^T | alpha A^T]`` matmul a step and a
  hand-written backward pass, for both noise forms and a learned step. Its derivative is reverse
  mode (``jax.custom_vjp``): ``jax.grad``, ``jax.vjp``, ``jax.hessian`` and ``jax.jvp`` of a
  gradient work; ``jax.jacfwd``/``jax.jvp`` of the final state itself do not (use
  :func:`trajectory`, always the plain scan, or ``jax.jacrev``);
- :func:`trajectory` and the gated baselines run a plain ``lax.scan`` (all derivatives).

``cfg.remat = N`` checkpoints chunks of ``N`` steps (the time axis padded to a multiple of ``N``
with masked steps), trading a second forward pass for storing only every ``N``-th state.

Shared within the package: :func:`check_lengths` (the theory and the attacks check their
``lengths`` with it).
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Int

from trainkit.internal import takes_sequences

from ._config import NoisyRNNConfig
from ._fused import Noise, Weights, chunk_plan, fused_final_state
from ._noise import NoiseSample, Uses, draw_steps, uses
from ._params import check_params
from ._step import advance, coefficients, drift_matrix, euler_maruyama_step
from ._types import Hidden, Inputs, Key, Logits, Params, StepNormals, Trajectory

__all__ = ["apply", "euler_maruyama_step", "final_state", "trajectory"]

Lengths = Int[ArrayLike, " batch"]

# --------------------------------------------------------------------------------------------
# the plain scan (trajectory, gated cells)


def _masked(step: Callable, lengths: ArrayLike | None) -> Callable:
    """``step`` on ``(k, inputs_k)``; rows with ``k >= lengths`` keep their carry."""

    def body(carry, inp):
        k, x = inp
        new = step(carry, x)
        if lengths is None:
            return new
        valid = (k < lengths)[:, None]
        return jax.tree_util.tree_map(lambda n, o: jnp.where(valid, n, o), new, carry)

    return body


def _scan_time(step, carry, inputs, lengths, remat, out, prepare):
    """``lax.scan`` of ``carry, prepared_k -> carry`` over the time-major ``inputs``, emitting
    ``out(carry)`` per step when given. ``prepare(ks, block)`` maps a block of raw inputs to the
    per-step inputs (the input projection and the noise of the block, in bulk). With ``remat``
    the time axis follows :func:`~noisy_dyn._fused.chunk_plan`: padded to a multiple of the
    chunk with masked steps, one checkpointed inner scan per chunk."""
    T = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    chunk, pad = chunk_plan(T, remat) if remat is not None else (T, 0)
    if pad:
        inputs = jax.tree_util.tree_map(
            lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)), inputs
        )
        B = jax.tree_util.tree_leaves(carry)[0].shape[0]
        lengths = jnp.full((B,), T, jnp.int32) if lengths is None else jnp.minimum(lengths, T)
    body = _masked(step, lengths)

    def emit(c, inp):
        c = body(c, inp)
        return c, (out(c) if out is not None else None)

    def block(c, blk):
        ks, raw = blk
        return lax.scan(emit, c, (ks, prepare(ks, raw)))

    ks = jnp.arange(T + pad, dtype=jnp.int32)
    if remat is None:
        return block(carry, (ks, inputs))
    grouped = jax.tree_util.tree_map(lambda a: a.reshape(-1, chunk, *a.shape[1:]), (ks, inputs))
    carry, ys = lax.scan(jax.checkpoint(block, prevent_cse=False), carry, grouped)
    if ys is not None:
        ys = ys.reshape(-1, *ys.shape[2:])[:T]
    return carry, ys


# --------------------------------------------------------------------------------------------
# the Lipschitz cell on either path


def _noise_inputs(draws: Uses, key, noise: NoiseSample | None, dtype) -> Noise:
    """The time-major :class:`~noisy_dyn._fused.Noise` of the call (``draws``: what the
    configured noise uses)."""
    if noise is not None:
        tm = lambda a, need: None if a is None or not need else jnp.swapaxes(a.astype(dtype), 0, 1)  # noqa: E731
        return Noise(tm(noise.xi, draws.xi), tm(noise.u, draws.u))
    if key is not None and (draws.xi or draws.u):
        return Noise(key=key)
    return Noise()


def _lipschitz(params, xs_tm, cfg, key, noise, lengths, draws, collect):
    dtype = xs_tm.dtype
    coef = coefficients(params, cfg, dtype)
    K = drift_matrix(params, cfg)
    U, b = params["U"].astype(dtype), params["b"].astype(dtype)
    given = _noise_inputs(draws, key, noise, dtype)
    need = draws if given.key is not None else Uses(given.xi is not None, given.u is not None)
    B = xs_tm.shape[1]
    h0 = jnp.zeros((B, cfg.hidden_size), dtype)
    if not collect:
        w = Weights(K.astype(dtype), U, b)
        return fused_final_state(
            w, coef, xs_tm, h0, given, lengths, uses=need, remat=cfg.remat
        ), None

    def prepare(ks, raw):
        x, xi, u = raw
        if given.key is not None:
            xi, u = draw_steps(given.key, ks, (B, cfg.hidden_size), dtype, need)
        return x @ U.T + b, xi, u

    def step(h, inp):
        drive, xi, u = inp
        return advance(h, h @ K, drive, coef, xi, u, None)[0]

    inputs = (xs_tm, given.xi, given.u)
    return _scan_time(step, h0, inputs, lengths, cfg.remat, lambda h: h, prepare)


def _run(params, xs, cfg, key, noise, lengths, draws, collect):
    """Final hidden state ``(B, H)`` and, when ``collect``, the states ``h_1..h_T`` time-major."""
    dtype = jnp.result_type(xs, *jax.tree_util.tree_leaves(params))
    xs_tm = jnp.swapaxes(xs.astype(dtype), 0, 1)  # (T, B, in)
    if cfg.cell.fused:
        return _lipschitz(params, xs_tm, cfg, key, noise, lengths, draws, collect)
    carry0, project, step, hidden_of = cfg.cell.scan_parts(
        params, cfg, batch=xs_tm.shape[1], dtype=dtype
    )
    out = hidden_of if collect else None
    carry, hs = _scan_time(
        step, carry0, xs_tm, lengths, cfg.remat, out, lambda ks, raw: project(raw)
    )
    return hidden_of(carry), hs


# ``cfg`` is a pytree argument (its numbers traced, its structure in the cache key); ``draws``
# (which noise the configured levels use, decided from the concrete values) is static.


@partial(jax.jit, static_argnames=("draws",))
def _apply_jit(params, xs, cfg, key, noise, lengths, draws):
    hT, _ = _run(params, xs, cfg, key, noise, lengths, draws, collect=False)
    return hT @ params["V"].T + params["c"]


@partial(jax.jit, static_argnames=("draws",))
def _trajectory_jit(params, xs, cfg, key, noise, lengths, draws):
    hT, hs = _run(params, xs, cfg, key, noise, lengths, draws, collect=True)
    h0 = jnp.zeros_like(hT)[None]
    return jnp.swapaxes(jnp.concatenate([h0, hs], axis=0), 0, 1)


@partial(jax.jit, static_argnames=("draws",))
def _final_jit(params, xs, cfg, key, noise, lengths, draws):
    return _run(params, xs, cfg, key, noise, lengths, draws, collect=False)[0]


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
    if not isinstance(xs, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(xs))):
        bad = int(np.sum(~np.isfinite(np.asarray(xs))))  # concrete only: a tracer has no values
        raise ValueError(
            f"xs holds {bad} NaN or infinite values; clean or impute them first (under jit "
            "inputs are not checked: NaN inputs give NaN logits)."
        )
    if key is not None and noise is not None:
        raise ValueError("Pass either key (sample the noise) or noise (pre-sampled), not both.")
    if key is not None:
        _check_key(key)
    if noise is None:
        return xs, None
    if not cfg.cell.noisy:
        raise ValueError(
            f"noise= is not used by cell={cfg.cell.name!r} (a deterministic baseline)."
        )
    if isinstance(noise, tuple):
        if len(noise) not in (1, 2):
            raise ValueError("noise must be an xi array, or a NoiseSample / (xi, u) tuple.")
        sample = NoiseSample(*noise)
    else:
        sample = NoiseSample(noise, None)
    B, T, H = xs.shape[0], xs.shape[1], cfg.hidden_size
    checked = []
    draws = uses(cfg)
    for name, value, needed in (("xi", sample.xi, draws.xi), ("u", sample.u, draws.u)):
        if value is None:
            if needed:
                raise ValueError(
                    f"noise.{name} is None but cfg (noise_form={cfg.noise_form.name!r}, sigma_add="
                    f"{cfg.sigma_add}, sigma_mult={cfg.sigma_mult}) needs it; build the noise with "
                    "noisy_dyn.random.sample_noise(key, cfg, batch=..., time=...)."
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


def check_lengths(lengths: object, B: int, T: int) -> Array | None:
    """``lengths`` as an int32 ``(B,)`` array; values checked in ``[1, T]`` when concrete."""
    if lengths is None:
        return None
    dtype = getattr(lengths, "dtype", None) or np.asarray(lengths).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"lengths must hold integer step counts (valid steps per row), got dtype {dtype}."
        )
    shape = tuple(getattr(lengths, "shape", np.shape(lengths)))
    if shape != (B,):
        raise ValueError(f"lengths must have shape (batch,) = ({B},), got {shape}.")
    try:
        concrete = np.asarray(lengths)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None
    if concrete is not None and concrete.size and (concrete.min() < 1 or concrete.max() > T):
        raise ValueError(
            f"lengths must lie in [1, {T}] (at least one step, at most the padded length), got "
            f"values in [{concrete.min()}, {concrete.max()}]."
        )
    return jnp.asarray(lengths, jnp.int32)


def _prepare(params, xs, cfg, key, noise, lengths):
    xs, noise = _check_inputs(params, xs, cfg, key, noise)
    lengths = check_lengths(lengths, xs.shape[0], xs.shape[1])
    return xs, noise, lengths, uses(cfg)


# --------------------------------------------------------------------------------------------
# public

_CALL_ARGS = """
    Arguments:
        params: from :func:`init_params` for ``cfg``.
        xs: ``(batch, time, input_size)`` real floating inputs, or a :class:`trainkit.Sequences`
            (its inputs and lengths; the labels are not used).
        cfg: the configuration, a pytree: its numbers may be traced, e.g.
            ``jax.vmap(lambda c: apply(params, xs, c))(stack_configs(cfgs))`` runs every config
            in one compiled program.
        key: PRNG key turning the training noise on.
        noise: pre-sampled noise: an ``xi`` array ``(batch, time, hidden)`` of standard normals, or
            a :class:`~noisy_dyn.NoiseSample` / ``(xi, u)`` with reference-form uniforms ``u``.
        lengths: ``(batch,)`` integers in ``[1, time]``: the valid steps of each row, padding
            after them. A row's steps past its length leave its state unchanged, so the result
            is each row's own last state, as if run unpadded. ``None``: all rows have ``time``.
"""


@takes_sequences(labels=False)
def apply(
    params: Params,
    xs: Inputs,
    cfg: NoisyRNNConfig,
    *,
    key: Key | None = None,
    noise: NoiseSample | tuple | StepNormals | None = None,
    lengths: Lengths | None = None,
) -> Logits:
    """Logits of a batch of sequences: ``V h_L + c`` after each row's ``L`` steps from ``h_0 = 0``.

    Without ``key`` and ``noise`` this is inference, the deterministic Euler recursion
    ``h_{k+1} = h_k + d f(h_k, x_k)`` (``d = dt``, or ``params["step"]`` with ``learn_step``).
    With a ``key`` the noise of ``cfg`` is drawn (independent across batch, units and steps;
    none if both sigmas are 0), with ``noise`` the given draws are used (see
    :class:`~noisy_dyn.NoiseSample`). LSTM/GRU cells are deterministic and ignore ``key``.
    {args}
    Returns:
        ``(batch, num_classes)`` logits in the promoted dtype of ``params`` and ``xs``.

    Examples:
        >>> import jax, jax.numpy as jnp, noisy_dyn as nd
        >>> cfg = nd.NoisyRNNConfig(input_size=1, hidden_size=8, num_classes=3, sigma_add=0.1)
        >>> params = nd.init_params(jax.random.key(0), cfg)
        >>> xs = jnp.ones((4, 20, 1))  # 4 series of 20 steps, 1 feature
        >>> nd.apply(params, xs, cfg).shape  # deterministic inference
        (4, 3)
        >>> noisy = nd.apply(params, xs, cfg, key=jax.random.key(1))  # the training-time noise
        >>> bool(jnp.all(noisy == nd.apply(params, xs, cfg)))
        False
    """
    xs, noise, lengths, draws = _prepare(params, xs, cfg, key, noise, lengths)
    return _apply_jit(params, xs, cfg, key, noise, lengths, draws)


@takes_sequences(labels=False)
def trajectory(
    params: Params,
    xs: Inputs,
    cfg: NoisyRNNConfig,
    *,
    key: Key | None = None,
    noise: NoiseSample | tuple | StepNormals | None = None,
    lengths: Lengths | None = None,
) -> Trajectory:
    """All hidden states ``h_0 = 0, h_1, ..., h_T`` of the recursion that :func:`apply` runs.

    Same arguments and noise semantics as :func:`apply` (same key, same draws). With
    ``lengths``, a row's states after its length repeat its last state ``h_L``. The plain
    ``lax.scan`` of the same update: every JAX derivative works through it.

    Returns:
        ``(batch, time + 1, hidden)`` states.
    """
    xs, noise, lengths, draws = _prepare(params, xs, cfg, key, noise, lengths)
    return _trajectory_jit(params, xs, cfg, key, noise, lengths, draws)


@takes_sequences(labels=False)
def final_state(
    params: Params,
    xs: Inputs,
    cfg: NoisyRNNConfig,
    *,
    key: Key | None = None,
    noise: NoiseSample | tuple | StepNormals | None = None,
    lengths: Lengths | None = None,
) -> Hidden:
    """The last hidden state ``h_L`` ``(batch, hidden)`` of each row (what :func:`apply` reads
    out), through the fused kernel; same arguments as :func:`apply`."""
    xs, noise, lengths, draws = _prepare(params, xs, cfg, key, noise, lengths)
    return _final_jit(params, xs, cfg, key, noise, lengths, draws)


apply.__doc__ = apply.__doc__.replace("    {args}", _CALL_ARGS.rstrip())
