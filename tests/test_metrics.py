"""Metrics against independent references (scikit-learn, scipy) and their invariants (hypothesis)."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import kendalltau
from sklearn.metrics import ndcg_score, roc_auc_score

from datasum.metrics import (auc_sampled, hr_at_k, inverse_propensity, kendall_tau, mean_metrics, mse, ndcg_at_k,
                             psp_at_k, ranking_metrics, recall_at_k, sample_negatives, top_k)


def random_block(seed, users=30, items=40, density=0.15):
    generator = np.random.default_rng(seed)
    scores = generator.random((users, items))  # continuous: no ties
    targets = (generator.random((users, items)) < density).astype(float)
    exclude = ((generator.random((users, items)) < 0.1) & (targets == 0)).astype(float)
    return scores, sp.csr_matrix(targets), sp.csr_matrix(exclude)


@pytest.mark.parametrize("k", [1, 5, 10, 40])
@pytest.mark.parametrize("seed", range(3))
def test_ndcg_equals_sklearn(seed, k):
    scores, targets, _ = random_block(seed)
    dense = targets.toarray()
    keep = dense.sum(1) > 0
    ours = ndcg_at_k(scores, targets, k)
    assert ours == pytest.approx(ndcg_score(dense[keep], scores[keep], k=k), abs=1e-12)


def test_ndcg_with_exclusion_equals_sklearn_on_the_remaining_items():
    scores, targets, exclude = random_block(7)
    per_user = ranking_metrics(scores, targets, [10], exclude)["nDCG@10"]
    for u in range(scores.shape[0]):
        free = exclude[u].toarray().ravel() == 0
        truth = targets[u].toarray().ravel()[free]
        if truth.sum() == 0:
            assert math.isnan(per_user[u])
        else:
            assert per_user[u] == pytest.approx(ndcg_score(truth[None], scores[u, free][None], k=10), abs=1e-12)


def loop_reference(scores, targets, k, exclude):
    "A plain per-user loop over the same definitions, written independently of the vectorised code."
    hr, recall, ndcg = [], [], []
    for u in range(scores.shape[0]):
        truth = set(targets[u].indices)
        if not truth: continue
        masked = set(exclude[u].indices)
        ranked = [i for i in np.argsort(-scores[u], kind="stable") if i not in masked][:k]
        hits = [i in truth for i in ranked]
        hr.append(sum(hits) / min(len(truth), k))
        recall.append(sum(hits) / len(truth))
        dcg = sum(h / math.log2(p + 2) for p, h in enumerate(hits))
        ndcg.append(dcg / sum(1 / math.log2(p + 2) for p in range(min(len(truth), k))))
    return np.mean(hr), np.mean(recall), np.mean(ndcg)


@pytest.mark.parametrize("seed", range(4))
def test_hr_recall_ndcg_equal_a_loop(seed):
    scores, targets, exclude = random_block(seed, density=0.3)
    for k in (3, 10):
        hr, recall, ndcg = loop_reference(scores, targets, k, exclude)
        assert hr_at_k(scores, targets, k, exclude) == pytest.approx(hr)
        assert recall_at_k(scores, targets, k, exclude) == pytest.approx(recall)
        assert ndcg_at_k(scores, targets, k, exclude) == pytest.approx(ndcg)


def test_golden_example_checked_by_hand():
    # scores .9 .. .4, item 0 masked, targets {2, 5}: the top-3 [1, 2, 3] hits one of min(2, 3) = 2 targets
    out = ranking_metrics(np.array([[.9, .8, .7, .6, .5, .4]]), sp.csr_matrix([[0, 0, 1, 0, 0, 1]]), [3],
                          sp.csr_matrix([[1, 0, 0, 0, 0, 0]]))
    assert out["HR@3"][0] == 0.5
    assert out["nDCG@3"][0] == pytest.approx(0.386853, abs=1e-6)


def test_psp_forms_by_hand():
    # targets {1, 3}; weights 2 and 5; top-2 = [0, 1]: one hit of weight 2; best = 5 + 2
    scores, targets = np.array([[.9, .8, .1, .2]]), sp.csr_matrix([[0, 1, 0, 1]])
    weights = np.array([1., 2., 1., 5.])
    assert psp_at_k(scores, targets, 2, weights, form="paper") == pytest.approx(2 / 7)
    assert psp_at_k(scores, targets, 2, weights, form="official") == pytest.approx(2 / 7 / 2)


def test_inverse_propensity_golden_values():
    values = inverse_propensity(np.array([0, 1, 10, 100, 1000]), 100_000)
    np.testing.assert_allclose(values, [14.923243, 11.512925, 5.541578, 2.370990, 1.389254], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_metrics_are_invariant_to_permuting_items(seed, k):
    scores, targets, exclude = random_block(seed, users=8, items=15, density=0.3)
    perm = np.random.default_rng(seed).permutation(scores.shape[1])
    a = mean_metrics(ranking_metrics(scores, targets, [k], exclude))
    b = mean_metrics(ranking_metrics(scores[:, perm], targets[:, perm], [k], exclude[:, perm]))
    for name in a:
        assert a[name] == pytest.approx(b[name], nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 15))
def test_metrics_lie_in_unit_interval_and_perfect_ranking_scores_one(seed, k):
    scores, targets, _ = random_block(seed, users=8, items=15, density=0.3)
    weights = inverse_propensity(np.asarray(targets.sum(0)).ravel(), 100)
    for name, values in ranking_metrics(scores, targets, [k], propensity=weights).items():
        values = values[~np.isnan(values)]
        assert np.all((values >= -1e-12) & (values <= 1 + 1e-12)), name
    perfect = targets.toarray() + np.random.default_rng(seed).random(targets.shape) * 1e-3
    best = ranking_metrics(perfect, targets, [k], propensity=weights)
    for name in (f"HR@{k}", f"nDCG@{k}"):
        values = best[name][~np.isnan(best[name])]
        np.testing.assert_allclose(values, 1.0)


def test_users_without_targets_are_skipped_not_zero():
    scores = np.array([[.9, .1], [.2, .8]])
    assert hr_at_k(scores, sp.csr_matrix([[1, 0], [0, 0]]), 1) == 1.0


def test_top_k_never_returns_excluded_items():
    scores, _, exclude = random_block(3)
    ranked = top_k(scores, 5, exclude)
    dense = exclude.toarray() > 0
    assert not np.take_along_axis(dense, ranked, 1).any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="k=50 must lie between 1 and the number of items"):
        ranking_metrics(np.zeros((2, 4)), sp.csr_matrix((2, 4)), [50])
    with pytest.raises(ValueError, match="targets has shape"):
        ranking_metrics(np.zeros((2, 4)), sp.csr_matrix((3, 4)), [2])
    with pytest.raises(ValueError, match="n_negatives=9"):
        sample_negatives(sp.csr_matrix(np.eye(4)), 9)


@pytest.mark.parametrize("seed", range(3))
def test_pooled_auc_equals_sklearn_on_the_concatenated_scores(seed):
    scores, targets, exclude = random_block(seed)
    negatives = sample_negatives(targets, 10, exclude, seed=seed)
    keep = np.diff(targets.indptr) > 0
    coo = targets.tocoo()
    positives = scores[coo.row, coo.col]
    negative_scores = np.take_along_axis(scores, negatives, 1)[keep].ravel()
    labels = np.r_[np.ones(len(positives)), np.zeros(len(negative_scores))]
    expected = roc_auc_score(labels, np.r_[positives, negative_scores])
    assert auc_sampled(scores, targets, negatives) == pytest.approx(expected)


def test_per_user_auc_is_the_mean_of_sklearn_per_user():
    scores, targets, exclude = random_block(11)
    negatives = sample_negatives(targets, 10, exclude, seed=0)
    expected = []
    for u in range(scores.shape[0]):
        pos = targets[u].indices
        if len(pos) == 0: continue
        labels = np.r_[np.ones(len(pos)), np.zeros(10)]
        expected.append(roc_auc_score(labels, np.r_[scores[u, pos], scores[u, negatives[u]]]))
    assert auc_sampled(scores, targets, negatives, pooled=False) == pytest.approx(np.mean(expected))


def test_sampled_negatives_are_distinct_and_never_positive_or_excluded():
    _, targets, exclude = random_block(5)
    negatives = sample_negatives(targets, 12, exclude, seed=1)
    blocked = (targets + exclude).toarray() > 0
    assert not np.take_along_axis(blocked, negatives, 1).any()
    assert all(len(set(row)) == 12 for row in negatives)
    np.testing.assert_array_equal(negatives, sample_negatives(targets, 12, exclude, seed=1))


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(2, 9), elements=st.integers(0, 4).map(float)), st.integers(0, 2**32 - 1))
def test_kendall_tau_equals_scipy(x, seed):
    y = np.random.default_rng(seed).integers(0, 4, len(x)).astype(float)
    expected = kendalltau(x, y).statistic
    ours = kendall_tau(x, y)
    if math.isnan(expected):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(expected)


def test_kendall_tau_golden_values():
    assert kendall_tau([.9, .8, .7, .6, .5], [.85, .7, .75, .5, .4]) == pytest.approx(0.8)
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert math.isnan(kendall_tau([1, 1, 1], [3, 2, 1]))


def global_random_state():
    "numpy's, Python's and torch's global random states, in a form that == compares."
    import random
    torch = pytest.importorskip("torch")
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return (kind, keys.tobytes(), position, has_gauss, cached), random.getstate(), torch.random.get_rng_state().numpy().tobytes()


def test_sample_negatives_leaves_the_global_random_state_alone():
    _, targets, exclude = random_block(5)
    before = global_random_state()
    for seed in (0, 7, np.random.default_rng(3)):
        sample_negatives(targets, 12, exclude, seed=seed)
    assert global_random_state() == before


def test_mse():
    assert mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="shape"):
        mse([1, 2], [1, 2, 3])


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 40)),
              elements=st.sampled_from([0.0, 1.0, 2.0, 2.5, -np.inf, np.nan])), st.data())
def test_top_k_breaks_ties_by_item_index_like_a_stable_full_sort(scores, data):
    # equal scores are common (popularity counts); the order among them must not depend on the
    # partition algorithm numpy picks for the processor
    k = data.draw(st.integers(1, scores.shape[1]))
    reference = np.argsort(-np.where(np.isnan(scores), -np.inf, scores), axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k(scores, k), reference)
