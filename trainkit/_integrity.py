"""Digests of a checkpoint step: what lets a resume tell a damaged step from a good one.

A step written by :class:`trainkit.CheckpointStore` carries three kinds of digest, each a
sha256:

- **per array**, in the step's ``meta``: ``digests = {"state": {key: sha}, "best": {key: sha}}``,
  the sha256 of every array's shape, dtype and bytes (:func:`array_digest`), computed from the
  arrays as they were handed to orbax; a restored array must hash to the same value;
- **of the meta itself**: ``meta_sha256``, over the canonical JSON of the whole meta (the
  fingerprint, the position, the history, the best and the array digests) without that key, so
  that one changed character anywhere in the meta (the fingerprint included) reads as damage
  and not as another run;
- **per file**, written after orbax finalised the step: ``trainkit_digests.json`` in the step
  folder lists the sha256 of every file of the step (orbax's own metadata files included), so a
  flipped bit in any file is found before anything is read from it.

A step killed between orbax's finalisation and the file list has no file list; its arrays and
its meta are still verified by the first two. A step written before digests existed (no
``meta_sha256``) resumes as before, with a note that its arrays could not be verified.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._atomic import atomic_write_text

MANIFEST = "trainkit_digests.json"
"""The file list of a step: ``{"format": 1, "sha256": {relative path: hex digest}}``."""

_CHUNK = 1 << 20


def array_digest(a: Any) -> str:
    """sha256 (hex) of one array's shape, dtype and bytes (C order)."""
    a = np.ascontiguousarray(_host(a))
    h = hashlib.sha256(str((a.shape, a.dtype.str)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _host(x: Any) -> np.ndarray:
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)


def array_digests(tree: Any) -> dict[str, str]:
    """``{key path: array_digest}`` of every leaf of ``tree`` (key paths as ``jax.tree_util.keystr``
    writes them, e.g. ``"['train']['params']['w']"``)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): array_digest(leaf) for path, leaf in leaves}


def check_arrays(tree: Any, want: dict[str, str], item: str) -> str | None:
    """Why the arrays of ``tree`` do not match the digests ``want`` (None when they do)."""
    have = array_digests(tree)
    if have.keys() != want.keys():
        return f"its {item} arrays are not the ones its digests list"
    bad = [k for k in want if have[k] != want[k]]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return f"its {item} array {bad[0]}{more} does not match its sha256 digest"
    return None


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the text a checksum is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def meta_sha256(meta: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``meta`` without its ``meta_sha256`` key."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def seal(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` as JSON will store it (tuples as lists, keys as strings) with its
    ``meta_sha256``."""
    meta = json.loads(json.dumps(meta, allow_nan=True))
    meta["meta_sha256"] = meta_sha256(meta)
    return meta


def check_meta(meta: Any) -> str | None:
    """Why a stored meta is damaged (None when its checksum matches, or when it predates
    checksums: neither ``meta_sha256`` nor ``digests``)."""
    if not isinstance(meta, dict):
        return "its meta is not a JSON object"
    want = meta.get("meta_sha256")
    if want is None:
        return "its meta lists array digests but no checksum" if "digests" in meta else None
    if want != meta_sha256(meta):
        return "its meta (fingerprint, position, history, digests) does not match its checksum"
    return None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(step_dir: Path) -> list[str]:
    out = []
    for root, _, names in os.walk(step_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), step_dir)
            if rel != MANIFEST:
                out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def write_manifest(step_dir: str | os.PathLike) -> Path:
    """Write the file list of a finalised step (atomically; names the path on a full disk)."""
    step_dir = Path(step_dir)
    digests = {rel: file_sha256(step_dir / rel) for rel in _files(step_dir)}
    text = json.dumps({"format": 1, "sha256": digests}, indent=0, sort_keys=True)
    return atomic_write_text(step_dir / MANIFEST, text + "\n")


def check_files(step_dir: str | os.PathLike) -> tuple[bool, str | None]:
    """``(listed, reason)``: whether the step has a file list, and why its files do not match
    it (None when they do, or when there is no list)."""
    path = Path(step_dir) / MANIFEST
    if not path.is_file():
        return False, None
    try:
        listed = json.loads(path.read_text())["sha256"]
        if not isinstance(listed, dict) or not listed:
            raise ValueError("no files listed")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return True, f"its file list {MANIFEST} cannot be read ({err})"
    missing = [rel for rel in listed if not (Path(step_dir) / rel).is_file()]
    if missing:
        return True, f"its file {missing[0]} is missing"
    for rel in sorted(listed):
        try:
            ok = file_sha256(Path(step_dir) / rel) == listed[rel]
        except OSError as err:
            return True, f"its file {rel} cannot be read ({err})"
        if not ok:
            return True, f"its file {rel} does not match its sha256 digest"
    return True, None  # (files it does not list are not read: e.g. a copy tool's own files)
