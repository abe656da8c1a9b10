"""Command line of basis_ode: ``python -m basis_ode {train,compress,tag,demo} ...``.

``demo`` is the quick tour (about a few minutes on two CPU cores): a small ConvODENet on the sklearn
digits trained with refinement K = n_steps = 1 -> 2 -> 4 -> 8, then compressed to K/2 and K/4
without retraining; the table and plots go to ``runs/basis_demo/``.

Full-size commands for a GPU (SPEC 2.7 recipes; CIFAR-10 in the python-pickle layout under ROOT)::

    # CIFAR-10, K = 16, 16 Euler steps, 180 epochs, lr x0.1 at 80/120/160, crop + flip
    python -m basis_ode train --data cifar10 --data-root ROOT --width 16 --K 16 --n-steps 16 \\
        --epochs 180 --batch-size 128 --lr 0.1 --lr-drops 80,120,160 --augment --out runs/c10_k16
    # the refinement run: K = n_steps = 1 doubling at epochs 20, 40, 70, 90 (-> 16)
    python -m basis_ode train --data cifar10 --data-root ROOT --K 1 --n-steps 1 \\
        --refine-at 20,40,70,90 --epochs 180 --lr-drops 80,120,160 --augment --out runs/c10_ref
    # compress the trained model to K = 8 (and 4) without retraining, sweep steps and schemes
    python -m basis_ode compress --run runs/c10_k16 --Ks 16,8,4 --n-steps-list 8,16 \\
        --bases piecewise_constant --out runs/c10_k16/compress
    # POS tagging on Universal Dependencies (English-GUM CoNLL-U files)
    python -m basis_ode tag --conllu en_gum-ud-train.conllu en_gum-ud-dev.conllu \\
        en_gum-ud-test.conllu --K 1 --n-steps 1 --refine-at 2,4,6,8,10,12 --epochs 60 \\
        --width 128 --batch-size 64 --warmup 8000 --lr 1e-3 --compress-to 32,16 --out runs/ud_gum
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _ints(text: str) -> list[int]:
    text = text.strip()
    return [int(t) for t in text.split(",") if t.strip()] if text else []


def _strs(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _load_images(
    name: str, *, root: str | None, seed: int, limit: int | None, eval_limit: int | None = None
):
    from . import data

    if name == "digits":
        splits = data.load_digits(seed=seed)
    elif name == "fashion_mnist":
        kw: dict[str, Any] = {} if root is None else {"root": root}
        splits = data.load_fashion_mnist(**kw)
    elif name == "cifar10":
        if root is None:
            raise SystemExit("--data cifar10 needs --data-root (the cifar-10-batches-py folder).")
        splits = data.load_cifar10(root)
    else:
        raise SystemExit(f"unknown --data {name!r}: use digits, fashion_mnist or cifar10.")
    cut = [limit, eval_limit, eval_limit]
    return type(splits)(*((xs[:c], ys[:c]) for (xs, ys), c in zip(splits, cut)))


def _save_variables(path: Path, variables: Any, config: dict) -> None:
    import flax.serialization as serialization
    import jax

    from ._train import _atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, serialization.msgpack_serialize(jax.device_get(variables)))
    _atomic_write(path.with_suffix(".json"), json.dumps(config, indent=2).encode())


def _load_run(run: Path) -> tuple[Any, Any, dict]:
    import flax.serialization as serialization

    from ._models import ConvODENet

    config = json.loads((run / "final.json").read_text())
    variables = serialization.msgpack_restore((run / "final.msgpack").read_bytes())
    model = ConvODENet(**config["model"])
    return model, variables, config


def _markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> dict:
    from ._models import ConvODENet
    from ._train import accuracy, fit

    splits = _load_images(
        args.data, root=args.data_root, seed=args.seed, limit=args.limit, eval_limit=args.eval_limit
    )
    num_classes = int(max(splits.train[1].max(), splits.test[1].max())) + 1
    model_cfg = {
        "num_classes": num_classes,
        "width": args.width,
        "n_basis": args.K,
        "n_steps": args.n_steps,
        "basis": args.basis,
        "method": args.method,
    }
    model = ConvODENet(**model_cfg)
    augment = None
    if args.augment:
        from .data import augment as augment_fn

        augment = augment_fn
    out = Path(args.out)
    variables, history = fit(
        model,
        splits.train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        validation=splits.validation,
        recipe="sgd",
        refine_at=_ints(args.refine_at),
        lr_drops=_ints(args.lr_drops),
        augment=augment,
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        log_path=out / "log.jsonl",
    )
    model = history["model"]
    test_acc = accuracy(model, variables, *splits.test)
    val_acc = accuracy(model, variables, *splits.validation)
    final_cfg = {k: getattr(model, k) for k in model_cfg}
    result = {
        "data": args.data,
        "model": final_cfg,
        "epochs": args.epochs,
        "val_accuracy": val_acc,
        "test_accuracy": test_acc,
        "train_loss": history["train_loss"],
        "n_train": int(len(splits.train[0])),
        "seed": args.seed,
    }
    _save_variables(out / "final.msgpack", variables, {"model": final_cfg, "result": result})
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(
        f"trained {args.data}: K={final_cfg['n_basis']} n_steps={final_cfg['n_steps']} "
        f"val={val_acc:.4f} test={test_acc:.4f} -> {out}"
    )
    return result


# --------------------------------------------------------------------------------------------
# compress
# --------------------------------------------------------------------------------------------


def cmd_compress(args: argparse.Namespace) -> Any:
    from ._compress import compression_sweep

    run = Path(args.run)
    model, variables, config = _load_run(run)
    data = config["result"]["data"] if args.data is None else args.data
    splits = _load_images(
        data, root=args.data_root, seed=config["result"]["seed"], limit=None, eval_limit=args.limit
    )
    split = getattr(splits, args.split)
    out = Path(args.out) if args.out else run / "compress"
    table = compression_sweep(
        model,
        variables,
        split,
        bases=_strs(args.bases),
        Ks=_ints(args.Ks),
        n_steps_list=_ints(args.n_steps_list),
        methods=_strs(args.methods),
        out_dir=out,
        progress=not args.no_progress,
    )
    print(f"compression sweep on the {args.split} split written to {out}")
    return table


# --------------------------------------------------------------------------------------------
# tag
# --------------------------------------------------------------------------------------------


def cmd_tag(args: argparse.Namespace) -> dict:
    from . import data
    from ._compress import compress
    from ._models import ODETransformerTagger
    from ._train import accuracy, fit

    if args.conllu:
        if len(args.conllu) != 3:
            raise SystemExit("--conllu takes three paths: train, dev and test CoNLL-U files.")
        ud = data.load_ud(*args.conllu)
        train, dev, test = ud.train, ud.validation, ud.test
        vocab_size, num_tags = len(ud.vocab), len(ud.tags)
    else:
        train, dev, test, vocab_size, num_tags = _synthetic_tagging(args.sentences, seed=args.seed)
    model = ODETransformerTagger(
        vocab_size=vocab_size,
        num_tags=num_tags,
        width=args.width,
        n_basis=args.K,
        n_steps=args.n_steps,
        basis=args.basis,
        method=args.method,
    )
    out = Path(args.out)
    variables, history = fit(
        model,
        train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        validation=dev,
        recipe="adam_rsqrt",
        warmup_steps=args.warmup,
        refine_at=_ints(args.refine_at),
        checkpoint_dir=out / "checkpoints",
        progress=not args.no_progress,
        log_path=out / "log.jsonl",
    )
    model = history["model"]
    rows = []
    from ._bases import basis_by_name

    K_full = _block_K(variables)
    src = basis_by_name(model.basis, K_full)
    for K in [K_full] + [k for k in _ints(args.compress_to) if k != K_full]:
        vs = (
            variables
            if K == K_full
            else compress(variables, basis_by_name(model.basis, K), src_basis=src)
        )
        acc = accuracy(model, vs, test[0], test[1], lengths=test[2])
        rows.append({"K": K, "n_steps": model.n_steps or K_full, "test_accuracy": acc})
    result = {"rows": rows, "val_accuracy": history["val_accuracy"], "seed": args.seed}
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(_markdown_table(rows, ["K", "n_steps", "test_accuracy"]))
    return result


def _synthetic_tagging(n_sentences: int, *, seed: int):
    from . import data

    out = data.synthetic_tagging(n_sentences, seed=seed)
    tokens, tags, lengths, vocab_size, num_tags = out
    n = len(tokens)
    n_val = n_test = max(1, n // 10)
    cut = n - n_val - n_test

    def part(a, b):
        return (tokens[a:b], tags[a:b], lengths[a:b])

    return part(0, cut), part(cut, cut + n_val), part(cut + n_val, n), vocab_size, num_tags


def _block_K(variables) -> int:
    """K of the ODE blocks: the leading axis of the leaves under ``basis_coeffs``."""
    import jax

    for path, leaf in jax.tree_util.tree_leaves_with_path(variables["params"]):
        if any(getattr(p, "key", None) == "basis_coeffs" for p in path):
            return int(leaf.shape[0])
    raise ValueError("no ODE block (no 'basis_coeffs' entry) in these variables.")


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> dict:
    return demo(
        out_dir=args.out,
        epochs=args.epochs,
        width=args.width,
        seed=args.seed,
        limit=args.limit,
        progress=not args.no_progress,
        n_steps_list=_ints(args.n_steps_list) or None,
    )


def demo(
    *,
    out_dir: str = "runs/basis_demo",
    epochs: int = 8,
    width: int = 8,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    refine_at: tuple[int, ...] | None = None,
    batch_size: int = 64,
    learning_rate: float = 0.1,
    n_steps_list: list[int] | None = None,
) -> dict:
    """Digits ConvODENet with refinement K = n_steps = 1 -> 2 -> 4 -> 8, then compression.

    Trains from K = n_steps = 1, doubling both at ``refine_at`` (default: every quarter of the
    epochs, so 8 epochs give 1 -> 2 -> 4 -> 8), with the SGD recipe; the validation split is
    evaluated every epoch (the test split only at the end). The final model (K) is compressed
    to K/2 and K/4 by L2 projection without retraining and every (K, n_steps) pair is evaluated
    on the test split with its latency. Writes ``sweep.md``, ``sweep.json``, ``history.json``,
    ``summary.json``, ``accuracy_vs_K.png``, ``accuracy_vs_n_steps.png``, ``latency.png`` and
    ``training.png`` to ``out_dir``.

    Returns:
        ``{"summary", "rows", "model", "variables", "splits"}``.
    """
    from ._compress import compression_sweep
    from ._models import ConvODENet, count_params
    from ._train import fit

    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = _load_images("digits", root=None, seed=seed, limit=limit)
    if refine_at is None:
        q = max(epochs // 4, 1)
        refine_at = tuple(e for e in (q, 2 * q, 3 * q) if e < epochs)
    model = ConvODENet(num_classes=10, width=width, n_basis=1, n_steps=1)
    variables, history = fit(
        model,
        splits.train,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        validation=splits.validation,
        recipe="sgd",
        refine_at=refine_at,
        lr_drops=(max(epochs - 1, 1),),
        progress=progress,
        log_path=out / "log.jsonl",
    )
    model = history["model"]
    K = _block_K(variables)
    Ks = sorted({max(K // 2, 1), max(K // 4, 1)} - {K}, reverse=True)
    if n_steps_list is None:
        n_steps_list = sorted({max(K // 4, 1), max(K // 2, 1), K})
    t_train = time.perf_counter() - t_start
    rows = compression_sweep(
        model,
        variables,
        splits.test,
        bases=[model.basis],
        Ks=Ks,
        n_steps_list=n_steps_list,
        methods=["euler"],
        out_dir=out,
        progress=progress,
    )
    hist = {k: v for k, v in history.items() if k != "model"}
    (out / "history.json").write_text(json.dumps(hist, indent=2))
    _demo_plots(rows, hist, out)
    summary = {
        "final_K": K,
        "final_n_steps": model.n_steps,
        "refine_at": list(refine_at),
        "params": count_params(variables["params"]),
        "train_seconds": t_train,
        "total_seconds": time.perf_counter() - t_start,
        "val_accuracy": history["val_accuracy"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print((out / "sweep.md").read_text())
    print(
        f"demo: K = n_steps = 1 -> {K} (refined at epochs {list(refine_at)}), trained in "
        f"{t_train:.0f} s, total {summary['total_seconds']:.0f} s; results in {out}/"
    )
    return {
        "summary": summary,
        "rows": rows,
        "model": model,
        "variables": variables,
        "splits": splits,
    }


def _demo_plots(rows: list[dict], history: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (K, compressed), group in _group(rows, ("K", "compressed")).items():
        group = sorted(group, key=lambda r: r["n_steps"])
        label = f"K={K}" + (" (compressed)" if compressed else " (trained)")
        ax.plot([r["n_steps"] for r in group], [1e3 * r["latency_s"] for r in group], "o-",
                label=label)  # fmt: skip
    ax.set_xlabel("n_steps")
    ax.set_ylabel("latency per batch (ms)")
    ax.set_title("inference latency (jit, median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(history["epoch"], history["train_loss"], "o-", label="train loss")
    if history.get("val_accuracy"):
        ax.plot(history["epoch"], history["val_accuracy"], "s-", label="validation accuracy")
    for e, K, prev in zip(history["epoch"][1:], history["K"][1:], history["K"][:-1]):
        if K != prev:
            ax.axvline(e - 0.5, color="grey", ls=":")
            ax.text(e - 0.45, ax.get_ylim()[1] * 0.95, f"K={K}", fontsize=8, va="top")
    ax.set_xlabel("epoch")
    ax.set_title("training with refinement")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=120)
    plt.close(fig)


def _group(rows: list[dict], keys: tuple[str, ...]) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


# --------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m basis_ode",
        description="Basis-function ODE-Nets: train, compress without retraining, tag, demo.",
        epilog=__doc__.split("Full-size commands", 1)[1].join(["Full-size commands", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def solver(p: argparse.ArgumentParser, K: int, width: int) -> None:
        p.add_argument("--basis", default="piecewise_constant", help="basis family name")
        p.add_argument("--K", type=int, default=K, help="number of basis functions at the start")
        p.add_argument("--n-steps", type=int, default=None, help="ODE steps (default: K)")
        p.add_argument("--method", default="euler", help="euler, midpoint, rk4 or rk4_38")
        p.add_argument("--width", type=int, default=width)
        p.add_argument(
            "--refine-at", default="", help="epochs at which K and n_steps double, e.g. 20,40"
        )

    p = sub.add_parser("train", help="train a ConvODENet on images (SGD recipe)")
    p.add_argument("--data", default="digits", choices=["digits", "fashion_mnist", "cifar10"])
    p.add_argument("--data-root", default=None, help="dataset folder (cifar10, fashion_mnist)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--eval-limit", type=int, default=None, help="first N of validation and test")
    solver(p, K=4, width=16)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--lr-drops", default="", help="epochs where lr is multiplied by 0.1")
    p.add_argument("--augment", action="store_true", help="random crop (pad 4) + flip")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--out", default="runs/train")
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compress", help="project a trained run onto other bases/K and sweep")
    p.add_argument("--run", required=True, help="output folder of `train` (holds final.msgpack)")
    p.add_argument("--data", default=None, help="default: the run's data set")
    p.add_argument("--data-root", default=None)
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N examples only")
    p.add_argument("--split", default="test", choices=["validation", "test"])
    p.add_argument("--bases", default="piecewise_constant")
    p.add_argument("--Ks", default="8,4", help="target K values")
    p.add_argument("--n-steps-list", default="4,8", help="n_steps values at inference")
    p.add_argument("--methods", default="euler")
    p.add_argument("--out", default=None, help="default: RUN/compress")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("tag", help="ODE transformer tagger: synthetic task or UD CoNLL-U")
    p.add_argument("--conllu", nargs="*", default=None, help="train, dev, test CoNLL-U paths")
    p.add_argument("--sentences", type=int, default=2000, help="synthetic task size")
    solver(p, K=16, width=32)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100, help="warm-up steps (paper: 8000)")
    p.add_argument("--compress-to", default="8", help="K values to compress to after training")
    p.add_argument("--out", default="runs/tag")
    common(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("demo", help="digits: refinement 1->8, compression to K/2 and K/4")
    p.add_argument("--out", default="runs/basis_demo")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="first N training examples only")
    p.add_argument("--n-steps-list", default="", help="n_steps to evaluate (default K/4,K/2,K)")
    common(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> Any:
    """Entry point of ``python -m basis_ode`` (and the ``basis-ode`` script)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
