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

# --- batching (trainkit._batching) ---
from ._batching import batches as batches
from ._batching import epoch_order as epoch_order
from ._batching import evaluate_padded as evaluate_padded
from ._batching import padded_batches as padded_batches
# --- end batching ---
