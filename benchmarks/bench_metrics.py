"""Vectorised ranking metrics against a plain per-user loop, on ML-1M (6,040 users x 3,706 items).

Both compute HR@10/100, nDCG@10/100 and PSP@10 for every test user of the random split, with
train + validation items masked, from the same score matrix: the popularity scores of 02_metrics's
experiment at seed 0 (item counts plus a little noise that breaks ties, on the split of that seed).
The loop is the textbook form (one argsort and a Python loop per user), as the papers' code does.
Printed: seconds of each, their ratio, and the peak memory of the vectorised path per user block.
"""
import math
import time
import tracemalloc

import numpy as np

from datasum.config import rng
from datasum.data import load, random_split
from datasum.metrics import inverse_propensity, mean_metrics, ranking_metrics


def loop_metrics(scores, targets, exclude, weights, ks=(10, 100)):
    "Per-user Python loop over the same definitions (the reference)."
    sums = {f"{m}@{k}": 0.0 for m in ("HR", "nDCG") for k in ks} | {"PSP@10": 0.0}
    users = 0
    for u in range(scores.shape[0]):
        truth = set(targets.indices[targets.indptr[u]:targets.indptr[u + 1]].tolist())
        if not truth: continue
        users += 1
        row = scores[u].copy()
        row[exclude.indices[exclude.indptr[u]:exclude.indptr[u + 1]]] = -np.inf
        ranked = np.argsort(-row)[:max(ks)].tolist()
        best_weights = sorted((weights[i] for i in truth), reverse=True)
        for k in ks:
            hits = [i in truth for i in ranked[:k]]
            n = min(len(truth), k)
            sums[f"HR@{k}"] += sum(hits) / n
            sums[f"nDCG@{k}"] += sum(h / math.log2(p + 2) for p, h in enumerate(hits)) / sum(1 / math.log2(p + 2) for p in range(n))
            if k == 10:
                sums["PSP@10"] += sum(weights[i] for i, h in zip(ranked[:k], hits) if h) / n / sum(best_weights[:n])
    return {name: value / users for name, value in sums.items()}


def main():
    seed = 0
    split = random_split(load("ml-1m"), seed=seed)
    targets, exclude = split.test.to_csr(), split.train.to_csr() + split.val.to_csr()
    weights = inverse_propensity(split.train.item_degrees(), len(split.train))
    scores = np.tile(split.train.item_degrees().astype(np.float64), (targets.shape[0], 1))
    scores += rng(seed, "popularity tie-break").random(scores.shape) * 1e-6
    print(f"ML-1M test block: {targets.shape[0]:,} users x {targets.shape[1]:,} items, {targets.nnz:,} test items")

    start = time.perf_counter()
    reference = loop_metrics(scores, targets, exclude, weights)
    loop_seconds = time.perf_counter() - start

    block = 1024
    tracemalloc.start()
    start = time.perf_counter()
    parts = [ranking_metrics(scores[b:b + block], targets[b:b + block], (10, 100), exclude[b:b + block], weights)
             for b in range(0, scores.shape[0], block)]
    ours = mean_metrics({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})
    vector_seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    for name, value in reference.items():
        assert abs(ours[name] - value) < 1e-9, (name, ours[name], value)
    print(f"per-user loop     {loop_seconds:7.2f} s")
    print(f"vectorised        {vector_seconds:7.2f} s   ({block} users a block, peak {peak / 2**20:.0f} MiB traced)")
    print(f"speed-up (loop / vectorised): {loop_seconds / vector_seconds:.1f}x   (same values to 1e-9)")


if __name__ == "__main__":
    main()
