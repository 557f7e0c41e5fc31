"""APR (He et al., SIGIR'18): BPR matrix factorisation trained against adversarial perturbations
of its embeddings (AMF).

``s(u, i) = p_uᵀ q_i``; BPR loss ``L = Σ softplus(−(s_ui − s_uj))`` over (user, observed,
unobserved) triples, summed over the batch as in the authors' code. Training follows the
authors' schedule: BPR-MF first (epoch 0 makes ``pretrain_passes`` passes), then APR: each step
computes ``Δ = ε · g/‖g‖`` from the gradient g of L with respect to the batch's user and item
embeddings, each embedding row normalised on its own, and minimises ``L(Θ) + λ_adv · L(Θ + Δ)``
with Δ held fixed (APR Eq. 7-9, Algorithm 1). Adagrad as in the paper; the adversarial phase
starts with a fresh Adagrad, as the authors' code does. An embedding model: scores come from
the embeddings alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .base import Recommender
from .baseline_utils import TripleBatch, fgsm, triple_batches
from .nets import step
from .specs import EPOCH_PASSES, POSITIVE, Family, Float, Int, Map, dataset_setting

FAMILY = Family(
    name="apr",
    schema=Map(
        {
            "embedding_dim": dataset_setting(),
            "batch_size": Int(min=1),
            "lr": POSITIVE,
            "reg": Float(min=0.0),
            "eps": Float(min=0.0),
            "reg_adv": Float(min=0.0),
            "pretrain_passes": Int(min=0),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="APR",
    reads_vectors=False,
    models={"apr": "APR"},
    order=1,
)


class APR(Recommender):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        d = params["embedding_dim"]
        self.user_emb = nn.Parameter(torch.empty(n_users, d))
        self.item_emb = nn.Parameter(torch.empty(n_items, d))
        for w in (self.user_emb, self.item_emb):  # authors' code: truncated normal, sd 0.01
            nn.init.trunc_normal_(w, 0.0, 0.01, -0.02, 0.02)
        self._adversarial = params["pretrain_passes"] == 0

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        p = self.params

        def adagrad() -> torch.optim.Optimizer:  # TensorFlow's Adagrad starts its sums at 0.1
            return torch.optim.Adagrad(
                [self.user_emb, self.item_emb], lr=p["lr"], initial_accumulator_value=0.1
            )

        opts = {"apr": adagrad()}
        if p["pretrain_passes"] > 0:
            opts["bpr"] = adagrad()
        return opts

    def on_epoch_start(self, epoch: int) -> None:
        self._adversarial = self.params["pretrain_passes"] == 0 or epoch >= 1

    def batches(
        self, train: sp.csr_matrix, epoch_rng: np.random.Generator, max_pairs: int | None
    ) -> Iterator[TripleBatch]:
        p = self.params
        passes = p["epoch_passes"] if self._adversarial else p["pretrain_passes"]
        for _ in range(passes):
            yield from triple_batches(train, p["batch_size"], epoch_rng, max_pairs, self.device)

    # -- the model ---------------------------------------------------------------------------
    def bpr_loss(
        self,
        batch: TripleBatch,
        p_u: torch.Tensor,
        q: torch.Tensor,
        item_index: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """Σ softplus(−(p_u·q_i − p_u·q_j)) with ``q`` the rows of the batch's distinct items."""
        qi, qj = q[item_index[0]], q[item_index[1]]
        return F.softplus(-((p_u * qi).sum(-1) - (p_u * qj).sum(-1))).sum()

    def perturbations(self, batch: TripleBatch) -> dict[str, torch.Tensor]:
        """Δ for the batch's distinct users and items (APR Eq. 9: ε · ∂L/∂Θ normalised per row)."""
        users, u_inv = torch.unique(batch.users, return_inverse=True)
        items, i_inv = torch.unique(torch.cat([batch.pos, batch.neg]), return_inverse=True)
        n = batch.users.numel()
        p = self.user_emb[users].detach().requires_grad_(True)
        q = self.item_emb[items].detach().requires_grad_(True)
        loss = self.bpr_loss(batch, p[u_inv], q, (i_inv[:n], i_inv[n:]))
        g_p, g_q = torch.autograd.grad(loss, [p, q])
        eps = self.params["eps"]
        return {
            "users": users,
            "u_inv": u_inv,
            "items": items,
            "i_inv": i_inv,
            "delta_user": fgsm(g_p, eps, per_row=True),
            "delta_item": fgsm(g_q, eps, per_row=True),
        }

    def train_step(self, batch: TripleBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts, prm = self.optimizers(), self.params
        n = batch.users.numel()
        if self._adversarial:
            adv = self.perturbations(batch)
            p, q = self.user_emb[adv["users"]], self.item_emb[adv["items"]]
            index = (adv["i_inv"][:n], adv["i_inv"][n:])
            loss_clean = self.bpr_loss(batch, p[adv["u_inv"]], q, index)
            loss_adv = self.bpr_loss(
                batch, (p + adv["delta_user"])[adv["u_inv"]], q + adv["delta_item"], index
            )
            loss = loss_clean + prm["reg_adv"] * loss_adv
            opt = opts["apr"]
            logs = {"loss_bpr": loss_clean.detach() / n, "loss_adversarial": loss_adv.detach() / n}
        else:
            items, i_inv = torch.unique(torch.cat([batch.pos, batch.neg]), return_inverse=True)
            loss = self.bpr_loss(
                batch, self.user_emb[batch.users], self.item_emb[items], (i_inv[:n], i_inv[n:])
            )
            opt, logs = opts["bpr"], {}
        if prm["reg"] > 0:
            loss = loss + prm["reg"] * (
                self.user_emb[batch.users].pow(2).sum()
                + self.item_emb[torch.cat([batch.pos, batch.neg])].pow(2).sum()
            )
        step(opt, loss)
        return {"loss": loss.detach() / n, **logs}  # per triple

    # -- scoring -----------------------------------------------------------------------------
    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user_emb[users].unsqueeze(1) * self.item_emb[items]).sum(-1)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_emb[users] @ self.item_emb.t()
