"""JAX's private pieces the job of several processes needs are reached from one module only,
and each of them exists on the installed JAX (an upgrade that moves one fails here by name)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from trainkit import _jax_private

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("noisy_dyn", "basis_ode", "trainkit")
HOME = ROOT / "trainkit" / "_jax_private.py"


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names
                  if n == "jax._src" or n.startswith("jax._src.")]  # fmt: skip
    return found


def test_only_one_module_imports_jax_private() -> None:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) if p != HOME]
    offenders = [hit for p in files for hit in _private_imports(p)]
    assert not offenders, offenders
    assert _private_imports(HOME), "the check reads imports: the home module has some"


@pytest.mark.parametrize(
    ("module", "attribute"),
    [
        ("jax._src.distributed", "global_state"),
        ("jax._src.distributed", "_jax"),
        ("jax._src.xla_bridge", "backends_are_initialized"),
        ("jax._src.lib", "_jax.get_distributed_runtime_service"),
        ("jax._src.clusters", "ClusterEnv"),
        ("jax._src.hardware_utils", "num_available_tpu_chips_and_device_id"),
        ("jax._src.cloud_tpu_init", "get_tpu_library_path"),
    ],
)
def test_each_private_piece_exists(module: str, attribute: str) -> None:
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        assert hasattr(obj, part), f"{module}.{attribute}"
        obj = getattr(obj, part)


def test_the_pieces_have_the_shape_used() -> None:
    state = _jax_private.distributed_state()
    for field in ("client", "process_id", "num_processes", "preemption_sync_manager"):
        assert hasattr(state, field), field
    detect = importlib.import_module("jax._src.clusters").ClusterEnv
    assert len(inspect.signature(detect.auto_detect_unset_distributed_params).parameters) == 6
    # alone, on a CPU: no job, no preemption manager, no TPU
    assert state.client is None
    assert _jax_private.preemption_sync_manager() is None
    assert _jax_private.on_a_tpu_vm() is False
    assert isinstance(_jax_private.backends_initialized(), bool)
