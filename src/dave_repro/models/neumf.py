"""NeuMF (He et al., WWW'17): GMF and an MLP over user and item embeddings, fused in one layer.

``ŷ = σ(hᵀ [p_u^G ⊙ q_i^G ; MLP([p_u^M ; q_i^M])])`` trained with the log loss over observed
pairs and ``negative_ratio`` unobserved items per pair, redrawn every pass (NCF §3.1.1, §4.1).
An embedding model: scores come from the learned user and item embeddings only.

Optional pre-training (NCF §3.4.1): with ``pretrain_passes > 0`` the first epoch trains GMF and
MLP as separate models (each its own output layer; their parameters are disjoint, so one Adam
over the sum of their losses is the same as two runs), then every later epoch trains NeuMF with
its output layer initialised as ``[α·h_GMF ; (1−α)·h_MLP]``. Until then the model scores with
exactly that combination.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..training.sampling import PairBatch
from .base import Recommender
from .baseline_utils import lecun_uniform_, pair_passes
from .nets import step
from .specs import EPOCH_PASSES, POSITIVE, SHARE, Family, Int, List, Map, Str, dataset_setting

FAMILY = Family(
    name="neumf",
    schema=Map(
        {
            "factors": Int(min=1),
            "mlp_layers": List(Int(min=2), min_len=1),
            "negative_ratio": dataset_setting(),
            "batch_size": dataset_setting(),
            "lr": POSITIVE,
            "pretrain_passes": Int(min=0),
            "pretrain_alpha": SHARE,
            "finetune_optimizer": Str(choices=("adam", "sgd")),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="NeuMF",
    reads_vectors=False,
    models={"neumf": "NeuMF"},
    order=4,
)


class NeuMF(Recommender):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        k, layers = p["factors"], p["mlp_layers"]
        half = layers[0] // 2
        self.gmf_user, self.gmf_item = nn.Embedding(n_users, k), nn.Embedding(n_items, k)
        self.mlp_user, self.mlp_item = nn.Embedding(n_users, half), nn.Embedding(n_items, half)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, 0.0, 0.01)  # NCF code: normal, scale 0.01
        mods: list[nn.Module] = []
        widths = [2 * half, *layers[1:]]
        for i in range(len(widths) - 1):
            mods += [lecun_uniform_(nn.Linear(widths[i], widths[i + 1])), nn.ReLU()]
        self.mlp = nn.Sequential(*mods)
        self.head = lecun_uniform_(nn.Linear(k + widths[-1], 1))  # NeuMF's prediction layer h
        self.gmf_head = lecun_uniform_(nn.Linear(k, 1))  # the separate models of pre-training
        self.mlp_head = lecun_uniform_(nn.Linear(widths[-1], 1))
        # 1 once the fused layer is in use; saved with the weights so every checkpoint scores right
        self.register_buffer("fused", torch.tensor(0 if p["pretrain_passes"] > 0 else 1))

    # -- optimisers and phases ---------------------------------------------------------------
    def _body(self) -> list[nn.Parameter]:
        return [
            *self.gmf_user.parameters(),
            *self.gmf_item.parameters(),
            *self.mlp_user.parameters(),
            *self.mlp_item.parameters(),
            *self.mlp.parameters(),
        ]

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        fused = [*self._body(), *self.head.parameters()]
        if p["finetune_optimizer"] == "sgd" and p["pretrain_passes"] > 0:
            main: torch.optim.Optimizer = torch.optim.SGD(fused, lr=p["lr"])
        else:
            main = torch.optim.Adam(fused, lr=p["lr"])
        opts = {"neumf": main}
        if p["pretrain_passes"] > 0:
            opts["pretrain"] = torch.optim.Adam(
                [*self._body(), *self.gmf_head.parameters(), *self.mlp_head.parameters()],
                lr=p["lr"],
            )
        return opts

    def on_epoch_start(self, epoch: int) -> None:
        if epoch >= 1 and not bool(self.fused):
            self._fuse()

    @torch.no_grad()
    def _fuse(self) -> None:
        """NCF §3.4.1: h ← [α·h_GMF ; (1−α)·h_MLP], and the biases mixed alike."""
        a = self.params["pretrain_alpha"]
        k = self.gmf_head.in_features
        self.head.weight[:, :k] = a * self.gmf_head.weight
        self.head.weight[:, k:] = (1 - a) * self.mlp_head.weight
        self.head.bias.copy_(a * self.gmf_head.bias + (1 - a) * self.mlp_head.bias)
        self.fused.fill_(1)

    # -- model -----------------------------------------------------------------------------------
    def towers(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The GMF vector p⊙q and the MLP's last layer, for aligned (user, item) index tensors."""
        gmf = self.gmf_user(users) * self.gmf_item(items)
        mlp = self.mlp(torch.cat([self.mlp_user(users), self.mlp_item(items)], dim=-1))
        return gmf, mlp

    def logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gmf, mlp = self.towers(users, items)
        if bool(self.fused):
            return self.head(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)
        a = self.params["pretrain_alpha"]
        return (a * self.gmf_head(gmf) + (1 - a) * self.mlp_head(mlp)).squeeze(-1)

    # -- training --------------------------------------------------------------------------------
    def batches(
        self, train: sp.csr_matrix, epoch_rng: np.random.Generator, max_pairs: int | None
    ) -> Iterator[PairBatch]:
        p = self.params
        pretraining = p["pretrain_passes"] > 0 and not bool(self.fused)
        passes = p["pretrain_passes"] if pretraining else p["epoch_passes"]
        return pair_passes(
            train, p["negative_ratio"], p["batch_size"], epoch_rng, max_pairs, self.device, passes
        )

    def train_step(self, batch: PairBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts = self.optimizers()
        gmf, mlp = self.towers(batch.users, batch.items)
        if bool(self.fused):
            logit = self.head(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logit, batch.labels)
            opt, logs = opts["neumf"], {}
        else:  # pre-training: GMF and MLP as two models with their own output layers
            l_gmf = F.binary_cross_entropy_with_logits(self.gmf_head(gmf).squeeze(-1), batch.labels)
            l_mlp = F.binary_cross_entropy_with_logits(self.mlp_head(mlp).squeeze(-1), batch.labels)
            loss, opt = l_gmf + l_mlp, opts["pretrain"]
            logs = {"loss_gmf": l_gmf.detach(), "loss_mlp": l_mlp.detach()}
        step(opt, loss)
        return {"loss": loss.detach(), **logs}

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.logits(users.unsqueeze(1).expand_as(items), items)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        items = torch.arange(self.n_items, device=users.device)
        step = max(
            1, (1 << 22) // (self.n_items * max(self.params["mlp_layers"]))
        )  # bound U × M × width
        parts = [
            self.logits(
                users[s : s + step, None].expand(-1, self.n_items),
                items.expand(users[s : s + step].numel(), -1),
            )
            for s in range(0, users.numel(), step)
        ]
        return torch.cat(parts)
