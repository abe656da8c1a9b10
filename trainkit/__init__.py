"""trainkit: the training engine shared by ``noisy_dyn`` and ``basis_ode``.

What both packages need that is not about a model lives here once: atomic file I/O, orbax
checkpoints with a run fingerprint and resume, the training loop over a ``TrainState`` pytree,
device and mesh helpers, data-file formats, splits and batch order, padded evaluation, command
line helpers and Markdown tables. It imports neither model package; both import it.

The names below (``__all__``) are the public API (the API reference documents them).
``trainkit.internal`` holds the smaller helpers the two model packages share (argument checks,
command-line parsing, data-file pieces); it is not a user API and not in the reference. The
``trainkit._x`` modules are private: neither package imports them
(``tests/trainkit/test_public_door.py`` checks).
"""

# --- errors (trainkit._errors) ---
from ._errors import CheckpointMismatchError as CheckpointMismatchError
from ._errors import FileFormatError as FileFormatError
from ._errors import TrainingDiverged as TrainingDiverged
from ._validate import ArgumentTypeError as ArgumentTypeError
from ._validate import LabelGapWarning as LabelGapWarning
from ._divergence import DIVERGENCE_POLICIES as DIVERGENCE_POLICIES
from ._divergence import DivergencePolicy as DivergencePolicy
from ._divergence import FreezeDiverged as FreezeDiverged
from ._divergence import RaiseOnDivergence as RaiseOnDivergence
from ._divergence import divergence_policy as divergence_policy
from ._returned import PARAMS_CHOICES as PARAMS_CHOICES
from ._returned import BestValidation as BestValidation
from ._returned import LastEpoch as LastEpoch
from ._returned import ParamsChoice as ParamsChoice
from ._returned import params_choice as params_choice

# --- formats, splits, model files, tables, command line (trainkit._formats, _splits, ...) ---
from ._cli import CLIError as CLIError
from ._cli import Parser as Parser
from ._cli import add_run_flags as add_run_flags
from ._cli import run_command as run_command
from ._formats import ArrayOnlyUnpickler as ArrayOnlyUnpickler
from ._formats import read_cifar_batch as read_cifar_batch
from ._formats import read_classification_npz as read_classification_npz
from ._formats import read_idx as read_idx
from ._formats import restricted_load as restricted_load
from ._formats import sha256_file as sha256_file
from ._model_files import load_model_file as load_model_file
from ._model_files import save_model_file as save_model_file
from ._model_files import write_if_changed as write_if_changed
from ._model_files import write_run_files as write_run_files
from ._sequences import Sequences as Sequences
from ._ts import TsFile as TsFile
from ._ts import read_ts as read_ts
from ._sequences import as_sequences as as_sequences
from ._splits import Splits as Splits
from ._trained import Loaded as Loaded
from ._trained import Trained as Trained
from ._splits import split_off_validation as split_off_validation
from ._splits import split_three as split_three
from ._tables import markdown_table as markdown_table
# --- end formats ---

# --- batching (trainkit._batching) ---
from ._batching import batches as batches
from ._batching import epoch_order as epoch_order
from ._batching import evaluate_padded as evaluate_padded
from ._batching import padded_batches as padded_batches
# --- end batching ---

# --- engine (trainkit._atomic, _checkpoint, _devices, _lock, _loop, _history, _signals) ---
from ._atomic import atomic_write as atomic_write
from ._atomic import atomic_write_text as atomic_write_text
from ._atomic import fsync_dir as fsync_dir
from ._atomic import set_aside as set_aside
from ._checkpoint import CheckpointStore as CheckpointStore
from ._checkpoint import data_hash as data_hash
from ._checkpoint import list_checkpoints as list_checkpoints
from ._checkpoint import load_latest_checkpoint as load_latest_checkpoint
from ._devices import AXIS as AXIS
from ._devices import cpu_devices_for as cpu_devices_for
from ._devices import default_mesh as default_mesh
from ._devices import use_cpu_devices as use_cpu_devices
from ._history import epoch_rows as epoch_rows
from ._loop import Settings as Settings
from ._options import EVAL_BATCH_SIZE as EVAL_BATCH_SIZE
from ._options import TrainOptions as TrainOptions
from ._options import add_train_flags as add_train_flags
from ._options import cli_train_options as cli_train_options
from ._options import takes_train_options as takes_train_options
from ._loop import Task as Task
from ._lock import RunFolderLocked as RunFolderLocked
from ._lock import RunLock as RunLock
from ._lock import start_afresh as start_afresh
from ._loop import train as train
from ._signals import TrainingInterrupted as TrainingInterrupted
# --- end engine ---

# --- training recipes: optimizer direction and learning-rate schedule (trainkit._recipes) ---
from ._recipes import RECIPES as RECIPES
from ._recipes import AdamRsqrtRecipe as AdamRsqrtRecipe
from ._recipes import AdamStepDecay as AdamStepDecay
from ._recipes import Recipe as Recipe
from ._recipes import SGDRecipe as SGDRecipe
from ._recipes import decay_epoch as decay_epoch
from ._recipes import recipe_by_name as recipe_by_name
from ._recipes import rsqrt_schedule as rsqrt_schedule
from ._recipes import set_learning_rate as set_learning_rate
from ._recipes import step_schedule as step_schedule

# --- end recipes ---

# --- checks of a run's data against its model (trainkit._data_checks) ---
from ._data_checks import LOSS_ALARM as LOSS_ALARM
from ._data_checks import at_chance as at_chance
from ._data_checks import chance_level as chance_level
from ._data_checks import label_space as label_space

# --- end data checks ---

# --- statistics over seeds (trainkit._stats) ---
# isort: split
from ._stats import CONFIDENCE as CONFIDENCE
from ._stats import MIN_SEEDS as MIN_SEEDS
from ._stats import MIN_SEEDS_SHOWN as MIN_SEEDS_SHOWN
from ._stats import N_BOOTSTRAP as N_BOOTSTRAP
from ._stats import N_PERMUTATIONS as N_PERMUTATIONS
from ._stats import Interval as Interval
from ._stats import bootstrap_mean as bootstrap_mean
from ._stats import holm as holm
from ._stats import interval_heading as interval_heading
from ._stats import interval_legend as interval_legend
from ._stats import interval_text as interval_text
from ._stats import paired_difference as paired_difference
from ._stats import resample_counts as resample_counts
from ._stats import sign_flip_p_value as sign_flip_p_value

# --- end statistics ---

# isort: split
from . import internal as internal

__all__ = [
    "AdamRsqrtRecipe",
    "AdamStepDecay",
    "add_run_flags",
    "add_train_flags",
    "ArgumentTypeError",
    "ArrayOnlyUnpickler",
    "as_sequences",
    "at_chance",
    "atomic_write",
    "atomic_write_text",
    "AXIS",
    "batches",
    "BestValidation",
    "bootstrap_mean",
    "chance_level",
    "CheckpointMismatchError",
    "CheckpointStore",
    "cli_train_options",
    "CLIError",
    "CONFIDENCE",
    "cpu_devices_for",
    "data_hash",
    "decay_epoch",
    "default_mesh",
    "DIVERGENCE_POLICIES",
    "divergence_policy",
    "DivergencePolicy",
    "epoch_order",
    "epoch_rows",
    "EVAL_BATCH_SIZE",
    "evaluate_padded",
    "FileFormatError",
    "FreezeDiverged",
    "fsync_dir",
    "holm",
    "Interval",
    "interval_heading",
    "interval_legend",
    "interval_text",
    "label_space",
    "LastEpoch",
    "LabelGapWarning",
    "list_checkpoints",
    "load_latest_checkpoint",
    "load_model_file",
    "Loaded",
    "LOSS_ALARM",
    "markdown_table",
    "MIN_SEEDS",
    "MIN_SEEDS_SHOWN",
    "N_BOOTSTRAP",
    "N_PERMUTATIONS",
    "padded_batches",
    "paired_difference",
    "PARAMS_CHOICES",
    "params_choice",
    "ParamsChoice",
    "Parser",
    "RaiseOnDivergence",
    "read_cifar_batch",
    "read_classification_npz",
    "read_idx",
    "read_ts",
    "Recipe",
    "recipe_by_name",
    "RECIPES",
    "resample_counts",
    "restricted_load",
    "rsqrt_schedule",
    "run_command",
    "RunFolderLocked",
    "RunLock",
    "save_model_file",
    "Sequences",
    "set_aside",
    "set_learning_rate",
    "Settings",
    "SGDRecipe",
    "sha256_file",
    "sign_flip_p_value",
    "split_off_validation",
    "split_three",
    "Splits",
    "start_afresh",
    "step_schedule",
    "takes_train_options",
    "Task",
    "train",
    "Trained",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainOptions",
    "TsFile",
    "use_cpu_devices",
    "write_if_changed",
    "write_run_files",
]
