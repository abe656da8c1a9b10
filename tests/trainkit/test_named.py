"""Names at the edges, objects inside: every ``*_by_name`` of both packages is
``trainkit.internal.named`` (or ``lookup``) over its own table, so each builds the object the
class gives directly and refuses a wrong name or setting with the same message."""

import dataclasses
import re

import diffrax
import pytest

import basis_ode as bo
import noisy_dyn as nd
import trainkit
from noisy_dyn import study
from trainkit.internal import lookup, named

TRACE_NAMES = ("exact", "hutchinson")

# (the *_by_name call, the object written out, the family's table of names)
BUILT = [
    (
        lambda: nd.trace_by_name("hutchinson", num_samples=8),
        nd.Hutchinson(8),
        ("exact", "hutchinson"),
    ),
    (lambda: nd.trace_by_name("exact"), nd.Exact(), TRACE_NAMES),
    (
        lambda: trainkit.recipe_by_name("sgd", lr_drops=(30, 60)),
        trainkit.SGDRecipe(lr_drops=(30, 60)),
        trainkit.RECIPES,
    ),
    (lambda: bo.basis_by_name("hat", 5), bo.Hat(5), bo.BASES),
    (lambda: bo.scheme_by_name("rk4"), bo.RK4, {**bo.SCHEMES, "tsit5": 0, "dopri5": 0}),
    (lambda: bo.scheme_by_name("tsit5"), diffrax.Tsit5(), {**bo.SCHEMES, "tsit5": 0, "dopri5": 0}),
    (lambda: bo.compression_by_name("interpolate"), bo.Interpolate(), bo.COMPRESSION_MAPS),
    (lambda: study.selection_by_name("interval"), study.ByInterval(), study.SELECTIONS),
]


@pytest.mark.parametrize("make, expected, table", BUILT)
def test_a_name_builds_the_object_written_out(make, expected, table):
    assert make() == expected
    assert type(make()) is type(expected)


REFUSED = [
    (nd.trace_by_name, "trace", TRACE_NAMES),
    (trainkit.recipe_by_name, "recipe", trainkit.RECIPES),
    (lambda name: bo.basis_by_name(name, 4), "basis", bo.BASES),
    (bo.scheme_by_name, "scheme", {**bo.SCHEMES, "tsit5": 0, "dopri5": 0}),
    (lambda name: nd.preset(name, input_size=1, num_classes=2), "preset", nd.PRESETS),
    (lambda name: nd.data.load(name), "data set", nd.data.NAMES),
]


@pytest.mark.parametrize("by_name, what, table", REFUSED)
@pytest.mark.parametrize("bad", ["no_such_thing", "", "Hat"])
def test_a_wrong_name_is_refused_with_every_choice_named(by_name, what, table, bad):
    message = f"unknown {what} {bad!r}; choose one of {', '.join(sorted(table))}."
    with pytest.raises(ValueError, match=re.escape(message)):
        by_name(bad)


def test_a_wrong_setting_names_those_the_member_takes():
    fields = sorted(f.name for f in dataclasses.fields(trainkit.SGDRecipe))
    with pytest.raises(TypeError) as info:
        trainkit.recipe_by_name("sgd", warmup_steps=5)
    message = str(info.value)
    assert "recipe 'sgd' (SGDRecipe) has no setting(s) ['warmup_steps']" in message
    taken = re.search(r"it takes \[(.*)\]", message).group(1)
    assert sorted(taken.replace("'", "").split(", ")) == fields
    with pytest.raises(TypeError, match="cannot take these settings"):
        named("hat", bo.BASES, "basis", 4, 5)  # Hat takes one K


def test_lookup_returns_the_table_entry_itself():
    table = {"a": object(), "b": object()}
    assert lookup("b", table, "thing") is table["b"]
