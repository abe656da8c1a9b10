"""Command line of basis_ode: ``python -m basis_ode {train,compress,plan,tag,demo} ...``.

``demo`` is the quick tour (about a few minutes on two CPU cores): a small ConvODENet on the sklearn
digits trained with refinement K = n_steps = 1 -> 2 -> 4 -> 8, then compressed to K/2 and K/4
without retraining; the table and plots go to ``runs/basis_ode/demo/``. This module only parses
arguments; the pipelines are in :mod:`basis_ode.experiments`.

Full-size commands for a GPU (the recipes of Queiruga et al. 2021, Sec. 5; CIFAR-10 in the
python-pickle layout under ROOT)::

    # CIFAR-10, K = 16, 16 Euler steps, 180 epochs, lr x0.1 at 80/120/160, crop + flip
    python -m basis_ode train --data cifar10 --data-path ROOT --width 16 --K 16 --n-steps 16 \\
        --epochs 180 --batch-size 128 --lr 0.1 --lr-drops 80,120,160 --augment --out runs/c10_k16
    # the refinement run: K = n_steps = 1 doubling at epochs 20, 40, 70, 90 (-> 16)
    python -m basis_ode train --data cifar10 --data-path ROOT --K 1 --n-steps 1 \\
        --refine-at 20,40,70,90 --epochs 180 --lr-drops 80,120,160 --augment --out runs/c10_ref
    # compress the trained model to K = 8 (and 4) without retraining, sweep steps and schemes
    python -m basis_ode compress --run runs/c10_k16 --Ks 16,8,4 --n-steps-list 8,16 \\
        --bases piecewise_constant --out runs/c10_k16/compress
    # the best configuration that runs in 3 ms a batch of 256 and fits in 200 kB (validation
    # split; writes plan.json, plan.md, frontier.png, model.npz and, for Euler, resnet/)
    python -m basis_ode plan --run runs/c10_ref --latency-ms 3 --bytes 200000
    # POS tagging on Universal Dependencies (English-GUM CoNLL-U files)
    python -m basis_ode tag --conllu en_gum-ud-train.conllu en_gum-ud-dev.conllu \\
        en_gum-ud-test.conllu --K 1 --n-steps 1 --refine-at 2,4,6,8,10,12 --epochs 60 \\
        --width 128 --batch-size 64 --warmup 8000 --lr 1e-3 --compress-to 32,16 --out runs/ud_gum
    # your own images: an .npz with x_train (N, H, W, C), y_train, x_test, y_test
    python -m basis_ode train --data npz --data-path my_images.npz --epochs 30

A trained run writes model.npz (basis_ode.load_model reads it), history.json, result.json and
log.jsonl to OUT and checkpoints to OUT/checkpoints; the same command run again resumes
("resumed from step N") or, for a finished run, says "already complete" and leaves the outputs
as they are (--no-resume starts afresh).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import trainkit
from trainkit import internal as tki

from . import experiments
from ._bases import BASES, Basis, basis_by_name
from ._compress import COMPRESSION_MAPS, CompressionMap, compression_by_name
from ._integrate import SCHEMES, ButcherTableau
from ._plan import SearchSpace
from .experiments import IMAGE_DATA

__all__ = ["build_parser", "cli", "main"]

EPILOG = __doc__.split("Full-size commands", 1)[1].join(["Full-size commands", ""])


# --------------------------------------------------------------------------------------------
# the edge: names on the command line -> the library's objects


def _family(name: str) -> type[Basis]:
    if name not in BASES:
        raise trainkit.CLIError(
            f"unknown basis {name!r}; choose one of {', '.join(sorted(BASES))}."
        )
    return BASES[name]


def _basis(name: str, K: int) -> Basis:
    """``--basis NAME --K K`` as a basis object (e.g. ``Hat(4)``)."""
    _family(name)
    try:
        return basis_by_name(name, K)
    except (ValueError, TypeError) as err:
        raise trainkit.CLIError(f"--basis {name} --K {K}: {err}") from None


def _scheme(name: str) -> ButcherTableau:
    """``--method NAME`` as a fixed-step scheme (``ButcherTableau``)."""
    if name not in SCHEMES:
        raise trainkit.CLIError(f"unknown --method {name!r}; choose one of {', '.join(SCHEMES)}.")
    return SCHEMES[name]


def _report(kind: str, out: str, written: bool) -> None:
    print(f"{kind} outputs written to {out}/" if written else
          f"{kind} outputs in {out}/ unchanged (the run was already complete)")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> dict:
    splits = experiments.load_images(args.data, data_path=args.data_path, seed=args.seed,
                                     limit=args.limit, eval_limit=args.eval_limit,
                                     validation_fraction=args.validation_fraction)  # fmt: skip
    out = args.out or tki.default_out("basis_ode", f"convodenet_{args.data}")
    options = trainkit.cli_train_options(args)
    refine_at = tki.parse_ints(args.refine_at)
    options["return_params"] = trainkit.params_choice(
        args.return_params or ("last" if refine_at else "best")
    )
    if refine_at and args.return_params is None:
        print("--refine-at: the run keeps the last epoch's weights (the refined K), not the best "
              "validation epoch's, which may come before a refinement (--return-params best to "
              "choose that)", flush=True)  # fmt: skip
    run = experiments.train_images(
        splits, data_name=args.data, width=args.width, basis=_basis(args.basis, args.K),
        n_steps=args.n_steps, method=_scheme(args.method), learning_rate=args.lr,
        lr_drops=tki.parse_ints(args.lr_drops), refine_at=refine_at,
        augment=args.augment, out=out, data_path=args.data_path,
        validation_fraction=args.validation_fraction, **options,
    )  # fmt: skip
    r = run["result"]
    print(f"trained {args.data}: K={r['K']} n_steps={r['model']['n_steps'] or r['K']} "
          f"val={r['val_accuracy']:.4f} test={r['test_accuracy']:.4f}")  # fmt: skip
    _report("train", out, run["written"])
    return r


def cmd_compress(args: argparse.Namespace) -> Any:

    out = args.out or f"{args.run}/compress"
    rows = experiments.compress_run(
        args.run, data_name=args.data, data_path=args.data_path, limit=args.limit,
        split=args.split, bases=[_family(b) for b in tki.parse_names(args.bases)],
        Ks=tki.parse_ints(args.Ks), n_steps_list=tki.parse_ints(args.n_steps_list),
        methods=[_scheme(m) for m in tki.parse_names(args.methods)], out=out,
        progress=not args.quiet,
    )  # fmt: skip
    print(f"compression sweep on the {args.split} split written to {out}/")
    return rows


def cmd_plan(args: argparse.Namespace) -> dict:

    budgets = experiments.budgets_from_flags(args.latency_ms, args.bytes, args.peak_bytes)
    space = SearchSpace(
        bases=None
        if args.bases is None
        else tuple(_family(b) for b in tki.parse_names(args.bases)),
        Ks=tki.parse_ints(args.Ks) or None,
        n_steps=tki.parse_ints(args.n_steps_list) or None,
        schemes=tuple(_scheme(m) for m in tki.parse_names(args.methods)),
        methods=tuple(_map(m) for m in tki.parse_names(args.maps)),
        per_block=not args.no_per_block,
    )
    out = args.out or f"{args.run}/plan"
    res = experiments.plan_run(
        args.run, budgets, data_name=args.data, data_path=args.data_path, limit=args.limit,
        out=out, allow_uncertified=args.allow_uncertified, space=space,
        batch_size=args.batch_size, repeats=args.repeats, tolerance=args.tolerance,
        certificate_examples=args.certificate_examples, progress=not args.quiet,
        notes=args.notes,
    )  # fmt: skip
    p = res["choice"]
    print(f"chosen: {p.config.label}: validation {100 * p.accuracy:.2f} %, "
          f"{p.latency_ms:.3g} ms per batch of {res['frontier'].batch_size}, "
          f"{p.model_bytes:,} bytes, {p.certificate.describe()} -> {out}/model.npz")  # fmt: skip
    return res


def _map(name: str) -> CompressionMap:
    """``--maps NAME`` as a compression map (``Project()``, ``Interpolate()``)."""
    if name not in COMPRESSION_MAPS:
        raise trainkit.CLIError(
            f"unknown --maps entry {name!r}; choose project and/or interpolate."
        )
    return compression_by_name(name)


def cmd_tag(args: argparse.Namespace) -> dict:

    out = args.out or tki.default_out(
        "basis_ode", "tagger_" + ("ud" if args.conllu else "synthetic")
    )
    run = experiments.train_tagger(
        conllu=args.conllu, sentences=args.sentences, width=args.width,
        basis=_basis(args.basis, args.K), n_steps=args.n_steps, method=_scheme(args.method),
        refine_at=tki.parse_ints(args.refine_at), learning_rate=args.lr, warmup=args.warmup,
        compress_to=tki.parse_ints(args.compress_to), out=out, tag_column=args.tag_column,
        **trainkit.cli_train_options(args),
    )  # fmt: skip
    result = run["result"]
    print("accuracy on the validation split (choose K here):")
    print(experiments.rows_markdown(result["rows"], ["K", "n_steps", "val_accuracy"]))
    trained = result["rows"][0]
    print(f"test accuracy of the trained model (K={trained['K']}): "
          f"{trained['test_accuracy']:.4f}; of each K in result.json")  # fmt: skip
    _report("tag", out, run["written"])
    return run["result"]


def cmd_demo(args: argparse.Namespace) -> dict:
    return experiments.demo(
        out=args.out, epochs=args.epochs, width=args.width, seed=args.seed, limit=args.limit,
        progress=not args.quiet, n_steps_list=tki.parse_ints(args.n_steps_list) or None,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# argument parsing


def _solver(p: argparse.ArgumentParser, K: int, width: int) -> None:
    p.add_argument("--basis", default="piecewise_constant", help="basis family name")
    p.add_argument("--K", type=int, default=K, help="number of basis functions at the start")
    p.add_argument("--n-steps", type=int, default=None, help="ODE steps (default: K)")
    p.add_argument("--method", default="euler", help="euler, midpoint, rk4 or rk4_38")
    p.add_argument("--width", type=int, default=width, help="width of the first stage")
    p.add_argument(
        "--refine-at",
        default="",
        help="epochs at which K and n_steps double, e.g. 20,40 (default: none)",
    )


def _train_parser(sub: Any) -> None:

    p = sub.add_parser("train", help="train a ConvODENet on images (SGD recipe)")
    p.add_argument("--data", default="digits", choices=IMAGE_DATA, help="data set")
    p.add_argument("--return-params", choices=tuple(trainkit.PARAMS_CHOICES), default=None,
                   help="keep the best validation epoch's weights or the last epoch's (default: "
                   "last with --refine-at, so the model has the refined K; else best)")  # fmt: skip
    p.add_argument("--data-path", "--data-root", dest="data_path", default=None,
                   help="cifar10 or fashion_mnist folder, or your .npz file")  # fmt: skip
    p.add_argument("--limit", type=int, default=None, help="first N training examples only")
    p.add_argument("--eval-limit", type=int, default=None, help="first N of validation and test")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="fraction of the training images held out to pick the best epoch "
                   "(digits, npz; default 0.1)")  # fmt: skip
    _solver(p, K=4, width=16)
    trainkit.add_train_flags(
        p,
        epochs=10,
        batch_size=128,
        learning_rate=0.1,
        lr_help="peak learning rate",
        seed_help="seed of split, init and data order",
    )
    p.add_argument(
        "--lr-drops", default="", help="epochs where lr is multiplied by 0.1 (default: none)"
    )
    p.add_argument("--augment", action="store_true", help="random crop (pad 4) + flip")
    tki.add_cluster_flags(p, cpu_devices_help="run on a CPU as this many JAX devices (in each "
                      "process), the batch sharded over them (default: one)")  # fmt: skip
    trainkit.add_run_flags(p, out_default=None,
                  out_help="output folder (default: runs/basis_ode/convodenet_<data>)")  # fmt: skip
    # --cpu-devices, and the job's processes join here, before JAX starts
    p.set_defaults(func=cmd_train, prepare=tki.start_cluster)


def _compress_parser(sub: Any) -> None:
    p = sub.add_parser("compress", help="project a trained run onto other bases/K and sweep")
    p.add_argument("--run", required=True, help="output folder of `train` (holds model.npz)")
    p.add_argument("--data", default=None, help="data set (default: the run's)")
    p.add_argument("--data-path", "--data-root", dest="data_path", default=None,
                   help="data folder or file (default: the run's, recorded by train)")  # fmt: skip
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N examples only")
    p.add_argument("--split", default="validation", choices=["validation", "test"],
                   help="split the table is scored on (default validation: choose K and steps "
                   "there; test only for the final number of the chosen model)")  # fmt: skip
    p.add_argument("--bases", default="piecewise_constant", help="comma-separated basis names")
    p.add_argument("--Ks", default="8,4", help="target K values")
    p.add_argument("--n-steps-list", default="4,8", help="n_steps values at inference")
    p.add_argument("--methods", default="euler", help="comma-separated schemes")
    trainkit.add_run_flags(p, out_default=None, out_help="output folder (default: RUN/compress)",
                  train=False)  # fmt: skip
    p.set_defaults(func=cmd_compress)


def _plan_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="choose basis, K, steps and scheme for a latency or size "
                       "budget (validation split)")  # fmt: skip
    p.add_argument("--run", "--checkpoints", dest="run", required=True,
                   help="output folder of `train` (holds model.npz)")  # fmt: skip
    p.add_argument("--data", default=None, help="data set (default: the run's)")
    p.add_argument("--data-path", "--data-root", dest="data_path", default=None,
                   help="data folder or file (default: the run's, recorded by train)")  # fmt: skip
    p.add_argument("--limit", type=int, default=None,
                   help="plan on the first N validation examples only")  # fmt: skip
    _plan_budget_flags(p)
    _plan_space_flags(p)
    _plan_measure_flags(p)
    trainkit.add_run_flags(p, out_default=None, out_help="output folder (default: RUN/plan)",
                  train=False)  # fmt: skip
    p.set_defaults(func=cmd_plan)


def _plan_budget_flags(p: argparse.ArgumentParser) -> None:
    """The budgets a plan meets: latency, bytes, peak memory."""
    p.add_argument("--latency-ms", type=float, default=None,
                   help="budget: milliseconds per forward pass on one batch")  # fmt: skip
    p.add_argument(
        "--bytes",
        type=int,
        default=None,
        help="budget: bytes of the model's variables (parameters and statistics)",
    )
    p.add_argument("--peak-bytes", type=int, default=None,
                   help="budget: bytes of the compiled forward pass on one batch")  # fmt: skip


def _plan_space_flags(p: argparse.ArgumentParser) -> None:
    """The candidates a plan searches: bases, K, steps, schemes, maps."""
    p.add_argument(
        "--bases",
        default=None,
        help="basis families to try (default: the trained one, hat, legendre)",
    )
    p.add_argument("--Ks", default="", help="K values (default: powers of two up to the trained K)")
    p.add_argument(
        "--n-steps-list",
        default="",
        help="step counts (default: powers of two up to the trained steps)",
    )
    p.add_argument("--methods", default="euler,midpoint", help="comma-separated schemes")
    p.add_argument(
        "--maps",
        default="project,interpolate",
        help="maps from the trained coefficients: project and/or interpolate",
    )
    p.add_argument(
        "--no-per-block",
        action="store_true",
        help="one K and step count for all blocks (no per-block search)",
    )


def _plan_measure_flags(p: argparse.ArgumentParser) -> None:
    """How a plan measures each candidate: batch, repeats, certificate."""
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="batch of every forward pass (latency and peak memory are per batch)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=7,
        help="timed calls per configuration, and round-robin rounds at the end",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.1,
        help="certificate: largest relative logit change from n to 4n steps",
    )
    p.add_argument(
        "--certificate-examples",
        type=int,
        default=512,
        help="validation examples each certificate is computed on",
    )
    p.add_argument(
        "--allow-uncertified",
        action="store_true",
        help="also choose configurations that fail the certificate",
    )
    p.add_argument("--notes", default="", help="conditions recorded with the timings")


def _tag_parser(sub: Any) -> None:
    p = sub.add_parser("tag", help="ODE transformer tagger: synthetic task or UD CoNLL-U")
    p.add_argument("--conllu", nargs="*", default=None,
                   help="train, dev, test CoNLL-U paths (default: the synthetic task)")  # fmt: skip
    p.add_argument("--sentences", type=int, default=2000, help="synthetic task size")
    p.add_argument("--tag-column", choices=("auto", "xpos", "upos"), default="auto",
                   help="CoNLL-U tag column; auto: XPOS (the paper's) when the training file "
                   "fills it, else UPOS (printed)")  # fmt: skip
    _solver(p, K=16, width=32)
    trainkit.add_train_flags(
        p,
        epochs=10,
        batch_size=64,
        learning_rate=3e-3,
        lr_help="peak learning rate",
        seed_help="seed of data, init and data order",
        batch_help="batch size",
        checkpoint_every=False,
    )
    p.add_argument("--warmup", type=int, default=100, help="warm-up steps (paper: 8000)")
    p.add_argument("--compress-to", default="8", help="K values to compress to after training")
    out_help = "output folder (default: runs/basis_ode/tagger_<synthetic|ud>)"
    trainkit.add_run_flags(p, out_default=None, out_help=out_help)
    p.set_defaults(func=cmd_tag)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m basis_ode`` (``--help`` shows every default)."""
    parser = trainkit.Parser(
        prog="python -m basis_ode",
        description="Basis-function ODE-Nets: train, compress without retraining, plan for a "
        "budget, tag, demo.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=trainkit.Parser)
    _train_parser(sub)
    _compress_parser(sub)
    _plan_parser(sub)
    _tag_parser(sub)
    p = sub.add_parser("demo", help="digits: refinement 1->8, compression to K/2 and K/4")
    p.add_argument("--epochs", type=int, default=8, help="number of epochs")
    p.add_argument("--width", type=int, default=8, help="width of the first stage")
    p.add_argument("--limit", type=int, default=None, help="first N training examples only")
    p.add_argument("--n-steps-list", default="",
                   help="n_steps to evaluate (default: K/4, K/2, K)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of split, init and data order")
    trainkit.add_run_flags(p, out_default=tki.default_out("basis_ode", "demo"), train=False)
    p.set_defaults(func=cmd_demo)
    return parser


def _run(args: argparse.Namespace) -> Any:
    tki.check_positive(
        args,
        (
            "epochs",
            "limit",
            "eval_limit",
            "batch_size",
            "width",
            "K",
            "n_steps",
            "sentences",
            "checkpoint_every",
            "cpu_devices",
            "repeats",
            "certificate_examples",
        ),
    )
    if prepare := getattr(args, "prepare", None):
        prepare(args)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point of ``python -m basis_ode`` (and the ``basis-ode`` script).

    Returns the command's result (a dict or list of rows) for use in-process, or the exit
    status 2 after one ``error: ...`` line on stderr for a user error (bad value, missing or
    malformed file, a checkpoint of another run, a diverged run).
    """
    args = build_parser().parse_args(argv)
    box: list[Any] = []
    status = trainkit.run_command(lambda: box.append(_run(args)))
    return box[0] if status == 0 and box else status


def cli() -> int:
    """The ``basis-ode`` console script: :func:`main` on ``sys.argv``, as an exit status."""
    result = main(sys.argv[1:])
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


if __name__ == "__main__":
    sys.exit(cli())
