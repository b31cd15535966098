"""Distill-CF, one outer step at the paper's setting on ML-1M (500 fake users, γ = 200, all real users as targets).

Measured in one run, each configuration in its own process (so that its peak memory is its own):
* gemm: a bare float32 GEMM X·Sᵀ of the step's shape (all users × items × fake users), its rate in FLOP/s;
* ours: `datasum.distill_cf.train_step` (the custom VJP that draws every Gumbel sample again in the backward pass),
  at γ = 50 and γ = 200;
* plain: the same step (loss, gradient, Adam) with the sum of the γ samples written out (vectorised `gumbel_draw`),
  so that autodiff stores every sample;
* draws: the γ Gumbel-softmax samples alone, forward and backward as `gumbel_sum`'s custom VJP draws them (2·γ·m·I
  entries, each a hash, two logs and an exp), with a fixed cotangent through the clip at 1: the step's work that the floor leaves out;
* floor: the step's matrix products at the gemm rate: forward X·Sᵀ, S·Sᵀ, the Cholesky solve's I right-hand sides and
  the prediction K(X, S)·α; backward the gradients of each with respect to S (three U·I·m and three m²·I products),
  10·m·I·(U + m) FLOP in all (the m³/3 of the Cholesky factor is left out).
Peak memory is the process's peak resident set (`ru_maxrss`) less its resident set before the first step (the data,
JAX and the inputs), i.e. what compiling and running the step added. Targets: ours ≤ 3× the floor; ours' peak memory
does not grow with γ. Beside the target, ours is also printed against floor + draws: what is left is the glue (the
Cholesky factor, the softmaxes of the loss, Adam, and XLA's scheduling). The official code (noveens/distill_cf, on neural-tangents) is not timed here: neural-tangents
does not install beside this JAX.

    python benchmarks/bench_distill_cf.py            (or: make bench)
    python benchmarks/bench_distill_cf.py --tiny     (a small shape, to check that it runs)
"""
import json
import resource
import subprocess
import sys
import time

STEPS = 3            # timed steps per configuration, after one that compiles
BUDGET, TAU, LAM, PENALTY, LR = 500, 10.0, 1.0, 1e-3, 0.04
CONFIGS = [("gemm", 0), ("draws", 50), ("draws", 200), ("ours", 50), ("ours", 200), ("plain", 50), ("plain", 200)]


def rss_mib() -> float:
    "The process's resident set now (MiB), from /proc."
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def peak_mib() -> float:
    "The process's peak resident set so far (MiB; Linux reports KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def targets(tiny: bool):
    "The real users' binary training rows (all of them) and the budget."
    import numpy as np
    if tiny: return (np.random.default_rng(0).random((300, 200)) < 0.05).astype(np.float32), 20
    import datasum.distill_cf as dc
    from datasum.data import load, random_split
    rows = dc._binary_rows(random_split(load("ml-1m"), seed=42).train)
    return rows[np.flatnonzero(np.diff(rows.indptr) > 0)].toarray().astype(np.float32), BUDGET


def plain_step(gamma: int):
    "One step like `train_step`, with the γ samples written out (vectorised) instead of the custom VJP."
    import jax
    import jax.numpy as jnp
    import datasum.distill_cf as dc
    def loss(logits, x, words, mean_degree):
        support = jnp.minimum(jnp.sum(jax.vmap(lambda w: dc.gumbel_draw(logits, w, TAU))(words), axis=0), 1.0)
        prediction = dc.ridge_prediction(support, x, LAM)
        likelihood = -jnp.mean(jnp.sum(jax.nn.log_softmax(prediction, axis=-1) * x, axis=-1))
        return likelihood + PENALTY * jnp.mean(jnp.sum(support, axis=-1)) / mean_degree
    @jax.jit
    def step(logits, first, second, t, x, key, mean_degree):
        words = dc.draw_words(jax.random.fold_in(key, t), gamma)
        value, grad = jax.value_and_grad(loss)(logits, x, words, mean_degree)
        return (*dc.adam_update(logits, grad, first, second, t, LR), value)
    return step


def one(kind: str, gamma: int, tiny: bool) -> dict:
    "Time one configuration in this process; its seconds per step (or GEMM rate) and peak memory."
    import jax
    import jax.numpy as jnp
    import datasum.distill_cf as dc
    rows, budget = targets(tiny)
    users, items = rows.shape
    x, logits = jnp.asarray(rows), jnp.asarray(rows[:budget])
    zeros, key, mean_degree = jnp.zeros_like(logits), jax.random.key(0), float(rows.sum() / users)
    base = rss_mib()
    if kind == "gemm":
        product = jax.jit(lambda a, b: a @ b.T)
        product(x, logits).block_until_ready()
        start = time.perf_counter()
        for _ in range(5 * STEPS): product(x, logits).block_until_ready()
        return {"kind": kind, "flops_per_second": 2 * users * items * budget * 5 * STEPS / (time.perf_counter() - start)}
    if kind == "draws":
        words = dc.draw_words(key, gamma)
        cotangent = jax.random.normal(jax.random.key(1), logits.shape, logits.dtype)
        # through `gumbel_sum`'s clip at 1, whose mask needs the forward samples: without it, XLA drops the forward pass
        draws = jax.jit(jax.grad(lambda z: jnp.vdot(dc.gumbel_sum(z, words, TAU), cotangent)))
        draws(logits).block_until_ready()
        start = time.perf_counter()
        for _ in range(STEPS): draws(logits).block_until_ready()
        return {"kind": kind, "gamma": gamma, "seconds_per_step": (time.perf_counter() - start) / STEPS,
                "entries": 2 * gamma * budget * items, "added_mib": peak_mib() - base, "base_mib": base}
    if kind == "ours":
        step = lambda t, state: dc.train_step(*state, t, x, key, LAM, TAU, PENALTY, mean_degree, LR, gamma)
    else:
        plain = plain_step(gamma)
        step = lambda t, state: plain(*state, t, x, key, mean_degree)
    state = (logits, zeros, zeros)
    out = jax.block_until_ready(step(1, state))
    start = time.perf_counter()
    for t in range(2, STEPS + 2): out = jax.block_until_ready(step(t, out[:3]))
    return {"kind": kind, "gamma": gamma, "seconds_per_step": (time.perf_counter() - start) / STEPS,
            "flops": 10 * budget * items * (users + budget), "added_mib": peak_mib() - base, "base_mib": base,
            "users": users, "items": items, "budget": budget}


def main(tiny: bool = False) -> None:
    results = {}
    for kind, gamma in CONFIGS:
        command = [sys.executable, __file__, "--one", kind, str(gamma)] + (["--tiny"] if tiny else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{kind} γ={gamma}: failed ({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode})")
            continue
        results[kind, gamma] = json.loads(done.stdout.strip().splitlines()[-1])
    rate = results["gemm", 0]["flops_per_second"]
    shape = next(r for k, r in results.items() if k[0] in ("ours", "plain"))
    print(f"ML-1M{' (tiny stand-in)' if tiny else ''}: {shape['users']:,} real users (targets) × {shape['items']:,} items, "
          f"{shape['budget']} fake users; bare float32 GEMM: {rate / 1e9:.1f} GFLOP/s")
    floor = shape["flops"] / rate
    print(f"floor (matrix products, {shape['flops'] / 1e9:.0f} GFLOP): {floor:.2f} s/step")
    for (kind, gamma), r in results.items():
        if kind == "draws":
            print(f"draws γ={gamma:>3}: {r['seconds_per_step']:6.2f} s/step alone ({r['entries'] / 1e9:.2f} G entries, "
                  f"{r['seconds_per_step'] / r['entries'] * 1e9:.2f} ns each)")
    for (kind, gamma), r in results.items():
        if kind in ("gemm", "draws"): continue
        print(f"{kind:>5} γ={gamma:>3}: {r['seconds_per_step']:6.2f} s/step = {r['seconds_per_step'] / floor:5.1f}× the floor; "
              f"peak memory added by the step {r['added_mib']:7.0f} MiB (on {r['base_mib']:.0f} MiB before it)")
    ratio = lambda a, b, key: results[a][key] / results[b][key] if a in results and b in results else float("nan")
    ours = results.get(("ours", 200), {}).get("seconds_per_step", float("nan"))
    print(f"ours:  time γ=200 / floor = {ours / floor:.1f} (target ≤ 3); "
          f"peak memory γ=200 / γ=50 = {ratio(('ours', 200), ('ours', 50), 'added_mib'):.2f} (target ≈ 1)")
    draws = results.get(("draws", 200), {}).get("seconds_per_step", float("nan"))
    print(f"ours:  time γ=200 / (floor + draws γ=200) = {ours / (floor + draws):.2f} (the glue; draws alone = {draws / floor:.1f}× the floor)")
    print(f"plain: peak memory γ=200 / γ=50 = {ratio(('plain', 200), ('plain', 50), 'added_mib'):.2f}; "
          f"plain / ours at γ=200: time {ratio(('plain', 200), ('ours', 200), 'seconds_per_step'):.2f}, "
          f"peak memory {ratio(('plain', 200), ('ours', 200), 'added_mib'):.2f}")


if __name__ == "__main__":
    if "--one" in sys.argv:
        at = sys.argv.index("--one")
        print(json.dumps(one(sys.argv[at + 1], int(sys.argv[at + 2]), "--tiny" in sys.argv)))
    else:
        main("--tiny" in sys.argv)
