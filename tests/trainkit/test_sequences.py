"""trainkit.Sequences: inputs, labels and lengths travel together; padding without lengths is
recognised (and when it cannot be)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import trainkit
from trainkit.internal import limit_splits, padding_problem, takes_sequences


class _Three(NamedTuple):
    train: Any
    validation: Any
    test: Any


def _padded(rng, n=12, t=10, f=3, low=3):
    """Right-padded N(0, 1) series (never an exact zero step) and their lengths."""
    lengths = rng.integers(low, t + 1, n)
    lengths[0] = t
    x = rng.standard_normal((n, t, f))
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    return x, lengths


def _trailing_zero_steps(x):
    """Per row, the number of all-zero steps at its end (a plain loop)."""
    out = []
    for row in x:
        k = 0
        for step in row[::-1]:
            if np.any(step != 0):
                break
            k += 1
        out.append(k)
    return np.array(out)


def test_a_sequences_reads_as_the_tuple_of_earlier_versions():
    x, y, n = np.ones((4, 5, 2)), np.arange(4), np.array([5, 4, 3, 2])
    plain, padded = trainkit.Sequences(x, y), trainkit.Sequences(x, y, n)
    xs, ys = plain
    assert xs is x and ys is y and len(plain) == 2 and plain[1] is y and plain[:1] == (x,)
    a, b, c = padded
    assert c is n and len(padded) == 3 and tuple(padded) == (x, y, n)
    assert (padded.size, padded.steps, padded.features) == (4, 5, 2)
    np.testing.assert_array_equal(padded.valid_steps().sum(axis=1), n)
    assert plain.valid_steps().all()


def test_a_sequences_is_a_pytree_and_keeps_its_lengths_through_jit():
    rng = np.random.default_rng(0)
    x, n = _padded(rng)
    data = trainkit.Sequences(jnp.asarray(x), jnp.arange(len(x)), jnp.asarray(n))

    @jax.jit
    def masked_sum(d):
        valid = jnp.arange(d.inputs.shape[1])[None, :] < d.lengths[:, None]
        return jnp.sum(jnp.where(valid[..., None], d.inputs, 0.0))

    expected = sum(x[i, : n[i]].sum() for i in range(len(x)))
    assert float(masked_sum(data)) == pytest.approx(expected, rel=1e-12)
    assert len(jax.tree.leaves(data)) == 3
    assert len(jax.tree.leaves(trainkit.Sequences(x, n))) == 2  # no lengths: no leaf
    doubled = jax.tree.map(lambda a: a * 2, data)
    assert isinstance(doubled, trainkit.Sequences)
    np.testing.assert_array_equal(doubled.lengths, 2 * n)


def test_take_and_limit_keep_the_lengths():
    rng = np.random.default_rng(1)
    x, n = _padded(rng)
    data = trainkit.Sequences(x, np.arange(len(x)), n)
    part = data.take(np.array([3, 1]))
    np.testing.assert_array_equal(part.lengths, n[[3, 1]])
    np.testing.assert_array_equal(part.inputs, x[[3, 1]])
    splits = limit_splits(_Three(data, data, data), 5)
    assert all(isinstance(s, trainkit.Sequences) and s.size == 5 for s in splits)
    np.testing.assert_array_equal(splits[0].lengths, n[:5])


def test_as_sequences_takes_tuples_and_refuses_anything_else_in_one_line():
    x, y = np.ones((3, 2, 1)), np.zeros(3, int)
    assert trainkit.as_sequences((x, y)).lengths is None
    assert trainkit.as_sequences([x, y, None]).lengths is None
    got = trainkit.as_sequences((x, y, np.array([1, 2, 2])))
    np.testing.assert_array_equal(got.lengths, [1, 2, 2])
    for bad in (x, (x,), (x, y, y, y), {"x": x}):
        with pytest.raises(TypeError, match="must be a trainkit.Sequences") as info:
            trainkit.as_sequences(bad, "test")
        assert "\n" not in str(info.value) and isinstance(info.value, ValueError)


def test_padding_problem_finds_dropped_lengths():
    rng = np.random.default_rng(2)
    x, n = _padded(rng)
    trailing = _trailing_zero_steps(x)
    np.testing.assert_array_equal(trailing, x.shape[1] - n)  # the reference agrees
    message = padding_problem(x, "test xs")
    padded = int(np.sum(trailing > 0))
    assert message.startswith(f"`test xs`: {padded} of {len(x)} rows end in all-zero steps")
    assert f"({trailing[trailing > 0].min()} to {trailing.max()} of {x.shape[1]})" in message
    assert "\n" not in message and "lengths" in message


def test_padding_problem_is_silent_where_padding_cannot_be_told_from_content():
    rng = np.random.default_rng(3)
    x, _ = _padded(rng)
    assert padding_problem(x[:, :, :][:1]) is None  # one full row: nothing padded
    inner = x.copy()
    inner[0, 2] = 0.0  # an all-zero step inside a row: zeros are content here
    assert padding_problem(inner) is None
    from sklearn.datasets import load_digits

    pixels = load_digits().images.reshape(-1, 64, 1) / 16.0  # background zeros everywhere
    assert _trailing_zero_steps(pixels).max() > 0
    assert padding_problem(pixels) is None
    assert padding_problem(np.zeros((4, 6, 2))) is None  # all-zero rows are not padding
    assert padding_problem(rng.standard_normal((5, 7, 2))) is None
    assert padding_problem(jax.ShapeDtypeStruct((2, 3, 1), np.float32)) is None


def test_takes_sequences_unpacks_one_sequences_into_xs_ys_and_lengths():
    @takes_sequences()
    def weighted(params, xs, ys, scale, *, lengths=None):
        total = xs.sum(axis=(1, 2)) if lengths is None else lengths
        return params * scale * total + ys

    @takes_sequences(position=0, labels=False, rewrap=True)
    def double(xs, *, lengths=None):
        return 2 * xs

    x, y, n = np.ones((3, 4, 1)), np.array([1, 2, 3]), np.array([4, 2, 1])
    data = trainkit.Sequences(x, y, n)
    np.testing.assert_array_equal(weighted(2, data, 3), weighted(2, x, y, 3, lengths=n))
    np.testing.assert_array_equal(weighted(2, trainkit.Sequences(x, y), 3), weighted(2, x, y, 3))
    with pytest.raises(TypeError, match="lengths given twice"):
        weighted(2, data, 3, lengths=n)
    out = double(data)
    assert isinstance(out, trainkit.Sequences) and out.lengths is n
    np.testing.assert_array_equal(out.inputs, 2 * x)
    np.testing.assert_array_equal(double(x), 2 * x)
