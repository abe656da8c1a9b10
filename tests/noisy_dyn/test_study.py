"""The robustness study: vectorised member evaluation against separate per-member calls, the
rows' statistics against hand computations, and the written outputs."""

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn as nd
from noisy_dyn.attacks import FGSM, PGD, DeepFool, Gaussian, Multiplicative, SaltPepper
from tests._shape_checks import library_checks_only
from trainkit import bootstrap_mean, holm, paired_difference, sign_flip_p_value

CFG = nd.NoisyRNNConfig(input_size=2, hidden_size=8, num_classes=3, dt=0.2)
N, T, BATCH = 30, 10, 16  # two chunks, the second padded with two copies of row 0
PGD_STEPS = 3
LEVELS = (Gaussian(0.5), Multiplicative(0.8), SaltPepper(0.3), FGSM(0.3), PGD(0.3, steps=PGD_STEPS))
MEMBERS = 4  # every test stacks 4 members of the same shapes, so the compiled programs are reused


def _member(seed: int) -> dict:
    """Random parameters large enough that the prediction depends on the input (NumPy draws:
    no per-operation compilation)."""
    rng = np.random.default_rng(seed)
    shapes = {"M_A": (8, 8), "M_W": (8, 8), "U": (8, 2), "b": (8,), "V": (3, 8), "c": (3,)}
    scale = {"M_A": 0.02, "M_W": 0.3, "U": 2.0, "b": 0.1, "V": 2.0, "c": 0.1}
    return {k: jnp.asarray(scale[k] * rng.normal(size=v)) for k, v in shapes.items()}


def _stack(members: list[dict]) -> dict:
    return jax.tree.map(lambda *p: jnp.stack(p), *members)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, size=(N, T, 2))
    lengths = rng.integers(3, T + 1, size=N).astype(np.int32)
    return xs, rng.integers(0, 3, size=N).astype(np.int32), lengths


def _chunked_attack(attack, xs, ys, key):
    """Reference: the attack on chunks of BATCH rows, the last padded with copies of row 0."""
    pad = -len(xs) % BATCH
    xp = np.concatenate([xs, np.repeat(xs[:1], pad, axis=0)])
    yp = np.concatenate([ys, np.repeat(ys[:1], pad)])
    out = [attack(xp[s : s + BATCH], yp[s : s + BATCH], jax.random.fold_in(key, c))
           for c, s in enumerate(range(0, len(xp), BATCH))]  # fmt: skip
    return np.concatenate([np.asarray(o) for o in out])[: len(xs)]


@jax.jit
def _fgsm(params, xs, ys, eps):
    return nd.attacks.fgsm(params, xs, ys, CFG, eps)


@jax.jit
def _pgd(params, xs, ys, eps, key):
    step = 2.5 * eps / PGD_STEPS
    return nd.attacks.pgd(params, xs, ys, CFG, eps, steps=PGD_STEPS, step_size=step, key=key)


def _reference(params: dict, xs, ys, key) -> dict:
    """The accuracies of one member from the public per-model functions."""
    ref = {("clean", 0.0): nd.accuracy(params, xs, ys, CFG)}
    for p in LEVELS[:3]:
        xp = nd.attacks.perturb(jnp.asarray(xs), p, key=nd.study.perturbation_key(key, p))
        ref[(p.name, p.level)] = nd.accuracy(params, xp, ys, CFG)
    eps = LEVELS[3].eps
    ref[("fgsm", eps)] = nd.accuracy(params, _fgsm(params, xs, ys, eps), ys, CFG)
    pgd = lambda x, y, k: _pgd(params, x, y, eps, k)  # noqa: E731
    xg = _chunked_attack(pgd, xs, ys, nd.study.perturbation_key(key, LEVELS[4]))
    ref[("pgd", eps)] = nd.accuracy(params, xg, ys, CFG)
    return ref


def test_vmapped_members_equal_separate_calls_with_the_same_draws(data):
    xs, ys, _ = data
    members = [_member(s) for s in range(MEMBERS)]
    key = jax.random.key(7)
    got = nd.study.evaluate_members(_stack(members), CFG, xs, ys, key=key, perturbations=LEVELS,
                              batch_size=BATCH)  # fmt: skip
    assert list(got) == [("clean", 0.0)] + [(p.name, p.level) for p in LEVELS]
    for i, params in enumerate(members):
        ref = _reference(params, xs, ys, key)
        for name, acc in got.items():
            assert acc.shape == (MEMBERS,)
            assert acc[i] == pytest.approx(ref[name], abs=1e-12), (i, name)
    clean = got[("clean", 0.0)]
    assert len(set(clean)) > 1  # the members differ ...
    assert np.all(got[("pgd", 0.3)] < clean)  # ... and the perturbations bite


def test_every_member_sees_the_same_random_draws(data):
    xs, ys, _ = data
    twins = _stack([_member(0)] * MEMBERS)  # identical members
    a = nd.study.evaluate_members(twins, CFG, xs, ys, key=jax.random.key(1), perturbations=LEVELS,
                            batch_size=BATCH)  # fmt: skip
    b = nd.study.evaluate_members(twins, CFG, xs, ys, key=jax.random.key(2), perturbations=LEVELS,
                            batch_size=BATCH)  # fmt: skip
    for name in a:
        assert np.all(a[name] == a[name][0]), name  # identical inputs for every member
    random_kinds = [n for n in a if n[0] in ("gaussian", "multiplicative", "salt_pepper")]
    assert any(a[n][0] != b[n][0] for n in random_kinds)  # ... and the draws do matter


def test_lengths_read_each_sequence_at_its_own_end(data):
    xs, ys, lengths = data
    members = [_member(s) for s in range(MEMBERS)]
    kw = dict(key=jax.random.key(3), perturbations=(Gaussian(0.5),), lengths=lengths,
              batch_size=BATCH)  # fmt: skip
    got = nd.study.evaluate_members(_stack(members), CFG, xs, ys, **kw)
    # What follows each sequence's end is ignored: overwrite it with garbage.
    junk = np.where(np.arange(T)[None, :, None] >= lengths[:, None, None], 9.0, xs)
    again = nd.study.evaluate_members(_stack(members), CFG, junk, ys, **kw)
    assert all(np.array_equal(v, w) for v, w in zip(got.values(), again.values()))
    k = nd.study.perturbation_key(jax.random.key(3), Gaussian(0.5))
    xp = nd.attacks.perturb(jnp.asarray(xs), Gaussian(0.5), key=k)
    for i, p in enumerate(members):
        assert got[("clean", 0.0)][i] == nd.accuracy(p, xs, ys, CFG, lengths=lengths)
        assert got[("gaussian", 0.5)][i] == nd.accuracy(p, xp, ys, CFG, lengths=lengths)
    assert not np.array_equal(got[("clean", 0.0)], nd.study.evaluate_members(
        _stack(members), CFG, xs, ys, **(kw | {"lengths": None}))[("clean", 0.0)])  # fmt: skip


SIGMAS = (0.0, 0.05, 0.1)


def _synthetic_accuracies(seeds: int = 6) -> dict:
    rng = np.random.default_rng(11)
    clean = rng.uniform(0.8, 0.9, size=(3, seeds))
    noisy = clean - rng.uniform(0.1, 0.2, size=(3, seeds)) + np.array([0.0, 0.05, 0.0])[:, None]
    return {("clean", 0.0): clean.ravel(), ("gaussian", 0.3): noisy.ravel()}


def test_rows_carry_the_documented_fields_and_paired_statistics():
    cfgs = [CFG.replace(sigma_add=s, sigma_mult=s) for s in SIGMAS]
    acc = _synthetic_accuracies()
    rows = nd.study.study_rows(acc, cfgs, list(range(6)), n_boot=2000, n_perm=2000)
    assert len(rows) == 6
    base = {"sigma", "sigma_add", "sigma_mult", "perturbation", "level", "inference", "mean",
            "ci_low", "ci_high", "n"}  # fmt: skip
    diff = {"diff_mean", "diff_ci_low", "diff_ci_high", "p_value", "p_holm", "matched_n",
            "matched_diff_mean", "matched_diff_ci_low", "matched_diff_ci_high",
            "matched_p_value", "matched_p_holm"}  # fmt: skip
    for r in rows:
        assert set(r) == (base if r["sigma"] == 0.0 else base | diff)
        assert r["inference"] == "deterministic"
        table = acc[(r["perturbation"], r["level"])].reshape(3, 6)
        i = SIGMAS.index(r["sigma"])
        assert r["mean"] == pytest.approx(table[i].mean()) and r["n"] == 6
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
        if r["sigma"]:
            assert r["diff_mean"] == pytest.approx(np.mean(table[i] - table[0]))
    noisy = [r for r in rows if r["sigma"]]
    np.testing.assert_allclose([r["p_holm"] for r in noisy], holm([r["p_value"] for r in noisy]))
    # sigma = 0.05 gains 5 points under Gaussian noise on every seed, minus the clean spread.
    gain = next(r for r in noisy if r["sigma"] == 0.05 and r["perturbation"] == "gaussian")
    assert gain["diff_ci_low"] > 0
    assert all(isinstance(r, nd.study.StudyRow) for r in rows)  # typed records ...
    assert rows[0].is_clean and rows[0].perturbation == nd.attacks.Clean()
    stored = [r.to_dict() for r in rows]  # ... written as plain JSON types
    assert json.loads(json.dumps(stored)) == stored == [dict(r) for r in rows]
    assert [nd.study.StudyRow.from_dict(d) for d in stored] == rows  # and read back


def test_matched_comparison_pairs_members_of_equal_clean_accuracy():
    # Deterministic twins at clean 0.80, 0.85, 0.90; noisy members at 0.845 (-> 0.85),
    # 0.905 (-> 0.90) and 0.70 (nothing within one point: dropped).
    cfgs = [CFG, CFG.replace(sigma_add=0.1, sigma_mult=0.1)]
    clean = np.array([0.80, 0.85, 0.90, 0.845, 0.905, 0.70])
    robust = np.array([0.50, 0.60, 0.70, 0.64, 0.76, 0.10])
    acc = {("clean", 0.0): clean, ("gaussian", 0.3): robust}
    rows = nd.study.study_rows(acc, cfgs, [0, 1, 2], caliper=0.01, n_boot=500, n_perm=500)
    row = next(r for r in rows if r["sigma"] == 0.1 and r["perturbation"] == "gaussian")
    assert row["matched_n"] == 2
    assert row["matched_diff_mean"] == pytest.approx(((0.64 - 0.60) + (0.76 - 0.70)) / 2)
    # ... while the seed-paired difference compares (0.64, 0.76, 0.10) with (0.50, 0.60, 0.70).
    assert row["diff_mean"] == pytest.approx(np.mean(robust[3:] - robust[:3]))
    clean_row = next(r for r in rows if r["sigma"] == 0.1 and r["perturbation"] == "clean")
    assert abs(clean_row["matched_diff_mean"]) <= 0.01 and clean_row["matched_p_holm"] is None
    assert row["matched_p_holm"] == row["matched_p_value"]  # a family of one


def test_configurations_may_differ_only_in_the_noise():
    with pytest.raises(ValueError, match="dt"):
        nd.study.inference_config([CFG, CFG.replace(dt=0.1, sigma_add=0.1)])
    cfg = nd.study.inference_config([CFG.replace(sigma_add=0.1), CFG.replace(sigma_mult=0.2)])
    assert cfg == CFG
    noisy_only = [CFG.replace(sigma_add=s) for s in (0.05, 0.1, 0.2)]  # no deterministic twin
    rows = nd.study.study_rows(_synthetic_accuracies(), noisy_only, range(6), n_boot=100)
    assert all("diff_mean" not in r for r in rows)
    with pytest.raises(ValueError, match="all deterministic"):
        nd.study.study_rows(
            _synthetic_accuracies(), [CFG, CFG, CFG.replace(sigma_add=0.1)], range(6)
        )
    with pytest.raises(ValueError, match="len\\(cfgs\\) \\* len\\(seeds\\)"):
        nd.study.study_rows(_synthetic_accuracies(), [CFG, CFG.replace(sigma_add=0.1)], range(6))


def test_study_writes_json_markdown_and_png(tmp_path, data):
    xs, ys, _ = data
    cfgs = [CFG, CFG.replace(sigma_add=0.1, sigma_mult=0.1)]
    params = _stack([_member(s) for s in range(MEMBERS)])  # cfg-major, seed-minor: 2 x 2
    levels = (Gaussian(0.5), PGD(0.3, steps=PGD_STEPS))
    kw = dict(key=jax.random.key(0), perturbations=levels, batch_size=BATCH)
    rows = nd.study.robustness_study(params, cfgs, [0, 1], (xs, ys), out_dir=tmp_path, **kw)
    stored = json.loads((tmp_path / "study.json").read_text())
    assert stored == rows and len(rows) == 2 * 3
    assert [r["perturbation"] for r in rows[:3]] == ["clean", "gaussian", "pgd"]
    assert {(r["split"], r["examples"]) for r in rows} == {("test", N)}  # what it was given
    lines = (tmp_path / "study.md").read_text().splitlines()
    assert lines[0] == f"Scored on the test split ({N} examples)."  # which data, then the answer
    assert lines[2] == "- " + nd.study.study_verdicts(rows)[0]
    assert lines[2].startswith("- sigma 0.1: ") and "(2 seeds: too few for an interval)" in lines[2]
    table = lines[lines.index(next(x for x in lines if x.startswith("| sigma_add"))) :]
    head = "| sigma_add | sigma_mult | perturbation | level | diff vs sigma=0 ["
    assert table[0].startswith(head)  # the answer first after the row's name
    assert "95% CI" not in table[0]  # two seeds: no "95 %" interval anywhere
    assert sum(line.startswith("| 0.1 | 0.1 |") for line in table) == 3
    assert "is not a 95 % interval" in table[-1]  # the legend says why
    # The first noisy row (clean accuracy), in percent and signed percentage points.
    r = rows[3]
    cells = [c.strip() for c in table[2 + 3].strip("|").split("|")]
    assert cells[4] == f"{100 * r['diff_mean']:+.1f} (2 seeds: no interval)"  # never bold
    assert cells[6] == f"{100 * r['mean']:.1f} (2 seeds: no interval)"
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "study.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0
    assert not list(tmp_path.glob("*.tmp*"))  # renamed into place
    with pytest.raises(ValueError, match="members"):
        nd.study.robustness_study(params, cfgs, [0], (xs, ys), key=jax.random.key(0))


def test_a_reader_recomputes_every_interval_and_p_value_from_the_stored_accuracies(tmp_path, data):
    """study_accuracies.csv (beside study.json) holds each member's test accuracy under each
    perturbation; trainkit's interval, paired difference, sign-flip p-value and Holm at their
    default settings, fed only from that file, give study.json's numbers exactly."""
    xs, ys, lengths = data
    cfgs = [CFG, CFG.replace(sigma_add=0.1, sigma_mult=0.1)]
    params = _stack([_member(s) for s in range(MEMBERS)])
    kw = dict(key=jax.random.key(3), perturbations=(Gaussian(0.5), FGSM(0.3)),
              batch_size=BATCH)  # fmt: skip
    test = nd.Sequences(xs, ys, lengths)
    nd.study.robustness_study(params, cfgs, [4, 7], test, out_dir=tmp_path, **kw)
    rows = json.loads((tmp_path / "study.json").read_text())
    stored = nd.study.read_accuracies(tmp_path)
    lines = (tmp_path / nd.study.ACCURACIES_FILE).read_text().splitlines()
    assert lines[0].split(",")[:3] == ["sigma_add", "sigma_mult", "seed"]
    assert len(lines) == 1 + MEMBERS * 3  # members x (clean, gaussian, fgsm)
    for line in lines[1:]:
        correct, n_test, acc = line.split(",")[-3:]
        assert int(n_test) == N and float(acc) == int(correct) / N
    twin = lambda r: stored[(0.0, 0.0, "deterministic", r["perturbation"], r["level"])]  # noqa: E731
    p_values = []
    for r in rows:
        acc = stored[(r["sigma_add"], r["sigma_mult"], "deterministic", r["perturbation"],
                      r["level"])]  # fmt: skip
        per_seed = np.array([acc[s] for s in (4, 7)])
        assert tuple(bootstrap_mean(per_seed)) == (r["mean"], r["ci_low"], r["ci_high"])
        if "diff_mean" in r:
            ref = np.array([twin(r)[s] for s in (4, 7)])
            diff = paired_difference(per_seed, ref)
            assert tuple(diff) == (r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])
            assert float(sign_flip_p_value(per_seed, ref)) == r["p_value"]
            p_values.append(r["p_value"])
    np.testing.assert_array_equal(holm(p_values), [r["p_holm"] for r in rows if "p_holm" in r])
    # the accuracies themselves: member 1 (seed 7 of sigma 0) read alone, at its own lengths
    one = jax.tree.map(lambda a: a[1], params)
    assert stored[(0.0, 0.0, "deterministic", "clean", 0.0)][7] == nd.accuracy(one, test, CFG)


STORED_RERUN = (
    Path(__file__).resolve().parents[2] / "docs" / "results" / "noisy_dyn" / "study_digits"
    / "rerun_b91a178"
)  # fmt: skip


def test_a_stored_study_is_recomputed_from_its_stored_accuracies():
    """The stored digits rerun: every mean, interval, paired difference, sign-flip p-value and
    Holm-adjusted p-value of its study.json, recomputed from its study_accuracies.csv alone
    (16 seeds, 52 rows) with trainkit's statistics at their defaults."""
    rows = json.loads((STORED_RERUN / "study.json").read_text())
    seeds = json.loads((STORED_RERUN / "study_setup.json").read_text())["seeds"]
    stored = nd.study.read_accuracies(STORED_RERUN)
    assert len(rows) == 52 and len(seeds) == 16

    def per_seed(r, sa, sm):
        acc = stored[(sa, sm, "deterministic", r["perturbation"], r["level"])]
        return np.array([acc[s] for s in seeds])

    p_values = []
    for r in rows:
        own = per_seed(r, r["sigma_add"], r["sigma_mult"])
        np.testing.assert_allclose(bootstrap_mean(own), (r["mean"], r["ci_low"], r["ci_high"]),
                                   rtol=0, atol=1e-12)  # fmt: skip
        if "diff_mean" in r:
            ref = per_seed(r, 0.0, 0.0)
            want = (r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])
            np.testing.assert_allclose(paired_difference(own, ref), want, rtol=0, atol=1e-12)
            assert float(sign_flip_p_value(own, ref)) == pytest.approx(r["p_value"], abs=1e-12)
            p_values.append(r["p_value"])
    np.testing.assert_allclose(holm(p_values), [r["p_holm"] for r in rows if "p_holm" in r],
                               rtol=0, atol=1e-12)  # fmt: skip


def test_holm_over_the_study_controls_the_family_wise_error():
    # 150 simulated studies in which noise does nothing (every member's accuracies are i.i.d.
    # across configurations): 2 noisy configurations x 4 perturbations = 8 tests per study.
    rng = np.random.default_rng(12)
    cfgs = [CFG.replace(sigma_add=s, sigma_mult=s) for s in SIGMAS]
    names = [("clean", 0.0), ("gaussian", 0.3), ("gaussian", 0.5), ("salt_pepper", 0.1)]
    any_raw, any_holm = 0, 0
    for _ in range(150):
        seed_effect = rng.normal(0.8, 0.05, size=(1, 16))
        acc = {n: (seed_effect + rng.normal(0, 0.02, size=(3, 16))).ravel() for n in names}
        rows = nd.study.study_rows(acc, cfgs, range(16), n_boot=50, n_perm=400)
        noisy = [r for r in rows if r["sigma"]]
        any_raw += any(r["p_value"] <= 0.05 for r in noisy)
        any_holm += any(r["p_holm"] <= 0.05 for r in noisy)
    assert any_holm / 150 <= 0.1  # at most alpha = 0.05, plus Monte Carlo error
    assert any_raw / 150 >= 0.2  # uncorrected, 8 tests find "something" far more often


def test_bad_input_is_refused_before_any_work(data):
    xs, ys, _ = data
    stacked = _stack([_member(0)] * 2)

    def run(params, **kw):
        return nd.study.evaluate_members(params, CFG, xs, ys, key=jax.random.key(0), **kw)

    with pytest.raises(ValueError, match=r"\[0, 1\]"), pytest.warns(DeprecationWarning):
        run(stacked, perturbations={"salt_pepper": (1.5,)})
    with pytest.raises(ValueError, match="DeepFool"):
        run(stacked, perturbations=(DeepFool(),))
    with pytest.raises(ValueError, match="share a name and level"):
        run(stacked, perturbations=(PGD(0.1, steps=2), PGD(0.1, steps=3)))
    with library_checks_only(), pytest.raises(TypeError, match="not a perturbation"):
        run(stacked, perturbations=("gaussian",))
    with pytest.raises(ValueError, match="leading member axis"):
        run(_member(0))  # one model, not stacked
    with pytest.raises(ValueError, match="batch_size"):
        run(stacked, batch_size=0)


def _study(effects: dict, seed: int) -> list:
    """A synthetic study of 16 seeds: ``effects[(sigma, name)]`` is added to that config."""
    rng = np.random.default_rng(seed)
    cfgs = [CFG.replace(sigma_add=s, sigma_mult=s) for s in SIGMAS]
    names = [("clean", 0.0), ("gaussian", 0.3), ("salt_pepper", 0.1)]
    acc = {}
    seed_effect = rng.normal(0.8, 0.05, size=16)
    for name in names:
        shift = np.array([[effects.get((s, name[0]), 0.0)] for s in SIGMAS])
        acc[name] = (seed_effect + shift + rng.normal(0, 0.01, size=(3, 16))).ravel()
    return nd.study.study_rows(acc, cfgs, range(16), n_boot=500)


def test_confirmation_on_fresh_seeds_keeps_real_effects_and_drops_lucky_ones():
    discovery = _study({(0.05, "gaussian"): 0.05, (0.1, "salt_pepper"): 0.04}, seed=1)
    fresh = _study({(0.05, "gaussian"): 0.05}, seed=2)  # the salt-and-pepper gain was luck
    out = nd.study.confirm_rows(discovery, fresh)
    picked = {(r["sigma_add"], r["perturbation"]): r for r in out}
    assert set(picked) == {(0.05, "gaussian"), (0.1, "salt_pepper")}
    assert picked[(0.05, "gaussian")]["confirmed"]
    assert not picked[(0.1, "salt_pepper")]["confirmed"]
    p = sorted(r["p_value"] for r in out)  # Holm over the two picked comparisons only
    expected = [min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))]
    assert sorted(r["p_holm"] for r in out) == pytest.approx(expected)
    exploratory = nd.study.confirm_rows(discovery, fresh, select=nd.study.ByInterval())
    assert len(exploratory) >= len(out)
    # ByInterval picks exactly the discovery rows whose interval lies on one side of zero
    excluding = {
        (r["sigma_add"], r["perturbation"], r["level"])
        for r in discovery
        if r.get("diff_mean") is not None and (r["diff_ci_low"] > 0 or r["diff_ci_high"] < 0)
    }
    assert {(r["sigma_add"], r["perturbation"], r["level"]) for r in exploratory} == excluding
    with pytest.warns(DeprecationWarning, match="ByInterval"):
        assert nd.study.confirm_rows(discovery, fresh, select="interval") == exploratory
    with pytest.raises(ValueError, match=r"`select` must be noisy_dyn.study.ByHolm\(\) or "):
        nd.study.selection_by_name("lucky")
    with pytest.raises(ValueError, match="lacks the comparisons"):
        nd.study.confirm_rows(discovery, [r for r in fresh if r["perturbation"] != "gaussian"])


def test_the_verdict_finds_the_planted_effects_and_only_them():
    """Verdict lines against effects planted in synthetic accuracies (16 seeds, noise 0.01):
    sigma 0.05 is +5 points under Gaussian noise, sigma 0.1 +4 under salt & pepper and -3 clean;
    every other comparison has no effect, so after Holm each level is more robust under exactly
    its planted perturbation and its clean difference is the planted one (within the noise)."""
    rows = _study({(0.05, "gaussian"): 0.05, (0.1, "salt_pepper"): 0.04, (0.1, "clean"): -0.03},
                  seed=2)  # fmt: skip
    lines = nd.study.study_verdicts(rows)
    assert [line.split(":")[0] for line in lines] == ["sigma 0.05", "sigma 0.1"]
    assert lines[0].startswith("sigma 0.05: more robust under 1 of 2 perturbations after Holm, ")
    assert lines[1].startswith("sigma 0.1: more robust under 1 of 2 perturbations after Holm, ")
    assert "(Holm: a real change)" in lines[1] and "(Holm: a real change)" not in lines[0]
    assert all(line.endswith("(16 seeds).") and "†" not in line for line in lines)
    clean = float(lines[1].split("clean accuracy ")[1].split(" ")[0])
    assert clean == pytest.approx(-3.0, abs=1.0)  # points; the planted -3 within the noise
    # the same rows read from too few seeds say so and show no interval
    few = [dict(r, n=2) for r in rows]
    assert all("(2 seeds: too few for an interval)" in x for x in nd.study.study_verdicts(few))


def test_evaluation_logs_one_line_per_stage_when_not_on_a_terminal(data, capsys):
    xs, ys, _ = data
    levels = (Gaussian(0.3), Gaussian(0.5), SaltPepper(0.1))
    nd.study.evaluate_members(_stack([_member(s) for s in range(MEMBERS)]), CFG, xs, ys,
                              key=jax.random.key(0), perturbations=levels, batch_size=BATCH,
                              progress=True)  # fmt: skip
    text = capsys.readouterr().err  # pytest's capture is not a terminal: lines, no bar
    err = text.splitlines()
    assert err[0].startswith(f"evaluating {MEMBERS} members on {N} test sequences: 4 stages")
    stages = [line for line in err if line.startswith("  evaluated ")]
    assert len(stages) == 4 and "\r" not in text
    assert [s.split(" (")[1].split(",")[0] for s in stages] == [f"{i} of 4" for i in range(1, 5)]


# --------------------------------------------------------------------------------------------
# noise kept at inference: logits averaged over draws of each member's training noise

DRAWS = 3
NOISY = {"reference": CFG.replace(noise_form="reference", sigma_add=0.3, sigma_mult=0.4),
         "ito": CFG.replace(sigma_add=0.3, sigma_mult=0.3)}  # fmt: skip


def _hand_logits(params, xs, cfg, key, draws=DRAWS):
    """Reference: a Python loop of ``draws`` noisy ``apply`` calls, averaged in float64 NumPy."""
    keys = [jax.random.fold_in(key, d) for d in range(draws)]
    return np.mean([np.asarray(nd.apply(params, xs, cfg, key=k)) for k in keys], axis=0)


@pytest.mark.parametrize("form", ["reference", "ito"])
def test_stochastic_logits_average_a_hand_loop_of_noisy_apply_calls(data, form):
    xs, _, _ = data
    params, cfg, key = _member(0), NOISY[form], jax.random.key(5)
    got = nd.study.stochastic_logits(params, jnp.asarray(xs), cfg, key=key, draws=DRAWS)
    np.testing.assert_allclose(got, _hand_logits(params, xs, cfg, key), rtol=1e-12, atol=1e-12)
    # the noise is on: the average differs from deterministic inference and from one draw
    det = np.asarray(nd.apply(params, xs, cfg))
    assert np.max(np.abs(np.asarray(got) - det)) > 1e-3
    with pytest.raises(ValueError, match="draws"):
        nd.study.stochastic_logits(params, jnp.asarray(xs), cfg, key=key, draws=0)


@pytest.mark.slow  # ~45 s on 2 cores: the fused kernel compiled per noise form
def test_vanishing_training_noise_reads_like_deterministic_inference(data):
    """sigma -> 0: every draw is the deterministic recursion up to O(sigma) (closed form)."""
    xs, ys, _ = data
    members = _stack([_member(s) for s in range(MEMBERS)])
    for form in ("reference", "ito"):
        tiny = NOISY[form].replace(sigma_add=1e-9, sigma_mult=1e-9)
        logits = nd.study.stochastic_logits(
            _member(1), jnp.asarray(xs), tiny, key=jax.random.key(1), draws=DRAWS
        )
        det = nd.apply(_member(1), jnp.asarray(xs), tiny)
        np.testing.assert_allclose(logits, det, atol=1e-6)
        got = nd.study.evaluate_members(members, tiny, xs, ys, key=jax.random.key(2),
                                  perturbations=(Gaussian(0.5),), batch_size=BATCH,
                                  inference_draws=DRAWS)  # fmt: skip
        label = "stochastic, 3 draws"
        assert list(got) == [("clean", 0.0), ("clean", 0.0, label), ("gaussian", 0.5),
                             ("gaussian", 0.5, label)]  # fmt: skip
        for name in (("clean", 0.0), ("gaussian", 0.5)):
            np.testing.assert_array_equal(got[name + (label,)], got[name])


@pytest.mark.slow  # ~45 s on 2 cores: the fused kernel compiled per noise form
def test_stochastic_members_match_hand_loops_with_the_same_keys(data):
    xs, ys, _ = data
    members = [_member(s) for s in range(MEMBERS)]
    twin = NOISY["reference"].replace(sigma_add=0.0, sigma_mult=0.0)
    cfgs = [twin, NOISY["reference"]]  # members 0, 1 deterministic; 2, 3 noisy
    key = jax.random.key(9)
    levels = (Gaussian(0.5), FGSM(0.3))
    kw = dict(key=key, perturbations=levels, batch_size=N)  # one chunk: chunk index 0
    got = nd.study.evaluate_members(_stack(members), cfgs, xs, ys, inference_draws=DRAWS, **kw)
    plain = nd.study.evaluate_members(_stack(members), cfgs, xs, ys, **kw)
    label = "stochastic, 3 draws"
    for name, acc in plain.items():  # deterministic entries as without draws
        np.testing.assert_array_equal(got[name], acc)
        assert np.isnan(got[name + (label,)][:2]).all()  # twins: not read stochastically
    draw_key = jax.random.fold_in(nd.study.inference_key(key), 0)  # chunk 0 of the inference stream
    assert not jnp.array_equal(
        jax.random.key_data(draw_key),  # apart from the perturbations
        jax.random.key_data(nd.study.perturbation_key(key, Gaussian(0.5))),
    )
    gauss_key = nd.study.perturbation_key(key, Gaussian(0.5))
    xg = nd.attacks.perturb(jnp.asarray(xs), Gaussian(0.5), key=gauss_key)
    for i in (2, 3):
        p = members[i]

        def hand(x, p=p):  # the averaged predictor, as a loop
            keys = [jax.random.fold_in(draw_key, d) for d in range(DRAWS)]
            return jnp.mean(jnp.stack([nd.apply(p, x, cfgs[1], key=k) for k in keys]), axis=0)

        # attack the averaged model
        xf = nd.attacks.fgsm_fn(hand, jnp.asarray(xs), jnp.asarray(ys), 0.3)
        for name, x in ((("clean", 0.0), xs), (("gaussian", 0.5), xg), (("fgsm", 0.3), xf)):
            want = np.mean(np.argmax(_hand_logits(p, x, cfgs[1], draw_key), axis=-1) == ys)
            assert got[name + (label,)][i] == pytest.approx(want, abs=1e-12), (i, name)
    assert np.any(got[("clean", 0.0, label)][2:] != got[("clean", 0.0)][2:])  # noise matters
    with pytest.raises(ValueError, match="inference_draws"):
        nd.study.evaluate_members(_stack(members), cfgs, xs, ys, inference_draws=-1, **kw)
    with pytest.raises(ValueError, match="multiple"):
        nd.study.evaluate_members(_stack(members), cfgs * 3, xs, ys, inference_draws=1, **kw)


def test_stochastic_rows_pair_each_member_with_its_deterministic_reading():
    """Hand-worked: differences 0.01, 0.01, 0.01, 0.03 over 4 seeds. Mean 0.015; a resample
    mean is 0.01 + 0.005 c with c ~ Binomial(4, 1/4) copies of the 0.03: P(c = 0) = 0.32 puts the
    2.5 % quantile at 0.01, P(c >= 3) = 0.051 > 0.025 > P(c = 4) = 0.004 the 97.5 % one at 0.025;
    the sign-flip p-value is exact: only the 2 of 16 patterns with equal signs reach |sum| 0.06."""
    cfgs = [CFG, CFG.replace(sigma_add=0.1, sigma_mult=0.1)]
    label = "stochastic, 16 draws"
    det = np.array([0.70, 0.72, 0.71, 0.69, 0.80, 0.82, 0.85, 0.83])
    stoch = np.array([np.nan] * 4 + [0.81, 0.83, 0.86, 0.86])
    plain = nd.study.study_rows({("clean", 0.0): det}, cfgs, range(4), n_boot=20000)
    rows = nd.study.study_rows({("clean", 0.0): det, ("clean", 0.0, label): stoch}, cfgs, range(4),
                         n_boot=20000)  # fmt: skip
    assert [(r["sigma"], r["inference"]) for r in rows] == [
        (0.0, "deterministic"),
        (0.1, "deterministic"),
        (0.1, label),
    ]  # no stochastic twin row
    assert rows[:2] == [dict(r) | {"inference": "deterministic"} for r in plain]  # unchanged
    row = rows[2]
    assert row["mean"] == pytest.approx(0.84)
    assert row["inference_diff_mean"] == pytest.approx(0.015)
    assert row["inference_diff_ci_low"] == pytest.approx(0.01)
    assert row["inference_diff_ci_high"] == pytest.approx(0.025)
    assert row["inference_p_value"] == row["inference_p_holm"] == pytest.approx(2 / 16)
    assert row["diff_mean"] == pytest.approx(np.mean(stoch[4:] - det[:4]))  # against the twin
    assert "matched_n" not in row
    table = nd.study.study_markdown(rows)
    assert "| inference |" in table and "stochastic - deterministic [interval]" in table
    assert f"| {label} |" in table and "**+1.5 [+1.0, +2.5]†** | 0.125 |" in table
    with pytest.raises(ValueError, match="some seeds only"):
        nd.study.study_rows({("clean", 0.0): det, ("clean", 0.0, label): np.where(
            np.arange(8) == 5, np.nan, stoch)}, cfgs, range(4))  # fmt: skip


STORED_STUDY = Path(__file__).parents[2] / "docs/results/noisy_dyn/study_digits"


def test_a_stored_study_without_a_split_reads_as_test_and_confirm_refuses_mixed_splits(
    tmp_path, capsys
):
    """Studies stored before the split was recorded were scored on the test split: they read
    so, confirm on them still works, and confirm refuses to pair one with a study scored on
    the validation split, naming the fix."""
    from noisy_dyn import experiments

    stored = json.loads((STORED_STUDY / "study.json").read_text())
    assert not any("split" in r for r in stored)
    assert nd.study.study_split(stored) == nd.study.STORED_SPLIT == "test"
    old = tmp_path / "old"
    shutil.copytree(STORED_STUDY, old)
    out = experiments.confirm(old, old)  # a study against itself: every pick confirmed
    assert out["holm"] and all(r["confirmed"] and r["split"] == "test" for r in out["holm"])
    assert "discovery scored on the test split, confirmation on the test split" in (
        capsys.readouterr().out
    )
    new = tmp_path / "new"
    new.mkdir()
    rows = [r | {"split": "validation", "examples": 180} for r in stored]
    (new / "study.json").write_text(json.dumps(rows))
    assert nd.study.scored_on(rows) == "Scored on the validation split (180 examples)."
    with pytest.raises(ValueError, match="rerun the confirmation study with --split test") as e:
        experiments.confirm(old, new)
    assert "\n" not in str(e.value)
    assert "confirmation on the validation split" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--split validation"):
        nd.study.confirm_rows(rows, stored)
    with pytest.raises(ValueError, match="mix the splits"):
        nd.study.study_split(rows[:1] + stored[:1])


def test_the_study_command_scores_validation_unless_told_test():
    from noisy_dyn.__main__ import build_parser

    argv = ["study", "--preset", "lipschitz", "--data", "digits"]
    assert build_parser().parse_args(argv).split == "validation"
    assert build_parser().parse_args(argv + ["--split", "test"]).split == "test"
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv + ["--split", "train"])
