"""Importing the packages leaves the process's logging as it was."""

import subprocess
import sys


def test_import_installs_no_root_log_handler():
    """orbax-checkpoint installs a root handler when imported, so it is imported where a
    checkpoint is first used (``trainkit._checkpoint._orbax``), not when the packages load:
    otherwise every library's log records in a user's program would print in that format."""
    code = (
        "import logging, sys, noisy_dyn, basis_ode, trainkit; "
        "print(len(logging.getLogger().handlers), 'orbax.checkpoint' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["0", "False"], done.stdout
