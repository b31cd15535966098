"""`datasum embed`, `datasum score --scorer density` and `datasum sample --by-score`: the handlers of datasum.density,
called directly (the lead wires the dispatch), and `datasum embed` once through `datasum.reproduce.main`."""
import argparse
import json

import numpy as np
import pandas as pd
import pytest

import datasum.reproduce as reproduce
from datasum.cli import UsageError, run_handler
from datasum.density import (density_key, embed_command, ids_path, read_embeddings, sample_by_score_command,
                             score_embeddings_command)

TEXTS = ["a cat sat on the mat"] * 4 + ["stock markets fell sharply", "rain falls in spain", "quantum dots glow red",
                                        "the senate passed the bill", "bees make honey", "a red kite circles"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))


def documents(tmp_path, name="docs.jsonl", texts=TEXTS, ids=True):
    path = tmp_path / name
    lines = [json.dumps({"id": f"d{i}", "text": t, "extra": [i]}) if ids else json.dumps(t) for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n")
    return path


def embed_args(source, output, **kw):
    return argparse.Namespace(documents=source, output=output, model="ngram", max_length=256, batch_size=8, dim=32,
                              seed=0, quiet=True, **kw)


def score_args(source, output, seed=0):
    return argparse.Namespace(documents=source, output=output, seed=seed, quiet=True)


def sample_args(scores, source, output, keep=0.5, seed=0):
    return argparse.Namespace(by_score=scores, keep=keep, input=source, output=output, seed=seed, quiet=True)


def pipeline(tmp_path, score_name="scores.parquet"):
    source = documents(tmp_path)
    embed_command(embed_args(source, tmp_path / "emb.npy"))
    score_embeddings_command(score_args(tmp_path / "emb.npy", tmp_path / score_name))
    return source, tmp_path / score_name


def test_embed_writes_float32_rows_and_their_ids(tmp_path):
    source = documents(tmp_path)
    assert embed_command(embed_args(source, tmp_path / "emb.npy")) == 0
    vectors = np.load(tmp_path / "emb.npy", allow_pickle=False)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    names = [json.loads(line) for line in ids_path(tmp_path / "emb.npy").read_text().splitlines()]
    assert [n["id"] for n in names] == [f"d{i}" for i in range(len(TEXTS))] and len(names[0]["key"]) == 64
    assert not list(tmp_path.glob(".*.tmp"))


def test_score_writes_the_columns_of_every_scorer(tmp_path):
    from datasum.ask_llm import SCORE_COLUMNS
    _, scores = pipeline(tmp_path)
    table = pd.read_parquet(scores)
    assert tuple(table.columns) == SCORE_COLUMNS
    assert list(table.id) == [f"d{i}" for i in range(len(TEXTS))] and set(table.scorer) == {"density"}
    assert set(table.scorer_key) == {density_key(1000, 20000, 0.05, 0)}
    assert (table.score >= 1).all() and table.score[:4].min() > table.score[4:].max()   # the four copies are densest


@pytest.mark.parametrize("name", ["scores.csv", "scores.jsonl"])
def test_score_formats(tmp_path, name):
    from datasum.ask_llm import read_scores
    _, scores = pipeline(tmp_path, name)
    assert len(read_scores(scores)) == len(TEXTS)


def test_sample_keeps_input_lines_unchanged_in_input_order(tmp_path):
    source, scores = pipeline(tmp_path)
    assert sample_by_score_command(sample_args(scores, source, tmp_path / "kept.jsonl", keep=0.5)) == 0
    kept = (tmp_path / "kept.jsonl").read_text().splitlines()
    lines = source.read_text().splitlines()
    assert len(kept) == 5 and len(set(kept)) == 5
    assert [lines.index(k) for k in kept] == sorted(lines.index(k) for k in kept)
    again = tmp_path / "again.jsonl"
    sample_by_score_command(sample_args(scores, source, again, keep=0.5))
    assert again.read_text() == (tmp_path / "kept.jsonl").read_text()            # same seed, same sample


def test_density_sample_prefers_rare_documents(tmp_path):
    source, scores = pipeline(tmp_path)
    copies = 0
    for seed in range(30):
        out = tmp_path / f"kept{seed}.jsonl"
        sample_by_score_command(sample_args(scores, source, out, keep=0.4, seed=seed))
        copies += sum("cat sat" in line for line in out.read_text().splitlines())
    assert copies / 30 < 4 * 0.4   # a random 40% would keep 1.6 of the 4 copies on average


def test_other_scorers_keep_the_top_share(tmp_path):
    from datasum.ask_llm import write_scores
    source = documents(tmp_path)
    table = pd.DataFrame({"id": [f"d{i}" for i in range(len(TEXTS))], "key": "", "score": np.arange(len(TEXTS), dtype=float),
                          "scorer": "ask-llm", "scorer_key": "k"})
    write_scores(table, tmp_path / "s.csv")
    sample_by_score_command(sample_args(tmp_path / "s.csv", source, tmp_path / "top.jsonl", keep=0.3))
    kept = [json.loads(line)["id"] for line in (tmp_path / "top.jsonl").read_text().splitlines()]
    assert kept == ["d7", "d8", "d9"]


def test_any_array_works_without_ids(tmp_path):
    np.save(tmp_path / "mine.npy", np.random.default_rng(0).standard_normal((6, 5)))
    score_embeddings_command(score_args(tmp_path / "mine.npy", tmp_path / "s.parquet"))
    table = pd.read_parquet(tmp_path / "s.parquet")
    assert list(table.id) == [str(i) for i in range(1, 7)] and set(table.key) == {""}
    source = documents(tmp_path, texts=TEXTS[:6], ids=False)      # ids are line numbers, as datasum score gives them
    sample_by_score_command(sample_args(tmp_path / "s.parquet", source, tmp_path / "k.jsonl", keep=0.5))
    assert len((tmp_path / "k.jsonl").read_text().splitlines()) == 3


def bad_npy(tmp_path, array, name="bad.npy"):
    np.save(tmp_path / name, array)
    return tmp_path / name


@pytest.mark.parametrize("array,message", [
    (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), "bad.npy, row 2: NaN or infinite"),
    (np.array([[0.0, np.inf]]), "row 1: NaN or infinite"),
    (np.zeros((0, 4)), "no embeddings"),
    (np.zeros(5), "expected a 2-D array"),
    (np.zeros((2, 3, 4)), "expected a 2-D array"),
    (np.array([["a", "b"]]), "expected real numbers"),
])
def test_bad_embeddings_are_one_line_errors(tmp_path, array, message):
    path = bad_npy(tmp_path, array)
    with pytest.raises(UsageError, match=message): score_embeddings_command(score_args(path, tmp_path / "s.parquet"))
    assert not (tmp_path / "s.parquet").exists()


def test_ids_of_another_length_are_refused(tmp_path):
    _, _ = pipeline(tmp_path)
    np.save(tmp_path / "emb.npy", np.zeros((3, 32), np.float32))       # the ids file names 10 documents
    with pytest.raises(UsageError, match="names 10 documents but .* has 3 rows"): read_embeddings(tmp_path / "emb.npy")


def test_wrong_dimension_for_a_sketch(tmp_path):
    from datasum.density import RaceSketch
    with pytest.raises(ValueError, match=r"shape \(n, 384\)"): RaceSketch(384, 10, 100).add(np.zeros((2, 32)))


def test_empty_or_broken_documents(tmp_path):
    empty = tmp_path / "empty.jsonl"; empty.write_text("\n\n")
    with pytest.raises(UsageError, match="no documents"): embed_command(embed_args(empty, tmp_path / "e.npy"))
    broken = tmp_path / "broken.jsonl"; broken.write_text('"fine"\n{not json\n')
    with pytest.raises(UsageError, match=r"broken.jsonl, line 2: not JSON"): embed_command(embed_args(broken, tmp_path / "e.npy"))
    _, scores = pipeline(tmp_path)
    with pytest.raises(UsageError, match=r"broken.jsonl, line 2: not JSON"):
        sample_by_score_command(sample_args(scores, broken, tmp_path / "k.jsonl"))


def test_outputs_never_replace_inputs_and_formats_are_checked(tmp_path):
    source, scores = pipeline(tmp_path)
    with pytest.raises(UsageError, match="is the input"): embed_command(embed_args(source, source))
    with pytest.raises(UsageError, match=r"ending in .npy"): embed_command(embed_args(source, tmp_path / "emb.txt"))
    with pytest.raises(UsageError, match="is the input"): score_embeddings_command(score_args(tmp_path / "emb.npy", tmp_path / "emb.npy"))
    with pytest.raises(UsageError, match="is the input"): sample_by_score_command(sample_args(scores, source, scores))
    with pytest.raises(UsageError, match="is the input"): sample_by_score_command(sample_args(scores, source, source))
    with pytest.raises(UsageError, match="unknown output format"): score_embeddings_command(score_args(tmp_path / "emb.npy", tmp_path / "s.txt"))
    with pytest.raises(UsageError, match="expected a .npy"): score_embeddings_command(score_args(source, tmp_path / "s2.parquet"))
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="not a score file"): score_embeddings_command(score_args(tmp_path / "emb.npy", tmp_path / "other.csv"))
    assert (tmp_path / "other.csv").read_text() == "a,b\n1,2\n"


def test_sample_refuses_documents_the_scores_do_not_match(tmp_path):
    source, scores = pipeline(tmp_path)
    changed = documents(tmp_path, "changed.jsonl", texts=TEXTS[:-1] + ["a different text"])
    with pytest.raises(UsageError, match=r"changed.jsonl, line 10: document 'd9' is not the text"):
        sample_by_score_command(sample_args(scores, changed, tmp_path / "k.jsonl"))
    more = documents(tmp_path, "more.jsonl", texts=TEXTS + ["one more"])
    with pytest.raises(UsageError, match=r"more.jsonl, line 11: document id 'd10' has no score"):
        sample_by_score_command(sample_args(scores, more, tmp_path / "k.jsonl"))
    with pytest.raises(UsageError, match="--keep"): sample_by_score_command(sample_args(scores, source, tmp_path / "k.jsonl", keep=0.0))
    assert not (tmp_path / "k.jsonl").exists()


def test_errors_are_one_line_with_exit_status_2(tmp_path, capsys):
    path = bad_npy(tmp_path, np.array([[1.0, np.nan]]))
    status = run_handler(score_embeddings_command, score_args(path, tmp_path / "s.parquet"))
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("datasum: error: ") and "row 1" in err


def test_embed_through_the_datasum_command(tmp_path, capsys, monkeypatch):
    # `datasum embed` as the lead registers it: COMMANDS["embed"] = ("datasum.density", ...), which calls add_arguments
    monkeypatch.setitem(reproduce.COMMANDS, "embed", ("datasum.density", "embed documents for density scoring"))
    source = documents(tmp_path)
    status = reproduce.main(["embed", "--model", "ngram", "--dim", "16", "--quiet", str(source), str(tmp_path / "emb.npy")])
    assert status == 0, capsys.readouterr().err
    assert np.load(tmp_path / "emb.npy").shape == (len(TEXTS), 16)
    status = reproduce.main(["embed", str(source), str(source)])
    assert status == 2 and "is the input" in capsys.readouterr().err
