"""Noise tolerability (P§4, Figure 2): test-time corruption of the input interaction vectors.

Models are trained on clean data. At noise level ``p`` an entity (a user's training row, an
item's training column) loses exactly ``round(p·n)`` of its ``n`` observed entries and gains as
many entries chosen uniformly among its unobserved ones, so it keeps its number of ones: the
model sees as much evidence as before, a fraction ``p`` of it false. Users' rows and items'
columns are corrupted independently. The corruption depends only on the seeds, the level and the
side (never on the model), so every model of a seed is scored on the same corrupted inputs.

Kept outside ``evaluation/`` on purpose: that package is hashed into every trained model's
fingerprint, and this study must not invalidate finished runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

SIDES = {"user": 0, "item": 1}


def flips(n_ones: int, level: float) -> int:
    """round(level · n_ones), halves rounded up (Python's round() would round them to even)."""
    return int(math.floor(level * n_ones + 0.5 + 1e-9))


def corruption_rng(seed: int, run_seed: int, side: str, level: float | None) -> np.random.Generator:
    """One stream per (study seed, run seed, side, level): the same inputs for every model."""
    code = -1 if level is None else int(round(level * 1_000_000))
    return np.random.default_rng([seed, run_seed, SIDES[side], code + 1])


def corrupt_rows(
    matrix: sp.csr_matrix, levels: float | np.ndarray, rng: np.random.Generator
) -> tuple[sp.csr_matrix, int]:
    """Row ``i`` loses ``round(levels[i] · n_i)`` of its ones and gains as many new ones.

    The new ones are drawn uniformly, without replacement, among the row's originally unobserved
    entries (never re-adding a removed one). A row with fewer unobserved entries than flips
    (possible only above level 0.5) gains all of them; such rows are counted and returned.
    """
    csr = sp.csr_matrix(matrix)
    csr.sum_duplicates()
    csr.sort_indices()
    n_rows, n_cols = csr.shape
    lv = np.broadcast_to(np.asarray(levels, dtype=np.float64), (n_rows,))
    indptr, indices = csr.indptr, csr.indices
    out_rows: list[np.ndarray] = []
    saturated = 0
    for i in range(n_rows):
        ones = indices[indptr[i] : indptr[i + 1]].astype(np.int64)
        n = ones.size
        k = flips(n, float(lv[i]))
        if k == 0:
            out_rows.append(ones)
            continue
        keep = np.delete(ones, rng.choice(n, size=k, replace=False))
        free = n_cols - n
        if free < k:
            saturated += 1
        z = np.sort(rng.choice(free, size=min(k, free), replace=False))
        # the z-th unobserved column: shift z by the number of observed columns at or before it
        added = z + np.searchsorted(ones - np.arange(n), z, side="right")
        out_rows.append(np.sort(np.concatenate([keep, added])))
    lengths = np.array([r.size for r in out_rows], dtype=np.int64)
    new_indptr = np.concatenate([[0], np.cumsum(lengths)])
    new_indices = np.concatenate(out_rows) if out_rows else np.zeros(0, dtype=np.int64)
    data = np.ones(new_indices.size, dtype=np.float32)
    return sp.csr_matrix((data, new_indices, new_indptr), shape=csr.shape), saturated


def draw_levels(n: int, grid: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Heterogeneous mode: each entity draws its own level from the grid, uniformly."""
    return np.asarray(grid, dtype=np.float64)[rng.integers(0, len(grid), size=n)]


def corrupted_inputs(
    train: sp.csr_matrix, study: dict[str, Any], run_seed: int, level: float | None
) -> dict[str, Any]:
    """Corrupted user rows and item columns at ``level`` (None: heterogeneous levels)."""
    out: dict[str, Any] = {}
    for side, matrix in (("user", train), ("item", train.T.tocsr())):
        rng = corruption_rng(study["seed"], run_seed, side, level)
        levels = draw_levels(matrix.shape[0], study["levels"], rng) if level is None else level
        out[side], out[f"saturated_{side}s"] = corrupt_rows(matrix, levels, rng)
        out[f"{side}_levels"] = np.broadcast_to(
            np.asarray(levels, dtype=np.float64), (matrix.shape[0],)
        )
    return out


def noise_curve(
    model: Any, split: Any, study: dict[str, Any], run_seed: int, ks: Sequence[int]
) -> pd.DataFrame:
    """Test metrics of a trained model under corrupted inputs, one row per level.

    Uniform mode: the clean inputs (level 0) and every level of the grid. Heterogeneous mode:
    one corruption where each entity has its own level; one row per user level plus ``all``.
    The model's clean inputs are restored afterwards.
    """
    from .evaluation.metrics import metrics_from_ranks
    from .evaluation.ranking import sampled_ranks

    device = model.device
    rows: list[dict[str, Any]] = []
    try:
        if study["mode"] == "uniform":
            for level in sorted({0.0, *study["levels"]}):
                ci = corrupted_inputs(split.train, study, run_seed, level)
                model.set_inputs(ci["user"], device, item_vectors=ci["item"])
                ranks = sampled_ranks(model, split, "test")
                rows.append(
                    {
                        "mode": "uniform",
                        "group": "all",
                        "level": level,
                        "users": ranks.size,
                        "saturated_users": ci["saturated_users"],
                        "saturated_items": ci["saturated_items"],
                        **metrics_from_ranks(ranks, ks),
                    }
                )
        else:
            ci = corrupted_inputs(split.train, study, run_seed, None)
            model.set_inputs(ci["user"], device, item_vectors=ci["item"])
            ranks = sampled_ranks(model, split, "test")
            ulev = ci["user_levels"]
            groups = [("all", float("nan"), np.ones(ranks.size, dtype=bool))]
            groups += [("user level", lv, ulev == lv) for lv in sorted(study["levels"])]
            for group, level, mask in groups:
                rows.append(
                    {
                        "mode": "heterogeneous",
                        "group": group,
                        "level": level,
                        "users": int(mask.sum()),
                        "saturated_users": ci["saturated_users"],
                        "saturated_items": ci["saturated_items"],
                        **metrics_from_ranks(ranks[mask], ks),
                    }
                )
    finally:
        model.set_inputs(split.train, device)
    return pd.DataFrame(rows)
