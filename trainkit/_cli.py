"""Command-line helpers shared by ``python -m noisy_dyn`` and ``python -m basis_ode``.

One set of semantics for both command lines:

- :class:`Parser` shows every option's default in ``--help``;
- :func:`add_run_flags` adds the flags every training command has: ``--out`` (default
  ``runs/<package>/<name>``, one folder per package and preset, so runs of the two packages never
  share a checkpoint folder), ``--no-resume`` and ``--quiet``;
- :func:`run_command` turns every user error (bad value, missing or malformed file, a checkpoint
  of another run, a diverged run) into one line ``error: ...`` on stderr and exit status 2,
  without a traceback; a run stopped by SIGTERM or SIGINT after saving its current step
  (:class:`trainkit.TrainingInterrupted`) prints that in one line and exits with status
  ``128 + signal`` (143 for SIGTERM, 130 for SIGINT); Ctrl-C outside training exits with 130
  and says how to resume.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ._cluster import EXIT_PEER_LOST, abort_job
from ._errors import CheckpointMismatchError, CLIError, FileFormatError, TrainingDiverged
from ._signals import SUPERVISOR, TrainingInterrupted, command_signals

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes FileFormatError and CheckpointMismatchError
    OSError,  # includes FileNotFoundError, PermissionError, a full disk
    FloatingPointError,  # includes TrainingDiverged
    CheckpointMismatchError,
    FileFormatError,
    TrainingDiverged,
)
"""The exceptions :func:`run_command` reports as ``error: ...`` with exit status 2."""

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends ``(default: X)`` to every option's help.

    Options whose default is None, False, empty or suppressed get no ``(default: ...)``: their
    help text says what happens without them.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if default is None or default is False or default == "" or default == argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action) or ""


class Parser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose ``--help`` shows defaults (:class:`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def default_out(package: str, name: str) -> str:
    """The default output folder of a run: ``runs/<package>/<name>``."""
    return f"runs/{package}/{name}"


def add_run_flags(
    parser: argparse.ArgumentParser,
    *,
    out_default: str | None,
    out_help: str = "output folder",
    train: bool = True,
) -> None:
    """Add ``--out`` (default ``out_default``), ``--quiet`` and, for training, ``--no-resume``.

    A None ``out_default`` is for a default that depends on other options; ``out_help`` then
    says what it is (e.g. ``"output folder (default: runs/noisy_dyn/<preset>_<data>)"``).
    ``--no-progress`` is accepted as an alias of ``--quiet``, without a help line.
    """
    parser.add_argument("--out", default=out_default, help=out_help)
    if train:
        parser.add_argument(
            "--no-resume",
            action="store_true",
            help="start afresh, deleting the checkpoints in OUT/checkpoints (default: a rerun "
            "resumes from the last checkpoint, or reports that the run is already complete)",
        )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar or per-epoch lines on stderr"
    )
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)


def error_line(err: BaseException) -> str:
    """The one-line ``error: ...`` report of ``err`` (with a command-line hint on resume)."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, CheckpointMismatchError) and "--no-resume" not in text:
        text += " (command line: --no-resume to start over, or another --out)"
    if isinstance(err, OSError) and not isinstance(err, FileFormatError) and err.filename:
        if str(err.filename) not in text:
            text += f": {err.filename}"
    return f"error: {text}"


def run_command(command: Callable[[], Any]) -> int:
    """Run ``command()``; return its exit status, or report a user error cleanly.

    Returns 0 when ``command`` returns None, else ``int(result)`` for an int result (0 for any
    other result); :data:`USER_ERRORS` print :func:`error_line` to stderr and return 2; Ctrl-C
    prints how to resume and returns 130; a run stopped by a signal after saving
    (:class:`trainkit.TrainingInterrupted`) prints its one line and returns ``128 + signal``.

    SIGTERM and SIGINT are answered at every phase of the command, start-up included
    (``trainkit._signals.command_signals``). In a job of several processes, a process that ends
    with an error posts its line for the others and exits at once (none waits for it in a
    collective); one whose peer was lost exits with status 75
    (``trainkit._cluster.EXIT_PEER_LOST``).
    """
    with command_signals():
        try:
            result = command()
        except USER_ERRORS as err:
            status, line = _failure(err)
            print(line, file=sys.stderr, flush=True)
            abort_job(status, line)
            return status
        except TrainingInterrupted as stop:
            print(f"interrupted: {stop}", file=sys.stderr)
            return stop.exit_status
        except KeyboardInterrupt:
            print(
                "interrupted: run the same command again to resume from the last checkpoint",
                file=sys.stderr,
            )
            abort_job(EXIT_INTERRUPTED, "interrupted")
            return EXIT_INTERRUPTED
        except Exception as err:  # several processes: none may wait for this one
            status, line = _failure(err)
            if status == EXIT_PEER_LOST:
                print(line, file=sys.stderr, flush=True)
                abort_job(status, line)
                return status
            traceback.print_exc()
            abort_job(1, f"error: {type(err).__name__}: {' '.join(str(err).split())[:200]}")
            raise
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


_LOST_PEER = re.compile(r"(Gloo \w+ failed|Connection (closed|reset) by peer|Read error)")


def _failure(err: BaseException) -> tuple[int, str]:
    """``(status, line)`` of a user error; a collective that failed because another process
    of the job is gone reads as that (status 75)."""
    found = _LOST_PEER.findall(str(err))
    if found:
        what = ", ".join(dict.fromkeys(f[0] for f in found))
        return EXIT_PEER_LOST, (
            f"error: another process of this job was lost ({what}); "
            + SUPERVISOR.kept("start all its processes again")
        )
    return EXIT_USER_ERROR, error_line(err)


def parse_ints(text: str) -> list[int]:
    """``"20,40,70"`` -> ``[20, 40, 70]``; an empty string gives ``[]``."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise CLIError(f"expected comma-separated integers, got {text!r}.") from None


def parse_names(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; None stays None."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def check_positive(args: object, names: Sequence[str]) -> None:
    """Raise :class:`CLIError` for an option among ``names`` that is set and below 1.

    ``args``: the parsed command line (an ``argparse.Namespace``, or any object with those
    attributes)."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and not isinstance(value, list) and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1, got {value}.")
