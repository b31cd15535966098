"""`datasum sample` on files a newcomer brings: inputs never overwritten, one-line errors, the user's data back in the user's terms."""
import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datasum.reproduce import main

DATASUM = Path(sys.executable).with_name("datasum")

# a file as people write them: BOM, ';' separators, a quoted field holding ';', one holding a line break,
# text ids with leading zeros, integer stars, ISO-8601 times with offsets, and a column the samplers ignore
NOTES = ['"a;b"', '"two\nlines"', "plain", "plain", "plain", "plain"]
SHOP = ("\ufeffcustomer;product;stars;when;note\n"
        + "".join(f"{u:03d};p{(u * 7 + k) % 40};{1 + (u + k) % 5};2024-05-{1 + k:02d}T10:{u % 60:02d}:00+02:00;{NOTES[k]}\n"
                  for u in range(1, 61) for k in range(6)))


def run(argv, capsys):
    status = main(["sample", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.err


def shop(tmp_path, name="shop.csv", text=SHOP):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_shop(path=None, text=SHOP):
    import io
    return pd.read_csv(io.StringIO(text) if path is None else path, sep=";", dtype=str, keep_default_na=False, encoding="utf-8-sig")


COLUMNS = ["--user", "customer", "--item", "product", "--sep", ";"]


# --- inputs are never overwritten ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["same name", "./ prefix", "symlink", "hard link"])
def test_an_output_that_resolves_to_the_input_is_refused(tmp_path, capsys, monkeypatch, how):
    source = shop(tmp_path)
    os.chmod(source, 0o640)
    before = source.read_bytes()
    monkeypatch.chdir(tmp_path)
    output = {"same name": "shop.csv", "./ prefix": "./shop.csv"}.get(how, tmp_path / "other.csv")
    if how == "symlink": os.symlink(source, output)
    if how == "hard link": os.link(source, output)
    status, err = run(["--sampler", "random", "--keep", "0.1", "shop.csv", output, *COLUMNS], capsys)
    assert status == 2 and err.startswith("datasum: error: ") and err.count("\n") == 1
    assert "inputs are never overwritten" in err
    assert source.read_bytes() == before and stat.S_IMODE(source.stat().st_mode) == 0o640


# --- bad input: one line naming the file and the line, exit 2, no output ---------------------------------------

BAD = [  # (file text, extra arguments, what the one line must say)
    ("user,item\n1,a\n", ["--keep", "0"], "argument --keep: expected a number in (0, 1], got '0'"),
    ("user,item\n1,a\n", ["--keep", "1.5"], "got '1.5'"),
    ("user,item\n1,a\n", ["--keep", "nan"], "got 'nan'"),
    ("user,item,r\n1,a,4\n2,b,NaN\n", ["--rating", "r"], "bad.csv, line 3: rating 'NaN' (column 'r') is not a finite number"),
    ("user,item\n1,a\n,b\n", [], "bad.csv, line 3: user '' (column 'user') is empty"),
    ("user,item,t\n1,a,2024-05-01\n2,b,yesterday\n", ["--timestamp", "t"], "line 3: timestamp 'yesterday' (column 't') is neither a number nor an ISO-8601 time"),
    ("user,item,t\n1,a,2024-05-01\n2,b,978300760\n", ["--timestamp", "t"], "line 3: timestamp '978300760' (column 't') is a number, but"),
    ("user,item\n1,a\n2,b,x\n", [], "bad.csv, line 3: expected 2 ',' -separated".replace(" -", "-")),
    ("user,item\n1,a\nuser,item\n", [], "bad.csv, line 3: the header is repeated"),
    ("customer,item\n1,a\n", [], "bad.csv, line 1: missing column(s) ['user']"),
    ("user,item\n1,a\n", ["--scenario", "explicit"], "--scenario explicit fits ratings, but no rating column is named"),
    ("user,item\n1,a\n", ["--sampler", "temporal"], "--sampler temporal needs times, but no time column is named"),
    ("user,item\n1,a\n1,a\n", ["--duplicates", "refuse"], "bad.csv, line 3: repeats the (user, item) pair of line 2; 1 row(s)"),
    ("", [], "bad.csv: empty file"),
]


@pytest.mark.parametrize("text, extra, expected", BAD)
def test_bad_input_is_one_line_and_exit_2_without_output(tmp_path, capsys, text, extra, expected):
    path = shop(tmp_path, "bad.csv", text)
    argv = ["--keep", "0.5", "--sampler", "random", *extra] if "--sampler" not in extra else ["--keep", "0.5", *extra]
    if "--keep" in extra: argv = ["--sampler", "random", *extra]
    status, err = run([*argv, path, tmp_path / "out.csv"], capsys)
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("datasum") and "Traceback" not in err
    assert expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]        # no output, no temporary file


def test_an_unknown_output_format_is_refused_before_any_work(tmp_path, capsys):
    status, err = run(["--sampler", "random", "--keep", "0.5", shop(tmp_path), tmp_path / "out.json", *COLUMNS], capsys)
    assert status == 2 and "out.json: cannot tell the format from the name 'out.json'; expected a name ending in .csv" in err
    assert not (tmp_path / "out.json").exists()


# --- the user's data back in the user's terms --------------------------------------------------------------------

def test_csv_comes_back_as_written(tmp_path, capsys):
    status, err = run(["--sampler", "random", "--keep", "0.5", shop(tmp_path), tmp_path / "out.csv", *COLUMNS], capsys)
    assert status == 0, err
    original, sample = read_shop(), read_shop(tmp_path / "out.csv")
    assert list(sample.columns) == list(original.columns)                   # names kept, no invented column
    assert len(sample) == len(original) - int(0.5 * len(original))          # random keeps exactly its share
    as_rows = lambda f: list(map(tuple, f.to_numpy()))
    rows = as_rows(original)
    positions = [rows.index(r) for r in as_rows(sample)]
    assert positions == sorted(positions)                                    # chosen rows, in the file's order, as written
    assert sample["customer"].str.len().eq(3).all()                          # '007' keeps its zeros
    assert "a;b" in set(sample["note"]) and "two\nlines" in set(sample["note"])
    assert (tmp_path / "out.csv").read_bytes()[:3] != b"\xef\xbb\xbf"


@pytest.mark.parametrize("name", ["out.tsv", "out.csv.gz", "out.tsv.gz", "out.parquet", "out.jsonl", "out.inter"])
def test_the_output_format_follows_its_name_and_keeps_types(tmp_path, capsys, name):
    text = SHOP.replace('"two\nlines"', "two lines") if name == "out.inter" else SHOP  # RecBole has no quoting
    status, err = run(["--sampler", "stratified", "--keep", "0.5", "--rating", "stars", "--timestamp", "when",
                       shop(tmp_path, text=text), tmp_path / name, *COLUMNS], capsys)
    assert status == 0, err
    path = tmp_path / name
    if name.endswith(".parquet"): back = pd.read_parquet(path)
    elif name.endswith(".jsonl"): back = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    elif name.endswith(".inter"):
        header = path.read_text().splitlines()[0]
        assert header == "customer:token\tproduct:token\tstars:float\twhen:token\tnote:token"
        return
    else:
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        import io
        back = pd.read_csv(io.BytesIO(raw), sep="\t" if ".tsv" in name else ";", dtype=str, keep_default_na=False)
    assert list(back.columns) == ["customer", "product", "stars", "when", "note"]
    if name.endswith((".parquet", ".jsonl")):
        assert pd.api.types.is_integer_dtype(back["stars"])                  # integer stars stay integers
        assert back["customer"].map(type).eq(str).all() and back["customer"].str.startswith("0").all()
    original = read_shop()
    assert set(back["when"].astype(str)) <= set(original["when"])            # ISO times written back as they were
    per_user = back.groupby("customer").size()
    assert (per_user == 3).all() and len(per_user) == 60                     # stratified: half of each user's 6


def test_a_value_that_a_recbole_file_cannot_hold_is_a_clear_error(tmp_path, capsys):
    status, err = run(["--sampler", "random", "--keep", "1", shop(tmp_path), tmp_path / "out.inter", *COLUMNS], capsys)
    assert status == 2 and err.count("\n") == 1 and "out.inter: a value holds a tab or a line break" in err
    assert not (tmp_path / "out.inter").exists()


def test_integer_ids_of_a_parquet_file_stay_integers(tmp_path, capsys):
    frame = pd.DataFrame({"u": np.repeat(np.arange(10), 5), "i": np.tile(np.arange(5), 10), "r": np.arange(50) % 5 + 1})
    frame.to_parquet(tmp_path / "in.parquet")
    for name in ("out.csv", "out.parquet"):
        assert run(["--sampler", "user-random", "--keep", "0.5", tmp_path / "in.parquet", tmp_path / name,
                    "--user", "u", "--item", "i"], capsys)[0] == 0
    assert "." not in (tmp_path / "out.csv").read_text()                    # 3, never 3.0
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert list(back.dtypes) == list(frame.dtypes) and len(back) == 25 and back["u"].nunique() == 5


def test_recbole_inter_round_trip_keeps_its_header(tmp_path, capsys):
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{1 + (u * i) % 5}\t{880000000 + 17 * u + i}\n" for u in range(1, 31) for i in range(1, 9))
    shop(tmp_path, "ml.inter", text)
    status, err = run(["--sampler", "temporal", "--keep", "0.5", tmp_path / "ml.inter", tmp_path / "out.inter"], capsys)
    assert status == 0, err                                                  # RecBole's own names are its roles
    lines = (tmp_path / "out.inter").read_text().splitlines()
    assert lines[0] == text.splitlines()[0] and set(lines[1:]) <= set(text.splitlines()[1:])
    kept = pd.DataFrame([line.split("\t") for line in lines[1:]], columns=["u", "i", "r", "t"]).astype(int)
    assert all(g["t"].min() > 880000000 + 17 * u + 4 for u, g in kept.groupby("u"))   # temporal drops each user's earliest 4


def test_numeric_and_iso_times_both_read(tmp_path, capsys):
    numeric = "user,item,t\n" + "".join(f"{u},{i},{1000 - i}.5\n" for u in range(5) for i in range(4))
    iso = "user,item,t\n" + "".join(f"{u},{i},2024-01-0{9 - i}T00:00:00Z\n" for u in range(5) for i in range(4))
    for name, text in (("numeric.csv", numeric), ("iso.csv", iso)):
        status, err = run(["--sampler", "temporal", "--keep", "0.5", "--timestamp", "t", shop(tmp_path, name, text),
                           tmp_path / f"out-{name}"], capsys)
        assert status == 0, err
        kept = pd.read_csv(tmp_path / f"out-{name}", dtype=str)
        assert sorted(set(kept["item"])) == ["0", "1"]                       # the latest two of each user
        assert set(kept["t"]) <= set(pd.read_csv(tmp_path / name, dtype=str)["t"])


def test_duplicates_are_reported_with_count_and_line(tmp_path, capsys):
    text = "user,item\n1,a\n2,b\n1,a\n3,c\n2,b\n"
    status, err = run(["--sampler", "random", "--keep", "1", shop(tmp_path, "dup.csv", text), tmp_path / "out.csv"], capsys)
    assert status == 0
    assert "datasum: warning: " in err and "dup.csv, line 4: repeats the (user, item) pair of line 2; 2 row(s)" in err
    assert (tmp_path / "out.csv").read_text() == text                       # kept, as written


def test_the_kept_shares_are_reported_and_quiet_silences_them(tmp_path, capsys):
    status, err = run(["--sampler", "random", "--keep", "0.5", shop(tmp_path), tmp_path / "out.csv", *COLUMNS], capsys)
    assert status == 0 and "kept 180 of 360 interactions (50.0%), " in err and " of 60 users (" in err and " of 40 items (" in err
    status, err = run(["--quiet", "--sampler", "random", "--keep", "0.5", shop(tmp_path), tmp_path / "out2.csv", *COLUMNS], capsys)
    assert status == 0 and err == ""


def test_help_shows_defaults_examples_and_what_keep_means(capsys):
    status, err = run(["--help"], capsys)
    out = capsys.readouterr().out if not err else err
    help_text = out or err
    status = main(["sample", "--help"])
    help_text = capsys.readouterr().out
    assert status == 0
    assert "(default: 0)" in help_text and "(default: 50)" in help_text and "(default: implicit)" in help_text
    assert "examples:\n  datasum sample --sampler svp-cf-prop --keep 0.2 ratings.csv sample.csv" in help_text
    assert "16 samplers (and 2 aliases)" in help_text
    from datasum.svp_cf import SAMPLERS
    assert all(name in help_text for name in SAMPLERS)
    assert "share of the graph's nodes" in help_text and "share of each user's interactions" in help_text


# --- the proxy: progress on stderr, resumable after Ctrl-C -------------------------------------------------------

def synthetic(tmp_path):
    users = np.repeat(np.arange(200), 15)
    items = (users * 7 + np.tile(np.arange(15), 200) * 13) % 300   # distinct per user
    return shop(tmp_path, "events.csv", "user,item\n" + "".join(f"u{u},i{i}\n" for u, i in zip(users, items)))


def test_the_proxy_shows_progress_and_resumes_after_ctrl_c(tmp_path, capsys, monkeypatch):
    import datasum.svp_cf as S
    source = synthetic(tmp_path)
    argv = ["--sampler", "svp-cf", "--keep", "0.3", "--proxy-epochs", "4", source]
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "whole"))
    status, err = run([*argv, tmp_path / "whole.csv"], capsys)
    assert status == 0 and "proxy mf" in err and "4/4" in err            # a tqdm bar on stderr

    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "interrupted"))
    save, saved = S._save_checkpoint, []
    def interrupt_after_two(*args, **kwargs):
        save(*args, **kwargs); saved.append(args[2])
        if len(saved) == 2: raise KeyboardInterrupt
    monkeypatch.setattr(S, "_save_checkpoint", interrupt_after_two)
    status, err = run([*argv, tmp_path / "resumed.csv"], capsys)
    assert status == 130 and not (tmp_path / "resumed.csv").exists()
    assert list((tmp_path / "interrupted" / "svp_cf").glob("*.partial.npz"))
    monkeypatch.setattr(S, "_save_checkpoint", save)
    epochs = []
    real = S.proxy_hardness
    monkeypatch.setattr(S, "proxy_hardness", lambda *a, **k: real(*a, **k, on_epoch=epochs.append))
    status, err = run(["--quiet", *argv, tmp_path / "resumed.csv"], capsys)
    assert status == 0 and epochs == [3, 4] and err == ""                   # resumed at epoch 3; --quiet: no bar
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert not list((tmp_path / "interrupted" / "svp_cf").glob("*.partial.npz"))


@pytest.mark.parametrize("sampler", ["random", "svp-cf"])
def test_sampling_leaves_the_callers_random_state_and_environment_alone(tmp_path, capsys, monkeypatch, sampler):
    import random
    import torch
    import torch._dynamo  # torch's first optimizer step imports it, and that import sets TORCHINDUCTOR_CACHE_DIR (once per process)
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    source = synthetic(tmp_path)
    np.random.seed(3); random.seed(3); torch.manual_seed(3)
    state = lambda: (np.random.get_state()[1].tobytes(), random.getstate(), torch.random.get_rng_state().numpy().tobytes(),
                     dict(os.environ))
    before = state()
    status, err = run(["--quiet", "--sampler", sampler, "--keep", "0.3", "--proxy-epochs", "2", source, tmp_path / "out.csv"], capsys)
    assert status == 0, err
    assert state() == before


# --- without torch ---------------------------------------------------------------------------------------------

NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."): raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoTorch())
from datasum.reproduce import main
status = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(status)
"""


def test_without_torch_samplers_work_and_the_proxy_names_its_extra(tmp_path):
    source = synthetic(tmp_path)
    env = {**os.environ, "DATASUM_CACHE": str(tmp_path / "cache")}
    ok = subprocess.run([sys.executable, "-c", NO_TORCH, "sample", "--sampler", "forest-fire", "--keep", "0.3", str(source),
                         str(tmp_path / "out.csv")], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([sys.executable, "-c", NO_TORCH, "sample", "--sampler", "svp-cf", "--keep", "0.3", str(source),
                              str(tmp_path / "svp.csv")], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "the SVP-CF proxy needs torch, which is not installed: pip install 'datasum[recsys]'" in missing.stderr
    assert not (tmp_path / "svp.csv").exists()


def test_end_to_end_gzipped_semicolon_csv_to_parquet(tmp_path):
    source = tmp_path / "shop.csv.gz"
    source.write_bytes(gzip.compress(SHOP.encode()))
    result = subprocess.run([str(DATASUM), "sample", "--sampler", "centrality", "--keep", "0.4", str(source), str(tmp_path / "out.parquet"),
                             *COLUMNS], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert list(back.columns) == ["customer", "product", "stars", "when", "note"] and 0 < len(back) <= 360 - int(0.6 * 360)
