"""Markdown tables for results (GitHub-flavoured pipe tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def format_cell(value: Any, float_format: str = ".4g") -> str:
    """One cell: floats with ``float_format``, None as empty, ``|`` escaped as ``\\|``."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = format(value, float_format)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    headers: Sequence[str] | None = None,
    float_format: str = ".4g",
) -> str:
    """A Markdown table: one line per row of ``rows``, the cells ``row[c]`` for ``c in columns``.

    Arguments:
        rows: the rows (mappings); a missing key gives an empty cell.
        columns: the keys shown, in order.
        headers: the header texts (default: the keys).
        float_format: ``format`` spec of float cells.

    Returns:
        The table, lines joined by ``\\n`` (no trailing newline).
    """
    headers = list(columns) if headers is None else list(headers)
    if len(headers) != len(columns):
        raise ValueError(f"{len(headers)} headers for {len(columns)} columns.")
    lines = ["| " + " | ".join(format_cell(h) for h in headers) + " |",
             "|" + "---|" * len(columns)]  # fmt: skip
    for row in rows:
        cells = (format_cell(row.get(c), float_format) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
