"""datasum.text: decoding rule, chunking, duplicates, pool invariants, tokenizer and the training loop."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, strategies as st

from datasum.text import (EOS, LMConfig, TinyLM, as_text, chunk_text, content_hash, corrupt, cosine_lr, encode_documents,
                          evaluate, lm_nll, mark_duplicates, normalized_key, train, train_tokenizer)


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
    start = evaluate(model, stream[:600])
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
        torch.manual_seed(1)
        model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=8, n_layer=1, n_head=2, n_embd=16))
        runs.append(train(model, stream, budget=10 * 4 * 8, eval_tokens=stream[:100], batch_size=4, n_evals=2, seed=7))
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_training_rejects_a_stream_shorter_than_the_context():
    model = TinyLM(LMConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(ValueError, match="more than block_size"):
        train(model, np.arange(5) % 10, budget=100)


def test_lm_nll_matches_an_unbatched_float64_reference(tiny_corpus):
    docs, tokenizer = tiny_corpus
    torch.manual_seed(0)
    model = TinyLM(LMConfig(vocab_size=tokenizer.get_vocab_size(), block_size=16, n_layer=1, n_head=2, n_embd=16))
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
