"""Compression of trained ConvODENets by projection and by interpolation, side by side.

For a trained model (a run folder of ``python -m basis_ode train``) and each target K: the
relative error of the projection (``basis_ode.compression_residual``, closed form: over the
parameters and the batch statistics, and over the parameters alone), the relative
L2(0, 1) error of theta(t) of both methods (trainable parameters of all ODE blocks, on a
512-point grid), and the accuracy of both at every n_steps
(``basis_ode.experiments.compression_sweep``) on the validation split (``--split test`` for
the test split). Writes ``study.json`` and ``study.md`` to ``--out``::

    python -m benchmarks.basis_compress_study --run runs/bfm_s0 --Ks 4,2 --n-steps-list 2,4,8 \\
        --out docs/results/basis_ode/fmnist_cpu_refined_large/s0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

import basis_ode as bo
from basis_ode.experiments import compression_sweep


def _grid_values(basis: bo.Basis, n: int = 512) -> np.ndarray:
    t = (np.arange(n) + 0.5) / n
    return np.asarray(jax.vmap(basis)(jax.numpy.asarray(t, jax.numpy.float32)), np.float64)


def _blocks(params: Any) -> list[Any]:
    out: list[Any] = []

    def walk(tree: Any) -> None:
        for k, v in tree.items():
            if k == "basis_coeffs":
                out.append(v)
            elif isinstance(v, dict):
                walk(v)

    walk(params)
    return out


def theta_error(variables: Any, compressed: Any, src: bo.Basis, dst: bo.Basis) -> float:
    """``sum ||theta(t) - theta_c(t)||^2 / sum ||theta(t)||^2`` over t on a grid and all block
    parameters (float64)."""
    Ps, Pd = _grid_values(src), _grid_values(dst)
    num = den = 0.0
    for a, b in zip(_blocks(variables["params"]), _blocks(compressed["params"])):
        for la, lb in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            ta = Ps @ np.asarray(la, np.float64).reshape(src.K, -1)
            tb = Pd @ np.asarray(lb, np.float64).reshape(dst.K, -1)
            num += float(np.sum((ta - tb) ** 2))
            den += float(np.sum(ta**2))
    return num / den


def study(model, variables, data, *, Ks, n_steps_list, out_dir, progress=False, split=None) -> dict:
    """Residuals, theta errors and accuracies of both compression methods (see module doc)."""
    src = bo.basis_of(variables)  # the expansions' own basis
    if src is None:
        raise ValueError("the variables hold no basis expansion (no ODE block).")
    out_dir = Path(out_dir)
    rows = []
    for K in Ks:
        dst = type(src)(K)
        r = bo.compression_residual(variables, dst)  # parameters and batch statistics
        r_params = bo.compression_residual(variables, dst, collections=("params",))
        row = {"K": K, "residual": r, "residual_params": r_params}
        for m in ("project", "interpolate"):
            row[f"theta_err_{m}"] = theta_error(
                variables, bo.compress(variables, dst, method=bo.compression_by_name(m)), src, dst
            )
        rows.append(row)
    sweeps = {}
    for m in ("project", "interpolate"):
        sweeps[m] = compression_sweep(
            model,
            variables,
            data,
            bases=[type(src)],
            Ks=list(Ks),
            n_steps_list=n_steps_list,
            out_dir=out_dir / m,
            compress_method=bo.compression_by_name(m),
            progress=progress,
            split=split,
        )
    for row in rows:
        for m, sweep in sweeps.items():
            for s in sweep:
                if s["compressed"] and s["K"] == row["K"]:
                    row[f"acc_{m}_n{s['n_steps']}"] = s["accuracy"]
    full = [s for s in sweeps["project"] if not s["compressed"]]
    res = {"src": repr(src), "split": split, "uncompressed": full, "rows": rows}
    (out_dir / "study.json").write_text(json.dumps(res, indent=1))
    (out_dir / "study.md").write_text(markdown(res, n_steps_list))
    return res


def markdown(res: dict, n_steps_list) -> str:
    where = f" on the {res['split']} split" if res.get("split") else ""
    lines = [
        f"Source {res['src']}; uncompressed accuracy{where} "
        + ", ".join(
            f"n_steps={s['n_steps']}: {100 * s['accuracy']:.2f} %" for s in res["uncompressed"]
        ),
        "",
        "| K | residual r | r (params only) | theta err project | theta err interpolate | "
        + " | ".join(f"acc proj / interp n={n}" for n in n_steps_list)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(n_steps_list),
    ]
    for r in res["rows"]:
        accs = " | ".join(
            f"{100 * r[f'acc_project_n{n}']:.2f} / {100 * r[f'acc_interpolate_n{n}']:.2f}"
            for n in n_steps_list
        )
        params_only = r.get("residual_params")
        lines.append(
            f"| {r['K']} | {r['residual']:.3g} | "
            f"{'-' if params_only is None else format(params_only, '.3g')} | "
            f"{r['theta_err_project']:.2e} | {r['theta_err_interpolate']:.2e} | {accs} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="output folder of `python -m basis_ode train`")
    p.add_argument("--Ks", default="4,2")
    p.add_argument("--n-steps-list", default="2,4,8")
    p.add_argument("--limit", type=int, default=None, help="first N examples of the split only")
    p.add_argument(
        "--split",
        default="validation",
        choices=("validation", "test"),
        help="split the accuracies are measured on (default validation)",
    )
    p.add_argument("--data-root", default=None, help="dataset folder (default: the loader's)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from basis_ode.experiments import load_run

    model, variables, splits = load_run(a.run, data_path=a.data_root, limit=a.limit)
    res = study(
        model,
        variables,
        getattr(splits, a.split),
        split=a.split,
        Ks=[int(k) for k in a.Ks.split(",")],
        n_steps_list=[int(n) for n in a.n_steps_list.split(",")],
        out_dir=a.out,
    )
    print(markdown(res, [int(n) for n in a.n_steps_list.split(",")]))


if __name__ == "__main__":
    main()
