"""Perturbed inputs and adversarial attacks on the deterministic inference path, and the
robustness table that evaluates a model under them.

- :func:`perturb`: random corruptions (Gaussian, multiplicative, salt and pepper);
- :func:`fgsm`, :func:`pgd`, :func:`deepfool`: white-box attacks on ``apply(params, xs, cfg)``;
  :func:`fgsm_fn`, :func:`pgd_fn`, :func:`deepfool_fn` take any logits function;
- :func:`robustness_table`: accuracy under each kind and level (:data:`DEFAULT_PERTURBATIONS`).
"""

from ._perturb import deepfool as deepfool
from ._perturb import deepfool_fn as deepfool_fn
from ._perturb import fgsm as fgsm
from ._perturb import fgsm_fn as fgsm_fn
from ._perturb import perturb as perturb
from ._perturb import pgd as pgd
from ._perturb import pgd_fn as pgd_fn
from ._robustness import DEFAULT_PERTURBATIONS as DEFAULT_PERTURBATIONS
from ._robustness import robustness_table as robustness_table

__all__ = [
    "DEFAULT_PERTURBATIONS",
    "deepfool",
    "deepfool_fn",
    "fgsm",
    "fgsm_fn",
    "perturb",
    "pgd",
    "pgd_fn",
    "robustness_table",
]
