"""The convergence certificate on trained models: a coarse directly trained ODE-Net fails it, a
refinement-trained one passes it, at the default tolerance (0.1 on the relative logit change
from n to 4n steps).

Two ConvODENets (width 4) on the sklearn digits, same seed and recipe: one trained directly at
K = n_steps = 1 (one Euler step of size 1), one by refinement 1 -> 2 -> 4 (6 epochs, the last
4 at K = 4). The facts are measured ones (the logits at n, 2n and 4n steps of each trained
model), with the margins seen when this test was written: the direct model's logits moved 0.31
from n to 4n steps, the refined model's 0.057. Directly trained models at K = n_steps = 2 and 4
(same recipe) passed too, with 0.044 and 0.018, and one at K = n_steps = 8 (width 8, 8 epochs)
with 0.004: what fails is training at a coarse step, not direct training as such.
"""

import numpy as np
import pytest

import basis_ode as bo
from basis_ode import data

pytestmark = pytest.mark.slow  # two short trainings


def _train(K, refine_at):
    splits = data.load_digits(seed=0)
    model = bo.ConvODENet(width=4, basis=bo.PiecewiseConstant(K), unroll=False)
    model, variables, _ = bo.fit(
        model, splits.train, learning_rate=0.1, validation=splits.validation,
        refine_at=list(refine_at), epochs=6, batch_size=64, seed=0, progress=False,
        return_params=bo.LastEpoch(),
    )  # fmt: skip
    return model, variables, splits


def _certificate(model, variables, splits):
    K = bo.basis_of(variables).K
    space = bo.SearchSpace(bases=(bo.PiecewiseConstant,), Ks=(K,), n_steps=(K,),
                           schemes=(bo.EULER,), methods=(bo.Project(),),
                           per_block=False)  # fmt: skip
    frontier = bo.measure_frontier(model, variables, splits.validation, space=space,
                                   timer=lambda c, run: 1e-3, progress=False)  # fmt: skip
    (point,) = frontier.points
    return point


def test_direct_coarse_model_fails_and_refined_model_passes():
    direct = _certificate(*_train(1, ()))
    refined = _certificate(*_train(1, (1, 2)))
    assert refined.config.n_steps == (4, 4, 4) and direct.config.n_steps == (1, 1, 1)
    assert direct.certificate.tolerance == refined.certificate.tolerance == 0.1
    assert not direct.certified and direct.certificate.change[0] > 0.2
    assert refined.certified
    # Euler is first order: the refined model's observed order is near 1; the direct model's
    # logits move by more than the refined model's at every refinement
    assert 0.6 < refined.certificate.order < 1.4
    assert direct.certificate.change[1] > refined.certificate.change[1]
    # the planner never chooses the uncertified configuration by default
    f = bo.Frontier((direct,), direct.config, 1, "cpu")
    with pytest.raises(bo.BudgetError, match="converged"):
        f.choose(bo.Bytes(10**9))
    assert f.choose(bo.Bytes(10**9), allow_uncertified=True) == direct
    assert np.isfinite(refined.certificate.accuracy).all()
