"""The sixteen samplers: budgets, untouched evaluation data, determinism, degenerate input, and references."""
import dataclasses
import math
import os
import random

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from datasum.data import Interactions, load, random_split
from datasum.bench import scenario_split
from datasum.config import rng
from datasum.interface import PopRec
from datasum.svp_cf import (ALIASES, KEEP_MEANS, SAMPLERS, bipartite_adjacency, forest_fire_nodes, lowest, pagerank, per_user_removal,
                            propensity_hardness, proxy_hardness, random_walk_nodes, ranking_study, removal_count, remove_users,
                            sample, shuffled_by_user, timed_by_user)


@pytest.fixture(scope="module")
def split():
    return random_split(load("ml-100k"), seed=42)


@pytest.fixture(scope="module")
def hardness(split):
    # a cheap stand-in for the proxy: the samplers only need a score per interaction
    return np.random.default_rng(0).integers(0, 5, len(split.train)) / 5


def check_keep_meaning(train, result, name, keep, seed):
    "`keep` means what KEEP_MEANS says for `name`; `result` is a subset of the rows of `train`."
    n = len(train)
    exact = n - removal_count(keep, n)
    assert result.rows is not None and np.all(np.diff(result.rows) > 0)          # chosen rows, in order, each once
    np.testing.assert_array_equal(result.users, train.users[result.rows])
    np.testing.assert_array_equal(result.items, train.items[result.rows])
    meaning = KEEP_MEANS[name]
    if meaning.startswith("share of the interactions: exactly"):
        assert len(result) == exact
    elif meaning.startswith("share of each user's interactions"):
        n_u = train.user_degrees()
        np.testing.assert_array_equal(result.user_degrees(), n_u - per_user_removal(keep, n_u))
    elif "whole users" in meaning:
        assert len(result) <= exact
        kept_users = result.user_degrees() > 0
        assert np.all(result.user_degrees()[kept_users] == train.user_degrees()[kept_users])   # users kept whole
        assert len(result) > exact - train.user_degrees().max() or keep == 1
    elif "whole nodes" in meaning:
        assert exact - max(train.user_degrees().max(), train.item_degrees().max()) < len(result) <= exact or keep == 1
    else:
        assert meaning.startswith("share of the graph's nodes")
        nodes = {"random-walk": random_walk_nodes, "forest-fire": forest_fire_nodes}[name](train, keep, seed)
        live = (train.user_degrees() > 0).sum() + (train.item_degrees() > 0).sum()
        if keep < 1: assert nodes.sum() == math.ceil(keep * live - 1e-9)            # the node budget itself
        among = nodes[train.users] & nodes[train.n_users + train.items] if keep < 1 else np.ones(n, bool)
        np.testing.assert_array_equal(result.rows, np.flatnonzero(among))         # exactly the edges among visited nodes


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("keep", [0.8, 0.4, 0.1])
def test_each_sampler_keeps_what_keep_means(split, hardness, name, keep):
    train = dataclasses.replace(split.train, rows=np.arange(len(split.train)))
    result = sample(train, name, keep, seed=3, hardness=hardness if SAMPLERS[name].proxy else None)
    check_keep_meaning(train, result, name, keep, seed=3)
    assert (result.n_users, result.n_items) == (split.train.n_users, split.train.n_items)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampling_never_touches_validation_or_test(split, hardness, name):
    before = {part: [getattr(getattr(split, part), c).copy() for c in ("users", "items", "ratings", "timestamps")]
              for part in ("val", "test")}
    sampled = split.with_train(sample(split.train, name, 0.4, seed=1, hardness=hardness if SAMPLERS[name].proxy else None))
    for part, arrays in before.items():
        for column, array in zip(("users", "items", "ratings", "timestamps"), arrays):
            np.testing.assert_array_equal(getattr(getattr(sampled, part), column), array)
    assert len(sampled.train) < len(split.train)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_are_deterministic_under_a_seed(split, hardness, name):
    h = hardness if SAMPLERS[name].proxy else None
    a, b = (sample(split.train, name, 0.6, seed=7, hardness=h) for _ in range(2))
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_degenerate_input(name):
    # users with a single interaction, a keep of 1.0, and keeps outside (0, 1]
    data = Interactions.from_columns([0, 1, 1, 2, 2, 2], [0, 0, 1, 0, 1, 2], timestamps=range(6))
    data = dataclasses.replace(data, rows=np.arange(6))
    h = np.linspace(0, 1, 6) if SAMPLERS[name].proxy else None
    assert len(sample(data, name, 1.0, hardness=h)) == 6
    check_keep_meaning(data, sample(data, name, 0.5, hardness=h), name, 0.5, seed=0)
    for bad in (0, -0.2, 1.5):
        with pytest.raises(ValueError, match="keep must"):
            sample(data, name, bad, hardness=h)


def test_unknown_sampler_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown sampler 'svp'; samplers: random, stratified"):
        sample(Interactions.from_columns([0], [0]), "svp", 0.5)
    assert set(ALIASES.values()) <= set(SAMPLERS)


def test_budget_golden_values():
    assert removal_count(0.6, 7) == 2                    # N = 7, p = 40 %
    assert per_user_removal(0.8, np.array([3])).tolist() == [1]   # stratified, n_u = 3, p = 20 %


def test_user_axis_golden_example():
    data = Interactions.from_columns(list("AAABBBBBCC"), range(10))
    kept = remove_users(data, np.argsort([0.1, 0.5, 0.2]), keep=0.6)
    assert set(kept.user_ids[kept.users]) == {"B"} and len(kept) == 5


def test_hardness_by_hand_explicit():
    # lr = 0: the bias-only proxy predicts its initial global bias 4.0, so hardness = (4 - r)^2
    data = Interactions.from_columns([0, 0, 1, 1, 2], [0, 1, 1, 2, 0], ratings=[5, 1, 4, 2, 3])
    np.testing.assert_allclose(proxy_hardness(data, "bias", explicit=True, epochs=4, lr=0.0), [1, 9, 0, 4, 1])


def test_hardness_implicit_counts_misranked_negatives():
    # lr = 0 and all biases equal: no sampled negative scores strictly above its positive
    data = Interactions.from_columns([0, 0, 1, 1, 2], [0, 1, 1, 2, 0])
    np.testing.assert_array_equal(proxy_hardness(data, "bias", epochs=3, lr=0.0), np.zeros(5))
    learned = proxy_hardness(data, "mf", epochs=5, seed=1)
    assert np.all((learned >= 0) & (learned <= 1)) and np.all(learned * 5 == np.round(learned * 5))


def test_propensity_reweighting_by_hand():
    data = Interactions.from_columns([0, 0, 1], [0, 1, 1])
    from datasum.metrics import inverse_propensity
    wu = inverse_propensity(data.user_degrees(), 3)
    wi = inverse_propensity(data.item_degrees(), 3)
    ones = np.ones(3)
    np.testing.assert_allclose(propensity_hardness(data, ones), [max(wu[0], wi[0]), max(wu[0], wi[1]), max(wu[1], wi[1])])
    np.testing.assert_allclose(propensity_hardness(data, ones, "user"), [wu[0], wu[0], wu[1]])


def test_pagerank_equals_networkx():
    data = random_split(load("ml-100k"), seed=42).train
    adjacency = bipartite_adjacency(data)
    graph = nx.from_scipy_sparse_array(adjacency)
    for damping in (0.85, 1e-6):
        reference = nx.pagerank(graph, alpha=damping, tol=1e-12, max_iter=1000)
        ours = pagerank(adjacency, damping, tol=1e-12)
        np.testing.assert_allclose(ours, [reference[n] for n in range(adjacency.shape[0])], rtol=1e-6, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 10)), min_size=1, max_size=80, unique=True),
       st.sampled_from([0.9, 0.5, 0.3, 0.01]), st.integers(0, 100))
def test_interaction_axis_budgets_are_exact_on_any_data(pairs, keep, seed):
    users, items = zip(*pairs)
    data = Interactions.from_columns(users, items)
    h = np.random.default_rng(seed).random(len(data))
    for name in ("random", "svp-cf-mf", "svp-cf-prop-bias"):
        assert len(sample(data, name, keep, seed, hardness=h)) == len(data) - math.floor((1 - keep) * len(data) + 1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=60), st.data(), st.integers(0, 10))
def test_lowest_equals_a_full_sort(values, data, seed):
    "The partition-based cut takes the same values as sorting would, ties drawn without repeats."
    score = np.array(values, float) / 3
    count = data.draw(st.integers(0, len(score)))
    picked = lowest(score, count, seed)
    assert len(set(picked.tolist())) == count
    np.testing.assert_array_equal(np.sort(score[picked]), np.sort(score)[:count])


def _events(users, times):
    n_users = max(users) + 1
    return Interactions(np.array(users, np.int64), np.arange(len(users)), np.ones(len(users), np.float32),
                        np.array(times, np.int64), np.arange(n_users), np.arange(len(users)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), min_size=1, max_size=50), st.integers(0, 5),
       st.sampled_from([1, 10 ** 17]))
def test_time_order_equals_lexsort(pairs, seed, scale):
    "Grouped by user, oldest first: the same (user, time) sequence as numpy's lexsort, also on the wide-key fallback."
    users, times = zip(*pairs)
    data = _events(users, [t * scale for t in times])
    order = timed_by_user(data, seed)
    reference = np.lexsort((data.timestamps, data.users))
    assert sorted(order.tolist()) == list(range(len(data)))
    np.testing.assert_array_equal(data.users[order], data.users[reference])
    np.testing.assert_array_equal(data.timestamps[order], data.timestamps[reference])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=50), st.integers(0, 5))
def test_shuffle_within_users_is_a_grouped_permutation(users, seed):
    data = _events(users, [0] * len(users))
    order = shuffled_by_user(data, seed)
    assert sorted(order.tolist()) == list(range(len(data)))
    np.testing.assert_array_equal(data.users[order], np.sort(data.users))


def test_ties_at_the_cut_are_random_but_seeded():
    score = np.zeros(100)
    draws = [tuple(sorted(lowest(score, 10, seed).tolist())) for seed in range(5)]
    assert len(set(draws)) == 5 and draws[0] == tuple(sorted(lowest(score, 10, 0).tolist()))


def global_state():
    "Everything a library function must leave as it found it: the global random generators, the environment, torch's threads."
    import torch
    return {"numpy": np.random.get_state(), "random": random.getstate(), "torch": torch.random.get_rng_state(),
            "environ": dict(os.environ), "threads": torch.get_num_threads()}


def assert_unchanged(before):
    import torch
    after = global_state()
    (name, keys, *rest), (name_after, keys_after, *rest_after) = before["numpy"], after["numpy"]
    assert name == name_after and np.array_equal(keys, keys_after) and rest == rest_after, "numpy's global generator moved"
    assert before["random"] == after["random"], "random's global generator moved"
    assert torch.equal(before["torch"], after["torch"]), "torch's global generator moved"
    assert before["environ"] == after["environ"], "os.environ changed"
    assert before["threads"] == after["threads"], "torch's thread count changed"


@pytest.fixture
def cold_cache(tmp_path, monkeypatch):
    "An empty asset cache, so that proxies really train (set before any state is taken)."
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    return tmp_path


def small_data():
    return Interactions.from_columns(np.repeat(np.arange(40), 6), (np.arange(240) * 7) % 50, ratings=np.arange(240) % 5 + 1,
                                     timestamps=np.arange(240) % 17)


def test_the_proxy_leaves_global_state_alone():
    before = global_state()
    for proxy, explicit in [("mf", False), ("bias", True)]:
        proxy_hardness(small_data(), proxy, explicit, epochs=1)
    assert_unchanged(before)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_leaves_global_state_alone(cold_cache, name):
    before = global_state()
    sample(small_data(), name, 0.5, seed=1, proxy_epochs=1)   # the SVP samplers train their proxy (and cache it)
    assert_unchanged(before)


@pytest.mark.parametrize("walk", [random_walk_nodes, forest_fire_nodes])
def test_graph_walks_leave_global_state_alone(walk):
    before = global_state()
    walk(small_data(), 0.5, seed=2)
    assert_unchanged(before)


def test_a_ranking_study_leaves_global_state_alone(cold_cache):
    from datasum.recommenders import EASE
    popular = 1 / np.arange(1, 201) / (1 / np.arange(1, 201)).sum()
    data = Interactions.from_columns(np.repeat(np.arange(80), 20),
                                     np.concatenate([rng(0, f"user {u}").choice(200, 20, replace=False, p=popular) for u in range(80)]))
    algorithms = lambda s: {"PopRec": PopRec(), "EASE": EASE(lambdas=[1.0]), "EASE strong": EASE(lambdas=[1e4])}
    before = global_state()
    study = ranking_study(scenario_split(data, "implicit", 0), "implicit", algorithms, ["random", "svp-cf-bias", "forest-fire"],
                          [0.8], [0], proxy_epochs=1, progress=False)
    assert_unchanged(before)
    assert len(study) == 3 * 3 and not study["skipped"].any()


def test_proxy_resumes_from_a_checkpoint_exactly(tmp_path):
    data = Interactions.from_columns(np.repeat(np.arange(40), 6), (np.arange(240) * 7) % 50, ratings=np.arange(240) % 5 + 1)
    whole = proxy_hardness(data, "mf", explicit=True, epochs=5, seed=2)
    def stop(epoch):
        if epoch == 3: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        proxy_hardness(data, "mf", explicit=True, epochs=5, seed=2, checkpoint=tmp_path / "c.npz", on_epoch=stop)
    epochs = []
    resumed = proxy_hardness(data, "mf", explicit=True, epochs=5, seed=2, checkpoint=tmp_path / "c.npz", on_epoch=epochs.append)
    assert epochs == [4, 5]
    np.testing.assert_array_equal(resumed, whole)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z: assert all(z[k].dtype != object for k in z.files)
    other = proxy_hardness(data, "mf", explicit=True, epochs=5, seed=3, checkpoint=tmp_path / "c.npz")  # another seed: not reused
    np.testing.assert_array_equal(other, proxy_hardness(data, "mf", explicit=True, epochs=5, seed=3))
