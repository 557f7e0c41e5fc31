"""The processed split as the training and evaluation stages see it (CSR, never dense)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataFormatError

SPLIT_FILES = (
    "train_csr.npz",
    "valid.parquet",
    "test.parquet",
    "negatives_valid.parquet",
    "negatives_test.parquet",
)


def read_parquet_checked(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read a parquet file and check that it has exactly the columns (and kinds) we rely on."""
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataFormatError(path, "file not found (run the split stage first)") from None
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataFormatError(path, f"not a readable parquet file ({exc})") from None
    if list(df.columns) != list(columns):
        raise DataFormatError(path, f"columns must be {list(columns)}, found {list(df.columns)}")
    for c, kind in columns.items():
        dt = df[c].dtype
        ok = {"int": pd.api.types.is_integer_dtype(dt), "any": True}[kind]
        if not ok:
            raise DataFormatError(path, f"column {c!r} must be integer, found {dt}")
        if kind == "int" and len(df) and df[c].min() < 0:
            raise DataFormatError(path, f"column {c!r} holds negative ids")
    return df


@dataclass
class Split:
    """Training matrix plus the held-out item and the fixed candidates of every user."""

    train: sp.csr_matrix  # users × items, float32 ones
    valid_item: np.ndarray  # (N,) int64
    test_item: np.ndarray  # (N,)
    valid_negatives: np.ndarray  # (N, 99)
    test_negatives: np.ndarray  # (N, 99)

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    @cached_property
    def train_t(self) -> sp.csr_matrix:
        """Items × users: the item interaction vectors (columns of R) as CSR rows."""
        return self.train.T.tocsr()

    def heldout(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        if part == "valid":
            return self.valid_item, self.valid_negatives
        if part == "test":
            return self.test_item, self.test_negatives
        raise ValueError(part)


def _per_user(df: pd.DataFrame, n_users: int, path: Path) -> np.ndarray:
    users = df["user"].to_numpy()
    if len(users) != n_users or not np.array_equal(np.sort(users), np.arange(n_users)):
        raise DataFormatError(path, f"must hold exactly one row per user (0..{n_users - 1})")
    out = np.empty(n_users, dtype=np.int64)
    out[users] = df["item"].to_numpy()
    return out


def _negatives(df: pd.DataFrame, n_users: int, path: Path) -> np.ndarray:
    if len(df) % n_users:
        raise DataFormatError(path, f"{len(df)} rows is not a multiple of {n_users} users")
    k = len(df) // n_users
    df = df.sort_values("user", kind="stable")
    users = df["user"].to_numpy().reshape(n_users, k)
    if not (users == np.arange(n_users)[:, None]).all():
        raise DataFormatError(path, f"every user must have exactly {k} rows")
    return df["item"].to_numpy().reshape(n_users, k).astype(np.int64)


def load_split(directory: str | Path) -> Split:
    d = Path(directory)
    try:
        train = sp.load_npz(d / "train_csr.npz").tocsr()
    except FileNotFoundError:
        raise DataFormatError(
            d / "train_csr.npz", "file not found (run the split stage first)"
        ) from None
    except Exception as exc:
        raise DataFormatError(
            d / "train_csr.npz", f"not a readable sparse matrix ({exc})"
        ) from None
    train = train.astype(np.float32)
    n_users, n_items = train.shape
    cols = {"user": "int", "item": "int", "timestamp": "any"}
    valid = read_parquet_checked(d / "valid.parquet", cols)
    test = read_parquet_checked(d / "test.parquet", cols)
    negc = {"user": "int", "item": "int"}
    nv = read_parquet_checked(d / "negatives_valid.parquet", negc)
    nt = read_parquet_checked(d / "negatives_test.parquet", negc)
    split = Split(
        train=train,
        valid_item=_per_user(valid, n_users, d / "valid.parquet"),
        test_item=_per_user(test, n_users, d / "test.parquet"),
        valid_negatives=_negatives(nv, n_users, d / "negatives_valid.parquet"),
        test_negatives=_negatives(nt, n_users, d / "negatives_test.parquet"),
    )
    for name, arr in (
        ("valid", split.valid_item),
        ("test", split.test_item),
        ("negatives_valid", split.valid_negatives),
        ("negatives_test", split.test_negatives),
    ):
        if arr.size and (arr.min() < 0 or arr.max() >= n_items):
            raise DataFormatError(d / f"{name}.parquet", f"item ids outside 0..{n_items - 1}")
    return split
