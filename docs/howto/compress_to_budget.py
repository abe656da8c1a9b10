"""Compress an ODE-Net to a budget  (docs/howto_compress.md)

Trains a ConvODENet on the embedded digits by refinement (K = n_steps = 1 doubled to 8), sweeps
K without data (the compression residual) and with it (validation accuracy), lets the planner
choose basis, K and steps per block for a size budget, saves the small model and loads it back.
With ``NOISY_BASIS_DOCS_QUICK=1`` (what the test suite sets) it trains on 128 images for 2
epochs (K = 1 -> 2) and plans over one configuration: the same calls, numbers that mean nothing.
"""

# --8<-- [start:train]
import os

import basis_ode as bo

QUICK = os.environ.get("NOISY_BASIS_DOCS_QUICK") == "1"  # the test suite's short version

s = bo.data.load_digits(seed=0)  # (N, 8, 8, 1) images; your own: bo.data.load_npz("mine.npz")
train = (s.train[0][:128], s.train[1][:128]) if QUICK else s.train
epochs, refine_at = (2, (1,)) if QUICK else (8, (1, 2, 3))
model = bo.ConvODENet(width=8, basis=bo.PiecewiseConstant(1), n_steps=1)  # K = n_steps = 1
model, variables, history = bo.fit(
    model, train, epochs=epochs, batch_size=64, learning_rate=0.1,
    recipe=bo.SGDRecipe(lr_drops=(epochs - 2,) if epochs > 2 else ()),  # lr x 0.1 at the end
    validation=s.validation, refine_at=refine_at,  # K and n_steps doubled: 2, 4, then 8
    return_params=bo.LastEpoch(),  # the last epoch's weights (K = 8), not the best epoch's
)  # fmt: skip
print(bo.basis_of(variables), "with", model.n_steps, "steps")
# --8<-- [end:train]

# --8<-- [start:sweep]
for K in (8, 4, 2, 1):
    small = bo.compress(variables, bo.PiecewiseConstant(K))  # L2 projection, no data, no training
    r = bo.compression_residual(variables, bo.PiecewiseConstant(K))  # before any data
    acc = bo.accuracy(model, small, *s.validation, n_steps=max(K, 2))
    print(f"K = {K}: residual {r:.2g}, validation accuracy {acc:.3f} at {max(K, 2)} steps")
# --8<-- [end:sweep]

# --8<-- [start:plan]
from basis_ode import experiments  # noqa: E402

budget = bo.Bytes(300_000)  # about a third of the trained 869,192; or bo.Latency(ms), a tuple
space = bo.SearchSpace(bases=(bo.PiecewiseConstant, bo.Hat), schemes=(bo.EULER,),
                       methods=(bo.Project(),))  # fmt: skip
options = {"space": space, "progress": False}
if QUICK:  # one configuration, timed once; a 2-epoch model need not be certified
    options.update(space=bo.SearchSpace(bases=(bo.PiecewiseConstant,), Ks=(1,),
                                        n_steps=(2,), schemes=(bo.EULER,),
                                        methods=(bo.Project(),), per_block=False),
                   repeats=1, certificate_examples=64, allow_uncertified=True)  # fmt: skip
plan = bo.plan(model, variables, s.validation, budget, **options)
choice = plan.choice
print(f"chosen: {choice.config.label}: validation accuracy {choice.accuracy:.3f}, "
      f"{choice.model_bytes:,} bytes, {choice.latency_ms:.2f} ms a batch of 256")  # fmt: skip
print(choice.certificate.describe())
assert choice.model_bytes <= 300_000  # what plan returns fits the budget
experiments.write_plan("runs/plan_digits", plan.frontier, {"": (plan.budget, choice)})
# Another budget on the same measurements: within 1.5 times the fastest certified latency.
fastest = min(p.latency_ms for p in plan.frontier.points if p.certified or QUICK)
again = plan.frontier.choose(bo.Latency(1.5 * fastest), allow_uncertified=QUICK)
print(f"within {1.5 * fastest:.2f} ms: {again.config.label}, {again.model_bytes:,} bytes")
# --8<-- [end:plan]

# --8<-- [start:save]
bo.save_model("small.npz", plan.model, plan.variables)
small_model, small_variables = bo.load_model("small.npz")
print(f"test accuracy: trained {bo.accuracy(model, variables, *s.test):.3f}, "
      f"small {bo.accuracy(small_model, small_variables, *s.test):.3f}")  # fmt: skip
bo.export_resnet("small_resnet", plan.model, plan.variables)  # Euler: a plain Flax ResNet
# --8<-- [end:save]
