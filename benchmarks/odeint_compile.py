"""Benchmark: ``basis_ode.odeint`` called eagerly, as in a notebook loop, against a jitted call.

The solve (``dh/dt = tanh(theta(t) h)`` with ``theta(t) = sum_k phi_k(t) W_k``, ``Hat(4)``, a
32-unit state and batch 1, 16 RK4 steps) is timed in five ways, in one process:

- ``eager_first``: the first eager call ``odeint(field, h0, coeffs, Hat(4), n_steps=16,
  method=RK4)``: tracing and compilation included;
- ``eager_repeat``: the same call again, same field object, new array values: ``odeint`` keeps
  one ``jax.jit`` program per static part, so this is a lookup of the compiled program and a call;
- ``jitted``: ``jax.jit(lambda c, h: odeint(...))``, compiled once, then called (the reference
  a repeated eager call should be within a few times of);
- ``fresh_jit_closure``: a new ``jax.jit`` closure around the solve on every call, the pattern
  of the earlier ``odeint`` (every eager call recompiled);
- ``fresh_lambda_field``: a new ``lambda`` as the field on every call: the field is part of the
  compiled program's static key, so this recompiles too (pass the same function instead).

Each timing calls ``jax.block_until_ready`` on the result. Repeated rows report the median and
minimum over ``--repeats`` calls (``--slow-repeats`` for the recompiling rows). Writes
``benchmarks/results/odeint_compile.json`` and ``.md``::

    python -m benchmarks.odeint_compile
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import basis_ode as bo
from benchmarks._common import machine

RESULTS = Path(__file__).resolve().parent / "results"


def field(theta: Any, h: Any) -> Any:
    """``dh/dt = tanh(W(t) h)``: one matrix of the basis expansion per depth."""
    return jnp.tanh(theta["w"] @ h)


def _problem(key: Any, K: int, width: int) -> tuple[Any, Any]:
    kw, kh = jax.random.split(key)
    coeffs = {"w": jax.random.normal(kw, (K, width, width)) / np.sqrt(width)}
    return coeffs, jax.random.normal(kh, (width,))


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def _stats(samples: list[float]) -> dict[str, Any]:
    return {"median_s": float(np.median(samples)), "min_s": float(min(samples)), "runs_s": samples}


def run(*, K: int = 4, width: int = 32, n_steps: int = 16, repeats: int = 50,
        slow_repeats: int = 5) -> dict[str, Any]:  # fmt: skip
    """Time the five ways (module docstring); returns the results dict written to JSON."""
    basis, scheme = bo.Hat(K), bo.RK4
    keys = jax.random.split(jax.random.key(0), repeats + slow_repeats + 2)
    problems = [_problem(k, K, width) for k in keys]

    def eager(c, h, f=field):
        return bo.odeint(f, h, c, basis, n_steps=n_steps, method=scheme)

    rows: dict[str, dict[str, Any]] = {}
    c0, h0 = problems[0]
    rows["eager_first"] = _stats([_timed(lambda: eager(c0, h0))])
    rows["eager_repeat"] = _stats(
        [_timed(lambda p=p: eager(*p)) for p in problems[1 : repeats + 1]]
    )
    jitted = jax.jit(eager)
    first_jit = _timed(lambda: jitted(c0, h0))
    rows["jitted"] = _stats([_timed(lambda p=p: jitted(*p)) for p in problems[1 : repeats + 1]])
    rows["jitted"]["first_call_s"] = first_jit
    slow = problems[repeats + 1 : repeats + 1 + slow_repeats]
    rows["fresh_jit_closure"] = _stats(
        [_timed(lambda p=p: jax.jit(lambda c, h: eager(c, h))(*p)) for p in slow]
    )
    rows["fresh_lambda_field"] = _stats(
        [_timed(lambda p=p: eager(*p, f=lambda th, x: jnp.tanh(th["w"] @ x))) for p in slow]
    )
    # the eager result is the jitted one (same program, same numbers)
    diff = float(jnp.max(jnp.abs(eager(c0, h0) - jitted(c0, h0))))
    ratio = rows["eager_repeat"]["median_s"] / rows["jitted"]["median_s"]
    return {
        "problem": {
            "basis": repr(basis),
            "width": width,
            "batch": 1,
            "n_steps": n_steps,
            "scheme": bo.scheme_name(scheme),
            "field": "tanh(W(t) h)",
        },  # fmt: skip
        "repeats": repeats,
        "slow_repeats": slow_repeats,
        "rows": rows,
        "eager_repeat_over_jitted": ratio,
        "eager_first_over_repeat": rows["eager_first"]["median_s"]
        / rows["eager_repeat"]["median_s"],
        "max_abs_diff_eager_vs_jitted": diff,
        "machine": machine(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def markdown(res: dict[str, Any]) -> str:
    p, m = res["problem"], res["machine"]
    lines = [
        f"# odeint: eager calls against a jitted call ({res['date']})",
        "",
        "Command: `python -m benchmarks.odeint_compile` on "
        f"{m['backend']} ({m['cpu_count']} CPU cores, load average {m['load_average_1min']:.2f} "
        f"at the start), jax {m['jax']}.",
        "",
        f"Problem: `odeint(field, h0, coeffs, {p['basis']}, n_steps={p['n_steps']}, "
        f"method={p['scheme'].upper()})`, field `{p['field']}`, state of {p['width']} units, "
        f"batch {p['batch']}. Median and minimum of {res['repeats']} calls "
        f"({res['slow_repeats']} for the recompiling rows), new array values on every call.",
        "",
        "| call | median (ms) | min (ms) |",
        "|---|---|---|",
    ]
    names = {
        "eager_first": "eager, first call (trace + compile)",
        "eager_repeat": "eager, repeated (same field)",
        "jitted": "`jax.jit`-ed solve, repeated",
        "fresh_jit_closure": "new `jax.jit` closure per call (the earlier odeint)",
        "fresh_lambda_field": "eager, a new `lambda` field per call",
    }
    for key, label in names.items():
        r = res["rows"][key]
        lines.append(f"| {label} | {1e3 * r['median_s']:.3f} | {1e3 * r['min_s']:.3f} |")
    lines += [
        "",
        f"A repeated eager call takes {res['eager_repeat_over_jitted']:.2f}x the jitted call "
        f"(median); the first eager call {res['eager_first_over_repeat']:.0f}x a repeat. "
        f"Eager and jitted results agree to {res['max_abs_diff_eager_vs_jitted']:.1e}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=50, help="timed calls of the fast rows")
    p.add_argument("--slow-repeats", type=int, default=5, help="timed calls that recompile")
    p.add_argument("--out", default=str(RESULTS / "odeint_compile"),
                   help="output path without suffix (.json and .md are written)")  # fmt: skip
    a = p.parse_args(argv)
    res = run(repeats=a.repeats, slow_repeats=a.slow_repeats)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
