"""`datasum recommend-sampler`: the user's file in, a small table out; bad inputs are one-line errors with exit status 2."""
import argparse

import numpy as np
import pandas as pd
import pytest

import datasum.data_genie as dg
import datasum.reproduce as reproduce

SUMMARY = "predict which sampler keeps the ranking of algorithms best for a ratings file (DATA-GENIE)"


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(reproduce.COMMANDS, "recommend-sampler", ("datasum.data_genie", SUMMARY))


def ratings(tmp_path, name="ratings.csv", users=50, per_user=8):
    draw = np.random.default_rng(0)
    frame = pd.DataFrame({"customer": [f"c{u:03d}" for u in np.repeat(np.arange(users), per_user)],
                          "product": draw.integers(100, 140, users * per_user), "when": draw.integers(0, 10**6, users * per_user)})
    path = tmp_path / name
    if name.endswith(".parquet"): frame.to_parquet(path, index=False)
    else: frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    return path


def run(argv, capsys):
    status = reproduce.main(["recommend-sampler", *map(str, argv), "--quiet"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_prints_the_best_sampler_and_the_runner_up(tmp_path, capsys):
    status, out, err = run([ratings(tmp_path), "--keep", "0.1", "--user", "customer", "--item", "product", "--timestamp", "when"], capsys)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert "at keep 0.1 (400 interactions, 50 users" in lines[0] and lines[1].split() == ["rank", "sampler", "predicted", "tau", "kept", "share"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]
    expected = dg.recommend_sampler(dg.read_user_table(ratings(tmp_path), "customer", "product", timestamp="when").interactions(), 0.1)
    assert lines[2].split()[1] == expected.sampler and lines[3].split()[1] == expected.runner_up
    assert float(lines[2].split()[2]) == pytest.approx(expected.tau, abs=5e-4)


def test_all_lists_every_candidate(tmp_path, capsys):
    status, out, err = run([ratings(tmp_path, "r.tsv"), "--keep", "0.25", "--user", "customer", "--item", "product", "--all"], capsys)
    assert status == 0, err
    predictor, _ = dg.load_predictor()
    assert len(out.strip().splitlines()) == 2 + len([s for s in predictor.samplers if s != "temporal"])   # no time column: no temporal


def test_the_handler_directly(tmp_path, capsys):
    args = argparse.Namespace(input=str(ratings(tmp_path, "r.parquet")), keep=0.5, seed=0, all=False, user="customer", item="product", quiet=True)
    assert dg._recommend_command(args) == 0
    assert "rank" in capsys.readouterr().out


@pytest.mark.parametrize("keep", ["0", "1", "1.5", "-0.2", "nan", "half"])
def test_budget_outside_the_open_unit_interval(tmp_path, capsys, keep):
    status, out, err = run([ratings(tmp_path), "--keep", keep, "--user", "customer", "--item", "product"], capsys)
    assert status == 2 and "strictly between 0 and 1" in err and err.count("\n") == 1 and "Traceback" not in err


def test_one_user(tmp_path, capsys):
    path = tmp_path / "one.csv"
    pd.DataFrame({"user": 7, "item": range(20)}).to_csv(path, index=False)
    status, out, err = run([path, "--keep", "0.5"], capsys)
    assert status == 2 and "one.csv: has 1 user" in err and err.count("\n") == 1


def test_no_interactions(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("user,item\n")
    status, out, err = run([path, "--keep", "0.5"], capsys)
    assert status == 2 and "empty.csv" in err and "no data rows" in err and err.count("\n") == 1


def test_missing_file_and_column(tmp_path, capsys):
    status, _, err = run([tmp_path / "absent.csv", "--keep", "0.5"], capsys)
    assert status == 2 and "absent.csv" in err
    status, _, err = run([ratings(tmp_path), "--keep", "0.5"], capsys)
    assert status == 2 and "missing column" in err


def test_help_has_an_example_and_defaults(capsys):
    assert reproduce.main(["recommend-sampler", "--help"]) == 0
    text = capsys.readouterr().out
    assert "datasum recommend-sampler ratings.csv --keep 0.1" in text and "(default: user)" in text
