"""CDAE (Wu et al., WSDM'16): a denoising auto-encoder of the user's row with a user node.

``h = σ(Wᵀ ỹ_u + V_u + b)``, ``ŷ = σ(W'ᵀ h + b')`` (CDAE Eq. 4-5): ``ỹ_u`` is the training row
with each entry dropped with probability q and the kept ones scaled by 1/(1−q) (CDAE §4.2,
unbiased drop-out corruption), ``V_u`` the user's own input node. Loss: the logistic (binary
cross-entropy) loss over the row's entries plus ``λ/2 · ‖W, W', V‖²`` (CDAE Eq. 6). Prediction
reads the user's uncorrupted training row (a user-based model).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .baseline_utils import UserBatch, UserRowModel, dropout, l2
from .nets import ACTIVATIONS, step
from .specs import ACTIVATION_NAMES, EPOCH_PASSES, POSITIVE, Family, Float, Int, Map, Str

FAMILY = Family(
    name="cdae",
    schema=Map(
        {
            "hidden": Int(min=1),
            "hidden_activation": Str(choices=ACTIVATION_NAMES),
            "corruption": Float(min=0.0, max=0.99),
            "reg": Float(min=0.0),
            "lr": POSITIVE,
            "batch_size": Int(min=1),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="CDAE",
    reads_vectors=True,
    models={"cdae": "CDAE"},
    order=0,
)


class CDAE(UserRowModel):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        k = params["hidden"]
        self.encoder = nn.Linear(n_items, k)
        self.user_node = nn.Embedding(n_users, k)
        nn.init.normal_(self.user_node.weight, 0.0, 0.01)
        self.decoder = nn.Linear(k, n_items)
        self.activation = ACTIVATIONS[params["hidden_activation"]]()

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"cdae": torch.optim.Adam(self.parameters(), lr=self.params["lr"])}

    def corrupt(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Drop-out corruption: each entry zeroed with probability q, the rest scaled by 1/(1−q)."""
        return dropout(rows, self.params["corruption"], generator)

    def logits(self, inputs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.activation(self.encoder(inputs) + self.user_node(users)))

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        rows = self.rows(batch.users)
        z = self.logits(self.corrupt(rows, generator), batch.users)
        rec = F.binary_cross_entropy_with_logits(z, rows, reduction="none").sum(dim=1).mean()
        reg = self.params["reg"] * l2(
            [self.encoder.weight, self.decoder.weight, self.user_node.weight]
        )
        loss = rec + reg
        step(self.optimizers()["cdae"], loss)
        return {"loss": loss.detach(), "loss_reconstruction": rec.detach()}

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.logits(self.rows(users), users)
