"""The samplers of the package: a counter-mode Threefry stream (:func:`standard_normal`,
:func:`uniform`; any block of rows can be drawn on its own, so sharded rows draw locally) and
:func:`sample_noise`, the step noise that ``apply(params, xs, cfg, key=key)`` uses.
"""

from ._noise import sample_noise as sample_noise
from ._threefry import standard_normal as standard_normal
from ._threefry import uniform as uniform

__all__ = ["sample_noise", "standard_normal", "uniform"]
