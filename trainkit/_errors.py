"""The exception classes shared by both packages (one set of semantics)."""

from __future__ import annotations


class CheckpointMismatchError(ValueError):
    """A checkpoint folder belongs to another run (package, configuration, data, seed, ...).

    The message names every field that differs with the stored and the current value, and says
    how to proceed (another output folder, or ``resume=False`` / ``--no-resume`` to start over).
    """


class TrainingDiverged(FloatingPointError):
    """The loss or the parameters became non-finite; the last good checkpoint is kept."""


class FileFormatError(ValueError):
    """A model, checkpoint or data file is truncated, malformed or written by something else.

    The message names the file and what is wrong with it.
    """
