"""A tiny task for the engine's contract tests: noisy softmax regression with momentum SGD.

Independent of both packages; a step draws noise from its key (so key handling is exercised),
keeps a momentum buffer (optimizer state) and a running mean of the inputs (mutable state).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from trainkit import evaluate_padded


@dataclasses.dataclass(frozen=True)
class ToyStep:
    noise: float = 0.1
    unroll: int = 0  # > 0: a chain of that many unrolled ops, to make XLA compile for long

    def __call__(self, state, batch, key, step, hyper):
        xs, ys = batch
        p = state["params"]

        def loss_fn(p):
            logits = xs @ p["w"] + p["b"]
            logits = logits + self.noise * jax.random.normal(key, logits.shape, logits.dtype)
            logp = jax.nn.log_softmax(logits)
            ce = -jnp.take_along_axis(logp, ys[:, None], axis=1)[:, 0]
            return jnp.mean(ce), logits

        (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        if self.unroll:  # adds exactly 0: the chain is finite (XLA cannot know that)
            loss = loss + jnp.where(jnp.isfinite(_chain(p["w"], self.unroll)), 0.0, jnp.nan)
        finite = jnp.isfinite(loss)
        for leaf in jax.tree.leaves(g):
            finite &= jnp.all(jnp.isfinite(leaf))
        mom = jax.tree.map(lambda m, gi: 0.9 * m + gi, state["opt_state"], g)
        new_p = jax.tree.map(lambda w, m: w - hyper["lr"] * m, p, mom)
        mean = 0.9 * state["model_state"]["mean"] + 0.1 * jnp.mean(xs, axis=0)
        n = jnp.asarray(ys.shape[0], loss.dtype)
        metrics = {
            "loss_sum": loss * n,
            "correct": jnp.sum(jnp.argmax(logits, -1) == ys).astype(loss.dtype),
            "count": n,
            "finite": finite,
        }
        return {"params": new_p, "opt_state": mom, "model_state": {"mean": mean}}, metrics


def _chain(w, n):
    h = jax.lax.stop_gradient(w[:, :3])
    for i in range(n):
        h = jnp.tanh(h * (1.0 + i * 1e-4)) @ jnp.eye(3, dtype=h.dtype)
    return jnp.sum(h)


@jax.jit
def _eval_fn(params, batch, weight):
    xs, ys = batch
    hit = (jnp.argmax(xs @ params["w"] + params["b"], -1) == ys).astype(weight.dtype)
    return {"correct": jnp.sum(hit * weight)}


@dataclasses.dataclass(frozen=True, eq=False)
class ToyTask:
    n_in: int = 4
    n_cls: int = 3
    lr: float = 0.1
    validation: tuple | None = None
    package: str = "toy"
    unroll: int = 0  # ToyStep.unroll (not part of the fingerprint: it changes no number)

    @property
    def config(self):
        return {"n_in": self.n_in, "n_cls": self.n_cls}

    @property
    def optimizer(self):
        return {"lr": self.lr}

    def init(self, key, meta):
        w = 0.1 * jax.random.normal(key, (self.n_in, self.n_cls), jnp.float32)
        params = {"w": w, "b": jnp.zeros(self.n_cls, jnp.float32)}
        zeros = jax.tree.map(jnp.zeros_like, params)
        return {"params": params, "opt_state": zeros,
                "model_state": {"mean": jnp.zeros(self.n_in, jnp.float32)}}  # fmt: skip

    def template(self, meta):
        return jax.eval_shape(lambda: self.init(jax.random.key(0), meta))

    def step_fn(self, meta):
        return ToyStep(unroll=self.unroll)

    def hyper(self, meta):
        return {"lr": np.float32(self.lr)}

    def epoch_start(self, epoch, state, meta):
        return state, meta

    def evaluate(self, state, meta):
        if self.validation is None:
            return {}
        fn = lambda b, w: _eval_fn(state["params"], b, w)  # noqa: E731
        out = evaluate_padded(fn, self.validation, 7)
        return {"val_accuracy": float(out["correct"]) / len(self.validation[0])}

    def record(self, state, meta, step):
        return {"learning_rate": self.lr}

    def export(self, state, meta):
        return jax.tree.map(np.asarray, state["params"])

    def diverged_hint(self):
        return "Try a lower learning_rate."


def toy_data(n=96, n_in=4, n_cls=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_cls, n_in)) * 2
    ys = rng.integers(0, n_cls, n).astype(np.int32)
    xs = (centers[ys] + rng.normal(size=(n, n_in))).astype(np.float32)
    return xs, ys
