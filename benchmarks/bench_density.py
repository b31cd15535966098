"""Density sampling: a RACE sketch (1,000 rows x 20,000 counters) over 1,000,000 x 384 float32 embeddings on 2 cores.

Measured in one run, each configuration in its own process (so that its peak memory is its own):
* gemm: the projection product alone, X·W over every block of points (float32, the floor of one pass); the two passes
  of the sketch need it twice, so both ratios are printed;
* sketch: `datasum.density.scores` (pass one adds every point, pass two scores each), at 250,000 and 1,000,000 points;
* exact: `datasum.density.exact_density` on the first 20,000 points against the sketch of the same 20,000 points:
  the speed ratio and the Spearman correlation of the sketch's scores with the exact ones.
The embeddings are clustered unit vectors (1,000 random centres with Zipf-distributed sizes, noise of norm ~0.3) in a memory-mapped .npy file, read
block by block, so that peak memory is that of the block and the sketch: it is measured with tracemalloc (every numpy
allocation; the file's pages are not allocations) and must not grow with the number of points.
Targets: sketch ≤ 3x the projection floor; peak memory the same at 250k and 1M points.

    python benchmarks/bench_density.py            (or: make bench)
    python benchmarks/bench_density.py --tiny     (small sizes, seconds)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROWS, WIDTH, BANDWIDTH, DIM = 1000, 20000, 0.05, 384


def make_embeddings(path: str, n: int, block: int = 65536) -> None:
    "Clustered unit-length float32 embeddings, written block by block into a .npy file."
    import numpy as np
    generator = np.random.default_rng(0)
    centres = generator.standard_normal((1000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    popularity = 1 / np.arange(1, len(centres) + 1)                  # cluster sizes fall as 1/rank (Zipf)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, block):
        m = min(block, n - start)
        x = centres[generator.choice(len(centres), m, p=popularity / popularity.sum())] + generator.standard_normal((m, DIM)).astype(np.float32) * (0.3 / DIM ** 0.5)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()


def one(kind: str, path: str, n: int) -> dict:
    "Time one configuration in this process: seconds and tracemalloc peak (MiB) of the work, and its result."
    import tracemalloc
    import numpy as np
    from datasum.density import RaceSketch, exact_density, scores
    x = np.load(path, mmap_mode="r")[:n]
    tracemalloc.start()
    start = time.perf_counter()
    result = {}
    if kind == "gemm":
        sketch = RaceSketch(DIM, ROWS, WIDTH, BANDWIDTH, seed=0)
        for begin in range(0, n, sketch.chunk): np.asarray(x[begin:begin + sketch.chunk], np.float32) @ sketch._projection
    elif kind == "sketch":
        result["scores"] = scores(x, ROWS, WIDTH, BANDWIDTH, seed=0).tolist() if n <= 20000 else None
        if n > 20000: scores(x, ROWS, WIDTH, BANDWIDTH, seed=0)
    elif kind == "exact":
        result["scores"] = exact_density(np.asarray(x), BANDWIDTH).tolist()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    return {"kind": kind, "n": n, "seconds": seconds, "peak_mib": peak, **result}


def run(kind: str, path: str, n: int) -> dict:
    "Run `one` in a fresh process with 2 BLAS threads."
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    out = subprocess.run([sys.executable, __file__, "--one", kind, path, str(n)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    "Run every configuration and print the table and the ratios."
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--one"]:
        print(json.dumps(one(argv[1], argv[2], int(argv[3])))); return
    tiny = "--tiny" in argv
    big, medium, exact_n = (20_000, 5_000, 2_000) if tiny else (1_000_000, 250_000, 20_000)
    import numpy as np
    from scipy.stats import spearmanr
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "embeddings.npy")
        begin = time.perf_counter()
        make_embeddings(path, big)
        print(f"{big:,} x {DIM} float32 embeddings written in {time.perf_counter() - begin:.1f} s; sketch {ROWS} x {WIDTH}, bandwidth {BANDWIDTH}")
        results = [run("gemm", path, big), run("sketch", path, big), run("gemm", path, medium), run("sketch", path, medium),
                   run("exact", path, exact_n), run("sketch", path, exact_n)]
    print(f"{'configuration':<12} {'points':>10} {'seconds':>9} {'peak MiB':>9}")
    for r in results: print(f"{r['kind']:<12} {r['n']:>10,} {r['seconds']:>9.2f} {r['peak_mib']:>9.1f}")
    by = {(r["kind"], r["n"]): r for r in results}
    for n in (medium, big):
        sketch, gemm = by[("sketch", n)]["seconds"], by[("gemm", n)]["seconds"]
        print(f"{n:,} points: sketch + score = {sketch / gemm:.2f}x one projection pass, {sketch / (2 * gemm):.2f}x the two passes' "
              f"projections (target <= 3x the floor)")
    print(f"peak memory: {by[('sketch', medium)]['peak_mib']:.0f} MiB at {medium:,} points, {by[('sketch', big)]['peak_mib']:.0f} MiB at "
          f"{big:,} (the sketch's counters are {ROWS * WIDTH * 4 / 2 ** 20:.0f} MiB)")
    exact, sketch = by[("exact", exact_n)], by[("sketch", exact_n)]
    rho = spearmanr(np.array(exact["scores"]), np.array(sketch["scores"])).statistic
    print(f"exact density on {exact_n:,} points: {exact['seconds']:.2f} s, sketch {sketch['seconds']:.2f} s "
          f"({exact['seconds'] / sketch['seconds']:.1f}x faster); Spearman(sketch, exact) = {rho:.3f}")


if __name__ == "__main__":
    main()
