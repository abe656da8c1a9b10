"""A griffe extension: functions whose signature and docstring are made at import time.

``trainkit.takes_train_options`` adds the shared training options to a ``fit``'s signature and
puts their documentation where its docstring says ``<train options>``. Griffe reads the source,
which has neither, so for such a function (its runtime object carries ``train_option_names``)
this extension takes the docstring and the parameters from the imported object instead. Every
other object keeps what griffe read from the source.
"""

from __future__ import annotations

import importlib
import inspect
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


class RuntimeSignatures(griffe.Extension):
    """Docstring and parameters of ``takes_train_options`` functions from the runtime object."""

    def on_function_instance(self, *, node: Any, func: griffe.Function, agent: Any, **kw: Any):
        try:
            obj = getattr(importlib.import_module(func.module.path), func.name, None)
        except Exception:  # noqa: BLE001 - a module that does not import is griffe's to report
            return
        if not callable(obj) or not hasattr(obj, "train_option_names"):
            return
        doc = inspect.getdoc(obj)
        if doc:
            old = func.docstring
            func.docstring = griffe.Docstring(
                doc,
                lineno=old.lineno if old else func.lineno,
                parent=func,
                parser=old.parser if old else None,
                parser_options=old.parser_options if old else None,
            )
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
