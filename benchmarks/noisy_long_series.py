"""Does the Noisy RNN learn long real series? UEA/UCR ``.ts`` sets against simple baselines.

For each data set (a folder with ``NAME_TRAIN.ts`` and ``NAME_TEST.ts``, e.g. extracted from
the ``aeon`` wheel) and each setting, one ensemble (``noisy_dyn.fit_ensemble``) trains the
setting from ``--seeds`` seeds on the library's split (10 % of the training file validates,
seed 0), keeps each member's best validation epoch, and records its test accuracy. A setting
is what the command line does by default (``noisy_dyn.experiments``: inputs standardised with
the training split's statistics, batch size and epochs from the training set's size, ``dt`` the
preset's x 784 / T, learning rate 1e-2) with the named changes:

- ``--dt D``: a fixed step;
- ``downsample F``: every series averaged over windows of F steps first
  (``noisy_dyn.data.downsample``), so T becomes T / F;
- ``gru``: the GRU preset (no step); ``gru, downsample F`` on the shortened series;
- ``before``: the command line's defaults before they followed the data (batch 128, 100
  epochs, inputs as they are).

Baselines on the same files: logistic regression on the standardised raw series and 1-NN
(Euclidean), both fitted on the whole training file (they select nothing). Writes
``results.json`` and ``results.md`` to ``--out``::

    python -m benchmarks.noisy_long_series --data /tmp/ts/ACSF1 --out runs/long/ACSF1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import noisy_dyn
from noisy_dyn import experiments
from trainkit import bootstrap_mean, interval_legend, interval_text

SETTINGS = {
    "defaults": {},
    "dt 0.05": {"dt": 0.05},
    "dt 0.3": {"dt": 0.3},
    "gru": {"preset": "gru"},
    "downsample 10": {"downsample": 10},
    "downsample 10, dt 0.3": {"downsample": 10, "dt": 0.3},
    "gru, downsample 10": {"preset": "gru", "downsample": 10},
    "before: batch 128, 100 epochs, raw inputs": {
        "batch_size": 128,
        "epochs": 100,
        "standardize": "off",
    },
}


def baselines(folder: Path) -> dict[str, float]:
    """Logistic regression (standardised) and 1-NN on the whole training file, test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    s = noisy_dyn.data.load_ts(folder)
    flat = lambda d: np.asarray(d.inputs).reshape(d.size, -1)  # noqa: E731
    x = np.concatenate([flat(s.train), flat(s.validation)])  # the whole training file
    y = np.concatenate([s.train.labels, s.validation.labels])
    xt, yt = flat(s.test), np.asarray(s.test.labels)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x, y)
    nn = KNeighborsClassifier(1).fit(x, y)
    return {"logistic regression": float(logreg.score(xt, yt)), "1-NN": float(nn.score(xt, yt))}


def run_setting(folder: Path, name: str, spec: dict, seeds: list[int], hidden: int | None,
                epochs: int | None) -> dict:  # fmt: skip
    splits = experiments.load_data("ts", data_path=str(folder))
    input_size, num_classes = experiments.data_sizes(splits)
    splits, _ = experiments.prepare_inputs(splits, "ts", spec.get("standardize", "auto"))
    if spec.get("downsample"):
        splits = noisy_dyn.data.downsample(splits, spec["downsample"])
    n = len(splits.train[1])
    epochs, batch = experiments.training_defaults(
        n, "ts", epochs=spec.get("epochs", epochs), batch_size=spec.get("batch_size")
    )
    preset = spec.get("preset", "nrnn_ito")
    over = {} if hidden is None else {"hidden_size": hidden}
    cfg = noisy_dyn.preset(preset, input_size=input_size, num_classes=num_classes, **over)
    if "dt" in spec:
        cfg = cfg.replace(dt=spec["dt"])
    else:
        cfg = experiments.default_dt(cfg, splits.train[0].shape[1])
    lr = experiments.default_learning_rate(preset, "ts")
    t0 = time.perf_counter()
    head = {"setting": name, "preset": preset, "dt": cfg.dt if cfg.cell.stepped else None,
            "steps": int(splits.train[0].shape[1]), "epochs": epochs, "batch_size": batch,
            "hidden": cfg.hidden_size, "learning_rate": lr}  # fmt: skip
    try:
        _, params, history = noisy_dyn.fit_ensemble(
            [cfg], splits.train, seeds=seeds, epochs=epochs, batch_size=batch,
            learning_rate=lr, validation=splits.validation, progress=False,
            on_divergence="freeze",
        )  # fmt: skip
    except noisy_dyn.TrainingDiverged as err:  # every member: nothing left to evaluate
        return head | {"test_accuracy": None, "diverged": str(err).split(";")[0],
                       "seconds": time.perf_counter() - t0}  # fmt: skip
    acc = [noisy_dyn.accuracy({k: v[m] for k, v in params.items()}, splits.test, cfg)
           for m in range(len(seeds))]  # fmt: skip
    best = np.max(np.asarray(history["val_accuracy"]), axis=0).tolist()
    return head | {"test_accuracy": acc, "best_val_accuracy": best,
            "final_train_loss": np.asarray(history["train_loss"][-1]).tolist(),
            "diverged_step": history.get("diverged_step"),
            "seconds": time.perf_counter() - t0}  # fmt: skip


def markdown(name: str, rows: list[dict], base: dict[str, float]) -> str:
    n = min((len(r["test_accuracy"]) for r in rows if r["test_accuracy"]), default=0)
    lines = [f"{name}: test accuracy (%) over {n} seeds, mean [interval] and per seed.", "",
             "| setting | preset | T | dt | epochs x batch | test accuracy | per seed | time |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["test_accuracy"] is None:
            dt = "-" if r["dt"] is None else f"{r['dt']:.3g}"
            lines.append(f"| {r['setting']} | {r['preset']} | {r['steps']} | {dt} | "
                         f"{r['epochs']} x {r['batch_size']} | diverged: {r['diverged']} | - | "
                         f"{r['seconds']:.0f} s |")  # fmt: skip
            continue
        acc = np.asarray(r["test_accuracy"])
        iv = interval_text(*bootstrap_mean(acc), len(acc))
        dt = "-" if r["dt"] is None else f"{r['dt']:.3g}"
        seeds = ", ".join(f"{100 * a:.1f}" for a in acc)
        lines.append(f"| {r['setting']} | {r['preset']} | {r['steps']} | {dt} | "
                     f"{r['epochs']} x {r['batch_size']} | {iv} | {seeds} | "
                     f"{r['seconds']:.0f} s |")  # fmt: skip
    for k, v in base.items():
        lines.append(f"| baseline: {k} | - | - | - | - | {100 * v:.1f} | - | - |")
    legend = interval_legend(n)
    return "\n".join(lines) + ("\n\n" + legend if legend else "") + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with NAME_TRAIN.ts and NAME_TEST.ts")
    p.add_argument("--settings", default=";".join(SETTINGS), help="';'-separated names")
    p.add_argument("--downsample", type=int, default=10, help="F of the downsample settings")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--append", action="store_true", help="add to the rows of --out")
    a = p.parse_args(argv)
    folder, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = folder.name
    base = baselines(folder)
    print(f"{name} baselines: {base}", flush=True)
    rows = []
    if a.append and (out / "results.json").exists():
        rows = json.loads((out / "results.json").read_text())["rows"]
    for setting in a.settings.split(";"):
        spec = dict(SETTINGS[setting])
        if "downsample" in spec:
            spec["downsample"] = a.downsample
        label = setting.replace("10", str(a.downsample))
        rows.append(run_setting(folder, label, spec, list(range(a.seeds)), a.hidden, a.epochs))
        r = rows[-1]
        got = r["test_accuracy"]
        shown = r.get("diverged") if got is None else np.round(got, 3).tolist()
        print(f"{label}: {shown} ({r['seconds']:.0f} s)", flush=True)
        meta = {"machine": platform.processor() or platform.machine(),
                "date": time.strftime("%F"), "args": vars(a)}  # fmt: skip
        (out / "results.json").write_text(json.dumps(
            {"meta": meta, "baselines": base, "rows": rows}, indent=1))  # fmt: skip
        (out / "results.md").write_text(markdown(name, rows, base))
    print(markdown(name, rows, base))


if __name__ == "__main__":
    main()
