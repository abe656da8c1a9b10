"""Mean ± sample std over seeds of the robustness_s{0,1,2}.json files in a folder (README table).

Usage: python summarize.py FOLDER
"""

import json
import sys
from pathlib import Path

import numpy as np

COLUMNS = [
    ("clean", None, None),
    ("Gaussian σ=0.5", "gaussian", 0.5),
    ("Gaussian σ=0.6", "gaussian", 0.6),
    ("salt & pepper 0.1", "salt_pepper", 0.1),
    ("salt & pepper 0.2", "salt_pepper", 0.2),
]


def accuracy(run: dict, model: str, kind: str | None, level: float | None) -> float:
    if kind is None:
        return run["clean"][model]
    k = run["kinds"][kind]
    return k["accuracy"][model][k["levels"].index(level)]


def main(folder: str) -> None:
    runs = [json.loads((Path(folder) / f"robustness_s{s}.json").read_text()) for s in range(3)]
    print("| model | " + " | ".join(name for name, _, _ in COLUMNS) + " |")
    for model in runs[0]["models"]:
        cells = []
        for _, kind, level in COLUMNS:
            v = 100 * np.array([accuracy(r, model, kind, level) for r in runs])
            cells.append(f"{v.mean():.1f} ± {v.std(ddof=1):.1f}")
        print(f"| {model} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
