"""The API reference builds from the docstrings without a warning (pdoc), as CI requires."""

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("package", ["noisy_dyn", "basis_ode"])
def test_api_reference_builds_without_warnings(package: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "pdoc",
            package,
            "-o",
            str(tmp_path),
            "--docformat",
            "google",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "warn" not in result.stderr.lower(), result.stderr[-4000:]
    index = tmp_path / f"{package}.html"
    assert index.exists()
    # Every public name re-exported by the package has a documented entry in the reference.
    module = __import__(package)
    html = index.read_text()
    public = [
        n
        for n in vars(module)
        if not n.startswith("_") and not isinstance(getattr(module, n), type(sys))
    ]
    missing = [n for n in public if f'id="{n}"' not in html]
    assert not missing, f"names without a reference entry: {missing}"
