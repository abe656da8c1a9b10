"""Integrating dh/dt = F(theta(t), h) over t in [0, 1] with basis-function weights theta(t).

One verb, ``odeint``: fixed-step explicit Runge-Kutta schemes, each a :class:`ButcherTableau`
object (``EULER``, ``MIDPOINT``, ``RK4``, ``RK4_38``), as one ``lax.scan`` over the steps (fully
unrolled on a CPU, see :func:`resolve_unroll`), or an adaptive solve with a diffrax solver object
(``diffrax.Tsit5()``, ``diffrax.Dopri5()``, ...) for stateless vector fields. Names ("rk4",
"tsit5") are for the edges only (command line, model files): :func:`scheme_by_name`.

``odeint`` is compiled once per (field, shapes and dtypes, basis, n_steps, scheme): one ``jax.jit``
program per static part (the field's non-array parts, the basis, the scheme and the step count; the
``MAX_PROGRAMS`` most recent kept), so repeated eager calls with the same field object run the
cached program (and inside an outer ``jax.jit`` it is traced inline). A field that is a fresh
``lambda`` on every call is a new static key and compiles again; pass the same function (or an
``equinox.Module`` whose arrays are leaves) to reuse the program. Stage times ``(i + c_j) /
n_steps`` and the cells they read come from the integer step index i and the exact rational Butcher
nodes c_j; a stage at a step's right end (c_j = 1) reads the left limit of a discontinuous basis, so
it stays in the step's own cell (docs/basis_ode.md, "Integration"; Queiruga et al. 2021, section 3).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from trainkit.internal import ProgramCache, lookup

from ._bases import Basis
from ._expansion import BasisExpansion
from ._projection import _check_basis, check_coefficients, combine
from ._types import Aux, Coefficients, State

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py


@dataclasses.dataclass(frozen=True, repr=False)
class ButcherTableau:
    """An explicit Runge-Kutta scheme with exact rational coefficients.

    Stage j evaluates ``k_j = F(theta(t_n + c_j dt), h_n + dt sum_{l<j} a_jl k_l)`` and the step
    is ``h_{n+1} = h_n + dt sum_j b_j k_j``.

    Attributes:
        name: scheme name.
        a: strictly lower-triangular stage matrix, ``a[j]`` holds ``a_j0 .. a_j(j-1)``.
        b: weights.
        c: nodes (stage time offsets within the step), in [0, 1].
        order: classical order of accuracy.
    """

    name: str
    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    c: tuple[Fraction, ...]
    order: int

    @property
    def n_stages(self) -> int:
        return len(self.b)

    def __repr__(self) -> str:
        return f"ButcherTableau(name={self.name!r}, order={self.order})"


def _tableau(name, a, b, c, order) -> ButcherTableau:
    F = Fraction
    return ButcherTableau(
        name,
        tuple(tuple(F(x) for x in row) for row in a),
        tuple(F(x) for x in b),
        tuple(F(x) for x in c),
        order,
    )


#: Forward Euler, order 1: ``h_{n+1} = h_n + dt F(t_n, h_n)``.
EULER = _tableau("euler", [[]], [1], [0], 1)
#: Explicit midpoint, order 2: ``h_{n+1} = h_n + dt F(t_n + dt/2, h_n + dt/2 F(t_n, h_n))``.
MIDPOINT = _tableau("midpoint", [[], ["1/2"]], [0, 1], [0, "1/2"], 2)
#: The classic four-stage Runge-Kutta scheme, order 4 (nodes 0, 1/2, 1/2, 1).
RK4 = _tableau(
    "rk4",
    [[], ["1/2"], [0, "1/2"], [0, 0, 1]],
    ["1/6", "1/3", "1/3", "1/6"],
    [0, "1/2", "1/2", 1],
    4,
)
#: Kutta's 3/8 rule, order 4 (nodes 0, 1/3, 2/3, 1).
RK4_38 = _tableau(
    "rk4_38",
    [[], ["1/3"], ["-1/3", 1], [1, -1, 1]],
    ["1/8", "3/8", "3/8", "1/8"],
    [0, "1/3", "2/3", 1],
    4,
)

#: The fixed-step explicit schemes by name (for the command line and model files).
SCHEMES: dict[str, ButcherTableau] = {t.name: t for t in (EULER, MIDPOINT, RK4, RK4_38)}
#: The adaptive diffrax solvers by name (for the command line).
_ADAPTIVE: dict[str, type[diffrax.AbstractSolver]] = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
}

#: An integration scheme: a fixed-step tableau or an adaptive diffrax solver.
Scheme = ButcherTableau | diffrax.AbstractSolver


def scheme_by_name(name: str) -> ButcherTableau | diffrax.AbstractSolver:
    """The scheme called ``name``: "euler", "midpoint", "rk4", "rk4_38" (a
    :class:`ButcherTableau`) or "tsit5", "dopri5" (a diffrax solver object).

    Strings are for the edges (command line, model files); the library takes the objects.
    """
    found = lookup(name, {**SCHEMES, **_ADAPTIVE}, "scheme")
    return found() if isinstance(found, type) else found


def scheme_name(scheme: Scheme) -> str:
    """The name of a scheme object (inverse of :func:`scheme_by_name`)."""
    if isinstance(scheme, ButcherTableau):
        return scheme.name
    for name, cls in _ADAPTIVE.items():
        if type(scheme) is cls:
            return name
    return type(scheme).__name__


class OdeSolution(NamedTuple):
    """Result of ``odeint(..., return_stages=True)`` or ``has_aux=True``.

    Attributes:
        h: the state at t = 1.
        stage_times: ``(n_steps, S)`` stage times ``(i + c_j) / n_steps``.
        aux: the vector field's auxiliary output at every stage, leaves ``(n_steps, S, ...)``
            (``None`` without ``has_aux``).
    """

    h: State
    stage_times: Float[Array, "n_steps stages"]
    aux: Aux


# ``from __future__ import annotations`` leaves the NamedTuple's field types as strings that only
# this module can resolve; store the evaluated types so documentation tools can read them too.
OdeSolution.__new__.__annotations__ = {
    "h": State,
    "stage_times": Float[Array, "n_steps stages"],
    "aux": Aux,
    "return": OdeSolution,
}


def _check_n_steps(n_steps: Any) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral):
        raise TypeError(
            f"n_steps must be a Python int (the number of fixed steps over [0, 1]), got "
            f"{type(n_steps).__name__} {n_steps!r}; pass it as a static int, e.g. n_steps=8."
        )
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}; e.g. n_steps = K.")
    return int(n_steps)


def resolve_unroll(unroll: bool | None) -> bool:
    """Whether the depth loop is unrolled: ``unroll``, or (None) True exactly on the CPU backend.

    XLA's CPU backend runs a convolution inside a ``while`` loop body far slower than the same
    convolution in straight-line code, its gradient even more (jax-ml/jax issue 12868): a
    ConvODENet train step measured 40x slower as one ``lax.scan`` than unrolled. On GPU and TPU
    one ``lax.scan`` is as fast and keeps the compile time flat in the number of steps, so
    ``None`` (auto) unrolls on ``jax.default_backend() == "cpu"`` only. Unrolling changes the
    program, not the arithmetic: both give the same result.
    """
    if unroll is None:
        return jax.default_backend() == "cpu"
    if not isinstance(unroll, (bool, np.bool_)):
        raise TypeError(
            f"unroll must be True, False or None (auto: unrolled on the CPU), got {unroll!r}."
        )
    return bool(unroll)


def _check_scheme(method: Any) -> ButcherTableau:
    if isinstance(method, ButcherTableau):
        return method
    if isinstance(method, str):
        raise TypeError(
            f"the scheme is an object, not a name: pass basis_ode.scheme_by_name({method!r}) "
            "(or basis_ode.RK4, basis_ode.EULER, ...)."
        )
    raise TypeError(
        f"expected a fixed-step scheme (a ButcherTableau such as basis_ode.RK4), got "
        f"{type(method).__name__} {method!r}."
    )


def stage_times(
    n_steps: int, method: ButcherTableau = EULER
) -> Float[np.ndarray, "n_steps stages"]:
    """Stage times ``(i + c_j) / n_steps`` of a fixed-step scheme, in float64.

    Computed as the exact rationals ``(i q + p) / (n_steps q)`` for ``c_j = p / q``.

    Returns:
        NumPy array of shape ``(n_steps, S)``, S the scheme's number of stages.
    """
    n = _check_n_steps(n_steps)
    tab = _check_scheme(method)
    i = np.arange(n)[:, None]
    num = np.array([c.numerator for c in tab.c])
    den = np.array([c.denominator for c in tab.c])
    return (i * den + num) / (n * den).astype(np.float64)


def stage_basis(
    basis: Basis, n_steps: int, method: ButcherTableau = EULER
) -> Float[np.ndarray, "n S K"]:
    """The basis values every stage of ``odeint`` reads, in float64.

    Entry ``[i, j]`` is ``basis.at_step(i, n_steps, c_j)``: at a stage with c_j = 1 (a step's
    right end) a discontinuous basis gives its left limit, i.e. the step's own cell.

    Returns:
        NumPy array of shape ``(n_steps, S, K)``.
    """
    _check_basis(basis, "basis")
    n = _check_n_steps(n_steps)
    tab = _check_scheme(method)
    steps = np.arange(n)
    out = np.empty((n, tab.n_stages, basis.K))
    for j, c in enumerate(tab.c):
        p, q, nc = c.numerator, c.denominator, basis.n_cells
        num = (steps * q + p) * nc
        den = n * q
        cell = (num - 1) // den if c == 1 else num // den
        cell = np.clip(cell, 0, nc - 1)
        s = (num - cell * den) / den
        out[:, j] = basis._assemble(cell, s.astype(np.float64), np)
    return out


def _x64_enabled() -> bool:
    return jax.dtypes.canonicalize_dtype(jnp.int64) == jnp.int64


def _float_dtype(tree) -> Any:
    dts = [
        jnp.asarray(x).dtype
        for x in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
    ]
    return jnp.result_type(*dts) if dts else jnp.result_type(float)


def _as_float_tree(tree):
    def one(x):
        x = jnp.asarray(x)
        return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))

    return jax.tree_util.tree_map(one, tree)


def _split_output(out, h, has_aux: bool):
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(
                "with has_aux=True the field must return a pair (dh, aux); got "
                f"{type(out).__name__}. Return (dh, aux) or set has_aux=False."
            )
        dh, aux = out
    else:
        dh, aux = out, None
    s_h = jax.tree_util.tree_structure(h)
    s_dh = jax.tree_util.tree_structure(dh)
    if s_h != s_dh:
        hint = (
            " If the field returns (dh, aux), pass has_aux=True."
            if isinstance(out, tuple) and len(out) == 2 and not has_aux
            else ""
        )
        raise ValueError(
            f"the field must return dh/dt with the same pytree structure as h0: h0 is {s_h}, "
            f"the field returned {s_dh}.{hint}"
        )
    for x, d in zip(jax.tree_util.tree_leaves(h), jax.tree_util.tree_leaves(dh)):
        if jnp.shape(x) != jnp.shape(d):
            raise ValueError(
                f"the field returned dh/dt of shape {jnp.shape(d)} for a state leaf of shape "
                f"{jnp.shape(x)}; dh/dt must have the state's shape."
            )
    return dh, aux


def _combine_stages(h, weights: list[float], ks: list) -> State:
    """h + sum_l weights[l] * ks[l] (terms with zero weight skipped), keeping h's dtypes."""
    terms = [(w, k) for w, k in zip(weights, ks) if w != 0.0]
    if not terms:
        return h

    def one(x, *kl):
        acc = x
        for (w, _), k in zip(terms, kl):
            acc = acc + w * k
        return acc.astype(x.dtype)

    return jax.tree_util.tree_map(one, h, *[k for _, k in terms])


def _fixed_step(field, h0, coeffs, basis, n_steps, tab, has_aux, return_stages, unroll):
    dtype = _float_dtype(coeffs)
    dt = 1.0 / n_steps
    S = tab.n_stages
    if n_steps * max(c.denominator for c in tab.c) * basis.n_cells >= 2**31 - 1:
        if not _x64_enabled():
            raise ValueError(
                f"n_steps = {n_steps} with {basis!r} overflows 32-bit stage indexing; use fewer "
                "steps or enable jax_enable_x64."
            )

    def body(carry, _):
        h, i = carry
        ks, auxs = [], []
        for j in range(S):
            theta = combine(coeffs, basis.at_step(i, n_steps, tab.c[j], dtype=dtype))
            hj = _combine_stages(h, [dt * float(a) for a in tab.a[j]], ks)
            dh, aux = _split_output(field(theta, hj), h, has_aux)
            ks.append(dh)
            auxs.append(aux)
        h_new = _combine_stages(h, [dt * float(b) for b in tab.b], ks)
        ys = None
        if has_aux:
            ys = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *auxs)
        return (h_new, i + 1), ys

    (h, _), aux = jax.lax.scan(
        body, (h0, jnp.asarray(0)), None, length=n_steps, unroll=n_steps if unroll else 1
    )
    if not (has_aux or return_stages):
        return h
    tdtype = jnp.result_type(dtype, _float_dtype(h0))
    steps = jax.lax.iota(jnp.int64 if _x64_enabled() else jnp.int32, n_steps)
    times = jnp.stack(
        [
            (steps * c.denominator + c.numerator).astype(tdtype) / (n_steps * c.denominator)
            for c in tab.c
        ],
        axis=1,
    )
    return OdeSolution(h=h, stage_times=times, aux=aux)


MAX_PROGRAMS = 64
"""How many compiled solve programs are kept (least recently used dropped first, with their
executables; :class:`trainkit.internal.ProgramCache` says why the number is bounded)."""
_PROGRAMS = ProgramCache(MAX_PROGRAMS)


def _program(key: tuple, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    try:
        return _PROGRAMS.get(key, build)
    except TypeError as err:
        raise TypeError(
            f"odeint: the field's non-array parts must be hashable ({err}); make the field a "
            "function or an equinox.Module whose arrays are leaves."
        ) from None


def _static_key(static: Any) -> tuple:
    """A hashable key of the field's non-array part: its tree structure and its leaves."""
    leaves, treedef = jax.tree_util.tree_flatten(static)
    return treedef, tuple(leaves)


def _compiled(kind: str, solve: Callable, field, h0, coeffs, settings: tuple):
    """``solve(field, h0, coeffs, *settings)`` through one ``jax.jit`` program per (kind, static
    part of the field, settings); the field's arrays (``eqx.partition``), h0 and coeffs are the
    program's inputs."""
    dynamic, static = eqx.partition(field, eqx.is_array)

    def build():
        return jax.jit(lambda d, h, c: solve(eqx.combine(d, static), h, c, *settings))

    return _program((kind, _static_key(static), settings), build)(dynamic, h0, coeffs)


def _solve_fixed(field, h0, coeffs, basis, n_steps, tab, has_aux, return_stages, unroll):
    """The fixed-step solve, compiled once per static (field, basis, n_steps, tableau, flags)."""
    settings = (basis, n_steps, tab, has_aux, return_stages, unroll)
    return _compiled("fixed", _fixed_step, field, h0, coeffs, settings)


def _adaptive(field, h0, coeffs, basis, n_steps, solver, rtol, atol, max_steps):
    """The adaptive diffrax solve, compiled once per static field part and settings."""
    settings = (basis, n_steps, solver, float(rtol), float(atol), int(max_steps))
    return _compiled("adaptive", _adaptive_solve, field, h0, coeffs, settings)


def _adaptive_solve(field, h0, coeffs, basis, n_steps, solver, rtol, atol, max_steps):
    dtype = jnp.result_type(_float_dtype(coeffs), _float_dtype(h0))

    def vf(t, y, args):
        dh, _ = _split_output(field(combine(args, basis(t)), y), y, False)
        return dh

    jumps = [float(b) for b in basis.breakpoints[1:-1]]
    kwargs = {"jump_ts": jnp.asarray(jumps, dtype=dtype)} if jumps else {}
    controller = diffrax.PIDController(rtol=rtol, atol=atol, **kwargs)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vf),
        solver,
        t0=jnp.asarray(0.0, dtype),
        t1=jnp.asarray(1.0, dtype),
        dt0=jnp.asarray(1.0 / n_steps, dtype),
        y0=h0,
        args=coeffs,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=controller,
        max_steps=max_steps,
    )
    return jax.tree_util.tree_map(lambda y: y[0], sol.ys)


def odeint(
    field: Callable[..., Any],
    h0: State,
    coeffs: Coefficients | BasisExpansion,
    basis: Basis | None = None,
    *,
    n_steps: int,
    method: Scheme = EULER,
    return_stages: bool = False,
    has_aux: bool = False,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 4096,
    unroll: bool | None = None,
) -> State | OdeSolution:
    """Solve ``dh/dt = F(theta(t), h)`` on t in [0, 1] with ``theta(t) = sum_k phi_k(t) theta_k``.

    Fixed-step schemes (``EULER`` order 1, ``MIDPOINT`` 2, ``RK4`` 4, ``RK4_38`` 4) take ``n_steps``
    steps of size ``dt = 1 / n_steps`` in one ``lax.scan``: rolled on GPU and TPU (the compiled
    program does not grow with n_steps), fully unrolled on a CPU (``unroll``, see
    :func:`resolve_unroll`; the same arithmetic, 40x faster for convolutional fields there).
    Step i evaluates stage j at ``t = (i + c_j) / n_steps`` with theta read by
    ``basis.at_step`` (a stage at c_j = 1 reads the left limit, staying in the step's cell).
    With Euler, ``PiecewiseConstant(K)`` and ``n_steps = K`` this is exactly the ResNet loop
    ``h <- h + F(theta_k, h) / K``.

    A diffrax solver object (``diffrax.Tsit5()``, ``diffrax.Dopri5()``, any explicit
    ``diffrax.AbstractSolver``) solves adaptively (PID step control with ``rtol``/``atol``,
    stepping exactly onto the basis breakpoints, initial step ``1 / n_steps``) for stateless
    fields: ``has_aux`` and ``return_stages`` are not available there.

    Arguments:
        field: ``field(theta, h) -> dh/dt`` (same pytree structure and shapes as h), or
            ``(dh/dt, aux)`` with ``has_aux=True``; theta has the structure of ``coeffs``
            without the leading K axis.
        h0: initial state (pytree of arrays).
        coeffs: a :class:`BasisExpansion` (its basis is used), or a plain coefficient pytree
            with leaves ``(basis.K, ...)`` together with ``basis``.
        basis: the basis of plain ``coeffs`` (None for an expansion; if given with an
            expansion it must be the expansion's).
        n_steps: number of fixed steps (static int >= 1).
        method: a :class:`ButcherTableau` (``EULER``, ``MIDPOINT``, ``RK4``, ``RK4_38``) or a
            diffrax solver object; :func:`scheme_by_name` turns a name into one.
        return_stages: return an ``OdeSolution`` with the stage times.
        has_aux: the field returns ``(dh, aux)``; aux of every stage is stacked into
            ``OdeSolution.aux`` with leaves ``(n_steps, S, ...)``.
        rtol, atol: tolerances of the adaptive methods.
        max_steps: step limit of the adaptive methods.
        unroll: unroll the fixed-step loop (True), keep it rolled (False), or None: unrolled
            exactly when ``jax.default_backend() == "cpu"``.

    Returns:
        h(1) (same structure as h0), or ``OdeSolution(h, stage_times, aux)`` when
        ``return_stages`` or ``has_aux``.

    Examples:
        >>> import jax.numpy as jnp, basis_ode as bo
        >>> coeffs = {"w": jnp.linspace(0.0, 1.0, 4)[:, None] * jnp.ones((4, 3))}  # K = 4
        >>> field = lambda theta, h: jnp.tanh(theta["w"] * h)
        >>> h1 = bo.odeint(field, jnp.full(3, 0.5), coeffs, bo.Hat(4), n_steps=8, method=bo.RK4)
        >>> h1.shape
        (3,)
    """
    if not callable(field):
        raise TypeError(
            f"field must be callable field(theta, h) -> dh, got {type(field).__name__}."
        )
    if isinstance(coeffs, BasisExpansion):
        if basis is not None and basis != coeffs.basis:
            raise ValueError(
                f"odeint: the coefficients are in {coeffs.basis!r} but basis={basis!r} was "
                "given; leave basis out (an expansion carries its own) or map the coefficients "
                f"first with expansion.project({basis!r})."
            )
        coeffs, basis = coeffs.coeffs, coeffs.basis
    if basis is None:
        raise TypeError(
            "odeint: plain coefficients need their basis: odeint(field, h0, coeffs, Hat(K), ...) "
            "or pass a BasisExpansion(basis, coeffs)."
        )
    _check_basis(basis, "basis")
    check_coefficients(coeffs, basis)
    n_steps = _check_n_steps(n_steps)
    unroll = resolve_unroll(unroll)
    h0 = _as_float_tree(h0)
    if not jax.tree_util.tree_leaves(h0):
        raise ValueError("h0 has no array leaves; pass the initial state as an array or pytree.")
    if isinstance(method, diffrax.AbstractSolver):
        if has_aux or return_stages:
            raise ValueError(
                f"method={method!r} (adaptive, diffrax) supports stateless fields only: "
                "has_aux and return_stages need a fixed-step scheme such as basis_ode.RK4."
            )
        if not (rtol > 0 and atol > 0):
            raise ValueError(f"rtol and atol must be positive, got rtol={rtol}, atol={atol}.")
        return _adaptive(field, h0, coeffs, basis, n_steps, method, rtol, atol, max_steps)
    tab = _check_scheme(method)
    return _solve_fixed(field, h0, coeffs, basis, n_steps, tab, has_aux, return_stages, unroll)


def least_squares_fit(
    basis: Basis,
    times: Float[ArrayLike, "*samples"],
    values: PyTree[Float[ArrayLike, ...]],
    *,
    ridge: float = 1e-6,
    method: ButcherTableau | None = None,
) -> Coefficients:
    """Fit samples ``values`` taken at ``times`` back onto the K basis coefficients.

    With ``Phi`` the ``(N, K)`` matrix of basis values at the N sample times, every leaf (its
    sample axes flattened to N) is mapped by ``Q = (Phi^T Phi + ridge I)^{-1} Phi^T``: ridge
    regression, so a coefficient with no samples in its support gets 0 instead of NaN. With
    ``ridge = 0`` the pseudo-inverse ``pinv(Phi)`` is used (minimum-norm least squares).

    Arguments:
        basis: the target basis.
        times: sample times, any shape. When they are an ``odeint`` stage grid, pass
            ``method`` too: ``times`` must then have shape ``(n_steps, S)`` and Phi is the exact
            stage basis (``stage_basis``), so a stage at a step's right end counts for the step's
            own cell (left limit) rather than the next.
        values: pytree whose leaves have shape ``times.shape + (...)``.
        ridge: Tikhonov parameter lambda >= 0.
        method: the fixed-step scheme that produced the stage grid, or None for plain times
            (evaluated with ``basis(t)``).

    Returns:
        Coefficient pytree with leaves ``(K, ...)``.
    """
    _check_basis(basis, "basis")
    if not (isinstance(ridge, numbers.Real) and ridge >= 0):
        raise ValueError(f"ridge must be a non-negative float, got {ridge!r}.")
    tshape = tuple(np.shape(times))
    N = int(np.prod(tshape))
    if N == 0:
        raise ValueError("times is empty; pass at least one sample time.")
    if method is not None:
        tab = _check_scheme(method)
        if len(tshape) != 2 or tshape[1] != tab.n_stages:
            raise ValueError(
                f"with method={tab.name!r} times must be a stage grid of shape (n_steps, "
                f"{tab.n_stages}) as in OdeSolution.stage_times, got shape {tshape}."
            )
        Phi = jnp.asarray(stage_basis(basis, tshape[0], method).reshape(N, basis.K))
    else:
        t = _as_float_tree(jnp.reshape(jnp.asarray(times), (N,)))
        Phi = jax.vmap(basis)(t)

    leaves = jax.tree_util.tree_leaves(values)
    if not leaves:
        raise ValueError("values has no array leaves.")
    for leaf in leaves:
        if tuple(np.shape(leaf))[: len(tshape)] != tshape:
            raise ValueError(
                f"every values leaf must start with the shape of times {tshape}, got a leaf of "
                f"shape {np.shape(leaf)}; stack the samples in the same layout as times."
            )

    return _ridge_fit(Phi, _as_float_tree(values), float(ridge), len(tshape))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _ridge_fit(Phi, values, ridge, n_sample_axes):
    K = Phi.shape[1]

    def one(leaf):
        P = Phi.astype(leaf.dtype)
        if ridge > 0:
            A = P.T @ P + ridge * jnp.eye(K, dtype=leaf.dtype)
            Q = jnp.linalg.solve(A, P.T)
        else:
            Q = jnp.linalg.pinv(P)
        flat = leaf.reshape((P.shape[0],) + leaf.shape[n_sample_axes:])
        return jnp.einsum("kn,n...->k...", Q, flat)

    return jax.tree_util.tree_map(one, values)
