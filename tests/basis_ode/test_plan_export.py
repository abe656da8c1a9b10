"""export_resnet: an Euler configuration written as a plain Flax ResNet that needs no basis_ode.

Independent facts: the exported network is run in a fresh interpreter in which ``basis_ode`` and
``trainkit`` cannot be imported, by the code of the exported ``model.py`` alone, and its logits
equal the ODE-Net's to float32 rounding; the layer table against the closed form
``k = floor(j K / n)`` of the piecewise-constant basis at the Euler stage times ``j / n``.
"""

import ast
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import basis_ode as bo

from . import fill

MODEL = bo.ConvODENet(width=2, basis=bo.PiecewiseConstant(4), unroll=False)


@pytest.fixture(scope="module")
def trained():
    x = jnp.zeros((2, 8, 8, 1), jnp.float32)
    return fill(dict(jax.eval_shape(MODEL.init, jax.random.key(0), x)), seed=5)


def _images(n=16):
    return np.random.default_rng(1).standard_normal((n, 8, 8, 1)).astype(np.float32)


RUN_ELSEWHERE = """
import sys
sys.modules["basis_ode"] = None  # neither library can be imported here
sys.modules["trainkit"] = None
sys.path.insert(0, sys.argv[1])
import numpy as np
import model
net, variables = model.load(sys.argv[1])
np.save(sys.argv[3], np.asarray(net.apply(variables, np.load(sys.argv[2]))))
"""


def _run_exported(folder, x, tmp_path):
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "logits.npy"
    res = subprocess.run([sys.executable, "-c", RUN_ELSEWHERE, str(folder), str(tmp_path / "x.npy"),
                          str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return np.load(out)


def _float32_close(got, want, ulps=16):
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=ulps * np.finfo(np.float32).eps * scale)


def test_piecewise_constant_euler_exports_an_equal_resnet(tmp_path, trained):
    config = bo.Configuration((bo.PiecewiseConstant(4), bo.PiecewiseConstant(2),
                               bo.PiecewiseConstant(4)), (4, 6, 8), bo.EULER)  # fmt: skip
    model, v = bo.adapt(MODEL, trained, config)
    folder = bo.export_resnet(tmp_path / "resnet", model, v)
    x = _images()
    want = np.asarray(model.apply(v, jnp.asarray(x)))
    assert want.dtype == np.float32
    _float32_close(_run_exported(folder, x, tmp_path), want)
    meta = json.loads((folder / "config.json").read_text())
    for (K, n), table in zip(((4, 4), (2, 6), (4, 8)), meta["layers"]):
        assert table == [j * K // n for j in range(n)]  # k = floor(j K / n), all cells used
    keys = np.load(folder / "weights.npz").files
    assert not any("basis_coeffs" in k for k in keys)
    # the K sets are stored once each, however many layers share them
    assert sum(k.startswith("params/stage1_w") and k.endswith("Conv_0/kernel") for k in keys) == 2
    imports = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(ast.parse((folder / "model.py").read_text()))
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert imports <= {"__future__", "json", "pathlib", "typing", "flax", "jax", "numpy"}


def test_other_families_export_their_layer_weights(tmp_path, trained):
    config = bo.Configuration.uniform(bo.Hat(3), 5, bo.EULER, 3)
    model, v = bo.adapt(MODEL, trained, config)
    folder = bo.export_resnet(tmp_path / "hat", model, v)
    x = _images()
    want = np.asarray(model.apply(v, jnp.asarray(x)))
    # theta(t_j) is formed in float64 here and in float32 by the ODE-Net: rounding apart
    np.testing.assert_allclose(_run_exported(folder, x, tmp_path), want, rtol=1e-5, atol=1e-5)
    meta = json.loads((folder / "config.json").read_text())
    assert meta["layers"] == [list(range(5))] * 3


def test_only_euler_is_exported(tmp_path, trained):
    model, v = bo.adapt(MODEL, trained, bo.Configuration.uniform(bo.Hat(2), 2, bo.RK4, 3))
    with pytest.raises(ValueError, match="only an Euler configuration"):
        bo.export_resnet(tmp_path / "x", model, v)
