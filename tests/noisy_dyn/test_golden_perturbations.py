"""The perturbations, attacks, robustness table and study reproduce the golden outputs recorded
before perturbations, norms and study rows became objects (``golden/make_perturbations_golden.py``,
float64): the same random draws (each level's key from ``perturbation_key``), the same attacks
under both norms, the same accuracies, rows, Markdown, CSV and robustness JSON.

Arrays are compared to ``rtol = 1e-12``; the study's rows and the robustness JSON number by
number to the same tolerance and text fields exactly; the Markdown table and the CSV exactly.
"""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import noisy_dyn as nd
from noisy_dyn.attacks import FGSM, L2, PGD, DeepFool, Gaussian, Linf, Multiplicative, SaltPepper
from trainkit import Sequences

from .golden import make_perturbations_golden as mg

GOLDEN = np.load(Path(__file__).parent / "golden" / "perturbations.npz")
RTOL = 1e-12


def _same(a, b, where: str) -> None:
    """Numbers to RTOL, NaN equal to NaN, everything else exactly; recursive on JSON values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-14, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def former_columns(markdown: str) -> str:
    """A study table written with the difference first (``| ... | level | diff | p (Holm) |
    accuracy | n | ...``) in the recorded order (``| ... | level | accuracy | n | diff | p |``):
    the golden Markdown predates the move, and everything but the order must be the same."""
    lines = markdown.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("| sigma_add |")), None)
    if at is None:
        return markdown
    head = [c.strip() for c in lines[at].strip().strip("|").split("|")]
    i = next(k for k, c in enumerate(head) if c.startswith("diff vs sigma=0"))
    j = at
    while j < len(lines) and lines[j].startswith("|"):
        if not lines[j].startswith("|---"):
            cells = lines[j][2:-2].split(" | ")
            cells[i : i + 4] = cells[i + 2 : i + 4] + cells[i : i + 2]
            lines[j] = "| " + " | ".join(cells) + " |"
        j += 1
    return "\n".join(lines)


def _check(out: dict) -> None:
    assert out, "nothing was computed"
    for k, v in out.items():
        assert k in GOLDEN, f"{k} has no golden value"
        g = GOLDEN[k]
        if g.dtype.kind == "U":
            text = str(g)
            if k.startswith(("rows/", "robustness", "verdicts/")):
                _same(json.loads(text), json.loads(str(v)), k)
            else:
                assert former_columns(str(v)) == text, k
        else:
            np.testing.assert_allclose(np.asarray(v), g, rtol=RTOL, atol=1e-14, err_msg=k)


# -- the same calls in the object spelling ------------------------------------------------------

RANDOM = {"gaussian": Gaussian, "multiplicative": Multiplicative, "salt_pepper": SaltPepper}
OBJECTS = (
    *(Gaussian(s) for s in mg.LEVELS["gaussian"]),
    *(Multiplicative(s) for s in mg.LEVELS["multiplicative"]),
    *(SaltPepper(p) for p in mg.LEVELS["salt_pepper"]),
    *(FGSM(e) for e in mg.LEVELS["fgsm"]),
    *(PGD(e, steps=3) for e in mg.LEVELS["pgd"]),
)


def attack_outputs() -> dict:
    xs, ys, lengths = mg.data()
    key = jax.random.key(mg.KEY)
    out = {}
    for p in OBJECTS[:5]:
        k = nd.study.perturbation_key(key, p)
        out[f"perturb/{p.name}/{p.level}"] = nd.attacks.perturb(xs, p, key=k)
        out[f"perturb_lengths/{p.name}/{p.level}"] = nd.attacks.perturb(xs, p, key=k,
                                                                       lengths=lengths)  # fmt: skip
    p, c = mg.member(0), mg.cfg()
    fn = lambda x: nd.apply(p, x, c)  # noqa: E731
    out["fgsm"] = nd.attacks.fgsm(p, xs, ys, c, 0.2, lengths=lengths)
    for name, norm in (("linf", Linf()), ("l2", L2())):
        out[f"pgd/{name}"] = nd.attacks.pgd(p, xs, ys, c, 0.5, steps=4, step_size=0.2, norm=norm,
                                            key=jax.random.key(4), lengths=lengths)  # fmt: skip
        out[f"pgd_nostart/{name}"] = nd.attacks.pgd(p, xs, ys, c, 0.5, steps=3, step_size=0.3,
                                                    norm=norm)  # fmt: skip
        attack = PGD(0.4, steps=3, step_size=0.2, norm=norm)
        out[f"pgd_fn/{name}"] = attack.attack(fn, xs, ys, key=jax.random.key(5))
    out["fgsm_fn"] = FGSM(0.3).attack(fn, xs, ys)
    out["deepfool"] = nd.attacks.deepfool(p, xs, c, max_iter=5, lengths=lengths)
    return {k: np.asarray(v) for k, v in out.items()}


def study_outputs() -> dict:
    xs, ys, lengths = mg.data()
    params, cfgs, seeds = mg.ensemble()
    test = Sequences(np.asarray(xs), np.asarray(ys), np.asarray(lengths))
    out = {}
    for draws in (0, 2):
        acc = nd.study.evaluate_members(params, cfgs, test, key=jax.random.key(mg.KEY),
                                        perturbations=OBJECTS, batch_size=10,
                                        inference_draws=draws)  # fmt: skip
        for name, a in acc.items():
            out[f"accuracy/{draws}/" + "/".join(str(x) for x in name)] = np.asarray(a)
        rows = nd.study.study_rows(acc, cfgs, seeds, n_boot=200, n_perm=200)
        out[f"rows/{draws}"] = json.dumps([r.to_dict() for r in rows])
        out[f"markdown/{draws}"] = nd.study.study_markdown(rows)
        out[f"csv/{draws}"] = nd.study.accuracies_csv(acc, cfgs, list(seeds), mg.N)
        out[f"verdicts/{draws}"] = json.dumps(nd.study.study_verdicts(rows))
    return out


def robustness_outputs() -> dict:
    xs, ys, lengths = mg.data()
    test = Sequences(np.asarray(xs), np.asarray(ys), np.asarray(lengths))
    models = {"a": (mg.cfg(), mg.member(0)), "b": (mg.cfg(0.2), mg.member(7))}
    result = nd.attacks.robustness_table(models, test, (*OBJECTS, DeepFool(max_iter=5)),
                                         key=jax.random.key(mg.KEY), batch_size=10,
                                         progress=False)  # fmt: skip
    return {"robustness": json.dumps(result)}


def _golden(*prefixes: str) -> list[str]:
    return sorted(k for k in GOLDEN if k.startswith(prefixes))


ATTACK_KEYS = ("perturb", "fgsm", "pgd", "deepfool")
STUDY_KEYS = ("accuracy/", "rows/", "markdown/", "csv/", "verdicts/")


def test_perturbations_and_attacks_reproduce_golden():
    out = attack_outputs()
    assert sorted(out) == _golden(*ATTACK_KEYS)
    _check(out)


def test_old_spelling_of_perturbations_and_attacks_warns_and_reproduces_golden():
    with pytest.warns(DeprecationWarning):
        out = mg.attack_outputs()
    assert sorted(out) == _golden(*ATTACK_KEYS)
    _check(out)


@pytest.mark.slow
def test_study_reproduces_golden():
    out = study_outputs()
    assert sorted(out) == _golden(*STUDY_KEYS)
    _check(out)


@pytest.mark.slow
def test_old_spelling_of_study_warns_and_reproduces_golden():
    with pytest.warns(DeprecationWarning, match="mapping of perturbations"):
        out = mg.study_outputs()
    _check(out)


@pytest.mark.slow
def test_robustness_table_reproduces_golden():
    _check(robustness_outputs())
    with pytest.warns(DeprecationWarning, match="mapping of perturbations"):
        _check(mg.robustness_outputs())


def test_stored_studies_load_as_records_and_regenerate_their_tables():
    root = Path(__file__).parents[2] / "docs" / "results" / "noisy_dyn"
    for name in mg.STORED:
        stored = json.loads((root / name / "study.json").read_text())
        rows = [nd.study.StudyRow.from_dict(r) for r in stored]
        # the records write back exactly the JSON they were read from (keys, order, values)
        assert json.dumps([r.to_dict() for r in rows]) == json.dumps(stored), name
        assert all(r.is_clean == (d["perturbation"] == "clean") for r, d in zip(rows, stored))
        text = nd.study.study_markdown(rows) + "\n".join(nd.study.study_verdicts(rows))
        former = former_columns(text + nd.study.study_split(rows))
        assert former == str(GOLDEN[f"stored/{name}"]), name
