"""The planner: budgets, the frontier, the choice, the certificate and compiled-program reuse.

Independent facts: the observed order of the certificate on logits built as ``z* + C n^-q``
(closed form: q); each point's accuracy against ``basis_ode.accuracy`` of the adapted model
(another evaluation path) and its logits against a fresh ``model.apply`` (a reused program must
read the new coefficients); the model bytes against the closed form ``sum_b K_b (18 c_b^2 +
8 c_b)`` floats per ODE unit; the Pareto set and the choice against brute force written here
over hand-made points; the number of compilations against the count of distinct program
structures.
"""

import collections
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import basis_ode as bo
from basis_ode._frontier import pareto
from tests._shape_checks import library_checks_only

from . import fill

WIDTH = 2
MODEL = bo.ConvODENet(width=WIDTH, basis=bo.PiecewiseConstant(4), unroll=False)


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    ys = rng.integers(0, 10, n)
    return xs, ys


@pytest.fixture(scope="module")
def trained():
    x = jnp.zeros((2, 8, 8, 1), jnp.float32)
    v = fill(dict(jax.eval_shape(MODEL.init, jax.random.key(0), x)), seed=3)
    return v


def stages_timer(config, run):
    """Latency by a formula of the configuration (no clock): 1 ms per stage evaluation."""
    del run
    return 1e-3 * sum(n * config.scheme.n_stages for n in config.n_steps)


TIMED = []  # the structures the fixture's frontier timed


def counting_timer(config, run):
    TIMED.append(config.structure)
    return stages_timer(config, run)


SPACE = bo.SearchSpace(
    bases=(bo.PiecewiseConstant, bo.Hat), Ks=(1, 2), n_steps=(2,),
    schemes=(bo.EULER,), methods=(bo.Project(), bo.Interpolate()), per_block=True, max_walk_steps=1,
    walk_from=bo.FromTrained(),
)  # fmt: skip


@pytest.fixture(scope="module")
def frontier(trained):
    TIMED.clear()
    return bo.measure_frontier(MODEL, trained, _data(), space=SPACE, batch_size=32,
                               timer=counting_timer, certificate_examples=64,
                               progress=False)  # fmt: skip


def _unit_floats(K_per_block):
    return sum(K * (18 * c * c + 8 * c) for K, c in zip(K_per_block, (2, 4, 8)))


def _shared(frontier):
    """Groups of points of one structure (projection and interpolation of the same bases)."""
    groups = {}
    for p in frontier.points:
        groups.setdefault(p.config.structure, []).append(p)
    return [g for g in groups.values() if len(g) > 1]


def test_points_match_an_independent_evaluation(frontier, trained):
    xs, ys = _data()
    sample = [p for g in _shared(frontier)[:2] for p in g] + list(frontier.points[:2])
    for p in sample:
        model, v = bo.adapt(MODEL, trained, p.config)
        assert p.correct / p.total == pytest.approx(bo.accuracy(model, v, xs, ys), abs=1e-12)
    sizes = {tuple(b.K for b in p.config.bases): p.model_bytes for p in frontier.points}
    base = sizes[(1, 1, 1)] - 4 * _unit_floats((1, 1, 1))
    for Ks, nbytes in sizes.items():
        assert nbytes == base + 4 * _unit_floats(Ks), Ks  # float32: 4 bytes a number


def test_programs_are_compiled_once_per_structure(frontier, trained):
    st = frontier.stats
    structures = {p.config.structure for p in frontier.points}
    refined = {p.config.refined(f).structure for p in frontier.points for f in (2, 4)}
    # one program per structure measured or refined, never one per point
    assert st["compilations"] == len(structures | refined)
    assert st["points"] > st["structures"] == len(structures)
    # projection and interpolation share a program, yet each point's logits are its own: the
    # certificates (functions of the logits) differ within every shared structure
    shared = _shared(frontier)
    assert shared
    for group in shared:
        assert len({p.certificate.change for p in group}) == len(group)


def test_choice_is_the_most_accurate_certified_point_within_budget(frontier):
    for limit in (6.0, 9.0, 12.0):
        budget = bo.Latency(limit)
        fits = [p for p in frontier.points if p.certified and p.latency_ms <= limit]
        best = max(p.accuracy for p in fits)
        fewest = min(p.model_bytes for p in fits if p.accuracy == best)
        choice = frontier.choose(budget)
        assert choice.accuracy == best and choice.model_bytes == fewest


def _choice(frontier, budget):
    try:
        return frontier.choose(budget)
    except bo.BudgetError as err:
        return str(err)


def test_same_timings_give_the_same_points(frontier, trained):
    """Measured again (new programs, a smaller space) with the same timer, the points of the
    smaller space are those of the frontier, and so are the choices among them."""
    space = dataclasses.replace(SPACE, bases=(bo.PiecewiseConstant,), Ks=(2,), n_steps=(2,),
                                per_block=False)  # fmt: skip
    again = bo.measure_frontier(MODEL, trained, _data(), space=space, batch_size=32,
                                timer=stages_timer, certificate_examples=64,
                                progress=False)  # fmt: skip
    assert len(again.points) == 2  # projection and interpolation
    same = {p.config: p for p in frontier.points}
    for p in again.points:
        assert p.to_json() == same[p.config].to_json()
    sub = bo.Frontier(tuple(same[p.config] for p in again.points), frontier.source, 32, "cpu")
    for b in (bo.Latency(6.0), bo.Bytes(10), (bo.Latency(6.0), bo.Bytes(10**6))):
        assert _choice(again, b) == _choice(sub, b)


def _pt(label, correct, latency, nbytes, converged=True):
    config = bo.Configuration.uniform(bo.Hat(2), len(label), bo.EULER, 1)
    cert = bo.Certificate(((1,),) * 3, (0.0,) * 3, (0.01 if converged else 0.5, 0.0), None, 1.0,
                          0.1, 10)  # fmt: skip
    return bo.Point(config, correct, 100, latency, nbytes, nbytes, 10, cert)


def test_pareto_and_ties_against_brute_force():
    pts = [_pt("a", 90, 1.0, 100), _pt("bb", 90, 1.0, 80), _pt("ccc", 95, 3.0, 100),
           _pt("dddd", 85, 0.5, 500), _pt("eeeee", 80, 2.0, 600),
           _pt("ffffff", 99, 0.4, 50, converged=False)]  # fmt: skip
    flags = pareto(pts)
    # a (90 %, 1 ms, 100 B) is dominated by bb (90 %, 1 ms, 80 B); e by bb; f dominates all
    # of a, bb, d, e but not ccc (95 % < 99 %? no: f has 99 %): everything but f is dominated
    assert flags == [False, False, False, False, False, True]
    certified = [p for p in pts if p.certified]
    assert pareto(certified) == [False, True, True, True, False]
    f = bo.Frontier(tuple(pts), pts[0].config, 8, "cpu")
    assert f.choose(bo.Latency(1.0)).config.n_steps == (2,)  # tie at 90 %: fewer bytes (bb)
    assert f.choose(bo.Latency(1.0), allow_uncertified=True).correct == 99
    with pytest.raises(bo.BudgetError, match=r"cheapest, .* needs 0\.5 ms .*--latency-ms 0\.5"):
        f.choose(bo.Latency(0.1))
    with pytest.raises(bo.BudgetError, match=r"cheapest, .* needs 80 bytes; .*--bytes 80"):
        f.choose(bo.Bytes(10))
    with pytest.raises(bo.BudgetError, match="at once"):
        f.choose((bo.Latency(0.6), bo.Bytes(90)))


def test_bad_budgets_are_refused_with_the_fix():
    for bad in (0, -1.0, float("nan"), float("inf"), True, "3"):
        with library_checks_only(), pytest.raises(ValueError, match=r"Latency\(3\.0\)"):
            bo.Latency(bad)
    with library_checks_only():  # an empty frontier without a source: the library's own messages
        empty = bo.Frontier((), None, 1, "")
        with pytest.raises(ValueError, match="same cost"):
            empty.choose((bo.Bytes(10), bo.Bytes(20)))
        with pytest.raises(TypeError, match="Latency"):
            empty.choose(3.0)


def test_certificate_order_matches_the_closed_form():
    rng = np.random.default_rng(0)
    z_star, C = rng.standard_normal((50, 10)), rng.standard_normal((50, 10))
    labels, w = rng.integers(0, 10, 50), np.ones(50)
    for q in (1, 2, 4):
        z = [z_star + C * n ** (-q) for n in (4, 8, 16)]
        cert = bo.certify(z, labels, w, [(4,), (8,), (16,)], tolerance=0.1)
        assert cert.order == pytest.approx(q, abs=1e-9)
        expected = np.linalg.norm(C * (4.0**-q - 16.0**-q)) / np.linalg.norm(z[2])
        assert cert.change[0] == pytest.approx(expected, rel=1e-12)
        assert cert.converged == (expected <= 0.1)
        assert cert.agreement == pytest.approx(np.mean(z[0].argmax(1) == z[2].argmax(1)))


def test_per_block_walk_points_are_consistent(frontier, trained):
    per_block = [p for p in frontier.points if p.search == "per-block"]
    assert per_block and all(not p.config.is_uniform for p in per_block)
    xs, ys = _data()
    p = per_block[0]
    model, v = bo.adapt(MODEL, trained, p.config)
    assert p.accuracy == pytest.approx(bo.accuracy(model, v, xs, ys), abs=1e-12)
    assert frontier.stats["walk_starts"] == [frontier.source.label]


def test_per_block_model_saves_and_loads(tmp_path, trained):
    config = bo.Configuration((bo.Hat(2), bo.PiecewiseConstant(4), bo.Legendre(1)), (2, 4, 3),
                              bo.MIDPOINT)  # fmt: skip
    model, v = bo.adapt(MODEL, trained, config)
    path = bo.save_model(tmp_path / "m.npz", model, v)
    m2, v2 = bo.load_model(path)
    assert m2.n_steps == (2, 4, 3)
    x = jnp.asarray(_data()[0][:8])
    np.testing.assert_array_equal(np.asarray(m2.apply(v2, x)), np.asarray(model.apply(v, x)))
    with pytest.raises(ValueError, match="one step count per ODE block"):
        model.apply(v, x, n_steps=(2, 4))


def test_frontier_to_json_round_trips_the_configurations(frontier):
    doc = frontier.to_json()
    assert len(doc["points"]) == len(frontier.points)
    for d, p in zip(doc["points"], frontier.points):
        assert bo.Configuration.from_json(d["config"]) == p.config
    assert sum(d["pareto"] for d in doc["points"]) == len(frontier.optimal())
    back = bo.Frontier.from_json(json.loads(json.dumps(doc)))
    assert back.points == frontier.points and back.source == frontier.source
    assert _choice(back, bo.Latency(9.0)) == _choice(frontier, bo.Latency(9.0))


def test_injected_timer_times_every_structure_alike(frontier):
    # each structure: 7 calls when first measured, then 7 round-robin rounds at the end
    counts = collections.Counter(TIMED)
    assert set(counts) == {p.config.structure for p in frontier.points}
    assert set(counts.values()) == {14}
    for p in frontier.points:  # the plan's latencies are the injected ones
        assert p.latency_ms == pytest.approx(1e3 * stages_timer(p.config, None))


def test_walks_from_the_best_and_the_trained_point_with_a_progress_bar(trained, monkeypatch):
    """Both walk starts, with the progress bar drawn (as on a terminal): every grid point is
    certified, and the starts are the trained configuration and the best certified grid point
    found here by brute force (most accurate, then fewest bytes, then lowest latency)."""
    import tqdm.auto

    import basis_ode._plan as plan_module

    class RedrawingBar(tqdm.auto.tqdm):
        def update(self, n=1):
            super().update(n)
            return True  # what tqdm returns whenever it redraws (every 0.1 s on a terminal)

    monkeypatch.setattr(plan_module, "_terminal", lambda: True)
    monkeypatch.setattr(plan_module, "tqdm", RedrawingBar)  # the bar measure_frontier draws
    space = dataclasses.replace(SPACE, walk_from=(bo.FromBest(), bo.FromTrained()))
    f = bo.measure_frontier(MODEL, trained, _data(), space=space, batch_size=32,
                            timer=stages_timer, certificate_examples=64, tolerance=10.0,
                            progress=True)  # fmt: skip
    grid = [p for p in f.points if p.search == "grid"]
    assert len(grid) == f.stats["grid_points"] == len(space.resolved(f.source).grid(f.source))
    assert all(p.certificate is not None for p in f.points)
    best = min((p for p in grid if p.certified),
               key=lambda p: (-p.accuracy, p.model_bytes, p.latency_ms))  # fmt: skip
    assert f.stats["walk_starts"] == list(dict.fromkeys([best.config.label, f.source.label]))
    with pytest.raises(ValueError, match="walk_from"):
        dataclasses.replace(SPACE, walk_from=("cheapest",))


def test_walk_starts_are_objects_and_the_former_names_warn():
    """``walk_from`` takes ``FromBest()``/``FromTrained()``; the names of earlier versions give
    the same objects with a DeprecationWarning, and plan.json keeps writing the names."""
    import basis_ode._plan as plan_module

    for name, cls in (("best", bo.FromBest), ("trained", bo.FromTrained)):
        with pytest.warns(DeprecationWarning, match=f"walk_from='{name}' is deprecated; pass "
                          rf"walk_from=basis_ode.{cls.__name__}\(\)"):  # fmt: skip
            assert dataclasses.replace(SPACE, walk_from=name).walk_from == (cls(),)
    with pytest.warns(DeprecationWarning):
        old = dataclasses.replace(SPACE, walk_from=("best", "trained"))
    assert old.walk_from == (bo.FromBest(), bo.FromTrained())
    assert dataclasses.replace(SPACE, walk_from=bo.FromBest()).walk_from == (bo.FromBest(),)
    with pytest.raises(ValueError, match="FromBest"):
        dataclasses.replace(SPACE, walk_from=())
    assert plan_module._space_json(old)["walk_from"] == ["best", "trained"]  # plan.json's words
