"""`datasum distill`: the user's format and ids back, resumable state, one-line errors, inputs never overwritten, atomic outputs."""
import numpy as np
import pandas as pd
import pytest

import datasum.distill_cf as dc
from datasum.reproduce import main

FAST = ["--steps", "4", "--gamma", "4", "--validate-every", "2"]


def ratings(tmp_path, name="ratings.csv", users=40):
    path = tmp_path / name
    frame = pd.DataFrame({"customer": [f"c{u:03d}" for u in np.repeat(np.arange(users), 6)],
                          "product": np.random.default_rng(0).integers(100, 130, users * 6), "stars": 4})
    if name.endswith(".parquet"): frame.to_parquet(path, index=False)
    else: frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    return path


def run(argv, capsys):
    status = main(["distill", *map(str, argv)])
    return status, capsys.readouterr().err


def test_writes_users_format_and_terms(tmp_path, capsys):
    source = ratings(tmp_path)
    status, err = run([source, tmp_path / "summary.parquet", "--budget", "5", "--user", "customer", "--item", "product", *FAST], capsys)
    assert status == 0, err
    out = pd.read_parquet(tmp_path / "summary.parquet")
    assert list(out.columns) == ["customer", "product", "weight"]
    assert set(out["customer"]) <= {f"synthetic-{k}" for k in range(1, 6)} and out["product"].isin(range(100, 130)).all()
    assert out["weight"].between(0, 1).all()
    assert not (tmp_path / "summary.parquet.distill-state.npz").exists()


def test_binary_and_integer_ids(tmp_path, capsys):
    path = tmp_path / "r.tsv"
    pd.DataFrame({"user": np.repeat(np.arange(30), 5), "item": np.tile(np.arange(5, 20, 3), 30)}).to_csv(path, sep="\t", index=False)
    status, err = run([path, tmp_path / "s.csv", "--budget", "4", "--binary", *FAST], capsys)
    assert status == 0, err
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == ["user", "item"] and set(out["user"]) <= {30, 31, 32, 33}


def test_resumes_from_state(tmp_path, capsys, monkeypatch):
    source, output = ratings(tmp_path), tmp_path / "summary.csv"
    args = [source, output, "--budget", "5", "--user", "customer", "--item", "product", "--steps", "6", "--gamma", "4", "--validate-every", "2"]
    assert run(args, capsys)[0] == 0
    whole = pd.read_csv(output)
    output.unlink()
    calls, original = [], dc.select_lambda
    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3: raise KeyboardInterrupt
        return original(*a, **k)
    monkeypatch.setattr(dc, "select_lambda", interrupted)
    status, err = run(args, capsys)
    assert status == 130 and "no partial output" in err and not output.exists()
    assert (tmp_path / "summary.csv.distill-state.npz").is_file()
    monkeypatch.setattr(dc, "select_lambda", original)
    assert run(args, capsys)[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(output), whole)


@pytest.mark.parametrize("extra, message", [
    (["--budget", "0"], "expected a whole number >= 1"),
    (["--budget", "-2"], "expected a whole number >= 1"),
    (["--budget", "41"], "--budget 41 is larger than its 40 users"),
    (["--budget", "3", "--tau", "nan"], "expected a finite number > 0"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, extra, message):
    status, err = run([ratings(tmp_path), tmp_path / "s.csv", "--user", "customer", "--item", "product", *extra], capsys)
    assert status == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s.csv").exists()


def test_empty_item_column(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("user,item\n1,10\n2,\n3,11\n")
    status, err = run([path, tmp_path / "s.csv", "--budget", "1"], capsys)
    assert status == 2 and "line 3" in err and "item" in err and err.count("\n") == 1


def test_missing_item_column(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("user,product\n1,10\n")
    status, err = run([path, tmp_path / "s.csv", "--budget", "1"], capsys)
    assert status == 2 and "missing column" in err


def test_never_overwrites_input(tmp_path, capsys):
    source = ratings(tmp_path)
    before = source.read_bytes()
    status, err = run([source, source, "--budget", "2", "--user", "customer", "--item", "product"], capsys)
    assert status == 2 and "is the input" in err and source.read_bytes() == before


def test_help_has_defaults_and_example(capsys):
    assert main(["distill", "--help"]) == 0
    text = capsys.readouterr().out
    assert "datasum distill ratings.csv summary.parquet --budget 500" in text and "(default: 500)" in text
