"""Two-stage test: the comparisons picked in ../study_digits_plateau (Holm p <= 0.05, and, as an
exploratory pick, every interval excluding zero) re-tested on this study's fresh seeds (80-111)
and fresh perturbation draws, on its (sigma_add, sigma_mult) = (0.03, 0.02) rows."""

import json
from pathlib import Path

import noisy_dyn

here = Path(__file__).parent
discovery = json.loads((here.parent / "study_digits_plateau" / "study.json").read_text())
confirmation = json.loads((here / "study.json").read_text())
out = {sel: noisy_dyn.confirm_rows(discovery, confirmation, select=sel)
       for sel in ("holm", "interval")}  # fmt: skip
(here / "confirm.json").write_text(json.dumps(out, indent=1) + "\n")
for sel, rows in out.items():
    print(sel)
    for r in rows:
        print(
            f"  {r['perturbation']} {r['level']}: discovery {100 * r['discovery_diff_mean']:+.1f}, "
            f"confirmation {100 * r['diff_mean']:+.1f} [{100 * r['diff_ci_low']:+.1f}, "
            f"{100 * r['diff_ci_high']:+.1f}], Holm p {r['p_holm']:.2g}, confirmed {r['confirmed']}"
        )
