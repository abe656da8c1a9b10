"""Helpers shared by ``noisy_dyn`` and ``basis_ode`` that are not part of trainkit's user API.

The two model packages build their command lines, data readers and model files from these
pieces; they import them from here (``from trainkit.internal import check_int``), never from a
private ``trainkit._x`` module, in the same way diffrax builds on ``equinox.internal``. What is
here may change between versions without notice: user code should use what ``trainkit`` itself
exports (``trainkit.__all__``).

Groups:

- command line (``trainkit._cli``): ``check_positive``, ``default_out``, ``parse_ints``,
  ``parse_names``, ``restart_with_huge_pages``;
- data files (``trainkit._formats``, ``trainkit._splits``): ``check_sha256``, ``read_zip_member``,
  ``read_idx_pair``, ``read_cifar_folder``, ``check_fraction``, ``limit_splits``;
- model files (``trainkit._model_files``): ``check_fields``;
- devices and the loop (``trainkit._devices``, ``trainkit._loop``): ``available_cores``,
  ``MIN_ROWS_PER_DEVICE``, ``to_host``, ``compiled_step`` (its ``cache_clear()`` is what a
  benchmark calls to time a compilation).
"""

from ._batching import check_int as check_int
from ._cli import check_positive as check_positive
from ._cli import default_out as default_out
from ._cli import parse_ints as parse_ints
from ._cli import parse_names as parse_names
from ._devices import MIN_ROWS_PER_DEVICE as MIN_ROWS_PER_DEVICE
from ._devices import available_cores as available_cores
from ._devices import to_host as to_host
from ._formats import check_sha256 as check_sha256
from ._formats import read_cifar_folder as read_cifar_folder
from ._formats import read_idx_pair as read_idx_pair
from ._formats import read_zip_member as read_zip_member
from ._hugepages import restart_with_huge_pages as restart_with_huge_pages
from ._loop import compiled_step as compiled_step
from ._model_files import check_fields as check_fields
from ._splits import check_fraction as check_fraction
from ._splits import limit_splits as limit_splits

__all__ = [
    "MIN_ROWS_PER_DEVICE",
    "available_cores",
    "check_fields",
    "check_fraction",
    "check_int",
    "check_positive",
    "check_sha256",
    "compiled_step",
    "default_out",
    "limit_splits",
    "parse_ints",
    "parse_names",
    "read_cifar_folder",
    "read_idx_pair",
    "read_zip_member",
    "restart_with_huge_pages",
    "to_host",
]
