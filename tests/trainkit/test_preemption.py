"""SIGTERM and SIGINT are answered at every phase, within the 30 s of a preemption notice:
during start-up (before anything trains) and during XLA's compilation of the first step (the
main thread sits in the compiler, where no Python signal handler runs).

Each case signals a real process of the engine (``tests/trainkit/_child.py`` under
``trainkit.run_command``, as the command lines run) at a known phase: start-up is a sleep after
the child wrote its marker file; compilation is the first step of a toy step carrying a chain of
unrolled ops that XLA compiles for seconds (the steps file says the first batch is placed).
The independent references: the exit status a shell reports for the signal (128 + signal), the
one line of output, the steps found on disk, and an uninterrupted run's parameters (the run
resumed after the signal must end bit-identical to it). 30 s is the contract (the grace period
of a preemption), not a measurement of speed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from .test_contract import _child, _same_npz, _steps
from .test_reliability import _out, _read_step, _wait_for

CONTRACT_S = 30.0  # a preemption notice's usual grace period
UNROLL = 150  # ops in the chain: XLA compiles the first step for several seconds


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _signal(proc, sig) -> tuple[int, str, list[str], float]:
    """Send ``sig``, wait for the exit: status, output, its non-empty lines, seconds taken."""
    sent = time.monotonic()
    os.kill(proc.pid, sig)
    rc, text = _out(proc, timeout=120)
    took = time.monotonic() - sent
    assert rc == 128 + sig, text
    return rc, text, _lines(text), took


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_start_up_ends_the_command_at_once(tmp_path, sig):
    out, ckpt = tmp_path / "run.npz", tmp_path / "ckpt"
    proc = _child("toy", out, "--startup-sleep", 120, "--ckpt", ckpt)
    assert _wait_for(lambda: (tmp_path / "run.npz.starting").exists(), timeout=120)
    _, text, lines, took = _signal(proc, sig)
    assert lines == [f"interrupted: {sig.name} during start-up: nothing was trained or saved yet"]
    assert took < CONTRACT_S, took
    assert _steps(ckpt) == [] and not out.exists()
    print(f"{sig.name} during start-up: exited {took:.2f} s after the signal")


@pytest.mark.slow
def test_a_signal_during_compilation_is_answered_and_the_run_resumes_bit_identical(tmp_path):
    ckpt, sf = tmp_path / "ckpt", tmp_path / "steps"
    args = ("--epochs", 2, "--every", 0, "--ckpt", ckpt)
    ref = _child("toy", tmp_path / "ref.npz", "--epochs", 2, "--every", 0)
    rc, text = _out(_child("toy", tmp_path / "run.npz", *args[:1], 1, *args[2:]))
    assert rc == 0, text
    assert _steps(ckpt) == [12]  # epoch 1 finished; epoch 2 compiles the step afresh
    for sig in (signal.SIGTERM, signal.SIGINT):
        sf.unlink(missing_ok=True)
        proc = _child("toy", tmp_path / "run.npz", *args, "--unroll", UNROLL, "--steps-file", sf)
        assert _wait_for(lambda: _read_step(sf) == 0, timeout=120)  # the first batch is placed
        time.sleep(0.5)  # into the compiler
        _, text, lines, took = _signal(proc, sig)
        assert len(lines) == 1, text
        assert lines[0].startswith(f"interrupted: {sig.name} during compilation: nothing was "
                                   "trained since the last checkpoint"), text  # fmt: skip
        assert f"the checkpoint of step 12 in {ckpt / 'ckpt_0000000012'} is kept" in lines[0]
        assert took < CONTRACT_S, took
        print(f"{sig.name} during compilation: exited {took:.2f} s after the signal")
        assert _read_step(sf) == 0 and _steps(ckpt) == [12]  # no step was trained or saved
    rc, text = _out(_child("toy", tmp_path / "run.npz", *args))
    assert rc == 0, text
    assert _out(ref)[0] == 0
    _same_npz(tmp_path / "ref.npz", tmp_path / "run.npz")
