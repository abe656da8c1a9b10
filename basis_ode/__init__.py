"""basis_ode: continuous-in-depth ODE-Nets whose weights are basis-function expansions, in JAX.

The public API is re-exported here explicitly; the code lives in private modules named after one
idea each (``_bases``, ``_expansion``, ``_projection``, ``_integrate``, ...). This is the pure
library: coefficients carry their basis (:class:`BasisExpansion`), :func:`compress` is a linear
map over parameter pytrees and :func:`odeint` is compiled once per field, shapes and settings.
The experiment drivers (training pipelines, the compression sweep with its latency timing,
files and plots) are :mod:`basis_ode.experiments`, imported on demand: ``import basis_ode``
loads no matplotlib.
"""

# -- core (_types, _bases, _expansion, _projection, _integrate) ---------------------------------
from ._bases import BASES as BASES
from ._bases import Basis as Basis
from ._bases import Chebyshev as Chebyshev
from ._bases import Fourier as Fourier
from ._bases import Hat as Hat
from ._bases import Legendre as Legendre
from ._bases import PiecewiseConstant as PiecewiseConstant
from ._bases import PiecewiseLinear as PiecewiseLinear
from ._bases import basis_by_name as basis_by_name
from ._expansion import BasisExpansion as BasisExpansion
from ._expansion import basis_of as basis_of
from ._integrate import EULER as EULER
from ._integrate import MIDPOINT as MIDPOINT
from ._integrate import RK4 as RK4
from ._integrate import RK4_38 as RK4_38
from ._integrate import SCHEMES as SCHEMES
from ._integrate import ButcherTableau as ButcherTableau
from ._integrate import OdeSolution as OdeSolution
from ._integrate import least_squares_fit as least_squares_fit
from ._integrate import odeint as odeint
from ._integrate import resolve_unroll as resolve_unroll
from ._integrate import scheme_by_name as scheme_by_name
from ._integrate import scheme_name as scheme_name
from ._integrate import stage_basis as stage_basis
from ._integrate import stage_times as stage_times
from ._projection import change_of_basis as change_of_basis
from ._projection import check_coefficients as check_coefficients
from ._projection import evaluate as evaluate
from ._projection import gram_matrix as gram_matrix
from ._projection import interpolate as interpolate
from ._projection import interpolation_matrix as interpolation_matrix
from ._projection import project as project
from ._projection import refine as refine
# -- end core -------------------------------------------------------------------------------------

# -- models (_stateful, _block, _units, _models, _compress) --------------------------------------
from ._block import ODEBlock as ODEBlock
from ._block import init_coefficients as init_coefficients
from ._compress import COMPRESSION_MAPS as COMPRESSION_MAPS
from ._compress import CompressionMap as CompressionMap
from ._compress import Interpolate as Interpolate
from ._compress import Project as Project
from ._compress import compress as compress
from ._compress import compression_by_name as compression_by_name
from ._compress import compression_residual as compression_residual
from ._compress import param_bytes as param_bytes
from ._compress import refine_variables as refine_variables
from ._models import ConvODENet as ConvODENet
from ._models import ODETransformerTagger as ODETransformerTagger
from ._models import ResNet as ResNet
from ._models import count_params as count_params
from ._stateful import fit_state as fit_state
from ._stateful import solve_stateful as solve_stateful
from ._units import PreActConvUnit as PreActConvUnit
from ._units import ResidualStitch as ResidualStitch
from ._units import TransformerUnit as TransformerUnit
from ._units import sinusoidal_positions as sinusoidal_positions
# -- end models -----------------------------------------------------------------------------------

# -- planning (_budget, _certificate, _frontier, _plan, _export): adapt a model to a budget --------
from ._budget import Budget as Budget
from ._budget import Bytes as Bytes
from ._budget import Latency as Latency
from ._budget import PeakMemory as PeakMemory
from ._certificate import Certificate as Certificate
from ._certificate import certify as certify
from ._export import export_resnet as export_resnet
from ._frontier import BudgetError as BudgetError
from ._frontier import Configuration as Configuration
from ._frontier import Frontier as Frontier
from ._frontier import Point as Point
from ._plan import FromBest as FromBest
from ._plan import FromTrained as FromTrained
from ._plan import Plan as Plan
from ._plan import SearchSpace as SearchSpace
from ._plan import WalkStart as WalkStart
from ._plan import adapt as adapt
from ._plan import measure_frontier as measure_frontier
from ._plan import plan as plan
from ._plan import wall_clock as wall_clock
# -- end planning ---------------------------------------------------------------------------------

# -- model files (_model_io: save_model, load_model) ----------------------------------------------
from ._model_io import load_model as load_model
from ._model_io import save_model as save_model
# -- end model files ------------------------------------------------------------------------------

# -- data (data.py: loaders and batching, used as basis_ode.data.<name>) ---------------
from . import data as data

# -- end data -------------------------------------------------------------------------------------

# -- train (_train: fit, accuracy, checkpoints, mesh; _ensemble: fit_ensemble) --------------------
from ._ensemble import fit_ensemble as fit_ensemble
from ._train import CheckpointMismatchError as CheckpointMismatchError
from ._train import NonFiniteError as NonFiniteError
from ._train import TrainingDiverged as TrainingDiverged
from ._train import accuracy as accuracy
from ._train import fit as fit
# -- end train ------------------------------------------------------------------------------------

# -- recipes (trainkit's: optimizer directions and learning-rate schedules, as optax objects) --
from trainkit import RECIPES as RECIPES
from trainkit import AdamRsqrtRecipe as AdamRsqrtRecipe
from trainkit import AdamStepDecay as AdamStepDecay
from trainkit import BestValidation as BestValidation
from trainkit import LastEpoch as LastEpoch
from trainkit import Recipe as Recipe
from trainkit import SGDRecipe as SGDRecipe
from trainkit import recipe_by_name as recipe_by_name
from trainkit import rsqrt_schedule as rsqrt_schedule
from trainkit import set_learning_rate as set_learning_rate
from trainkit import step_schedule as step_schedule
# -- end recipes ----------------------------------------------------------------------------------

# The API reference (pdoc) documents exactly these names.
__all__ = [
    "AdamRsqrtRecipe",
    "AdamStepDecay",
    "BASES",
    "Basis",
    "BasisExpansion",
    "BestValidation",
    "Budget",
    "BudgetError",
    "ButcherTableau",
    "Bytes",
    "Certificate",
    "Chebyshev",
    "CheckpointMismatchError",
    "Configuration",
    "ConvODENet",
    "EULER",
    "Fourier",
    "Frontier",
    "Hat",
    "Latency",
    "Legendre",
    "MIDPOINT",
    "NonFiniteError",
    "ODEBlock",
    "ODETransformerTagger",
    "OdeSolution",
    "PeakMemory",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "Interpolate",
    "LastEpoch",
    "FromBest",
    "FromTrained",
    "Plan",
    "Point",
    "Project",
    "PreActConvUnit",
    "RECIPES",
    "RK4",
    "RK4_38",
    "Recipe",
    "ResNet",
    "ResidualStitch",
    "SCHEMES",
    "COMPRESSION_MAPS",
    "CompressionMap",
    "SGDRecipe",
    "SearchSpace",
    "TrainingDiverged",
    "WalkStart",
    "TransformerUnit",
    "accuracy",
    "adapt",
    "basis_by_name",
    "basis_of",
    "certify",
    "change_of_basis",
    "check_coefficients",
    "compress",
    "compression_by_name",
    "compression_residual",
    "count_params",
    "data",
    "evaluate",
    "export_resnet",
    "fit",
    "fit_ensemble",
    "fit_state",
    "gram_matrix",
    "init_coefficients",
    "interpolate",
    "interpolation_matrix",
    "least_squares_fit",
    "load_model",
    "measure_frontier",
    "odeint",
    "param_bytes",
    "plan",
    "project",
    "recipe_by_name",
    "refine",
    "refine_variables",
    "resolve_unroll",
    "rsqrt_schedule",
    "save_model",
    "scheme_by_name",
    "scheme_name",
    "set_learning_rate",
    "sinusoidal_positions",
    "solve_stateful",
    "stage_basis",
    "stage_times",
    "step_schedule",
    "wall_clock",
]
