"""Ranks of held-out items, with ties broken pessimistically.

The held-out item ranks after every competitor with an equal score (P§3), so a constant model
gets HR@10 = 0 and no model profits from ties. Sampled: against the user's 99 fixed negatives.
Full: against every item not in the user's training row.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import Split
from ..errors import TrainingError
from ..models.base import Recommender


def _check_finite(scores: torch.Tensor, what: str) -> None:
    if not torch.isfinite(scores).all():
        raise TrainingError(f"{what}: the model produced non-finite scores")


@torch.no_grad()
def sampled_ranks(
    model: Recommender,
    split: Split,
    part: str,
    user_batch: int = 1024,
    users: np.ndarray | None = None,
) -> np.ndarray:
    """Rank (1..100) of each user's held-out item among it and its 99 fixed negatives."""
    heldout, negatives = split.heldout(part)
    users = np.arange(split.n_users) if users is None else users
    dev = model.device
    out = np.empty(users.size, dtype=np.int32)
    for s in range(0, users.size, user_batch):
        u = users[s : s + user_batch]
        cand = np.concatenate([heldout[u, None], negatives[u]], axis=1)
        scores = model.score_candidates(
            torch.as_tensor(u, device=dev), torch.as_tensor(cand, device=dev)
        ).float()
        _check_finite(scores, f"{part} scoring")
        pos = scores[:, :1]
        out[s : s + u.size] = (1 + (scores[:, 1:] >= pos).sum(dim=1)).cpu().numpy()
    return out


@torch.no_grad()
def full_ranks(model: Recommender, split: Split, part: str, user_batch: int = 512) -> np.ndarray:
    """Rank (1..M) of each user's held-out item among all items outside its training row."""
    heldout, _ = split.heldout(part)
    dev = model.device
    train = split.train
    out = np.empty(split.n_users, dtype=np.int32)
    for s in range(0, split.n_users, user_batch):
        e = min(s + user_batch, split.n_users)
        u = torch.arange(s, e, device=dev)
        scores = model.score_all(u).float()
        _check_finite(scores, f"{part} full ranking")
        target = torch.as_tensor(heldout[s:e], device=dev)
        pos = scores.gather(1, target[:, None])
        beats = scores >= pos
        block = train[s:e]
        rows = torch.as_tensor(np.repeat(np.arange(e - s), np.diff(block.indptr)), device=dev)
        cols = torch.as_tensor(block.indices, device=dev, dtype=torch.long)
        beats[rows, cols] = False  # training items are not candidates
        beats[torch.arange(e - s, device=dev), target] = False  # the item itself
        out[s:e] = (1 + beats.sum(dim=1)).cpu().numpy()
    return out
