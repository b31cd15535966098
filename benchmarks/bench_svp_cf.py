"""SVP-CF samplers on ML-1M (1M interactions), each beside the time to load ML-1M from the cache.

Printed: the load time (the reference), every non-proxy sampler's time and its ratio to the load
(target: below 1), PageRank against networkx's on the same graph, a random walk against a
networkx-graph walk of the same length, the proxies' seconds per epoch, and the wall time of the whole
`smoke` study with cold result caches (a temporary DATASUM_CACHE holding only the datasets) against the
2-minute smoke budget. Set DATASUM_BENCH_SKIP_STUDY=1 to leave the study out.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np

from datasum.config import cache_dir, settings
from datasum.data import load, random_split
from datasum.svp_cf import SAMPLERS, bipartite_adjacency, pagerank, proxy_hardness, sample


def timed(function, *args, repeat=1, **kwargs):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


SPLIT_SEED = settings("bench", "smoke").split_seed  # the split the notebook's study uses


def main():
    load_seconds, data = timed(load, "ml-1m", repeat=3)
    train = random_split(data, seed=SPLIT_SEED).train
    print(f"load ML-1M from the cache: {load_seconds:.2f} s  ({len(data):,} interactions; train {len(train):,})")
    hardness = np.random.default_rng(0).random(len(train))
    print(f"{'sampler':<24}{'seconds':>9}{'/ load':>9}{'kept':>8}")
    for name, spec in SAMPLERS.items():
        seconds, result = timed(sample, train, name, 0.4, 0, hardness=hardness if spec.proxy else None)
        print(f"{name:<24}{seconds:9.2f}{seconds / load_seconds:9.2f}{len(result) / len(train):8.1%}")

    adjacency = bipartite_adjacency(train)
    ours, _ = timed(pagerank, adjacency, 0.85, tol=1e-10)
    graph = nx.from_scipy_sparse_array(adjacency)
    theirs, _ = timed(nx.pagerank, graph, alpha=0.85, tol=1e-10, max_iter=1000)
    print(f"PageRank: ours {ours:.2f} s, networkx {theirs:.2f} s, ratio ours/networkx {ours / theirs:.2f}")

    walk_seconds, _ = timed(sample, train, "random-walk", 0.4, 0)
    generator = np.random.default_rng(0)
    nodes = list(graph.nodes)
    start = time.perf_counter()
    node, steps, seen = nodes[0], 0, {nodes[0]}
    while len(seen) < 0.4 * len(nodes) and steps < 5_000_000:  # the same walk over networkx's adjacency dicts
        neighbours = list(graph.adj[node])
        node = nodes[0] if generator.random() < 0.1 or not neighbours else neighbours[generator.integers(len(neighbours))]
        seen.add(node); steps += 1
    nx_walk = time.perf_counter() - start
    print(f"random walk to 40 % of nodes: ours {walk_seconds:.2f} s, networkx-graph walk {nx_walk:.2f} s, ratio {walk_seconds / nx_walk:.2f}")

    small = random_split(load("ml-100k"), seed=SPLIT_SEED).train
    for proxy in ("bias", "mf"):
        seconds, _ = timed(proxy_hardness, small, proxy, epochs=5)
        print(f"proxy {proxy} on ML-100K: {seconds / 5:.2f} s per epoch")

    if os.environ.get("DATASUM_BENCH_SKIP_STUDY") != "1": smoke_study()


STUDY = """
from datasum.bench import scenario_split
from datasum.config import settings, set_threads, threads
from datasum.data import load
from datasum.svp_cf import SAMPLERS, ranking_study, suite
knobs = settings("svp_cf", "smoke")
split_seed = settings("bench", "smoke").split_seed
set_threads(threads("smoke"))
for dataset, scenarios, *override in knobs.runs:
    for scenario in scenarios:
        split = scenario_split(load(dataset), scenario, seed=split_seed)
        ranking_study(split, scenario, lambda s: suite(scenario, knobs.models, s), list(SAMPLERS), knobs.keeps,
                      knobs.seeds, knobs.proxy_epochs, progress=False)
"""


def smoke_study():
    "The whole smoke study in a fresh process with empty result caches (datasets linked from the real cache)."
    with tempfile.TemporaryDirectory() as folder:
        for dataset in ("ml-100k",):
            os.symlink(cache_dir() / dataset, Path(folder) / dataset)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", STUDY], check=True, env=os.environ | {"DATASUM_CACHE": folder, "PYTHONHASHSEED": "0"})
        seconds = time.perf_counter() - start
    print(f"smoke study (16 samplers x 2 budgets x 5 algorithms, proxies, cold caches): {seconds:.0f} s wall, "
          f"{seconds / 120:.2f} of the 2-minute smoke budget")


if __name__ == "__main__":
    main()
