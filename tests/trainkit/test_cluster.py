"""A job of two ``jax.distributed`` processes x 2 CPU devices on localhost (gloo collectives),
joined as the command lines join one (``start_cluster``: the coordination service in a process
of its own):

- SIGKILL of either process (process 0 included): the other exits with one line and status 75
  within 60 s (no hang, no SIGABRT), and the newest verified checkpoint resumes: both processes
  started again end bit-identical to an uninterrupted job;
- both packages: a job stopped by SIGTERM to process 1 saves one step, resumes and ends
  bit-identical to an uninterrupted two-process job (that two processes train like one process
  x 4 devices is ``test_contract.py::test_devices_and_processes_train_like_one_device``);
- the two-process command of ``docs/devices.md``, run as written there.

The independent references: uninterrupted runs in their own processes, the exit status and
the output lines of real processes, the steps found on disk.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_contract import ROOT, _child, _env, _free_port, _same_npz, _steps
from .test_reliability import _out, _read_step, _wait_for

LOST_WITHIN_S = 60.0  # the contract: the others exit within a minute


def _pair(runner, out, *extra):
    port = _free_port()
    return [_child(runner, out, *extra, "--job", i, 2, port, devices=2) for i in range(2)]


def _ours(text: str) -> list[str]:
    """The lines the processes print themselves (not gloo's or JAX's own logging)."""
    skip = ("[Gloo]", "WARNING:absl:", "W1", "I1", "E1")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(skip)]


@pytest.fixture(scope="module")
def toy_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.npz"
    for rc, text in (_out(p) for p in _pair("toy", out, "--epochs", 4, "--every", 0)):
        assert rc == 0, text
    return out


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_sigkill_of_one_process_ends_the_other_in_one_line(tmp_path, victim, toy_reference):
    ckpt, sf = tmp_path / "ckpt", tmp_path / "steps"
    args = ("--epochs", 4, "--every", 0, "--ckpt", ckpt)
    pair = _pair("toy", tmp_path / "run.npz", *args, "--step-sleep", 0.02, "--steps-file", sf)
    assert _wait_for(lambda: _read_step(sf) >= 17, timeout=180)  # mid epoch 2
    killed = time.monotonic()
    os.kill(pair[victim].pid, signal.SIGKILL)
    rc, text = _out(pair[1 - victim], timeout=120)
    took = time.monotonic() - killed
    pair[victim].wait()
    lines = _ours(text)
    assert rc == 75, text
    assert lines[0].startswith(f"process {1 - victim} of 2 on "), text
    assert len(lines) == 2 and lines[1].startswith("error: "), text
    assert "lost" in lines[1] or "stopped answering" in lines[1], text
    assert "Traceback" not in text and "Check failure" not in text
    assert took < LOST_WITHIN_S, took
    print(f"SIGKILL of process {victim}: the other exited {took:.1f} s later: {lines[1]}")
    assert _steps(ckpt) and _steps(ckpt)[-1] == 12  # the epoch-1 checkpoint, verified on resume
    for rc, text in (_out(p) for p in _pair("toy", tmp_path / "run.npz", *args)):
        assert rc == 0, text
    _same_npz(toy_reference, tmp_path / "run.npz")


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["noisy_dyn", "basis_ode"])
def test_a_two_process_job_checkpoints_and_resumes_bit_identical(tmp_path, runner):
    ckpt, sf = tmp_path / "ckpt", tmp_path / "steps"
    ref = _pair(runner, tmp_path / "ref.npz")
    job = _pair(runner, tmp_path / "run.npz", "--ckpt", ckpt, "--steps-file", sf,
                "--step-sleep", 0.05)  # fmt: skip
    assert _wait_for(lambda: _read_step(sf) >= 5, timeout=300)
    os.kill(job[1].pid, signal.SIGTERM)  # only process 1 is told
    saved = []
    for rc, text in (_out(p) for p in job):
        assert rc == 143, text
        saved.append(re.search(r"checkpoint of step (\d+)", text).group(1))
    assert saved[0] == saved[1] and int(saved[0]) == _steps(ckpt)[-1]
    assert not (tmp_path / "run.npz").exists()
    for rc, text in (_out(p) for p in [*_pair(runner, tmp_path / "run.npz", "--ckpt", ckpt),
                                       *ref]):  # fmt: skip
        assert rc == 0, text
    _same_npz(tmp_path / "ref.npz", tmp_path / "run.npz")  # resumed: bit for bit


def _documented_command() -> list[str]:
    """The two-process command of docs/devices.md (``# process 1`` and ``# process 0``)."""
    text = (ROOT / "docs" / "devices.md").read_text()
    block = re.search(r"<!-- two processes, tested -->\n```bash\n(.*?)```", text, re.S)
    assert block, "docs/devices.md lost its tested two-process block"
    lines = [ln.rstrip("\\").strip() for ln in block.group(1).splitlines()]
    joined = " ".join(ln for ln in lines if ln and not ln.startswith("#"))
    return [c.strip() for c in joined.split("&") if c.strip()]


@pytest.mark.slow
def test_the_documented_two_process_command_runs_as_written(tmp_path):
    commands = _documented_command()
    assert len(commands) == 2 and all("--num-processes 2" in c for c in commands)
    env = {**_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    procs = [subprocess.Popen(shlex.split(c), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    ids = [int(re.search(r"--process-id (\d)", c).group(1)) for c in commands]
    first = outs[ids.index(0)]
    other = outs[ids.index(1)]
    assert "test accuracy" in first[0] and other[0] == ""  # results: process 0 only
    assert re.search(r"^process 1 of 2 on .*: 2 local cpu device", other[1], re.M)
    out = tmp_path / re.search(r"--out (\S+)", commands[0]).group(1)
    assert {"model.npz", "result.json", "log.jsonl"} <= {p.name for p in out.iterdir()}
    assert _steps(out / "checkpoints")
