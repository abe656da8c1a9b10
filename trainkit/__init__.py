"""trainkit: the training engine shared by ``noisy_dyn`` and ``basis_ode``.

What both packages need that is not about a model lives here once: atomic file I/O, orbax
checkpoints with a run fingerprint and resume, the training loop over a ``TrainState`` pytree,
device and mesh helpers, data-file formats, splits and batch order, padded evaluation, command
line helpers and Markdown tables. It imports neither model package; both import it.
"""

# --- errors (trainkit._errors) ---
from ._errors import CheckpointMismatchError as CheckpointMismatchError
from ._errors import FileFormatError as FileFormatError
from ._errors import TrainingDiverged as TrainingDiverged

# --- statistics over seeds (trainkit._stats) ---
# isort: split
from ._stats import Interval as Interval
from ._stats import bootstrap_mean as bootstrap_mean
from ._stats import holm as holm
from ._stats import paired_difference as paired_difference
from ._stats import resample_counts as resample_counts
from ._stats import sign_flip_p_value as sign_flip_p_value

# --- end statistics ---
