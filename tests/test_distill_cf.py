"""Distill-CF: the custom VJP against autodiff of the written-out sum (float64), sparsity directions,
determinism, resuming, the zoo on a summary, and the bad inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import datasum.distill_cf as dc
from datasum.config import rng
from datasum.data import Interactions, merge, random_split
from datasum.interface import evaluate_ranking
from datasum.recommenders import EASE


@pytest.fixture(scope="module")
def toy():
    return Interactions.from_columns(np.repeat(np.arange(60), 8), rng(7).integers(0, 40, 480), name="toy")


@pytest.mark.parametrize("tau", [0.3, 1.0, 10.0])
def test_custom_vjp_equals_autodiff_float64(tau):
    with jax.enable_x64(True):
        x = jnp.asarray(rng(1).normal(size=(5, 25)))
        v = jnp.asarray(rng(2).normal(size=(5, 25)))
        words = dc.draw_words(jax.random.key(3), 7)
        naive = jax.jit(jax.grad(lambda x: jnp.sum(dc.naive_gumbel_sum(x, words, tau) * v)))(x)
        fast = jax.jit(jax.grad(lambda x: jnp.sum(dc.gumbel_sum(x, words, tau) * v)))(x)
        np.testing.assert_allclose(np.asarray(fast), np.asarray(naive), rtol=0, atol=1e-12)
        # the full loss: its gradient through the custom VJP equals the one through the explicit sum
        targets = jnp.asarray((rng(4).random((12, 25)) < 0.3).astype(np.float64))
        def loss(sampler):
            def f(x):
                s = sampler(x, words, tau)
                pred = dc.ridge_prediction(s, targets, 1.0)
                return -jnp.mean(jnp.sum(jax.nn.log_softmax(pred, -1) * targets, -1)) + 0.1 * jnp.mean(jnp.sum(s, -1))
            return jax.jit(jax.grad(f))(x)
        np.testing.assert_allclose(np.asarray(loss(dc.gumbel_sum)), np.asarray(loss(dc.naive_gumbel_sum)), rtol=1e-9, atol=1e-12)


def test_sampling_mass_and_temperature():
    logits = jnp.zeros((50, 400), jnp.float32)
    words = dc.draw_words(jax.random.key(0), 20)
    flat = np.asarray(dc.gumbel_sum(logits, words, 100.0))
    np.testing.assert_allclose(flat.mean(), 20 / 400, rtol=0.02)     # large τ: every entry ≈ γ/I
    sharp = np.asarray(dc.gumbel_sum(logits, words, 0.05))
    assert dc.binarise(sharp).mean() < dc.binarise(flat).mean()       # small τ: samples pile up, fewer items


def test_penalty_and_tau_move_sparsity(toy):
    base = dict(steps=12, gamma=8, validate_every=12, seed=0, lr=0.5)
    low = dc.distill(toy, 8, penalty=1e-3, tau=1.0, **base)
    high = dc.distill(toy, 8, penalty=1e3, tau=1.0, **base)
    assert high.matrix.sum() < low.matrix.sum() and high.density() < low.density()
    hot = dc.distill(toy, 8, penalty=1e-3, tau=10.0, **base)
    cold = dc.distill(toy, 8, penalty=1e-3, tau=0.3, **base)
    assert cold.density() < hot.density()


def test_same_seed_same_summary_other_seed_other(toy):
    a = dc.distill(toy, 6, steps=5, gamma=4, validate_every=5, seed=2)
    b = dc.distill(toy, 6, steps=5, gamma=4, validate_every=5, seed=2)
    c = dc.distill(toy, 6, steps=5, gamma=4, validate_every=5, seed=3)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert not np.array_equal(a.matrix, c.matrix)


def test_resume_equals_uninterrupted(toy, tmp_path, monkeypatch):
    options = dict(steps=9, gamma=4, validate_every=3, seed=1)
    whole = dc.distill(toy, 6, **options)
    calls, original = [], dc.select_lambda
    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3: raise KeyboardInterrupt   # after the first validation's state was saved
        return original(*args, **kwargs)
    monkeypatch.setattr(dc, "select_lambda", interrupted)
    with pytest.raises(KeyboardInterrupt): dc.distill(toy, 6, checkpoint=tmp_path / "state.npz", **options)
    monkeypatch.setattr(dc, "select_lambda", original)
    assert (tmp_path / "state.npz").is_file()
    resumed = dc.distill(toy, 6, checkpoint=tmp_path / "state.npz", **options)
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in whole.history]


def test_zoo_model_trains_on_summary_through_interface(toy):
    split = random_split(toy, seed=42)
    summary = dc.distill(split.train, 8, split.val, steps=4, gamma=4, seed=0)
    fake, train, val, test = dc.on_one_index(summary.interactions(binary=True), split.train, split.val, split.test)
    model = EASE(lambdas=[10.0]).fit(fake)
    metrics = evaluate_ranking(model, test, merge(train, val), ks=(5,))
    assert 0 <= metrics["nDCG@5"] <= 1
    weighted = summary.interactions()
    assert weighted.ratings.max() <= 1 and len(weighted) >= len(summary.interactions(binary=True))


@pytest.mark.parametrize("budget, message", [(0, "budget must be a whole number >= 1"), (-3, "budget must be a whole number >= 1"),
                                             (61, "larger than the 60 users"), (2.5, "budget must be a whole number")])
def test_bad_budget(toy, budget, message):
    with pytest.raises(dc.DistillError, match=message): dc.distill(toy, budget)


def test_nan_logits_and_bad_settings(toy):
    with pytest.raises(dc.DistillError, match="NaN"): dc.distill(toy, 3, init=np.full((3, 40), np.nan))
    with pytest.raises(dc.DistillError, match="shape"): dc.distill(toy, 3, init=np.zeros((3, 5)))
    with pytest.raises(dc.DistillError, match="tau must be a finite number > 0"): dc.distill(toy, 3, tau=0.0)
    with pytest.raises(dc.DistillError, match="became NaN at step"): dc.distill(toy, 3, lr=3e38, tau=1e-3, steps=4, validate_every=1)
    empty = toy.subset(np.zeros(len(toy), bool))
    with pytest.raises(dc.DistillError, match="no training events"): dc.distill(empty, 3)
