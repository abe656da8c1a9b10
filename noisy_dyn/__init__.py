"""noisy_dyn: Noisy RNNs as discretised stochastic differential equations, in JAX.

The public API is re-exported here explicitly; the code lives in private modules named after one
idea each (``_config``, ``_cell``, ``_noise``, ``_solve``, ...).
"""

# --- core (noisy_dyn._config, _params, _cell, _step, _noise, _threefry, _solve, _baselines, nn) ---
from . import nn as nn
from ._baselines import from_flax_gru as from_flax_gru
from ._baselines import from_flax_lstm as from_flax_lstm
from ._baselines import gru_step as gru_step
from ._baselines import lstm_step as lstm_step
from ._baselines import to_flax_gru as to_flax_gru
from ._baselines import to_flax_lstm as to_flax_lstm
from ._cell import drift as drift
from ._cell import lipschitz_matrix as lipschitz_matrix
from ._cell import recurrent_matrices as recurrent_matrices
from ._config import PRESETS as PRESETS
from ._config import NoisyRNNConfig as NoisyRNNConfig
from ._config import Numerics as Numerics
from ._config import preset as preset
from ._config import preset_description as preset_description
from ._config import preset_learning_rate as preset_learning_rate
from ._noise import NoiseSample as NoiseSample
from ._noise import ito_diffusion as ito_diffusion
from ._noise import sample_noise as sample_noise
from ._noise import step_factor as step_factor
from ._params import count_params as count_params
from ._params import init_params as init_params
from ._solve import apply as apply
from ._solve import final_state as final_state
from ._solve import trajectory as trajectory
from ._step import euler_maruyama_step as euler_maruyama_step
from ._threefry import standard_normal as standard_normal
from ._threefry import uniform as uniform
from .nn import EqxNoisyRNN as EqxNoisyRNN
from .nn import NoisyRNN as NoisyRNN

# --- end core ---

# --- theory (noisy_dyn._regularizer, _stability, _lyapunov, _margin) ---
# isort: split
from ._lyapunov import lyapunov_exponents as lyapunov_exponents
from ._margin import input_margin as input_margin
from ._regularizer import explicit_regularizer as explicit_regularizer
from ._regularizer import regularized_loss as regularized_loss
from ._regularizer import regularizer_terms as regularizer_terms
from ._stability import contraction_rate as contraction_rate
from ._stability import stability_report as stability_report

# --- end theory ---

# --- train/perturb (noisy_dyn._perturb, noisy_dyn._train, noisy_dyn._robustness) ---
# isort: split
from ._perturb import deepfool as deepfool
from ._perturb import deepfool_fn as deepfool_fn
from ._perturb import fgsm as fgsm
from ._perturb import fgsm_fn as fgsm_fn
from ._perturb import perturb as perturb
from ._perturb import pgd as pgd
from ._perturb import pgd_fn as pgd_fn
from ._robustness import DEFAULT_PERTURBATIONS as DEFAULT_PERTURBATIONS
from ._robustness import robustness_table as robustness_table
from ._devices import cpu_devices_for as cpu_devices_for
from ._devices import use_cpu_devices as use_cpu_devices
from ._ensemble import ensemble_structure as ensemble_structure
from ._ensemble import fit_ensemble as fit_ensemble
from ._train import CheckpointMismatchError as CheckpointMismatchError
from ._train import TrainingDiverged as TrainingDiverged
from ._train import accuracy as accuracy
from ._train import fit as fit
from ._model_io import load_model as load_model
from ._model_io import save_model as save_model

# --- end train/perturb ---
# isort: split

# -- data (data.py: loaders and batching, used as noisy_dyn.data.<name>) ---------------
from . import data as data

# -- end data -------------------------------------------------------------------------------------

# --- study (noisy_dyn._study: ensembles under perturbations, intervals over seeds) ---
# isort: split
from ._study import STUDY_PERTURBATIONS as STUDY_PERTURBATIONS
from ._study import confirm_rows as confirm_rows
from ._study import evaluate_members as evaluate_members
from ._study import inference_config as inference_config
from ._study import inference_key as inference_key
from ._study import perturbation_key as perturbation_key
from ._study import plot_study as plot_study
from ._study import robustness_study as robustness_study
from ._study import stochastic_logits as stochastic_logits
from ._study import study_markdown as study_markdown
from ._study import study_rows as study_rows
from ._study import write_study as write_study

# --- end study ---

# The API reference (pdoc) documents exactly these names.
__all__ = sorted(name for name in dir() if not name.startswith("_"))
