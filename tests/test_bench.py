"""The benchmarking harness: protocol, batching, caching, failure isolation, bad input."""
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from datasum.bench import (SCENARIOS, BenchmarkError, batch_size_for, benchmark, evaluate, result_key, results_table,
                           scenario_split, zoo)
from datasum.data import Interactions, interactions_digest, merge, random_split, sequential_split
from datasum.interface import PopRec, Recommender
from datasum.metrics import auc_sampled, mean_metrics, ranking_metrics, sample_negatives
from datasum.recommenders import EASE, MF


def synthetic(n_users=300, n_items=120, per_user=12, seed=0):
    gen = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([gen.choice(n_items, per_user, replace=False, p=np.linspace(2, 1, n_items) / np.linspace(2, 1, n_items).sum())
                            for _ in range(n_users)])
    ratings = gen.integers(1, 6, len(users)).astype(float)
    return Interactions.from_columns(users, items, ratings, timestamps=gen.permutation(len(users)), name="synthetic")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))


class Fixed(Recommender):
    "Scores from a fixed matrix (random by default); counts its fits."
    fits = 0

    def __init__(self, table=None, seed=0):
        super().__init__(seed=seed)
        self.table = table

    def fit(self, train, val=None):
        self._start_fit(train, val)
        Fixed.fits += 1
        if self.table is None: self.table = np.random.default_rng(self.seed).random((train.n_users, train.n_items))
        return self

    def score(self, users, context=None): return self.table[users].astype(np.float32)

    def predict(self, users, items): return np.full(len(users), 3.0)


class Broken(Recommender):
    def fit(self, train, val=None): raise RuntimeError("out of luck")


def test_evaluate_matches_an_unbatched_computation_with_the_infinite_ae_protocol():
    split = random_split(synthetic(), seed=1)
    model = Fixed().fit(split.train)
    ours = evaluate(model, split, "implicit", memory_budget=1)  # 256-user batches
    context = merge(split.train, split.val).to_csr()
    scores, targets = model.table, split.test.to_csr()
    propensity = 1 + (np.log(len(split.train)) - 1) * 2.5 ** 0.55 * (split.train.item_degrees() + 1.5) ** -0.55
    direct = mean_metrics(ranking_metrics(scores, targets, (10, 100), context, propensity))
    for name in ("HR@10", "HR@100", "nDCG@10", "nDCG@100", "PSP@10"):
        assert ours[name] == pytest.approx(direct[name], rel=1e-9), name
    assert set(ours) == {"AUC", "HR@10", "HR@100", "nDCG@10", "nDCG@100", "PSP@10"}
    assert 0.35 < ours["AUC"] < 0.65  # random scores
    assert evaluate(model, split, "implicit", memory_budget=2 ** 34) == ours  # the budget changes nothing


def test_validation_masks_train_and_test_masks_train_and_val():
    split = random_split(synthetic(), seed=1)
    val_matrix, test_matrix = split.val.to_csr().toarray(), split.test.to_csr().toarray()
    train_matrix = split.train.to_csr().toarray()
    # scores that put the training items first, then the validation items, then the test items
    table = 3 * train_matrix + 2 * (val_matrix > 0) + 1 * (test_matrix > 0)
    model = Fixed(table).fit(split.train)
    assert evaluate(model, split, "implicit", "val")["HR@10"] == pytest.approx(1.0)   # train masked: val items rank first
    assert evaluate(model, split, "implicit", "test")["HR@10"] == pytest.approx(1.0)  # train + val masked
    assert evaluate(model, split, "implicit", "test")["AUC"] == pytest.approx(1.0)


def test_pooled_auc_agrees_with_the_metrics_module():
    split = random_split(synthetic(n_users=200), seed=2)   # one chunk of 256 users: the same negatives
    model = Fixed().fit(split.train)
    context = merge(split.train, split.val).to_csr()
    users = np.flatnonzero(np.diff(split.test.to_csr().indptr) > 0)
    targets = split.test.to_csr()[users]
    negatives = sample_negatives(targets, 100, context[users], seed=np.random.default_rng([0, 0]))
    assert evaluate(model, split, "implicit")["AUC"] == pytest.approx(auc_sampled(model.table[users], targets, negatives))


def test_explicit_scenario_reports_mse():
    split = scenario_split(synthetic(), "explicit")
    result = evaluate(Fixed().fit(split.train), split, "explicit")
    assert result == {"MSE": pytest.approx(np.mean((split.test.ratings - 3.0) ** 2))}


def test_sequential_scenario_uses_leave_last_two_out():
    data = synthetic()
    split = scenario_split(data, "sequential")
    assert split.protocol == sequential_split(data).protocol and len(split.test) == data.n_users


def test_benchmark_is_tidy_tunes_on_validation_and_caches():
    split = random_split(synthetic(), seed=1)
    Fixed.fits = 0
    grid = [Fixed(seed=s) for s in range(3)]
    first = benchmark({"fixed": grid, "pop": PopRec()}, split, "implicit")
    assert list(first.columns) == ["algorithm", "model", "hyper_parameters", "part", "metric", "value", "fit_seconds",
                                   "seconds_per_epoch", "selected", "error"]
    assert Fixed.fits == 3
    val = first[(first.algorithm == "fixed") & (first.part == "val") & (first.metric == "nDCG@10")]
    assert len(val) == 3
    chosen = val.loc[val.value.idxmax()]
    assert first[(first.part == "test") & (first.algorithm == "fixed")]["hyper_parameters"].unique().tolist() == [chosen.hyper_parameters]
    assert first.query("part == 'test' and algorithm == 'fixed'")["selected"].all()
    second = benchmark({"fixed": [Fixed(seed=s) for s in range(3)], "pop": PopRec()}, split, "implicit")
    assert Fixed.fits == 3  # every record came from the cache
    pd.testing.assert_frame_equal(first, second)


def test_cache_key_covers_data_and_hyper_parameters():
    split = random_split(synthetic(), seed=1)
    other = random_split(synthetic(seed=5), seed=1)
    digest = lambda split: interactions_digest(split.train, split.val, split.test)
    fp = digest(split)
    assert fp == digest(random_split(synthetic(), seed=1)) != digest(other)
    settings = {"ks": [10, 100]}
    assert result_key(fp, "implicit", MF(dim=8), settings) == result_key(fp, "implicit", MF(dim=8), settings)
    assert result_key(fp, "implicit", MF(dim=8), settings) != result_key(fp, "implicit", MF(dim=16), settings)
    assert result_key(fp, "implicit", MF(dim=8), settings) != result_key(fp, "sequential", MF(dim=8), settings)


def test_one_failure_does_not_lose_the_others():
    split = random_split(synthetic(), seed=1)
    with pytest.warns(UserWarning, match="out of luck"):
        results = benchmark({"broken": Broken(), "ease": EASE(lambdas=[10.0, 100.0])}, split, "implicit")
    broken = results[results.algorithm == "broken"]
    assert broken["metric"].tolist() == ["error"] and "out of luck" in broken["error"].iloc[0]
    table = results_table(results).set_index("algorithm")
    assert table.loc["ease", "nDCG@10"] > 0 and np.isnan(table.loc["broken", "nDCG@10"])
    # failures are not cached: a fixed algorithm runs again
    from datasum.config import cache_dir
    records = [json.loads(p.read_text()) for p in (cache_dir() / "bench").glob("*.json")]
    assert records and all(r["algorithm"] != "broken" for r in records)


def test_batches_fit_the_budget():
    assert batch_size_for(3706, 256 * 2 ** 20) == 1792
    assert batch_size_for(3706, 1) == 256
    with pytest.raises(BenchmarkError, match="memory_budget must be positive"): batch_size_for(10, 0)


def test_bad_arguments_are_clear_errors():
    split = random_split(synthetic(), seed=1)
    model = PopRec().fit(split.train)
    with pytest.raises(BenchmarkError, match="unknown scenario 'session'; valid scenarios"): benchmark({"p": model}, split, "session")
    with pytest.raises(BenchmarkError, match="unknown scenario"): evaluate(model, split, "session")
    with pytest.raises(BenchmarkError, match="k=1000 is larger than the number of items"): benchmark({"p": model}, split, "implicit", ks=(10, 1000))
    with pytest.raises(BenchmarkError, match="k=1000 is larger"): evaluate(model, split, "implicit", ks=(1000,))
    with pytest.raises(BenchmarkError, match="at least one algorithm"): benchmark({}, split, "implicit")
    empty = split.with_train(split.train.subset(np.zeros(len(split.train), bool)))
    with pytest.raises(BenchmarkError, match="training set is empty"): benchmark({"p": PopRec()}, empty, "implicit")
    with pytest.raises(BenchmarkError, match="part must be"): evaluate(model, split, "implicit", "train")


TINY_ZOO = {"bias": {"epochs": 1}, "mf": {"dim": 4, "epochs": 1}, "mf_grid": [{}, {"dim": 2}],
            "neumf": {"dim": 4, "epochs": 1, "pretrain_epochs": 1}, "mvae": {"epochs": 1}, "ease_lambdas": [10.0],
            "lightgcn": {"epochs": 1}, "sasrec": {"epochs": 1}, "svae": {"epochs": 1}}


def global_random_state():
    "numpy's, Python's and torch's global random states, in a form that == compares."
    import random
    import torch
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return (kind, keys.tobytes(), position, has_gauss, cached), random.getstate(), torch.random.get_rng_state().numpy().tobytes()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_benchmark_leaves_the_global_random_state_alone(scenario):
    # every model of the zoo trains (torch and numpy), evaluation samples AUC negatives, a grid is tuned
    import datasum.recommenders  # noqa: F401  (torch imported before the states are read)
    split = scenario_split(synthetic(n_users=120), scenario, seed=1)
    before = global_random_state()
    results = benchmark(zoo(scenario, TINY_ZOO, seed=3, threads=1), split, scenario, cache=False, verbose=False)
    assert global_random_state() == before
    assert not (results["metric"] == "error").any(), results[results["metric"] == "error"]["error"].tolist()
    assert results["selected"].any()


def _bench_recbole():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_recbole.py"
    spec = importlib.util.spec_from_file_location("bench_recbole", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_recbole_without_a_recbole_python_says_how_to_make_one(monkeypatch, capsys):
    bench = _bench_recbole()
    monkeypatch.delenv(bench.ENV_VAR, raising=False)
    assert bench.main([]) == 0
    out = capsys.readouterr().out
    assert bench.ENV_VAR in out and "pip install torch==2.13.0 recbole==1.2.1" in out
    monkeypatch.setenv(bench.ENV_VAR, "/nonexistent/python")
    assert bench.main([]) == 0 and "no such file" in capsys.readouterr().out


def test_bench_recbole_exports_the_split_as_recbole_benchmark_files(tmp_path):
    bench = _bench_recbole()
    split = random_split(synthetic(), seed=1)
    bench.export(split, tmp_path)
    for part, events in (("train", split.train), ("valid", split.val), ("test", split.test)):
        lines = (tmp_path / "split" / f"split.{part}.inter").read_text().splitlines()
        assert lines[0] == "user_id:token\titem_id:token" and len(lines) == len(events) + 1
        pairs = [tuple(map(int, line.split("\t"))) for line in lines[1:]]
        assert pairs == list(zip(events.users.tolist(), events.items.tolist()))
