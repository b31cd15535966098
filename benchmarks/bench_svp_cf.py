"""SVP-CF samplers on ML-1M (1M interactions), each beside the time to load ML-1M from the cache.

Printed: the load time (the reference), every non-proxy sampler's time and its ratio to the load
(target: below 1), PageRank against networkx's on the same graph, a random walk against a
networkx-graph walk of the same length, and the proxies' seconds per epoch.
"""
import time

import networkx as nx
import numpy as np

from datasum.data import load, random_split
from datasum.svp_cf import SAMPLERS, bipartite_adjacency, pagerank, proxy_hardness, sample


def timed(function, *args, repeat=1, **kwargs):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    load_seconds, data = timed(load, "ml-1m", repeat=3)
    train = random_split(data, seed=42).train
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

    small = random_split(load("ml-100k"), seed=42).train
    for proxy in ("bias", "mf"):
        seconds, _ = timed(proxy_hardness, small, proxy, epochs=5)
        print(f"proxy {proxy} on ML-100K: {seconds / 5:.2f} s per epoch")


if __name__ == "__main__":
    main()
