"""Perturbed inputs and adversarial attacks on the deterministic inference path, and the
robustness table that evaluates a model under them.

- the perturbations as objects: :class:`Gaussian`, :class:`Multiplicative`, :class:`SaltPepper`
  (random, :class:`RandomPerturbation`), :class:`FGSM`, :class:`PGD` (attacks in the ball of a
  :class:`Norm`, :class:`Linf` or :class:`L2`), :class:`DeepFool` and :class:`Clean`;
  :func:`parse_perturbation`, :func:`parse_norm` and :func:`perturbations_from_levels` read
  their names (command line, files);
- :func:`perturb`: random corruptions (``perturb(xs, Gaussian(0.1), key=key)``);
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
from ._perturbations import FGSM as FGSM
from ._perturbations import L2 as L2
from ._perturbations import NORMS as NORMS
from ._perturbations import PERTURBATIONS as PERTURBATIONS
from ._perturbations import PGD as PGD
from ._perturbations import Attack as Attack
from ._perturbations import Clean as Clean
from ._perturbations import DeepFool as DeepFool
from ._perturbations import Gaussian as Gaussian
from ._perturbations import Linf as Linf
from ._perturbations import Multiplicative as Multiplicative
from ._perturbations import Norm as Norm
from ._perturbations import Perturbation as Perturbation
from ._perturbations import RandomPerturbation as RandomPerturbation
from ._perturbations import SaltPepper as SaltPepper
from ._perturbations import parse_norm as parse_norm
from ._perturbations import parse_perturbation as parse_perturbation
from ._perturbations import perturbations_from_levels as perturbations_from_levels
from ._robustness import DEFAULT_PERTURBATIONS as DEFAULT_PERTURBATIONS
from ._robustness import robustness_table as robustness_table

__all__ = [
    "DEFAULT_PERTURBATIONS",
    "FGSM",
    "L2",
    "NORMS",
    "PERTURBATIONS",
    "PGD",
    "Attack",
    "Clean",
    "DeepFool",
    "Gaussian",
    "Linf",
    "Multiplicative",
    "Norm",
    "Perturbation",
    "RandomPerturbation",
    "SaltPepper",
    "parse_norm",
    "parse_perturbation",
    "perturbations_from_levels",
    "deepfool",
    "deepfool_fn",
    "fgsm",
    "fgsm_fn",
    "perturb",
    "pgd",
    "pgd_fn",
    "robustness_table",
]
