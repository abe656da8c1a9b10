"""The theory of Noisy RNNs as code: the explicit regularizer of noise injection, the
contraction rate and stability report, Lyapunov exponents and the input margin.

The code sits in one private module a topic (``_regularizer``, ``_stability``, ``_lyapunov``,
``_margin``); the derivations are in ``docs/derivations.md``. Every function reads the numbers of
the same :class:`noisy_dyn.NoisyRNNConfig` the model runs with, and is defined for the Lipschitz
cell. The Brownian drive of :func:`lyapunov_exponents` is an object: :class:`PerUnitBrownian`
(the default) or :class:`ScalarBrownian`.
"""

from ._lyapunov import lyapunov_exponents as lyapunov_exponents
from ._margin import input_margin as input_margin
from ._regularizer import explicit_regularizer as explicit_regularizer
from ._regularizer import regularized_loss as regularized_loss
from ._regularizer import regularizer_terms as regularizer_terms
from ._stability import contraction_rate as contraction_rate
from ._stability import stability_report as stability_report
from ._theory_common import Brownian as Brownian
from ._theory_common import PerUnitBrownian as PerUnitBrownian
from ._theory_common import ScalarBrownian as ScalarBrownian

__all__ = [
    "Brownian",
    "PerUnitBrownian",
    "ScalarBrownian",
    "contraction_rate",
    "explicit_regularizer",
    "input_margin",
    "lyapunov_exponents",
    "regularized_loss",
    "regularizer_terms",
    "stability_report",
]
