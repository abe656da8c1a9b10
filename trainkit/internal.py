"""Helpers shared by ``noisy_dyn`` and ``basis_ode`` that are not part of trainkit's user API.

The two model packages build their command lines, data readers and model files from these
pieces; they import them from here (``from trainkit.internal import check_int``), never from a
private ``trainkit._x`` module, in the same way diffrax builds on ``equinox.internal``. What is
here may change between versions without notice: user code should use what ``trainkit`` itself
exports (``trainkit.__all__``).

Groups:

- validation (``trainkit._validate``): ``check_int``, ``check_positive_int``, ``check_real``,
  ``check_finite`` (NaN, infinity, and overflow of a cast to float32), ``check_labels`` (class
  labels on their raw integers, before any cast) and ``check_label_space`` (one class refused,
  gaps warned about with :class:`LabelGapWarning`); each raises one line naming the argument
  and the fix; :class:`ArgumentTypeError` is both a ``TypeError`` and a ``ValueError``;
- command line (``trainkit._cli``): ``check_positive``, ``default_out``, ``parse_ints``,
  ``parse_names``, ``restart_with_huge_pages``;
- data files (``trainkit._formats``, ``trainkit._splits``): ``check_sha256``, ``read_zip_member``,
  ``read_idx_pair``, ``read_idx_folder`` (with ``FASHION_MNIST_ROOT``), ``read_cifar_folder``,
  ``check_fraction``, ``idx_splits``, ``limit_splits``; of ``.ts`` files (``trainkit._ts``):
  ``label_order``, ``pad_series``;
- model files (``trainkit._model_files``): ``check_fields``;
- named variants (``trainkit._named``): ``variant`` and ``variant_or_warn`` (a name from the
  command line or a file to its object, the former string spelling warned about), ``lookup`` and
  ``named`` (a name and its settings to the object, for every ``*_by_name``);
- run records (``trainkit._run_record``): ``read_run_record``, ``check_record_fields``,
  ``check_training_data`` (a run's ``result.json`` checked against its model and data);
- several processes (``trainkit._cluster``): ``add_cluster_flags``, ``start_cluster``,
  ``EXIT_PEER_LOST``;
- sequence data (``trainkit._sequences``): ``padding_problem`` (right-padding whose lengths were
  dropped), ``takes_sequences`` (a function of ``xs, ys`` also called with one
  :class:`trainkit.Sequences`);
- run data (``trainkit._data_checks``): ``small_validation``, ``MIN_VALIDATION``,
  ``SCORING_SPLITS``, ``scoring_split`` and ``small_scoring_split`` (the split a study or table
  is scored on: validation by default);
- data sets by name (``trainkit._data_sources``): :class:`DataSource` (a loader and how it takes
  ``--data-path``, ``--validation-fraction`` and ``--limit``), ``open_data_source`` (the flags to
  one loader call, with the same refusals in both command lines), ``require_validation`` (no
  validation example refused), ``DEFAULT_FRACTION``;
- progress (``trainkit._progress``): ``progress_bar`` (a tqdm bar on a terminal only) and
  ``BarContext`` (closes it on exit);
- training options (``trainkit._options``): ``takes_train_options``, the decorator that gives a
  ``fit`` the :class:`trainkit.TrainOptions` as keyword arguments and documentation,
  ``takes_former_keywords`` (keywords a function no longer takes, mapped with a
  DeprecationWarning), and ``check_learning_rate`` (``trainkit._recipes``), the check of both
  ``fit``'s ``learning_rate``;
- jaxtyping aliases (``trainkit._types``): ``FloatScalar``, ``IntScalar``, ``RealScalar`` (a
  Python number or a 0-d array, possibly traced), ``IntLike``, ``FloatLike`` (a Python or NumPy
  number in a configuration);
- compiled programs (``trainkit._programs``): ``ProgramCache`` and the decorator
  ``cached_program``, the one way every package keeps its jitted programs (bounded LRU);
- devices and the loop (``trainkit._devices``, ``trainkit._loop``): ``available_cores``,
  ``MIN_ROWS_PER_DEVICE``, ``to_host``, ``compiled_step`` (its ``cache_clear()`` is what a
  benchmark calls to time a compilation);
- layouts on the mesh (``trainkit._layout``): ``OneRun``, ``MembersSharded``, ``BatchSharded``
  (the argument of ``compiled_step``) and ``ensemble_layout`` (which of the last two an ensemble
  gets);
- ensembles (``trainkit._members``): ``check_seeds`` (the seeds of the members),
  ``stack_members`` (member pytrees on a leading axis) and ``member_of`` (one member back).
"""

from ._cli import check_positive as check_positive
from ._cli import default_out as default_out
from ._cli import parse_ints as parse_ints
from ._cli import parse_names as parse_names
from ._cluster import EXIT_PEER_LOST as EXIT_PEER_LOST
from ._cluster import add_cluster_flags as add_cluster_flags
from ._cluster import start_cluster as start_cluster
from ._data_checks import MIN_VALIDATION as MIN_VALIDATION
from ._data_checks import SCORING_SPLITS as SCORING_SPLITS
from ._data_checks import scoring_split as scoring_split
from ._data_checks import small_scoring_split as small_scoring_split
from ._data_checks import small_validation as small_validation
from ._data_sources import DEFAULT_FRACTION as DEFAULT_FRACTION
from ._data_sources import DataSource as DataSource
from ._data_sources import open_data_source as open_data_source
from ._data_sources import require_validation as require_validation
from ._devices import MIN_ROWS_PER_DEVICE as MIN_ROWS_PER_DEVICE
from ._devices import available_cores as available_cores
from ._devices import to_host as to_host
from ._divergence import RAISE_ON_DIVERGENCE as RAISE_ON_DIVERGENCE
from ._divergence import as_divergence_policy as as_divergence_policy
from ._formats import FASHION_MNIST_ROOT as FASHION_MNIST_ROOT
from ._formats import check_sha256 as check_sha256
from ._formats import read_cifar_folder as read_cifar_folder
from ._formats import read_idx_folder as read_idx_folder
from ._formats import read_idx_pair as read_idx_pair
from ._formats import read_zip_member as read_zip_member
from ._hugepages import restart_with_huge_pages as restart_with_huge_pages
from ._layout import BatchSharded as BatchSharded
from ._layout import MembersSharded as MembersSharded
from ._layout import OneRun as OneRun
from ._layout import ensemble_layout as ensemble_layout
from ._loop import compiled_step as compiled_step
from ._members import check_seeds as check_seeds
from ._members import member_of as member_of
from ._members import stack_members as stack_members
from ._model_files import check_fields as check_fields
from ._named import lookup as lookup
from ._named import named as named
from ._named import variant as variant
from ._named import variant_or_warn as variant_or_warn
from ._options import takes_former_keywords as takes_former_keywords
from ._options import takes_train_options as takes_train_options
from ._programs import ProgramCache as ProgramCache
from ._programs import cached_program as cached_program
from ._progress import BarContext as BarContext
from ._progress import progress_bar as progress_bar
from ._recipes import check_learning_rate as check_learning_rate
from ._run_record import check_record_fields as check_record_fields
from ._run_record import check_training_data as check_training_data
from ._run_record import read_run_record as read_run_record
from ._sequences import padding_problem as padding_problem
from ._sequences import takes_sequences as takes_sequences
from ._splits import check_fraction as check_fraction
from ._splits import idx_splits as idx_splits
from ._splits import limit_splits as limit_splits
from ._ts import label_order as label_order
from ._ts import pad_series as pad_series
from ._types import FloatLike as FloatLike
from ._types import FloatScalar as FloatScalar
from ._types import IntLike as IntLike
from ._types import IntScalar as IntScalar
from ._types import RealScalar as RealScalar
from ._validate import ArgumentTypeError as ArgumentTypeError
from ._validate import LabelGapWarning as LabelGapWarning
from ._validate import check_finite as check_finite
from ._validate import check_int as check_int
from ._validate import check_label_space as check_label_space
from ._validate import check_labels as check_labels
from ._validate import check_positive_int as check_positive_int
from ._validate import check_real as check_real

__all__ = [
    "BarContext",
    "DEFAULT_FRACTION",
    "DataSource",
    "open_data_source",
    "require_validation",
    "BatchSharded",
    "MembersSharded",
    "OneRun",
    "EXIT_PEER_LOST",
    "FASHION_MNIST_ROOT",
    "RAISE_ON_DIVERGENCE",
    "as_divergence_policy",
    "ArgumentTypeError",
    "FloatLike",
    "FloatScalar",
    "IntLike",
    "IntScalar",
    "LabelGapWarning",
    "MIN_ROWS_PER_DEVICE",
    "MIN_VALIDATION",
    "ProgramCache",
    "RealScalar",
    "SCORING_SPLITS",
    "add_cluster_flags",
    "available_cores",
    "cached_program",
    "check_fields",
    "check_finite",
    "check_fraction",
    "check_int",
    "check_label_space",
    "check_labels",
    "check_learning_rate",
    "check_positive",
    "check_positive_int",
    "check_real",
    "check_record_fields",
    "check_seeds",
    "check_sha256",
    "check_training_data",
    "compiled_step",
    "ensemble_layout",
    "default_out",
    "label_order",
    "limit_splits",
    "member_of",
    "pad_series",
    "parse_ints",
    "padding_problem",
    "parse_names",
    "progress_bar",
    "read_cifar_folder",
    "read_idx_folder",
    "idx_splits",
    "read_idx_pair",
    "read_run_record",
    "read_zip_member",
    "restart_with_huge_pages",
    "scoring_split",
    "small_scoring_split",
    "small_validation",
    "stack_members",
    "start_cluster",
    "takes_former_keywords",
    "takes_sequences",
    "takes_train_options",
    "to_host",
    "lookup",
    "named",
    "variant",
    "variant_or_warn",
]
