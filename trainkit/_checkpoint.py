"""Checkpoints with a run fingerprint: orbax step folders, resume, and refusal of foreign runs.

A checkpoint folder holds orbax step folders ``ckpt_<10-digit global step>`` with three items:
``state`` (the pytree of arrays of the training loop), ``best`` (the best-on-validation
parameters, when there are any) and ``meta`` (JSON: the fingerprint, the position in the run,
the history). Saves are synchronous; orbax writes a step into a temporary folder and finalises it
by an atomic rename, so a process killed at any moment (even by SIGKILL) leaves the older steps
intact, and a half-written step (``*.orbax-checkpoint-tmp-*``) is never listed and is removed by
the next save.

Every step carries digests (:mod:`trainkit._integrity`): a sha256 of every array and of the meta
itself in the meta, and a file list ``trainkit_digests.json`` with the sha256 of every file,
written once orbax finalised the step. :func:`resume_point` resumes the newest step that
verifies and moves damaged ones into ``set-aside/``.

The fingerprint of a run is ``{package, config, optimizer, data, seed}``: the package that wrote
it, the model configuration, the optimizer settings, the sha256 of the training data and the
seed. Resuming is refused (:class:`trainkit.CheckpointMismatchError`) when any of them differs;
the message names each differing field with the stored and the current value. Folders written by
the other package or by an older version of either are recognised and refused the same way, never
with a ``KeyError``. A package may read its own earlier formats (:class:`Upgrade`): a step whose
fingerprint translates into today's is converted into today's layout and checked against it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging as absl_logging
from flax import serialization
from jax.experimental import multihost_utils

from ._atomic import fsync_dir
from ._errors import CheckpointMismatchError, FileFormatError
from ._integrity import array_digests, check_arrays, check_files, check_meta, seal, write_manifest

FORMAT = 3  # 3: trainkit (2: noisy_dyn's / basis_ode's own orbax layouts; 1: .npz per step)
PREFIX = "ckpt"
FIELDS = ("package", "config", "optimizer", "data", "seed")
_MISSING = "<absent>"
logger = logging.getLogger("trainkit")


def data_hash(*arrays: Any) -> str:
    """sha256 (hex) of arrays' shapes, dtypes and bytes, in order (``None`` entries count too)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"None")
            continue
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _orbax() -> Any:
    """``orbax.checkpoint``, imported where a checkpoint is first written or read (the one
    dependency imported inside a function outside ``_jax_private``): importing it installs a
    handler on the root logger, which would change how every library's log records print in a
    program that merely imports ``noisy_dyn`` or ``basis_ode``."""
    import orbax.checkpoint

    return orbax.checkpoint


def make_fingerprint(
    package: str, config: Any, optimizer: Any, data: str, seed: int
) -> dict[str, Any]:
    """The fingerprint dict, normalised through JSON (tuples become lists, as when stored)."""
    fp = {"package": package, "config": config, "optimizer": optimizer, "data": data}
    fp["seed"] = int(seed)
    return json.loads(json.dumps(fp))


def stored_fingerprint(meta: Any) -> dict[str, Any]:
    """The fingerprint of a stored ``meta``, also for the layouts of older versions."""
    if isinstance(meta, dict) and meta.get("format") == FORMAT:
        fp = meta.get("fingerprint")
        if isinstance(fp, dict) and "package" in fp:
            return fp
    if isinstance(meta, dict) and isinstance(meta.get("run"), dict):  # noisy_dyn, format 2
        run = meta["run"]
        return {
            "package": "noisy_dyn (an older checkpoint format)",
            "config": run.get("config", _MISSING),
            "data": run.get("data", _MISSING),
            "seed": run.get("seed", _MISSING),
        }
    if isinstance(meta, dict) and isinstance(meta.get("fingerprint"), dict):  # basis_ode, old
        old = meta["fingerprint"]
        return {
            "package": "basis_ode (an older checkpoint format)",
            "config": old.get("model", _MISSING),
            "seed": old.get("seed", _MISSING),
        }
    return {"package": "unknown (not a trainkit checkpoint)"}


RUN_STATE = ("position", "task", "history", "best")
"""The host part of a step's ``meta`` covered by :func:`run_state_sha256`."""

DELETING = ".deleting-"
"""Prefix of a step folder renamed away for deletion (the next open removes a leftover)."""

SET_ASIDE = "set-aside"
"""The subfolder a damaged step is moved into (kept for inspection, never resumed)."""

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""The error numbers of a full disk (or an exhausted quota)."""


class StepDamaged(Exception):
    """A step's files, meta or arrays do not match their digests (internal)."""


def run_state_sha256(meta: dict[str, Any]) -> str:
    """sha256 (hex) of the run state of a step's ``meta``: position, task meta, history, best
    (canonical JSON: sorted keys, no spaces)."""
    part = {k: meta.get(k) for k in RUN_STATE}
    text = json.dumps(part, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _show(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mismatches(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"field: checkpoint <stored>, now <current>"`` for every differing field (within one
    package, dicts of settings are compared key by key, as ``config.hidden_size``)."""
    out = []
    if stored.get("package") != current.get("package"):  # another kind of run: name, don't dump
        differ = [f for f in list(FIELDS) + sorted((set(stored) | set(current)) - set(FIELDS))
                  if f != "package" and json.dumps(stored.get(f, _MISSING), sort_keys=True)
                  != json.dumps(current.get(f, _MISSING), sort_keys=True)]  # fmt: skip
        line = f"package: checkpoint {_show(stored.get('package'))}, now "
        line += f"{_show(current.get('package'))} (a run of another kind"
        return [line + (f"; also {', '.join(differ)})" if differ else ")")]
    for field in list(FIELDS) + sorted((set(stored) | set(current)) - set(FIELDS)):
        a, b = stored.get(field, _MISSING), current.get(field, _MISSING)
        if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
            continue
        if isinstance(a, dict) and isinstance(b, dict):  # key by key: no truncated dicts
            for k in sorted(set(a) | set(b)):
                x, y = a.get(k, _MISSING), b.get(k, _MISSING)
                if json.dumps(x, sort_keys=True) != json.dumps(y, sort_keys=True):
                    out.append(f"{field}.{k}: checkpoint {_show(x)}, now {_show(y)}")
        else:
            out.append(f"{field}: checkpoint {_show(a)}, now {_show(b)}")
    if len(out) > _MAX_SHOWN:
        out = out[:_MAX_SHOWN] + [f"and {len(out) - _MAX_SHOWN} more fields"]
    return out


_MAX_SHOWN = 8
"""At most this many differing fields are named in a mismatch message."""


def _flat(tree: Any) -> dict[str, Any]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


class CheckpointStore:
    """The orbax ``CheckpointManager`` of one folder, with the three items of a trainkit step.

    Arguments:
        directory: the checkpoint folder (created unless ``reading``).
        keep: number of newest steps kept (None: all). Older steps are deleted by renaming
            them away first (``.deleting-ckpt_<step>``), then removing them, so a kill never
            leaves a half-deleted step under a step's name.
        reading: only read: neither create the folder nor remove unfinalized steps.
    """

    def __init__(
        self, directory: str | os.PathLike, keep: int | None = 3, *, reading: bool = False
    ):
        ocp = _orbax()
        if absl_logging.get_verbosity() > absl_logging.WARNING:  # keep orbax's INFO lines quiet
            absl_logging.set_verbosity(absl_logging.WARNING)
        self.keep = keep
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None,  # rotation by rename-away (self._rotate)
            create=not reading,
            enable_async_checkpointing=False,
            step_prefix=PREFIX,
            step_format_fixed_length=10,
            cleanup_tmp_directories=not reading,
        )
        handlers = {
            "state": ocp.StandardCheckpointHandler(),
            "best": ocp.StandardCheckpointHandler(),
            "meta": ocp.JsonCheckpointHandler(),
        }
        self.directory = Path(directory).resolve()
        if not reading:
            self._remove_renamed_away()
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=handlers
        )

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._manager.close()

    def steps(self) -> list[int]:
        """Finalized steps, oldest first."""
        self._manager.reload()
        return sorted(int(s) for s in self._manager.all_steps())

    def path(self, step: int) -> Path:
        return self.directory / f"{PREFIX}_{int(step):010d}"

    def delete(self, step: int, *, sync: bool = True) -> None:
        """Delete a step: rename it away (atomic), then remove the renamed folder (the primary
        process; with several, all of them call this together)."""
        path = self.path(step)
        away = self.directory / f"{DELETING}{path.name}"
        if jax.process_index() == 0 and path.is_dir():  # the primary process deletes
            shutil.rmtree(away, ignore_errors=True)
            os.replace(path, away)
            fsync_dir(self.directory)
            shutil.rmtree(away, ignore_errors=True)
        if sync and jax.process_count() > 1:  # every process calls this; all go on when done
            multihost_utils.sync_global_devices(f"trainkit delete {int(step)}")
        self._manager.reload()

    def _remove_renamed_away(self) -> None:
        if not self.directory.is_dir() or jax.process_index() != 0:
            return
        for entry in os.scandir(self.directory):
            if entry.name.startswith(DELETING) and entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)

    def _rotate(self) -> None:
        if self.keep is None:
            return
        # the primary process decides (the others' view of the folder may lag) and deletes;
        # then all processes synchronise once
        multi = jax.process_count() > 1
        if not multi or jax.process_index() == 0:
            steps = self.steps()
            for old in steps[: max(0, len(steps) - self.keep)]:
                self.delete(old, sync=False)
        if multi:
            multihost_utils.sync_global_devices("trainkit rotated")
            self._manager.reload()

    def clear(self) -> int:
        """Delete every step; returns how many there were."""
        steps = self.steps()
        for s in steps:
            self.delete(s)
        return len(steps)

    def save(self, step: int, state: Any, best: Any, meta: dict[str, Any]) -> Path:
        """Write step ``step`` (replacing an existing one) and wait until it is finalized.

        The meta gets the digest of every array and its own checksum
        (:mod:`trainkit._integrity`); once orbax finalised the step, the primary process
        writes the step's file list. A full disk raises ``OSError`` naming the step folder
        and what was being written; the previous steps are kept.
        """
        ocp = _orbax()
        step = int(step)
        if step in self._manager.all_steps():  # orbax never overwrites a step
            self.delete(step)
        state = serialization.to_state_dict(state)
        best = None if best is None else serialization.to_state_dict(best)
        digests = {"state": array_digests(state)}
        if best is not None:
            digests["best"] = array_digests(best)
        meta = seal({"format": FORMAT, "step": step, **meta, "digests": digests})
        items = {"state": ocp.args.StandardSave(state)}
        if best is not None:
            items["best"] = ocp.args.StandardSave(best)
        items["meta"] = ocp.args.JsonSave(meta)
        with self._naming_a_full_disk(step, "its arrays"):
            if not self._manager.save(step, args=ocp.args.Composite(**items), force=True):
                raise RuntimeError(
                    f"orbax did not write checkpoint step {step} in {self.directory}."
                )
            self._manager.wait_until_finished()
        if jax.process_count() > 1:  # all see the finalized step before they list the steps
            multihost_utils.sync_global_devices(f"trainkit saved {step}")
        if jax.process_index() == 0:
            with self._naming_a_full_disk(step, "its file digests"):
                write_manifest(self.path(step))
        self._rotate()
        return self.path(step)

    def _naming_a_full_disk(self, step: int, what: str) -> Any:
        return _full_disk_named(self.path(step), what, self._previous(step))

    def _previous(self, step: int) -> Path | None:
        older = [s for s in self._manager.all_steps() if int(s) < step]
        return self.path(max(older)) if older else None

    def set_aside(self, step: int) -> Path:
        """Move a damaged step into ``SET_ASIDE/`` (the primary process; all processes call
        this together); returns where it went."""
        path = self.path(step)
        aside = self.directory / SET_ASIDE
        dest, k = aside / path.name, 1
        while dest.exists():
            dest, k = aside / f"{path.name}-{k}", k + 1
        if jax.process_index() == 0 and path.is_dir():
            aside.mkdir(exist_ok=True)
            os.replace(path, dest)
            fsync_dir(aside)
            fsync_dir(self.directory)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"trainkit set aside {int(step)}")
        self._manager.reload()
        return dest

    def read_meta(self, step: int) -> dict[str, Any]:
        ocp = _orbax()
        args = ocp.args.Composite(meta=ocp.args.JsonRestore())
        return self._manager.restore(int(step), args=args).meta

    def read_best(self, step: int, digests: dict | None = None) -> Any:
        """The ``best`` item as nested dicts of NumPy arrays (None when the step has none),
        checked against ``digests`` (the step's ``meta["digests"]["best"]``) when given:
        :class:`StepDamaged` when they differ."""
        ocp = _orbax()
        if not (self.path(step) / "best").is_dir():
            if digests:
                raise StepDamaged("its best parameters are missing")
            return None
        args = ocp.args.Composite(best=ocp.args.StandardRestore())
        best = self._manager.restore(int(step), args=args).best
        _verify(best, digests, "best")
        return best

    def read_state(self, step: int, template: Any, digests: dict | None = None) -> Any:
        """The ``state`` item in the structure of ``template`` (arrays or ShapeDtypeStructs).

        Shapes and dtypes are checked against the stored metadata first (orbax would cast):
        :class:`CheckpointMismatchError` naming the array when they differ. With ``digests``
        (the step's ``meta["digests"]["state"]``) every restored array must match its digest
        (:class:`StepDamaged` otherwise)."""
        ocp = _orbax()
        target = serialization.to_state_dict(template)
        stored = _flat(self._manager.item_metadata(int(step)).state)
        check_layout(self.path(step), _flat(target), stored)
        target = jax.tree.map(lambda t: jax.ShapeDtypeStruct(np.shape(t), t.dtype), target)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target))
        restored = self._manager.restore(int(step), args=args).state
        _verify(restored, digests, "state")
        return serialization.from_state_dict(template, restored)

    def read_raw_state(self, step: int) -> Any:
        """The ``state`` item as stored: nested dicts of NumPy arrays (no template; empty
        subtrees are absent), for a task to convert from an earlier layout."""
        ocp = _orbax()
        args = ocp.args.Composite(state=ocp.args.StandardRestore())
        return jax.device_get(self._manager.restore(int(step), args=args).state)


def _verify(tree: Any, digests: dict | None, item: str) -> None:
    if digests is not None and (reason := check_arrays(tree, digests, item)):
        raise StepDamaged(reason)


def is_full_disk(err: BaseException) -> bool:
    """True for an error of a full disk or quota, also as orbax or tensorstore word it."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in NO_SPACE:
            return True
        text = str(err)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def _full_disk_named(path: Path, what: str, previous: Path | None) -> Any:
    """Turn a full disk while writing ``what`` of the step ``path`` into one ``OSError`` that
    names both and the checkpoint kept."""
    try:
        yield
    except Exception as err:
        if not is_full_disk(err):
            raise
        kept = f"the previous checkpoint {previous} is kept" if previous else "no earlier step"
        raise OSError(
            errno.ENOSPC,
            f"No space left on device while writing {what} of checkpoint {path}; {kept}. Free "
            "some space (or use another --out) and run the same command again",
            str(path),
        ) from None


def check_layout(path: Path, want: dict[str, Any], stored: dict[str, Any]) -> None:
    """Raise :class:`CheckpointMismatchError` unless the flat arrays ``stored`` (key path ->
    array or array metadata) have the keys, shapes and dtypes of ``want`` (those of a template)."""
    if want.keys() != stored.keys():
        raise CheckpointMismatchError(
            f"The checkpoint {path} holds the arrays {sorted(set(stored) - set(want))} this "
            f"run does not have and lacks {sorted(set(want) - set(stored))}. Use another "
            "checkpoint folder, or resume=False (--no-resume) to start afresh there."
        )
    for name, t in want.items():
        a = stored[name]
        if tuple(a.shape) != tuple(np.shape(t)) or np.dtype(a.dtype) != np.dtype(t.dtype):
            raise CheckpointMismatchError(
                f"The checkpoint {path} stores {name} as {np.dtype(a.dtype)}"
                f"{tuple(a.shape)}; this run needs {np.dtype(t.dtype)}{tuple(np.shape(t))}. "
                "Use another checkpoint folder, or resume=False (--no-resume)."
            )


def refuse_if_foreign(
    path: Path, meta: Any, fingerprint: dict[str, Any], stored: dict[str, Any] | None = None
) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``meta`` was written by this run
    (``stored``: its fingerprint translated from an earlier format, when it was)."""
    diffs = mismatches(stored_fingerprint(meta) if stored is None else stored, fingerprint)
    if diffs:
        earlier = (
            "" if stored is None else " (a checkpoint of an earlier format, read in today's terms)"
        )
        raise CheckpointMismatchError(
            f"The checkpoint {path}{earlier} belongs to another run; it differs in "
            + "; ".join(diffs)
            + ". Use another checkpoint folder (--out), restore the original settings, or pass "
            "resume=False (--no-resume) to delete its checkpoints and start afresh there."
        )


@dataclasses.dataclass(frozen=True)
class Upgrade:
    """How a package reads the checkpoints of its earlier formats (:func:`resume_point`).

    Attributes:
        fingerprint: ``fingerprint(stored) -> dict | None``: a stored fingerprint (as
            :func:`stored_fingerprint` reads it) translated into today's terms, or None when it
            is not of an earlier format the package knows. Raises ``ValueError`` when it is but
            cannot be translated.
        state: ``state(meta, raw, best) -> (meta, state, best)``: a step of that format (its
            ``meta``, the raw ``state`` item as nested dicts of arrays, the raw ``best`` item or
            None) in today's layout: the meta with its task parts converted and the state and
            best as state dicts (``flax.serialization.to_state_dict``) of today's structures.
            Raises ``ValueError`` when the conversion cannot be done cleanly.
    """

    fingerprint: Callable[[dict[str, Any]], dict[str, Any] | None]
    state: Callable[[dict[str, Any], Any, Any], tuple[dict[str, Any], Any, Any]]


def _cannot_convert(path: Path, err: Exception) -> CheckpointMismatchError:
    return CheckpointMismatchError(
        f"The checkpoint {path} is of an earlier format and cannot be converted ({err}). Use "
        "another checkpoint folder, or resume=False (--no-resume) to start afresh there."
    )


def _translated(path: Path, meta: Any, fingerprint: dict, upgrade: Upgrade | None) -> Any:
    """The stored fingerprint in today's terms when it differs and is of an earlier format the
    package knows (None otherwise: compared as stored)."""
    stored = stored_fingerprint(meta)
    if upgrade is None or not mismatches(stored, fingerprint):
        return None
    try:
        return upgrade.fingerprint(stored)
    except (ValueError, TypeError, KeyError) as err:
        raise _cannot_convert(path, err) from err


def _read_upgraded(store: CheckpointStore, step: int, meta: dict, upgrade: Upgrade, template_of):
    """``(meta, state, best)`` of a step of an earlier format, converted by ``upgrade`` and
    checked against today's template (keys, shapes, dtypes, every leaf an array)."""
    path = store.path(step)
    raw, best = store.read_raw_state(step), store.read_best(step)
    try:
        new_meta, state, best = upgrade.state(meta, raw, best)
    except (ValueError, TypeError, KeyError) as err:
        raise _cannot_convert(path, err) from err
    meta = {**meta, "task": new_meta["task"], "best": new_meta.get("best", meta.get("best"))}
    template = template_of(meta)
    have = _flat(state)
    loose = [k for k, v in have.items() if not isinstance(v, np.ndarray | np.generic | jax.Array)]
    if loose:
        raise _cannot_convert(path, ValueError(f"no stored values for {loose[:3]}"))
    check_layout(path, _flat(serialization.to_state_dict(template)), have)
    return meta, serialization.from_state_dict(template, state), best


class Found(NamedTuple):
    """The step :func:`resume_point` resumes: its number, meta, state, best parameters, whether
    it was converted from an earlier format and how it was verified (:data:`VERIFIED`)."""

    step: int
    meta: dict
    state: Any
    best: Any
    converted: bool
    verified: str


VERIFIED = {
    "files": "its files, meta and arrays match their digests",
    "arrays": "its meta and arrays match their digests (its file list was never written)",
    "none": "written before checkpoints carried digests: its arrays could not be verified",
}
"""How a resumed step was verified -> what that means (named in the resume line)."""


def _short(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _examine(store, step, fingerprint, template_of, check, upgrade) -> Any:
    """A :class:`Found`, a :class:`StepDamaged` (why the step cannot be trusted) or a
    :class:`CheckpointMismatchError` (a step whose verified fingerprint is another run's)."""
    path = store.path(step)
    listed, damage = check_files(path)
    try:
        meta = store.read_meta(step)
    except Exception as err:  # noqa: BLE001 - any unreadable meta is damage
        return StepDamaged(damage or f"its meta cannot be read ({_short(err)})")
    reasons = [r for r in (damage, check_meta(meta)) if r]
    if reasons:  # damaged: say everything that is wrong with it
        extra = None if check is None or not isinstance(meta, dict) else check(meta, None)
        return StepDamaged("; ".join(reasons + ([extra] if extra else [])))
    earlier = _translated(path, meta, fingerprint, upgrade)  # (raises: cannot be converted)
    try:
        refuse_if_foreign(path, meta, fingerprint, earlier)
    except CheckpointMismatchError as err:
        return err
    stored_meta, digests = meta, meta.get("digests") or {}
    try:
        if earlier is None:
            state = store.read_state(step, template_of(meta), digests.get("state"))
            best = store.read_best(step, digests.get("best"))
        else:
            meta, state, best = _read_upgraded(store, step, meta, upgrade, template_of)
    except CheckpointMismatchError:
        raise
    except StepDamaged as err:
        return err
    except Exception as err:  # noqa: BLE001 - unreadable arrays are damage
        return StepDamaged(f"its arrays cannot be read ({_short(err)})")
    reason = None if check is None else check(stored_meta, state)
    if reason is None and isinstance(meta, dict) and meta.get("step", step) != step:
        reason = f"it names step {meta.get('step')!r} in the folder of step {step}"
    if reason is not None:
        return StepDamaged(reason)
    verified = "files" if listed else ("arrays" if "meta_sha256" in stored_meta else "none")
    return Found(step, meta, state, best, earlier is not None, verified)


def resume_point(
    store: CheckpointStore,
    fingerprint: dict[str, Any],
    template_of,
    check=None,
    upgrade: Upgrade | None = None,
) -> Found | None:
    """The newest step of this run that verifies (:class:`Found`), or None for an empty folder.

    ``template_of(meta)`` gives the state's template for a step; ``check(meta, state)`` returns
    why a run state is not to be trusted (``state`` None: the meta alone), or None. Steps are
    examined newest first. A step is **damaged** when a file does not match the step's file list,
    its meta does not match its checksum (a changed fingerprint included), an array does not
    match its digest, it cannot be read, or ``check`` finds a reason. A step whose verified
    fingerprint differs is **another run's**. The newest step of this run that verifies is
    resumed; every newer step is moved into ``SET_ASIDE/`` with one warning naming it and why.
    Without such a step: :class:`CheckpointMismatchError` when a step is another run's (naming
    the fields), else :class:`FileFormatError` (no step verifies; each named in a warning).

    With ``upgrade`` (:class:`Upgrade`), a step whose fingerprint translates into this run's
    from an earlier format is converted into today's layout (``converted`` True); its run state
    is checked as stored (``check`` sees the stored meta, the converted arrays) and a
    conversion that cannot be done cleanly raises :class:`CheckpointMismatchError`.
    """
    steps = store.steps()
    passed: list[tuple[int, Exception]] = []
    found = None
    for step in reversed(steps):
        outcome = _examine(store, step, fingerprint, template_of, check, upgrade)
        if isinstance(outcome, Found):
            found = outcome
            break
        passed.append((step, outcome))
    primary = jax.process_index() == 0
    if found is None:
        foreign = [err for _, err in passed if isinstance(err, CheckpointMismatchError)]
        for step, err in passed:
            if primary and isinstance(err, StepDamaged):
                warnings.warn(f"skipping checkpoint {store.path(step)}: {err}", stacklevel=3)
        if foreign:
            raise foreign[0]
        if steps:
            raise FileFormatError(
                f"No readable checkpoint in {store.directory}: none of its {len(steps)} steps "
                f"verifies (newest: {store.path(steps[-1])}); move the folder away, or pass "
                "resume=False (--no-resume) to delete them and start afresh there."
            )
        return None
    for step, err in passed:
        why = str(err) if isinstance(err, StepDamaged) else (
            f"its fingerprint is not this run's ({_short(err, 200)}) while the older step "
            f"{found.step} is")  # fmt: skip
        dest = store.set_aside(step)
        if primary:
            warnings.warn(
                f"skipping checkpoint {store.path(step)}: {why}; set aside as {dest}, falling "
                f"back to the previous one (resuming from {store.path(found.step)})",
                stacklevel=3,
            )
    return found


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first.

    A step is listed when orbax finalized it (its folder has the step's name, not a temporary
    one) and it holds orbax's step metadata file and its ``state`` and ``meta`` items; steps
    being written (``*.orbax-checkpoint-tmp-*``) or deleted (``.deleting-*``) are not."""
    d = Path(directory)
    if not d.is_dir():
        return []
    # orbax writes a step into ``ckpt_<step>.orbax-checkpoint-tmp-<time>`` and renames it to
    # ``ckpt_<step>`` when it is complete, so the plain names are exactly the finalized steps
    # (read without orbax: another process may be deleting old steps meanwhile)
    found = []
    for entry in os.scandir(d):
        if re.fullmatch(rf"{PREFIX}_\d{{10}}", entry.name) and entry.is_dir():
            p = d / entry.name
            if all((p / part).exists() for part in ("_CHECKPOINT_METADATA", "state", "meta")):
                found.append(p)
    return sorted(found)


def load_latest_checkpoint(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The newest checkpoint in ``directory`` that verifies: ``{"meta": dict, "state": arrays,
    "best": arrays or None, "path": Path}`` with NumPy arrays (None when there is none).

    A step whose files, meta, run state or arrays do not match their digests, or that cannot
    be read, is skipped with a warning (nothing is moved: this only reads)."""
    ocp = _orbax()
    d = Path(directory)
    if not d.is_dir():
        return None
    with CheckpointStore(d, None, reading=True) as store:
        for step in reversed(store.steps()):
            try:
                damage = check_files(store.path(step))[1]
                if damage:
                    raise StepDamaged(damage)
                meta = store.read_meta(step)
                if reason := check_meta(meta):
                    raise StepDamaged(reason)
                want = meta.get("run_state_sha256")
                if want is not None and want != run_state_sha256(meta):
                    raise FileFormatError("its run state does not match its checksum")
                digests = meta.get("digests") or {}
                args = ocp.args.Composite(state=ocp.args.StandardRestore())
                state = store._manager.restore(step, args=args).state
                _verify(state, digests.get("state"), "state")
                best = store.read_best(step, digests.get("best"))
            except Exception as err:  # noqa: BLE001
                warnings.warn(f"skipping checkpoint {store.path(step)}: {err}", stacklevel=2)
                continue
            return {"meta": meta, "state": state, "best": best, "path": store.path(step)}
    return None
