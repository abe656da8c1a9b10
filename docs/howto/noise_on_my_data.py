"""Does noise help on my data, and at which level?  (docs/howto_noise.md)

Writes a small file of your own, runs the robustness study of three noise levels against their
deterministic twin over 16 seeds (one ensemble), and reads its table, plot and verdict. With
``NOISY_BASIS_DOCS_QUICK=1`` (what the test suite sets) it trains one noise level and the twin
from 2 seeds for 2 epochs and evaluates under two kinds of perturbation: the same code path in
about 12 s, with numbers that mean nothing.
"""

# --8<-- [start:file]
import os

import numpy as np

QUICK = os.environ.get("NOISY_BASIS_DOCS_QUICK") == "1"  # the test suite's short version

# Your file: three classes of 20-step series whose mean depends on the class (-0.5, 0, 0.5),
# under per-step noise of standard deviation 1. Replace this by your own np.savez(...).
rng = np.random.default_rng(0)


def series(n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 3, n)
    x = 0.5 * (labels[:, None, None] - 1) + rng.normal(size=(n, 20, 1))
    return x.astype(np.float32), labels


(x_train, y_train), (x_test, y_test) = series(1000), series(300)
np.savez("mine.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
# --8<-- [end:file]

# --8<-- [start:study]
from noisy_dyn import experiments  # noqa: E402

levels = experiments.study_levels([0.1, 0.3, 1.0])  # sigma_add = sigma_mult; the twin (0, 0) first
result = experiments.study(
    "nrnn_ito", "npz", data_path="mine.npz", levels=levels[:2] if QUICK else levels,
    seeds=range(2 if QUICK else 16), hidden=32, out="runs/study_mine",
    epochs=2 if QUICK else None,  # None: from the data's size (about 2,000 steps), printed
    kinds=["gaussian", "fgsm"] if QUICK else None,  # None: all five kinds, three levels each
)  # fmt: skip
# --8<-- [end:study]

# --8<-- [start:read]
rows = result["rows"]  # noisy_dyn.study.StudyRow, one per noise level and perturbation
print(f"scored on the {rows[0].split} split ({rows[0].examples} examples)")
for row in rows:
    d = row.paired  # the difference to the twin, paired by seed (None for the twin itself)
    if d is not None and (d.holm_rejects() or d.excludes_zero()):
        verdict = "survives Holm" if d.holm_rejects() else "interval only: a candidate"
        print(f"sigma {row.sigma_add:g}, {row.perturbation.name} {row.level:g}: "
              f"{100 * d.mean:+.1f} points [{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}], "
              f"Holm p {d.p_holm:.2g}: {verdict}")  # fmt: skip
# --8<-- [end:read]
