"""The Ito Euler-Maruyama recursion against diffrax on the same Brownian motion.

Both checks use a ``diffrax.VirtualBrownianTree``: its increments over the coarse grid drive
``noisy_dyn.final_state`` (through ``noise=``), and diffrax solves the same SDE

    dh = f(h, x) dt + (sigma_a + sigma_m h) ⊙ dW,   f(h, x) = alpha A h + tanh(W h + U x + b)

on the same tree, with its own Euler scheme, as an independent reference.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import noisy_dyn

H, X = 2, 1
SIGMA_A, SIGMA_M = 0.3, 1.5


def _setup():
    cfg = noisy_dyn.NoisyRNNConfig(X, H, 2, dt=0.1, sigma_add=SIGMA_A, sigma_mult=SIGMA_M)
    params = noisy_dyn.init_params(jax.random.key(3), cfg, dtype=jnp.float64)
    params = {**params, "M_W": params["M_W"] * 40.0, "U": jnp.ones((H, X))}
    A, W = noisy_dyn.recurrent_matrices(params, cfg)
    x = jnp.full((X,), 0.5)

    def drift(t, h, args):
        return cfg.alpha * A @ h + jnp.tanh(W @ h + params["U"] @ x + params["b"])

    def diffusion(t, h, args):
        return jnp.diag(SIGMA_A + SIGMA_M * h)

    return cfg, params, drift, diffusion


def _tree(key, tol):
    return diffrax.VirtualBrownianTree(0.0, 1.0, tol=tol, shape=(H,), key=key)


def _diffrax_euler(drift, diffusion, bm, n):
    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
    sol = diffrax.diffeqsolve(
        terms, diffrax.Euler(), 0.0, 1.0, 1.0 / n, jnp.zeros(H), max_steps=n + 1,
        saveat=diffrax.SaveAt(t1=True),
    )  # fmt: skip
    return sol.ys[-1]


def _coarse_normals(bm, n):
    """Standard normals xi_k = (W((k+1)/n) - W(k/n)) sqrt(n) from the tree."""
    ts = jnp.arange(n + 1) / n
    w = jax.vmap(lambda t: bm.evaluate(0.0, t))(ts[1:])
    dw = jnp.diff(jnp.concatenate([jnp.zeros((1, H)), w]), axis=0)
    return dw * jnp.sqrt(n)


def test_same_increments_give_diffrax_euler_exactly():
    cfg, params, drift, diffusion = _setup()
    n = 16
    bm = _tree(jax.random.key(0), 1e-4)
    ours = noisy_dyn.final_state(
        params, jnp.full((1, n, X), 0.5), cfg.replace(dt=1.0 / n),
        noise=_coarse_normals(bm, n)[None],
    )[0]  # fmt: skip
    theirs = _diffrax_euler(drift, diffusion, bm, n)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_strong_order_one_half_against_fine_diffrax_path():
    cfg, params, drift, diffusion = _setup()
    n_fine, ns, paths = 256, (4, 8, 16, 32), 200
    keys = jax.random.split(jax.random.key(1), paths)
    fine = jax.jit(jax.vmap(lambda k: _diffrax_euler(drift, diffusion, _tree(k, 2.0**-12), n_fine)))
    reference = fine(keys)
    errors = []
    for n in ns:
        xi = jax.jit(jax.vmap(lambda k, n=n: _coarse_normals(_tree(k, 2.0**-12), n)))(keys)
        h = noisy_dyn.final_state(params, jnp.full((paths, n, X), 0.5), cfg.replace(dt=1.0 / n),
                                  noise=xi)  # fmt: skip
        errors.append(float(jnp.mean(jnp.linalg.norm(h - reference, axis=-1))))
    slope = np.polyfit(np.log(1.0 / np.asarray(ns)), np.log(errors), 1)[0]
    assert abs(slope - 0.5) < 0.2, (slope, errors)
