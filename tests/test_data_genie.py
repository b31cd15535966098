"""DATA-GENIE: features invariant to relabelling and equal to their naive references, the predictors' training, the shipped predictor, bad inputs."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import datasum.data_genie as dg
from datasum.data import Interactions

torch = pytest.importorskip("torch")


@st.composite
def graphs(draw, max_users=12, max_items=12, max_events=50):
    users = draw(st.integers(2, max_users))
    items = draw(st.integers(2, max_items))
    events = draw(st.lists(st.tuples(st.integers(0, users - 1), st.integers(0, items - 1)), min_size=1, max_size=max_events))
    return np.array([e[0] for e in events]), np.array([e[1] for e in events]), users, items


@settings(max_examples=40, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_features_are_invariant_to_relabelling(graph, random):
    users, items, n_users, n_items = graph
    user_names, item_names = list(range(n_users)), list(range(n_items))
    random.shuffle(user_names); random.shuffle(item_names)
    data = Interactions.from_columns(users, items)
    relabelled = Interactions.from_columns([f"u{user_names[u]}" for u in users], [f"i{item_names[i]}" for i in items])
    np.testing.assert_allclose(dg.dataset_features(relabelled), dg.dataset_features(data), rtol=1e-9, atol=1e-12)


def test_features_are_invariant_to_relabelling_on_the_arpack_path():
    draw = np.random.default_rng(0)
    users, items = draw.integers(0, 80, 900), draw.integers(0, 60, 900)   # > 33 users and items: ARPACK; > 128 nodes: sampled sources
    permuted_users, permuted_items = draw.permutation(80), draw.permutation(60)
    data, relabelled = Interactions.from_columns(users, items), Interactions.from_columns(permuted_users[users], permuted_items[items])
    exact = dict(max_sources=10_000)
    np.testing.assert_allclose(dg.dataset_features(relabelled, **exact), dg.dataset_features(data, **exact), rtol=1e-7, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(graphs(max_users=8, max_items=8, max_events=30))
def test_hop_plot_equals_breadth_first_search(graph):
    users, items, _, _ = graph
    adjacency = dg._live_adjacency(Interactions.from_columns(users, items))
    sources = np.arange(adjacency.shape[0])
    np.testing.assert_allclose(dg.hop_plot(adjacency, sources), _hop_plot_bfs(adjacency, sources), atol=1e-12)


def _hop_plot_bfs(adjacency, sources, hops=10):
    import collections
    within = np.zeros(hops)
    for source in sources:
        distance, queue = {source: 0}, collections.deque([source])
        while queue:
            v = queue.popleft()
            for w in adjacency.indices[adjacency.indptr[v]:adjacency.indptr[v + 1]]:
                if w not in distance: distance[w] = distance[v] + 1; queue.append(w)
        for d in distance.values():
            if d > 0: within[d - 1:] += 1
    return within / (len(sources) * (adjacency.shape[0] - 1))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.integers(2, 12))
def test_order_statistics_equal_the_sorted_values(values, count):
    ordered = sorted(values)
    expected = [ordered[k * (len(values) - 1) // (count - 1)] for k in range(count)]
    np.testing.assert_array_equal(dg.order_statistics(np.array(values), count), expected)


def test_spectrum_equals_the_adjacency_eigenvalues():
    draw = np.random.default_rng(1)
    data = Interactions.from_columns(draw.integers(0, 70, 500), draw.integers(0, 50, 500))
    dense = np.sort(np.linalg.eigvalsh(dg._live_adjacency(data).toarray()))[::-1][:8]
    np.testing.assert_allclose(dg.top_singular_values(data, 8), dense, rtol=1e-8)


def test_ridge_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    draw = np.random.default_rng(2)
    X, y = draw.normal(size=(60, 5)), draw.normal(size=60)
    reference = linear_model.Ridge(alpha=2.5).fit(X, y)
    weights = dg.fit_ridge(X, y, 2.5)
    np.testing.assert_allclose(weights[:-1], reference.coef_, rtol=1e-9)
    np.testing.assert_allclose(dg.ridge_scores(weights, X), reference.predict(X), rtol=1e-9)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=40))
def test_sampler_pairs_are_every_ordered_pair_within_a_group(rows):
    groups, tau = np.array([r[0] for r in rows]), np.array([r[1] for r in rows]) / 4
    expected = {(i, j) for i in range(len(rows)) for j in range(len(rows)) if groups[i] == groups[j] and tau[i] > tau[j]}
    better, worse = dg.sampler_pairs(groups, tau)
    assert set(zip(better.tolist(), worse.tolist())) == expected and len(better) == len(expected)


def _toy_problem(seed=0):
    draw = np.random.default_rng(seed)
    X = draw.normal(size=(200, 5))
    tau = np.tanh(X[:, 0] - X[:, 1] + 0.1 * draw.normal(size=200))
    return X, tau, np.repeat(np.arange(25), 8)


def test_the_rankers_loss_decreases():
    X, tau, groups = _toy_problem()
    _, losses = dg.train_mlp(X, tau, groups, "ranking", epochs=12, seed=0)
    assert losses[-1] < 0.8 * losses[0] and all(math.isfinite(l) for l in losses)
    _, losses = dg.train_mlp(X, tau, groups, "regression", epochs=12, seed=0)
    assert losses[-1] < losses[0]


def test_the_pairwise_loss_is_the_logistic_loss_and_stable():
    better, worse = torch.tensor([3.0, -1.0, 0.5]), torch.tensor([1.0, 2.0, 0.5])
    assert float(dg.pairwise_loss(better, worse)) == pytest.approx(float(-torch.log(torch.sigmoid(better - worse)).mean()), rel=1e-6)
    assert float(dg.pairwise_loss(torch.tensor([-1e4]), torch.tensor([1e4]))) == pytest.approx(2e4)


@pytest.mark.parametrize("objective", ["regression", "ranking"])
def test_predictions_are_deterministic_under_a_seed(objective):
    X, tau, groups = _toy_problem()
    state = torch.get_rng_state()
    first, _ = dg.train_mlp(X, tau, groups, objective, epochs=3, seed=7)
    again, _ = dg.train_mlp(X, tau, groups, objective, epochs=3, seed=7)
    other, _ = dg.train_mlp(X, tau, groups, objective, epochs=3, seed=8)
    assert torch.equal(torch.get_rng_state(), state)   # the caller's global generator is left alone
    np.testing.assert_array_equal(dg.mlp_scores(first, X), dg.mlp_scores(again, X))
    assert not np.allclose(dg.mlp_scores(first, X), dg.mlp_scores(other, X))


def test_numpy_forward_pass_equals_torch():
    X, tau, groups = _toy_problem()
    weights, _ = dg.train_mlp(X, tau, groups, "regression", epochs=2, seed=0)
    net = dg.mlp(X.shape[1])
    net.eval()
    with torch.no_grad():
        for parameter, name in zip(net.parameters(), ("w1", "b1", "w2", "b2")): parameter.copy_(torch.as_tensor(weights[name]))
        expected = net(torch.as_tensor(X, dtype=torch.float32))[:, 0].numpy()
    np.testing.assert_allclose(dg.mlp_scores(weights, X), expected, atol=1e-5)


def test_the_shipped_predictor_reproduces_the_notebooks_predictions():
    predictor, reference = dg.load_predictor()
    features = pd.read_csv(dg.shipped_dir() / "features_cpu.csv")
    again = np.tanh(dg.mlp_scores(predictor.weights, dg.design(reference, features, predictor.scaler)))
    np.testing.assert_allclose(again, reference["prediction"], atol=1e-9)
    assert len(reference) >= 10 and {"numpy", "torch", "datasum"} <= set(predictor.meta["versions"])
    assert set(predictor.samplers) <= set(dg.SAMPLERS) and predictor.metrics == list(dg.STUDY_METRICS)
    with np.load(dg.shipped_dir() / "data_genie.npz", allow_pickle=False) as stored:   # an open format: no pickled object inside
        assert all(stored[name].dtype != object for name in stored.files)


def test_the_shipped_study_is_complete():
    study = pd.read_csv(dg.shipped_dir() / "study_cpu.csv")
    features = pd.read_csv(dg.shipped_dir() / "features_cpu.csv")
    assert list(features.columns[2:2 + len(dg.FEATURE_NAMES)]) == dg.FEATURE_NAMES
    keys = set(zip(features["dataset"], features["sampler"], features["keep"]))
    assert all((d, s, k) in keys for d, s, k in zip(study["dataset"], study["sampler"], study["keep"]))
    assert all((d, "full", 1.0) in keys for d in study["dataset"].unique())


def _users(n_users=60, per_user=8, items=40, seed=0):
    draw = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    return Interactions.from_columns(users, draw.integers(0, items, len(users)), timestamps=draw.integers(0, 10**6, len(users)), name="toy")


def test_recommend_sampler_is_deterministic_and_ranks_the_candidates():
    data = _users()
    first, again = dg.recommend_sampler(data, 0.3, seed=0), dg.recommend_sampler(data, 0.3, seed=0)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.sampler == first.table["sampler"][0] and first.runner_up == first.table["sampler"][1]
    assert first.tau >= first.runner_up_tau and -1 <= first.runner_up_tau <= first.tau <= 1
    untimed = Interactions.from_columns(data.users, data.items, name="untimed")
    assert "temporal" not in set(dg.recommend_sampler(untimed, 0.3).table["sampler"])   # without times, temporal means nothing


@pytest.mark.parametrize("budget", [0, 1, 1.0, -0.1, 1.5, float("nan"), True, "0.5"])
def test_budgets_outside_the_open_unit_interval_are_refused(budget):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        dg.recommend_sampler(_users(), budget)


def test_one_user_or_no_interactions_is_refused():
    data = _users()
    with pytest.raises(ValueError, match="toy: has 1 user"):
        dg.recommend_sampler(data.subset(data.users == 3), 0.5)
    with pytest.raises(ValueError, match="toy: has no interactions"):
        dg.recommend_sampler(data.subset(data.users < 0), 0.5)


def test_derivations_are_real_subsets():
    data = _users()
    for recipe in ("whole", "users 1/3", "time 2/2", "ratings>=1", "core 2", "items 0-10"):
        part = dg.derive(data, recipe)
        assert len(part) <= len(data) and set(zip(part.users, part.items)) <= set(zip(data.users, data.items))
    with pytest.raises(ValueError, match="unknown recipe"):
        dg.derive(data, "halves")
