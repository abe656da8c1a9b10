"""Data parallelism over CPU devices: use_cpu_devices, cpu_devices_for, and the fused kernel
under a batch-sharded jit (run in a fresh interpreter, where the device count can still be set)."""

import json
import re
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
    import contextlib, dataclasses, json, re, sys
    from pathlib import Path
    import noisy_dyn
    n = noisy_dyn.use_cpu_devices(2)
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    out = {"devices": len(jax.local_devices()), "n": n}
    mesh = Mesh(np.asarray(jax.local_devices()), ("batch",))
    rep, sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
    cases = {"ito": ("nrnn_ito", None, None),
             "reference-remat-lengths": ("nrnn_reference", 7, [40, 33, 5, 40, 12, 1, 39, 20])}
    for name, (preset, remat, lengths) in cases.items():
        cfg = noisy_dyn.preset(preset, input_size=1, num_classes=3)
        cfg = dataclasses.replace(cfg, hidden_size=16, remat=remat)
        k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
        params = noisy_dyn.init_params(k1, cfg, dtype=jnp.float32)
        xs = jax.random.uniform(k2, (8, 40, 1), jnp.float32)
        ys = jnp.arange(8) % 3
        lens = None if lengths is None else jnp.asarray(lengths)

        def loss(p, x, y, k):
            logits = noisy_dyn.apply(p, x, cfg, key=k, lengths=lens)
            logp = jax.nn.log_softmax(logits)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

        f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        args = (jax.device_put(params, rep), jax.device_put(xs, sh), jax.device_put(ys, sh),
                jax.device_put(k3, rep))
        v1, g1 = f(params, xs, ys, k3)
        for variant in ("partitioner", "set_mesh"):
            with jax.set_mesh(mesh) if variant == "set_mesh" else contextlib.nullcontext():
                v2, g2 = f(*args)
                hlo = f.lower(*args).compile().as_text()
            Path(sys.argv[1], f"{name}-{variant}.hlo").write_text(hlo)
            err = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30))
                      for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)))
            out[f"{name}-{variant}"] = {
                "value_err": abs(float(v1) - float(v2)) / abs(float(v1)), "grad_err": err,
                "gathers": len(re.findall(r"all-gather|all-to-all|collective-permute", hlo)),
                "all_reduces": len(re.findall(r"all-reduce(?:-start)?\\(", hlo)),
            }

    # given noise, differentiated with the inputs and the numerics (reference form, remat)
    cfg = noisy_dyn.preset("nrnn_reference", input_size=2, num_classes=3)
    cfg = dataclasses.replace(cfg, hidden_size=8, remat=4)
    ks = jax.random.split(jax.random.key(1), 4)
    params = noisy_dyn.init_params(ks[0], cfg, dtype=jnp.float32)
    xs = jax.random.uniform(ks[1], (8, 13, 2), jnp.float32)
    xi = jax.random.normal(ks[2], (8, 13, 8), jnp.float32)
    u = jax.random.uniform(ks[3], (8, 13, 8), jnp.float32)
    lens = jnp.array([13, 3, 5, 13, 12, 1, 9, 2])
    num = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), cfg)  # the config's numbers

    def read(p, x, xi, u, num):
        noise = noisy_dyn.NoiseSample(xi, u)
        h = noisy_dyn.final_state(p, x, num, noise=noise, lengths=lens)
        return jnp.sum(jnp.sin(h) * jnp.arange(8.0)[None])

    g = jax.jit(jax.value_and_grad(read, argnums=(0, 1, 2, 3, 4)))
    v1, g1 = g(params, xs, xi, u, num)
    with jax.set_mesh(mesh):
        v2, g2 = g(params, *jax.device_put((xs, xi, u), sh), num)
    out["given-noise-set_mesh"] = max(
        float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30))
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)))
    print(json.dumps(out))
    """
)


def _computations(hlo: str) -> dict[str, str]:
    """The computations of an HLO module's text, by name."""
    comps, name, body = {}, None, []
    for line in hlo.splitlines():
        if name is None:
            m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
            if m:
                name, body = m.group(1), []
        elif line.startswith("}"):
            comps[name] = "\n".join(body)
            name = None
        else:
            body.append(line)
    return comps


def all_reduces_in_loops(hlo: str) -> int:
    """All-reduce instructions inside a while loop's body (or anything its body calls)."""
    comps = _computations(hlo)
    called = re.compile(r"(?:body|condition|calls|to_apply|branch_computations)=\{?%?([\w.\-]+)")
    todo = [m for c in comps.values() for m in re.findall(r"body=%?([\w.\-]+)", c)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in comps:
            continue
        seen.add(name)
        todo += called.findall(comps[name])
    return sum(len(re.findall(r"all-reduce(?:-start)?\(", comps[n])) for n in seen)


def test_all_reduces_in_loops_reads_hlo():
    hlo = textwrap.dedent(
        """
        %add (a: f32[], b: f32[]) -> f32[] {
          ROOT %s = f32[] add(f32[] %a, f32[] %b)
        }
        %inner (p: f32[4]) -> f32[4] {
          ROOT %r = f32[4] all-reduce(f32[4] %p), to_apply=%add
        }
        %body (t: (s32[], f32[4])) -> (s32[], f32[4]) {
          %c = f32[4] call(f32[4] %x), to_apply=%inner
        }
        %cond (t: (s32[], f32[4])) -> pred[] {
          ROOT %lt = pred[] compare(s32[] %i, s32[] %n), direction=LT
        }
        ENTRY %main (x: f32[4]) -> f32[4] {
          %w = (s32[], f32[4]) while((s32[], f32[4]) %t), condition=%cond, body=%body
          ROOT %a = f32[4] all-reduce(f32[4] %x), to_apply=%add
        }
        """
    )
    assert all_reduces_in_loops(hlo) == 1  # the one in the loop, not the one after it


def test_sharded_batch_gives_the_same_step_without_gathers(tmp_path):
    """Sharding the batch over 2 CPU devices changes only the order of the batch sums: the
    same loss and gradients (float32 reassociation), the same noise (each row is drawn from its
    own counters), and no all-gather or all-to-all in the compiled step (each device draws and
    integrates its own rows). Under the partitioner alone the weight gradients are all-reduced
    as they accumulate; with the batch mesh in context (``jax.set_mesh``, as the training loop
    runs) the kernel runs under ``shard_map`` and sums them once, after its loops; given noise,
    differentiated with the inputs and the numerics, gives the same gradients there too."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["devices"] == r["n"] == 2
    for case in ("ito", "reference-remat-lengths"):
        for variant in ("partitioner", "set_mesh"):
            got = r[f"{case}-{variant}"]
            assert got["value_err"] < 1e-5 and got["grad_err"] < 1e-4, (case, variant, got)
            assert got["gathers"] == 0 and got["all_reduces"] >= 1, (case, variant, got)
        hlo = (tmp_path / f"{case}-set_mesh.hlo").read_text()
        assert all_reduces_in_loops(hlo) == 0, case
    # the gradients of given noise, inputs and numerics under shard_map (float32 rounding)
    assert r["given-noise-set_mesh"] < 1e-4
