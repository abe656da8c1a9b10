"""Golden outputs of the perturbations, attacks, robustness table and study, recorded from the
code before perturbations, norms and study rows became objects (branch i37b at cce118d, float64).

Run once, on that code: ``python tests/noisy_dyn/golden/make_perturbations_golden.py``. It writes
``perturbations.npz``: every random perturbation kind drawn with its study key
(``perturbation_key``), FGSM and PGD under both norms (generic and on a model, with lengths),
DeepFool, the accuracies of ``evaluate_members`` for every kind and level (deterministic and
stochastic inference), the rows, Markdown and per-member CSV of the study, and the JSON of a
``robustness_table`` over every kind. ``test_golden_perturbations.py`` checks that the current
code reproduces them, through the current spelling of the same calls.

The model's labels are its own clean predictions (member 0), so every perturbation changes the
counts and a different random draw would show in the accuracies.
"""

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import noisy_dyn as nd  # noqa: E402

HERE = Path(__file__).parent
N, T, I, H, C = 24, 6, 2, 8, 3
LEVELS = {
    "gaussian": (0.3, 1.0),
    "multiplicative": (0.6,),
    "salt_pepper": (0.1, 0.3),
    "fgsm": (0.2,),
    "pgd": (0.2, 0.5),
}
KEY = 21


def cfg(sigma: float = 0.0) -> nd.NoisyRNNConfig:
    return nd.NoisyRNNConfig(
        input_size=I, hidden_size=H, num_classes=C, dt=0.2, sigma_add=sigma, sigma_mult=sigma
    )


def member(seed: int) -> dict:
    """Random parameters large enough that the prediction depends on the input."""
    rng = np.random.default_rng(seed)
    shapes = {"M_A": (H, H), "M_W": (H, H), "U": (H, I), "b": (H,), "V": (C, H), "c": (C,)}
    scale = {"M_A": 0.02, "M_W": 0.3, "U": 2.0, "b": 0.1, "V": 2.0, "c": 0.1}
    return {k: jnp.asarray(scale[k] * rng.normal(size=v)) for k, v in shapes.items()}


def data():
    rng = np.random.default_rng(3)
    xs = jnp.asarray(rng.uniform(0, 1, size=(N, T, I)))
    lengths = jnp.asarray(rng.integers(2, T + 1, size=N), jnp.int32)
    ys = jnp.argmax(nd.apply(member(0), xs, cfg(), lengths=lengths), axis=-1).astype(jnp.int32)
    return xs, ys, lengths


def ensemble():
    cfgs = [cfg(0.0), cfg(0.2)]
    seeds = (0, 1)
    members = [member(10 * i + s) for i in range(len(cfgs)) for s in seeds]
    members[0] = member(0)
    return jax.tree.map(lambda *p: jnp.stack(p), *members), cfgs, seeds


def attack_outputs() -> dict:
    xs, ys, lengths = data()
    key = jax.random.key(KEY)
    out = {}
    for kind in ("gaussian", "multiplicative", "salt_pepper"):
        for level in LEVELS[kind]:
            k = nd.study.perturbation_key(key, kind, level)
            out[f"perturb/{kind}/{level}"] = nd.attacks.perturb(xs, kind, level, key=k)
            out[f"perturb_lengths/{kind}/{level}"] = nd.attacks.perturb(
                xs, kind, level, key=k, lengths=lengths
            )
    p, c = member(0), cfg()
    out["fgsm"] = nd.attacks.fgsm(p, xs, ys, c, 0.2, lengths=lengths)
    for norm in ("linf", "l2"):
        out[f"pgd/{norm}"] = nd.attacks.pgd(
            p, xs, ys, c, 0.5, steps=4, step_size=0.2, norm=norm, key=jax.random.key(4),
            lengths=lengths,
        )  # fmt: skip
        out[f"pgd_nostart/{norm}"] = nd.attacks.pgd(
            p, xs, ys, c, 0.5, steps=3, step_size=0.3, norm=norm
        )
        fn = lambda x: nd.apply(p, x, c)  # noqa: E731
        out[f"pgd_fn/{norm}"] = nd.attacks.pgd_fn(
            fn, xs, ys, 0.4, steps=3, step_size=0.2, norm=norm, key=jax.random.key(5)
        )
    out["fgsm_fn"] = nd.attacks.fgsm_fn(lambda x: nd.apply(p, x, c), xs, ys, 0.3)
    out["deepfool"] = nd.attacks.deepfool(p, xs, c, max_iter=5, lengths=lengths)
    return {k: np.asarray(v) for k, v in out.items()}


def study_outputs() -> dict:
    xs, ys, lengths = data()
    params, cfgs, seeds = ensemble()
    from trainkit import Sequences

    test = Sequences(np.asarray(xs), np.asarray(ys), np.asarray(lengths))
    key = jax.random.key(KEY)
    out = {}
    for draws in (0, 2):
        acc = nd.study.evaluate_members(
            params, cfgs, test, key=key, perturbations=LEVELS, batch_size=10, pgd_steps=3,
            inference_draws=draws,
        )  # fmt: skip
        for name, a in acc.items():
            out[f"accuracy/{draws}/" + "/".join(str(x) for x in name)] = np.asarray(a)
        rows = nd.study.study_rows(acc, cfgs, seeds, n_boot=200, n_perm=200)
        out[f"rows/{draws}"] = np.asarray(json.dumps([dict(r) for r in rows]))
        out[f"markdown/{draws}"] = np.asarray(nd.study.study_markdown(rows))
        out[f"csv/{draws}"] = np.asarray(nd.study.accuracies_csv(acc, cfgs, list(seeds), N))
        out[f"verdicts/{draws}"] = np.asarray(json.dumps(nd.study.study_verdicts(rows)))
    return out


def robustness_outputs() -> dict:
    xs, ys, lengths = data()
    from trainkit import Sequences

    test = Sequences(np.asarray(xs), np.asarray(ys), np.asarray(lengths))
    models = {"a": (member(0), cfg()), "b": (member(7), cfg(0.2))}
    perturbations = dict(LEVELS) | {"deepfool": ()}
    result = nd.attacks.robustness_table(
        models, test, perturbations, key=jax.random.key(KEY), batch_size=10, pgd_steps=3,
        deepfool_max_iter=5, progress=False,
    )  # fmt: skip
    return {"robustness": np.asarray(json.dumps(result))}


STORED = ("study_digits", "study_digits_inference_draws/ito", "study_fsdd_reference")
"""Stored studies (docs/results/noisy_dyn/) whose tables must regenerate as they did."""


def stored_outputs() -> dict:
    """The Markdown, verdicts and split of stored studies, regenerated from their study.json."""
    root = HERE.parents[2] / "docs" / "results" / "noisy_dyn"
    out = {}
    for name in STORED:
        rows = json.loads((root / name / "study.json").read_text())
        text = nd.study.study_markdown(rows) + "\n".join(nd.study.study_verdicts(rows))
        out[f"stored/{name}"] = np.asarray(text + nd.study.study_split(rows))
    return out


def main() -> None:
    out = attack_outputs() | study_outputs() | robustness_outputs() | stored_outputs()
    np.savez_compressed(HERE / "perturbations.npz", **out)
    print(f"wrote {len(out)} arrays to {HERE / 'perturbations.npz'}")


if __name__ == "__main__":
    main()
