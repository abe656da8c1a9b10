"""Stability of the Noisy RNN's drift: the one-sided Lipschitz constant and the sufficient
conditions it gives, with and without noise (derived bounds; ``docs/derivations.md``)."""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._cell import recurrent_matrices
from ._config import NoisyRNNConfig
from ._params import check_params
from ._theory_common import check_theory_cfg
from ._types import Params


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
    cfg = check_theory_cfg(cfg, "contraction_rate")
    check_params(params, cfg)
    A, W = recurrent_matrices(params, cfg)
    eig = jnp.linalg.eigvalsh(0.5 * (A + A.T))
    lin = cfg.alpha * (eig[-1] if cfg.alpha >= 0 else eig[0])
    return lin + jnp.linalg.norm(W, ord=2)


def stability_report(params: Params, cfg: NoisyRNNConfig) -> dict[str, object]:
    """Which sufficient stability condition (``docs/derivations.md``, section 2) holds, with
    the numbers behind it.

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

    Examples:
        >>> import jax, noisy_dyn as nd
        >>> cfg = nd.NoisyRNNConfig(input_size=1, hidden_size=8, num_classes=3)
        >>> report = nd.theory.stability_report(nd.init_params(jax.random.key(0), cfg), cfg)
        >>> sorted(report)
        [...'mu'...'verdict'...]
    """
    cfg = check_theory_cfg(cfg, "stability_report")
    check_params(params, cfg)
    A, W = (np.asarray(m, dtype=np.float64) for m in recurrent_matrices(params, cfg))
    sym_eig = np.linalg.eigvalsh(0.5 * (A + A.T))
    lam_max = float(sym_eig[-1])
    norm_w = float(np.linalg.norm(W, 2))
    mu = cfg.alpha * (lam_max if cfg.alpha >= 0 else float(sym_eig[0])) + norm_w
    H, sm = cfg.hidden_size, cfg.sigma_mult
    bounds: dict[str, float] = {"deterministic_or_additive": mu}
    if cfg.noise_form.brownian and sm > 0:
        bounds["almost_sure_scalar_brownian"] = mu - sm**2 / 2
        bounds["almost_sure_per_unit_brownian"] = mu + sm**2 * (0.5 - 1.0 / H)
        bounds["mean_square"] = 2 * mu + sm**2
    holds = {name: bool(value < 0) for name, value in bounds.items()}
    noise = _noise_sentence(cfg)
    verdict = _verdict(cfg, mu, bounds, holds)
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


def _noise_sentence(cfg: NoisyRNNConfig) -> str:
    """What the report's bounds assume of the noise (one sentence per noise form)."""
    H, sm, sa = cfg.hidden_size, cfg.sigma_mult, cfg.sigma_add
    if cfg.noise_form.brownian:
        return (
            f"Ito form: additive sigma_add={sa}, multiplicative sigma_mult={sm} with one "
            f"independent Brownian motion per unit (per-unit, H={H}); the scalar-Brownian bound "
            "is listed for comparison only, this model's noise is per-unit."
        )
    return (
        f"Reference form: additive kick sigma_add={sa} (cancels between trajectories) and a "
        f"random step factor m ~ U[{1 - sm}, 1) (sigma_mult={sm}); not a Brownian term, so "
        "only the deterministic contraction statement applies, with the random step."
    )


def _verdict(
    cfg: NoisyRNNConfig, mu: float, bounds: dict[str, float], holds: dict[str, bool]
) -> str:
    """Which of the report's conditions holds, in sentences."""
    sm = cfg.sigma_mult
    if sm == 0 or not cfg.noise_form.brownian:
        if mu < 0:
            return (
                f"mu = {mu:.4g} < 0: the drift is contracting; any two trajectories with the same "
                "input (and the same additive noise) converge exponentially at rate mu."
            )
        return (
            f"mu = {mu:.4g} >= 0: no contraction guarantee (the condition mu < 0 fails); "
            "estimate the top Lyapunov exponent instead (lyapunov_exponents)."
        )
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
            " < 0 (stochastic stabilization)." if holds["almost_sure_scalar_brownian"] else " >= 0."
        ),
    ]
    return " ".join(parts)
