"""The sixteen samplers: budgets, untouched evaluation data, determinism, degenerate input, and references."""
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from datasum.data import Interactions, load, random_split
from datasum.svp_cf import (ALIASES, SAMPLERS, bipartite_adjacency, lowest, pagerank, per_user_removal,
                            propensity_hardness, proxy_hardness, removal_count, remove_users, sample, shuffled_by_user,
                            timed_by_user)


@pytest.fixture(scope="module")
def split():
    return random_split(load("ml-100k"), seed=42)


@pytest.fixture(scope="module")
def hardness(split):
    # a cheap stand-in for the proxy: the samplers only need a score per interaction
    return np.random.default_rng(0).integers(0, 5, len(split.train)) / 5


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("keep", [0.8, 0.4, 0.1])
def test_each_sampler_keeps_the_requested_share(split, hardness, name, keep):
    result = sample(split.train, name, keep, seed=3, hardness=hardness if SAMPLERS[name].proxy else None)
    n = len(split.train)
    exact = n - removal_count(keep, n)
    axis = SAMPLERS[name].axis
    assert set(zip(result.users.tolist(), result.items.tolist())) <= set(zip(split.train.users.tolist(), split.train.items.tolist()))
    if name in ("random", *[s for s in SAMPLERS if s.startswith("svp-cf")]):
        assert len(result) == exact                                      # exact budgets
    elif name in ("stratified", "temporal"):
        assert exact - split.train.n_users <= len(result) <= exact         # per-user rounding up
    elif axis == "user" or name == "centrality":
        assert len(result) <= exact                                        # whole users / nodes: overshoot
        assert len(result) >= exact - split.train.user_degrees().max() - split.train.item_degrees().max()
    else:
        assert 0 < len(result) <= len(split.train)                         # node budgets (random walk, forest fire)
    assert (result.n_users, result.n_items) == (split.train.n_users, split.train.n_items)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampling_never_touches_validation_or_test(split, hardness, name):
    sampled = split.with_train(sample(split.train, name, 0.4, seed=1, hardness=hardness if SAMPLERS[name].proxy else None))
    assert sampled.val is split.val and sampled.test is split.test


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
    h = np.linspace(0, 1, 6) if SAMPLERS[name].proxy else None
    assert len(sample(data, name, 1.0, hardness=h)) == 6
    assert len(sample(data, name, 0.5, hardness=h)) <= 6
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


def test_torch_threads_restores_the_previous_count():
    import torch
    from datasum.svp_cf import torch_threads
    before = torch.get_num_threads()
    with torch_threads(1): assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
