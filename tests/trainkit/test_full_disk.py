"""A full disk, for real: a small tmpfs filled to the last byte.

A finished run reruns there (it has nothing to write: "already complete", its unchanged outputs
left as they are); a run that has to save fails with one ``OSError`` naming the step folder and
what was being written; the previous checkpoint is kept and verifies; with space again the run
goes on. The independent references: the file system's own ``ENOSPC`` and the steps on disk.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings

import pytest

from trainkit import Settings, train, write_if_changed
from trainkit._checkpoint import list_checkpoints, load_latest_checkpoint

from ._toy import ToyTask, toy_data


def _mount_tmpfs(path, size="4m") -> bool:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


def _fill(path) -> None:
    """Write zeros into ``path`` until the file system has no byte left."""
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as err:
                assert err.errno == errno.ENOSPC


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                    reason="mounting a tmpfs needs root on Linux")  # fmt: skip
def test_a_full_disk_names_the_path_keeps_the_checkpoint_and_lets_a_finished_run_rerun(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk):
        pytest.skip("mount -t tmpfs refused here")
    try:
        ckpt, result = disk / "ckpt", disk / "result.json"
        s = Settings(epochs=2, batch_size=8, seed=0, checkpoint_dir=ckpt, progress=False)
        first, hist, _ = train(ToyTask(), toy_data(), s)
        text = json.dumps({"steps": hist["step"]})
        assert write_if_changed(result, lambda p: p.write_text(text))
        _fill(disk / "filler")
        with warnings.catch_warnings():  # a finished run: nothing to write, no word
            warnings.simplefilter("error")
            again, _, _ = train(ToyTask(), toy_data(), s)
        assert write_if_changed(result, lambda p: p.write_text(text)) is False
        with pytest.raises(OSError) as err:  # three epochs: step 36 must be saved
            train(ToyTask(), toy_data(), s.replace(epochs=3))
        line = str(err.value)
        assert err.value.errno == errno.ENOSPC and "\n" not in line
        assert f"while writing its arrays of checkpoint {ckpt / 'ckpt_0000000036'}" in line
        assert f"the previous checkpoint {ckpt / 'ckpt_0000000024'} is kept" in line
        with pytest.raises(OSError, match=f"No space left on device while writing {result}"):
            write_if_changed(result, lambda p: p.write_text(text + " "))
        os.unlink(disk / "filler")
        assert [p.name for p in list_checkpoints(ckpt)][-1] == "ckpt_0000000024"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # it verifies
            assert load_latest_checkpoint(ckpt)["path"].name == "ckpt_0000000024"
        _, hist3, _ = train(ToyTask(), toy_data(), s.replace(epochs=3))
        assert hist3["step"] == [12, 24, 36]
        for k in first:
            assert (again[k] == first[k]).all()
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
