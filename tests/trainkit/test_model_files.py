"""Model files of both packages: round trips, byte reproducibility, and refusal of truncated,
malformed and foreign files with an error naming the file.

The malformed files are written here with ``numpy.savez`` and ``json`` directly (not through the
library), and the stored content is read back with ``numpy.load``, so every check is against an
independent reader or writer.
"""

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import basis_ode
import noisy_dyn
from trainkit import FileFormatError
from trainkit._model_files import write_if_changed


def _noisy(seed=0):
    cfg = noisy_dyn.NoisyRNNConfig(input_size=2, hidden_size=3, num_classes=4, learn_step=True)
    return noisy_dyn.init_params(jax.random.key(seed), cfg), cfg


def _meta(path: Path) -> dict:
    with np.load(path) as z:
        return json.loads(z["__meta__"].tobytes().decode())


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a model file with numpy.savez, its metadata JSON changed by ``edit(meta)``."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    edit(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(dst, **arrays)
    return dst


def test_noisy_model_round_trip_is_exact_and_byte_reproducible(tmp_path):
    params, cfg = _noisy()
    path = noisy_dyn.save_model(tmp_path / "m", params, cfg)
    assert path.name == "m.npz"
    meta = _meta(path)  # read with numpy alone
    assert meta["package"] == "noisy_dyn" and meta["config"] == cfg.to_dict()
    with np.load(path) as z:
        np.testing.assert_array_equal(z["param_step"], np.asarray(params["step"]))
    cfg2, p2 = noisy_dyn.load_model(path)
    assert cfg2 == cfg and set(p2) == set(params)
    for k in params:
        np.testing.assert_array_equal(np.asarray(p2[k]), np.asarray(params[k]))
    first = path.read_bytes()
    noisy_dyn.save_model(path, params, cfg)
    assert path.read_bytes() == first  # same model, same bytes


def test_noisy_load_refuses_bad_files_naming_them(tmp_path):
    params, cfg = _noisy()
    good = noisy_dyn.save_model(tmp_path / "good.npz", params, cfg)
    bad = {
        "truncated.npz": lambda p: p.write_bytes(good.read_bytes()[:-100]),
        "garbage.npz": lambda p: p.write_bytes(b"not a zip at all"),
        "plain.npz": lambda p: np.savez(p, a=np.zeros(2)),
        "extra.npz": lambda p: _rewrite(good, p, lambda m: m["config"].update(colour="red")),
        "missing.npz": lambda p: _rewrite(good, p, lambda m: m["config"].pop("dt")),
        "invalid.npz": lambda p: _rewrite(good, p, lambda m: m["config"].update(hidden_size=-1)),
        "shape.npz": lambda p: _rewrite(good, p, lambda m: m["config"].update(hidden_size=5)),
        "newer.npz": lambda p: _rewrite(good, p, lambda m: m.update(version=99)),
    }
    messages = {
        "extra.npz": r"unknown fields \['colour'\]",
        "missing.npz": r"lacks the fields \['dt'\]",
        "invalid.npz": "invalid",
        "shape.npz": "do not fit",
        "newer.npz": "version 99",
        "plain.npz": "not a model file",
        "truncated.npz": "not a readable model file",
        "garbage.npz": "not a readable model file",
    }
    for name, write in bad.items():
        write(tmp_path / name)
        with pytest.raises(FileFormatError, match=rf"{name}.*{messages[name]}"):
            noisy_dyn.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        noisy_dyn.load_model(tmp_path / "absent.npz")


def test_noisy_reads_the_earlier_layout(tmp_path):
    params, cfg = _noisy()
    arrays = {f"param_{k}": np.asarray(v) for k, v in params.items()}
    arrays["config"] = np.frombuffer(json.dumps(cfg.to_dict()).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    cfg2, p2 = noisy_dyn.load_model(tmp_path / "old.npz")
    assert cfg2 == cfg
    np.testing.assert_array_equal(np.asarray(p2["U"]), np.asarray(params["U"]))


def _random_variables(model, x):
    """Variables of ``model``'s structure (``eval_shape``: no eager init) with random values."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    leaves, treedef = jax.tree.flatten(shapes)
    rng = np.random.default_rng(1)
    values = [jnp.asarray(rng.normal(size=s.shape).astype(s.dtype)) for s in leaves]
    return jax.tree.unflatten(treedef, values)


def _conv():
    model = basis_ode.ConvODENet(
        num_classes=3, width=2, basis=basis_ode.Hat(2), method=basis_ode.RK4
    )
    return model, _random_variables(model, jnp.zeros((1, 8, 8, 1)))


def _leaves(tree):
    return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def test_basis_model_round_trip_keeps_class_config_and_every_collection(tmp_path):
    model, variables = _conv()
    # Plain (non-array) leaves and empty collections survive too.
    tagged = {**variables, "notes": {"family": "hat", "K": 2}, "extra": {}}
    path = basis_ode.save_model(tmp_path / "conv", model, tagged)
    meta = _meta(path)["config"]
    assert meta["class"] == "ConvODENet" and meta["K"] == 2
    assert meta["fields"]["basis"] == "hat" and meta["fields"]["param_dtype"] == "float32"
    model2, v2 = basis_ode.load_model(path)
    assert model2 == model and type(model2) is basis_ode.ConvODENet
    assert v2["notes"] == {"family": "hat", "K": 2} and v2["extra"] == {}
    want, got = _leaves(variables), _leaves({k: v2[k] for k in variables})
    assert want.keys() == got.keys() and set(v2) == set(tagged)
    for k in want:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))
    assert path.read_bytes() == basis_ode.save_model(tmp_path / "again", model, tagged).read_bytes()


def test_basis_tagger_and_bfloat16_leaves(tmp_path):
    model = basis_ode.ODETransformerTagger(
        vocab_size=7, num_tags=3, width=4, basis=basis_ode.PiecewiseConstant(1)
    )
    variables = _random_variables(model, jnp.zeros((1, 5), jnp.int32))
    half = jax.tree.map(lambda a: a.astype(jnp.bfloat16), variables)
    model2, v2 = basis_ode.load_model(basis_ode.save_model(tmp_path / "t.npz", model, half))
    assert model2 == model
    for a, b in zip(jax.tree.leaves(half), jax.tree.leaves(v2)):
        assert b.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_basis_load_refuses_bad_files_naming_them(tmp_path):
    model, variables = _conv()
    good = basis_ode.save_model(tmp_path / "good.npz", model, variables)
    edits = {
        "extra.npz": (
            lambda m: m["config"]["fields"].update(depth=3),
            r"unknown fields \['depth'\]",
        ),
        "missing.npz": (
            lambda m: m["config"]["fields"].pop("basis"),
            r"lacks the fields \['basis'\]",
        ),
        "class.npz": (lambda m: m["config"].update({"class": "Net"}), "unknown model class 'Net'"),
        "k.npz": (lambda m: m["config"].update(K=4), "records K = 4"),
        "other.npz": (lambda m: m.update(package="noisy_dyn"), "written by noisy_dyn.save_model"),
    }
    for name, (edit, message) in edits.items():
        _rewrite(good, tmp_path / name, edit)
        with pytest.raises(FileFormatError, match=rf"{name}.*{message}"):
            basis_ode.load_model(tmp_path / name)
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(FileFormatError, match="cut.npz"):
        basis_ode.load_model(tmp_path / "cut.npz")
    params, cfg = _noisy()
    noisy_file = noisy_dyn.save_model(tmp_path / "n.npz", params, cfg)
    with pytest.raises(FileFormatError, match=r"n\.npz: written by noisy_dyn"):
        basis_ode.load_model(noisy_file)
    with pytest.raises(TypeError, match="model must be one of"):
        basis_ode.save_model(tmp_path / "x.npz", object(), variables)


def test_write_if_changed_leaves_identical_files_untouched(tmp_path):
    path = tmp_path / "a.json"
    assert write_if_changed(path, lambda p: p.write_text("one"))
    os.utime(path, (1, 1))
    assert not write_if_changed(path, lambda p: p.write_text("one"))
    assert path.stat().st_mtime == 1 and path.read_text() == "one"
    assert write_if_changed(path, lambda p: p.write_text("two")) and path.read_text() == "two"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.json"]  # no temporary left
