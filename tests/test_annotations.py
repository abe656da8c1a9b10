"""The shapes on the public API are checked in the test run, and every public callable with
array arguments or returns carries them.

``tests/conftest.py`` installs jaxtyping's import hook with beartype over the three packages;
the first test fails when it is off. The census is ``benchmarks/api_annotations.py`` (also run
as ``python -m benchmarks.api_annotations``, which writes the table).
"""

import jaxtyping
import numpy as np
import pytest

import trainkit
from benchmarks.api_annotations import survey


def test_a_wrong_shape_is_refused_by_the_checks():
    """Inputs and labels of different lengths: ``n`` is shared by the two annotations
    (``xs: Shaped[ArrayLike, "n ..."]``, ``ys: Shaped[ArrayLike, "n ..."]``), so jaxtyping
    refuses the call before the function runs."""
    xs, ys = np.zeros((10, 3), np.float32), np.zeros(9, np.int32)
    with pytest.raises(jaxtyping.TypeCheckError, match="ys"):
        next(iter(trainkit.batches(xs, ys, 4)))
    # matching rows go through: three batches holding every row once
    got = [b[1] for b in trainkit.batches(xs, np.arange(10), 4)]
    assert sorted(np.concatenate(got).tolist()) == list(range(10))


def test_every_public_callable_with_arrays_is_shaped():
    """The census of ``benchmarks/api_annotations.py``: no public function, class field or
    public method has an array argument or return without dtype and shape (a bare ``Array``,
    ``np.ndarray`` or ``ArrayLike``), and none has an unannotated parameter."""
    rows = survey()["rows"]
    assert len(rows) > 350, "the census lost the public API"  # 412 callables when written
    shaped = [r for r in rows if r["status"] == "shaped"]
    assert len(shaped) > 100  # 140 when written: the census does see the annotations
    todo = {r["name"]: r["bare"] + r["missing"] for r in rows if r["status"] not in _DONE}
    assert not todo, f"annotate these (parameter names): {todo}"


_DONE = ("shaped", "no arrays")
