"""Farzi: reverse-mode Adam against autodiff through the unrolled loop, the summary's distributions, seeds, resumption, bad inputs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import datasum.farzi as farzi
from datasum.config import rng, torch_session
from datasum.farzi import (FarziError, FarziSummary, Learner, SoftLM, SoftSASRec, adam_step, autograd_memory, distill_sequences,
                           make_learner, meta_gradient, real_windows, summary_distributions)
from datasum.recommenders import xavier_init, padded_sequences
from datasum.text import LMConfig


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def problem(model="sasrec", n_items=15, length=5, n=2):
    with torch_session(0) as generator:
        if model == "sasrec":
            module = SoftSASRec(n_items, dim=8, max_len=length - 1).double()
            xavier_init(module, generator)
        else:
            module = SoftLM(LMConfig(vocab_size=n_items, block_size=length - 1, n_layer=1, n_head=2, n_embd=8)).double()
        D = summary_distributions(torch.randn(n, length, 3, dtype=torch.float64), torch.randn(3, n_items, dtype=torch.float64))
    inputs, targets = real_windows([rng(k).integers(0, n_items, 3 + k) for k in range(4)], length, model)
    learner = Learner(module)
    return learner, learner.flat(), D, inputs, targets


def relative(a, b):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("model", ["sasrec", "lm"])
@pytest.mark.parametrize("steps", [2, 3, 8])
@pytest.mark.parametrize("checkpoint_every", [None, 0, 3])
def test_reverse_adam_equals_unrolled_autodiff(model, steps, checkpoint_every):
    learner, w0, D, inputs, targets = problem(model)
    ours = meta_gradient(learner, w0, D, 1e-3, steps, inputs, targets, method="reverse", checkpoint_every=checkpoint_every)
    exact = meta_gradient(learner, w0, D, 1e-3, steps, inputs, targets, method="unrolled")
    assert ours.loss == pytest.approx(exact.loss, rel=1e-12)
    assert relative(ours.data, exact.data) < 1e-8
    assert relative(ours.weights, exact.weights) < 1e-8
    assert relative(ours.lr, exact.lr) < 1e-8


def test_learning_rate_gradient_matches_finite_differences():
    learner, w0, D, inputs, targets = problem()
    grad = meta_gradient(learner, w0, D, 1e-3, 4, inputs, targets).lr
    f = lambda lr: meta_gradient(learner, w0, D, lr, 4, inputs, targets).loss
    h = 1e-6
    assert grad == pytest.approx((f(1e-3 + h) - f(1e-3 - h)) / (2 * h), rel=1e-5)


def test_slides_variant_is_flagged_and_inexact():
    learner, w0, D, inputs, targets = problem()
    slides = meta_gradient(learner, w0, D, 1e-3, 8, inputs, targets, method="slides")
    exact = meta_gradient(learner, w0, D, 1e-3, 8, inputs, targets, method="unrolled")
    assert relative(slides.data, exact.data) > 1e-4
    with pytest.raises(ValueError, match="method must be one of"):
        meta_gradient(learner, w0, D, 1e-3, 2, inputs, targets, method="naive")


def test_adam_step_is_torch_adam():
    p = torch.nn.Parameter(torch.tensor([0.5, -1.0, 0.0, 2.0], dtype=torch.float64))
    optimizer = torch.optim.Adam([p], lr=0.05)
    w, m, v = p.detach().clone(), torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    for t in range(1, 7):
        g = torch.tensor([1.0, -t, 0.0, 0.3], dtype=torch.float64) * p.detach() ** 2
        p.grad = g.clone(); optimizer.step()
        w, m, v = adam_step(w, m, v, g, t, 0.05)
    torch.testing.assert_close(w, p.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("model", ["sasrec", "lm"])
def test_soft_inputs_of_one_hot_rows_are_the_ids(model):
    learner, w0, *_ = problem(model, n_items=12, length=6)
    ids = torch.tensor([[0, 2, 5, 7, 11], [1, 3, 4, 9, 10]])
    if model == "sasrec":
        rows = F.one_hot(ids, 13)[..., 1:].double()  # id 0 pads: an all-zero row
    else:
        rows = F.one_hot(ids, 12).double()
    torch.testing.assert_close(learner.logits(w0, rows), learner.logits(w0, ids), rtol=1e-10, atol=1e-10)


def test_summary_rows_are_distributions():
    generator = torch.Generator().manual_seed(0)
    for temperature in (0.1, 1.0, 10.0):
        D = summary_distributions(torch.randn(4, 7, 3, generator=generator), torch.randn(3, 50, generator=generator), temperature)
        assert (D >= 0).all()
        torch.testing.assert_close(D.sum(-1), torch.ones(4, 7))
    summary = FarziSummary(np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32),
                           np.random.default_rng(1).normal(size=(4, 9)).astype(np.float32), 0.7, np.arange(9))
    np.testing.assert_allclose(summary.distributions().sum(-1), 1, rtol=1e-5)
    assert summary.sequences().shape == (2, 3) and summary.sequences().max() < 9


SEQUENCES = [rng(k).integers(0, 25, 8) for k in range(16)]
FAST = dict(dim=8, latent_dim=3, steps=4, inner_steps=2, lr=0.1, real_batch=6, pool_size=2, save_every=1)


def test_seeds_make_it_deterministic():
    a, b = distill_sequences(SEQUENCES, 3, 5, **FAST, seed=1), distill_sequences(SEQUENCES, 3, 5, **FAST, seed=1)
    np.testing.assert_array_equal(a.latent, b.latent)
    np.testing.assert_array_equal(a.decoder, b.decoder)
    assert a.history == b.history
    assert not np.array_equal(a.latent, distill_sequences(SEQUENCES, 3, 5, **FAST, seed=2).latent)
    assert torch.equal(make_learner("lm", 25, 5, dim=8, heads=2, seed=4).flat(), make_learner("lm", 25, 5, dim=8, heads=2, seed=4).flat())


def test_pretrained_pool_runs():
    summary = distill_sequences(SEQUENCES, 2, 5, **(FAST | {"steps": 2}), pool="pretrained", pretrain_steps=3)
    assert summary.distributions().shape == (2, 5, 25)


def test_an_interrupted_run_resumes_to_the_same_summary(tmp_path, monkeypatch):
    whole = distill_sequences(SEQUENCES, 3, 5, **FAST)
    calls, original = [], farzi.meta_gradient
    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3: raise KeyboardInterrupt
        return original(*args, **kwargs)
    monkeypatch.setattr(farzi, "meta_gradient", interrupted)
    with pytest.raises(KeyboardInterrupt):
        distill_sequences(SEQUENCES, 3, 5, **FAST, checkpoint=tmp_path / "run.npz")
    monkeypatch.setattr(farzi, "meta_gradient", original)
    resumed = distill_sequences(SEQUENCES, 3, 5, **FAST, checkpoint=tmp_path / "run.npz")
    np.testing.assert_array_equal(resumed.latent, whole.latent)
    assert resumed.history == whole.history


def test_lm_summary():
    summary = distill_sequences(SEQUENCES, 2, 5, model="lm", heads=2, **(FAST | {"steps": 2}))
    assert summary.distributions().shape == (2, 5, 25)


@pytest.mark.parametrize("sequences, n, length, vocabulary, message", [
    ([np.array([1, 2]), np.array([3])], 2, 5, None, "sequence 1 has 1 event"),
    ([np.array([], dtype=np.int64)], 2, 5, None, "sequence 0 has 0 event"),
    ([np.array([0, 0]), np.array([0, 0, 0])], 2, 5, None, "vocabulary has 1 item"),
    (SEQUENCES, 0, 5, None, "n_sequences must be a whole number >= 1"),
    (SEQUENCES, -3, 5, None, "n_sequences must be a whole number >= 1"),
    (SEQUENCES, 2, 1, None, "length must be a whole number >= 2"),
    (SEQUENCES, 2, 5, 10, "smaller than the largest index"),
    ([], 2, 5, None, "no sequences"),
])
def test_bad_inputs(sequences, n, length, vocabulary, message):
    with pytest.raises(FarziError, match=message):
        distill_sequences(sequences, n, length, vocabulary, **FAST)


@pytest.mark.parametrize("option, message", [({"model": "gru"}, "model must be one of"), ({"pool": "best"}, "pool must be one of"),
                                             ({"method": "naive"}, "method must be one of"), ({"checkpoint_every": -1}, "checkpoint_every must be >= 0")])
def test_bad_options(option, message):
    with pytest.raises(FarziError, match=message):
        distill_sequences(SEQUENCES, 2, 5, **(FAST | option))


def test_reverse_memory_is_flat_in_T():
    learner, w0, D, inputs, targets = problem()
    def peak(method, steps, every=None):
        with autograd_memory() as memory: result = meta_gradient(learner, w0, D, 1e-3, steps, inputs, targets, method, checkpoint_every=every)
        return memory["peak"] + result.state_bytes
    assert peak("reverse", 16, every=0) < 1.05 * peak("reverse", 4, every=0)
    assert peak("unrolled", 16) > 3 * peak("unrolled", 4)
    w_bytes = 3 * w0.numel() * 8   # one exact state: w, m, v in float64
    assert peak("reverse", 16) - peak("reverse", 16, every=0) == (16 // 4 - 1 + 4 - 1) * w_bytes   # 3 checkpoints, a segment of 3 new states


def test_replay_gives_the_forward_states():
    learner, w0, D, *_ = problem()
    _, _, _, kept = farzi.train_adam(learner.summary_loss, w0, D, 1e-2, 10, checkpoint_every=4)
    assert sorted(kept) == [4, 8]
    replay = farzi.Replay(learner.summary_loss, w0, kept, D, 1e-2, 4)
    for t in (9, 6, 5, 2, 0):
        forward = farzi.train_adam(learner.summary_loss, w0, D, 1e-2, t)[:3]
        assert all(torch.equal(a, b) for a, b in zip(replay(t), forward))


def test_exact_states_hold_on_long_loops_where_rebuilt_ones_drift():
    learner, w0, D, inputs, targets = problem(n_items=20, length=6, n=3)
    exact = meta_gradient(learner, w0, D, 1e-2, 96, inputs, targets, method="unrolled")
    ours, rebuilt = (meta_gradient(learner, w0, D, 1e-2, 96, inputs, targets, checkpoint_every=every) for every in (None, 0))
    assert relative(ours.data, exact.data) < 1e-8
    assert relative(rebuilt.data, exact.data) > 100 * relative(ours.data, exact.data)


# The text path: a token stream cut into blocks, distilled for the tiny LM, which trains on the summary.
STREAM = np.tile(rng(7).integers(0, 40, 30), 12)   # a periodic token stream over a vocabulary of 40
TEXT = dict(model="lm", dim=8, heads=2, latent_dim=3, steps=3, inner_steps=2, lr=0.1, inner_lr=3e-3, real_batch=8, pool_size=2)


def test_token_blocks():
    blocks = farzi.token_blocks(np.arange(11, dtype=np.int32), 4)
    assert blocks.dtype == np.int64 and blocks.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    inputs, targets = real_windows(list(blocks), 4, "lm")
    assert inputs.tolist() == blocks[:, :-1].tolist() and targets.tolist() == blocks[:, 1:].tolist()
    with pytest.raises(FarziError, match="length must be a whole number >= 2"):
        farzi.token_blocks(np.arange(11), 1)


def test_text_summary_rows_are_distributions_over_the_vocabulary():
    summary = distill_sequences(list(farzi.token_blocks(STREAM, 6)), 3, 6, 40, **TEXT)
    D = summary.distributions()
    assert D.shape == (3, 6, 40) and (D >= 0).all()
    np.testing.assert_allclose(D.sum(-1), 1, rtol=1e-5)
    assert summary.sequences().max() < 40


@pytest.mark.parametrize("steps", [2, 4])
def test_text_meta_gradient_equals_unrolled_autodiff(steps):
    learner = make_learner("lm", 40, 6, dim=8, heads=2, seed=0, dtype=torch.float64)
    with torch_session(0):
        D = summary_distributions(torch.randn(2, 6, 3, dtype=torch.float64), torch.randn(3, 40, dtype=torch.float64))
    inputs, targets = real_windows(list(farzi.token_blocks(STREAM, 6)[:8]), 6, "lm")
    w0 = learner.flat()
    ours = meta_gradient(learner, w0, D, 1e-3, steps, inputs, targets, method="reverse")
    exact = meta_gradient(learner, w0, D, 1e-3, steps, inputs, targets, method="unrolled")
    assert relative(ours.data, exact.data) < 1e-8 and relative(ours.weights, exact.weights) < 1e-8 and relative(ours.lr, exact.lr) < 1e-8


def test_text_path_is_deterministic_by_seed():
    blocks = list(farzi.token_blocks(STREAM, 6))
    a, b = (distill_sequences(blocks, 2, 6, 40, **TEXT, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.latent, b.latent)
    np.testing.assert_array_equal(a.decoder, b.decoder)
    assert not np.array_equal(a.latent, distill_sequences(blocks, 2, 6, 40, **TEXT, seed=4).latent)
    fit = lambda data, seed: farzi.fit_lm(data, 40, 6, STREAM[:61], dim=8, heads=2, steps=6, validate_every=3, seed=seed)
    first, second = fit(torch.from_numpy(a.distributions()), 1), fit(torch.from_numpy(a.distributions()), 1)
    assert all(torch.equal(p, q) for p, q in zip(first.parameters(), second.parameters()))
    assert first.best_validation_ == second.best_validation_


def test_fit_lm_learns_real_blocks_and_checks_the_vocabulary():
    lm = farzi.fit_lm(farzi.token_blocks(STREAM, 9), 40, 9, STREAM[:200], dim=16, steps=60, lr=1e-2, validate_every=20)
    assert lm.best_validation_ < 10          # a periodic stream: far below the vocabulary's 40
    with pytest.raises(FarziError, match="over 30 tokens, the vocabulary has 40"):
        farzi.fit_lm(torch.full((2, 9, 30), 1 / 30), 40, 9, STREAM[:200], steps=1)
