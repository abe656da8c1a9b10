"""Variants named on the command line and in files: one parser and one deprecation for every
small family of objects (divergence policies, returned parameters, ...).

A family is a base class and a table ``{name: class}`` of its no-argument members; the edges
(command line, files) give a name, the library takes the object. :func:`variant` turns a name
into its object (an object passes as it is) and refuses anything else in one line that names
the objects; :func:`variant_or_warn` does the same for an argument that used to take the name,
with a ``DeprecationWarning`` that names the object to pass instead. Families whose members take
settings (traces, recipes, bases, schemes) are looked up by :func:`named`, which builds
``table[name](*args, **settings)`` and names the settings a member takes when others are given.
Every ``*_by_name`` of both packages is :func:`lookup`, :func:`named` or :func:`variant` over its
own table.
"""

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["lookup", "named", "variant", "variant_or_warn"]

V = TypeVar("V")


def variant(
    value: str | V, base: type[V], table: Mapping[str, type[V]], argument: str,
    prefix: str = "trainkit.",
) -> V:  # fmt: skip
    """``table[value]()`` for a name in ``table``; an instance of ``base`` as it is. ``prefix``:
    where the objects live, as the message names them (``trainkit.``, ``noisy_dyn.theory.``).

    Raises:
        ValueError: anything else; the message names ``argument``, the objects and the names.
    """
    if isinstance(value, base):
        return value
    if not isinstance(value, str) or value not in table:
        objects = " or ".join(f"{prefix}{cls.__name__}()" for cls in table.values())
        raise ValueError(
            f"`{argument}` must be {objects} (or one of the names {tuple(table)}), got {value!r}."
        )
    return table[value]()


def variant_or_warn(
    value: str | V, base: type[V], table: Mapping[str, type[V]], argument: str, where: str,
    stacklevel: int = 3, prefix: str = "trainkit.",
) -> V:  # fmt: skip
    """:func:`variant`, with a ``DeprecationWarning`` when ``value`` is a name (the former
    spelling): ``"<where>: <argument>='last' is deprecated; pass <argument>=trainkit.X()."``.
    ``stacklevel`` counts from the caller of this function."""
    obj = variant(value, base, table, argument, prefix)
    if isinstance(value, str):
        warnings.warn(
            f"{where}: {argument}={value!r} is deprecated; pass "
            f"{argument}={prefix}{type(obj).__name__}().",
            DeprecationWarning,
            stacklevel=stacklevel + 1,
        )
    return obj


def lookup(name: str, table: Mapping[str, V], what: str) -> V:
    """``table[name]``; anything else (not a string, not in ``table``) raises ``ValueError``:
    ``"unknown <what> 'x'; choose one of a, b, c."`` (the names sorted)."""
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(sorted(table))}.")
    return table[name]


def named(
    name: str, table: Mapping[str, Callable[..., V]], what: str, /, *args: Any, **settings: Any
) -> V:
    """``table[name](*args, **settings)``: the object a name stands for at the edges (command
    line, run and model files), e.g. ``named("hutchinson", TRACES, "trace", num_samples=8)``.

    Raises:
        ValueError: an unknown name (:func:`lookup`'s message).
        TypeError: settings the member does not take; the message lists those it takes.
    """
    make = lookup(name, table, what)
    try:
        signature = inspect.signature(make)
    except (TypeError, ValueError):  # a builtin without a signature: let the call speak
        return make(*args, **settings)
    try:
        signature.bind(*args, **settings)
    except TypeError:
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        known = [n for n, p in signature.parameters.items() if p.kind not in variadic]
        unknown = sorted(set(settings) - set(known))
        label = getattr(make, "__name__", type(make).__name__)
        problem = f"has no setting(s) {unknown}" if unknown else "cannot take these settings"
        raise TypeError(f"{what} {name!r} ({label}) {problem}; it takes {known}.") from None
    return make(*args, **settings)
