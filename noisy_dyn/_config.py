"""Configuration of a Noisy RNN: :class:`NoisyRNNConfig`, the named presets of the paper's
official runs (their hyper-parameters are listed in ``docs/noisy_rnn.md``).

A config is a frozen, hashable dataclass, so it can be passed to ``jax.jit`` as a static argument;
it is validated when it is built, before anything is traced.
"""

import dataclasses
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

NOISE_FORMS = ("ito", "reference")
CELLS = ("lipschitz", "lstm", "gru")


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"NoisyRNNConfig.{name} must be an int >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"NoisyRNNConfig.{name} must be >= {minimum}, got {value}.")


def _check_real(name: str, value: object, *, lo: float, hi: float, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"NoisyRNNConfig.{name} must be a real number, got {value!r}.")
    bad = not math.isfinite(value) or value > hi or (value <= lo if lo_open else value < lo)
    if bad:
        left = "(" if lo_open else "["
        raise ValueError(
            f"NoisyRNNConfig.{name} must lie in {left}{lo}, {hi}], got {value}."
            if math.isfinite(hi)
            else f"NoisyRNNConfig.{name} must be finite and {'>' if lo_open else '>='} {lo}, "
            f"got {value}."
        )


@dataclass(frozen=True)
class NoisyRNNConfig:
    """Hyper-parameters of a Noisy RNN (the paper's sections 2-3; ``docs/noisy_rnn.md``) or of a
    baseline cell.

    The Lipschitz cell's drift is ``f(h, x) = alpha A h + tanh(W h + U x + b)`` with
    ``A = beta (M_A - M_A^T) + (1 - beta)(M_A + M_A^T) - gamma_a I`` and ``W`` alike with
    ``M_W, gamma_w``; the logits are ``V h_T + c`` and ``h_0 = 0``.

    Noise forms (only for ``cell="lipschitz"``):

    - ``"ito"`` (default):
      ``h_{k+1} = h_k + d f(h_k, x_k) + sqrt(d) (sigma_add + sigma_mult h_k) * xi_k``, the
      Euler-Maruyama step of ``dh = f dt + (sigma_add + sigma_mult diag(h)) dB``.
    - ``"reference"``: ``h_{k+1} = h_k + (d * m_k) * f(h_k, x_k) + sigma_add xi_k`` with
      ``m_k ~ U[1 - sigma_mult, 1)`` per unit: the update of the reference code (random step
      size, no ``sqrt(dt)`` on the additive part).

    ``d`` is ``dt`` or, with ``learn_step``, a learned per-unit step vector initialised to ``dt``
    (the Ito diffusion then uses ``sqrt(|d|)``, so a step driven negative in training gives no NaN).
    Noise is used only when ``apply``/``trajectory`` get a ``key`` or pre-sampled ``noise``.

    Args:
        input_size: features per time step (>= 1).
        hidden_size: ``H`` (>= 1).
        num_classes: read-out size (>= 1).
        dt: step ``dt > 0``.
        beta: skew/symmetric mix of ``A, W``, in ``[0, 1]``; ``beta = 1`` gives antisymmetric ``M``.
        gamma_a: diagonal shifts ``>= 0`` of ``A`` and ``W``.
        gamma_w: see ``gamma_a``.
        alpha: weight of the linear term ``A h`` (finite, any sign; ``0`` drops it).
        sigma_add: additive noise level ``sigma_a >= 0``.
        sigma_mult: multiplicative noise level ``sigma_m >= 0`` (``<= 1`` for the reference form).
        noise_form: ``"ito"`` or ``"reference"``.
        learn_step: learn a per-unit step ``d`` (parameter ``step``, initialised to ``dt``).
        init_std: ``M_A, M_W`` entries are drawn from ``N(0, (init_std / H)^2)`` (official runs:
            0.1/H).
        cell: ``"lipschitz"`` (the Noisy RNN; also the deterministic Lipschitz and antisymmetric
            RNNs), ``"lstm"`` or ``"gru"`` (deterministic baselines with the same read-out).
        remat: ``None`` or a chunk length ``N >= 1``: the time scan is split into chunks of ``N``
            steps and each chunk is rematerialised (``jax.checkpoint``) in the backward pass, so
            only every ``N``-th state is stored. Same values and gradients, less memory.
    """

    input_size: int
    hidden_size: int
    num_classes: int
    dt: float = 0.01
    beta: float = 0.75
    gamma_a: float = 1e-3
    gamma_w: float = 1e-3
    alpha: float = 1.0
    sigma_add: float = 0.0
    sigma_mult: float = 0.0
    noise_form: str = "ito"
    learn_step: bool = False
    init_std: float = 0.1
    cell: str = "lipschitz"
    remat: int | None = None

    def __post_init__(self) -> None:
        self._coerce_numpy_scalars()
        _check_int("input_size", self.input_size, minimum=1)
        _check_int("hidden_size", self.hidden_size, minimum=1)
        _check_int("num_classes", self.num_classes, minimum=1)
        inf = math.inf
        _check_real("dt", self.dt, lo=0.0, hi=inf, lo_open=True)
        _check_real("beta", self.beta, lo=0.0, hi=1.0)
        _check_real("gamma_a", self.gamma_a, lo=0.0, hi=inf)
        _check_real("gamma_w", self.gamma_w, lo=0.0, hi=inf)
        _check_real("alpha", self.alpha, lo=-inf, hi=inf)
        _check_real("sigma_add", self.sigma_add, lo=0.0, hi=inf)
        _check_real("sigma_mult", self.sigma_mult, lo=0.0, hi=inf)
        _check_real("init_std", self.init_std, lo=0.0, hi=inf)
        if self.noise_form not in NOISE_FORMS:
            raise ValueError(
                f"NoisyRNNConfig.noise_form must be one of {NOISE_FORMS}, got {self.noise_form!r}."
            )
        if self.cell not in CELLS:
            raise ValueError(f"NoisyRNNConfig.cell must be one of {CELLS}, got {self.cell!r}.")
        if not isinstance(self.learn_step, bool):
            raise TypeError(f"NoisyRNNConfig.learn_step must be a bool, got {self.learn_step!r}.")
        if self.noise_form == "reference" and self.sigma_mult > 1.0:
            raise ValueError(
                "NoisyRNNConfig.sigma_mult must lie in [0, 1] for noise_form='reference' (the step "
                f"factor is drawn from U[1 - sigma_mult, 1)), got {self.sigma_mult}."
            )
        if self.cell != "lipschitz":
            if self.sigma_add != 0.0 or self.sigma_mult != 0.0:
                raise ValueError(
                    f"NoisyRNNConfig.sigma_add/sigma_mult must be 0 for cell={self.cell!r}: noise "
                    "injection is defined for the 'lipschitz' cell only."
                )
            if self.learn_step:
                raise ValueError(
                    f"NoisyRNNConfig.learn_step must be False for cell={self.cell!r}: a learned "
                    "step exists for the 'lipschitz' cell only."
                )
        if self.remat is not None:
            _check_int("remat", self.remat, minimum=1)

    def _coerce_numpy_scalars(self) -> None:
        """NumPy integer/float scalars (``ys.max() + 1``) become Python ints/floats, so the
        config stays hashable and prints plainly."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Number):
                continue
            if field.name in _INT_FIELDS and isinstance(value, numbers.Integral):
                object.__setattr__(self, field.name, int(value))
            elif field.name in _REAL_FIELDS and isinstance(value, numbers.Real):
                object.__setattr__(self, field.name, float(value))

    @property
    def numerics(self) -> "Numerics":
        """The numeric fields as a :class:`Numerics` (Python floats)."""
        return Numerics(*(float(getattr(self, name)) for name in Numerics._fields))

    @property
    def noisy(self) -> bool:
        """Whether this config injects any noise when a key is given."""
        return self.sigma_add > 0.0 or self.sigma_mult > 0.0

    def replace(self, **changes: object) -> "NoisyRNNConfig":
        """A copy with some fields changed (validated again)."""
        return _replace(self, changes)

    def to_dict(self) -> dict[str, object]:
        """The fields as a plain dict (for logs and checkpoints)."""
        return dataclasses.asdict(self)


_FIELDS = tuple(f.name for f in dataclasses.fields(NoisyRNNConfig))
_INT_FIELDS = ("input_size", "hidden_size", "num_classes", "remat")
_REAL_FIELDS = ("dt", "beta", "gamma_a", "gamma_w", "alpha", "sigma_add", "sigma_mult", "init_std")


class Numerics(NamedTuple):
    """The numeric hyper-parameters of the Lipschitz cell and its noise, as values.

    ``cfg.numerics`` gives them as Python floats. Passed to ``apply``/``final_state``/
    ``trajectory`` as ``numerics=``, they replace the config's values and may be traced arrays:
    an ensemble whose members differ only in these values runs as one ``jax.vmap``-ed compiled
    program. The config still fixes the structure: which noise is drawn (``sigma_add``,
    ``sigma_mult`` nonzero in ``cfg``), the noise form, the learned step, and whether the linear
    term exists (``cfg.alpha == 0`` drops it, whatever ``numerics.alpha``).
    """

    dt: Any
    beta: Any
    gamma_a: Any
    gamma_w: Any
    alpha: Any
    sigma_add: Any
    sigma_mult: Any


def _replace(cfg: NoisyRNNConfig, changes: dict[str, object]) -> NoisyRNNConfig:
    unknown = sorted(set(changes) - set(_FIELDS))
    if unknown:
        raise ValueError(
            f"Unknown NoisyRNNConfig field(s) {unknown}; the fields are {list(_FIELDS)}."
        )
    return dataclasses.replace(cfg, **changes)


# name -> (config fields, MNIST learning rate, pMNIST learning rate, provenance)
_PRESETS: dict[str, tuple[dict[str, object], float, float, str]] = {
    "nrnn_ito": (
        dict(noise_form="ito", dt=0.01, sigma_add=0.2, sigma_mult=0.2),
        1e-3,
        1e-3,
        "Ito form, fixed dt = 0.01. Derived, not an official run: sigma_add = "
        "sigma_mult = 0.2 make the per-step noise std sqrt(dt) * 0.2 = 0.02, the level of the "
        "'NRNN small noise' row; learning rate of that row (0.001).",
    ),
    "nrnn_reference": (
        dict(noise_form="reference", learn_step=True, dt=0.01, sigma_add=0.02, sigma_mult=0.02),
        1e-3,
        1e-3,
        "Official run 'NRNN small noise': reference form, learned step, dt 0.01, lr 0.001.",
    ),
    "nrnn_reference_high": (
        dict(noise_form="reference", learn_step=True, dt=0.01, sigma_add=0.05, sigma_mult=0.02),
        1e-3,
        1e-3,
        "Official run 'NRNN high noise': reference form, learned step, dt 0.01, lr 0.001.",
    ),
    "lipschitz": (
        dict(dt=0.03),
        3e-3,
        3.5e-3,
        "Official run 'Lipschitz RNN': deterministic, dt 0.03, lr 0.003 (pMNIST 0.0035).",
    ),
    "antisymmetric": (
        dict(beta=1.0, alpha=0.0, gamma_a=1e-4, gamma_w=1e-4, dt=0.01),
        2e-3,
        2e-3,
        "Official run 'Antisymmetric RNN': beta 1, alpha 0, gamma 1e-4, dt 0.01, lr 0.002.",
    ),
    "lstm": (
        dict(cell="lstm"),
        1e-3,
        1e-3,
        "LSTM baseline; not an official run: Adam's customary lr 0.001.",
    ),
    "gru": (
        dict(cell="gru"),
        1e-3,
        1e-3,
        "GRU baseline; not an official run: Adam's customary lr 0.001.",
    ),
}

PRESETS: tuple[str, ...] = tuple(_PRESETS)
"""Names accepted by :func:`preset` and :func:`preset_learning_rate`."""


def _lookup(name: str) -> tuple[dict[str, object], float, float, str]:
    if name not in _PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {PRESETS}.")
    return _PRESETS[name]


def preset(name: str, *, input_size: int, num_classes: int, **overrides: object) -> NoisyRNNConfig:
    """A named configuration of the paper's official runs (hidden size 128 unless overridden;
    the table is in ``docs/noisy_rnn.md``).

    ============================  ======================================================
    ``"nrnn_ito"``                Ito form, dt 0.01, sigma_add = sigma_mult = 0.2 (derived:
                                  per-step std 0.02 as the small-noise row), lr 0.001
    ``"nrnn_reference"``          reference form, learned step, dt 0.01, sigma 0.02 / 0.02, lr 0.001
    ``"nrnn_reference_high"``     reference form, learned step, dt 0.01, sigma 0.05 / 0.02, lr 0.001
    ``"lipschitz"``               deterministic, dt 0.03, lr 0.003 (pMNIST 0.0035)
    ``"antisymmetric"``           beta 1, alpha 0, gamma_a = gamma_w = 1e-4, dt 0.01, lr 0.002
    ``"lstm"``, ``"gru"``         deterministic baselines, lr 0.001 (not official runs)
    ============================  ======================================================

    All presets otherwise keep beta 0.75, gamma 1e-3, alpha 1, init_std 0.1.

    Args:
        name: one of :data:`PRESETS`.
        input_size: features per time step.
        num_classes: number of classes.
        **overrides: any other :class:`NoisyRNNConfig` field, applied last.

    Returns:
        The validated :class:`NoisyRNNConfig`.
    """
    fields, _, _, _ = _lookup(name)
    base = NoisyRNNConfig(input_size=input_size, hidden_size=128, num_classes=num_classes)
    return _replace(base, {**fields, **overrides})


def preset_learning_rate(name: str, *, task: str = "mnist") -> float:
    """The Adam learning rate of a preset (official runs; ``task="pmnist"``
    for permuted MNIST).

    Args:
        name: one of :data:`PRESETS`.
        task: ``"mnist"`` (ordered pixels, default) or ``"pmnist"``.

    Returns:
        The learning rate (before the x0.1 decay at 90 % of training).
    """
    _, lr_mnist, lr_pmnist, _ = _lookup(name)
    if task not in ("mnist", "pmnist"):
        raise ValueError(f"task must be 'mnist' or 'pmnist', got {task!r}.")
    return lr_mnist if task == "mnist" else lr_pmnist


def preset_description(name: str) -> str:
    """Where a preset's values come from (the official run, or how it was derived)."""
    return _lookup(name)[3]


def check_fields_agree(cfgs: Sequence[NoisyRNNConfig], free: Iterable[str], hint: str) -> None:
    """Raise ``ValueError`` naming the first field outside ``free`` where ``cfgs`` differ.

    ``hint`` ends the message (it may use ``{name}``, the differing field): what to do instead.
    """
    free = set(free)
    first = cfgs[0].to_dict()
    for index, cfg in enumerate(cfgs[1:], start=1):
        for name, value in cfg.to_dict().items():
            if name not in free and value != first[name]:
                raise ValueError(
                    f"cfgs[{index}].{name} = {value!r} differs from cfgs[0].{name} = "
                    f"{first[name]!r}; " + hint.format(name=name)
                )
