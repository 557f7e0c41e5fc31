"""The preprocess stage: source files → one clean interaction table per dataset.

Every observed rating or pin becomes an implicit 1 (the rating is dropped), the protocol's
filters are applied (P§1: Yelp counts repeated pairs once and keeps users with ≥ 10; Digital Music
is an iterative 5-core; MovieLens and Pinterest are used as given), users who cannot give a
train, a validation and a test item are dropped, and ids are re-indexed densely. The output is
``interactions.parquet`` (``user`` int32, ``item`` int32, ``timestamp`` int64 or null),
``user_map.parquet``/``item_map.parquet`` (dense id → source id) and ``stats.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import atomic
from ..errors import DaveError
from ..layout import PREPROCESS_OUTPUTS
from . import readers, registry

log = logging.getLogger(__name__)

OUTPUTS = PREPROCESS_OUTPUTS  # layout.py says where every artifact lives


def load_source(dataset: str, raw_dir: Path, form: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Source rows as (user, item, timestamp) with source ids; timestamp may be null.

    The form's reader is named by the dataset's declaration (``data/registry.py``)."""
    info: dict[str, Any] = {"form": form}
    try:
        reader = registry.spec(dataset).form(form).reader
    except KeyError:
        raise DaveError(f"{dataset}: no source form {form!r} in the data registry") from None
    read = getattr(readers, f"read_form_{reader}", None)
    if read is None:
        raise DaveError(f"{dataset}: no reader read_form_{reader} for source form {form!r}")
    df, extra = read(raw_dir)
    info.update(extra)
    out = pd.DataFrame(
        {
            "user": df["user"].to_numpy(),
            "item": df["item"].to_numpy(),
            "timestamp": pd.array(df["timestamp"], dtype="Int64") if "timestamp" in df else pd.NA,
        }
    )
    info["source_rows"] = int(len(out))
    return out, info


def apply_filters(df: pd.DataFrame, cfg: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply the protocol's filters; return the rows kept and what each filter removed."""
    report: dict[str, Any] = {}
    users0 = df["user"].nunique()
    if cfg["dedup_pairs"]:
        # A repeated (user, item) counts once, at its latest time: an interaction can then
        # never appear in both training and test (DAVE §4.1.1).
        n = len(df)
        df = (
            df.assign(_t=df["timestamp"].fillna(-1))
            .sort_values(["user", "item", "_t"], kind="stable")
            .drop_duplicates(["user", "item"], keep="last")
            .drop(columns="_t")
        )
        report["repeated_pairs_removed"] = int(n - len(df))
    elif df.duplicated(["user", "item"]).any():
        raise DaveError(
            "repeated (user, item) pairs present but dedup_pairs is false; "
            "the split needs unique pairs"
        )
    if cfg["min_user_interactions"] > 0:
        counts = df.groupby("user")["item"].transform("size")
        before = df["user"].nunique()
        df = df[counts >= cfg["min_user_interactions"]]
        report["users_below_min_interactions"] = int(before - df["user"].nunique())
    if cfg["k_core"] > 0:
        k, rounds = cfg["k_core"], 0
        while True:
            rounds += 1
            uc = df.groupby("user")["item"].transform("size")
            ic = df.groupby("item")["user"].transform("size")
            keep = (uc >= k) & (ic >= k)
            if keep.all():
                break
            df = df[keep]
        report["k_core_rounds"] = rounds
    counts = df.groupby("user")["item"].transform("size")
    before = df["user"].nunique()
    df = df[counts >= cfg["min_interactions"]]
    report["users_below_min_for_split"] = int(before - df["user"].nunique())
    report["dropped_users"] = int(users0 - df["user"].nunique())
    if df.empty:
        raise DaveError(
            f"{cfg['dataset']}: the filters leave no users "
            f"(dedup_pairs={cfg['dedup_pairs']}, min_user_interactions="
            f"{cfg['min_user_interactions']}, k_core={cfg['k_core']}, "
            f"min_interactions={cfg['min_interactions']})"
        )
    return df, report


def reindex(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Dense ids in the order of the source ids (so the mapping does not depend on row order)."""
    users = np.sort(df["user"].unique())
    items = np.sort(df["item"].unique())
    uidx = np.searchsorted(users, df["user"].to_numpy()).astype(np.int32)
    iidx = np.searchsorted(items, df["item"].to_numpy()).astype(np.int32)
    out = pd.DataFrame(
        {
            "user": uidx,
            "item": iidx,
            "timestamp": pd.array(df["timestamp"].to_numpy(), dtype="Int64"),
        }
    )
    out = out.sort_values(["user", "item"], kind="stable").reset_index(drop=True)
    umap = pd.DataFrame(
        {"user": np.arange(len(users), dtype=np.int32), "source_id": users.astype(str)}
    )
    imap = pd.DataFrame(
        {"item": np.arange(len(items), dtype=np.int32), "source_id": items.astype(str)}
    )
    return out, umap, imap


def statistics(df: pd.DataFrame) -> dict[str, Any]:
    n, users, items = len(df), int(df["user"].nunique()), int(df["item"].nunique())
    return {
        "interactions": int(n),
        "users": users,
        "items": items,
        "sparsity": 1.0 - n / (users * items),
        "timestamps": "all"
        if df["timestamp"].notna().all()
        else ("none" if df["timestamp"].isna().all() else "partial"),
    }


def preprocess(
    dataset: str, raw_dir: Path, out_dir: Path, cfg: dict[str, Any], form: str
) -> dict[str, Any]:
    source, info = load_source(dataset, raw_dir, form)
    kept, report = apply_filters(source, cfg)
    interactions, umap, imap = reindex(kept)
    stats = {
        **statistics(interactions),
        "dropped_users": report["dropped_users"],
        "filters": report,
        "source": info,
        "dataset": dataset,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(interactions, out_dir / "interactions.parquet")
    write_parquet(umap, out_dir / "user_map.parquet")
    write_parquet(imap, out_dir / "item_map.parquet")
    atomic.write_json(out_dir / "stats.json", stats)
    log.info(
        "%s: %d interactions, %d users, %d items (dropped %d users)",
        dataset,
        stats["interactions"],
        stats["users"],
        stats["items"],
        stats["dropped_users"],
    )
    return stats


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic.atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="snappy")
