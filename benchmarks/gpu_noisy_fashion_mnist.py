"""Fashion-MNIST 784-step pixel sequences: NRNN (reference form, the paper's small-noise
setting, docs/noisy_rnn.md) vs Lipschitz RNN, H = 128, batch 128, lr from the presets, epochs
chosen to fit a time budget.

Run on a GPU machine (writes to $OUT, reads the Debian package's IDX files from $FMNIST_ROOT):

    OUT=runs/fmnist_gpu FMNIST_ROOT=/usr/share/datasets/fashion-mnist \
        python benchmarks/gpu_noisy_fashion_mnist.py 200   # seconds of training in all
"""

import json
import os
import sys
import time

import jax

import noisy_dyn
from noisy_dyn import data
from noisy_dyn._robustness import robustness_table, to_markdown
from noisy_dyn.attacks import perturbations_from_levels

out = os.environ["OUT"]
budget = float(sys.argv[1])  # seconds of training for all models together
t0 = time.time()
print("devices", jax.devices(), "jax", jax.__version__, flush=True)
s = data.load_fashion_mnist(root=os.environ.get("FMNIST_ROOT", "/usr/share/datasets/fashion-mnist"))
print("loaded", [a[0].shape for a in s], round(time.time() - t0, 1), "s", flush=True)
names = ["nrnn_reference", "lipschitz"]
cfgs = {n: noisy_dyn.preset(n, input_size=1, num_classes=10) for n in names}
lrs = {n: noisy_dyn.preset_learning_rate(n) for n in names}
xs, ys = s.train
spe = len(xs) // 128
# probe: 8 steps after compilation
step_t = {}
for n in names:
    kw = dict(epochs=1, batch_size=128, learning_rate=lrs[n], progress=False)
    noisy_dyn.fit(cfgs[n], (xs[:1024], ys[:1024]), **kw)
    t = time.time()
    noisy_dyn.fit(cfgs[n], (xs[:1024], ys[:1024]), **kw)
    step_t[n] = (time.time() - t) / 8
print("step seconds", step_t, flush=True)
per_model = budget / len(names)
epochs = {n: int(max(1, min(20, per_model // (step_t[n] * spe * 1.15)))) for n in names}
epochs = {n: min(epochs.values()) for n in names}  # same epochs for both
print("epochs", epochs, flush=True)
models, summary = {}, {"step_seconds": step_t, "epochs": epochs, "train": len(xs)}
for n in names:
    t = time.time()
    _, p, hist = noisy_dyn.fit(
        cfgs[n],
        s.train,
        epochs=epochs[n],
        batch_size=128,
        learning_rate=lrs[n],
        validation=s.validation,
        progress=False,
    )
    acc = noisy_dyn.accuracy(p, *s.test, cfgs[n])
    summary[n] = {"test_accuracy": acc, "train_seconds": time.time() - t, "history": hist}
    print(n, "test", acc, "seconds", round(time.time() - t, 1), flush=True)
    models[n] = (p, cfgs[n])
    noisy_dyn.save_model(os.path.join(out, f"{n}.npz"), p, cfgs[n])
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
sub = (s.test[0][:2000], s.test[1][:2000])
pert = {
    "gaussian": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "salt_pepper": (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
    "multiplicative": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "fgsm": (0.005, 0.01, 0.02, 0.05, 0.1),
}
t = time.time()
res = robustness_table(
    models,
    sub,
    perturbations_from_levels(pert),
    key=jax.random.key(0),
    out_dir=out,
    progress=False,
    batch_size=1000,
)
print(to_markdown(res))
print("robustness seconds", round(time.time() - t, 1), "total", round(time.time() - t0, 1))
