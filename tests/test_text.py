"""datasum.text: decoding rule, chunking, duplicates, pool invariants, tokenizer and the training loop."""
import math
import os
import random

import numpy as np
import pandas as pd
import pytest
import torch
import torch._dynamo  # torch's first optimizer step imports it, and the import sets TORCHINDUCTOR_CACHE_DIR
from hypothesis import given, settings, strategies as st

from datasum.config import torch_session
from datasum.text import (EOS, LMConfig, TinyLM, as_text, chunk_text, content_hash, corrupt, cosine_lr, encode_documents,
                          heldout_halves, lm_nll, mark_duplicates, normalized_key, perplexity, pool_from_documents, train,
                          train_and_test, train_tokenizer, unigram_perplexity, window_targets)


def test_non_utf8_bytes_become_replacement_characters():
    assert as_text(b"ok \xff\xfe end") == "ok \ufffd\ufffd end"
    assert as_text("already text") == "already text"
    assert content_hash(b"abc") == content_hash("abc")
    with pytest.raises(TypeError, match="str or bytes"):
        as_text(None)


@given(st.lists(st.text(alphabet="abc \n", max_size=40), max_size=20), st.integers(3, 30))
@settings(max_examples=60, deadline=None)
def test_chunks_keep_every_word_in_order_and_respect_the_limit(paragraphs, limit):
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, chunk_words=limit, min_words=1)
    assert all(len(c.split()) <= limit for c in chunks)
    assert " ".join(" ".join(c.split()) for c in chunks).split() == text.split()


def test_near_exact_duplicates_ignore_case_space_and_punctuation():
    texts = ["Hello, World!", "hello world", "Hello   world.", "Hello there", "HELLO-WORLD"]
    assert mark_duplicates(texts).tolist() == [-1, 0, 0, -1, 0]
    assert normalized_key("a b") != normalized_key("ab")


def test_corruptions_are_junk_of_the_same_words():
    clean = "the quick brown fox jumps over the lazy dog again and again"
    assert sorted(corrupt(clean, "shuffle", 3).split()) == sorted(clean.split())
    assert set(corrupt(clean, "mojibake", 3).replace("?", "").split()) <= set(clean.split())
    repeated = corrupt(clean, "repeat", 3).split()
    assert len(set(repeated)) <= 4
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(clean, "nonsense", 0)


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    lrs = [cosine_lr(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert cosine_lr(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)


@pytest.fixture(scope="module")
def tiny_corpus():
    docs = [f"the {a} {v} on the {b}" for a in ("cat", "dog", "bird") for v in ("sat", "slept") for b in ("mat", "log", "rug")]
    tokenizer = train_tokenizer(docs * 10, vocab_size=300, cache=False)
    return docs, tokenizer


def test_tokenizer_round_trips_and_separates_documents(tiny_corpus):
    docs, tokenizer = tiny_corpus
    stream = encode_documents(tokenizer, docs[:3])
    eos = tokenizer.token_to_id(EOS)
    pieces = np.split(stream, np.flatnonzero(stream == eos) + 1)[:-1]
    assert [tokenizer.decode(p[:-1].tolist()) for p in pieces] == docs[:3]
    assert encode_documents(tokenizer, []).size == 0


def test_training_loss_and_heldout_perplexity_decrease(tiny_corpus):
    docs, tokenizer = tiny_corpus
    stream = encode_documents(tokenizer, docs * 20)
    model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=16, n_layer=1, n_head=2, n_embd=32))
    start = perplexity(model, stream[:600])
    history = train(model, stream, budget=80 * 8 * 16, eval_tokens=stream[:600], batch_size=8, lr=1e-2, n_evals=4, seed=0)
    assert history.eval_ppl.iloc[-1] < start / 5
    assert history.eval_ppl.iloc[0] == pytest.approx(start)
    assert history.train_loss.iloc[-1] < math.log(tokenizer.get_vocab_size()) / 2
    assert list(history.step) == sorted(history.step) and history.tokens.iloc[-1] == 80 * 8 * 16


def test_training_is_reproducible_from_the_seed(tiny_corpus):
    docs, tokenizer = tiny_corpus
    stream = encode_documents(tokenizer, docs * 5)
    runs = []
    for _ in range(2):
        with torch_session(1): model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=8, n_layer=1, n_head=2, n_embd=16))
        runs.append(train(model, stream, budget=10 * 4 * 8, eval_tokens=stream[:100], batch_size=4, n_evals=2, seed=7))
    pd.testing.assert_frame_equal(runs[0], runs[1])


@given(st.lists(st.integers(0, 6), min_size=1, max_size=60), st.lists(st.integers(0, 6), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_unigram_perplexity_is_the_add_one_model_in_float64(train_tokens, targets):
    counts = {t: train_tokens.count(t) for t in range(7)}
    log_likelihood = sum(math.log((counts[t] + 1) / (len(train_tokens) + 7)) for t in targets)
    assert unigram_perplexity(train_tokens, targets, 7) == pytest.approx(math.exp(-log_likelihood / len(targets)), rel=1e-12)


@given(st.integers(2, 200), st.integers(1, 17), st.one_of(st.none(), st.integers(2, 200)))
@settings(max_examples=100, deadline=None)
def test_window_targets_are_what_perplexity_predicts(length, block, max_tokens):
    tokens = np.arange(length)
    kept = tokens[:max_tokens]
    targets = window_targets(tokens, block, max_tokens)
    assert len(targets) % block == 0 and len(kept) - 1 - block < len(targets) <= len(kept) - 1
    assert (targets == kept[1:len(targets) + 1]).all()   # each window's inputs shifted by one


class _CountingLM(torch.nn.Module):
    "A stand-in model whose loss records the targets it was asked to predict."
    def __init__(self, block):
        super().__init__(); self.config, self.seen, self.weight = LMConfig(block_size=block), [], torch.nn.Parameter(torch.zeros(1))
    def forward(self, x, y):
        self.seen.append(y.reshape(-1)); return None, self.weight.sum() + 1.0


@pytest.mark.parametrize("length, block, max_tokens", [(41, 8, None), (41, 8, 20), (100, 7, 64)])
def test_perplexity_scores_exactly_the_window_targets(length, block, max_tokens):
    model = _CountingLM(block)
    perplexity(model, np.arange(length), block, batch_size=3, max_tokens=max_tokens)
    assert torch.cat(model.seen).tolist() == window_targets(np.arange(length), block, max_tokens).tolist()


@given(st.integers(0, 40), st.integers(0, 5))
@settings(max_examples=40, deadline=None)
def test_heldout_halves_partition_the_documents_the_same_way_for_a_seed(n, seed):
    frame = pd.DataFrame({"text": [f"d{i}" for i in range(n)]}, index=np.arange(n) * 3)
    validation, test = heldout_halves(frame, seed)
    assert sorted(validation.index.tolist() + test.index.tolist()) == frame.index.tolist()
    assert len(validation) == n // 2 and len(test) == n - n // 2
    assert heldout_halves(frame, seed)[0].index.tolist() == validation.index.tolist()


def test_train_and_test_keeps_the_best_validation_weights_and_scores_them_on_test(tiny_corpus):
    docs, tokenizer = tiny_corpus
    stream, other = encode_documents(tokenizer, docs * 20), encode_documents(tokenizer, docs[::-1] * 5)
    config = LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=16, n_layer=1, n_head=2, n_embd=32)
    model, history, test_ppl = train_and_test(config, stream, 40 * 8 * 16, other[:300], stream[:300], seed=2, batch_size=8,
                                              lr=1e-2, n_evals=4, eval_max_tokens=300)
    assert perplexity(model, other[:300], 16) == pytest.approx(history.eval_ppl.min(), rel=1e-5)
    assert test_ppl == pytest.approx(perplexity(model, stream[:300], 16), rel=1e-6)
    again = train_and_test(config, stream, 40 * 8 * 16, other[:300], stream[:300], seed=2, batch_size=8, lr=1e-2, n_evals=4,
                           eval_max_tokens=300)
    assert again[2] == test_ppl   # the seed fixes the initial weights and the batches


def test_training_rejects_a_stream_shorter_than_the_context():
    model = TinyLM(LMConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(ValueError, match="more than block_size"):
        train(model, np.arange(5) % 10, budget=100)


def test_lm_nll_matches_an_unbatched_float64_reference(tiny_corpus):
    docs, tokenizer = tiny_corpus
    with torch_session(0): model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=16, n_layer=1, n_head=2, n_embd=16))
    texts = [docs[0], docs[5] + " " + docs[6], "cat"]
    batched = lm_nll(model, tokenizer, texts, batch_size=3)
    eos = tokenizer.token_to_id(EOS)
    for text, value in zip(texts, batched):
        ids = torch.tensor([[eos] + tokenizer.encode(text).ids[:15]])
        with torch.no_grad(): logits, _ = model(ids)
        logp = torch.log_softmax(logits[0, :-1].double(), -1)
        reference = -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].mean().item()
        assert value == pytest.approx(reference, rel=1e-5)
    assert np.isnan(lm_nll(model, tokenizer, [""])[0])


def test_lm_nll_caps_the_tokens_and_leaves_the_training_mode(tiny_corpus):
    docs, tokenizer = tiny_corpus
    with torch_session(0): model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=16, n_layer=1, n_head=2, n_embd=16))
    long = " ".join(docs)
    prefix = tokenizer.decode(tokenizer.encode(long).ids[:3])                 # what a cut to 4 tokens (start + 3) keeps
    assert lm_nll(model, tokenizer, [long], max_tokens=4)[0] == pytest.approx(lm_nll(model, tokenizer, [prefix])[0], rel=1e-6)
    assert lm_nll(model, tokenizer, [long], max_tokens=100)[0] == lm_nll(model, tokenizer, [long])[0]   # never beyond block_size
    model.train()
    lm_nll(model, tokenizer, docs[:2])
    assert model.training


def documents(n_groups: int = 12) -> pd.DataFrame:
    "Labelled documents of two high-quality prose sources and one low-quality one, three per group."
    sources = [("sotu", "high"), ("brown", "high"), ("spam", "low")]
    rows = [(f"{name}-{g}", f"{name} document {g} {i} " + " ".join(f"w{g}x{i}x{j}" for j in range(10)), name, quality)
            for name, quality in sources for g in range(n_groups) for i in range(3)]
    return pd.DataFrame(rows, columns=["group", "text", "source", "quality"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pool_protocol_keeps_its_invariants(seed):
    table = pool_from_documents(documents(), max_per_source=10, heldout_docs=7, junk_per_kind=4, seed=seed)
    pool, heldout = table[table.split == "pool"], table[table.split == "heldout"]
    assert not set(pool.group) & set(heldout.group)                         # whole groups only
    assert 7 <= len(heldout) <= 7 + 2 and set(heldout.source) <= {"sotu", "brown"}
    assert heldout.groupby("group").size().eq(3).all()
    assert pool.source.value_counts().to_dict() == {"sotu": 10, "brown": 10, "spam": 10, "junk-repeat": 4, "junk-mojibake": 4,
                                                     "junk-shuffle": 4}
    assert table.id.is_unique and (table.id == [content_hash(t) for t in table.text]).all()
    pd.testing.assert_frame_equal(table, pool_from_documents(documents(), 10, 7, 4, seed))   # from the seed alone


def global_state() -> tuple:
    "Every global random state and the environment, to compare before and after a call."
    return (np.random.get_state()[1].tobytes(), random.getstate(), torch.random.get_rng_state().numpy().tobytes(), dict(os.environ))


def test_training_sampling_and_corruption_leave_global_state_alone(tiny_corpus):
    docs, tokenizer = tiny_corpus
    stream = encode_documents(tokenizer, docs * 5)
    np.random.seed(11); random.seed(11); torch.manual_seed(11)
    model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=8, n_layer=1, n_head=2, n_embd=16))
    before = global_state()   # (building the model above drew from torch's global generator, as nn.Module initialisation does)
    train(model, stream, budget=4 * 4 * 8, eval_tokens=stream[:100], batch_size=4, n_evals=2, seed=7)
    lm_nll(model, tokenizer, docs[:3])
    perplexity(model, stream[:100])
    pool_from_documents(documents(), 10, 7, 4, seed=3)
    corrupt(docs[0], "shuffle", 5)
    assert global_state() == before
