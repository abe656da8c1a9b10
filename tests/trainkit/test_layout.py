"""Layouts on the mesh: which one an ensemble gets, what each does to a one-member function
(checked against a plain loop over the members), and that compiled steps are cached by them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AbstractMesh, Mesh

from trainkit.internal import (
    BatchSharded,
    MembersSharded,
    OneRun,
    compiled_step,
    ensemble_layout,
)


def test_members_are_split_over_the_devices_only_where_their_number_divides():
    mesh = AbstractMesh((4,), ("batch",))
    assert ensemble_layout(8, mesh) == MembersSharded()
    assert ensemble_layout(4, mesh) == MembersSharded()
    assert ensemble_layout(6, mesh) == BatchSharded()
    assert ensemble_layout(3, mesh) == BatchSharded()


def _member(carry, batch, hyper):
    return carry * hyper + jnp.sum(batch**2)


def test_each_layout_maps_a_member_function_as_a_loop_over_members_does():
    mesh = Mesh(np.array(jax.devices()[:1]), ("batch",))
    rng = np.random.default_rng(0)
    carry, batch, hyper = rng.normal(size=(3, 2)), rng.normal(size=(3, 5)), rng.normal(size=(3, 1))
    loop = np.stack([_member(carry[m], batch[m], hyper[m]) for m in range(3)])
    assert OneRun().over_members(_member, mesh) is _member
    for layout in (BatchSharded(), MembersSharded()):
        got = jax.jit(layout.over_members(_member, mesh))(carry, batch, hyper)
        np.testing.assert_allclose(np.asarray(got), loop, rtol=1e-6)
    placed = MembersSharded().put_state({"w": carry}, mesh)["w"]
    np.testing.assert_array_equal(np.asarray(placed), carry)


def test_compiled_steps_are_cached_by_layout():
    mesh = Mesh(np.array(jax.devices()[:1]), ("batch",))

    def task_step(train, batch, hyper):  # never traced here: only the cache is asked
        raise AssertionError

    members = compiled_step(task_step, mesh, MembersSharded())
    assert compiled_step(task_step, mesh, MembersSharded()) is members
    assert compiled_step(task_step, mesh, BatchSharded()) is not members
    assert compiled_step(task_step, mesh, OneRun()) is compiled_step(task_step, mesh, OneRun())
