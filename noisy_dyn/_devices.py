"""Several CPU devices in one process, so that data-parallel training uses every core.

The helpers live in ``trainkit`` (shared with ``basis_ode``); ``noisy_dyn`` re-exports
:func:`use_cpu_devices` and :func:`cpu_devices_for`.
"""

from trainkit import cpu_devices_for as cpu_devices_for
from trainkit import use_cpu_devices as use_cpu_devices
from trainkit.internal import MIN_ROWS_PER_DEVICE as MIN_ROWS_PER_DEVICE
from trainkit.internal import available_cores as available_cores
