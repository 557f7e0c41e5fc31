"""Training pairs for pair-based models: positives plus negatives redrawn every epoch.

Negatives come from the user's unobserved *training* items (P§2), uniformly, ``ratio`` per
positive. Everything an epoch draws comes from its own generator, seeded by (seed, epoch), so a
run resumed at an epoch boundary sees exactly the pairs an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import TrainingError


@dataclass
class PairBatch:
    users: torch.Tensor
    items: torch.Tensor
    labels: torch.Tensor


def positive_pairs(train: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
    return users, train.indices.astype(np.int64)


def sample_unobserved(
    train: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One item per entry of ``users``, uniformly among items not in that user's training row."""
    n_items = train.shape[1]
    degree = np.diff(train.indptr)
    if users.size and (degree[users] >= n_items).any():
        raise TrainingError("a user has interacted with every item; no negative can be drawn")
    pos_u, pos_i = positive_pairs(train)
    observed = pos_u * n_items + pos_i  # sorted: CSR rows are sorted by user, then item
    items = rng.integers(0, n_items, size=users.size)
    todo = np.arange(users.size)
    while todo.size:
        keys = users[todo] * n_items + items[todo]
        at = np.searchsorted(observed, keys)
        hit = (at < observed.size) & (observed[np.minimum(at, observed.size - 1)] == keys)
        todo = todo[hit]
        items[todo] = rng.integers(0, n_items, size=todo.size)
    return items


def epoch_pairs(
    train: sp.csr_matrix, ratio: int, rng: np.random.Generator, max_pairs: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (user, item, label) pairs of one epoch, shuffled."""
    pos_u, pos_i = positive_pairs(train)
    if max_pairs is not None and max_pairs < pos_u.size * (1 + ratio):
        keep = np.sort(rng.choice(pos_u.size, size=max(1, max_pairs // (1 + ratio)), replace=False))
        pos_u, pos_i = pos_u[keep], pos_i[keep]
    neg_u = np.repeat(pos_u, ratio)
    neg_i = sample_unobserved(train, neg_u, rng)
    users = np.concatenate([pos_u, neg_u])
    items = np.concatenate([pos_i, neg_i])
    labels = np.concatenate([np.ones(pos_u.size, np.float32), np.zeros(neg_u.size, np.float32)])
    perm = rng.permutation(users.size)
    return users[perm], items[perm], labels[perm]


def pair_batches(
    train: sp.csr_matrix,
    ratio: int,
    batch_size: int,
    rng: np.random.Generator,
    max_pairs: int | None,
    device: torch.device,
) -> Iterator[PairBatch]:
    users, items, labels = epoch_pairs(train, ratio, rng, max_pairs)
    u = torch.from_numpy(users).to(device)
    i = torch.from_numpy(items).to(device)
    y = torch.from_numpy(labels).to(device)
    for s in range(0, users.size, batch_size):
        yield PairBatch(u[s : s + batch_size], i[s : s + batch_size], y[s : s + batch_size])
