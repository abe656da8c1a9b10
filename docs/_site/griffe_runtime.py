"""A griffe extension: signatures and docstrings that are made at import time.

Two kinds of object have a runtime form that the source does not show:

* ``trainkit.takes_train_options`` adds the shared training options to a ``fit``'s signature
  and puts their documentation where its docstring says ``<train options>``. Griffe reads the
  source, which has neither, so for such a function (its runtime object carries
  ``train_option_names``) the docstring and the parameters come from the imported object.
* A dataclass that is not written with ``@dataclass`` (an ``equinox.Module``, whose metaclass
  makes it one) has an ``__init__`` that griffe cannot see, so its documented fields would be
  "parameters not in the signature". For every dataclass without an ``__init__`` of its own,
  the runtime signature is given to griffe as ``__init__`` (annotations from the source's
  fields), which also shows a default given through ``dataclasses.field`` as its value
  (``seed: int = 0``, not ``seed: int = _option(0, doc=...)``).

And one habit of writing is read as meant: an argument entry naming several parameters
(``gamma_a, gamma_w: diagonal shifts``), which Google style has no form for, becomes one entry
per name with the same description, so that griffe does not report a parameter called
``"gamma_a, gamma_w"`` missing from the signature.

Every other object keeps what griffe read from the source.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from typing import Any

import griffe

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
    inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
}


def _annotation(a: Any) -> str | None:
    if a is inspect.Parameter.empty:
        return None
    if isinstance(a, str):
        return a
    if isinstance(a, type):
        return a.__name__
    return inspect.formatannotation(a)


_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params|Attributes):\s*$")
_JOINT = re.compile(r"^(\s+)(\w+(?:\s*,\s*\w+)+)(\s*\([^)]*\))?:(.*)$")


def split_joint_arguments(doc: str) -> str:
    """``a, b: text`` in an argument section becomes ``a: text`` and ``b: text``."""
    lines = doc.split("\n")
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _SECTION.match(line)
        if m:
            section_indent = len(m.group(1))
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        j = _JOINT.match(line) if section_indent is not None else None
        if not j:
            out.append(line)
            i += 1
            continue
        body = [j.group(4)]  # the first line's text, then its continuation lines
        k = i + 1
        while k < len(lines) and (
            not lines[k].strip()
            and k + 1 < len(lines)
            and _more(lines[k + 1], j.group(1))
            or lines[k].strip()
            and _more(lines[k], j.group(1))
        ):
            body.append("\n" + lines[k])
            k += 1
        for name in re.split(r"\s*,\s*", j.group(2)):
            out.append(f"{j.group(1)}{name}{j.group(3) or ''}:{body[0]}" + "".join(body[1:]))
        i = k
    return "\n".join(out)


def _more(line: str, indent: str) -> bool:
    return len(line) - len(line.lstrip()) > len(indent)


def _former_names_apart(doc: str, names: set[str]) -> str:
    """Argument entries naming no parameter of the runtime signature (a former name that
    ``takes_train_options(renamed=...)`` still accepts) move out of the argument section into a
    note after it, so the signature and the documented parameters agree."""
    lines = doc.split("\n")
    out: list[str] = []
    moved: list[str] = []
    section: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _SECTION.match(line)
        if m and m.group(2) in ("Args", "Arguments", "Parameters", "Params"):
            section = len(m.group(1))
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if section is not None and line.strip() and indent <= section:
            section = None
        entry = (
            re.match(r"^(\s+)(\w+)(\s*\([^)]*\))?:\s(.*)$", line) if section is not None else None
        )
        if entry and entry.group(2) not in names and indent == section + 4:
            k = i + 1
            text = [entry.group(4).strip()]
            while k < len(lines) and lines[k].strip() and _more(lines[k], entry.group(1)):
                text.append(lines[k].strip())
                k += 1
            moved.append(f"``{entry.group(2)}=``: {' '.join(text)}")
            i = k
            continue
        out.append(line)
        i += 1
    if not moved:
        return doc
    for j, line in enumerate(out):  # after the argument section
        if _SECTION.match(line):
            k = j + 1
            while k < len(out) and (not out[k].strip() or _more(out[k], "")):
                k += 1
            while k > j + 1 and not out[k - 1].strip():
                k -= 1
            return "\n".join(out[:k] + ["", *moved] + out[k:])
    return "\n".join(out + ["", *moved])


def _set_docstring(obj: griffe.Object, text: str) -> None:
    old = obj.docstring
    obj.docstring = griffe.Docstring(
        text,
        lineno=old.lineno if old else obj.lineno,
        parent=obj,
        parser=old.parser if old else None,
        parser_options=old.parser_options if old else None,
    )


def _runtime(obj: griffe.Object) -> Any:
    """The imported object that griffe's ``obj`` stands for, or None."""
    try:
        target: Any = importlib.import_module(obj.module.path)
        for part in obj.path.removeprefix(obj.module.path).strip(".").split("."):
            target = getattr(target, part)
    except Exception:  # noqa: BLE001 - a module that does not import is griffe's to report
        return None
    return target


class RuntimeSignatures(griffe.Extension):
    """Parameters (and docstrings) from the runtime object where the source lacks them."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kw: Any) -> None:
        if obj.docstring and "," in obj.docstring.value:
            text = split_joint_arguments(obj.docstring.value)
            if text != obj.docstring.value:
                _set_docstring(obj, text)

    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kw: Any) -> None:
        if "__init__" in cls.members:
            return
        obj = _runtime(cls)
        if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
            return
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            return
        factories = {
            f.name: f.default_factory
            for f in dataclasses.fields(obj)
            if f.default_factory is not dataclasses.MISSING
        }
        params = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
        for p in sig.parameters.values():
            field = cls.members.get(p.name)
            annotation = getattr(field, "annotation", None) or _annotation(p.annotation)
            default = None if p.default is inspect.Parameter.empty else repr(p.default)
            if p.name in factories:  # shown as the call that makes it, not as <factory>
                default = f"{getattr(factories[p.name], '__name__', 'factory')}()"
            params.append(
                griffe.Parameter(
                    p.name, annotation=annotation, kind=_KINDS[p.kind], default=default
                )
            )
        init = griffe.Function(
            "__init__", lineno=0, endlineno=0, parent=cls, parameters=griffe.Parameters(*params)
        )
        cls.set_member("__init__", init)
        cls.labels.add("dataclass")

    def on_function_instance(self, *, node: Any, func: griffe.Function, agent: Any, **kw: Any):
        obj = _runtime(func)
        if not callable(obj) or not hasattr(obj, "train_option_names"):
            return
        doc = inspect.getdoc(obj)
        if doc:
            names = set(inspect.signature(obj).parameters)
            _set_docstring(func, _former_names_apart(split_joint_arguments(doc), names))
        # The source's own parameters keep their source annotations; the added ones (the
        # options) come from the runtime signature, in its order.
        source = {p.name: p for p in func.parameters}
        params = []
        for p in inspect.signature(obj).parameters.values():
            if p.name in source:
                params.append(source[p.name])
                if p.default is not inspect.Parameter.empty and source[p.name].default is None:
                    source[p.name].default = repr(p.default)
                continue
            default = None if p.default is inspect.Parameter.empty else repr(p.default)
            params.append(
                griffe.Parameter(
                    p.name,
                    annotation=_annotation(p.annotation),
                    kind=_KINDS[p.kind],
                    default=default,
                )
            )
        func.parameters = griffe.Parameters(*params)
