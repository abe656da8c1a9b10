"""The history of a run: a dict of per-epoch lists, epoch 1 first.

``history["epoch"] == [1, 2, ...]`` and every other per-epoch key holds one value per epoch (None
where an epoch has no value, e.g. a callback entry that appeared later). ``fit`` adds the run-level
entries ``best_epoch``, ``global_step`` and ``interrupted`` (not lists). The JSON-lines log has one
object per epoch.
"""

from __future__ import annotations

import json
from typing import Any


def empty_history() -> dict[str, list]:
    return {"epoch": []}


def append_epoch(history: dict[str, list], entry: dict[str, Any]) -> None:
    """Append one epoch's ``entry``; keys new to the history get None for the earlier epochs."""
    n = len(history["epoch"])
    for key in entry:
        if key not in history:
            history[key] = [None] * n
    for key, values in history.items():
        values.append(entry.get(key))


def epoch_rows(history: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per epoch (the per-epoch lists of ``history`` read row by row)."""
    keys = [k for k, v in history.items() if isinstance(v, list)]
    return [{k: history[k][i] for k in keys} for i in range(len(history["epoch"]))]


def history_jsonl(history: dict[str, Any]) -> str:
    """The JSON-lines text of ``history``: one object per epoch."""
    return "".join(json.dumps(row) + "\n" for row in epoch_rows(history))
