"""`datasum score` on the command line: the random scorer's scores, resuming, formats, errors, help, judge loading."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest

import datasum.ask_llm as ask_llm
from datasum.ask_llm import RandomScorer, judge_key, make_scorer, read_scores
from datasum.config import rng
from datasum.reproduce import main

from test_ask_llm import DOCS, _saved_judge

DATASUM = Path(sys.executable).with_name("datasum")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))


def write_docs(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i}"}) + "\n" for i in range(n)))
    return path


def score(*argv: str) -> int:
    return main(["score", *map(str, argv)])


def one_error_line(err: str, prog: str = "datasum") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


# --- the random scorer ------------------------------------------------------------------------------------------------

def test_random_scores_are_uniform_and_distinct_and_the_test_rejects_repeated_batches(tmp_path, capsys):
    docs = write_docs(tmp_path / "docs.jsonl", 2000)
    assert score("--scorer", "random", "--flush", "64", docs, tmp_path / "s.parquet") == 0
    scores = pd.read_parquet(tmp_path / "s.parquet").score.to_numpy()
    assert len(np.unique(scores)) == 2000
    assert kstest(scores, "uniform").pvalue > 0.01
    # the old behaviour (a fresh rng(seed).random(len(batch)) for every batch of 64) fails the same test
    old = np.concatenate([rng(0).random(len(range(s, min(s + 64, 2000)))) for s in range(0, 2000, 64)])
    assert kstest(old, "uniform").pvalue < 0.01 and len(np.unique(old)) == 64        # (p = 4e-5 for seed 0)
    # its top 10 % is spread over the file like a uniform sample: every fifth of the file holds 10-30 % of it
    top = np.argsort(-scores)[:200]
    assert all(10 <= count <= 70 for count in np.bincount(top // 400, minlength=5))


def test_random_scores_do_not_depend_on_flush(tmp_path, capsys):
    docs = write_docs(tmp_path / "docs.jsonl", 300)
    tables = []
    for flush in (1, 7, 64, 1000):
        assert score("--scorer", "random", "--seed", "3", "--flush", flush, docs, tmp_path / f"f{flush}.parquet") == 0
        tables.append(pd.read_parquet(tmp_path / f"f{flush}.parquet"))
    for table in tables[1:]: pd.testing.assert_frame_equal(table, tables[0])
    np.testing.assert_array_equal(tables[0].score, RandomScorer(3).score(range(300)))
    assert set(tables[0].scorer) == {"random"} and set(tables[0].scorer_key) == {"random-3"}


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_an_interrupted_run_resumes_to_the_same_scores(tmp_path, monkeypatch, capsys, suffix):
    docs = write_docs(tmp_path / "docs.jsonl", 100)
    assert score("--scorer", "random", docs, tmp_path / f"whole{suffix}") == 0
    whole = read_scores(tmp_path / f"whole{suffix}")
    calls, original = [], RandomScorer.score

    def interrupted(self, documents, **kwargs):
        calls.append(len(documents))
        if len(calls) == 3: raise KeyboardInterrupt
        return original(self, documents, **kwargs)

    monkeypatch.setattr(RandomScorer, "score", interrupted)
    out = tmp_path / f"part{suffix}"
    capsys.readouterr()
    assert score("--scorer", "random", "--flush", "30", docs, out) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert len(read_scores(out)) == 60                                          # two flushes were written
    monkeypatch.setattr(RandomScorer, "score", original)
    assert score("--scorer", "random", "--flush", "30", docs, out) == 0
    assert "40 computed now, 60 kept from the file" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_scores(out), whole)


# --- resuming only the same scorer's scores ---------------------------------------------------------------------------

def judge_and_documents(tmp_path, monkeypatch):
    "A saved tiny judge under tmp_path/judge and the documents to score, as a JSON-lines file."
    _saved_judge(tmp_path, monkeypatch)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in DOCS))
    return docs


def test_a_resume_refuses_scores_of_another_scorer_and_leaves_the_file(tmp_path, monkeypatch, capsys):
    docs = judge_and_documents(tmp_path, monkeypatch)
    out = tmp_path / "out.parquet"
    assert score("--scorer", "random", docs, out) == 0
    before = out.read_bytes()
    monkeypatch.setattr(ask_llm, "make_scorer", lambda *a, **k: pytest.fail("the judge was loaded"))
    capsys.readouterr()
    assert score("--scorer", "ask-llm", "--model", tmp_path / "judge", docs, out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds scores of random, not of ask-llm" in line
    assert out.read_bytes() == before


def test_a_resume_refuses_the_same_judge_in_another_precision(tmp_path, monkeypatch, capsys):
    docs = judge_and_documents(tmp_path, monkeypatch)
    out = tmp_path / "out.csv"
    assert score("--model", tmp_path / "judge", docs, out) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert score("--model", tmp_path / "judge", "--dtype", "bfloat16", docs, out) == 2
    assert "not of ask-llm" in one_error_line(capsys.readouterr().err) and out.read_bytes() == before


def test_the_judge_is_loaded_only_when_something_is_left_to_score(tmp_path, monkeypatch, capsys):
    docs = judge_and_documents(tmp_path, monkeypatch)
    out = tmp_path / "out.parquet"
    assert score("--model", tmp_path / "judge", docs, out) == 0
    first = pd.read_parquet(out)
    monkeypatch.setattr(ask_llm, "make_scorer", lambda *a, **k: pytest.fail("the judge was loaded"))
    capsys.readouterr()
    assert score("--model", tmp_path / "judge", docs, out) == 0
    assert f"{len(DOCS)} scores in" in (printed := capsys.readouterr().out) and "0 computed now" in printed
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)


@pytest.mark.parametrize("name,dtype", [("ask-llm", "float32"), ("ask-llm", "bfloat16"), ("perplexity", "float32")])
def test_the_key_known_before_loading_is_the_loaded_scorers(tmp_path, monkeypatch, name, dtype):
    _saved_judge(tmp_path, monkeypatch)
    assert judge_key(name, str(tmp_path / "judge"), None, dtype) == make_scorer(name, str(tmp_path / "judge"), dtype=dtype).key


# --- data errors: one line, exit 2, no output -------------------------------------------------------------------------

@pytest.mark.parametrize("case,expected", [
    ("flush0", "datasum score: error: argument --flush: expected a whole number >= 1, got '0'"),
    ("missing", "missing.jsonl: No such file or directory"),
    ("bad-json", "docs.jsonl, line 2: not JSON"),
    ("empty", "docs.jsonl: no documents; expected one JSON string"),
    ("extension", "s.txt: unknown output format .txt; expected one of .parquet, .csv, .jsonl"),
    ("same-file", "the output is the input"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case, expected):
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "fine"}\nnot json\n' if case == "bad-json" else "" if case == "empty" else '"a"\n"b"\n')
    out = tmp_path / ("s.txt" if case == "extension" else "s.parquet")
    argv = {"flush0": ["--flush", "0", docs, out], "missing": [tmp_path / "missing.jsonl", out],
            "same-file": [docs, docs]}.get(case, [docs, out])
    before = docs.read_bytes()
    assert score("--scorer", "random", *argv) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err, "datasum score" if case == "flush0" else "datasum")
    assert expected in line and "Traceback" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["docs.jsonl"]   # no output, no temp file
    assert docs.read_bytes() == before


# --- files: permissions, formats --------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o077, 0o022])
def test_the_output_takes_the_umasks_permissions(tmp_path, capsys, umask):
    docs = write_docs(tmp_path / "docs.jsonl", 5)
    old = os.umask(umask)
    try: assert score("--scorer", "random", docs, tmp_path / "s.parquet") == 0
    finally: os.umask(old)
    assert stat.S_IMODE((tmp_path / "s.parquet").stat().st_mode) == 0o666 & ~umask


def test_the_format_follows_the_extension(tmp_path, capsys):
    docs = write_docs(tmp_path / "docs.jsonl", 5)
    for suffix in (".parquet", ".csv", ".jsonl"): assert score("--scorer", "random", docs, tmp_path / f"s{suffix}") == 0
    assert (tmp_path / "s.parquet").read_bytes()[:4] == b"PAR1"
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "id,key,score,scorer,scorer_key"
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"d{i}" for i in range(5)] and records[0]["scorer"] == "random"
    expected = pd.read_parquet(tmp_path / "s.parquet")
    assert pd.read_csv(tmp_path / "s.csv").score.tolist() == expected.score.tolist() == [r["score"] for r in records]


# --- progress, help, end to end ---------------------------------------------------------------------------------------

def test_quiet_silences_the_progress_bar(tmp_path, capsys):
    docs = write_docs(tmp_path / "docs.jsonl", 20)
    assert score("--scorer", "random", docs, tmp_path / "a.parquet") == 0
    assert "datasum score random" in capsys.readouterr().err
    environment = dict(os.environ)
    assert score("--scorer", "random", "--quiet", docs, tmp_path / "b.parquet") == 0
    assert capsys.readouterr().err == ""
    assert dict(os.environ) == environment          # --quiet silences the bars of this command only


def test_help_shows_defaults_and_examples(capsys):
    assert main(["score", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: 64)" in text and "(default: ask-llm)" in text and "(default: smollm2)" in text
    assert "examples:\n  datasum score docs.jsonl scores.parquet" in text and "datasum score --scorer random" in text


def test_end_to_end_in_a_subprocess(tmp_path):
    docs = write_docs(tmp_path / "docs.jsonl", 10)
    env = dict(os.environ, DATASUM_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([DATASUM, "score", "--scorer", "random", "--quiet", docs, tmp_path / "s.csv"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "10 scores in" in done.stdout and len(pd.read_csv(tmp_path / "s.csv")) == 10
    (tmp_path / "bad.jsonl").write_text('"ok"\n{"text": 1}\n')
    failed = subprocess.run([DATASUM, "score", "--scorer", "random", tmp_path / "bad.jsonl", tmp_path / "t.csv"],
                            capture_output=True, text=True, env=env)
    assert failed.returncode == 2 and not (tmp_path / "t.csv").exists()
    assert failed.stderr.strip().splitlines() == [f"datasum: error: {tmp_path / 'bad.jsonl'}, line 2: expected a JSON string "
                                                  "or an object with a 'text' string"]


def test_the_judge_key_is_remembered_until_the_judge_files_change(tmp_path, monkeypatch):
    # a resume with nothing left to score must not parse the judge again (15 s for the SmolLM2 GGUF file)
    from datasum import ask_llm
    _saved_judge(tmp_path, monkeypatch)
    judge = str(tmp_path / "judge")
    first = judge_key("ask-llm", judge)
    monkeypatch.setattr(ask_llm, "_judge_key_from_files", lambda *a: pytest.fail("the judge was read again"))
    assert judge_key("ask-llm", judge) == first
    config = tmp_path / "judge" / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))   # the judge changed
    monkeypatch.undo(); monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(ask_llm, "_judge_key_from_files", lambda *a: calls.append(a) or first)
    judge_key("ask-llm", judge)
    assert len(calls) == 1


# --- --scorer density: handed to datasum.density ---------------------------------------------------------------------

def test_density_is_handed_to_datasum_density_with_the_embeddings_path(tmp_path, monkeypatch, capsys):
    import importlib.machinery, types
    seen = []
    fake = types.ModuleType("datasum.density")
    fake.__spec__ = importlib.machinery.ModuleSpec("datasum.density", None)   # `datasum` looks its commands' modules up
    fake.score_embeddings_command = lambda args: seen.append(args) or 0
    monkeypatch.setitem(sys.modules, "datasum.density", fake)
    np.save(tmp_path / "emb.npy", np.eye(3, dtype=np.float32))
    assert score("--scorer", "density", tmp_path / "emb.npy", tmp_path / "scores.parquet") == 0
    assert len(seen) == 1 and seen[0].scorer == "density"
    assert (seen[0].documents, seen[0].output) == (str(tmp_path / "emb.npy"), str(tmp_path / "scores.parquet"))


def test_density_without_its_module_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datasum.density", None)   # an import of it now fails, as when the module is absent
    assert score("--scorer", "density", tmp_path / "emb.npy", tmp_path / "scores.parquet") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--scorer density needs the module datasum.density" in line and not (tmp_path / "scores.parquet").exists()


def test_the_document_scorers_are_unchanged():
    assert ask_llm.SCORERS == ("ask-llm", "perplexity", "random")
    with pytest.raises(ValueError, match="unknown scorer 'density'"): make_scorer("density")
