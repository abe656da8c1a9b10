"""Adapt a trained ODE-Net to a budget: measure the accuracy-cost frontier, choose, compress.

``plan(model, variables, validation, budget)`` answers "this model must run in 3 ms (or fit in
200 kB): which basis, K, steps and scheme give the best accuracy, and how sure am I?" by change
of basis alone, from the trained coefficients (Queiruga et al. 2021: "quick and rigorous
adaptation between computational environments"):

1. Grid: every (basis family, K, n_steps, scheme, map) of a :class:`SearchSpace`, the same in
   every ODE block, reached from the trained coefficients by :func:`basis_ode.compress`'s linear
   maps. Each configuration is evaluated on the validation data (accuracy), its variables
   counted (bytes, exact), its compiled forward pass analysed (peak memory) and timed on one
   batch (latency: median of repeated calls after warm-up, then again round-robin over all
   configurations once everything is measured; the timer is injectable).
2. Certificate: every point is evaluated again at 2n and 4n steps on the first
   ``certificate_examples`` validation examples (:class:`basis_ode.Certificate`); a point whose
   logits move by more than the tolerance is "not a converged ODE" and is not chosen by default.
3. Per block: from the most accurate certified grid point (or the trained configuration), two
   greedy walks lower one block's K (the bytes walk) or one block's steps (the latency walk)
   one grid notch at a time, taking the move that loses the least validation accuracy per
   relative cost saved, until no move saves cost or ``max_walk_steps`` moves were made. At most
   ``blocks`` configurations are measured per move, so a walk measures at most
   ``blocks * max_walk_steps`` (bounded, not exhaustive).
4. Choice: :meth:`basis_ode.Frontier.choose` (most accurate certified point within every limit;
   ties to fewer bytes, then lower latency).

Compiled programs are shared by every point of one structure (bases, steps, scheme, batch
shape): the coefficients are arguments of the program, so the maps (projection and
interpolation), the certificate's refinements that are grid points themselves, the per-block
walks' revisits and every batch reuse a program; ``Frontier.stats`` counts the compilations.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from trainkit.internal import variant_or_warn

from ._bases import BASES, Basis, Hat, Legendre
from ._budget import Budget, Bytes, Latency, as_budgets
from ._certificate import TOLERANCE, certify
from ._compress import CompressionMap, Interpolate, Project, as_compression_map, param_bytes
from ._eval_data import EvalData, pad_eval_data, peak_memory, unpack
from ._expansion import expansions, is_expansion
from ._frontier import Configuration, Frontier, Point
from ._integrate import EULER, MIDPOINT, ButcherTableau, resolve_unroll, scheme_by_name

__all__: list[str] = []  # public names are re-exported by basis_ode/__init__.py

#: A timer: ``timer(config, run) -> seconds`` of one call of ``run`` (the compiled forward pass
#: of ``config`` on one batch, blocking until ready). Inject a table lookup to make a plan
#: independent of the clock.
Timer = Callable[[Configuration, Callable[[], Any]], float]


def wall_clock(config: Configuration, run: Callable[[], Any]) -> float:
    """The default timer: the wall time of one call of ``run`` (``time.perf_counter`` around
    the call and ``jax.block_until_ready`` of its result), in seconds."""
    del config
    t0 = time.perf_counter()
    jax.block_until_ready(run())
    return time.perf_counter() - t0


def _powers_of_two(top: int) -> tuple[int, ...]:
    out, k = [], 1
    while k < top:
        out.append(k)
        k *= 2
    return tuple(out) + (top,)


class WalkStart(abc.ABC):
    """Where two of the planner's per-block walks start (step 3 of the module docstring)."""

    name: ClassVar[str]
    """The start's name in ``plan.json``."""

    @abc.abstractmethod
    def start(self, measure: Any, points: list[Point], source: Configuration) -> Point | None:
        """The starting point among the grid's measured ``points`` (or measured now with
        ``measure``), certified; None: no start."""


@dataclasses.dataclass(frozen=True)
class FromBest(WalkStart):
    """The most accurate certified grid point (ties to fewer bytes, then to lower latency)."""

    name: ClassVar[str] = "best"

    def start(self, measure: Any, points: list[Point], source: Configuration) -> Point | None:
        starts = [p for p in points if p.certified]
        if not starts:
            return None
        return min(starts, key=lambda p: (-p.accuracy, p.model_bytes, p.latency_ms or 0.0))


@dataclasses.dataclass(frozen=True)
class FromTrained(WalkStart):
    """The configuration the model was trained in."""

    name: ClassVar[str] = "trained"

    def start(self, measure: Any, points: list[Point], source: Configuration) -> Point | None:
        return measure.certified(measure.point(source, "trained"))


WALK_STARTS: dict[str, type[WalkStart]] = {c.name: c for c in (FromBest, FromTrained)}
"""The walk starts by their name in ``plan.json`` (the former spelling of ``walk_from``)."""


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The configurations the planner measures.

    Attributes:
        bases: basis families (``Basis`` subclasses such as ``Hat``); None: the trained family,
            ``Hat`` and ``Legendre``.
        Ks: numbers of basis functions; None: the powers of two below the largest trained K, and
            that K. Combinations a family refuses (odd K for ``PiecewiseLinear``) are skipped.
        n_steps: step counts; None: the powers of two below the largest trained step count,
            and that count.
        schemes: fixed-step schemes (``EULER``, ``MIDPOINT``, ``RK4``, ...).
        methods: maps from the trained coefficients, ``Project()`` and/or ``Interpolate()``
            (both by default: the two maps share every compiled program); names still work and
            warn.
        per_block: run the greedy per-block walks (step 3 of the module docstring).
        max_walk_steps: the most moves of one walk.
        walk_from: where walks start, each start two walks: ``FromBest()`` (the most accurate
            certified grid point, ties to fewer bytes) and/or ``FromTrained()`` (the
            configuration the model was trained in); the names "best" and "trained" still work
            and warn.
    """

    # sequences and names are accepted (the command line passes lists); stored as tuples
    bases: Sequence[type[Basis] | str] | None = None
    Ks: Sequence[int] | None = None
    n_steps: Sequence[int] | None = None
    schemes: Sequence[ButcherTableau | str] = (EULER, MIDPOINT)
    methods: Sequence[CompressionMap | str] = (Project(), Interpolate())
    per_block: bool = True
    max_walk_steps: int = 12
    walk_from: Sequence[WalkStart | str] | WalkStart | str = (FromBest(),)

    def __post_init__(self) -> None:
        given = self.walk_from
        where = (given,) if isinstance(given, str | WalkStart) else tuple(given)
        if not where:
            raise ValueError("SearchSpace.walk_from must hold FromBest() and/or FromTrained().")
        starts = tuple(
            variant_or_warn(
                w,
                WalkStart,
                WALK_STARTS,
                "walk_from",
                "basis_ode.SearchSpace",
                stacklevel=4,
                prefix="basis_ode.",
            )  # fmt: skip
            for w in where
        )
        object.__setattr__(self, "walk_from", tuple(dict.fromkeys(starts)))

        def ints(name: str) -> None:
            v = getattr(self, name)
            if v is not None:
                v = tuple(sorted({int(k) for k in v}))
                if not v or v[0] < 1:
                    raise ValueError(f"SearchSpace.{name} must be integers >= 1, got {v}.")
                object.__setattr__(self, name, v)

        ints("Ks")
        ints("n_steps")
        if self.bases is not None:
            fams = tuple(BASES[b] if isinstance(b, str) else b for b in self.bases)
            if not fams or not all(isinstance(f, type) and issubclass(f, Basis) for f in fams):
                raise TypeError(f"SearchSpace.bases must be basis families such as "
                                f"basis_ode.Hat, got {self.bases!r}.")  # fmt: skip
            object.__setattr__(self, "bases", tuple(dict.fromkeys(fams)))
        schemes = tuple(scheme_by_name(s) if isinstance(s, str) else s for s in self.schemes)
        if not schemes or not all(isinstance(s, ButcherTableau) for s in schemes):
            raise TypeError(f"SearchSpace.schemes must be fixed-step schemes such as "
                            f"basis_ode.EULER, got {self.schemes!r}.")  # fmt: skip
        object.__setattr__(self, "schemes", schemes)
        methods = tuple(as_compression_map(m, "SearchSpace.methods") for m in self.methods)
        if not methods:
            raise ValueError("SearchSpace.methods must hold Project() and/or Interpolate().")
        object.__setattr__(self, "methods", tuple(dict.fromkeys(methods)))

    def resolved(self, source: Configuration) -> SearchSpace:
        """The space with its defaults filled in from the trained configuration."""
        fam = type(source.bases[0])
        bases = self.bases or tuple(dict.fromkeys((fam, Hat, Legendre)))
        Ks = self.Ks or _powers_of_two(max(b.K for b in source.bases))
        steps = self.n_steps or _powers_of_two(max(source.n_steps))
        return dataclasses.replace(self, bases=bases, Ks=Ks, n_steps=steps)

    def grid(self, source: Configuration) -> list[Configuration]:
        """Every uniform configuration of the (resolved) space, in a fixed order. K = 1 is
        measured in the first family only (in every family it is the constant function, and
        projection gives the same mean), and the trained basis by the identity map only."""
        out, blocks = [], len(source.bases)
        for i, fam in enumerate(self.bases):
            for K in self.Ks:
                basis = _basis_or_none(fam, K)
                if basis is None or (K == 1 and i > 0):
                    continue
                same = (basis,) * blocks == source.bases
                for scheme in self.schemes:
                    for n in self.n_steps:
                        for m in (Project(),) if same else self.methods:
                            out.append(Configuration.uniform(basis, n, scheme, blocks, m))
        return out


def _basis_or_none(family: type[Basis], K: int) -> Basis | None:
    try:
        return family(K)
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------
# blocks: which expansions belong to which ODE block


def _block_key(path: tuple) -> tuple:
    """The block of an expansion at ``path`` (collection first): the keys between."""
    keys = tuple(getattr(p, "key", getattr(p, "name", p)) for p in path)
    return keys[1:]


def _expansion_paths(tree: Any) -> list[tuple]:
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_expansion)[0]
    return [path for path, x in leaves if is_expansion(x)]


def block_names(variables: Any) -> tuple[tuple, ...]:
    """The ODE blocks of ``variables`` in order: the key path of each ``params`` expansion."""
    paths = _expansion_paths({"params": variables["params"]})
    if not paths:
        raise ValueError(
            "plan: no ODE block (basis expansion) in the variables; pass the variables of a "
            "trained ConvODENet or ODETransformerTagger."
        )
    return tuple(_block_key(p) for p in paths)


def source_configuration(model: Any, variables: Any) -> Configuration:
    """The configuration the model runs in as given: each block's basis, the model's steps
    (``None``: each block's K) and scheme."""
    bases = tuple(e.basis for e in expansions({"params": variables["params"]}))
    n = getattr(model, "n_steps", None)
    steps = tuple(n) if isinstance(n, tuple | list) else (n,) * len(bases)
    steps = tuple(b.K if s is None else int(s) for b, s in zip(bases, steps))
    return Configuration(bases, steps, getattr(model, "method", EULER))


def adapt(model: Any, variables: Any, config: Configuration) -> tuple[Any, Any]:
    """The model and variables of ``config``: every block's coefficients mapped to its basis
    (``config.method``: projection or interpolation, the maps of :func:`basis_ode.compress`),
    and the model cloned with the steps and scheme.

    Arguments:
        model: the trained model (a ConvODENet or ODETransformerTagger).
        variables: its variables.
        config: the :class:`basis_ode.Configuration` (e.g. ``plan(...).choice.config``).

    Returns:
        ``(model, variables)``, ready for ``model.apply(variables, x)`` and
        :func:`basis_ode.save_model`.
    """
    new = _map_blocks(variables, config)
    kw = dict(basis=config.bases[0], n_steps=config.n_steps_arg, method=config.scheme)
    return model.clone(**kw), new


def _map_blocks(variables: Any, config: Configuration) -> Any:
    names = block_names(variables)
    if len(names) != len(config.bases):
        raise ValueError(
            f"the configuration has {len(config.bases)} blocks but the model has {len(names)} "
            f"ODE blocks ({', '.join('/'.join(map(str, n)) for n in names)})."
        )
    index = {n: i for i, n in enumerate(names)}

    def one(path: tuple, x: Any) -> Any:
        if not is_expansion(x):
            return x
        dst = config.bases[index[_block_key(path)]]
        if dst == x.basis:
            return x  # the identity map (exact)
        return config.method(x, dst)

    return jax.tree_util.tree_map_with_path(one, dict(variables), is_leaf=is_expansion)


# --------------------------------------------------------------------------------------------
# measuring: one compiled program per structure


@dataclasses.dataclass
class _Run:
    """One evaluation: correct count, total, and the logits of the certificate's examples."""

    correct: int
    total: int
    logits: np.ndarray


class _Measurer:
    """Evaluates configurations with one compiled program per (structure, unroll), counting
    the compilations; caches compressed variables, evaluations, latencies and peak memory."""

    def __init__(self, model, variables, data: EvalData, cert: EvalData, timer: Timer,
                 timing: tuple[int, int], tolerance: float, source: Configuration):  # fmt: skip
        self.model, self.variables, self.data, self.cert = model, variables, data, cert
        self.timer, self.tolerance, self.source = timer, float(tolerance), source
        self.repeats, self.warmup = timing
        self.unroll = resolve_unroll(getattr(model, "unroll", None))
        self.programs: dict[tuple, Any] = {}
        self.compilations, self.compile_seconds, self.timed, self.evaluations = 0, 0.0, 0, 0
        self._vars: dict[tuple, Any] = {}
        self._runs: dict[tuple, _Run] = {}
        self._costs: dict[tuple, tuple[float, int | None]] = {}
        self._configs: dict[tuple, Configuration] = {}
        self._points: dict[Configuration, Point] = {}

    def variables_of(self, config: Configuration) -> Any:
        key = (config.bases, config.method)
        if key not in self._vars:
            same = config.bases == self.source.bases
            self._vars[key] = self.variables if same else _map_blocks(self.variables, config)
        return self._vars[key]

    def program(self, config: Configuration, unroll: bool) -> Any:
        key = (config.structure, unroll)
        if key not in self.programs:
            model = self.model.clone(unroll=unroll)
            n_steps, scheme = config.n_steps_arg, config.scheme

            def forward(v, x, m):
                kw = {} if m is None else {"mask": m}
                return model.apply(v, x, train=False, n_steps=n_steps, scheme=scheme, **kw)

            t0 = time.perf_counter()
            v, (x, m) = self.variables_of(config), self._batch(self.data, 0)
            self.programs[key] = jax.jit(forward).lower(v, x, m).compile()
            self.compile_seconds += time.perf_counter() - t0
            self.compilations += 1
        return self.programs[key]

    @staticmethod
    def _batch(data: EvalData, i: int) -> tuple:
        bs = data.batch_size
        m = None if data.mask is None else jnp.asarray(data.mask[i : i + bs])
        return jnp.asarray(data.xs[i : i + bs]), m

    def run(self, config: Configuration, *, full: bool) -> _Run:
        """Evaluate on all validation data (``full``) or on the certificate's examples."""
        key = (config, full)
        if key in self._runs:
            return self._runs[key]
        if not full and (config, True) in self._runs:
            return self._runs[(config, True)]  # the certificate's examples lead the full set
        data = self.data if full else self.cert
        self.evaluations += 1
        compiled = self.program(config, self.unroll if full else self._cert_unroll(config))
        v = self.variables_of(config)
        correct, logits, n_cert = 0.0, [], len(self.cert.xs)
        for i in range(0, len(data.xs), data.batch_size):
            z = np.asarray(compiled(v, *self._batch(data, i)))
            sl = slice(i, i + data.batch_size)
            correct += float(((z.argmax(-1) == data.ys[sl]) * data.valid[sl]).sum())
            if i < n_cert:
                logits.append(z)
        out = _Run(int(round(correct)), int(round(data.valid.sum())),
                   np.concatenate(logits)[:n_cert])  # fmt: skip
        self._runs[key] = out
        return out

    def _cert_unroll(self, config: Configuration) -> bool:
        """A certificate-only program reuses the measured program where there is one, else it
        is a rolled scan (compiles faster; the same arithmetic)."""
        return self.unroll if (config.structure, self.unroll) in self.programs else False

    def _run_of(self, config: Configuration) -> Callable[[], Any]:
        compiled = self.program(config, self.unroll)
        v, (x, m) = self.variables_of(config), self._batch(self.data, 0)
        return lambda: compiled(v, x, m)

    def costs(self, config: Configuration) -> tuple[float, int | None]:
        """(latency in ms, peak bytes) of the structure, measured once per structure: the
        median of ``repeats`` timed calls after ``warmup`` calls (provisional: see retime)."""
        key = config.structure
        if key not in self._costs:
            run = self._run_of(config)
            for _ in range(self.warmup):
                jax.block_until_ready(run())
            times = [self.timer(config, run) for _ in range(self.repeats)]
            self.timed += 1
            peak = peak_memory(self.program(config, self.unroll))
            self._costs[key] = (1e3 * float(np.median(times)), peak)
            self._configs[key] = config
        return self._costs[key]

    def retime(self) -> None:
        """Time every measured structure again, round-robin (``repeats`` rounds of one call
        each, after one untimed round), so that load from other processes falls on all alike;
        every point's latency becomes the median of its structure's rounds."""
        runs = {k: self._run_of(c) for k, c in self._configs.items()}
        for run in runs.values():
            jax.block_until_ready(run())
        samples: dict[tuple, list[float]] = {k: [] for k in runs}
        for _ in range(self.repeats):
            for k, run in runs.items():
                samples[k].append(self.timer(self._configs[k], run))
        for k, ts in samples.items():
            self._costs[k] = (1e3 * float(np.median(ts)), self._costs[k][1])
        for c, p in self._points.items():
            self._points[c] = dataclasses.replace(p, latency_ms=self._costs[c.structure][0])

    def point(self, config: Configuration, search: str) -> Point:
        if config not in self._points:
            r = self.run(config, full=True)
            latency, peak = self.costs(config)
            v = self.variables_of(config)
            self._points[config] = Point(config, r.correct, r.total, latency, param_bytes(v),
                                         param_bytes(v["params"]), peak, None, search)  # fmt: skip
        return self._points[config]

    def certified(self, p: Point) -> Point:
        if p.certificate is None:
            runs = [self.run(p.config.refined(f), full=False) for f in (1, 2, 4)]
            cert = certify([r.logits for r in runs], self.cert.ys[: len(runs[0].logits)],
                           self.cert.valid[: len(runs[0].logits)],
                           [p.config.refined(f).n_steps for f in (1, 2, 4)],
                           tolerance=self.tolerance)  # fmt: skip
            p = dataclasses.replace(p, certificate=cert)
            self._points[p.config] = p
        return p


def _eval_sets(validation: Sequence[Any], batch_size: int, cert_examples: int) -> tuple:
    xs, ys, mask = unpack(validation)
    if len(xs) == 0 or len(xs) != len(ys):
        raise ValueError(
            f"validation: inputs and labels must be non-empty and equally long, got {len(xs)} "
            f"and {len(ys)}."
        )
    bs = min(int(batch_size), len(xs))
    data = EvalData(*pad_eval_data(xs, ys, mask, bs), 1)
    m = min(int(cert_examples), len(xs))
    cmask = None if mask is None else mask[:m]
    cert = EvalData(*pad_eval_data(xs[:m], ys[:m], cmask, bs), 1)
    return data, cert, len(xs), m


def _device() -> str:
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform)
    return f"{d.platform} ({kind}), {os.cpu_count()} CPU cores visible"


# --------------------------------------------------------------------------------------------
# the per-block walks


def _lower(values: Sequence[int], v: int) -> int | None:
    below = [x for x in values if x < v]
    return max(below) if below else None


def _moves(config: Configuration, kind: type[Budget], space: SearchSpace) -> list[Configuration]:
    """Configurations one grid notch cheaper in one block for the cost ``kind`` limits: lower
    steps for a per-batch cost (latency), else lower K (bytes)."""
    out = []
    for b in range(len(config.bases)):
        if not kind.per_batch:
            k = config.bases[b].K
            while (k := _lower(space.Ks, k)) is not None:
                basis = _basis_or_none(type(config.bases[b]), k)
                if basis is not None:
                    bases = config.bases[:b] + (basis,) + config.bases[b + 1 :]
                    out.append(dataclasses.replace(config, bases=bases))
                    break
        else:
            n = _lower(space.n_steps, config.n_steps[b])
            if n is not None:
                steps = config.n_steps[:b] + (n,) + config.n_steps[b + 1 :]
                out.append(dataclasses.replace(config, n_steps=steps))
    return out


def _walk(measure: _Measurer, start: Point, kind: type[Budget], space: SearchSpace, bar) -> None:
    """Greedy: from ``start``, take the move losing the least accuracy per relative saving of
    the cost ``kind`` limits."""
    cost = kind.cost
    current = start
    for _ in range(space.max_walk_steps):
        options = []
        for c in _moves(current.config, kind, space):
            p = measure.certified(measure.point(c, "per-block" if not c.is_uniform else "grid"))
            bar.update(1)
            c0, c1 = getattr(current, cost), getattr(p, cost)
            if c0 is not None and c1 is not None and c1 < c0:
                saving = (c0 - c1) / c0
                score = (current.accuracy - p.accuracy) / saving
                options.append(((score, -saving, p.model_bytes, p.config.label), p))
        if not options:
            return
        current = min(options, key=lambda o: o[0])[1]


# --------------------------------------------------------------------------------------------
# the public functions


def measure_frontier(
    model: Any,
    variables: Any,
    validation: Sequence[Any],
    *,
    space: SearchSpace | None = None,
    batch_size: int = 256,
    timer: Timer = wall_clock,
    repeats: int = 7,
    warmup: int = 1,
    tolerance: float = TOLERANCE,
    certificate_examples: int = 512,
    progress: bool = True,
    notes: str = "",
) -> Frontier:
    """Measure every configuration of ``space`` (and the per-block walks) on ``validation``.

    Latency: each structure is timed when first measured (``warmup`` untimed calls, then the
    median of ``repeats`` timed calls; the walks decide on these), and once everything is
    measured, every structure again round-robin, ``repeats`` rounds of one call each: the
    latency of a point is the median of its structure's rounds, so load from other processes
    falls on all configurations alike.

    Arguments:
        model: a trained :class:`basis_ode.ConvODENet` or :class:`basis_ode.ODETransformerTagger`.
        variables: its variables (any basis; each block's own is read).
        validation: ``(inputs, labels)`` (or ``(tokens, tags, mask)`` for the tagger): the data
            the choice is made on. Never pass the test split to choose.
        space: the :class:`basis_ode.SearchSpace` (defaults filled from the trained model).
        batch_size: the batch of every forward pass; latency and peak memory are per batch.
        timer: ``timer(config, run) -> seconds`` of one call (default
            :func:`basis_ode.wall_clock`); a plan is deterministic given its timings.
        repeats: timed calls per structure (and round-robin rounds at the end).
        warmup: untimed calls before a structure is first timed.
        tolerance: the certificate's tolerance on the relative logit change from n to 4n.
        certificate_examples: the first so many validation examples certify each point.
        progress: a progress bar on a terminal.
        notes: what the timings should be read with (e.g. other load on the machine).

    Returns:
        The :class:`basis_ode.Frontier`; its ``stats`` count points, structures, evaluations
        and compilations.
    """
    t_start = time.perf_counter()
    _check_options(batch_size, tolerance, certificate_examples, repeats, warmup)
    names = block_names(variables)
    source = source_configuration(model, variables)
    space = (space or SearchSpace()).resolved(source)
    data, cert, n_val, n_cert = _eval_sets(validation, batch_size, certificate_examples)
    measure = _Measurer(model, variables, data, cert, timer, (int(repeats), int(warmup)),
                        tolerance, source)  # fmt: skip
    grid = space.grid(source)
    bar = tqdm(total=2 * len(grid), desc="plan", disable=not progress or not _terminal())
    points = _measure_grid(measure, grid, bar)
    starts = _walk_starts(measure, points, source, space) if len(names) > 1 else []
    bar.total += 2 * len(starts) * len(names) * space.max_walk_steps
    for start in starts:
        for kind in (Bytes, Latency):
            _walk(measure, start, kind, space, bar)
    bar.close()
    measure.retime()
    all_points = tuple(measure._points.values())
    stats = _stats(measure, all_points, len(grid), space, starts)
    stats.update(seconds=time.perf_counter() - t_start, validation_examples=n_val,
                 certificate_examples=n_cert)  # fmt: skip
    return Frontier(all_points, source, data.batch_size, _device(), notes, stats)


def _measure_grid(measure: _Measurer, grid: list[Configuration], bar: Any) -> list[Point]:
    """Every grid point measured, then certified (each certificate reuses the grid's programs
    where its refined steps are grid steps), in grid order."""
    for c in grid:
        measure.point(c, "grid")
        bar.update(1)
    points = []
    for c in grid:
        points.append(measure.certified(measure.point(c, "grid")))
        bar.update(1)
    return points


def _stats(measure: _Measurer, points: tuple[Point, ...], n_grid: int, space: SearchSpace,
           starts: list[Point]) -> dict[str, Any]:  # fmt: skip
    return {
        "points": len(points),
        "grid_points": n_grid,
        "per_block_points": sum(p.search == "per-block" for p in points),
        "structures": len({p.config.structure for p in points}),
        "evaluations": measure.evaluations,
        "compilations": measure.compilations,
        "compile_seconds": measure.compile_seconds,
        "timed_structures": measure.timed,
        "repeats": measure.repeats,
        "space": _space_json(space),
        "walk_starts": [p.config.label for p in starts],
    }


def _walk_starts(measure: _Measurer, points: list[Point], source: Configuration,
                 space: SearchSpace) -> list[Point]:  # fmt: skip
    """The walks' starts, one for each of ``space.walk_from`` that finds one (no repeats)."""
    out = []
    for where in space.walk_from if space.per_block else ():
        p = where.start(measure, points, source)
        if p is not None and p not in out:
            out.append(p)
    return out


def _check_options(batch_size: Any, tolerance: Any, certificate_examples: Any, repeats: Any,
                   warmup: Any) -> None:  # fmt: skip
    for name, v, low in (("batch_size", batch_size, 1), ("repeats", repeats, 1),
                         ("certificate_examples", certificate_examples, 1),
                         ("warmup", warmup, 0)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}.")
    if not (isinstance(tolerance, int | float) and np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(
            f"tolerance must be a positive number (the largest relative logit change from n to "
            f"4n steps of a converged configuration), got {tolerance!r}; e.g. 0.1."
        )


def _terminal() -> bool:
    return sys.stderr.isatty()


def _space_json(space: SearchSpace) -> dict[str, Any]:
    return {
        "bases": [b.name for b in space.bases],
        "Ks": list(space.Ks),
        "n_steps": list(space.n_steps),
        "schemes": [s.name for s in space.schemes],
        "methods": [m.name for m in space.methods],
        "per_block": space.per_block,
        "max_walk_steps": space.max_walk_steps,
        "walk_from": [w.name for w in space.walk_from],
    }


@dataclasses.dataclass(frozen=True)
class Plan:
    """The answer of :func:`basis_ode.plan`.

    Attributes:
        choice: the chosen :class:`basis_ode.Point` (configuration, accuracy, costs,
            certificate).
        model: the model cloned with the chosen steps and scheme.
        variables: the trained variables mapped to the chosen bases.
        frontier: every measured point (:class:`basis_ode.Frontier`).
        budget: the budgets the choice meets.
    """

    choice: Point
    model: Any
    variables: Any
    frontier: Frontier
    budget: tuple[Budget, ...]


def plan(
    model: Any,
    variables: Any,
    validation: Sequence[Any],
    budget: Budget | Sequence[Budget],
    *,
    allow_uncertified: bool = False,
    **measure_options: Any,
) -> Plan:
    """Adapt a trained ODE-Net to a budget by change of basis alone, in one call.

    Measures the accuracy-cost frontier (:func:`basis_ode.measure_frontier`: every basis
    family, K, n_steps and scheme of the search space, per-block choices, a convergence
    certificate for every point), chooses the most accurate certified configuration within
    every limit (ties: fewer bytes, then lower latency) and returns it with its compressed
    variables.

    Arguments:
        model: a trained :class:`basis_ode.ConvODENet` or :class:`basis_ode.ODETransformerTagger`.
        variables: its variables.
        validation: the data the choice is made on (never the test split).
        budget: :class:`basis_ode.Latency`, :class:`basis_ode.Bytes`,
            :class:`basis_ode.PeakMemory`, or a tuple of them (all must hold).
        allow_uncertified: also choose configurations whose certificate fails.
        **measure_options: ``space``, ``batch_size``, ``timer``, ``tolerance``,
            ``certificate_examples``, ``progress``, ``notes`` of :func:`measure_frontier`.

    Returns:
        A :class:`basis_ode.Plan`: ``choice``, ``model``, ``variables``, ``frontier``,
        ``budget``.

    Raises:
        basis_ode.BudgetError: no measured configuration meets the budget; the message names
            the cheapest one and what it costs.

    Examples:
        >>> import basis_ode as bo
        >>> p = bo.plan(model, variables, splits.validation, bo.Latency(3.0))  # doctest: +SKIP
        >>> p.choice.config.label, p.choice.accuracy  # doctest: +SKIP
        ('hat K=4, 4 euler steps', 0.97)
    """
    budgets = as_budgets(budget)
    frontier = measure_frontier(model, variables, validation, **measure_options)
    choice = frontier.choose(budgets, allow_uncertified=allow_uncertified)
    new_model, new_variables = adapt(model, variables, choice.config)
    return Plan(choice, new_model, new_variables, frontier, budgets)
