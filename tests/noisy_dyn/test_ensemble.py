"""fit_ensemble: every member equals its own ``fit`` run (an independent path: one static config
per run, no vmap, no traced noise levels); resumption; members over several devices; errors."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import noisy_dyn
import trainkit
from noisy_dyn.data import load_digits
from tests._shape_checks import library_checks_only
from trainkit.internal import as_divergence_policy

from .test_train import _child_env

SEEDS = (3, 5)
KW = dict(epochs=2, batch_size=32, learning_rate=3e-3, progress=False)


@pytest.fixture(scope="module")
def digits():
    s = load_digits(seed=0)
    return s.train[0][:96], s.train[1][:96], s.validation[0][:32], s.validation[1][:32]


def _cfgs(form="ito", levels=((0.0, 0.0), (0.1, 0.1))):
    base = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=8, dt=0.1,
                            noise_form=form)  # fmt: skip
    return [base.replace(sigma_add=a, sigma_mult=m) for a, m in levels]


@pytest.fixture(scope="module")
def ensemble(digits):
    xs, ys, xv, yv = digits
    cfgs = _cfgs()
    _, params, history = noisy_dyn.fit_ensemble(
        cfgs, (xs, ys), seeds=SEEDS, validation=(xv, yv), **KW
    )
    return cfgs, params, history


def _member(params, m):
    return {k: np.asarray(v[m]) for k, v in params.items()}


def _close(a, b, tol=1e-9):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), atol=tol, err_msg=k)


def test_every_member_equals_its_own_fit(digits, ensemble):
    xs, ys, xv, yv = digits
    cfgs, params, history = ensemble
    assert all(v.shape[0] == 4 for v in params.values())
    for i, cfg in enumerate(cfgs):
        for j, seed in enumerate(SEEDS):
            m = i * len(SEEDS) + j  # cfg-major, seed-minor
            _, p, h = noisy_dyn.fit(cfg, (xs, ys), seed=seed, validation=(xv, yv), **KW)
            _close(_member(params, m), p)
            for name in ("train_loss", "train_accuracy", "val_accuracy"):
                np.testing.assert_allclose([e[m] for e in history[name]], h[name], atol=1e-9)
            assert history["best_epoch"][m] == h["best_epoch"]
    assert history["epoch"] == [1, 2] and history["global_step"] == 2 * (96 // 32)


def test_reference_form_grid_members_equal_fit(digits):
    """A grid mixing sigma_add alone with both noises: the compiled config draws both kinds,
    and the member without multiplicative noise still equals its own run."""
    xs, ys, _, _ = digits
    cfgs = _cfgs("reference", ((0.0, 0.0), (0.1, 0.0), (0.1, 0.05)))
    kw = {**KW, "epochs": 1}
    _, params, _ = noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=SEEDS, **kw)
    for m, (i, j) in {0: (0, 0), 3: (1, 1), 4: (2, 0)}.items():
        _, p, _ = noisy_dyn.fit(cfgs[i], (xs, ys), seed=SEEDS[j], **kw)
        _close(_member(params, m), p)


def test_resume_after_interruption_is_identical(digits, ensemble, tmp_path):
    xs, ys, xv, yv = digits
    cfgs, params, _ = ensemble
    kw = dict(seeds=SEEDS, validation=(xv, yv), checkpoint_dir=tmp_path, **KW)
    _, _, part = noisy_dyn.fit_ensemble(cfgs, (xs, ys), stop_after_steps=4, **kw)
    assert part["interrupted"] and part["global_step"] == 4
    _, resumed, history = noisy_dyn.fit_ensemble(cfgs, (xs, ys), **kw)
    _close(resumed, params, tol=0.0)
    assert history["global_step"] == 6 and (tmp_path / "log.jsonl").exists()
    _, again, _ = noisy_dyn.fit_ensemble(cfgs, (xs, ys), **kw)  # already complete
    _close(again, params, tol=0.0)
    with pytest.raises(noisy_dyn.CheckpointMismatchError):
        noisy_dyn.fit_ensemble(cfgs, (xs, ys), **{**kw, "seeds": (3, 6)})


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_a_diverging_member_is_frozen_and_the_others_train_on(digits):
    """``on_divergence=FreezeDiverged()``: the unstable level's members keep the parameters at
    which their own ``fit`` stops (its ``TrainingDiverged.params``) and the stable members still
    equal their own runs; the default raises, naming the members."""
    xs, ys, _, _ = digits
    cfgs = _cfgs(levels=((0.0, 0.0), (1e300, 0.0)))  # an Ito kick of 1e300: inf at step 1
    kw = {**KW, "epochs": 1, "return_params": noisy_dyn.LastEpoch()}
    with pytest.raises(noisy_dyn.TrainingDiverged, match=r"members \[2, 3\]"):
        noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=SEEDS, **kw)
    _, params, history = noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=SEEDS,
                                             on_divergence=trainkit.FreezeDiverged(),
                                             **kw)  # fmt: skip
    assert history["diverged_step"] == [None, None, 1, 1]
    for j, seed in enumerate(SEEDS):
        _, p, _ = noisy_dyn.fit(cfgs[0], (xs, ys), seed=seed, **kw)
        _close(_member(params, j), p)
        with pytest.raises(noisy_dyn.TrainingDiverged) as info:
            noisy_dyn.fit(cfgs[1], (xs, ys), seed=seed, **kw)
        _close(_member(params, 2 + j), info.value.params)
    with pytest.raises(ValueError, match="on_divergence"):
        noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=SEEDS, on_divergence="skip", **kw)
    # the names parse to the policies; passed to fit_ensemble they still work, with a warning
    assert trainkit.divergence_policy("freeze") == trainkit.FreezeDiverged()
    assert trainkit.divergence_policy("raise") == trainkit.RaiseOnDivergence()
    with pytest.warns(DeprecationWarning, match="FreezeDiverged"):
        assert as_divergence_policy("freeze", "fit_ensemble") == trainkit.FreezeDiverged()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"hidden_size": 4}, "hidden_size"), ({"noise_form": "reference"}, "noise_form"),
     ({"cell": "gru"}, "cell")],
)  # fmt: skip
def test_configs_differing_in_structure_are_refused(digits, change, field):
    base = _cfgs()[0]
    with pytest.raises(ValueError, match=rf"cfgs\[1\]\.{field} = .* differs"):
        noisy_dyn.fit_ensemble([base, base.replace(**change)], digits[:2], seeds=[0], **KW)


def test_bad_seeds_and_structure_mix_are_refused(digits):
    base = _cfgs()[1]
    with pytest.raises(ValueError, match="repeated"):
        noisy_dyn.fit_ensemble([base], digits[:2], seeds=[1, 1], **KW)
    with library_checks_only(), pytest.raises(TypeError, match="sequence of ints"):
        noisy_dyn.fit_ensemble([base], digits[:2], seeds=4, **KW)  # the library's own message
    with pytest.raises(ValueError, match="learn_step"):
        noisy_dyn.fit_ensemble([base, base.replace(learn_step=True)], digits[:2], seeds=[0], **KW)


_MULTI = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import Mesh
    import noisy_dyn

    with np.load(sys.argv[1]) as z:
        xs, ys = z["xs"], z["ys"]
    base = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=8, dt=0.1)
    cfgs = [base.replace(sigma_add=s, sigma_mult=s) for s in (0.0, 0.1)]
    kw = dict(epochs=1, batch_size=32, learning_rate=3e-3, progress=False)
    one = Mesh(np.array(jax.devices()[:1]), ("batch",))
    out = {"n": len(jax.devices())}
    for seeds in ((3, 5), (3, 5, 7)):  # 4 members: sharded; 6 members: batch sharded (n = 4)
        _, pm, _ = noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=seeds, **kw)
        _, p1, _ = noisy_dyn.fit_ensemble(cfgs, (xs, ys), seeds=seeds, mesh=one, **kw)
        out[str(len(seeds))] = max(float(np.max(np.abs(pm[k] - p1[k]))) for k in p1)
    print(json.dumps(out))
    """
)


def test_members_over_devices_match_one_device(digits, tmp_path):
    np.savez(tmp_path / "data.npz", xs=digits[0], ys=digits[1])
    script = tmp_path / "multi.py"
    script.write_text(_MULTI)
    env = _child_env()
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "data.npz")], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 4
    assert res["2"] < 1e-10 and res["3"] < 1e-10
