"""datasum.ask_llm: the paper's prompt, P(yes) against a naive reference, input rules, the cache, selection, the command."""
import copy
import json
import math
import os
import random

import numpy as np
import pandas as pd
import pytest
import torch
import torch._dynamo  # torch's first optimizer step imports it, and the import sets TORCHINDUCTOR_CACHE_DIR
from hypothesis import given, settings, strategies as st
from scipy.stats import kendalltau

from datasum.ask_llm import (PROMPT, AskLLM, PerplexityScorer, RandomScorer, ScoreCache, ask_llm_prompt, load_judge, native_bf16,
                             oracle_scores, rank_correlations, read_documents, resolve_dtype, sample_rate, scale_judge, tiny_judge)
from datasum.reproduce import main

# Typed from the paper (arXiv 2402.09668 v1, Fig. 3), independently of the module.
PAPER_PROMPT = (
    "###\nDOC\n###\n\n"
    "Does the previous paragraph demarcated within ### and ### contain informative signal for pre-training a "
    "large-language model? An informative datapoint should be well-formatted, contain some usable knowledge of the "
    "world, and strictly NOT have any harmful, racist, sexist, etc. content.\n\n"
    "OPTIONS:\n- yes\n- no")

DOCS = ["The mitochondrion is the membrane-bound organelle that produces most of the cell's ATP.",
        "buy now buy now cheap cheap pills",
        "In 1790 the President addressed both houses of Congress on the state of the Union and its finances.",
        "?? ??? ?? ????",
        "short"]


def test_prompt_is_the_papers():
    assert PROMPT.format(document="DOC") == PAPER_PROMPT
    assert ask_llm_prompt("a ### b") == PAPER_PROMPT.replace("DOC", "a  b")


@pytest.fixture(scope="module", params=["causal", "seq2seq"])
def judge(request):
    model, tokenizer = tiny_judge(request.param, seed=3, texts=DOCS)
    return AskLLM(model, tokenizer, batch_size=3, max_length=200, dtype="float32")


def naive_p_yes(scorer, document):
    "One prompt at a time, no padding, full logits, autograd on, float64 softmax."
    ids = torch.tensor([scorer.prompt_ids(document)])
    model = scorer.model
    if scorer.encoder_decoder:
        start = torch.tensor([[model.config.decoder_start_token_id]])
        logits = model(input_ids=ids, decoder_input_ids=start).logits
    else:
        logits = model(input_ids=ids).logits
    probabilities = torch.softmax(logits[0, -1].double(), -1)
    return float(probabilities[scorer.yes_ids].sum().detach())


def test_batched_p_yes_equals_one_by_one_reference(judge):
    batched = judge.score(DOCS, cache=False)
    reference = [naive_p_yes(judge, d) for d in DOCS]
    np.testing.assert_allclose(batched, reference, rtol=1e-4, atol=1e-9)
    assert ((batched > 0) & (batched < 1)).all()


# Twenty-odd documents of different kinds and lengths, so that P(yes) spreads enough to rank.
RANKED = DOCS[:4] + [f"Document {i}: " + " ".join(("alpha", "beta", "gamma", "delta", "omega", "pills", "cheap", "cell")[j % 8]
                                                   for j in range(i, 3 * i + 5)) for i in range(20)]


@pytest.mark.parametrize("seed", [3, 11])
def test_bfloat16_scores_agree_with_the_float32_reference_and_keep_the_ranking(seed):
    """bfloat16 keeps 8 mantissa bits (relative rounding 2**-9 per value), so a logit of size L moves by about L/500
    per rounding and P(yes) by that much relatively. Stated tolerance: |log P_bf16 - log P_fp32| <= 0.05 (5 %, about
    3x what these judges show); every pair of documents whose reference log-scores differ by more than twice that keeps
    its order (only near-ties may swap), and Kendall tau >= 0.9. The random judge's weights are scaled by 3 so that its
    P(yes) spreads (by a factor of about 2) and a ranking exists to preserve."""
    model, tokenizer = tiny_judge("causal", seed=seed, texts=RANKED)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2: parameter.mul_(3)
    fast = AskLLM(copy.deepcopy(model), tokenizer, batch_size=4, max_length=200, dtype="bfloat16")
    reference = np.log([naive_p_yes(AskLLM(model, tokenizer, max_length=200, dtype="float32"), d) for d in RANKED])
    assert fast.dtype == torch.bfloat16 and all(p.dtype == torch.bfloat16 for p in fast.model.parameters())
    scores = np.log(fast.score(RANKED, cache=False))
    tolerance = 0.05
    assert np.abs(scores - reference).max() <= tolerance
    i, j = np.triu_indices(len(RANKED), 1)
    apart = np.abs(reference[i] - reference[j]) > 2 * tolerance
    assert apart.mean() >= 0.25                                    # the check below is not vacuous
    assert np.all(np.sign(scores[i] - scores[j])[apart] == np.sign(reference[i] - reference[j])[apart])
    assert kendalltau(scores, reference).statistic >= 0.9


def test_dtype_choice_and_cache_key(tmp_path):
    model, tokenizer = tiny_judge("causal", seed=0)
    assert resolve_dtype("auto") == (torch.bfloat16 if native_bf16() else torch.float32)
    assert resolve_dtype("bf16") == resolve_dtype(torch.bfloat16) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_dtype("float16")
    as_given = AskLLM(model, tokenizer, max_length=200)                   # None: the model as it is
    assert as_given.dtype == torch.float32
    keys = {AskLLM(tiny_judge("causal", seed=0, tokenizer=tokenizer)[0], tokenizer, max_length=200, dtype=d).key
            for d in ("float32", "bfloat16")}
    assert len(keys) == 2 and as_given.key in keys


def test_tiny_judge_needs_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    model, tokenizer = tiny_judge("causal", seed=0)
    scores = AskLLM(model, tokenizer, max_length=128).score(DOCS[:2], cache=False)
    assert scores.shape == (2,)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.parquet"))


def test_the_smoke_scales_judge_is_the_tiny_one_without_a_cache(tmp_path, monkeypatch):
    from datasum.config import settings
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    judge, label, cache = scale_judge(settings("ask_llm", "smoke"), seed=3, texts=DOCS)
    again, _, _ = scale_judge(settings("ask_llm", "smoke"), seed=3, texts=DOCS)
    assert cache is False and "meaningless" in label and judge.model_id == "tiny-random-llama-seed3"
    np.testing.assert_array_equal(judge.score(DOCS, cache=False), again.score(DOCS, cache=False))   # the seed fixes the judge


def test_empty_long_and_non_utf8_documents(judge):
    scores = judge.score(["", "   \n ", DOCS[0]], cache=False)
    assert scores[0] == 0.0 and scores[1] == 0.0 and scores[2] > 0
    long_ids = judge.prompt_ids("word " * 5000)
    assert len(long_ids) <= judge.max_length
    assert long_ids[-len(judge.prompt_ids("x")) + 5:] == judge.prompt_ids("x")[-len(judge.prompt_ids("x")) + 5:]
    bad = b"caf\xe9 \xff au lait"
    assert judge.score([bad], cache=False)[0] == pytest.approx(judge.score(["caf\ufffd \ufffd au lait"], cache=False)[0])


def test_a_prompt_that_cannot_fit_is_an_error():
    model, tokenizer = tiny_judge("causal", seed=0)
    with pytest.raises(ValueError, match="leaves no room"):
        AskLLM(model, tokenizer, max_length=10).prompt_ids("hello")


def test_scores_are_cached_by_content_and_never_recomputed(judge, tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path)
    first = judge.score(DOCS, cache=cache)
    monkeypatch.setattr(judge, "_p_yes", lambda batch: (_ for _ in ()).throw(AssertionError("rescored")))
    np.testing.assert_array_equal(judge.score(list(reversed(DOCS)), cache=ScoreCache(tmp_path)), first[::-1])


@given(st.lists(st.one_of(st.floats(-5, 5), st.sampled_from([0.5, float("nan"), -math.inf])), min_size=1, max_size=40), st.data())
@settings(max_examples=100, deadline=None)
def test_sample_rate_matches_a_sort_reference(values, data):
    "Top round(rate * n) (at least 1), best first, ties by the lower index, NaN as -inf."
    scores = np.array(values)
    rate = data.draw(st.floats(1e-3, 1.0))
    keyed = np.where(np.isnan(scores), -np.inf, scores)
    reference = sorted(range(len(scores)), key=lambda i: (-keyed[i], i))[:max(1, int(round(rate * len(scores))))]
    assert sample_rate(scores, rate).tolist() == reference


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=30))
@settings(max_examples=60, deadline=None)
def test_rank_correlations_are_scipys_kendall_tau_b(pairs):
    x, y = (np.array(v, float) for v in zip(*pairs))
    tau = rank_correlations({"x": x, "y": y})
    expected = kendalltau(x, y).statistic
    assert (math.isnan(expected) and math.isnan(tau.loc["x", "y"])) or tau.loc["x", "y"] == pytest.approx(expected, abs=1e-12)
    assert tau.loc["x", "y"] == tau.loc["y", "x"] or math.isnan(expected)


def test_sample_rate_and_random_scorer():
    assert len(sample_rate(np.zeros(10), 0.1)) == 1
    with pytest.raises(ValueError):
        sample_rate(np.zeros(3), 0.0)
    a, b = RandomScorer(1).score(range(50)), RandomScorer(1).score(range(50))
    np.testing.assert_array_equal(a, b)


def test_perplexity_scorer_matches_a_reference():
    model, tokenizer = tiny_judge("causal", seed=1, texts=DOCS)
    scorer = PerplexityScorer(model, tokenizer, max_tokens=64, batch_size=4)
    scores = scorer.score(DOCS)
    for doc, score in zip(DOCS, scores):
        ids = torch.tensor([[tokenizer.eos_token_id] + tokenizer.encode(doc, add_special_tokens=False)[:63]])
        with torch.no_grad(): logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
        assert score == pytest.approx(logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].mean().item(), rel=1e-4)


def test_read_documents_rules(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'"plain string"\n{"id": "x", "text": "caf\xe9"}\n\n{"text": "ok"}\n')
    frame = read_documents(path)
    assert frame.id.tolist() == ["1", "x", "4"] and frame.text.tolist()[1] == "caf\ufffd"
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl, line 2: not JSON"):
        read_documents(tmp_path / "bad.jsonl")


def _saved_judge(tmp_path, monkeypatch):
    "A tiny causal judge saved as a local model folder, with the cache in `tmp_path`."
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    model, tokenizer = tiny_judge("causal", seed=2, texts=DOCS)
    model.save_pretrained(tmp_path / "judge")
    tokenizer.save_pretrained(tmp_path / "judge")
    return model, tokenizer


def test_score_command_with_a_local_model_folder_resumes(tmp_path, monkeypatch):
    model, tokenizer = _saved_judge(tmp_path, monkeypatch)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"id": i, "text": d}) for i, d in enumerate(DOCS)))
    out = tmp_path / "scores.parquet"
    assert main(["score", "--scorer", "ask-llm", "--model", str(tmp_path / "judge"), "--flush", "2", str(docs), str(out)]) == 0
    table = pd.read_parquet(out)
    assert table.id.tolist() == [str(i) for i in range(len(DOCS))]
    direct = AskLLM(model, tokenizer).score(DOCS, cache=False)
    np.testing.assert_allclose(table.score, direct, rtol=1e-4)
    # resume: a partial output is completed, its rows are kept as they are
    pd.read_parquet(out).iloc[:2].assign(score=[-1.0, -2.0]).to_parquet(out)
    assert main(["score", "--scorer", "ask-llm", "--model", str(tmp_path / "judge"), str(docs), str(out)]) == 0
    resumed = pd.read_parquet(out)
    assert resumed.score.iloc[:2].tolist() == [-1.0, -2.0]
    np.testing.assert_allclose(resumed.score.iloc[2:], direct[2:], rtol=1e-4)


def test_score_command_dtype_option(tmp_path, monkeypatch):
    model, tokenizer = _saved_judge(tmp_path, monkeypatch)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in DOCS))
    for dtype in ("float32", "bfloat16"):
        assert main(["score", "--model", str(tmp_path / "judge"), "--dtype", dtype, str(docs), str(tmp_path / f"{dtype}.parquet")]) == 0
    full, half = (pd.read_parquet(tmp_path / f"{d}.parquet").score.to_numpy() for d in ("float32", "bfloat16"))
    assert np.abs(np.log(half) - np.log(full)).max() <= 0.05 and not np.array_equal(half, full)
    assert len(list((tmp_path / "cache" / "scores").iterdir())) == 2           # one cache per dtype
    assert main(["score", "--dtype", "float16", str(docs), str(tmp_path / "x.parquet")]) == 2   # a usage error
    assert not (tmp_path / "x.parquet").exists()


def global_state() -> tuple:
    "Every global random state and the environment, to compare before and after a call."
    return (np.random.get_state()[1].tobytes(), random.getstate(), torch.random.get_rng_state().numpy().tobytes(), dict(os.environ))


def test_judges_scorers_and_sampling_leave_global_state_alone(tmp_path, monkeypatch):
    model, tokenizer = _saved_judge(tmp_path, monkeypatch)          # (sets DATASUM_CACHE for the test, before the snapshot)
    np.random.seed(5); random.seed(5); torch.manual_seed(5)
    before = global_state()
    tiny_judge("causal", seed=1, tokenizer=tokenizer)
    tiny_judge("seq2seq", seed=1, tokenizer=tokenizer)
    loaded, loaded_tokenizer, _ = load_judge(tmp_path / "judge")
    load_judge(tmp_path / "judge", weights=False)
    AskLLM(loaded, loaded_tokenizer, max_length=200).score(DOCS, cache=ScoreCache(tmp_path / "scores"))
    PerplexityScorer(model, tokenizer).score(DOCS)
    scores = RandomScorer(3).score(DOCS)
    sample_rate(scores, 0.4)
    sample_rate(oracle_scores(["high", "low"] * 10, 0.8, seed=2), 0.5)
    assert global_state() == before


# --- the experiment's measures: the judge's separation of the tiers, and won / lost / undecided ------------------------

@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["high", "mid", "low"]), st.integers(0, 5)), min_size=2, max_size=40))
def test_tier_separation_is_the_pairwise_auc(rows):
    from datasum.ask_llm import tier_separation
    quality, values = np.array([q for q, _ in rows]), np.array([float(v) for _, v in rows])
    got = tier_separation(quality, {"s": values}).iloc[0]
    high, low = values[quality == "high"], values[quality == "low"]
    if len(high) and len(low):   # the share of (high, low) pairs ranked the right way, ties one half
        pairs = [(h > l) + 0.5 * (h == l) for h in high for l in low]
        assert got.auc_high_vs_low == pytest.approx(np.mean(pairs), abs=1e-12)
    else: assert math.isnan(got.auc_high_vs_low)


def test_tier_separation_of_a_perfect_and_a_reversed_judge():
    from datasum.ask_llm import tier_separation
    quality = ["high", "low", "mid", "high", "low"]
    values = np.array([0.9, 0.1, 0.5, 0.8, 0.2])
    table = tier_separation(quality, {"perfect": values, "reversed": -values}).set_index("scorer")
    assert table.auc_high_vs_low.to_dict() == {"perfect": 1.0, "reversed": 0.0}
    assert table.loc["perfect", "auc_high_vs_rest"] == 1.0
    assert table.loc["perfect", ["mean_high", "mean_mid", "mean_low"]].tolist() == pytest.approx([0.85, 0.5, 0.15])


def _runs(a: list[float], b: list[float], rate: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame({"sampler": ["a"] * len(a) + ["r"] * len(b), "rate": rate, "seed": list(range(len(a))) + list(range(len(b))),
                         "heldout_ppl": a + b})


def test_a_rate_is_won_or_lost_only_beyond_both_spreads():
    from datasum.ask_llm import compare_samplers
    assert compare_samplers(_runs([10, 11, 12], [15, 16, 17]), "a", "r").verdict.tolist() == ["won"]   # 11 ± 1 vs 16 ± 1
    assert compare_samplers(_runs([15, 16, 17], [10, 11, 12]), "a", "r").verdict.tolist() == ["lost"]
    assert compare_samplers(_runs([10, 11, 12], [12, 13, 14]), "a", "r").verdict.tolist() == ["undecided"]   # 2 = 1 + 1: not beyond
    assert compare_samplers(_runs([10], [100]), "a", "r").verdict.tolist() == ["undecided"]   # one seed: no spread, nothing decided
    table = compare_samplers(pd.concat([_runs([10, 11, 12], [15, 16, 17], 0.1), _runs([20, 21, 22], [20, 21, 22], 0.5)]), "a", "r")
    assert table.rate.tolist() == [0.1, 0.5] and table.verdict.tolist() == ["won", "undecided"]
    assert table.difference.tolist() == pytest.approx([-5.0, 0.0]) and table.spread.tolist() == pytest.approx([2.0, 2.0])
