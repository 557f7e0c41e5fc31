"""ACAE (Yuan, Yao, Benatallah, SIGIR'19): a collaborative auto-encoder trained against
adversarial perturbations of its layers.

The auto-encoder (CAE) is CDAE's without input corruption: ``h = σ(W₁ᵀ y_u + V_u + b₁)``,
``ŷ = W₂ᵀ h + b₂`` with the logistic loss L over the user's whole row. ACAE adds to each layer a
perturbation ``Δ = ε · g/‖g‖`` in the direction g = ∂L/∂Δ that increases the loss most (the fast
gradient method), and minimises ``L(Θ) + λ_adv · L(Θ + Δ)`` with Δ held fixed. Which layers are
perturbed and how strongly is ``noise``: a coefficient per position (encoder weights W₁, user
nodes V, hidden layer h, decoder weights W₂); equal coefficients are ACAE, unequal ones the
fine-grained FG-ACAE. As in the paper, the CAE is trained first (epoch 0 makes
``pretrain_passes`` passes) and the adversarial training continues from it. Prediction reads the
user's training row (a user-based model) with no perturbation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .baseline_utils import UserBatch, UserRowModel, fgsm, l2
from .nets import ACTIVATIONS, step
from .specs import ACTIVATION_NAMES, EPOCH_PASSES, POSITIVE, Family, Float, Int, Map, Str

FAMILY = Family(
    name="acae",
    schema=Map(
        {
            "hidden": Int(min=1),
            "hidden_activation": Str(choices=ACTIVATION_NAMES),
            "eps": Float(min=0.0),
            "reg_adv": Float(min=0.0),
            "noise": Map({k: Float(min=0.0) for k in ("encoder", "user", "hidden", "decoder")}),
            "reg": Float(min=0.0),
            "lr": POSITIVE,
            "batch_size": Int(min=1),
            "pretrain_passes": Int(min=0),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="ACAE",
    reads_vectors=True,
    models={"acae": "ACAE"},
    order=2,
)


class ACAE(UserRowModel):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        k = params["hidden"]
        self.w1 = nn.Parameter(torch.empty(n_items, k))
        self.b1 = nn.Parameter(torch.zeros(k))
        self.user_node = nn.Parameter(torch.empty(n_users, k))
        self.w2 = nn.Parameter(torch.empty(k, n_items))
        self.b2 = nn.Parameter(torch.zeros(n_items))
        for w in (self.w1, self.user_node, self.w2):  # authors' code: truncated normal, sd 0.01
            nn.init.trunc_normal_(w, 0.0, 0.01, -0.02, 0.02)
        self.activation = ACTIVATIONS[params["hidden_activation"]]()

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"acae": torch.optim.Adam(self.parameters(), lr=self.params["lr"])}

    def logits(
        self, rows: torch.Tensor, users: torch.Tensor, delta: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The CAE's output logits, with the perturbations ``delta`` (by position) added."""
        d = delta or {}
        w1 = self.w1 + d["encoder"] if "encoder" in d else self.w1
        v = self.user_node[users] + d["user"] if "user" in d else self.user_node[users]
        h = self.activation(rows @ w1 + self.b1 + v)
        if "hidden" in d:
            h = h + d["hidden"]
        w2 = self.w2 + d["decoder"] if "decoder" in d else self.w2
        return h @ w2 + self.b2

    def loss(
        self, rows: torch.Tensor, users: torch.Tensor, delta: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """L: logistic loss summed over the row's entries, mean over the batch."""
        z = self.logits(rows, users, delta)
        return F.binary_cross_entropy_with_logits(z, rows, reduction="none").sum(dim=1).mean()

    def perturbations(self, rows: torch.Tensor, users: torch.Tensor) -> dict[str, torch.Tensor]:
        """Δ per active position: ε·coef · g/‖g‖ with g = ∂L/∂Δ at Δ = 0 (whole-tensor norm)."""
        coef = {k: v for k, v in self.params["noise"].items() if v > 0}
        if not coef:
            return {}
        k = self.params["hidden"]
        shapes = {
            "encoder": self.w1.shape,
            "user": (users.numel(), k),
            "hidden": (users.numel(), k),
            "decoder": self.w2.shape,
        }
        zeros = {
            pos: torch.zeros(shapes[pos], device=rows.device, requires_grad=True) for pos in coef
        }
        with torch.enable_grad():
            grads = torch.autograd.grad(self.loss(rows, users, zeros), list(zeros.values()))
        eps = self.params["eps"]
        return {
            pos: fgsm(g, eps * coef[pos], per_row=False)
            for pos, g in zip(zeros, grads, strict=True)
        }

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        rows = self.rows(batch.users)
        clean = self.loss(rows, batch.users)
        logs = {"loss_clean": clean.detach()}
        loss = clean
        if batch.phase != "pretrain":
            delta = self.perturbations(rows, batch.users)
            if delta:
                adv = self.loss(rows, batch.users, delta)
                loss = loss + self.params["reg_adv"] * adv
                logs["loss_adversarial"] = adv.detach()
        loss = loss + self.params["reg"] * l2([self.w1, self.w2, self.user_node])
        step(self.optimizers()["acae"], loss)
        return {"loss": loss.detach(), **logs}

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.logits(self.rows(users), users)
