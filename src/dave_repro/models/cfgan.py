"""CFGAN (Chae et al., CIKM'18): a conditional GAN whose generator produces a user's whole
purchase vector, with the ZP scheme (zero-reconstruction + partial masking).

Generator ``r̂_u = G(c_u)``, conditioned on the user's training row ``c_u`` (the authors' code
uses no random noise z). Discriminator ``D([c_u ; x])`` tells the real row ``x = r_u`` from the
masked generated one ``x = r̂_u ⊙ (e_u + k_u)``, where ``e_u`` marks the user's items and ``k_u``
a random ``pm_ratio`` share of the unobserved items (partial masking, PM): on those the
generator must output 0 to look real. Zero-reconstruction (ZR) adds
``α · Σ_{j ∈ N_u} r̂_uj²`` over another random ``zr_ratio`` share ``N_u`` of unobserved items
(CFGAN Eq. 6-8). Per CFGAN epoch, D makes ``d_passes`` passes (batches of ``d_batch_size``
users), then G makes ``g_passes`` passes (``g_batch_size``), as in the authors' code. Scores
are the generator's outputs for the user's training row (a user-based model).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .baseline_utils import UserBatch, UserRowModel, frozen, gan_loss, l2, sample_unobserved_mask
from .nets import mlp, step
from .specs import EPOCH_PASSES, POSITIVE, SHARE, Family, Float, Int, Map, Str

FAMILY = Family(
    name="cfgan",
    schema=Map(
        {
            "scheme": Str(choices=("ZP", "ZR", "PM")),
            "g_hidden": Int(min=1),
            "g_layers": Int(min=1),
            "d_hidden": Int(min=1),
            "d_layers": Int(min=1),
            "g_lr": POSITIVE,
            "d_lr": POSITIVE,
            "g_reg": Float(min=0.0),
            "d_reg": Float(min=0.0),
            "g_batch_size": Int(min=1),
            "d_batch_size": Int(min=1),
            "g_passes": Int(min=1),
            "d_passes": Int(min=1),
            "zr_ratio": SHARE,
            "pm_ratio": SHARE,
            "zr_coefficient": Float(min=0.0),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="CFGAN",
    reads_vectors=True,
    models={"cfgan": "CFGAN"},
    order=3,
)


def _net(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    """Sigmoid hidden layers and a linear output, Glorot-uniform weights (the authors' code)."""
    net = mlp([n_in, *[hidden] * layers, n_out], "sigmoid")
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.uniform_(m.bias, -0.01, 0.01)
    return net


class CFGAN(UserRowModel):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        self.generator = _net(n_items, p["g_hidden"], p["g_layers"], n_items)
        self.discriminator = _net(2 * n_items, p["d_hidden"], p["d_layers"], 1)

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=p["g_lr"]),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=p["d_lr"]),
        }

    def schedule(self, epoch: int) -> list[tuple[str, int, int]]:
        p = self.params
        one = [
            ("discriminator", p["d_passes"], p["d_batch_size"]),
            ("generator", p["g_passes"], p["g_batch_size"]),
        ]
        return one * p["epoch_passes"]

    def masks(
        self, rows: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(PM mask e_u + k_u, ZR set N_u) for a batch of rows, drawn afresh for each batch."""
        p = self.params
        pm = rows + (
            sample_unobserved_mask(rows, p["pm_ratio"], generator)
            if p["scheme"] in ("ZP", "PM")
            else torch.zeros_like(rows)
        )
        zr = (
            sample_unobserved_mask(rows, p["zr_ratio"], generator)
            if p["scheme"] in ("ZP", "ZR")
            else torch.zeros_like(rows)
        )
        return pm, zr

    def discriminate(self, condition: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([condition, vector], dim=1)).squeeze(-1)

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts, p = self.optimizers(), self.params
        rows = self.rows(batch.users)
        pm, zr = self.masks(rows, generator)
        if batch.phase == "discriminator":
            with torch.no_grad():
                fake = self.generator(rows) * pm
            loss = (
                gan_loss(self.discriminate(rows, rows), True)
                + gan_loss(self.discriminate(rows, fake), False)
                + p["d_reg"] * l2(self.discriminator.parameters())
            )
            opt = opts["discriminator"]
            logs = {"loss_discriminator": loss.detach()}
        else:
            with frozen(self.discriminator.parameters()):
                out = self.generator(rows)
                adv = gan_loss(self.discriminate(rows, out * pm), True)
                zero_rec = (out.pow(2) * zr).sum(dim=1).mean()
                loss = (
                    adv
                    + p["zr_coefficient"] * zero_rec
                    + p["g_reg"] * l2(self.generator.parameters())
                )
            opt = opts["generator"]
            logs = {
                "loss_generator": loss.detach(),
                "loss_zero_reconstruction": zero_rec.detach(),
            }
        step(opt, loss)
        return {"loss": loss.detach(), **logs}

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.generator(self.rows(users))
