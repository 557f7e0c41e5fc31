"""Preprocess and split on real data (where the mirror has it) and generated data in the real
formats (for every dataset): Table 2 statistics, split invariants, determinism, bad input."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import MIRROR

from dave_repro import config
from dave_repro.data import synthetic
from dave_repro.data.dataset import load_split
from dave_repro.errors import ConfigError, DataFormatError, DaveError
from dave_repro.stages import data as stages

REAL = [ds for ds in ("ml-100k", "ml-1m") if MIRROR is not None and (MIRROR / ds).is_dir()]
EXPECTED = {"ml-100k": (100_000, 943, 1_682), "ml-1m": (1_000_209, 6_040, 3_706)}


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build(params: dict, ds: str) -> Path:
    cfg = config.dataset_config(params, ds)
    stages.download(cfg)
    stages.preprocess(cfg)
    stages.split(cfg)
    return Path("data/processed") / ds


def generated(params: dict, ds: str, root: Path, monkeypatch, **kw) -> dict:
    params["data"]["checksums"].update(synthetic.write_mirror(root / "mirror", ds, **kw))
    monkeypatch.setenv("DAVE_DATA_MIRROR", str(root / "mirror"))
    return params


def check_split_invariants(d: Path, holdout: str) -> None:
    inter = pd.read_parquet(d / "interactions.parquet")
    train = pd.read_parquet(d / "train.parquet")
    valid = pd.read_parquet(d / "valid.parquet")
    test = pd.read_parquet(d / "test.parquet")
    n_users = inter["user"].nunique()
    n_items = int(inter["item"].max()) + 1
    # exactly one test and one validation item per user, disjoint from train and each other
    assert sorted(test["user"]) == list(range(n_users)) and sorted(valid["user"]) == list(
        range(n_users)
    )
    key = lambda df: set(zip(df["user"], df["item"], strict=True))  # noqa: E731
    assert not key(train) & key(test) and not key(train) & key(valid) and not key(valid) & key(test)
    assert len(train) + len(valid) + len(test) == len(inter)
    assert key(train) | key(valid) | key(test) == key(inter)
    # the test item is each user's latest (ties and nulls allowed only at the maximum)
    if holdout == "latest":
        ts = (
            inter.assign(t=inter["timestamp"].astype("float64").fillna(-np.inf))
            .groupby("user")["t"]
            .max()
        )
        t_test = test.assign(t=test["timestamp"].astype("float64").fillna(-np.inf)).set_index(
            "user"
        )["t"]
        assert (t_test.sort_index() == ts.sort_index()).all()
    # 99 valid, distinct negatives per user that the user never interacted with
    seen = inter.groupby("user")["item"].apply(set)
    for name in ("negatives_test.parquet", "negatives_valid.parquet"):
        neg = pd.read_parquet(d / name)
        assert list(neg.columns) == ["user", "item"] and str(neg["user"].dtype) == "int32"
        counts = neg.groupby("user")["item"].agg(["size", "nunique"])
        assert (
            (counts["size"] == 99).all()
            and (counts["nunique"] == 99).all()
            and len(counts) == n_users
        )
        bad = [(u, i) for u, i in zip(neg["user"], neg["item"], strict=True) if i in seen[u]]
        assert not bad
        assert neg["item"].between(0, n_items - 1).all()
    # the CSR training matrix equals train.parquet
    m = sp.load_npz(d / "train_csr.npz")
    coo = m.tocoo()
    assert set(zip(coo.row.tolist(), coo.col.tolist(), strict=True)) == key(train)
    assert (coo.data == 1).all()


@pytest.mark.parametrize("ds", REAL)
def test_real_data_statistics_and_split(ds, params, workdir, monkeypatch):
    monkeypatch.setenv("DAVE_DATA_MIRROR", str(MIRROR))
    d = build(params, ds)
    stats = pd.read_json(d / "stats.json", typ="series")
    assert (stats["interactions"], stats["users"], stats["items"]) == EXPECTED[ds]
    check_split_invariants(d, "latest")
    # the fixed negatives load in the training format, and quickly
    split = load_split(d)
    assert split.valid_negatives.shape == (EXPECTED[ds][1], 99)


@pytest.mark.parametrize("ds", config.DATASETS)
def test_generated_data_in_real_formats(ds, fresh_params, workdir, monkeypatch):
    params = generated(fresh_params, ds, workdir, monkeypatch)
    d = build(params, ds)
    check_split_invariants(d, params["data"][ds]["holdout"])
    inter = pd.read_parquet(d / "interactions.parquet")
    assert [str(t) for t in inter.dtypes] == ["int32", "int32", "Int64"]
    if ds == "pinterest":
        assert inter["timestamp"].isna().all()  # Pinterest has no timestamps
    if ds == "yelp":
        stats = pd.read_json(d / "stats.json", typ="series")
        assert stats["filters"]["repeated_pairs_removed"] > 0
        assert inter.groupby("user").size().min() >= 10
    if ds == "digital-music":
        assert inter.groupby("user").size().min() >= 5 and inter.groupby("item").size().min() >= 5


def test_split_is_identical_across_reruns_and_changes_with_the_seed(
    fresh_params, workdir, monkeypatch
):
    params = generated(fresh_params, "ml-100k", workdir, monkeypatch)
    d = build(params, "ml-100k")

    def digest() -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in d.iterdir()
            if not p.name.endswith("manifest.json")
        }

    first = digest()
    cfg = config.dataset_config(params, "ml-100k")
    assert stages.split(cfg, force=True)
    assert digest() == first  # byte-identical
    assert not stages.split(cfg)  # content-checked: nothing to do
    params["data"]["split_seed"] += 1
    stages.split(config.dataset_config(params, "ml-100k"))
    assert digest()["negatives_test.parquet"] != first["negatives_test.parquet"]


def test_ml1m_equivalent_form_gives_the_same_interactions(fresh_params, workdir, monkeypatch):
    """ratings.dat and (all pairs + latest item per user) preprocess to the same interactions."""
    params = generated(fresh_params, "ml-1m", workdir, monkeypatch)
    canonical = build(params, "ml-1m")
    a = pd.read_parquet(canonical / "interactions.parquet")
    ratings = pd.read_csv(
        workdir / "mirror/ml-1m/ratings.dat", sep="::", engine="python", names=["u", "m", "r", "t"]
    )
    eq = workdir / "eqmirror" / "ml-1m"
    (eq / "interactions_resn").mkdir(parents=True)
    (eq / "derived").mkdir()
    # LightGCN adjacency files (UserID-1, MovieID-1), the pairs split between two files
    per_user = ratings.groupby("u")["m"].apply(list)
    (eq / "interactions_resn/train.txt").write_text(
        "".join(f"{u - 1} {' '.join(str(x - 1) for x in ms[:-3])}\n" for u, ms in per_user.items())
    )
    (eq / "interactions_resn/test.txt").write_text(
        "".join(f"{u - 1} {' '.join(str(x - 1) for x in ms[-3:])}\n" for u, ms in per_user.items())
    )
    latest = ratings.sort_values(["u", "t", "m"]).groupby("u").tail(1)
    rows = [
        "\t".join(
            [
                "user_idx",
                "user_id",
                "ncf_item",
                "movie_id",
                "rating",
                "timestamp",
                "resolution",
                "candidate_movie_ids",
            ]
        )
    ]
    rows += [
        f"{u - 1}\t{u}\t0\t{m}\t{r}\t{t}\tunique\t"
        for u, m, r, t in latest[["u", "m", "r", "t"]].itertuples(index=False)
    ]
    (eq / "derived/ncf_test_movieid.tsv").write_text("\n".join(rows) + "\n")
    pins = {
        f"ml-1m/{n}": "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
        for n, p in (
            ("pairs_train.txt", eq / "interactions_resn/train.txt"),
            ("pairs_test.txt", eq / "interactions_resn/test.txt"),
            ("latest.tsv", eq / "derived/ncf_test_movieid.tsv"),
        )
    }
    work2 = workdir / "second"
    work2.mkdir()
    monkeypatch.chdir(work2)
    monkeypatch.setenv("DAVE_DATA_MIRROR", str(workdir / "eqmirror"))
    params["data"]["checksums"] = pins
    b = pd.read_parquet(build(params, "ml-1m") / "interactions.parquet")
    assert a[["user", "item"]].equals(b[["user", "item"]])
    # the latest item of each user carries its timestamp in both forms
    assert b["timestamp"].notna().sum() == b["user"].nunique()


def test_malformed_row_names_file_and_line(fresh_params, workdir, monkeypatch):
    mirror = workdir / "mirror" / "ml-100k"
    mirror.mkdir(parents=True)
    data = b"1\t1\t5\t880000000\n2\t1\t4\t880000001\n3\tx\t4\t880000002\n"
    (mirror / "u.data").write_bytes(data)
    fresh_params["data"]["checksums"] = {
        "ml-100k/u.data": "sha256:" + hashlib.sha256(data).hexdigest()
    }
    monkeypatch.setenv("DAVE_DATA_MIRROR", str(workdir / "mirror"))
    cfg = config.dataset_config(fresh_params, "ml-100k")
    stages.download(cfg)
    with pytest.raises(DataFormatError) as exc:
        stages.preprocess(cfg)
    assert exc.value.line == 3 and "u.data" in str(exc.value) and "'x'" in str(exc.value)
    assert not Path("data/processed/ml-100k/interactions.parquet").exists()


def test_filter_that_leaves_no_users(fresh_params, workdir, monkeypatch):
    params = generated(fresh_params, "yelp", workdir, monkeypatch)
    params["data"]["yelp"]["min_user_interactions"] = 10_000
    cfg = config.dataset_config(params, "yelp")
    stages.download(cfg)
    with pytest.raises(DaveError, match="leave no users"):
        stages.preprocess(cfg)
    assert not Path("data/processed/yelp/interactions.parquet").exists()


def test_unknown_dataset_name(params):
    with pytest.raises(ConfigError, match="unknown dataset 'movielens'"):
        config.dataset_config(params, "movielens")


def test_split_seed_is_independent_of_file_order(fresh_params, workdir, monkeypatch):
    """Shuffling the source file's rows changes nothing: ties are broken by a seeded key."""
    params = generated(fresh_params, "ml-100k", workdir, monkeypatch)
    first = build(params, "ml-100k")
    test_a = pd.read_parquet(first / "test.parquet")
    src = workdir / "mirror/ml-100k/u.data"
    lines = src.read_text().splitlines(keepends=True)
    # force ties at each user's latest time, then shuffle
    df = pd.read_csv(src, sep="\t", names=["u", "i", "r", "t"])
    df["t"] = df.groupby("u")["t"].transform("max").where(df.index % 2 == 0, df["t"])
    shuffled = df.sample(frac=1.0, random_state=1)
    for name, frame in (("a", df), ("b", shuffled)):
        sub = workdir / name
        (sub / "mirror/ml-100k").mkdir(parents=True)
        frame.to_csv(sub / "mirror/ml-100k/u.data", sep="\t", header=False, index=False)
    results = []
    for name in ("a", "b"):
        monkeypatch.chdir(workdir / name)
        monkeypatch.setenv("DAVE_DATA_MIRROR", str(workdir / name / "mirror"))
        data = (workdir / name / "mirror/ml-100k/u.data").read_bytes()
        params["data"]["checksums"] = {
            "ml-100k/u.data": "sha256:" + hashlib.sha256(data).hexdigest()
        }
        results.append(pd.read_parquet(build(params, "ml-100k") / "test.parquet"))
    assert results[0].equals(results[1])
    assert len(lines) == len(df) and not test_a.empty
    os.chdir(workdir)
