"""The interface every recommender implements, so one training loop and one evaluator serve all.

A model owns its optimisers (adversarial models update several parameter groups per step) and
its batching (pair-based models iterate (user, item, label) pairs, user-based models iterate
user rows). Scoring goes through :meth:`Recommender.score_candidates` and
:meth:`Recommender.score_all`, which read the interaction vectors given to
:meth:`Recommender.set_inputs`; the noise study swaps in corrupted vectors there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .nets import CSRStore


class Recommender(nn.Module):
    iterative: bool = True  # False: fitted in one pass (no epochs)

    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__()
        self.n_users, self.n_items, self.params = n_users, n_items, params
        self.user_rows: CSRStore | None = None
        self.item_rows: CSRStore | None = None
        self._optimizers: dict[str, torch.optim.Optimizer] | None = None

    # -- data --------------------------------------------------------------------------------
    def set_inputs(
        self,
        train: sp.csr_matrix,
        device: torch.device | None = None,
        item_vectors: sp.csr_matrix | None = None,
    ) -> None:
        """The interaction vectors the model reads: users' rows and items' columns of ``train``.

        ``item_vectors`` (items × users) replaces the items' columns; the noise study (P§4)
        corrupts users' rows and items' columns independently this way.
        """
        device = device or self.device
        self.user_rows = CSRStore.from_scipy(train, device)
        cols = train.T.tocsr() if item_vectors is None else item_vectors.tocsr()
        self.item_rows = CSRStore.from_scipy(cols, device)

    @property
    def device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    # -- training ----------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by name, built by :meth:`_make_optimizers` on first use (after the
        trainer has moved the model to its device) and kept: their state carries over from step
        to step, and checkpoints save it."""
        if self._optimizers is None:
            self._optimizers = self._make_optimizers()
        return self._optimizers

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The model's optimisers by name; none by default (one-pass models)."""
        return {}

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for schedules that depend on the epoch (pre-training phases, alternating updates)."""

    def batches(
        self, train: sp.csr_matrix, epoch_rng: np.random.Generator, max_pairs: int | None
    ) -> Iterator[Any]:
        raise NotImplementedError

    def train_step(self, batch: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One update; the logged losses as detached 0-d tensors. The trainer reads them later,
        in bulk, so that a GPU step need not wait for them (it accepts floats too, but each
        ``float(loss)`` here would make the host wait for the device every step)."""
        raise NotImplementedError

    def fit(self, train: sp.csr_matrix) -> None:
        """One-pass models (``iterative = False``) fit here."""

    # -- scoring -----------------------------------------------------------------------------
    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``items`` (U × C) for ``users`` (U,)."""
        scores = self.score_all(users)
        return torch.gather(scores, 1, items)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item (U × M) for ``users``."""
        raise NotImplementedError
