"""Data parallelism over CPU devices: use_cpu_devices, cpu_devices_for, and the fused kernel
under a batch-sharded jit (run in a fresh interpreter, where the device count can still be set)."""

import json
import subprocess
import sys
import textwrap

import pytest

import noisy_dyn


@pytest.mark.parametrize(
    ("batch", "cores", "want"),
    [(128, 2, 2), (128, 16, 4), (128, 1, 1), (96, 4, 3), (31, 8, 1), (64, 3, 2), (256, 8, 8)],
)
def test_cpu_devices_for(batch, cores, want):
    # the largest divisor n <= cores of the batch with >= 32 rows per device
    assert noisy_dyn.cpu_devices_for(batch, cores=cores) == want


def test_use_cpu_devices_after_jax_started_names_the_fix():
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # JAX is running in this process
    with pytest.raises(RuntimeError, match="right after the imports"):
        noisy_dyn.use_cpu_devices(2)
    with pytest.raises(ValueError, match="int >= 1"):
        noisy_dyn.use_cpu_devices(0)


SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, re
    import noisy_dyn
    n = noisy_dyn.use_cpu_devices(2)
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    cfg = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=3)
    cfg = dataclasses.replace(cfg, hidden_size=16)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = noisy_dyn.init_params(k1, cfg, dtype=jnp.float32)
    xs = jax.random.uniform(k2, (8, 40, 1), jnp.float32)
    ys = jnp.arange(8) % 3

    def loss(p, x, y, k):
        logp = jax.nn.log_softmax(noisy_dyn.apply(p, x, cfg, key=k))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    f = jax.jit(jax.value_and_grad(loss))
    mesh = Mesh(np.asarray(jax.local_devices()), ("batch",))
    rep, sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
    args = (jax.device_put(params, rep), jax.device_put(xs, sh), jax.device_put(ys, sh),
            jax.device_put(k3, rep))
    v1, g1 = f(params, xs, ys, k3)
    v2, g2 = f(*args)
    hlo = f.lower(*args).compile().as_text()
    err = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30))
              for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)))
    print(json.dumps({
        "devices": len(jax.local_devices()), "n": n,
        "value_err": abs(float(v1) - float(v2)) / abs(float(v1)), "grad_err": err,
        "gathers": len(re.findall(r"all-gather|all-to-all|collective-permute", hlo)),
        "all_reduces": len(re.findall(r"all-reduce\\(", hlo)),
    }))
    """
)


def test_sharded_batch_gives_the_same_step_without_gathers():
    """Sharding the batch over 2 CPU devices changes only the order of the batch sums: the
    same loss and gradients (float32 reassociation), the same noise (each row is drawn from its
    own counters), and no all-gather or all-to-all in the compiled step (each device draws and
    integrates its own rows; only the weight gradients are all-reduced)."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["devices"] == r["n"] == 2
    assert r["value_err"] < 1e-5 and r["grad_err"] < 1e-4
    assert r["gathers"] == 0 and r["all_reduces"] >= 1
