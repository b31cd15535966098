"""Ask-LLM and Density on Ray Data: the single-process numbers, a killed actor, an interrupted job, bad input, and no ray on the default path."""
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datasum.cli import UsageError

N_DOCS, FLUSH = 160, 16
WORDS = "the data model of a cluster scores every document once and the judge reads each page to learn".split()


def test_the_default_path_never_imports_ray(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(5)))
    code = ("import sys, datasum.ask_llm, datasum.density\n"
            "from datasum.reproduce import main\n"
            f"assert main(['score', '--quiet', '--scorer', 'random', {str(docs)!r}, {str(tmp_path / 'out.parquet')!r}]) == 0\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n")
    env = dict(os.environ, DATASUM_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr


def test_workers_without_the_ray_engine_is_refused(tmp_path, capsys):
    from datasum.reproduce import main
    docs = tmp_path / "docs.jsonl"
    docs.write_text('"a"\n')
    assert main(["score", "--scorer", "random", "--workers", "2", str(docs), str(tmp_path / "o.parquet")]) == 2
    assert "--address and --workers need --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the test scorers travel to the actors by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from datasum.ask_llm import AskLLM, tiny_judge
    from datasum.config import rng
    draw = rng(0, "test-ray-data")
    texts = [" ".join(draw.choice(WORDS, size=int(draw.integers(4, 30)))) for _ in range(N_DOCS)]
    texts[7] = texts[3]   # a repeated text, scored once
    texts[11] = ""        # an empty document scores 0
    folder = tmp_path_factory.mktemp("corpus")
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    judge = AskLLM(*tiny_judge(seed=0, texts=texts[:40]), batch_size=4)
    return path, judge


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    "The single-process scores of the corpus (one torch thread, flush FLUSH), with their own cache."
    from datasum.ask_llm import score_file
    from datasum.config import torch_threads
    folder = tmp_path_factory.mktemp("reference")
    old = os.environ.get("DATASUM_CACHE")
    os.environ["DATASUM_CACHE"] = str(folder / "cache")
    try:
        with torch_threads(1): return score_file(corpus[1], corpus[0], folder / "single.parquet", flush=FLUSH, progress=False)
    finally:
        if old is None: os.environ.pop("DATASUM_CACHE")
        else: os.environ["DATASUM_CACHE"] = old


class Counting:
    "A scorer wrapping the judge: logs each call's document count to a file (actors are other processes); may die or fail once."
    name = "ask-llm"

    def __init__(self, inner, log, die: str | None = None, fail_after: int | None = None, shards: Path | None = None):
        self.inner, self.log, self.die, self.fail_after, self.shards = inner, str(log), die, fail_after, shards
        self.key = inner.key

    def calls(self) -> list[int]:
        return [int(n) for n in Path(self.log).read_text().split()] if Path(self.log).exists() else []

    def score(self, texts, cache=False):
        if self.die and not os.path.exists(self.die):
            Path(self.die).write_text("died once")
            os._exit(1)   # the actor's process dies while it scores its first block
        if self.fail_after is not None and len(self.calls()) >= self.fail_after:
            deadline = time.time() + 300    # fail once the driver has written two shards: the job stops part-way
            while len(list(self.shards.glob("shard-*.parquet"))) < 2 and time.time() < deadline: time.sleep(0.2)
            raise RuntimeError("interrupted by the test")
        values = self.inner.score(texts, cache=False)
        with open(self.log, "a") as handle: handle.write(f"{len(texts)}\n")
        return values


def test_density_on_ray_equals_one_sketch_exactly(ray_local, tmp_path):
    from datasum.config import rng
    from datasum.density import scores
    from datasum.ray_data import density_scores
    points = rng(1, "test").standard_normal((230, 12)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    np.save(tmp_path / "b.npy", points[100:])
    settings = dict(rows=40, width=300, bandwidth=0.4, seed=3)
    single = scores(points, **settings)
    on_ray = density_scores([points[:100], str(tmp_path / "b.npy")], block=48, workers=2, **settings)
    assert np.array_equal(single, on_ray)
    with pytest.raises(UsageError, match=r"embeddings part 2, rows 1-10: embeddings of dimension 8, expected 12"):
        density_scores([points[:20], points[20:40, :8]], rows=4, width=50, block=10, workers=2)


def test_scores_equal_the_single_process_ones_bit_for_bit_though_an_actor_is_killed(ray_local, corpus, reference, tmp_path):
    from datasum.ray_data import ray_score_file
    scorer = Counting(corpus[1], tmp_path / "calls.log", die=str(tmp_path / "died"))
    table = ray_score_file(scorer, corpus[0], tmp_path / "ray.parquet", workers=2, flush=FLUSH, progress=False)
    assert (tmp_path / "died").exists()                          # an actor did die
    assert len(table) == N_DOCS and not table.id.duplicated().any() and not table.score.isna().any()
    assert table.equals(reference) and pd.read_parquet(tmp_path / "ray.parquet").equals(reference)
    assert table.score[11] == 0.0 and table.score[7] == table.score[3]
    assert sum(scorer.calls()) == N_DOCS - 1                     # the dead actor's block was redone, nothing twice


def test_an_interrupted_job_resumes_without_rescoring(ray_local, corpus, reference, tmp_path):
    from datasum.ask_llm import ScoreCache
    from datasum.config import cache_dir
    from datasum.ray_data import ray_score_file
    folder = cache_dir() / "scores" / f"ask-llm-{corpus[1].key}"
    first = Counting(corpus[1], tmp_path / "first.log", fail_after=6, shards=folder)
    with pytest.raises(Exception, match="interrupted by the test"):
        ray_score_file(first, corpus[0], tmp_path / "ray.parquet", workers=2, flush=FLUSH, progress=False)
    assert not (tmp_path / "ray.parquet").exists()               # no partial output
    written = len(ScoreCache(folder))
    assert 0 < written < N_DOCS - 1
    second = Counting(corpus[1], tmp_path / "second.log")
    table = ray_score_file(second, corpus[0], tmp_path / "ray.parquet", workers=2, flush=FLUSH, progress=False)
    assert sum(second.calls()) == N_DOCS - 1 - written           # only what no shard held
    assert len(table) == N_DOCS and not table.score.isna().any()


def test_bad_input_fails_with_one_line_naming_the_record_and_no_output(ray_local, corpus, tmp_path, capsys):
    from datasum.ray_data import ray_score_file
    from datasum.reproduce import main
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "title": "no text"}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl, line 2: expected a JSON string or an object with a 'text' string"):
        ray_score_file(corpus[1], bad, tmp_path / "out.parquet", workers=2, progress=False)
    pd.DataFrame({"id": ["a", "b"], "text": ["fine", None]}).to_parquet(tmp_path / "bad.parquet")
    assert main(["score", "--engine", "ray", "--workers", "2", str(tmp_path / "bad.parquet"), str(tmp_path / "out.parquet")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"datasum: error: {tmp_path / 'bad.parquet'}, row 2 (id 'b'): expected a 'text' string, got none"], err
    assert not (tmp_path / "out.parquet").exists()


def test_density_command_on_ray(ray_local, tmp_path):
    from datasum.density import scores
    from datasum.reproduce import main
    points = np.eye(6, 5, dtype=np.float32) + 0.01
    np.save(tmp_path / "emb.npy", points)
    argv = ["score", "--scorer", "density", "--rows", "8", "--width", "40", "--quiet"]
    assert main(argv + ["--engine", "ray", "--workers", "2", str(tmp_path / "emb.npy"), str(tmp_path / "ray.parquet")]) == 0
    assert np.array_equal(pd.read_parquet(tmp_path / "ray.parquet").score, scores(points, rows=8, width=40))
