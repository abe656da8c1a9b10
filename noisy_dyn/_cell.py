"""The Lipschitz RNN unit (the paper's section 2; ``docs/noisy_rnn.md``): the cell objects'
interface (:class:`Cell`), the Lipschitz cell (:class:`LipschitzCell`), its structured matrices
and its drift. The gated baselines are ``noisy_dyn._baselines``.

Shared within the package: :func:`init_readout` and :func:`uniform_init` (the gated cells'
initialisation uses them too).

Column-vector maths, row-batched code: ``A h`` for a batch of states ``h`` of shape
``(..., H)`` is computed as ``h @ A.T``.
"""

import abc
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, ArrayLike, Float

from trainkit.internal import FloatScalar

from ._noise import may_be_nonzero
from ._types import Hidden, Input, Key, Matrix, Params

if TYPE_CHECKING:
    from ._config import NoisyRNNConfig


def uniform_init(key: Key, shape: tuple[int, ...], bound: float, dtype: DTypeLike) -> Array:
    """Entries uniform in ``[-bound, bound)``."""
    return jax.random.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)


def init_readout(key: Key, cfg: "NoisyRNNConfig", dtype: DTypeLike) -> Params:
    """Read-out ``V (C, H), c (C,)`` with PyTorch ``nn.Linear``'s default U(+-1/sqrt(H))."""
    kv, kc = jax.random.split(key)
    bound = 1.0 / math.sqrt(cfg.hidden_size)
    return {
        "V": uniform_init(kv, (cfg.num_classes, cfg.hidden_size), bound, dtype),
        "c": uniform_init(kc, (cfg.num_classes,), bound, dtype),
    }


@dataclass(frozen=True)
class Cell(abc.ABC):
    """A recurrent cell: its parameters (shapes, initialisation) and what it supports.

    Attributes:
        name: the name presets, model files and the command line use.
        noisy: whether noise injection and a learned step are defined for it.
        fused: whether its final state runs through the fused kernel (``noisy_dyn._fused``).
    """

    name: ClassVar[str]
    noisy: ClassVar[bool]
    fused: ClassVar[bool]
    stepped: ClassVar[bool]
    """Whether the cell is a discretised ODE whose step is ``dt`` (the Lipschitz cell)."""

    @abc.abstractmethod
    def shapes(self, cfg: "NoisyRNNConfig") -> dict[str, tuple[int, ...]]:
        """Keys and shapes of the cell's parameters, read-out excluded."""

    @abc.abstractmethod
    def init(self, key: Key, cfg: "NoisyRNNConfig", dtype: DTypeLike) -> Params:
        """Initial parameters, read-out included."""

    def check(self, cfg: "NoisyRNNConfig") -> None:  # noqa: B027 - a hook: nothing to refuse by default
        """Raise a ``ValueError`` when ``cfg`` asks for what the cell does not support."""


@dataclass(frozen=True)
class LipschitzCell(Cell):
    """The Lipschitz unit ``f(h, x) = alpha A h + tanh(W h + U x + b)`` (the Noisy RNN; with
    ``beta = 1, alpha = 0`` the antisymmetric RNN, preset ``"antisymmetric"``).

    Parameters ``M_A, M_W (H, H)`` with entries ``N(0, (init_std / H)^2)``; ``U (H, input_size)``
    and ``b (H,)`` uniform in ``+-1/sqrt(input_size)``; with ``learn_step`` also ``step (H,)``
    filled with ``dt``.
    """

    name: ClassVar[str] = "lipschitz"
    noisy: ClassVar[bool] = True
    fused: ClassVar[bool] = True
    stepped: ClassVar[bool] = True

    def shapes(self, cfg: "NoisyRNNConfig") -> dict[str, tuple[int, ...]]:
        H, n_in = cfg.hidden_size, cfg.input_size
        shapes = {"M_A": (H, H), "M_W": (H, H), "U": (H, n_in), "b": (H,)}
        if cfg.learn_step:
            shapes["step"] = (H,)
        return shapes

    def init(self, key: Key, cfg: "NoisyRNNConfig", dtype: DTypeLike) -> Params:
        H, n_in = cfg.hidden_size, cfg.input_size
        ka, kw, ku, kb, kr = jax.random.split(key, 5)
        std = cfg.init_std / H
        bound_in = 1.0 / math.sqrt(n_in)
        params = {
            "M_A": std * jax.random.normal(ka, (H, H), dtype=dtype),
            "M_W": std * jax.random.normal(kw, (H, H), dtype=dtype),
            "U": uniform_init(ku, (H, n_in), bound_in, dtype),
            "b": uniform_init(kb, (H,), bound_in, dtype),
            **init_readout(kr, cfg, dtype),
        }
        if cfg.learn_step:
            params["step"] = jnp.full((H,), cfg.dt, dtype=dtype)
        return params


def lipschitz_matrix(
    M: Float[ArrayLike, "hidden hidden"], beta: FloatScalar, gamma: FloatScalar
) -> Float[Array, "hidden hidden"]:
    """The structured recurrent matrix of the Lipschitz RNN.

    ``beta (M - M^T) + (1 - beta)(M + M^T) - gamma I``: its symmetric part is
    ``(1 - beta)(M + M^T) - gamma I`` exactly, so ``beta = 1`` gives ``sym = -gamma I``.

    Arguments:
        M: free square matrix.
        beta: mix between the skew part (``beta = 1``) and the symmetric part.
        gamma: diagonal shift (``gamma I`` is subtracted, not the scalar ``gamma``).

    Returns:
        The ``H x H`` matrix.
    """
    M = jnp.asarray(M)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"lipschitz_matrix: M must be a square matrix, got shape {M.shape}.")
    eye = jnp.eye(M.shape[0], dtype=M.dtype)
    return beta * (M - M.T) + (1.0 - beta) * (M + M.T) - gamma * eye


def recurrent_matrices(params: Params, cfg: "NoisyRNNConfig") -> tuple[Matrix, Matrix]:
    """The pair ``(A, W)`` of the Lipschitz unit built from ``params["M_A"], params["M_W"]``.

    ``A = lipschitz_matrix(M_A, beta, gamma_a)``, ``W = lipschitz_matrix(M_W, beta, gamma_w)``,
    with the values of ``cfg`` (which may be traced).
    """
    A = lipschitz_matrix(params["M_A"], cfg.beta, cfg.gamma_a)
    W = lipschitz_matrix(params["M_W"], cfg.beta, cfg.gamma_w)
    return A, W


def drift(params: Params, h: Hidden, x: Input, cfg: "NoisyRNNConfig") -> Hidden:
    """The drift ``f(h, x) = alpha A h + tanh(W h + U x + b)`` of the Lipschitz unit.

    Arguments:
        params: Lipschitz-cell parameters (``M_A, M_W, U, b``; others are ignored).
        h: hidden state ``(H,)`` (leading batch axes are allowed).
        x: input of the same step ``(input_size,)`` (same leading axes as ``h``).
        cfg: the configuration (``beta, gamma_a, gamma_w, alpha``).

    Returns:
        ``f(h, x)``, same shape as ``h``.
    """
    if not isinstance(cfg.cell, LipschitzCell):
        raise ValueError(f"drift is defined for cell='lipschitz' only, got cell={cfg.cell.name!r}.")
    A, W = recurrent_matrices(params, cfg)
    out = jnp.tanh(h @ W.T + x @ params["U"].T + params["b"])
    if has_linear_term(cfg):
        out = out + cfg.alpha * (h @ A.T)
    return out


def has_linear_term(cfg: "NoisyRNNConfig") -> bool:
    """Whether the drift's ``alpha A h`` is computed: not when ``alpha`` is a concrete 0 (a
    traced ``alpha`` keeps it, multiplied by its value)."""
    return may_be_nonzero(cfg.alpha)
