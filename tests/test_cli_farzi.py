"""`datasum distill-sequences`: the summary as .npz in the user's item ids, resumable state, one-line errors, inputs never overwritten."""
import argparse

import numpy as np
import pandas as pd
import pytest
import torch

import datasum.farzi as farzi
import datasum.reproduce as reproduce
from datasum.cli import ArgumentParser, run_handler
from datasum.farzi import FarziSummary, add_arguments

FAST = ["--steps", "3", "--inner-steps", "2", "--dim", "8", "--latent-dim", "3", "--real-batch", "8", "--pool-size", "2"]


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    "Register the command as the lead will (COMMANDS['distill-sequences']), for these tests only; one torch thread."
    monkeypatch.setitem(reproduce.COMMANDS, "distill-sequences", ("datasum.farzi", "distill event sequences into a few synthetic sequences (Farzi)"))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def events(tmp_path, name="events.csv", users=12, per_user=7):
    path = tmp_path / name
    draw = np.random.default_rng(0)
    frame = pd.DataFrame({"listener": [f"u{u:02d}" for u in np.repeat(np.arange(users), per_user)],
                          "track": [f"t{i}" for i in draw.integers(0, 15, users * per_user)],
                          "timestamp": draw.permutation(users * per_user)})
    if name.endswith(".parquet"): frame.to_parquet(path, index=False)
    else: frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    return path


def run(argv, capsys):
    status = reproduce.main(["distill-sequences", *map(str, argv)])
    return status, capsys.readouterr().err


def test_writes_the_summary_in_the_users_ids(tmp_path, capsys):
    source, output = events(tmp_path), tmp_path / "summary.npz"
    status, err = run([source, output, "--sequences", "3", "--length", "5", "--user", "listener", "--item", "track", *FAST], capsys)
    assert status == 0, err
    stored = np.load(output, allow_pickle=False)
    assert set(stored.files) >= {"latent", "decoder", "temperature", "vocabulary", "sequences"}
    assert stored["latent"].shape == (3, 5, 3) and stored["sequences"].shape == (3, 5)
    assert set(stored["sequences"].ravel()) <= set(pd.read_csv(source)["track"])
    summary = FarziSummary.load(output)
    np.testing.assert_allclose(summary.distributions().sum(-1), 1, rtol=1e-5)
    assert not (tmp_path / "summary.npz.farzi-state.npz").exists()
    assert "-> " in err


def test_handler_directly(tmp_path):
    parser = ArgumentParser(prog="datasum distill-sequences")
    add_arguments(parser)
    args = parser.parse_args([str(events(tmp_path, "e.parquet")), str(tmp_path / "s.npz"), "--sequences", "2", "--length", "4",
                              "--user", "listener", "--item", "track", *FAST])
    args.quiet = True  # the `datasum` command's common --quiet
    assert run_handler(args.handler, args) == 0
    assert np.load(tmp_path / "s.npz")["latent"].shape == (2, 4, 3)


def test_help_has_defaults_and_examples(capsys):
    assert reproduce.main(["distill-sequences", "--help"]) == 0
    out = capsys.readouterr().out
    assert "datasum distill-sequences events.csv summary.npz --sequences 50 --length 50" in out and "(default: 100)" in out


def test_resumes_from_state(tmp_path, capsys, monkeypatch):
    source, output = events(tmp_path), tmp_path / "summary.npz"
    args = [source, output, "--sequences", "3", "--length", "5", "--user", "listener", "--item", "track", *FAST]
    assert run(args, capsys)[0] == 0
    whole = np.load(output)["latent"]
    output.unlink()
    calls, original = [], farzi.meta_gradient
    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3: raise KeyboardInterrupt
        return original(*a, **k)
    monkeypatch.setattr(farzi, "meta_gradient", interrupted)
    status, err = run(args, capsys)
    assert status == 130 and "no partial output" in err and not output.exists()
    assert (tmp_path / "summary.npz.farzi-state.npz").is_file()
    monkeypatch.setattr(farzi, "meta_gradient", original)
    assert run(args, capsys)[0] == 0
    np.testing.assert_array_equal(np.load(output)["latent"], whole)


def test_users_with_one_event_are_left_out(tmp_path, capsys):
    path = tmp_path / "e.csv"
    pd.DataFrame({"user": [1, 1, 1, 2, 3, 3, 3], "item": [5, 6, 7, 5, 7, 6, 5]}).to_csv(path, index=False)
    status, err = run([path, tmp_path / "s.npz", "--sequences", "2", "--length", "3", *FAST], capsys)
    assert status == 0, err and "left out 1 user(s) with fewer than 2 events" in err


@pytest.mark.parametrize("extra, message", [
    (["--sequences", "0"], "expected a whole number >= 1"),
    (["--sequences", "-2"], "expected a whole number >= 1"),
    (["--sequences", "2", "--length", "1"], "expected a whole number >= 2"),
    (["--sequences", "2", "--lr", "nan"], "expected a finite number > 0"),
    (["--sequences", "2", "--pool", "best"], "invalid choice"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, extra, message):
    status, err = run([events(tmp_path), tmp_path / "s.npz", "--user", "listener", "--item", "track", *extra], capsys)
    assert status == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s.npz").exists()


def test_sequences_shorter_than_two(tmp_path, capsys):
    path = tmp_path / "e.csv"
    pd.DataFrame({"user": [1, 2, 3], "item": [5, 6, 7]}).to_csv(path, index=False)
    status, err = run([path, tmp_path / "s.npz", "--sequences", "2", *FAST], capsys)
    assert status == 2 and "no user has at least 2 events" in err and err.count("\n") == 1


def test_vocabulary_of_one(tmp_path, capsys):
    path = tmp_path / "e.csv"
    pd.DataFrame({"user": [1, 1, 2, 2], "item": [5, 5, 5, 5]}).to_csv(path, index=False)
    status, err = run([path, tmp_path / "s.npz", "--sequences", "2", *FAST], capsys)
    assert status == 2 and "1 item(s); Farzi needs at least 2" in err


def test_output_is_never_the_input(tmp_path, capsys):
    source = events(tmp_path)
    before = source.read_bytes()
    status, err = run([source, source, "--sequences", "2", "--user", "listener", "--item", "track"], capsys)
    assert status == 2 and "is the input" in err and source.read_bytes() == before


def test_output_must_be_npz(tmp_path, capsys):
    status, err = run([events(tmp_path), tmp_path / "s.csv", "--sequences", "2", "--user", "listener", "--item", "track"], capsys)
    assert status == 2 and "written as .npz" in err


def test_missing_column(tmp_path, capsys):
    status, err = run([events(tmp_path), tmp_path / "s.npz", "--sequences", "2"], capsys)
    assert status == 2 and "missing column" in err and err.count("\n") == 1
