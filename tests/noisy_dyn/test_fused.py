"""The fused Ito scan (noisy_dyn._fused) against plain autodiff of a reference scan, float64.

The reference is a lax.scan of the Euler-Maruyama step written here from SPEC 1.2; its gradients
come from JAX's autodiff, independent of the hand-written backward pass under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from noisy_dyn._fused import (
    all_step_normals,
    default_chunk,
    ito_final_state,
    standard_normal,
    step_normals,
)

T, B, H, I = 11, 3, 5, 2
DT, SA, SM = 0.1, 0.3, 0.4


def _data(key):
    ks = jax.random.split(key, 7)
    return dict(
        A=0.3 * jax.random.normal(ks[0], (H, H)),
        W=0.3 * jax.random.normal(ks[1], (H, H)),
        U=jax.random.normal(ks[2], (H, I)),
        b=jax.random.normal(ks[3], (H,)),
        xs=jax.random.normal(ks[4], (T, B, I)),
        h0=0.1 * jax.random.normal(ks[5], (B, H)),
    ), jax.random.normal(ks[6], (T, B, H))


def _reference(A, W, U, b, xs, h0, xi, alpha):
    def step(h, inp):
        x, z = inp
        f = alpha * h @ A.T + jnp.tanh(h @ W.T + x @ U.T + b)
        return h + DT * f + np.sqrt(DT) * (SA + SM * h) * z, None

    return jax.lax.scan(step, h0, (xs, xi))[0]


def _loss(h, key):
    """A nonlinear scalar of h_T, so the adjoint entering the scan is not constant."""
    c = jax.random.normal(key, h.shape)
    return jnp.sum(c * jnp.sin(h))


@pytest.mark.parametrize(("alpha", "remat"), [(0.7, None), (0.0, 4), (0.7, 3)])
def test_gradients_match_autodiff_of_reference_scan(key, alpha, remat):
    args, xi = _data(key)
    names = list(args)

    def fused(*a):
        kw = dict(zip(names, a[:-1]))
        h = ito_final_state(**kw, dt=DT, alpha=alpha, sigma_add=SA, sigma_mult=SM, xi=a[-1],
                            remat=remat)  # fmt: skip
        return _loss(h, key)

    def ref(*a):
        return _loss(_reference(*a, alpha), key)

    argnums = tuple(range(len(names) + 1))
    v1, g1 = jax.jit(jax.value_and_grad(fused, argnums))(*args.values(), xi)
    v2, g2 = jax.jit(jax.value_and_grad(ref, argnums))(*args.values(), xi)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for name, a, b in zip([*names, "xi"], g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("remat", [None, 4])
def test_key_mode_uses_step_normals_and_matches_reference(key, remat):
    args, _ = _data(key)
    noise_key = jax.random.key(42)
    xi = all_step_normals(noise_key, T, (B, H), jnp.float64)
    # the stacked normals are exactly the per-step draws
    np.testing.assert_array_equal(xi[5], step_normals(noise_key, 5, (B, H), jnp.float64))

    def fused(A, W, U, b):
        h = ito_final_state(A, W, U, b, args["xs"], args["h0"], dt=DT, alpha=1.0, sigma_add=SA,
                            sigma_mult=SM, key=noise_key, remat=remat)  # fmt: skip
        return _loss(h, key)

    def ref(A, W, U, b):
        return _loss(_reference(A, W, U, b, args["xs"], args["h0"], xi, 1.0), key)

    p = (args["A"], args["W"], args["U"], args["b"])
    v1, g1 = jax.jit(jax.value_and_grad(fused, (0, 1, 2, 3)))(*p)
    v2, g2 = jax.jit(jax.value_and_grad(ref, (0, 1, 2, 3)))(*p)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("time", "chunk"), [(37, 16), (40, 20), (64, 16), (5, 5)])
def test_default_chunks_padded_or_not_match_reference(key, time, chunk):
    """Longer sequences run in chunks (padded with masked steps when no divisor of T in
    [8, 32] exists); gradients still equal autodiff of the reference scan."""
    assert default_chunk(time) == chunk
    ks = jax.random.split(key, 3)
    xs = jax.random.normal(ks[0], (time, B, I))
    xi = jax.random.normal(ks[1], (time, B, H))
    args, _ = _data(ks[2])
    args = {**args, "xs": xs}
    names = ("A", "W", "U", "b", "h0")

    def fused(*a):
        kw = {**args, **dict(zip(names, a[:-1]))}
        h = ito_final_state(**kw, dt=DT, alpha=0.7, sigma_add=SA, sigma_mult=SM, xi=a[-1])
        return _loss(h, key)

    def ref(*a):
        p = dict(zip(names, a[:-1]))
        return _loss(_reference(p["A"], p["W"], p["U"], p["b"], xs, p["h0"], a[-1], 0.7), key)

    argnums = tuple(range(len(names) + 1))
    vals = [args[n] for n in names] + [xi]
    v1, g1 = jax.jit(jax.value_and_grad(fused, argnums))(*vals)
    v2, g2 = jax.jit(jax.value_and_grad(ref, argnums))(*vals)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for name, a, b in zip([*names, "xi"], g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def test_no_noise_is_the_deterministic_euler_recursion_numpy(key):
    args, _ = _data(key)
    h = np.asarray(args["h0"])
    A, W, U, b = (np.asarray(args[k]) for k in ("A", "W", "U", "b"))
    for k in range(T):
        x = np.asarray(args["xs"][k])
        h = h + DT * (0.5 * h @ A.T + np.tanh(h @ W.T + x @ U.T + b))
    out = ito_final_state(**args, dt=DT, alpha=0.5, sigma_add=SA, sigma_mult=SM)  # no xi, no key
    np.testing.assert_allclose(out, h, rtol=1e-12)


def test_jit_and_vmap(key):
    args, xi = _data(key)
    f = jax.jit(lambda xi: ito_final_state(**args, dt=DT, alpha=1.0, sigma_add=SA, xi=xi))
    g = jax.vmap(f)(jnp.stack([xi, 2 * xi]))
    np.testing.assert_allclose(g[1], f(2 * xi), rtol=1e-12)


def test_standard_normal_distribution():
    z = np.asarray(standard_normal(jax.random.key(3), (20000,), jnp.float32))
    assert z.dtype == np.float32
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # independent streams for different keys, and correct second moment
    z2 = np.asarray(standard_normal(jax.random.key(4), (20000,), jnp.float32))
    assert abs(np.corrcoef(z, z2)[0, 1]) < 0.05
    assert abs(np.mean(z**2) - 1.0) < 0.05


def test_bad_input_raises(key):
    args, xi = _data(key)
    with pytest.raises(ValueError, match="at most one"):
        ito_final_state(**args, dt=DT, alpha=1.0, sigma_add=SA, xi=xi, key=key)
    with pytest.raises(ValueError, match="xi must have shape"):
        ito_final_state(**args, dt=DT, alpha=1.0, sigma_add=SA, xi=xi[:-1])
    with pytest.raises(ValueError, match="remat"):
        ito_final_state(**args, dt=DT, alpha=1.0, remat=0)
    bad = {**args, "U": args["U"][:, :1]}
    with pytest.raises(ValueError, match="U"):
        ito_final_state(**bad, dt=DT, alpha=1.0)
    with pytest.raises(TypeError, match="floating"):
        standard_normal(key, (3,), jnp.int32)
