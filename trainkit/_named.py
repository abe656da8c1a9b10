"""Variants named on the command line and in files: one parser and one deprecation for every
small family of objects (divergence policies, returned parameters, ...).

A family is a base class and a table ``{name: class}`` of its no-argument members; the edges
(command line, files) give a name, the library takes the object. :func:`variant` turns a name
into its object (an object passes as it is) and refuses anything else in one line that names
the objects; :func:`variant_or_warn` does the same for an argument that used to take the name,
with a ``DeprecationWarning`` that names the object to pass instead.
"""

import warnings
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["variant", "variant_or_warn"]

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
