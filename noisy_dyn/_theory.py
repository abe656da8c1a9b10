"""The theory of Noisy RNNs as code, one topic a module: ``_regularizer`` (explicit
regularizer), ``_stability`` (contraction rate, stability report), ``_lyapunov`` (Lyapunov
exponents), ``_margin`` (input margin). This module only gathers them (older imports use it).
"""

from ._lyapunov import lyapunov_exponents as lyapunov_exponents
from ._margin import _margin_over_gradient as _margin_over_gradient
from ._margin import input_margin as input_margin
from ._regularizer import explicit_regularizer as explicit_regularizer
from ._regularizer import regularized_loss as regularized_loss
from ._regularizer import regularizer_terms as regularizer_terms
from ._stability import contraction_rate as contraction_rate
from ._stability import stability_report as stability_report
