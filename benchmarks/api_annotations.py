"""Count the jaxtyping shapes on the public API of ``noisy_dyn``, ``basis_ode`` and ``trainkit``.

Every name in the ``__all__`` of each public namespace (the package itself and its modules whose
names do not start with ``_``) is read once, where it is defined. A *callable* is a public
function, or a public class's constructor fields (dataclasses, ``equinox.Module``, ``NamedTuple``)
and its public methods (``__call__`` included). Each parameter and return annotation is classified:

- ``shaped``: a jaxtyping array type (``Float[Array, "batch time"]``, ``Int[ArrayLike, "n"]``,
  ``PRNGKeyArray``), or a ``PyTree[...]``;
- ``bare``: an array type without dtype and shape (``jax.Array``, ``np.ndarray``, ``ArrayLike``);
- ``missing``: no annotation at all (``self``, ``cls``, ``*args`` and ``**kwargs`` are not counted);
- ``other``: anything else (``int``, ``str``, a config class, ``Callable``, ``Any``); the
  parameters annotated ``Any`` (pytrees, models, loose containers) are listed in the JSON.

A callable is *shaped* when it has array arguments or returns and all of them are ``shaped`` and
no parameter is ``missing``; *no arrays* when every parameter is annotated and none is an array;
otherwise it is listed with what is bare or missing. Writes ``benchmarks/results/
api_annotations.json`` and ``.md``::

    python -m benchmarks.api_annotations
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import datetime
import importlib
import inspect
import json
import pkgutil
import sys
import types
import typing
from pathlib import Path
from typing import Any

import jax
import jaxtyping
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("trainkit", "noisy_dyn", "basis_ode")  # trainkit first: the others re-export it
_BARE = (jax.Array, np.ndarray)  # a NumPy scalar (np.int64, np.float32) is a number, not an array


def public_namespaces(package: str) -> dict[str, list[str]]:
    """``{module name: its public names}`` for the package and its public modules."""
    root = importlib.import_module(package)
    found = {package: list(root.__all__)}
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None)
        if names is None:  # a public module without __all__: its own public definitions
            names = [
                n
                for n, v in vars(module).items()
                if not n.startswith("_") and getattr(v, "__module__", None) == info.name
            ]
        found[info.name] = list(names)
    return found


def classify(annotation: Any) -> set[str]:
    """The kinds (``shaped``, ``bare``, ``other``) an annotation contains, recursively."""
    if annotation is inspect.Parameter.empty:
        return {"missing"}
    if isinstance(annotation, type) and issubclass(annotation, jaxtyping.AbstractArray):
        return {"shaped"}
    if type(annotation).__name__ == "_MetaPyTree" or "jaxtyping.PyTree" in repr(annotation):
        return {"shaped"}
    if annotation in _BARE or (isinstance(annotation, type) and issubclass(annotation, _BARE)):
        return {"bare"}
    if typing.get_origin(annotation) is collections.abc.Callable:
        return {"other"}  # a function's signature is documentation only (not checked at run time)
    args = typing.get_args(annotation)
    if annotation is jaxtyping.ArrayLike or (
        args and all(a in typing.get_args(jaxtyping.ArrayLike) for a in args) and len(args) > 3
    ):
        return {"bare"}
    if isinstance(annotation, typing.TypeAliasType if hasattr(typing, "TypeAliasType") else ()):
        return classify(annotation.__value__)
    kinds: set[str] = set()
    if any("shaped" in classify(a) for a in args):  # Float[ArrayLike, ""] adds NumPy scalars
        args = tuple(a for a in args if not (isinstance(a, type) and issubclass(a, np.generic)))
    for a in args:
        if isinstance(a, list):  # Callable[[...], ...]
            for b in a:
                kinds |= classify(b) - {"missing"}
        elif a is not Ellipsis and a is not type(None):
            kinds |= classify(a) - {"missing"}
    return kinds or {"other"}


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # a name only imported under TYPE_CHECKING: read the strings as others
        return {}


def callable_record(fn: Any, qualname: str, fields: dict[str, Any] | None = None) -> dict:
    """One callable's parameters, classified; ``fields`` replaces the signature of a record."""
    if fields is None:
        hints = _hints(fn)
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            empty: list[str] = []
            return {"name": qualname, "status": "no signature", "bare": empty, "missing": empty}
        params = {}
        for p in sig.parameters.values():
            if p.name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[p.name] = hints.get(p.name, p.annotation)
        params["return"] = hints.get("return", sig.return_annotation)
    else:
        params = fields
    kinds = {name: sorted(classify(a)) for name, a in params.items()}
    kinds = {name: k for name, k in kinds.items() if not (name == "return" and k == ["missing"])}
    bare = [n for n, k in kinds.items() if "bare" in k]
    missing = [n for n, k in kinds.items() if "missing" in k]
    arrays = [n for n, k in kinds.items() if "bare" in k or "shaped" in k]
    if bare or missing:
        status = "partly" if any("shaped" in k for k in kinds.values()) else "unshaped"
    else:
        status = "shaped" if arrays else "no arrays"
    loose = [n for n, a in params.items() if a is Any]  # reported, not judged: pytrees, models
    return {"name": qualname, "status": status, "bare": bare, "missing": missing, "any": loose}


def _class_records(cls: type, qualname: str) -> list[dict]:
    records = []
    if dataclasses.is_dataclass(cls) or hasattr(cls, "_fields"):
        hints = _hints(cls)
        names = (
            [f.name for f in dataclasses.fields(cls)]
            if dataclasses.is_dataclass(cls)
            else cls._fields
        )
        fields = {n: hints.get(n, inspect.Parameter.empty) for n in names}
        records.append(callable_record(cls, f"{qualname}(fields)", fields))
    elif "__init__" in vars(cls):
        records.append(callable_record(cls.__init__, f"{qualname}.__init__"))
    for name, member in vars(cls).items():
        if (name.startswith("_") and name != "__call__") or not callable(member):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if inspect.isfunction(member):
            records.append(callable_record(member, f"{qualname}.{name}"))
    return records


def survey() -> dict[str, Any]:
    """Every public callable of the three packages, each counted once where it is defined."""
    seen: set[int] = set()
    rows = []
    for package in PACKAGES:
        for module_name, names in public_namespaces(package).items():
            module = importlib.import_module(module_name)
            for name in names:
                obj = getattr(module, name)
                obj = getattr(obj, "__wrapped__", obj)
                if id(obj) in seen or isinstance(obj, types.ModuleType):
                    continue
                seen.add(id(obj))
                where = f"{module_name}.{name}"
                if inspect.isclass(obj):
                    recs = _class_records(obj, where)
                elif callable(obj):
                    recs = [callable_record(obj, where)]
                else:
                    continue
                for r in recs:
                    rows.append({"package": package, **r})
    return {"rows": rows, "totals": totals(rows)}


def totals(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per package, the number of callables in each status."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = out.setdefault(r["package"], {})
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        counts["callables"] = counts.get("callables", 0) + 1
    return out


def to_markdown(result: dict[str, Any]) -> str:
    """The totals, then every callable that is not fully annotated."""
    statuses = ("shaped", "no arrays", "partly", "unshaped", "no signature")
    lines = [
        "# Public API annotations",
        "",
        f"{result['date']}, `{result['command']}`, counting {result['counted']}. Status per "
        "public callable (function, class fields or constructor, public method): see the module "
        "docstring.",
        "",
        "| package | callables | " + " | ".join(statuses) + " |",
        "|---|" + "---|" * (len(statuses) + 1),
    ]
    for pkg, c in result["totals"].items():
        cells = " | ".join(str(c.get(s, 0)) for s in statuses)
        lines.append(f"| {pkg} | {c['callables']} | {cells} |")
    todo = [r for r in result["rows"] if r["status"] in ("partly", "unshaped")]
    lines += ["", f"## Not fully annotated ({len(todo)})", ""]
    lines += ["| callable | bare arrays | missing |", "|---|---|---|"]
    for r in todo:
        lines.append(f"| `{r['name']}` | {', '.join(r['bare'])} | {', '.join(r['missing'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    """Survey the packages; write JSON and Markdown under ``--out`` (``--name`` names them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="api_annotations")
    parser.add_argument("--counted", default="the working tree", help="which code was counted")
    args = parser.parse_args(argv)
    result = survey()
    result["date"] = datetime.date.today().isoformat()
    result["counted"] = args.counted
    result["command"] = " ".join(["python -m benchmarks.api_annotations", *(argv or [])])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(to_markdown(result))
    for pkg, c in result["totals"].items():
        print(pkg, c)
    return result


if __name__ == "__main__":
    main()
