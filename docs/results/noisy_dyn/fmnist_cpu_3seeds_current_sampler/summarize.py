import json, sys, numpy as np
d = sys.argv[1]
runs = [json.load(open(f"{d}/robustness_s{s}.json" )) for s in range(3)]
cols = [("clean", None, None), ("Gaussian σ=0.5", "gaussian", 0.5), ("Gaussian σ=0.6", "gaussian", 0.6),
        ("salt & pepper 0.1", "salt_pepper", 0.1), ("salt & pepper 0.2", "salt_pepper", 0.2)]
for m in ("nrnn_ito", "lipschitz"):
    row = []
    for name, kind, lvl in cols:
        if kind is None:
            v = [r["clean"][m] for r in runs]
        else:
            v = [r["kinds"][kind]["accuracy"][m][r["kinds"][kind]["levels"].index(lvl)] for r in runs]
        v = 100 * np.array(v)
        row.append(f"{v.mean():.1f} ± {v.std(ddof=1):.1f}")
    print(m, " | ".join(row))
