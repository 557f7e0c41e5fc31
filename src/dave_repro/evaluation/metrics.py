"""Metrics from the rank of the held-out item (1 = top): every number can be recomputed."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def hit_ratio(ranks: np.ndarray, k: int) -> float:
    """Share of users whose held-out item is within the top k."""
    return float(np.mean(ranks <= k)) if ranks.size else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    """Mean of 1/log2(rank + 1) for hits within the top k, 0 otherwise (one relevant item)."""
    if not ranks.size:
        return 0.0
    gains = np.where(ranks <= k, 1.0 / np.log2(ranks.astype(np.float64) + 1.0), 0.0)
    return float(np.mean(gains))


def per_user_ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    return np.where(ranks <= k, 1.0 / np.log2(ranks.astype(np.float64) + 1.0), 0.0)


def metrics_from_ranks(ranks: np.ndarray, ks: Iterable[int]) -> dict[str, float]:
    ks = list(ks)
    out = {f"hr@{k}": hit_ratio(ranks, k) for k in ks}
    out.update({f"ndcg@{k}": ndcg(ranks, k) for k in ks})
    return out
