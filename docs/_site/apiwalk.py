"""Which modules and names the API reference must document, found by walking the packages.

A module is public when no part of its dotted name starts with ``_`` and it is not in
:data:`NOT_IN_REFERENCE`; its public names are its
``__all__`` or, without one, the names not starting with ``_`` whose object was defined inside
the package (so ``import numpy as np`` in a module is not a public name of it). Both the page
generator (``gen_pages.py``) and the build check (``hooks.py``) read this one list, so a module
or name added later is documented, or the strict build fails, without editing ``mkdocs.yml``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("noisy_dyn", "basis_ode", "trainkit")
NOT_IN_REFERENCE = ("trainkit.internal",)
"""Public-named modules that are not user API: ``trainkit.internal`` is the door through which
``noisy_dyn`` and ``basis_ode`` reach trainkit's helpers (its docstring lists them); it may
change without notice, so the reference leaves it out."""


def _ensure_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def public_modules(package: str) -> list[str]:
    """The dotted names of ``package`` and of its public modules and subpackages, sorted."""
    _ensure_path()
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + ".", onerror=lambda _: None):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name in NOT_IN_REFERENCE:
            continue
        names.append(info.name)
    return sorted(names)


def public_names(module_name: str) -> list[str]:
    """The names a reader may use from ``module_name``: its ``__all__``, else its own names."""
    _ensure_path()
    module = importlib.import_module(module_name)
    explicit = getattr(module, "__all__", None)
    if explicit is not None:
        # A submodule listed in ``__all__`` (``noisy_dyn.data``) has a page of its own.
        return [
            str(n) for n in explicit if not isinstance(getattr(module, n, None), types.ModuleType)
        ]
    top = module_name.split(".")[0]
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        origin = getattr(obj, "__module__", None)
        if origin is None or not str(origin).startswith(top):
            continue
        out.append(name)
    return out


def external(module_name: str, name: str) -> str | None:
    """Where a public function or class defined outside the three packages comes from
    (``"numpy.sqrt"``), or None for the packages' own names, constants and instances."""
    obj = getattr(importlib.import_module(module_name), name, None)
    if not (callable(obj) and hasattr(obj, "__module__") and hasattr(obj, "__qualname__")):
        return None
    origin = str(obj.__module__ or "")
    if origin.split(".")[0] in PACKAGES:
        return None
    return f"{origin}.{obj.__qualname__}" if origin else str(obj.__qualname__)


def api_map() -> dict[str, list[str]]:
    """``{module: [public names]}`` for every public module of every package that imports."""
    out: dict[str, list[str]] = {}
    for package in PACKAGES:
        for module in public_modules(package):
            out[module] = public_names(module)
    return out


def undocumented() -> list[str]:
    """Public functions and classes without a docstring of their own (an auto-generated
    ``Name(field, ...)`` of a dataclass or named tuple does not count)."""
    import inspect

    out = []
    for module, names in api_map().items():
        mod = importlib.import_module(module)
        for name in names:
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if external(module, name):  # its docstring is its own package's
                continue
            doc = (obj.__doc__ or "").strip()
            if not doc or doc.startswith(f"{obj.__name__}("):
                out.append(f"{module}.{name}")
    return out


def _private_modules(package: str) -> list[types.ModuleType]:
    """The imported private modules of ``package`` (``noisy_dyn._solve``, ...)."""
    _ensure_path()
    prefix = package + "."
    return [
        m
        for name, m in sorted(sys.modules.items())
        if name.startswith(prefix) and isinstance(m, types.ModuleType)
    ]


def origin(module_name: str, name: str) -> str | None:
    """The module that defines ``module_name.name``: a function's or class's ``__module__``, a
    constant's module found by looking for the same name bound to the same object in the
    packages' modules, an instance's class's module; None when none of them tells."""
    obj = getattr(importlib.import_module(module_name), name, None)
    if inspect.isfunction(obj) or inspect.isclass(obj) or callable(obj):
        mod = getattr(obj, "__module__", None)
        if mod and str(mod).split(".")[0] in PACKAGES:
            return str(mod)
    own = module_name.split(".")[0]
    for package in (own, *(p for p in PACKAGES if p != own)):
        for m in _private_modules(package):
            if m.__name__ != module_name and vars(m).get(name, _MISSING) is obj:
                if any(part.startswith("_") for part in m.__name__.split(".")):
                    return m.__name__
    mod = type(obj).__module__
    if mod.split(".")[0] in PACKAGES:
        return mod
    return None


_MISSING = object()


def _identity(obj: object) -> object:
    """What makes two public names one entry: the same object, unless it is a plain value (a
    number or a string), which two modules may hold by chance."""
    if obj is None or isinstance(obj, bool | int | float | complex | str | bytes):
        return _MISSING
    return id(obj)


def canonical() -> dict[tuple[str, str], tuple[str, str]]:
    """``{(module, name): (module, name) where it is documented}``: each object is documented
    once, under its defining package (``trainkit.Sequences``, not ``noisy_dyn.Sequences``), at
    the shortest public path there (``noisy_dyn.fit``, not ``noisy_dyn.experiments.fit``), a
    topic module before the pipelines of ``experiments``; every other public name that is the
    same object points there. Functions and classes from other libraries are left out."""
    api = api_map()
    groups: dict[object, list[tuple[str, str]]] = {}
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for module, names in api.items():
        mod = importlib.import_module(module)
        for name in names:
            if external(module, name):
                continue
            key = _identity(getattr(mod, name, None))
            if key is _MISSING:
                out[(module, name)] = (module, name)
            else:
                groups.setdefault(key, []).append((module, name))
    for members in groups.values():
        home = (origin(*members[0]) or members[0][0]).split(".")[0]

        def rank(entry: tuple[str, str], home: str = home) -> tuple:
            module = entry[0]
            return (
                module.split(".")[0] != home,
                module.count("."),
                module.endswith(".experiments"),
                module,
                entry[1],
            )

        best = min(members, key=rank)
        for entry in members:
            out[entry] = best
    return out
