"""The command line, run in-process at tiny size; the robustness table on closed-form facts."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn.__main__ import main
from noisy_dyn._robustness import robustness_table


def test_demo_train_and_robustness_commands_write_parsable_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        ["demo", "--epochs", "1", "--hidden", "4", "--limit", "48", "--batch-size", "16",
         "--models", "lipschitz", "--kinds", "gaussian,salt_pepper,fgsm,deepfool",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    table = json.loads((out / "robustness.json").read_text())
    assert table["models"] == ["lipschitz"]
    assert set(table["kinds"]) == {"gaussian", "salt_pepper", "fgsm"}
    for kind, data in table["kinds"].items():
        for accs in data["accuracy"].values():
            assert len(accs) == len(noisy_dyn.DEFAULT_PERTURBATIONS[kind])
            assert all(0.0 <= a <= 1.0 for a in accs)
    assert set(table["deepfool"]) == {"lipschitz"}
    assert "| lipschitz |" in (out / "robustness.md").read_text()
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == 1 and set(summary["clean"]) == {"lipschitz"}
    # The saved model reproduces the reported clean accuracy (an independent re-evaluation).
    params, cfg = noisy_dyn.load_model(out / "models" / "lipschitz" / "model.npz")
    xs, ys = noisy_dyn.data.load_digits(seed=0).test
    acc = np.mean(np.asarray(noisy_dyn.apply(params, xs[:48], cfg)).argmax(-1) == ys[:48])
    assert table["clean"]["lipschitz"] == pytest.approx(acc, abs=1e-12)
    assert "Lipschitz RNN" in capsys.readouterr().out

    # `train` then `robustness` on its output folder (same model as the demo's: no recompiling).
    run = tmp_path / "run"
    dt = repr(0.03 * 784 / 64)
    argv = ["train", "--preset", "lipschitz", "--epochs", "1", "--hidden", "4", "--limit", "48",
            "--batch-size", "16", "--dt", dt, "--out", str(run), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((run / "result.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["learning_rate"] == 3e-3
    assert (run / "checkpoints" / "log.jsonl").read_text().count("\n") == 1
    rob = tmp_path / "rob"
    assert main(["robustness", "--checkpoints", str(run), "--kinds", "multiplicative",
                 "--limit", "48", "--out", str(rob), "--quiet"]) == 0  # fmt: skip
    assert json.loads((rob / "robustness.json").read_text())["models"] == ["run"]


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--preset", "not_a_preset"])
    with pytest.raises(SystemExit, match="epochs"):
        main(["train", "--preset", "lipschitz", "--epochs", "0"])
    with pytest.raises(SystemExit, match="no model file"):
        main(["robustness", "--checkpoints", str(tmp_path / "missing")])
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit, match="multiple of --cpu-devices"):
        main(["train", "--preset", "lipschitz", "--batch-size", "128", "--cpu-devices", "3",
              "--out", out])  # fmt: skip
    with pytest.raises(SystemExit, match="cpu-devices must be >= 1"):
        main(["train", "--preset", "lipschitz", "--cpu-devices", "0", "--out", out])
    jnp.zeros(1).block_until_ready()  # JAX is running: an explicit device count can't apply
    with pytest.raises(SystemExit, match="right after the imports"):
        main(["train", "--preset", "lipschitz", "--cpu-devices", "2", "--out", out])


def test_robustness_table_facts_on_a_linear_readout(key):
    # A model that ignores all but the last step and is linear in it: perturbation at level 0 is
    # the clean accuracy, and salt-and-pepper with p = 1 and low = high leaves only the bias.
    cfg = noisy_dyn.NoisyRNNConfig(input_size=1, hidden_size=2, num_classes=2, dt=1.0,
                                   alpha=0.0, init_std=0.0, gamma_w=0.0)  # fmt: skip
    params = {k: jnp.zeros(v.shape) for k, v in noisy_dyn.init_params(key, cfg).items()}
    params["U"] = jnp.array([[1.0], [-1.0]])
    params["V"] = jnp.eye(2)
    xs = np.concatenate([np.full((200, 1, 1), 0.5), np.full((200, 1, 1), -0.5)])
    ys = np.concatenate([np.zeros(200), np.ones(200)]).astype(np.int32)
    res = robustness_table(
        {"lin": (params, cfg)}, (xs, ys), {"gaussian": (0.0, 100.0), "fgsm": (0.0, 0.6)},
        key=key, progress=False,
    )  # fmt: skip
    assert res["clean"]["lin"] == 1.0
    assert res["kinds"]["gaussian"]["accuracy"]["lin"][0] == 1.0
    # Huge noise: each prediction is a fair coin, accuracy within 5 sigma of 0.5 (400 examples).
    assert abs(res["kinds"]["gaussian"]["accuracy"]["lin"][1] - 0.5) <= 5 * np.sqrt(0.25 / 400)
    # FGSM with eps 0.6 > |x| = 0.5 flips the sign of every input: accuracy 0 (closed form).
    assert res["kinds"]["fgsm"]["accuracy"]["lin"] == [1.0, 0.0]
    with pytest.raises(ValueError, match="Unknown perturbation"):
        robustness_table({"lin": (params, cfg)}, (xs, ys), {"blur": (1.0,)}, key=key)
    assert jax.tree_util.tree_structure(res)  # plain JSON-able dict
    json.dumps(res)
