"""Robustness studies over an ensemble: every member under every perturbation, intervals over
seeds, paired and matched differences, Holm's adjustment, and the writers and plot of the
results (``noisy_dyn._study``'s module docstring has the method). Each row is a
:class:`StudyRow` record (``row.to_dict()`` its ``study.json`` form; ``StudyRow.from_dict``
reads one back).

The plot imports matplotlib when called; importing this module does not.
"""

from ._selection import SELECTIONS as SELECTIONS
from ._selection import ByHolm as ByHolm
from ._selection import ByInterval as ByInterval
from ._selection import Selection as Selection
from ._selection import selection_by_name as selection_by_name
from ._study import ACCURACIES_FILE as ACCURACIES_FILE
from ._study import STORED_SPLIT as STORED_SPLIT
from ._study import STUDY_PERTURBATIONS as STUDY_PERTURBATIONS
from ._study import accuracies_csv as accuracies_csv
from ._study import confirm_rows as confirm_rows
from ._study import evaluate_members as evaluate_members
from ._study import inference_config as inference_config
from ._study import inference_key as inference_key
from ._study import perturbation_key as perturbation_key
from ._study import plot_study as plot_study
from ._study import read_accuracies as read_accuracies
from ._study import robustness_study as robustness_study
from ._study import scored_on as scored_on
from ._study import stochastic_logits as stochastic_logits
from ._study import study_markdown as study_markdown
from ._study import study_rows as study_rows
from ._study import study_split as study_split
from ._study import study_verdicts as study_verdicts
from ._study import write_study as write_study
from ._study_row import Difference as Difference
from ._study_row import Matched as Matched
from ._study_row import StudyRow as StudyRow

__all__ = [
    "ACCURACIES_FILE",
    "ByHolm",
    "ByInterval",
    "SELECTIONS",
    "Selection",
    "selection_by_name",
    "Difference",
    "Matched",
    "StudyRow",
    "STORED_SPLIT",
    "STUDY_PERTURBATIONS",
    "accuracies_csv",
    "confirm_rows",
    "evaluate_members",
    "inference_config",
    "inference_key",
    "perturbation_key",
    "plot_study",
    "read_accuracies",
    "robustness_study",
    "scored_on",
    "stochastic_logits",
    "study_markdown",
    "study_rows",
    "study_split",
    "study_verdicts",
    "write_study",
]
