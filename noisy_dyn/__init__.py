"""noisy_dyn: Noisy RNNs as discretised stochastic differential equations, in JAX.

The top level holds the model (the config pytree, its cells and noise forms, parameters), solving
(``apply``, ``trajectory``, ``final_state``, the one step), training (``fit``, ``fit_ensemble``),
the presets and the model files. The rest is namespaced by topic, each with its ``__all__``:

- :mod:`noisy_dyn.theory`: explicit regularizer, stability, Lyapunov exponents, input margin;
- :mod:`noisy_dyn.attacks`: perturbations, FGSM, PGD, DeepFool, robustness tables;
- :mod:`noisy_dyn.random`: the samplers (Threefry normals and uniforms, ``sample_noise``);
- :mod:`noisy_dyn.study`: ensemble evaluation, rows, intervals, writers and plots;
- :mod:`noisy_dyn.data`: the sequence data sets, each split a :class:`Sequences` (inputs,
  labels and lengths together); :mod:`noisy_dyn.nn`: Flax NNX and Equinox faces;
- :mod:`noisy_dyn.experiments`: the pipelines behind ``python -m noisy_dyn`` (write files).

The code lives in private modules named after one idea each (``_config``, ``_cell``, ``_noise``,
``_solve``, ...); this file only re-exports. ``import noisy_dyn`` imports no matplotlib.
"""

# --- model: configuration, cells, noise forms, parameters ---
from ._baselines import GRUCell as GRUCell
from ._baselines import LSTMCell as LSTMCell
from ._baselines import from_flax_gru as from_flax_gru
from ._baselines import from_flax_lstm as from_flax_lstm
from ._baselines import gru_step as gru_step
from ._baselines import lstm_step as lstm_step
from ._baselines import to_flax_gru as to_flax_gru
from ._baselines import to_flax_lstm as to_flax_lstm
from ._cell import Cell as Cell
from ._cell import LipschitzCell as LipschitzCell
from ._cell import drift as drift
from ._cell import lipschitz_matrix as lipschitz_matrix
from ._cell import recurrent_matrices as recurrent_matrices
from ._config import PRESETS as PRESETS
from ._config import NoisyRNNConfig as NoisyRNNConfig
from ._config import preset as preset
from ._config import preset_description as preset_description
from ._config import preset_learning_rate as preset_learning_rate
from ._config import stack_configs as stack_configs
from ._noise import ItoNoise as ItoNoise
from ._noise import NoiseForm as NoiseForm
from ._noise import NoiseSample as NoiseSample
from ._noise import ReferenceNoise as ReferenceNoise
from ._noise import ito_diffusion as ito_diffusion
from ._noise import step_factor as step_factor
from ._params import count_params as count_params
from ._params import init_params as init_params

# --- data: sequences with their lengths (trainkit's container) ---
from trainkit import Sequences as Sequences

# --- solving ---
from ._solve import apply as apply
from ._solve import euler_maruyama_step as euler_maruyama_step
from ._solve import final_state as final_state
from ._solve import trajectory as trajectory

# --- training, devices, model files ---
from ._devices import cpu_devices_for as cpu_devices_for
from ._devices import use_cpu_devices as use_cpu_devices
from ._ensemble import fit_ensemble as fit_ensemble
from ._model_io import load_model as load_model
from ._model_io import save_model as save_model
from ._train import CheckpointMismatchError as CheckpointMismatchError
from ._train import TrainingDiverged as TrainingDiverged
from ._train import accuracy as accuracy
from ._train import fit as fit
from ._regularizer import Exact as Exact
from ._regularizer import Hutchinson as Hutchinson
from ._regularizer import trace_by_name as trace_by_name
from ._training_loss import ExplicitRegularizer as ExplicitRegularizer
from ._training_loss import NoiseInjection as NoiseInjection
from ._training_loss import regularizer_by_name as regularizer_by_name
from trainkit import AdamStepDecay as AdamStepDecay
from trainkit import BestValidation as BestValidation
from trainkit import LastEpoch as LastEpoch

# --- namespaces by topic ---
from . import attacks as attacks
from . import data as data
from . import nn as nn
from . import random as random
from . import study as study
from . import theory as theory
from .nn import EqxNoisyRNN as EqxNoisyRNN
from .nn import NoisyRNN as NoisyRNN

# The API reference (pdoc) documents exactly these names.
__all__ = [
    "PRESETS", "AdamStepDecay", "BestValidation", "LastEpoch", "CheckpointMismatchError",
    "Exact", "ExplicitRegularizer",
    "Hutchinson", "NoiseInjection", "regularizer_by_name", "trace_by_name", "Cell",
    "EqxNoisyRNN", "GRUCell", "ItoNoise",
    "LSTMCell", "LipschitzCell", "NoiseForm", "NoiseSample", "NoisyRNN", "NoisyRNNConfig",
    "ReferenceNoise", "Sequences", "TrainingDiverged", "accuracy", "apply", "attacks",
    "count_params", "cpu_devices_for", "data", "drift", "euler_maruyama_step", "final_state", "fit",
    "fit_ensemble", "from_flax_gru", "from_flax_lstm", "gru_step", "init_params",
    "ito_diffusion", "lipschitz_matrix", "load_model", "lstm_step", "nn", "preset",
    "preset_description", "preset_learning_rate", "random", "recurrent_matrices", "save_model",
    "stack_configs", "step_factor", "study", "theory", "to_flax_gru", "to_flax_lstm",
    "trajectory", "use_cpu_devices",
]  # fmt: skip
