"""Fault injection on the training engine (the toy task of ``tests/trainkit``), with counts.

    python -m benchmarks.reliability_faults [--signals 10] [--second 3] [--intruders 3]
        [--together 3] [--kills 6] [--tamper 6] [--seed 0]
        [--out benchmarks/results/reliability.md]

Every trial is a real process (``python -m tests.trainkit._child toy``: 4 epochs of 12 steps)
and every pass is checked against an uninterrupted run of the same settings in its own process
(final parameters compared bit for bit):

- ``signals``: SIGTERM or SIGINT (at random) after a random number of steps (checkpoints at epoch
  ends only): status 128 + signal, one line, the saved step at least the step reached when the
  signal was sent, and the same command again ends bit-identical;
- ``second``: a second SIGTERM while the first one's save runs: exits at once (143), one line,
  no traceback; the rerun ends bit-identical;
- ``intruders``: a second run started into a live run's folder: refused (status 2) naming the
  live process; the live run ends bit-identical;
- ``together``: two runs (seeds 0 and 1) started at once into one folder: exactly one proceeds,
  the folder holds only its steps;
- ``kills``: SIGKILL at a random moment of a run that checkpoints every step and keeps 2 (so
  many kills land in a save or a rotation): every listed step is complete and readable, and the
  rerun ends bit-identical;
- ``tamper`` (in process): one digit of ``position`` (epoch, batch or step) of the newest
  checkpoint changed: a warning and a fall back to the previous checkpoint, the run ends
  bit-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4 * 12  # the toy run: 4 epochs of 12 steps


def _env() -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("JAX_ENABLE_X64", None)
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    return env


def child(out: Path, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.trainkit._child", "toy", str(out), "--epochs", "4",
           *map(str, extra)]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip


def finish(p: subprocess.Popen) -> tuple[int, str]:
    out, _ = p.communicate(timeout=600)
    return p.returncode, out.decode()


def same(a: Path, b: Path) -> bool:
    with np.load(a) as x, np.load(b) as y:
        return sorted(x.files) == sorted(y.files) and all(
            np.array_equal(x[k], y[k]) for k in x.files
        )


def steps_on_disk(d: Path) -> list[int]:
    from trainkit import list_checkpoints

    return [int(p.name[5:]) for p in list_checkpoints(d)]


def wait_for(pred, timeout=120.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def read_step(f: Path) -> int:
    try:
        return int(f.read_text())
    except (OSError, ValueError):
        return -1


def signal_trial(tmp: Path, ref: Path, sig: int, at: int, twice: bool = False) -> dict:
    ckpt, sf, out = tmp / "ckpt", tmp / "steps", tmp / "run.npz"
    slow = ["--slow", "--save-sleep", 2.0] if twice else []
    v = child(out, "--every", 0, "--step-sleep", 0.01, "--ckpt", ckpt, "--steps-file", sf, *slow)
    wait_for(lambda: read_step(sf) >= at)
    reached = read_step(sf)
    os.kill(v.pid, sig)
    if twice:
        time.sleep(0.5)
        os.kill(v.pid, sig)
    rc, text = finish(v)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    saved = (steps_on_disk(ckpt) or [0])[-1]
    ok = rc == 128 + sig and len(lines) == 1 and "Traceback" not in text
    if twice:
        ok = ok and "again: exiting at once" in text
    else:
        ok = ok and f"checkpoint of step {saved} in" in lines[0] and saved >= reached
    rc2, _ = finish(child(out, "--every", 0, "--ckpt", ckpt))
    return {"ok": bool(ok and rc2 == 0 and same(ref, out)), "reached": reached, "saved": saved,
            "status": rc}  # fmt: skip


def intruder_trial(tmp: Path, ref: Path) -> bool:
    ckpt, sf = tmp / "ckpt", tmp / "steps"
    live = child(tmp / "live.npz", "--step-sleep", 0.02, "--ckpt", ckpt, "--slow",
                 "--steps-file", sf)  # fmt: skip
    wait_for(lambda: read_step(sf) >= 3)
    rc, text = finish(child(tmp / "intruder.npz", "--ckpt", ckpt))
    refused = rc == 2 and f"process {live.pid}" in text and "Traceback" not in text
    rc_live, _ = finish(live)
    return bool(refused and rc_live == 0 and same(ref, tmp / "live.npz"))


def together_trial(tmp: Path) -> bool:
    from trainkit import CheckpointStore

    ckpt = tmp / "ckpt"
    a = child(tmp / "a.npz", "--step-sleep", 0.02, "--ckpt", ckpt, "--seed", 0)
    b = child(tmp / "b.npz", "--step-sleep", 0.02, "--ckpt", ckpt, "--seed", 1)
    (ra, ta), (rb, tb) = finish(a), finish(b)
    if sorted([ra, rb]) != [0, 2]:
        return False
    seed = 0 if ra == 0 else 1
    with CheckpointStore(ckpt, None, reading=True) as store:
        seeds = {store.read_meta(s)["fingerprint"]["seed"] for s in store.steps()}
    return seeds == {seed} and "in use by the run of process" in (tb if ra == 0 else ta)


def kill_trial(tmp: Path, ref: Path, rng: random.Random) -> bool:
    from trainkit import CheckpointStore, load_latest_checkpoint

    ckpt, sf, out = tmp / "ckpt", tmp / "steps", tmp / "run.npz"
    v = child(out, "--ckpt", ckpt, "--steps-file", sf)
    at = rng.randrange(2, STEPS - 4)
    wait_for(lambda: read_step(sf) >= at)
    time.sleep(rng.uniform(0, 0.05))
    v.kill()
    v.wait()
    listed = steps_on_disk(ckpt)
    if listed:  # every listed step complete: its meta and state read back
        with CheckpointStore(ckpt, None, reading=True) as store:
            for step in listed:
                store.read_meta(step)
        if load_latest_checkpoint(ckpt) is None:
            return False
    rc, _ = finish(child(out, "--ckpt", ckpt))
    return rc == 0 and same(ref, out)


def tamper_trials(n: int, rng: random.Random) -> int:
    from tests.trainkit._toy import ToyTask, toy_data
    from trainkit import Settings, train

    data = toy_data()
    ref, _, _ = train(ToyTask(), data, Settings(epochs=2, batch_size=8, progress=False))
    passed = 0
    for _ in range(n):
        with tempfile.TemporaryDirectory() as d:
            s = dict(epochs=2, batch_size=8, checkpoint_dir=d, progress=False, checkpoint_every=4)
            train(ToyTask(), data, Settings(**s, stop_after_steps=rng.choice([10, 14, 18])))
            newest = sorted(Path(d).glob("ckpt_*"))[-1]
            f = newest / "meta" / "metadata"
            text = f.read_text()
            field = rng.choice(["epoch", "batch", "step"])
            m = re.search(rf'"{field}":\s*(\d+)', text)
            digit = rng.randrange(10)
            while str(digit) == m.group(1)[-1]:
                digit = rng.randrange(10)
            f.write_text(text[: m.end(1) - 1] + str(digit) + text[m.end(1) :])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out, _, _ = train(ToyTask(), data, Settings(**s))
            warned = any("skipping checkpoint" in str(w.message) for w in caught)
            passed += warned and all(np.array_equal(out[k], ref[k]) for k in ref)
    return passed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in (("signals", 10), ("second", 3), ("intruders", 3), ("together", 3),
                          ("kills", 6), ("tamper", 6), ("seed", 0)):  # fmt: skip
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--out", default="benchmarks/results/reliability.md")
    a = p.parse_args(argv)
    rng = random.Random(a.seed)
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        ref, ref0 = base / "ref.npz", base / "ref_every.npz"
        r1, r2 = child(ref, "--every", 0), child(ref0)
        assert finish(r1)[0] == 0 and finish(r2)[0] == 0
        res = []
        for i in range(a.signals):
            sig = rng.choice([signal.SIGTERM, signal.SIGINT])
            res.append(signal_trial(base / f"s{i}", ref, sig, rng.randrange(1, STEPS - 4)))
            print("signal", sig.name, res[-1], flush=True)
        lost = [r["saved"] - r["reached"] for r in res]
        rows.append((f"{a.signals} random SIGTERM/SIGINT (checkpoints at epoch ends only)",
                     f"{sum(r['ok'] for r in res)} of {a.signals} saved the step that was "
                     f"running and resumed bit-identical (saved - reached: {min(lost, default=0)}"
                     f" to {max(lost, default=0)} steps)"))  # fmt: skip
        sec = [signal_trial(base / f"t{i}", ref, signal.SIGTERM, rng.randrange(14, 40), True)
               for i in range(a.second)]  # fmt: skip
        rows.append((f"{a.second} second SIGTERMs during the first one's save",
                     f"{sum(r['ok'] for r in sec)} of {a.second} exited at once (143), "
                     "resumed bit-identical"))  # fmt: skip
        ok = sum(intruder_trial(base / f"i{i}", ref0) for i in range(a.intruders))
        rows.append((f"{a.intruders} intruders into a live run's folder",
                     f"{ok} of {a.intruders} refused naming the live process; the live run "
                     "ended bit-identical"))  # fmt: skip
        ok = sum(together_trial(base / f"g{i}") for i in range(a.together))
        rows.append((f"{a.together} pairs of runs started together into one folder",
                     f"{ok} of {a.together}: exactly one proceeded, "
                     "only its steps on disk"))  # fmt: skip
        ok = sum(kill_trial(base / f"k{i}", ref0, rng) for i in range(a.kills))
        rows.append((f"{a.kills} SIGKILLs at random moments (a save every step, keep 2)",
                     f"{ok} of {a.kills} resumed bit-identical"))  # fmt: skip
    ok = tamper_trials(a.tamper, rng)
    rows.append((f"{a.tamper} one-digit changes of a checkpoint's position",
                 f"{ok} of {a.tamper} fell back to the previous checkpoint with a warning, "
                 "ended bit-identical"))  # fmt: skip
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = (f"# Fault injection on the training engine\n\n`python -m benchmarks.reliability_faults"
            f" --seed {a.seed}` on {platform.machine()} ({os.cpu_count()} cores), {when}, "
            f"{time.time() - t0:.0f} s.\n\n| fault | result |\n|---|---|\n")  # fmt: skip
    text = head + "".join(f"| {f} | {r} |\n" for f, r in rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    print(text)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
