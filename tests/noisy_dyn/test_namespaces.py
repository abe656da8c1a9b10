"""The public surface: namespaces by topic with explicit ``__all__``, ``import noisy_dyn`` without
matplotlib (a fresh interpreter), and every stored result's ``commands.sh`` still parsed by the
real command-line parser (no training)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import noisy_dyn
from noisy_dyn.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]
TOPICS = {
    "theory": {"explicit_regularizer", "regularized_loss", "regularizer_terms",
               "contraction_rate", "stability_report", "lyapunov_exponents", "input_margin",
               "Brownian", "PerUnitBrownian", "ScalarBrownian"},
    "attacks": {"perturb", "fgsm", "pgd", "deepfool", "fgsm_fn", "pgd_fn", "deepfool_fn",
                "robustness_table", "DEFAULT_PERTURBATIONS", "FGSM", "L2", "NORMS",
                "PERTURBATIONS", "PGD", "Attack", "Clean", "DeepFool", "Gaussian", "Linf",
                "Multiplicative", "Norm", "Perturbation", "RandomPerturbation", "SaltPepper",
                "parse_norm", "parse_perturbation", "perturbations_from_levels"},
    "random": {"standard_normal", "uniform", "sample_noise"},
    "study": {"STUDY_PERTURBATIONS", "confirm_rows", "evaluate_members", "inference_config",
              "inference_key", "perturbation_key", "plot_study", "robustness_study",
              "stochastic_logits", "study_markdown", "study_rows", "write_study",
              "ACCURACIES_FILE", "accuracies_csv", "read_accuracies", "study_verdicts",
              "STORED_SPLIT", "scored_on", "study_split", "StudyRow", "Difference", "Matched",
              "ByHolm", "ByInterval", "Selection", "SELECTIONS", "selection_by_name"},
}  # fmt: skip


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_each_topic_holds_its_names_and_the_top_level_does_not(topic):
    module = getattr(noisy_dyn, topic)
    assert set(module.__all__) == TOPICS[topic]
    for name in module.__all__:
        assert hasattr(module, name), name
        assert name not in noisy_dyn.__all__ and not hasattr(noisy_dyn, name), name


def test_every_all_lists_exactly_what_exists():
    for module in (noisy_dyn, noisy_dyn.data, noisy_dyn.nn):
        assert module.__all__, module.__name__
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, (module.__name__, missing)
    # the data module exports no modules or helpers it merely uses
    assert not {"np", "os", "zipfile", "io", "check_sha256"} & set(noisy_dyn.data.__all__)
    assert {"Numerics", "ensemble_structure", "explicit_regularizer"}.isdisjoint(dir(noisy_dyn))


def test_import_noisy_dyn_imports_no_matplotlib():
    code = "import sys, noisy_dyn, noisy_dyn.study; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def _stored_commands() -> list[tuple[Path, list[str]]]:
    """Every ``python -m noisy_dyn ...`` line of the stored results (continuations joined, loop
    variables given a value)."""
    found = []
    for path in sorted((ROOT / "docs/results/noisy_dyn").glob("*/commands.sh")):
        text = re.sub(r"\\\n", " ", path.read_text())
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("python -m noisy_dyn "):
                line = re.sub(r"\$\{?m\}?", "nrnn_ito", line)
                line = re.sub(r"\$\{?s\}?", "0", line)
                found.append((path, shlex.split(line)[3:]))
    return found


def test_every_stored_command_still_parses():
    commands = _stored_commands()
    assert len(commands) >= 10  # one or more per stored result
    parser = build_parser()
    for path, argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # argparse reports the bad flag on stderr and exits 2
            raise AssertionError(f"{path.relative_to(ROOT)}: {argv} no longer parses") from e
        assert args.command == argv[0]
