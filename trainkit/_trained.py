"""What ``fit`` and ``load_model`` return in both packages: the model, then its parameters.

``noisy_dyn.fit(cfg, ...)`` and ``basis_ode.fit(model, ...)`` (and both ``fit_ensemble``s) return a
:class:`Trained` ``(model, params, history)``; both ``load_model``s return a :class:`Loaded`
``(model, params)``. The model is the object that, with the parameters, computes the network:
a ``noisy_dyn.NoisyRNNConfig`` (``noisy_dyn.apply(params, xs, cfg)``), or a Flax module
(``model.apply(variables, xs)``), the refined one after ``refine_at`` (its K and n_steps go with
the returned variables). Both are ``NamedTuple``s: fields by name (``trained.params``) or by
position (``model, params, history = fit(...)``); unpacking the former two-element results into
two names fails with "too many values to unpack" rather than silently swapping them.
"""

from typing import Any, NamedTuple

__all__ = ["Loaded", "Trained"]


class Trained(NamedTuple):
    """The result of ``fit`` / ``fit_ensemble``: ``(model, params, history)``.

    Attributes:
        model: the model the parameters belong to (``NoisyRNNConfig`` or a Flax module; for
            ``noisy_dyn.fit_ensemble`` the sequence of configurations, member ``i * len(seeds)
            + j`` being ``cfgs[i]`` with ``seeds[j]``).
        params: the trained parameters (``basis_ode``: the Flax variables, ``params`` and
            ``batch_stats``); for an ensemble, every leaf stacked on a leading ``members`` axis.
        history: per-epoch lists (epoch 1 first) and run-level entries, as each ``fit``
            documents.
    """

    model: Any
    params: Any
    history: dict[str, Any]


class Loaded(NamedTuple):
    """A model file's contents: ``(model, params)``, as :class:`Trained` without the history."""

    model: Any
    params: Any
