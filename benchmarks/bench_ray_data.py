"""Ask-LLM scoring on Ray Data (datasum.ray_data) against the single-process scorer, in one run.

Measured on the same documents, each run with an empty cache of its own:
* single: `datasum.ask_llm.score_file` in this process, one torch thread (the reference of the ratios);
* ray-1, ray-2: `datasum.ray_data.ray_score_file` on a local Ray with 1 and 2 judge actors of one thread each;
  the ratio is documents per second against single's (the job's wall time, judge loads and actor start included);
* overhead: Ray's fixed cost on a small job: starting a local Ray, and a 2-worker job on `SMALL` documents less
  single's time for them;
* per-document cost: single's seconds per document and per core, with the judge's FLOPs per document
  (2 x parameters x prompt tokens), from which the C4 arithmetic of the README is made.
The judge is SmolLM2-135M-Instruct (from PyPI, float32); with --tiny, a tiny random Llama and fewer documents.

    python benchmarks/bench_ray_data.py            (or: make bench)
    python benchmarks/bench_ray_data.py --tiny     (a tiny judge, to check that it runs)
"""
import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

WORDS = ("the model of a corpus reads every page and a judge decides whether the text would teach a language model "
         "something about the world well formatted clear and useful").split()


def documents(n: int, seed: int = 0) -> list[str]:
    "`n` documents of 60 to 200 random words."
    from datasum.config import rng
    draw = rng(seed, "bench-ray-data")
    return [" ".join(draw.choice(WORDS, size=int(draw.integers(60, 200)))) for _ in range(n)]


def write_docs(folder: Path, name: str, texts: list[str]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def fresh_cache(folder: Path, models: Path) -> Path:
    "An empty datasum cache at `folder` that shares the real cache's `models` (no judge is fetched again)."
    folder.mkdir(parents=True)
    (folder / "models").symlink_to(models, target_is_directory=True)
    return folder


def timed(function, cache: Path):
    "Wall seconds of `function()` with the datasum cache (this script's DATASUM_CACHE) at `cache`, and its result."
    os.environ["DATASUM_CACHE"] = str(cache)
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny random judge and few documents")
    parser.add_argument("--docs", type=int, default=None, help="documents to score (default 64, --tiny 96)")
    args = parser.parse_args(argv)
    import numpy as np
    import ray
    from datasum.ask_llm import AskLLM, LazyScorer, make_scorer, score_file, tiny_judge
    from datasum.config import cache_dir, torch_threads
    from datasum.ray_data import ray_score_file
    models = cache_dir() / "models"
    models.mkdir(exist_ok=True)
    n, small, flush = args.docs or (96 if args.tiny else 64), 8, 16
    texts = documents(n)
    if args.tiny:
        judge = AskLLM(*tiny_judge(seed=0, texts=texts[:40]), batch_size=8, max_doc_tokens=128)
        scorer, label = judge, "tiny random Llama (64 hidden, 2 layers)"
    else:
        judge = make_scorer("ask-llm", "smollm2", batch_size=8, max_doc_tokens=128)
        scorer = LazyScorer("ask-llm", judge.key, lambda: make_scorer("ask-llm", "smollm2", batch_size=8, max_doc_tokens=128))
        label = "SmolLM2-135M-Instruct, float32"
    params = sum(p.numel() for p in judge.model.parameters())
    tokens = float(np.mean([len(judge.prompt_ids(t)) for t in texts]))
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    cache = lambda name: fresh_cache(work / name, models)
    docs, few = write_docs(work, "docs.jsonl", texts), write_docs(work, "few.jsonl", texts[:small])
    with torch_threads(1):
        single, reference = timed(lambda: score_file(judge, docs, work / "single.parquet", flush=flush, progress=False), cache("c0"))
        single_small, _ = timed(lambda: score_file(judge, few, work / "single-few.parquet", flush=flush, progress=False), cache("c1"))
    os.environ["DATASUM_CACHE"] = str(cache("actors"))   # the actors' cache (they load the judge from its models)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    startup = time.perf_counter() - start
    rows = {}
    for workers in (1, 2):
        seconds, table = timed(lambda: ray_score_file(scorer, docs, work / f"ray{workers}.parquet", workers=workers, flush=flush,
                                                      progress=False), cache(f"ray{workers}"))
        assert np.array_equal(table.score.to_numpy(), reference.score.to_numpy()), "Ray's scores differ from one process's"
        rows[workers] = seconds
    ray_small, _ = timed(lambda: ray_score_file(scorer, few, work / "ray-few.parquet", workers=2, flush=flush, progress=False), cache("c9"))
    ray.shutdown()
    per_doc = single / n
    print(f"judge: {label}; {n} documents of {tokens:.0f} prompt tokens on average; batch 8, flush {flush}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"single process, 1 thread: {single:.1f} s ({n / single:.2f} docs/s; {per_doc * 1e3:.1f} ms per document per core)")
    for workers, seconds in rows.items():
        print(f"ray, {workers} worker{'s' if workers > 1 else ''}: {seconds:.1f} s ({n / seconds:.2f} docs/s); "
              f"throughput ratio to single: {single / seconds:.2f}x (scores bit-identical)")
    print(f"ray, 2 against 1 worker: {rows[1] / rows[2]:.2f}x")
    print(f"overhead of Ray on a small job: ray.init {startup:.1f} s; a {small}-document job {ray_small:.1f} s against "
          f"{single_small:.1f} s in one process (+{ray_small - single_small:.1f} s)")
    flops = 2 * params * tokens
    print(f"judge FLOPs per document: 2 x {params / 1e6:.3g}M x {tokens:.0f} = {flops:.3g}; this CPU core did "
          f"{flops / per_doc / 1e9:.1f} GFLOP/s")
    print(json.dumps({"docs": n, "single_s": single, "ray1_s": rows[1], "ray2_s": rows[2], "ray_init_s": startup,
                      "small_single_s": single_small, "small_ray_s": ray_small, "params": params, "prompt_tokens": tokens,
                      "s_per_doc_core": per_doc}))


if __name__ == "__main__":
    main()
