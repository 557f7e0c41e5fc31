"""DAVE against each model, paired over users (P§3): is a difference in a table cell real?

Every run saves the rank of each user's test item, so the per-user NDCG@10 of any model can be
recomputed. Seeds are combined per user first (the user's NDCG@10 averaged over the model's
seeds), then DAVE and the other model are compared user by user with the Wilcoxon signed-rank
test (two-sided). Users whose two values are equal (most often both 0: the test item outside
both top-10s) carry no sign and are dropped, as Wilcoxon's test prescribes; how many remain is
reported beside the p-value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataFormatError
from ..evaluation.metrics import per_user_ndcg
from ..layout import run_dir

REFERENCE = "dave"
RANK_COLUMNS = {"sampled": "rank_sampled", "full": "rank_full"}
HOW_SEEDS_COMBINE = (
    "per user, NDCG@10 averaged over the model's seeds, then a two-sided "
    "Wilcoxon signed-rank test over users (ties dropped)"
)


def read_ranks(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataFormatError(path, "missing (run the evaluate stage)") from None
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataFormatError(path, f"not a readable parquet file ({exc})") from None
    if "user" not in df.columns or "rank_sampled" not in df.columns:
        raise DataFormatError(
            path, f"expected columns user, rank_sampled[, rank_full], found {list(df.columns)}"
        )
    users = df["user"].to_numpy()
    if not np.array_equal(np.sort(users), np.arange(len(df))):
        raise DataFormatError(path, "must hold exactly one row per user (0..N-1)")
    return df.sort_values("user").reset_index(drop=True)


def user_ndcg(
    root: Path,
    dataset: str,
    model: str,
    seeds: Sequence[int],
    protocol: str = "sampled",
    k: int = 10,
) -> np.ndarray | None:
    """Per-user NDCG@k averaged over ``seeds`` (None when a run lacks that protocol's ranks)."""
    col = RANK_COLUMNS[protocol]
    per_seed = []
    for seed in seeds:
        df = read_ranks(run_dir(dataset, model, seed, root) / "ranks.parquet")
        if col not in df.columns:
            return None
        per_seed.append(per_user_ndcg(df[col].to_numpy(), k))
    if len({a.size for a in per_seed}) > 1:
        raise DataFormatError(
            run_dir(dataset, model, seed, root).parent, "seeds disagree on the number of users"
        )
    return np.mean(per_seed, axis=0)


def paired_test(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Mean of ``reference - other`` over users and the Wilcoxon signed-rank p-value."""
    from scipy.stats import wilcoxon

    if reference.shape != other.shape:
        raise ValueError(f"paired test over different users: {reference.shape} vs {other.shape}")
    d = reference - other
    nonzero = int(np.count_nonzero(d))
    p = (
        float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
        if nonzero
        else float("nan")
    )
    return {"diff": float(d.mean()), "p": p, "users": nonzero}


def against_reference(
    root: Path,
    dataset: str,
    seeds_of: dict[str, Sequence[int]],
    protocol: str = "sampled",
    k: int = 10,
    reference: str = REFERENCE,
) -> dict[str, dict[str, Any]]:
    """The paired test of ``reference`` against every other model (empty without the reference)."""
    if reference not in seeds_of:
        return {}
    ref = user_ndcg(root, dataset, reference, seeds_of[reference], protocol, k)
    if ref is None:
        return {}
    out = {}
    for model, seeds in seeds_of.items():
        if model == reference:
            continue
        other = user_ndcg(root, dataset, model, seeds, protocol, k)
        if other is not None:
            out[model] = paired_test(ref, other)
    return out


def format_p(p: float) -> str:
    if p != p:  # nan: no user differs
        return "no difference"
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.3f}"
