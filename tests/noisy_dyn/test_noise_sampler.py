"""The normal sampler (noisy_dyn.random.standard_normal) against a NumPy Threefry-2x32 reference.

The reference below is written from Salmon et al. (2011), "Parallel random numbers: as easy as
1, 2, 3" (Threefry-2x32, 20 rounds, the rotation constants of Random123), in NumPy uint32
arithmetic; the layout (row-major counters, two words per hash along the last axis) and the
transform ``sqrt(2) erfinv(u)`` with ``u`` from the top 23 bits are the ones the docstring states.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32
from scipy import special, stats

from noisy_dyn._threefry import _threefry2x32
from noisy_dyn.random import standard_normal, uniform

ROT = (13, 15, 26, 6, 17, 29, 16, 24)


def threefry_numpy(k0, k1, x0, x1):
    u32 = np.uint32
    k0, k1 = u32(k0), u32(k1)
    ks = [k0, k1, u32(k0 ^ k1 ^ u32(0x1BD11BDA))]
    x0 = (x0.astype(np.uint64) + k0).astype(u32)
    x1 = (x1.astype(np.uint64) + k1).astype(u32)
    for block in range(5):
        for r in ROT[4 * (block % 2) : 4 * (block % 2) + 4]:
            x0 = (x0.astype(np.uint64) + x1).astype(u32)
            x1 = ((x1 << u32(r)) | (x1 >> u32(32 - r))) ^ x0
        x0 = (x0.astype(np.uint64) + ks[(block + 1) % 3]).astype(u32)
        x1 = (x1.astype(np.uint64) + ks[(block + 2) % 3] + block + 1).astype(u32)
    return x0, x1


def uniforms_numpy(key_data, shape):
    lead, last = (shape[:-1], shape[-1]) if shape else ((), 1)
    pairs = (last + 1) // 2
    rows = int(np.prod(lead, dtype=np.int64))
    counter = np.arange(rows * pairs, dtype=np.uint32)
    y0, y1 = threefry_numpy(key_data[0], key_data[1], np.zeros_like(counter), counter)
    words = np.stack([y0, y1], axis=-1).reshape(rows, 2 * pairs)[:, :last]
    return ((words >> np.uint32(9)).astype(np.float64) / 2.0**23).reshape(shape)


def test_uniform_matches_numpy_reference_and_is_uniform(key):
    data = np.asarray(jax.random.key_data(key))
    np.testing.assert_array_equal(np.asarray(uniform(key, (3, 5), jnp.float64)),
                                  uniforms_numpy(data, (3, 5)))  # fmt: skip
    z = np.asarray(uniform(jax.random.key(11), (20000,)))
    assert z.min() >= 0.0 and z.max() < 1.0
    assert stats.kstest(z, "uniform").pvalue > 1e-3


def normals_numpy(key_data, shape):
    lead, last = (shape[:-1], shape[-1]) if shape else ((), 1)
    pairs = (last + 1) // 2
    rows = int(np.prod(lead, dtype=np.int64))
    counter = np.arange(rows * pairs, dtype=np.uint32)
    y0, y1 = threefry_numpy(key_data[0], key_data[1], np.zeros_like(counter), counter)
    words = np.stack([y0, y1], axis=-1).reshape(rows, 2 * pairs)[:, :last]
    u = ((words >> np.uint32(9)).astype(np.float64)) / 2.0**23  # [0, 1), 23 bits
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0)).astype(np.float64)
    u = np.maximum(lo, u * (1.0 - lo) + lo)
    return (np.sqrt(2.0) * special.erfinv(u)).reshape(shape)


def test_hash_is_bitwise_jax_threefry(key):
    data = np.asarray(jax.random.key_data(key))
    x = np.asarray(jax.random.bits(jax.random.key(5), (2, 1000), jnp.uint32))
    want = np.asarray(threefry_2x32(tuple(jnp.asarray(data)), jnp.asarray(x.ravel())))
    got = jax.jit(_threefry2x32)(data[0], data[1], x[0], x[1])
    np.testing.assert_array_equal(np.concatenate([np.asarray(g) for g in got]), want)
    ref = threefry_numpy(data[0], data[1], x[0], x[1])
    np.testing.assert_array_equal(np.concatenate(ref), want)


@pytest.mark.parametrize("shape", [(7,), (4, 6), (3, 5), (2, 3, 5), (), (1,)])
def test_standard_normal_matches_numpy_reference(shape):
    k = jax.random.key(11)
    got = np.asarray(standard_normal(k, shape, jnp.float32))
    want = normals_numpy(np.asarray(jax.random.key_data(k)), shape)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_rows_are_drawn_independently_of_the_batch_size():
    """Row r of a (B, H) draw depends only on (key, r): a larger batch extends a smaller one,
    which is what lets each device draw its own rows of a sharded batch."""
    k = jax.random.key(3)
    small = np.asarray(standard_normal(k, (4, 6)))
    large = np.asarray(standard_normal(k, (9, 6)))
    np.testing.assert_array_equal(large[:4], small)


@pytest.mark.parametrize("shape", [(4, 6), (3, 5), (2, 3, 5)])
def test_first_row_draws_a_slice_of_the_larger_draw(shape):
    """``first_row = r`` gives rows r, r + 1, ... of the same draw with more rows (the flat
    index over the leading axes), checked against the NumPy reference of the larger draw: how a
    device draws its shard of a batch (the fused kernel under ``shard_map``)."""
    k = jax.random.key(4)
    data = np.asarray(jax.random.key_data(k))
    rows = int(np.prod(shape[:-1]))
    want_n = normals_numpy(data, (3 * rows, shape[-1]))[rows : 2 * rows].reshape(shape)
    want_u = uniforms_numpy(data, (3 * rows, shape[-1]))[rows : 2 * rows].reshape(shape)
    first = jnp.asarray(rows)  # traced is fine
    got_n = jax.jit(lambda r: standard_normal(k, shape, first_row=r))(first)
    np.testing.assert_allclose(np.asarray(got_n), want_n, rtol=2e-6, atol=2e-6)
    got_u = uniform(k, shape, jnp.float64, first_row=rows)
    np.testing.assert_array_equal(np.asarray(got_u), want_u)
    with pytest.raises(ValueError, match="threefry key"):
        standard_normal(jax.random.key(4, impl="rbg"), shape, first_row=rows)


def test_standard_normal_moments_and_tails():
    z = np.asarray(standard_normal(jax.random.key(8), (400, 250), jnp.float32)).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 5 * se and abs(z.var() - 1) < 5 * np.sqrt(2) * se
    # neighbours from one hash (2j, 2j + 1) and from adjacent hashes are uncorrelated
    pairs = z.reshape(400, 125, 2)
    assert abs(np.corrcoef(pairs[..., 0].ravel(), pairs[..., 1].ravel())[0, 1]) < 5 * se * 1.5
    # tail mass beyond 3 sigma against the closed form 2 (1 - Phi(3))
    p3 = 2 * stats.norm.sf(3)
    assert abs(np.mean(np.abs(z) > 3) - p3) < 5 * np.sqrt(p3 / z.size)
