"""NoisyRNNConfig validation, presets against the official runs' table (docs/noisy_rnn.md),
parameter counts."""

import dataclasses

import jax
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn import NoisyRNNConfig, preset

from ._core_reference import np_lipschitz


def _cfg(**kw):
    base = dict(input_size=1, hidden_size=4, num_classes=3)
    return NoisyRNNConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "field, value",
    [
        ("input_size", 0),
        ("hidden_size", -1),
        ("num_classes", 0),
        ("dt", 0.0),
        ("dt", -0.1),
        ("dt", float("nan")),
        ("beta", 1.5),
        ("beta", -0.1),
        ("gamma_a", -1e-3),
        ("gamma_w", -1e-3),
        ("sigma_add", -0.1),
        ("sigma_mult", -0.1),
        ("init_std", -1.0),
        ("noise_form", "stratonovich"),
        ("cell", "transformer"),
        ("remat", 0),
    ],
)
def test_impossible_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        _cfg(**{field: value})


def test_type_errors_and_cross_field_rules():
    with pytest.raises(TypeError, match="hidden_size"):
        _cfg(hidden_size=4.0)
    with pytest.raises(ValueError, match="sigma_mult"):
        _cfg(noise_form="reference", sigma_mult=1.5)
    with pytest.raises(ValueError, match="lipschitz"):
        _cfg(cell="lstm", sigma_add=0.1)
    with pytest.raises(ValueError, match="learn_step"):
        _cfg(cell="gru", learn_step=True)
    with pytest.raises(ValueError, match="Unknown NoisyRNNConfig field"):
        _cfg().replace(hiden_size=3)


def test_numpy_scalars_are_accepted_as_python_numbers():
    ys = np.array([0, 3, 1])
    cfg = noisy_dyn.preset("nrnn_reference", input_size=np.int64(1), num_classes=ys.max() + 1,
                           dt=np.float32(0.25), hidden_size=np.int32(8))  # fmt: skip
    assert cfg == noisy_dyn.preset("nrnn_reference", input_size=1, num_classes=4, dt=0.25,
                                   hidden_size=8)  # fmt: skip
    assert type(cfg.num_classes) is int and type(cfg.dt) is float and type(cfg.hidden_size) is int
    assert hash(cfg) == hash(cfg.replace(sigma_add=np.float64(cfg.sigma_add)))
    with pytest.raises(TypeError, match="num_classes"):
        _cfg(num_classes=np.float64(3.0))  # an integer field still refuses a float
    with pytest.raises(TypeError, match="learn_step"):
        _cfg(learn_step=np.bool_(True))


def test_config_is_frozen_hashable_and_a_static_jit_argument():
    a, b = _cfg(), _cfg()
    assert a == b and hash(a) == hash(b) and a != _cfg(dt=0.02)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.dt = 0.5
    f = jax.jit(lambda x, cfg: x * cfg.dt, static_argnames="cfg")
    assert float(f(2.0, cfg=_cfg(dt=0.25))) == 0.5


# the official runs' table (docs/noisy_rnn.md):
# (form, learn_step, dt, lr, beta, gamma_a, gamma_w, alpha, sigma_a, sigma_m)
SPEC_ROWS = {
    "lipschitz": ("ito", False, 0.03, 0.003, 0.75, 1e-3, 1e-3, 1.0, 0.0, 0.0),
    "antisymmetric": ("ito", False, 0.01, 0.002, 1.0, 1e-4, 1e-4, 0.0, 0.0, 0.0),
    "nrnn_reference": ("reference", True, 0.01, 0.001, 0.75, 1e-3, 1e-3, 1.0, 0.02, 0.02),
    "nrnn_reference_high": ("reference", True, 0.01, 0.001, 0.75, 1e-3, 1e-3, 1.0, 0.05, 0.02),
}


@pytest.mark.parametrize("name", sorted(SPEC_ROWS))
def test_presets_match_the_spec_table(name):
    form, learn, dt, lr, beta, ga, gw, alpha, sa, sm = SPEC_ROWS[name]
    cfg = preset(name, input_size=1, num_classes=10)
    got = (cfg.noise_form.name, cfg.learn_step, cfg.dt, cfg.beta, cfg.gamma_a, cfg.gamma_w)
    assert got == (form, learn, dt, beta, ga, gw)
    assert (cfg.alpha, cfg.sigma_add, cfg.sigma_mult, cfg.hidden_size) == (alpha, sa, sm, 128)
    assert noisy_dyn.preset_learning_rate(name) == lr
    assert (cfg.sigma_add > 0) == (not cfg.is_deterministic())


def test_all_presets_build_and_override():
    assert set(noisy_dyn.PRESETS) == {
        "nrnn_ito", "nrnn_reference", "nrnn_reference_high", "lipschitz", "antisymmetric",
        "lstm", "gru",
    }  # fmt: skip
    for name in noisy_dyn.PRESETS:
        cfg = preset(name, input_size=3, num_classes=5, hidden_size=7)
        assert (cfg.input_size, cfg.num_classes, cfg.hidden_size) == (3, 5, 7)
        assert noisy_dyn.preset_description(name)
    ito = preset("nrnn_ito", input_size=1, num_classes=10)
    # documented derivation: per-step noise std sqrt(dt) * sigma = 0.02, the small-noise level
    assert np.isclose(np.sqrt(ito.dt) * ito.sigma_add, 0.02)
    assert ito.noise_form == noisy_dyn.ItoNoise()
    assert noisy_dyn.preset_learning_rate("lipschitz", task="pmnist") == 0.0035
    with pytest.raises(ValueError, match="preset"):
        preset("nrnn", input_size=1, num_classes=10)
    with pytest.raises(ValueError, match="beta"):
        preset("lipschitz", input_size=1, num_classes=10, beta=2.0)


def test_parameter_count_of_the_official_model_is_34442(key):
    cfg = preset("nrnn_reference", input_size=1, num_classes=10)
    shapes = jax.eval_shape(lambda k: noisy_dyn.init_params(k, cfg), key)  # no compute
    assert noisy_dyn.count_params(shapes) == 34_442
    # closed form: 2 H^2 + H (input) + H (bias) + C H + C + H (step)
    H, C = 128, 10
    assert 2 * H * H + H + H + C * H + C + H == 34_442


def test_antisymmetric_preset_has_sym_A_equal_minus_gamma_identity(key):
    cfg = preset("antisymmetric", input_size=2, num_classes=3, hidden_size=6)
    params = noisy_dyn.init_params(key, cfg)
    params["M_A"] = jax.random.normal(key, (6, 6))  # any M
    A, W = noisy_dyn.recurrent_matrices(params, cfg)
    for M, gamma in ((A, cfg.gamma_a), (W, cfg.gamma_w)):
        sym = 0.5 * (np.asarray(M) + np.asarray(M).T)
        np.testing.assert_allclose(sym, -gamma * np.eye(6), atol=1e-14)
    np.testing.assert_allclose(
        A, np_lipschitz(np.asarray(params["M_A"]), 1.0, cfg.gamma_a), atol=1e-14
    )
