"""The model packages reach trainkit only through its public door.

Every module of ``noisy_dyn``, ``basis_ode`` and ``benchmarks`` is parsed (not imported) and
each import statement is checked: no ``trainkit._x`` module, no ``_``-prefixed name taken from
``trainkit`` or ``trainkit.internal``, and every name taken exists in the module's ``__all__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trainkit
import trainkit.internal

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("noisy_dyn", "basis_ode", "benchmarks")
PUBLIC = {"trainkit": set(trainkit.__all__), "trainkit.internal": set(trainkit.internal.__all__)}


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def violations(source: str, filename: str) -> list[str]:
    """Every import of a private trainkit module or name in ``source``, one line each."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "trainkit" and _private(alias.name):
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "trainkit":
                continue
            if _private(node.module):
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
                continue
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{filename}:{node.lineno}: {alias.name} from {node.module}")
                elif node.module in PUBLIC and alias.name not in PUBLIC[node.module] | {"internal"}:
                    found.append(
                        f"{filename}:{node.lineno}: {alias.name} is not in {node.module}.__all__"
                    )
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "trainkit" and node.attr.startswith("_"):
                found.append(f"{filename}:{node.lineno}: trainkit.{node.attr}")
    return found


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_package_module_is_parsed():
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    # The walk sees the modules that import trainkit the most (guards against an empty glob).
    assert {"noisy_dyn/_train.py", "basis_ode/_train.py", "noisy_dyn/data.py"} <= names


@pytest.mark.parametrize("package", PACKAGES)
def test_no_private_trainkit_import(package):
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        found += violations(path.read_text(), path.relative_to(ROOT).as_posix())
    assert not found, "private trainkit imports:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "from trainkit._loop import train",
        "import trainkit._loop as loop",
        "from trainkit import _loop",
        "from trainkit.internal import _helper",
        "from trainkit import not_exported_name",
        "import trainkit\ntrainkit._loop.compiled_step",
        "def f():\n    from trainkit._cli import CLIError",
    ],
)
def test_the_check_catches(source):
    assert len(violations(source, "x.py")) == 1


@pytest.mark.parametrize(
    "source",
    [
        "from trainkit import Settings, train",
        "import trainkit",
        "from trainkit.internal import check_int as _check_int",
        "from trainkit import internal",
        "from . import _train",
    ],
)
def test_the_check_passes(source):
    assert violations(source, "x.py") == []


@pytest.mark.parametrize("module", [trainkit, trainkit.internal])
def test_exports_resolve_and_are_unique(module):
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert module.__doc__ and "internal" in module.__doc__
