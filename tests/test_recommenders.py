"""Cross-checks of the recommender zoo: EASE against per-item ridge regressions, the fast paths against their definitions,
learning on ML-100K, determinism, the caller's state left alone, bad input."""
import os
import random

import numpy as np
import pytest
import torch

from datasum.data import DatasetError, Interactions, load, merge, random_split, sequential_split
from datasum.interface import PopRec, RecommenderError, evaluate_ranking
from datasum.recommenders import (EASE, MF, MVAE, SASRec, SVAE, BiasOnly, LightGCN, NeuMF, ease_weights, normalized_adjacency,
                                  _SymmetricPropagation)


def synthetic(n_users=80, n_items=40, per_user=8, seed=0, ratings=False):
    "Users of four taste groups, each drawing items mostly from its own quarter of the catalogue, with timestamps."
    gen = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        group = u % 4
        liked = gen.choice(np.arange(group * n_items // 4, (group + 1) * n_items // 4), per_user - 2, replace=False)
        other = gen.choice(np.setdiff1d(np.arange(n_items), liked), 2, replace=False)
        for i in np.concatenate([liked, other]): users.append(u); items.append(i)
    users, items = np.array(users), np.array(items)
    values = gen.integers(1, 6, len(users)).astype(float) if ratings else None
    return Interactions.from_columns(users, items, values, timestamps=np.arange(len(users)), name="synthetic")


@pytest.fixture(scope="module")
def ml100k():
    try: return load("ml-100k")
    except DatasetError as error: pytest.skip(f"ML-100K not available: {error}")


# --- EASE -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.5, 10.0, 300.0])
def test_ease_equals_independent_ridge_regressions(lam):
    "EASE's B column j is the ridge regression of item j's column on the other items' columns (float64, per column)."
    data = synthetic(seed=3)
    X = (data.to_csr().toarray() > 0).astype(np.float64)
    n_items = X.shape[1]
    expected = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = np.delete(np.arange(n_items), j)
        A = X[:, others]
        expected[others, j] = np.linalg.solve(A.T @ A + lam * np.eye(n_items - 1), A.T @ X[:, j])
    np.testing.assert_allclose(ease_weights(X.T @ X, lam), expected, atol=1e-9)
    model = EASE(lambdas=[lam]).fit(data)
    np.testing.assert_allclose(model.weights_, expected, atol=1e-5)
    np.testing.assert_allclose(model.score(np.arange(5)), X[:5] @ expected, atol=1e-4)


def test_ease_grid_equals_dense_solve_at_the_chosen_lambda():
    "The eigendecomposition path used for the grid gives the dense solve's B at the lambda it picked."
    split = random_split(synthetic(n_users=120, seed=4), seed=1)
    model = EASE(lambdas=[1.0, 30.0, 1000.0]).fit(split.train, split.val)
    assert model.lam_ in (1.0, 30.0, 1000.0) and len(model.validation_) == 3
    X = (split.train.to_csr().toarray() > 0).astype(np.float64)
    P = np.linalg.inv(X.T @ X + model.lam_ * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)


# --- fast paths against their definitions ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["gmf", "mlp", "both"])
def test_neumf_all_items_equals_forward(mode):
    "NeuMF scores all items with the first MLP layer split and two layers fused; forward() on every pair agrees (float64)."
    data = synthetic(n_users=12, n_items=10, per_user=4)
    network = NeuMF(dim=6, epochs=1, pretrain_epochs=0, batch_size=64).fit(data).module_.double().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in network.parameters(): parameter.copy_(torch.randn(parameter.shape, dtype=torch.float64, generator=generator))
    network.mode = mode
    users = torch.tensor([0, 3, 7, 11])
    pairs = users.repeat_interleave(data.n_items), torch.arange(data.n_items).repeat(len(users))
    with torch.no_grad():
        np.testing.assert_allclose(network.all_items(users).reshape(-1).numpy(), network(*pairs).numpy(), rtol=1e-12, atol=1e-12)


def test_lightgcn_propagation_backward_passes_gradcheck():
    "LightGCN's custom backward (A again, for the symmetric A) against finite differences and against autograd, float64."
    data = synthetic(n_users=20, n_items=12, per_user=4)
    dense = normalized_adjacency(data).to_dense().double()
    adjacency = dense.to_sparse_csr()
    x = torch.randn(len(dense), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: _SymmetricPropagation.apply(adjacency, x), (x,))
    grad = torch.randn(len(dense), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours, = torch.autograd.grad(_SymmetricPropagation.apply(adjacency, x), x, grad)
    reference, = torch.autograd.grad(dense @ x, x, grad)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-12)


# --- learning on ML-100K ----------------------------------------------------------------------------------------

def test_bpr_loss_decreases_and_mf_beats_poprec(ml100k):
    split = random_split(ml100k, seed=42)
    mf = MF(loss="bpr", dim=32, epochs=6, batch_size=2048, lr=0.01, validate_every=100, seed=0, threads=1).fit(split.train)
    losses = [h["loss"] for h in mf.history_]
    assert losses[-1] < losses[0] and all(b <= a + 1e-3 for a, b in zip(losses, losses[1:])), losses
    context = merge(split.train, split.val)
    mf_ndcg = evaluate_ranking(mf, split.test, context)["nDCG@10"]
    pop_ndcg = evaluate_ranking(PopRec().fit(split.train), split.test, context)["nDCG@10"]
    assert mf_ndcg > 1.3 * pop_ndcg, (mf_ndcg, pop_ndcg)


def test_sasrec_beats_poprec_on_the_sequential_split(ml100k):
    split = sequential_split(ml100k)
    sasrec = SASRec(dim=32, max_len=50, epochs=8, batch_size=64, lr=2e-3, validate_every=100, seed=0, threads=1).fit(split.train)
    context = merge(split.train, split.val)
    ours = evaluate_ranking(sasrec, split.test, context, ks=(10,))
    popular = evaluate_ranking(PopRec().fit(split.train), split.test, context, ks=(10,))
    assert ours["nDCG@10"] > popular["nDCG@10"] and ours["HR@10"] > popular["HR@10"], (ours, popular)


# --- determinism ---------------------------------------------------------------------------------------------

SMALL = {
    "PopRec": lambda seed: PopRec(),
    "EASE": lambda seed: EASE(lambdas=[5.0, 50.0]),
    "BiasOnly": lambda seed: BiasOnly(epochs=3, batch_size=64, seed=seed),
    "MF-bpr": lambda seed: MF(dim=8, epochs=3, batch_size=64, seed=seed),
    "MF-mse": lambda seed: MF(loss="mse", dim=8, epochs=3, batch_size=64, seed=seed),
    "NeuMF": lambda seed: NeuMF(dim=8, epochs=2, pretrain_epochs=1, batch_size=64, seed=seed),
    "MVAE": lambda seed: MVAE(hidden=16, latent=8, epochs=3, batch_size=16, seed=seed),
    "LightGCN": lambda seed: LightGCN(dim=8, epochs=3, batch_size=64, seed=seed),
    "SASRec": lambda seed: SASRec(dim=8, max_len=6, epochs=2, batch_size=16, seed=seed),
    "SVAE": lambda seed: SVAE(embedding=8, hidden=8, latent=4, max_len=6, loss_positions=3, epochs=2, batch_size=16, seed=seed),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_model_is_deterministic_under_a_seed(name):
    data = synthetic(ratings=name == "MF-mse")
    split = random_split(data, seed=0)
    users = np.arange(10)
    torch.manual_seed(123)  # the global torch state must not matter ...
    first = SMALL[name](0).fit(split.train, split.val).score(users)
    torch.manual_seed(456)
    second = SMALL[name](0).fit(split.train, split.val).score(users)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (10, data.n_items) and first.dtype == np.float32
    if name not in ("PopRec", "EASE"):  # ... and a different seed gives a different model
        assert not np.array_equal(first, SMALL[name](1).fit(split.train, split.val).score(users))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_fit_leaves_the_callers_global_state_alone(name):
    "Python's, numpy's and torch's global generators, torch's thread count and the environment are as before the fit."
    split = random_split(synthetic(ratings=name == "MF-mse"), seed=0)
    random.seed(11); np.random.seed(12); torch.manual_seed(13)
    threads = torch.get_num_threads()
    model = SMALL[name](0)
    if hasattr(model, "threads"): model.threads = 2 if threads == 1 else 1   # a fit on a thread count of its own
    python, (kind, keys, position, *gauss), generator, environment = (
        random.getstate(), np.random.get_state(), torch.random.get_rng_state(), dict(os.environ))
    model.fit(split.train, split.val).score(np.arange(5))
    assert random.getstate() == python
    after_kind, after_keys, after_position, *after_gauss = np.random.get_state()
    assert (after_kind, after_position, after_gauss) == (kind, position, gauss) and np.array_equal(after_keys, keys)
    assert torch.equal(torch.random.get_rng_state(), generator)
    assert torch.get_num_threads() == threads
    assert dict(os.environ) == environment


def test_predict_gives_ratings_near_the_mean_for_bias_only():
    data = synthetic(ratings=True)
    model = BiasOnly(loss="mse", epochs=30, batch_size=64, lr=0.05, validate_every=100).fit(data)
    predicted = model.predict(data.users, data.items)
    assert np.mean((predicted - data.ratings) ** 2) < np.var(data.ratings)


# --- context: sequential models read the history they are given ----------------------------------------------------

def test_sequential_scores_depend_on_the_context():
    split = sequential_split(synthetic())
    model = SASRec(dim=8, max_len=6, epochs=2, batch_size=16).fit(split.train)
    assert not np.allclose(model.score(np.arange(5)), model.score(np.arange(5), merge(split.train, split.val)))
    np.testing.assert_array_equal(model.score(np.arange(5)), model.score(np.arange(5), split.train))


# --- bad arguments -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SMALL))
def test_empty_training_set_is_a_clear_error(name):
    data = synthetic()
    with pytest.raises(RecommenderError, match="has no events"):
        SMALL[name](0).fit(data.subset(np.zeros(len(data), bool)))


def test_other_bad_arguments():
    data = synthetic()
    with pytest.raises(RecommenderError, match="not fitted"): MF().score([0])
    with pytest.raises(RecommenderError, match="loss must be"): MF(loss="hinge")
    with pytest.raises(RecommenderError, match="user indices"): PopRec().fit(data).score([data.n_users])
    with pytest.raises(RecommenderError, match="ranks items"): PopRec().fit(data).predict([0], [0])
    with pytest.raises(RecommenderError, match="lambda must be >= 0"): EASE(lambdas=[-1.0]).fit(data)
    with pytest.raises(RecommenderError, match="must be Interactions"): PopRec().fit(np.zeros((3, 3)))
    other = Interactions.from_columns([0, 1], [0, 1])
    with pytest.raises(RecommenderError, match="context has"): EASE(lambdas=[1.0]).fit(data).score([0], other)
    with pytest.raises(ValueError, match="k=41 must lie between 1 and the number of items"):
        evaluate_ranking(PopRec().fit(data), data, data, ks=(41,))


def test_mvae_noise_scale_scales_the_training_noise_only():
    "noise_scale = 0 (and no dropout) makes a training forward pass the eval one; the default noise does not."
    from datasum.recommenders import _VariationalAutoencoder
    rows = torch.eye(12)[:4]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        quiet, noisy = _VariationalAutoencoder(12, 8, 4, 0.0, noise_scale=0.0), _VariationalAutoencoder(12, 8, 4, 0.0)
        noisy.load_state_dict(quiet.state_dict())
        reference = quiet.eval()(rows)[0]
        torch.testing.assert_close(quiet.train()(rows)[0], reference)
        assert not torch.allclose(noisy.train()(rows)[0], reference)
    assert MVAE().noise_scale == 0.01 and MVAE().latent == 64   # the defaults chosen on ML-100K validation
