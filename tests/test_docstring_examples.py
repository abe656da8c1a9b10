"""Every ``>>>`` example in the docstrings of the public API runs and prints what it shows.

The examples are the API reference's (the site renders them in each entry); running them with
:mod:`doctest` keeps them in step with the code. Outputs are compared after normalising
whitespace, ``...`` matches any text; an example marked ``# doctest: +SKIP`` needs data or a
trained model it cannot build in a few seconds and is only rendered.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

NAMESPACES = (
    "noisy_dyn", "noisy_dyn.attacks", "noisy_dyn.data", "noisy_dyn.study", "noisy_dyn.theory",
    "basis_ode", "basis_ode.data", "trainkit",
)  # fmt: skip
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(recurse=True)
    found, seen = {}, set()
    for name in NAMESPACES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if not (inspect.isclass(obj) or callable(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            for test in finder.find(obj, f"{name}.{attr}", globs={}):
                if test.examples and test.name not in found:
                    found[test.name] = test
    return sorted(found.values(), key=lambda t: t.name)


EXAMPLES = _examples()


def test_the_entries_users_call_first_have_examples() -> None:
    """The API entries a newcomer calls first each show an example."""
    first = {
        "noisy_dyn.preset", "noisy_dyn.fit", "noisy_dyn.fit_ensemble", "noisy_dyn.apply",
        "noisy_dyn.accuracy", "noisy_dyn.save_model", "noisy_dyn.load_model",
        "noisy_dyn.theory.stability_report", "noisy_dyn.attacks.robustness_table",
        "noisy_dyn.data.load_digits", "noisy_dyn.data.load_npz",
        "basis_ode.fit", "basis_ode.compress", "basis_ode.basis_of", "basis_ode.ConvODENet",
        "basis_ode.PiecewiseConstant", "basis_ode.accuracy", "basis_ode.data.load_digits",
        "basis_ode.export_resnet",
    }  # fmt: skip
    missing = sorted(first - {t.name for t in EXAMPLES})
    assert not missing, f"no >>> example in: {missing}"


@pytest.mark.parametrize("test", EXAMPLES, ids=lambda t: t.name)
def test_docstring_example_runs(test: doctest.DocTest, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    test.globs = {"__name__": "__doctest__"}
    report: list[str] = []  # doctest swaps sys.stdout while it runs: collect, then show
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


def test_the_runner_catches_a_wrong_example() -> None:
    """A docstring whose shown output is wrong fails (the check above can fail)."""

    def wrong():
        """>>> 1 + 1
        3
        """

    (test,) = doctest.DocTestFinder().find(wrong, "wrong", globs={})
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=lambda text: None)
    assert runner.summarize(verbose=False).failed == 1
