"""Recommender zoo: seconds per training epoch on ML-100K and ML-1M, and EASE's lambda sweep against its arithmetic floor.

Ratios are against references measured in the same run: epoch times against MF-BPR's epoch on the same data set; the
EASE sweep strategies against a bare `np.linalg.inv` of the item Gram matrix per lambda (the floor: any strategy that
forms B for each lambda does at least that much arithmetic, or an eigendecomposition's worth once).
"""
import time

import numpy as np
import scipy.linalg

from datasum.data import load, random_split, sequential_split
from datasum.recommenders import (MF, MVAE, SASRec, SVAE, BiasOnly, LightGCN, NeuMF, ease_weights, ease_weights_from_eigh,
                                  ease_weights_from_cholesky)

LAMBDAS = (500.0, 2000.0, 10000.0)
THREADS = 1


def epoch_seconds(dataset: str, epochs: int = 2) -> dict[str, float]:
    "Mean seconds per training epoch of each trained model (validation off), one thread."
    data = load(dataset)
    random, sequential = random_split(data, seed=42), sequential_split(data)
    models = {"Bias-only (BPR)": (BiasOnly(epochs=epochs), random), "MF (BPR)": (MF(epochs=epochs), random),
              "MF (MSE)": (MF(loss="mse", epochs=epochs), random),
              "NeuMF (joint stage)": (NeuMF(epochs=epochs, pretrain_epochs=0), random),
              "MVAE": (MVAE(epochs=epochs), random), "LightGCN": (LightGCN(epochs=epochs), random),
              "SASRec (max_len 200)": (SASRec(epochs=epochs), sequential),
              "SASRec (max_len 50)": (SASRec(epochs=epochs, max_len=50), sequential),
              "SVAE (max_len 100, 16 loss steps)": (SVAE(epochs=epochs), sequential)}
    out = {}
    for name, (model, split) in models.items():
        model.threads = THREADS
        model.fit(split.train)
        out[name] = float(np.mean(model.epoch_seconds_))
    return out


def ease_sweep(dataset: str = "ml-1m") -> dict[str, float]:
    "Seconds for the lambda sweep: floor (bare inverse per lambda), eigendecomposition reused, one solve per lambda."
    X = random_split(load(dataset), seed=42).train.to_csr()
    X.data[:] = 1.0
    gram = (X.T @ X).toarray().astype(np.float64)
    eye = np.eye(len(gram))
    times = {}
    start = time.perf_counter()
    for lam in LAMBDAS: np.linalg.inv(gram + lam * eye)
    times["floor: np.linalg.inv per lambda"] = time.perf_counter() - start
    start = time.perf_counter()
    values, vectors = np.linalg.eigh(gram)
    for lam in LAMBDAS: ease_weights_from_eigh(values, vectors, lam)
    times["one eigh reused across lambdas"] = time.perf_counter() - start
    start = time.perf_counter()
    for lam in LAMBDAS: ease_weights_from_cholesky(gram, lam)
    times["one Cholesky inverse per lambda"] = time.perf_counter() - start
    start = time.perf_counter()
    for lam in LAMBDAS: ease_weights(gram, lam)
    times["one LU inverse per lambda"] = time.perf_counter() - start
    return times


def main(only_ease: bool = False) -> None:
    import torch
    torch.set_num_threads(THREADS)
    for dataset, epochs in () if only_ease else (("ml-100k", 2), ("ml-1m", 1)):
        seconds = epoch_seconds(dataset, epochs)
        reference = seconds["MF (BPR)"]
        print(f"\n{dataset}: seconds per epoch (1 thread), ratio to MF (BPR)")
        for name, value in seconds.items(): print(f"  {name:24s} {value:8.2f} s   {value / reference:6.2f}x")
    times = ease_sweep("ml-1m")
    floor = times["floor: np.linalg.inv per lambda"]
    print(f"\nEASE lambda sweep on ml-1m, {len(LAMBDAS)} lambdas, float64")
    for name, value in times.items(): print(f"  {name:34s} {value:7.2f} s   {value / floor:5.2f}x floor")
    candidates = {k: v for k, v in times.items() if not k.startswith("floor")}
    print(f"  faster strategy: {min(candidates, key=candidates.get)}")


if __name__ == "__main__":
    import sys
    main(only_ease="--ease" in sys.argv)
