"""Defaults that follow the data: batch size, epochs and input standardisation.

The command lines (``train`` and ``study`` alike) choose what is not given from the training
split, and print the choice:

- **batch size**: the paper's 128 on its pixel tasks; on other data the largest power of two
  at most ``N / 8`` (``N`` training examples), between 16 and 128, so that an epoch takes at
  least about 8 steps (243 JapaneseVowels series: 16, not 128 = one step an epoch);
- **epochs**: the paper's 100 on its pixel tasks; on other data enough epochs for about
  :data:`STEP_BUDGET` optimiser steps, between :data:`MIN_EPOCHS` and :data:`MAX_EPOCHS`;
- **standardisation** (``standardize=None``, ``--standardize auto``): the inputs of your own
  data (npz, UCR and ``.ts`` files) are standardised per feature with the training split's
  statistics (:class:`noisy_dyn.data.InputScaling`); the built-in pixel sets (digits, MNIST,
  Fashion-MNIST, CIFAR-10), already in ``[0, 1]`` and the setting the presets were tuned on,
  are used as they are, and FSDD is standardised by its loader already.

The step ``dt`` follows the length (``noisy_dyn.experiments.scaled_dt``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from trainkit.internal import lookup

from ._scaling import InputScaling
from ._scaling import standardize as standardize_splits

PAPER_TASKS = ("fashion_mnist", "pfashion_mnist", "mnist", "pmnist", "cifar10")
"""The paper's pixel tasks: the presets' learning rates, batch 128 and 100 epochs were tuned on
them."""

PIXEL_SETS = ("digits", "pdigits", *PAPER_TASKS)
"""The built-in image sets read as pixel sequences in ``[0, 1]``: not standardised by
default (``standardize=None``)."""

SCALED_BY_LOADER = ("fsdd",)
"""Sets whose loader standardises them with the training split's statistics already
(``noisy_dyn.data.load_fsdd``): not standardised again by default."""

STEP_BUDGET = 2000
"""Optimiser steps the default epochs aim at on data other than the paper's tasks (the digits
studies reached their plateau in about 2,000 steps: 100 epochs of 20 steps)."""

MIN_EPOCHS, MAX_EPOCHS = 30, 200
"""Bounds of the default epochs on data other than the paper's tasks."""

STANDARDIZE: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
"""The values of ``--standardize`` and the ``standardize=`` each stands for."""


def default_batch_size(n_train: int, data_name: str) -> int:
    """128 on the paper's tasks; else the largest power of two ``<= n_train / 8`` in [16, 128]
    (never more than ``n_train``)."""
    if data_name in PAPER_TASKS:
        return min(128, n_train)
    power = 2 ** int(math.floor(math.log2(max(n_train / 8, 1))))
    return max(1, min(n_train, max(16, min(128, power))))


def default_epochs(n_train: int, batch_size: int, data_name: str) -> int:
    """100 on the paper's tasks; else ``ceil(STEP_BUDGET / steps per epoch)`` in
    ``[MIN_EPOCHS, MAX_EPOCHS]`` (``steps per epoch = n_train // batch_size``)."""
    if data_name in PAPER_TASKS:
        return 100
    steps = max(1, n_train // max(1, batch_size))
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(STEP_BUDGET / steps)))


def training_defaults(
    n_train: int, data_name: str, *, epochs: int | None, batch_size: int | None,
    verbose: bool = True,
) -> tuple[int, int]:  # fmt: skip
    """``(epochs, batch_size)``: the given values, or the defaults above (announced)."""
    chosen = []
    if batch_size is None:
        batch_size = default_batch_size(n_train, data_name)
        chosen.append(f"batch size {batch_size}")  # at most n_train; a given one is checked
    if epochs is None:
        epochs = default_epochs(n_train, batch_size, data_name)
        chosen.append(f"{epochs} epochs")
    if chosen and verbose:
        steps = n_train // batch_size
        why = ("the paper's recipe" if data_name in PAPER_TASKS else
               f"about {STEP_BUDGET} steps, epochs in [{MIN_EPOCHS}, {MAX_EPOCHS}], batch "
               "<= N/8 in [16, 128]")  # fmt: skip
        print(f"{' and '.join(chosen)} for {n_train} training examples ({steps} steps an epoch; "
              f"{why}; give --batch-size / --epochs to choose)", flush=True)  # fmt: skip
    return epochs, batch_size


def standardizes(data_name: str, standardize: bool | str | None) -> bool:
    """Whether ``standardize`` standardises the data set ``data_name``: True or False as given;
    None (the default) for all but :data:`PIXEL_SETS` and :data:`SCALED_BY_LOADER`. The former
    names ``"auto"``, ``"on"``, ``"off"`` are read as None, True, False with a
    ``DeprecationWarning`` (they stay the values of ``--standardize``)."""
    if isinstance(standardize, str):
        value = lookup(standardize, STANDARDIZE, "standardize")
        warnings.warn(
            f"standardize={standardize!r} is deprecated; pass standardize={value!r}.",
            DeprecationWarning,
            stacklevel=4,  # the caller of train_preset / study
        )
        standardize = value
    if standardize is None:
        return data_name not in PIXEL_SETS + SCALED_BY_LOADER
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be True, False or None (by data), got {standardize!r}.")
    return standardize


def prepare_inputs(
    splits: Any, data_name: str, standardize: bool | str | None = None, *, verbose: bool = True
) -> tuple[Any, InputScaling | None]:
    """``(splits, scaling)``: standardised with the training split's statistics when
    :func:`standardizes` says so (``scaling`` None otherwise), the choice announced."""
    if not standardizes(data_name, standardize):
        if verbose:
            why = ("pixel values in [0, 1], as the presets were tuned" if data_name in PIXEL_SETS
                   else "standardised by its loader already" if data_name in SCALED_BY_LOADER
                   else "--standardize off")  # fmt: skip
            print(f"inputs used as they are ({why}; --standardize on to standardise)", flush=True)
        return splits, None
    splits, scaling = standardize_splits(splits)
    if verbose:
        print(f"inputs {scaling.describe()} (--standardize off to keep them)", flush=True)
    return splits, scaling
