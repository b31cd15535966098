"""Farzi's meta-gradient: peak memory and time of one outer step, reverse-mode Adam against autodiff through the unrolled loop.

Each (method, T) runs in a fresh process, so that its peak resident memory (ru_maxrss) is its own; the
memory reported is the peak above the process's memory just before the step (after a T = 1 warm-up of both methods), and, beside it, the bytes that
autograd holds for the backward passes (datasum.farzi.autograd_memory). Targets: at T = 100 the unrolled
loop needs >= 10x the memory of reverse mode, and reverse mode takes <= 2.5x its time.
Reverse mode runs along exact inner states (meta_gradient's default: a checkpoint every ceil(sqrt(T)) steps, each
segment replayed forward); the bytes of those states are counted with autograd's. Rebuilding the states instead, by
undoing Adam step by step, drifts from the forward path on long loops: the relative error of reverse mode against
autodiff is printed for every T, with exact and with rebuilt states. Where the float32 meta-gradient with exact states
differs from autodiff's by more than 1 % (or is not finite), that T is measured again in float64 (both methods).

    python benchmarks/bench_farzi.py            # T = 10, 50, 100, 200
    python benchmarks/bench_farzi.py --tiny     # T = 2, 5, 10 on a smaller problem
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(spec: dict) -> dict:
    "One outer step's meta-gradient in this process: seconds, peak RSS above the start (MiB), autograd's peak (MiB)."
    import torch
    from datasum.config import rng, torch_session
    from datasum.farzi import autograd_memory, make_learner, meta_gradient, real_windows, summary_distributions
    torch.set_num_threads(spec["threads"])
    V, n, length = spec["vocabulary"], spec["sequences"], spec["length"]
    dtype = getattr(torch, spec.get("dtype", "float32"))
    learner = make_learner("sasrec", V, length, dim=spec["dim"], seed=0, dtype=dtype)
    with torch_session(0):
        D = summary_distributions(torch.randn(n, length, 8, dtype=dtype), torch.randn(8, V, dtype=dtype))
    inputs, targets = real_windows([rng(k).integers(0, V, length + 5) for k in range(spec["real_batch"])], length)
    w0 = learner.flat()
    for method in ("reverse", "unrolled"): meta_gradient(learner, w0, D, 0.01, 1, inputs, targets, method)  # warm-up: first-call costs of both
    if spec["method"] == "compare":   # accuracy only: reverse mode (with and without checkpoints) against autodiff, same problem
        want = meta_gradient(learner, w0, D, 0.01, spec["T"], inputs, targets, "unrolled").data
        def error(every: int) -> float:
            got = meta_gradient(learner, w0, D, 0.01, spec["T"], inputs, targets, "reverse", checkpoint_every=every).data
            return float((got - want).abs().max() / want.abs().max()) if torch.isfinite(got).all() else float("inf")
        return {"relative_error": error(None), "rebuilt": error(0)}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with autograd_memory() as held:
        result = meta_gradient(learner, w0, D, 0.01, spec["T"], inputs, targets, spec["method"])
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "rss_mib": (after - before) / 1024, "autograd_mib": (held["peak"] + result.state_bytes) / 2 ** 20,
            "state_mib": result.state_bytes / 2 ** 20, "finite": bool(torch.isfinite(result.data).all())}


def main(tiny: bool = False, threads: int = 1) -> None:
    "Run every (method, T) in its own process and print the table and the two ratios."
    steps = (2, 5, 10) if tiny else (10, 50, 100, 200)
    problem = (dict(vocabulary=100, sequences=4, length=10, dim=16, real_batch=16) if tiny
               else dict(vocabulary=1000, sequences=10, length=20, dim=32, real_batch=64))
    print(f"problem: {problem}, threads {threads}")
    print(f"{'T':>5} {'method':>9} {'dtype':>8} {'s/step':>8} {'RSS MiB':>9} {'held MiB':>9} {'of which states':>16}  meta-gradient")
    results, wide = {}, {}
    def measure(T, method, dtype):
        spec = problem | {"T": T, "method": method, "threads": threads, "dtype": dtype}
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{T:>5} {method:>9} {dtype:>8} {r['seconds']:>8.2f} {r['rss_mib']:>9.1f} {r['autograd_mib']:>9.1f} {r['state_mib']:>16.1f}  "
              f"{'finite' if r['finite'] else 'NOT FINITE'}", flush=True)
        return r
    def accuracy(T, dtype):
        spec = problem | {"T": T, "method": "compare", "threads": threads, "dtype": dtype}
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    errors = {}
    for T in steps:
        for method in ("reverse", "unrolled"): results[T, method] = measure(T, method, "float32")
        errors[T, "float32"] = accuracy(T, "float32")
        if not errors[T, "float32"]["relative_error"] < 1e-2:   # reversing Adam divides the first moment by beta1 every step: float32 runs out
            for method in ("reverse", "unrolled"): wide[T, method] = measure(T, method, "float64")
            errors[T, "float64"] = accuracy(T, "float64")
    print("\nreverse mode against autodiff (max |difference| / max |autodiff| of the gradient with respect to the data):")
    for (T, dtype), error in errors.items():
        print(f"T = {T:>3} ({dtype}): {error['relative_error']:.1e} with exact states, {error['rebuilt']:.1e} with rebuilt ones")
    print("\nratios (unrolled / reverse): memory (RSS, held) and time (reverse / unrolled)")
    for T, dtype in [(T, "float32") for T in steps] + [(T, "float64") for T in steps if (T, "reverse") in wide]:
        rev, unr = (results if dtype == "float32" else wide)[T, "reverse"], (results if dtype == "float32" else wide)[T, "unrolled"]
        print(f"T = {T:>3} ({dtype}): memory {unr['rss_mib'] / max(rev['rss_mib'], 1e-3):6.1f}x (RSS), "
              f"{unr['autograd_mib'] / rev['autograd_mib']:6.1f}x (held); time {rev['seconds'] / unr['seconds']:4.2f}x")
    if not tiny:
        rev, unr = results[100, "reverse"], results[100, "unrolled"]
        memory, slower = unr["rss_mib"] / max(rev["rss_mib"], 1e-3), rev["seconds"] / unr["seconds"]
        print(f"\ntargets at T = 100: memory ratio {memory:.1f}x (>= 10x: {'met' if memory >= 10 else 'MISSED'}), "
              f"time ratio {slower:.2f}x (<= 2.5x: {'met' if slower <= 2.5 else 'MISSED'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="T = 2, 5, 10 on a small problem (a quick check)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each measured process")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child: print(json.dumps(child(json.loads(args.child))))
    else: main(args.tiny, args.threads)
