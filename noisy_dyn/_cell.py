"""The Lipschitz RNN unit (the paper's section 2; ``docs/noisy_rnn.md``): the structured
matrices and the drift. Parameter initialisation and checks live in ``noisy_dyn._params``.

Column-vector maths, row-batched code: ``A h`` for a batch of states ``h`` of shape
``(..., H)`` is computed as ``h @ A.T``.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._config import NoisyRNNConfig, Numerics
from ._params import check_params as check_params  # noqa: F401  (old home, kept for _train)
from ._params import init_params as init_params  # noqa: F401
from ._types import Hidden, Input, Matrix, Params


def lipschitz_matrix(
    M: Float[ArrayLike, "hidden hidden"], beta: float, gamma: float
) -> Float[Array, "hidden hidden"]:
    """The structured recurrent matrix of the Lipschitz RNN.

    ``beta (M - M^T) + (1 - beta)(M + M^T) - gamma I``: its symmetric part is
    ``(1 - beta)(M + M^T) - gamma I`` exactly, so ``beta = 1`` gives ``sym = -gamma I``.

    Args:
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


def recurrent_matrices(
    params: Params, cfg: NoisyRNNConfig, numerics: Numerics | None = None
) -> tuple[Matrix, Matrix]:
    """The pair ``(A, W)`` of the Lipschitz unit built from ``params["M_A"], params["M_W"]``.

    ``A = lipschitz_matrix(M_A, beta, gamma_a)``, ``W = lipschitz_matrix(M_W, beta, gamma_w)``,
    with the values of ``cfg`` or of ``numerics`` (which may be traced).
    """
    num = cfg.numerics if numerics is None else numerics
    A = lipschitz_matrix(params["M_A"], num.beta, num.gamma_a)
    W = lipschitz_matrix(params["M_W"], num.beta, num.gamma_w)
    return A, W


def drift(params: Params, h: Hidden, x: Input, cfg: NoisyRNNConfig) -> Hidden:
    """The drift ``f(h, x) = alpha A h + tanh(W h + U x + b)`` of the Lipschitz unit.

    Args:
        params: Lipschitz-cell parameters (``M_A, M_W, U, b``; others are ignored).
        h: hidden state ``(H,)`` (leading batch axes are allowed).
        x: input of the same step ``(input_size,)`` (same leading axes as ``h``).
        cfg: the configuration (``beta, gamma_a, gamma_w, alpha``).

    Returns:
        ``f(h, x)``, same shape as ``h``.
    """
    if cfg.cell != "lipschitz":
        raise ValueError(f"drift is defined for cell='lipschitz' only, got cell={cfg.cell!r}.")
    A, W = recurrent_matrices(params, cfg)
    out = jnp.tanh(h @ W.T + x @ params["U"].T + params["b"])
    if cfg.alpha != 0.0:
        out = out + cfg.alpha * (h @ A.T)
    return out
