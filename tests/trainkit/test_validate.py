"""The shared checks of ``trainkit._validate`` and the optax cross-entropy the packages use."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainkit.internal import (
    ArgumentTypeError,
    LabelGapWarning,
    check_finite,
    check_int,
    check_label_space,
    check_labels,
    check_positive_int,
    check_real,
)


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3)])
def test_check_int_accepts_integers(value):
    assert check_positive_int("n", value) == 3 and type(check_int("n", value)) is int


@pytest.mark.parametrize("value", [True, 3.0, "3", None, np.float32(3)])
def test_check_int_refuses_other_types_as_both_type_and_value_errors(value):
    with pytest.raises(TypeError, match=r"`n` must be an int >= 1, got"):
        check_positive_int("n", value)
    with pytest.raises(ValueError):
        check_positive_int("n", value)
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)


def test_check_int_ranges():
    assert check_positive_int("n", None, optional=True) is None
    with pytest.raises(ValueError, match=r"`n` must be an int >= 1 or None, got 0\."):
        check_positive_int("n", 0, optional=True)
    with pytest.raises(ValueError, match=r"`k` must be an int in \[1, 4\], got 5\."):
        check_int("k", 5, minimum=1, maximum=4)
    with pytest.raises(ValueError, match=r">= 0, got -1"):
        check_int("seed", -1)
    assert check_int("shift", -7, minimum=None) == -7


def test_check_real():
    assert check_real("lr", np.float32(0.5), lo=0, lo_open=True) == 0.5
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"`lr` must be a finite number in \(0, inf\]"):
            check_real("lr", bad, lo=0, lo_open=True)
    with pytest.raises(TypeError):
        check_real("lr", "0.1")


def test_check_finite_names_the_cast_overflow():
    x = np.zeros((3, 4))
    check_finite("x", x, cast_to=np.float32)
    x[1, 2] = 1e39  # finite in float64, beyond float32's 3.4e38
    with pytest.raises(ValueError, match=r"beyond the float32 range \(first at index \(1, 2\): "
                       r"1e\+39.*cast from float64 to float32 overflows"):  # fmt: skip
        check_finite("data.npz: x_train", x, cast_to=np.float32)
    check_finite("x", x)  # no cast: finite is fine
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite value\(s\) \(first at index \(0, 0\)"):
        check_finite("x", x, cast_to=np.float32)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (
            np.array([0, 2**32 + 1], np.int64),
            r"the label 4294967297 \(index 1\), not below 2\*\*31",
        ),
        (np.array([1, 2**63], np.uint64), r"the label 9223372036854775808"),
        (np.array([0, -1, 1]), r"negative label \(-1 at index 1\)"),
        (np.array([0.0, 1.5]), r"non-integer label \(1.5 at index 1\)"),
        (np.array([0.0, np.inf]), r"non-finite label \(inf at index 1\)"),
        (np.array([0, 5]), None),  # fine without num_classes
    ],
)
def test_labels_are_checked_before_any_cast(labels, match):
    if match is None:
        with pytest.warns(LabelGapWarning):
            out, n = check_labels("y", labels)
        assert n == 6 and out.dtype == np.int32
        return
    with pytest.raises(ValueError, match=match):
        check_labels("y", labels, training=False)
    # the naive cast the check replaces would have wrapped them into small labels
    if labels.dtype.kind in "iu" and labels.max() >= 2**32:
        assert labels.astype(np.int32).max() < 2**31


def test_labels_against_a_fixed_output_size():
    out, n = check_labels("y", np.array([0.0, 1.0, 2.0]), num_classes=3)
    assert n == 3 and out.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="not below num_classes = 3"):
        check_labels("y", np.array([0, 3]), num_classes=3)
    with pytest.raises(TypeError, match="map the class names to indices"):
        check_labels("y", np.array(["cat", "dog"]))


def test_label_space():
    with pytest.raises(ValueError, match="every one of the 4 examples has the class 7"):
        check_label_space("`train` labels", np.full(4, 7), 8)
    with pytest.warns(LabelGapWarning, match=r"2 of the 100001 classes .*found \{0, 100000\}"):
        check_label_space("`train` labels", np.array([0, 100000, 0]), 100001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_label_space("`train` labels", np.array([0, 1, 2, 1]), 3)


def _np_ce(logits, ys):
    z = np.asarray(logits, np.float64)
    m = z.max(-1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(-1))
    p = np.exp(z - lse[:, None])
    grad = p.copy()
    grad[np.arange(len(ys)), ys] -= 1.0
    return lse - z[np.arange(len(ys)), ys], grad


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_cross_entropies_match_a_float64_reference(scale):
    from noisy_dyn._perturbations import _per_example_ce
    from noisy_dyn._training_loss import cross_entropy as _cross_entropy

    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(256, 7)) * scale, jnp.float32)
    ys = jnp.asarray(rng.integers(0, 7, 256))
    ref, ref_grad = _np_ce(logits, np.asarray(ys))
    for fn in (_cross_entropy, _per_example_ce):
        np.testing.assert_allclose(fn(logits, ys), ref, rtol=1e-6, atol=1e-6 * scale)
        grad = jax.grad(lambda z, fn=fn: fn(z, ys).sum())(logits)
        np.testing.assert_allclose(grad, ref_grad, atol=1e-6)
