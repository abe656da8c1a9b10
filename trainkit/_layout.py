"""How a run's state and batches lie on the device mesh: one run, or an ensemble of members.

Three layouts, one small object each (the loop asks the layout, it never compares names):

- :class:`OneRun`: a single run; its state is replicated on every device of the mesh and each
  batch is split over them (data parallelism).
- :class:`MembersSharded`: an ensemble whose member count divides the mesh's first axis; the
  members are split over the devices (member ``m`` on device ``m // (members / devices)``),
  each device steps only its own members and no values cross devices.
- :class:`BatchSharded`: an ensemble whose member count does not divide it; the state of all
  members is replicated and each batch is split over the devices, as for one run.

:func:`ensemble_layout` chooses between the last two. A layout is a frozen dataclass, hashable,
so compiled programs are cached by it (:func:`trainkit._loop.compiled_step`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import AbstractMesh, Mesh, NamedSharding, PartitionSpec

from . import _devices

__all__ = ["BatchSharded", "Layout", "MembersSharded", "OneRun", "ensemble_layout"]


class Layout(abc.ABC):
    """Where a run's state and its batches go on a mesh."""

    @abc.abstractmethod
    def shardings(self, mesh: Mesh) -> tuple[Any, Any]:
        """``(state, batch)`` shardings on ``mesh``."""

    def put_state(self, tree: Any, mesh: Mesh) -> Any:
        """``tree`` (the state, or values shaped like it) placed on ``mesh``: replicated."""
        return _devices.put_replicated(tree, mesh)

    def put_batch(self, tree: Any, mesh: Mesh) -> Any:
        """The batch on the mesh; with several processes each copies only its own devices' rows
        (``jax.make_array_from_callback``: no cross-process check of the values)."""
        sharding = self.shardings(mesh)[1]
        return jax.tree.map(lambda x: _devices.put(np.asarray(x), sharding), tree)

    def over_members(self, fn: Callable, mesh: Mesh) -> Callable:
        """``fn`` of one member, over the leading member axis of every argument (``vmap``,
        under ``jit``'s partitioner); a single run's step is ``fn`` itself."""
        return jax.vmap(fn)


@dataclasses.dataclass(frozen=True)
class OneRun(Layout):
    """One run: the state replicated, each batch split over the devices."""

    def shardings(self, mesh: Mesh) -> tuple[Any, Any]:
        return _devices.replicated(mesh), _devices.sharded(mesh)

    def over_members(self, fn: Callable, mesh: Mesh) -> Callable:
        return fn


@dataclasses.dataclass(frozen=True)
class BatchSharded(Layout):
    """An ensemble's state replicated, each batch's rows split over the devices (axis 1 of a
    batch, after the member axis)."""

    def shardings(self, mesh: Mesh) -> tuple[Any, Any]:
        rows = NamedSharding(mesh, PartitionSpec(None, mesh.axis_names[0]))
        return _devices.replicated(mesh), rows


@dataclasses.dataclass(frozen=True)
class MembersSharded(Layout):
    """An ensemble's members split over the devices, state and batch alike."""

    def shardings(self, mesh: Mesh) -> tuple[Any, Any]:
        member = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
        return member, member

    def put_state(self, tree: Any, mesh: Mesh) -> Any:
        return _devices.put_sharded(tree, mesh)

    def over_members(self, fn: Callable, mesh: Mesh) -> Callable:
        """``shard_map``, so each device steps only its own members (no communication). On CPU
        devices a device runs its members one after the other (``lax.map``): measured on the
        digits demo's size, the vmapped kernel's batched matmuls cost more per member there
        than separate ones; on accelerators they are ``vmap``-ed (one launch for all)."""
        spec = PartitionSpec(mesh.axis_names[0])
        on_cpu = mesh.devices.flat[0].platform == "cpu"

        def local(carry, batch, hyper):
            if on_cpu:
                return jax.lax.map(lambda args: fn(*args), (carry, batch, hyper))
            return jax.vmap(fn)(carry, batch, hyper)

        return jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)


ONE_RUN = OneRun()


def ensemble_layout(members: int, mesh: Mesh | AbstractMesh) -> Layout:
    """:class:`MembersSharded` where ``members`` divides the mesh's first axis, else
    :class:`BatchSharded`."""
    devices = int(mesh.shape[mesh.axis_names[0]])
    return MembersSharded() if members % devices == 0 else BatchSharded()
