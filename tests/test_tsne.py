"""Expressiveness (P§5): posteriors [μ, σ], the best k-means by silhouette, a seeded t-SNE."""

from __future__ import annotations

import numpy as np
import torch
from conftest import random_train, small_dave_params

from dave_repro.models.dave import DAVE
from dave_repro.tsne import best_clustering, embedding_map, posterior_features, project


def _blobs(n_per: int = 40, centers: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mids = rng.normal(0, 10, size=(centers, 6))
    x = np.concatenate([m + rng.normal(0, 0.3, size=(n_per, 6)) for m in mids])
    return x, np.repeat(np.arange(centers), n_per)


def test_best_clustering_finds_the_blobs_and_scores_every_k():
    x, truth = _blobs()
    labels, table = best_clustering(x, range(2, 7), seed=0)
    assert list(table["k"]) == [2, 3, 4, 5, 6] and table["best"].sum() == 1
    best = table[table["best"]].iloc[0]
    assert best["k"] == 3 and best["silhouette"] > 0.8
    assert best["silhouette"] == table["silhouette"].max()
    # the labels are the blobs (up to naming)
    assert len({(a, b) for a, b in zip(labels, truth, strict=True)}) == 3


def test_one_blob_scores_low():
    x = np.random.default_rng(1).normal(size=(120, 6))
    _, table = best_clustering(x, range(2, 6), seed=0)
    assert table["silhouette"].max() < 0.3


def test_tsne_is_seeded():
    x, _ = _blobs(20)
    a, b = project(x, 10, seed=0), project(x, 10, seed=0)
    assert a.shape == (60, 2) and np.array_equal(a, b)


def _dave(params, name, **kw):
    torch.manual_seed(0)
    train = random_train(30, 25)
    m = DAVE(30, 25, small_dave_params(params, name, **kw))
    m.set_inputs(train)
    m.eval()
    return m


def test_posterior_features_are_mu_and_sigma(params):
    model = _dave(params, "dave")
    users = posterior_features(model, "user")
    items = posterior_features(model, "item")
    assert users.shape == (30, 16) and items.shape == (25, 16)  # d = 8: [mu (8), sigma (8)]
    assert (users[:, 8:] > 0).all()
    mu, sigma = model.posterior("user", torch.arange(30))
    assert np.allclose(users[:, :8], mu.numpy()) and np.allclose(users[:, 8:], sigma.numpy())
    aae = _dave(params, "dave-aae")
    assert posterior_features(aae, "user").shape == (30, 8)  # point embeddings: no sigma


def test_embedding_map_shapes(params):
    coords, scores = embedding_map(
        _dave(params, "dave"), {"clusters": [2, 4], "perplexity": 5, "seed": 0}
    )
    assert list(coords.columns) == ["side", "id", "x", "y", "cluster"]
    assert (coords["side"] == "user").sum() == 30 and (coords["side"] == "item").sum() == 25
    assert list(scores.columns) == ["side", "k", "silhouette", "best", "dims"]
    assert scores.groupby("side")["best"].sum().to_dict() == {"item": 1, "user": 1}
