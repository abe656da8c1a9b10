"""A training process for the contract tests: one runner (the engine on the toy task, or either
package's ``fit``), optionally one of several ``jax.distributed`` processes.

    python -m tests.trainkit._child RUNNER OUT [--ckpt DIR] [--slow] [--dist ID N PORT]
        [--job ID N PORT] [--save-sleep SECONDS] [--seed S] [--epochs E] [--every N]
        [--step-sleep SECONDS] [--steps-file FILE] [--unroll N] [--startup-sleep SECONDS]

Writes the returned parameters' leaves to ``OUT`` (``.npz``, process 0 only). Errors and
interruptions are reported as by the command lines (``trainkit.run_command``: one line, status 2
or 128 + signal). The toy runner's options: ``--seed``, ``--epochs`` (3), ``--every`` (checkpoint
every N steps, 0: at epoch ends only; default 1), ``--step-sleep`` (host seconds before every
step, to widen the window of a signal), ``--save-sleep`` (seconds before every save with
``--slow``, 0.05) and ``--steps-file`` (the global step count, rewritten
after every step). ``--dist`` joins a job with ``jax.distributed.initialize`` itself, ``--job``
as the command lines do (``trainkit``'s ``start_cluster``: the coordination service in a process
of its own). ``--unroll N``: the toy step carries a chain of N unrolled ops (XLA compiles it
for seconds; numbers unchanged). ``--startup-sleep S``: sleep S seconds before training, after
writing ``OUT.starting`` (a start-up phase to signal).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("runner", choices=("toy", "noisy_dyn", "basis_ode"))
    p.add_argument("out")
    p.add_argument("--ckpt", default=None)
    p.add_argument("--slow", action="store_true")
    p.add_argument("--save-sleep", type=float, default=0.05)
    p.add_argument("--dist", nargs=3, type=int, default=None)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--step-sleep", type=float, default=0.0)
    p.add_argument("--steps-file", default=None)
    p.add_argument("--job", nargs=3, type=int, default=None)
    p.add_argument("--unroll", type=int, default=0)
    p.add_argument("--startup-sleep", type=float, default=0.0)
    return p.parse_args(argv)


def _pace(sleep: float, steps_file: str | None) -> None:
    """Sleep before every step and record the step count (wraps the engine's batch upload)."""
    from trainkit import _loop

    put, count = _loop._put_batch, [0]

    def paced(*args, **kw):
        if steps_file is not None:
            with open(steps_file + ".tmp", "w") as f:
                f.write(str(count[0]))
            os.replace(steps_file + ".tmp", steps_file)
        count[0] += 1
        time.sleep(sleep)
        return put(*args, **kw)

    _loop._put_batch = paced


def run(runner: str, ckpt=None, mesh=None, progress=False, *, seed=2, epochs=3, every=1,
        unroll=0):  # fmt: skip
    """Train ``runner`` on its tiny data set; returns the parameters."""

    if runner == "toy":
        from trainkit import Settings, train

        from ._toy import ToyTask, toy_data

        s = Settings(epochs=epochs, batch_size=8, seed=seed, checkpoint_dir=ckpt,
                     checkpoint_every=every or None, mesh=mesh, progress=progress)  # fmt: skip
        return train(ToyTask(unroll=unroll), toy_data(), s)[0]
    if runner == "noisy_dyn":
        import noisy_dyn
        from noisy_dyn.data import load_digits

        xs, ys = load_digits(seed=0).train
        xs, ys = xs[:64, ::4], ys[:64]  # 16 time steps
        cfg = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=8, dt=0.5)
        return noisy_dyn.fit(cfg, (xs, ys), epochs=2, batch_size=8, learning_rate=1e-2, seed=2,
                             checkpoint_dir=ckpt, checkpoint_every_steps=1, mesh=mesh,
                             progress=progress).params  # fmt: skip
    from basis_ode import data, fit
    from tests.basis_ode.test_train import MLPODENet

    xs, ys = data.load_digits(seed=0).train
    return fit(MLPODENet(width=8, n_steps=1), (xs[:64], ys[:64]), epochs=2,
               refine_at=(1,), batch_size=8, learning_rate=0.05, seed=2, checkpoint_dir=ckpt,
               checkpoint_every=1, mesh=mesh, progress=progress).params  # fmt: skip


def main(argv=None) -> None:
    from trainkit import run_command

    a = _args(sys.argv[1:] if argv is None else argv)
    sys.exit(run_command(lambda: _main(a)))


def _main(a) -> None:
    import jax

    if a.dist is not None:
        pid, n, port = a.dist
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"localhost:{port}", num_processes=n, process_id=pid)
    if a.job is not None:
        from trainkit._cluster import start_cluster

        pid, n, port = a.job
        start_cluster(argparse.Namespace(coordinator=f"localhost:{port}", num_processes=n,
                                         process_id=pid))  # fmt: skip
    if a.startup_sleep:
        with open(a.out + ".starting", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(a.startup_sleep)
    if a.slow:  # widen the window between checkpoints so that a kill lands mid-epoch
        from trainkit import _checkpoint

        save = _checkpoint.CheckpointStore.save

        def slow_save(*args, **kw):
            time.sleep(a.save_sleep)
            return save(*args, **kw)

        _checkpoint.CheckpointStore.save = slow_save
    import numpy as np

    if a.step_sleep or a.steps_file:  # (the steps file: process 0's count)
        _pace(a.step_sleep, a.steps_file if jax.process_index() == 0 else None)
    params = run(a.runner, a.ckpt, seed=a.seed, epochs=a.epochs, every=a.every, unroll=a.unroll)
    if jax.process_index() == 0:
        leaves = jax.tree_util.tree_leaves_with_path(params)
        tmp = a.out + ".tmp.npz"
        np.savez(tmp, **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
