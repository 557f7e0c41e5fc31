"""Expressiveness (P§5, Figures 3-4): the posteriors ``[μ, σ]`` of all users and items in 2-D.

The paper shows t-SNE maps and says DAVE's are "obviously separated into multiple clusters",
DAVE-adv's less so. Beyond the paper, a number for that: the silhouette of the best k-means
clustering of the ``[μ, σ]`` vectors themselves (not of the 2-D map, whose distances t-SNE
distorts), k in a range; the same clustering colours the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

CHUNK = 4096
SILHOUETTE_SAMPLE = 10_000


def posterior_features(model: Any, side: str) -> np.ndarray:
    """``[μ, σ]`` of every user or item (``[μ]`` for a model without σ, e.g. DAVE+aae)."""
    import torch

    n = model.n_users if side == "user" else model.n_items
    parts = []
    with torch.no_grad():
        for s in range(0, n, CHUNK):
            ids = torch.arange(s, min(s + CHUNK, n), device=model.device)
            mu, sigma = model.posterior(side, ids)
            block = mu if sigma is None else torch.cat([mu, sigma], dim=1)
            parts.append(block.float().cpu().numpy())
    return np.concatenate(parts).astype(np.float64)


def best_clustering(
    features: np.ndarray, ks: Sequence[int], seed: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """k-means for each k; the labels of the k with the highest silhouette, and every score."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = features.shape[0]
    scores, labels = [], {}
    for k in ks:
        if k >= n:
            break
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(features)
        if len(np.unique(km.labels_)) < 2:  # degenerate (identical points): no clustering at all
            scores.append({"k": k, "silhouette": float("nan")})
            continue
        labels[k] = km.labels_.astype(np.int32)
        sample = SILHOUETTE_SAMPLE if n > SILHOUETTE_SAMPLE else None  # O(n^2) memory otherwise
        scores.append(
            {
                "k": k,
                "silhouette": float(
                    silhouette_score(features, km.labels_, sample_size=sample, random_state=seed)
                ),
            }
        )
    table = pd.DataFrame(scores, columns=["k", "silhouette"])
    valid = table.dropna()
    if valid.empty:
        table["best"] = False
        return np.zeros(n, dtype=np.int32), table
    best_k = int(valid.loc[valid["silhouette"].idxmax(), "k"])
    table["best"] = table["k"] == best_k
    return labels[best_k], table


def project(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE with a fixed seed (PCA initialisation, so reruns agree)."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    perp = min(perplexity, max(1.0, (n - 1) / 3.0))  # t-SNE needs perplexity < n
    return TSNE(
        n_components=2, perplexity=perp, init="pca", random_state=seed, learning_rate="auto"
    ).fit_transform(features)


def embedding_map(model: Any, study: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coordinates and clusters of every user and item, and the silhouette of every k."""
    lo, hi = study["clusters"]
    coords, scores = [], []
    for side in ("user", "item"):
        feats = posterior_features(model, side)
        labels, table = best_clustering(feats, range(lo, hi + 1), study["seed"])
        xy = project(feats, study["perplexity"], study["seed"])
        coords.append(
            pd.DataFrame(
                {
                    "side": side,
                    "id": np.arange(feats.shape[0], dtype=np.int32),
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "cluster": labels,
                }
            )
        )
        scores.append(table.assign(side=side, dims=feats.shape[1]))
    score = pd.concat(scores, ignore_index=True)[["side", "k", "silhouette", "best", "dims"]]
    return pd.concat(coords, ignore_index=True), score
