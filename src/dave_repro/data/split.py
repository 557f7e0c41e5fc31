"""The split stage: leave-one-out test and validation items, and the fixed sampled candidates.

Per user (P§1): the test item is the latest interaction (ml-100k, ml-1m, yelp; timestamp ties,
and null timestamps, broken by a seeded random key, never by file order) or a random one
(digital-music, pinterest); then one more random interaction is the validation item; the rest is
training. For test and for validation separately, 99 items the user never interacted with (in
the whole data) are drawn uniformly without replacement: every model is ranked against the same
stored candidates. All randomness comes from ``data.split_seed``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import atomic
from ..errors import DaveError
from ..layout import SPLIT_OUTPUTS
from .preprocess import write_parquet

log = logging.getLogger(__name__)

OUTPUTS = SPLIT_OUTPUTS  # layout.py says where every artifact lives

# Independent random streams derived from split_seed, one per decision.
_STREAM_TEST, _STREAM_VALID, _STREAM_NEG_TEST, _STREAM_NEG_VALID = 1, 2, 3, 4


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _first_per_user(users: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Row index of the first row of each user in ``order`` (rows sorted by user first)."""
    u = users[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = u[1:] != u[:-1]
    return order[first]


def holdout(df: pd.DataFrame, mode: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the test and validation interaction of every user."""
    users = df["user"].to_numpy()
    n = len(df)
    key_t = _rng(seed, _STREAM_TEST).random(n)
    if mode == "latest":
        ts = df["timestamp"].to_numpy(dtype="float64", na_value=-np.inf)
        order = np.lexsort((key_t, -ts, users))  # by user, latest first, then seeded key
    elif mode == "random":
        order = np.lexsort((key_t, users))
    else:
        raise DaveError(f"unknown holdout mode {mode!r}")
    test_rows = _first_per_user(users, order)
    mask = np.ones(n, dtype=bool)
    mask[test_rows] = False
    key_v = _rng(seed, _STREAM_VALID).random(n)
    rest = np.flatnonzero(mask)
    vorder = rest[np.lexsort((key_v[rest], users[rest]))]
    valid_rows = _first_per_user(users, vorder)
    return test_rows, valid_rows


def sample_negatives(user_items: sp.csr_matrix, num: int, seed: int, stream: int) -> np.ndarray:
    """``num`` distinct items per user, none of which the user interacted with: shape (N, num)."""
    n_users, n_items = user_items.shape
    rng = _rng(seed, stream)
    out = np.empty((n_users, num), dtype=np.int32)
    indptr, indices = user_items.indptr, user_items.indices
    for u in range(n_users):
        pos = indices[indptr[u] : indptr[u + 1]]
        free = n_items - len(pos)
        if free < num:
            raise DaveError(
                f"user {u} interacted with {len(pos)} of {n_items} items: fewer than "
                f"{num} items are left to sample as negatives"
            )
        if free < 4 * num:
            complement = np.setdiff1d(np.arange(n_items), pos, assume_unique=True)
            out[u] = rng.choice(complement, size=num, replace=False)
            continue
        chosen: list[int] = []
        seen = set(pos.tolist())
        while len(chosen) < num:
            for c in rng.integers(0, n_items, size=2 * num).tolist():
                if c not in seen:
                    seen.add(c)
                    chosen.append(c)
                    if len(chosen) == num:
                        break
        out[u] = chosen
    return out


def to_csr(df: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(len(df), dtype=np.float32), (df["user"].to_numpy(), df["item"].to_numpy())),
        shape=(n_users, n_items),
    )
    m.sum_duplicates()
    m.sort_indices()
    return m


def _negatives_frame(neg: np.ndarray) -> pd.DataFrame:
    n_users, num = neg.shape
    return pd.DataFrame(
        {
            "user": np.repeat(np.arange(n_users, dtype=np.int32), num),
            "item": neg.reshape(-1).astype(np.int32),
        }
    )


def split(
    interactions: pd.DataFrame, stats: dict[str, Any], out_dir: Path, cfg: dict[str, Any]
) -> dict[str, Any]:
    seed, num = cfg["split_seed"], cfg["num_negatives"]
    n_users, n_items = int(stats["users"]), int(stats["items"])
    df = interactions.sort_values(["user", "item"], kind="stable").reset_index(drop=True)
    if df.duplicated(["user", "item"]).any():
        raise DaveError("interactions hold repeated (user, item) pairs; re-run preprocess")
    test_rows, valid_rows = holdout(df, cfg["holdout"], seed)
    if len(test_rows) != n_users or len(valid_rows) != n_users:
        raise DaveError("some user has fewer than 2 interactions; preprocess must drop such users")
    train_mask = np.ones(len(df), dtype=bool)
    train_mask[test_rows] = False
    train_mask[valid_rows] = False
    cols = ["user", "item", "timestamp"]
    train = df.loc[train_mask, cols].reset_index(drop=True)
    test = df.loc[np.sort(test_rows), cols].reset_index(drop=True)
    valid = df.loc[np.sort(valid_rows), cols].reset_index(drop=True)
    everything = to_csr(df, n_users, n_items)
    neg_test = sample_negatives(everything, num, seed, _STREAM_NEG_TEST)
    neg_valid = sample_negatives(everything, num, seed, _STREAM_NEG_VALID)
    train_csr = to_csr(train, n_users, n_items)

    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(train, out_dir / "train.parquet")
    write_parquet(valid, out_dir / "valid.parquet")
    write_parquet(test, out_dir / "test.parquet")
    write_parquet(_negatives_frame(neg_test), out_dir / "negatives_test.parquet")
    write_parquet(_negatives_frame(neg_valid), out_dir / "negatives_valid.parquet")
    with atomic.atomic_path(out_dir / "train_csr.npz") as tmp, open(tmp, "wb") as fh:
        sp.save_npz(fh, train_csr, compressed=False)
    info = {
        "users": n_users,
        "items": n_items,
        "train": int(len(train)),
        "valid": int(len(valid)),
        "test": int(len(test)),
        "num_negatives": num,
        "holdout": cfg["holdout"],
        "split_seed": seed,
        "items_without_training_interactions": int((np.diff(train_csr.tocsc().indptr) == 0).sum()),
    }
    atomic.write_json(out_dir / "split.json", info)
    log.info(
        "%s: train %d, valid %d, test %d; %d fixed negatives per user",
        cfg["dataset"],
        info["train"],
        info["valid"],
        info["test"],
        num,
    )
    return info
