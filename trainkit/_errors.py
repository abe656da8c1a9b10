"""The exception classes shared by both packages (one set of semantics)."""

from __future__ import annotations


class CLIError(ValueError):
    """A command-line usage error found after parsing (reported as ``error: ...``, status 2)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint folder belongs to another run (package, configuration, data, seed, ...).

    The message names every field that differs with the stored and the current value, and says
    how to proceed (another output folder, or ``resume=False`` / ``--no-resume`` to start over).
    """


class TrainingDiverged(FloatingPointError):
    """The loss or the gradient became non-finite; training stopped, the last good checkpoint is
    kept.

    Attributes:
        step: the 1-based global step whose loss or gradient was non-finite (its update and all
            later ones were not applied).
        epoch: the 1-based epoch of that step.
        params: the last good parameters (for ``basis_ode`` the full variables), on the host.
        variables: the same object as ``params`` (the name ``basis_ode`` used).
        checkpoint: the path of the last good checkpoint, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        step: int | None = None,
        epoch: int | None = None,
        params: object = None,
        checkpoint: object = None,
    ):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.params = params
        self.variables = params
        self.checkpoint = checkpoint


class FileFormatError(ValueError):
    """A model, checkpoint or data file is truncated, malformed or written by something else.

    The message names the file and what is wrong with it.
    """
