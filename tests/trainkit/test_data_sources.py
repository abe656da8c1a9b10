"""``--data NAME [--data-path P] [--validation-fraction F]``: one resolution for both packages."""

import inspect

import pytest

import basis_ode
import noisy_dyn
from trainkit import CLIError
from trainkit.internal import DataSource, open_data_source, require_validation


def _record(**kwargs):
    return kwargs


SOURCES = {
    "embedded": DataSource(_record, path_help="embedded in a test", takes_fraction=True),
    "permuted": DataSource(
        _record, settings={"permute": True}, path_argument="root", takes_limit=True
    ),  # fmt: skip
    "file": DataSource(_record, path_argument="path", path_help="a file", needs_path=True),
}


def test_the_flags_become_the_loaders_keywords():
    assert open_data_source("embedded", SOURCES, seed=3) == {"seed": 3}
    assert open_data_source("embedded", SOURCES, validation_fraction=0.25) == {
        "seed": 0, "val_fraction": 0.25,
    }  # fmt: skip
    got = open_data_source("permuted", SOURCES, data_path="/d", limit=7)
    assert got == {"permute": True, "seed": 0, "root": "/d", "limit": 7}
    assert open_data_source("permuted", SOURCES) == {"permute": True, "seed": 0}
    assert open_data_source("embedded", SOURCES, limit=7) == {"seed": 0}  # takes no limit
    assert open_data_source("file", SOURCES, data_path="x.npz") == {"seed": 0, "path": "x.npz"}


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("nope", {}, "unknown data set 'nope'; choose one of embedded, permuted, file."),
        ("embedded", {"data_path": "/d"}, "--data embedded is embedded in a test; it takes no "
         "--data-path."),
        ("file", {}, "--data file needs --data-path: a file."),
        ("permuted", {"validation_fraction": 0.2}, "--data permuted has a fixed validation set; "
         "--validation-fraction applies to embedded."),
        ("embedded", {"validation_fraction": 1.0}, "--validation-fraction must lie in (0, 1), "
         "got 1.0; e.g. 0.2."),
    ],
)  # fmt: skip
def test_refusals_name_the_fix(name, options, message):
    with pytest.raises(CLIError) as err:
        open_data_source(name, SOURCES, **options)
    assert str(err.value) == message


def test_the_fraction_in_effect():
    assert SOURCES["embedded"].fraction(None) == 0.1
    assert SOURCES["embedded"].fraction(0.3) == 0.3
    assert SOURCES["permuted"].fraction(0.3) is None


def test_require_validation(capsys):
    with pytest.raises(CLIError, match="no validation example: 4 training images at validation "
                       "fraction 0.1 leave none"):  # fmt: skip
        require_validation(0, 4, 0.1, "images")
    require_validation(5, 50, 0.1)  # too few to rank epochs: announced, not refused
    assert "the validation split holds 5 examples" in capsys.readouterr().err
    require_validation(1000, 9000, None)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "sources, name", [(noisy_dyn.data.SOURCES, "cifar10"), (basis_ode.data.SOURCES, "cifar10")]
)
def test_both_command_lines_refuse_alike(sources, name):
    """The same data set missing its folder gets the same line from both packages."""
    with pytest.raises(CLIError, match="^--data cifar10 needs --data-path: the folder holding "
                       "data_batch_1..5 and test_batch.$"):  # fmt: skip
        open_data_source(name, sources)
    with pytest.raises(CLIError, match="^--data digits is embedded in scikit-learn; it takes no "
                       "--data-path.$"):  # fmt: skip
        open_data_source("digits", sources, data_path="/somewhere")


def test_every_loader_takes_the_keywords_its_source_promises():
    """The tables agree with the loaders' signatures (a renamed argument fails here)."""
    for sources in (noisy_dyn.data.SOURCES, basis_ode.data.SOURCES):
        for name, s in sources.items():
            takes = inspect.signature(s.loader).parameters
            wanted = {"seed", *s.settings}
            wanted |= {s.path_argument} - {None}
            wanted |= {"val_fraction"} if s.takes_fraction else set()
            wanted |= {"limit"} if s.takes_limit else set()
            assert wanted <= set(takes), (name, wanted - set(takes))
