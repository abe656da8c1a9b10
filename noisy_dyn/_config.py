"""Configuration of a Noisy RNN: :class:`NoisyRNNConfig`, one pytree, and the named presets of
the paper's official runs (their hyper-parameters are listed in ``docs/noisy_rnn.md``).

A config is an ``equinox.Module``: its structure (sizes, cell, noise form, learned step, remat)
is static, its numbers (``dt, beta, gamma_a, gamma_w, alpha, sigma_add, sigma_mult, init_std``)
are leaves. Built from Python numbers it is hashable and validated when it is built, before
anything is traced; stacked (:func:`stack_configs`) its leaves gain a leading axis and
``jax.vmap`` over it runs one config per member in one compiled program. The strings of the
cell and the noise form are parsed here, once (``"lipschitz"``, ``"lstm"``, ``"gru"``;
``"ito"``, ``"reference"``), into the objects that own their behaviour.
"""

import dataclasses
import math
import numbers
from collections.abc import Iterable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from trainkit.internal import lookup

from ._baselines import GRUCell, LSTMCell
from ._cell import Cell, LipschitzCell
from ._noise import NoiseForm, may_be_nonzero, noise_form

CELLS: dict[str, Cell] = {c.name: c for c in (LipschitzCell(), LSTMCell(), GRUCell())}
"""The cells by the name that presets, model files and the command line use."""

NUMERIC_FIELDS = (
    "dt", "beta", "gamma_a", "gamma_w", "alpha", "sigma_add", "sigma_mult", "init_std",
)  # fmt: skip
"""The leaves of a :class:`NoisyRNNConfig` (every other field is static)."""


def cell_of(value: "str | Cell") -> Cell:
    """The :class:`Cell` of a name (``"lipschitz"``, ``"lstm"``, ``"gru"``) or the object."""
    if isinstance(value, Cell):
        return value
    return lookup(value, CELLS, "cell (a Cell or its name)")


def _int(value: object) -> object:
    return int(value) if isinstance(value, np.integer) else value


def _number(value: object) -> object:
    """NumPy scalars (``ys.max() + 1``) become Python numbers, so a config stays hashable."""
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        return value.item()
    return value


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"NoisyRNNConfig.{name} must be an int >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"NoisyRNNConfig.{name} must be >= {minimum}, got {value}.")


def _check_real(name: str, value: object, *, lo: float, hi: float, lo_open: bool = False) -> None:
    """Check a numeric leaf: a real number, or a real array (every entry); tracers pass."""
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        dtype = getattr(value, "dtype", None)
        if dtype is None or not (jnp.issubdtype(dtype, jnp.floating) or
                                 jnp.issubdtype(dtype, jnp.integer)):  # fmt: skip
            raise TypeError(f"NoisyRNNConfig.{name} must be a real number, got {value!r}.")
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr > hi) | ((arr <= lo) if lo_open else (arr < lo))
    if np.any(bad):
        left = "(" if lo_open else "["
        raise ValueError(
            f"NoisyRNNConfig.{name} must lie in {left}{lo}, {hi}], got {value}."
            if math.isfinite(hi)
            else f"NoisyRNNConfig.{name} must be finite and {'>' if lo_open else '>='} {lo}, "
            f"got {value}."
        )


class NoisyRNNConfig(eqx.Module):
    """Hyper-parameters of a Noisy RNN (the paper's sections 2-3; ``docs/noisy_rnn.md``) or of a
    baseline cell, as one pytree.

    The Lipschitz cell's drift is ``f(h, x) = alpha A h + tanh(W h + U x + b)`` with
    ``A = beta (M_A - M_A^T) + (1 - beta)(M_A + M_A^T) - gamma_a I`` and ``W`` alike with
    ``M_W, gamma_w``; the logits are ``V h_T + c`` and ``h_0 = 0``.

    Noise forms (only for the Lipschitz cell), objects owning their update
    (:class:`~noisy_dyn.ItoNoise`, :class:`~noisy_dyn.ReferenceNoise`):

    - ``"ito"`` (default):
      ``h_{k+1} = h_k + d f(h_k, x_k) + sqrt(d) (sigma_add + sigma_mult h_k) * xi_k``, the
      Euler-Maruyama step of ``dh = f dt + (sigma_add + sigma_mult diag(h)) dB``.
    - ``"reference"``: ``h_{k+1} = h_k + (d * m_k) * f(h_k, x_k) + sigma_add xi_k`` with
      ``m_k ~ U[1 - sigma_mult, 1)`` per unit: the update of the reference code (random step
      size, no ``sqrt(dt)`` on the additive part).

    ``d`` is ``dt`` or, with ``learn_step``, a learned per-unit step vector initialised to ``dt``
    (the Ito diffusion then uses ``sqrt(|d|)``, so a step driven negative in training gives no NaN).
    Noise is used only when ``apply``/``trajectory`` get a ``key`` or pre-sampled ``noise``.

    Static fields (the structure of the program): ``input_size``, ``hidden_size``,
    ``num_classes``, ``noise_form``, ``learn_step``, ``cell``, ``remat``. Leaves (values, which
    may be traced or stacked): ``dt``, ``beta``, ``gamma_a``, ``gamma_w``, ``alpha``,
    ``sigma_add``, ``sigma_mult``, ``init_std``. A concrete ``alpha = 0`` drops the linear term
    and a concrete level of 0 draws no noise of that kind; traced values keep both (a zero then
    multiplies), which gives the same numbers.

    Arguments:
        input_size: features per time step (>= 1).
        hidden_size: ``H`` (>= 1).
        num_classes: read-out size (>= 1).
        dt: step ``dt > 0``.
        beta: skew/symmetric mix of ``A, W``, in ``[0, 1]``; ``beta = 1`` gives antisymmetric ``M``.
        gamma_a, gamma_w: diagonal shifts ``>= 0`` of ``A`` and ``W``.
        alpha: weight of the linear term ``A h`` (finite, any sign; ``0`` drops it).
        sigma_add: additive noise level ``sigma_a >= 0``.
        sigma_mult: multiplicative noise level ``sigma_m >= 0`` (``<= 1`` for the reference form).
        noise_form: ``"ito"`` or ``"reference"``, or a :class:`~noisy_dyn.NoiseForm`.
        learn_step: learn a per-unit step ``d`` (parameter ``step``, initialised to ``dt``).
        init_std: ``M_A, M_W`` entries are drawn from ``N(0, (init_std / H)^2)`` (official runs:
            0.1/H).
        cell: ``"lipschitz"`` (the Noisy RNN; also the deterministic Lipschitz and antisymmetric
            RNNs), ``"lstm"`` or ``"gru"`` (deterministic baselines with the same read-out), or
            a :class:`~noisy_dyn.Cell`.
        remat: ``None`` or a chunk length ``N >= 1``: the time scan is split into chunks of ``N``
            steps and each chunk is rematerialised (``jax.checkpoint``) in the backward pass, so
            only every ``N``-th state is stored. Same values and gradients, less memory.

    Examples:
        >>> import jax, noisy_dyn as nd
        >>> cfgs = [nd.NoisyRNNConfig(1, 8, 10, sigma_add=s) for s in (0.0, 0.1)]
        >>> stacked = nd.stack_configs(cfgs)  # sigma_add: shape (2,)
        >>> stacked.sigma_add.shape
        (2,)
    """

    input_size: int = eqx.field(static=True, converter=_int)
    hidden_size: int = eqx.field(static=True, converter=_int)
    num_classes: int = eqx.field(static=True, converter=_int)
    dt: float = eqx.field(default=0.01, converter=_number)
    beta: float = eqx.field(default=0.75, converter=_number)
    gamma_a: float = eqx.field(default=1e-3, converter=_number)
    gamma_w: float = eqx.field(default=1e-3, converter=_number)
    alpha: float = eqx.field(default=1.0, converter=_number)
    sigma_add: float = eqx.field(default=0.0, converter=_number)
    sigma_mult: float = eqx.field(default=0.0, converter=_number)
    noise_form: NoiseForm = eqx.field(default="ito", static=True, converter=noise_form)
    learn_step: bool = eqx.field(default=False, static=True)
    init_std: float = eqx.field(default=0.1, converter=_number)
    cell: Cell = eqx.field(default="lipschitz", static=True, converter=cell_of)
    remat: int | None = eqx.field(default=None, static=True, converter=_int)

    def __check_init__(self) -> None:
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
        if not isinstance(self.learn_step, bool):
            raise TypeError(f"NoisyRNNConfig.learn_step must be a bool, got {self.learn_step!r}.")
        self.noise_form.check(self.sigma_mult)
        self.cell.check(self)
        if self.remat is not None:
            _check_int("remat", self.remat, minimum=1)

    def replace(self, **changes: object) -> "NoisyRNNConfig":
        """A copy with some fields changed (validated again)."""
        return _replace(self, changes)

    def to_dict(self) -> dict[str, object]:
        """The fields as a plain dict, the cell and noise form by name (for logs, model files
        and checkpoint fingerprints)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["noise_form"] = self.noise_form.name
        out["cell"] = self.cell.name
        for name in NUMERIC_FIELDS:
            value = out[name]
            if not isinstance(value, numbers.Number) and np.ndim(value) == 0:
                out[name] = np.asarray(value).item()
            elif not isinstance(value, numbers.Number):
                out[name] = np.asarray(value).tolist()
        return out

    def is_deterministic(self) -> bool:
        """Whether both noise levels are concrete zeros (a key then draws nothing)."""
        return not (may_be_nonzero(self.sigma_add) or may_be_nonzero(self.sigma_mult))


_FIELDS = tuple(f.name for f in dataclasses.fields(NoisyRNNConfig))


def _replace(cfg: NoisyRNNConfig, changes: dict[str, object]) -> NoisyRNNConfig:
    unknown = sorted(set(changes) - set(_FIELDS))
    if unknown:
        raise ValueError(
            f"Unknown NoisyRNNConfig field(s) {unknown}; the fields are {list(_FIELDS)}."
        )
    return dataclasses.replace(cfg, **changes)


def stack_configs(cfgs: Sequence[NoisyRNNConfig], *, dtype: object = None) -> NoisyRNNConfig:
    """One config whose leaves are the members' values stacked on a leading axis.

    ``jax.vmap(lambda c: apply(params, xs, c))(stack_configs(cfgs))`` equals
    ``[apply(params, xs, c) for c in cfgs]`` stacked. The members must agree in every static
    field (a ``ValueError`` names the first that differs).

    Arguments:
        cfgs: a non-empty sequence of configs built from Python numbers.
        dtype: dtype of the stacked leaves (default JAX's default float).
    """
    if isinstance(cfgs, NoisyRNNConfig) or not isinstance(cfgs, Sequence) or not cfgs:
        raise TypeError("`cfgs` must be a non-empty sequence of NoisyRNNConfig.")
    for index, cfg in enumerate(cfgs):
        if not isinstance(cfg, NoisyRNNConfig):
            raise TypeError(f"cfgs[{index}] must be a NoisyRNNConfig, got {type(cfg).__name__}.")
    check_fields_agree(
        cfgs,
        NUMERIC_FIELDS,
        "configs stacked into one differ only in their numbers "
        f"{list(NUMERIC_FIELDS)} (stack one group per value of {{name}}).",
    )
    dtype = jnp.zeros((), dtype=dtype if dtype is not None else float).dtype
    return jax.tree_util.tree_map(lambda *v: np.asarray(v, dtype=dtype), *cfgs)


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
    return lookup(name, _PRESETS, "preset")


def preset(
    name: str, *, input_size: int | np.integer, num_classes: int | np.integer, **overrides: object
) -> NoisyRNNConfig:
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

    Arguments:
        name: one of :data:`PRESETS`.
        input_size: features per time step.
        num_classes: number of classes.
        **overrides: any other :class:`NoisyRNNConfig` field, applied last.

    Returns:
        The validated :class:`NoisyRNNConfig`.

    Examples:
        >>> import noisy_dyn as nd
        >>> cfg = nd.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=16)
        >>> cfg.sigma_add, cfg.noise_form, cfg.cell
        (0.2, ItoNoise(), LipschitzCell())
    """
    fields, _, _, _ = _lookup(name)
    base = NoisyRNNConfig(input_size=input_size, hidden_size=128, num_classes=num_classes)
    return _replace(base, {**fields, **overrides})


def preset_learning_rate(name: str, *, task: str = "mnist") -> float:
    """The Adam learning rate of a preset (official runs; ``task="pmnist"``
    for permuted MNIST).

    Arguments:
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
