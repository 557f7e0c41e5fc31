"""Popularity: score = the item's number of training interactions (the floor of every table)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .base import Recommender
from .specs import Family, Map

FAMILY = Family(
    name="itempop",
    schema=Map({}),
    cls="ItemPop",
    reads_vectors=False,
    models={"itempop": "ItemPop"},
    order=1000,  # our floor, after every other row
)


class ItemPop(Recommender):
    iterative = False

    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        self.register_buffer("popularity", torch.zeros(n_items))

    def fit(self, train: sp.csr_matrix) -> None:
        pop = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        self.popularity.copy_(torch.from_numpy(pop))

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.popularity.unsqueeze(0).expand(users.numel(), -1)
