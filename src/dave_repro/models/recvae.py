"""RecVAE (Shenbin et al., WSDM'20): Mult-VAE with a densely connected encoder, a composite
prior, β rescaled per user and alternating encoder/decoder updates.

* Encoder (RecVAE §3.1): the row, L2-normalised and with dropout, through five dense layers of
  ``hidden`` units (swish, layer norm, each fed the sum of all earlier layers) to (μ, log σ²);
  decoder: one linear layer to the items' logits; multinomial likelihood (softmax over items).
* Composite prior (§3.2): ``p(z) = 3/20 · N(0, I) + 3/4 · q_old(z | x) + 1/10 · N(0, e^10 I)``,
  where ``q_old`` is the encoder as it was at the last prior update (evaluated without dropout).
* β rescaling (§3.3): the KL term of a user is weighted by ``γ · |x_u|``.
* Alternating updates (§3.4): per RecVAE epoch, ``encoder_passes`` passes update the encoder
  only (dropout on), then the prior's encoder copy is refreshed, then ``decoder_passes`` passes
  update the decoder only (dropout off). Two Adam optimisers, as in the authors' code.

Prediction: the decoder's logits at z = μ of the user's training row (a user-based model).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .baseline_utils import UserBatch, UserRowModel, dropout
from .nets import step
from .specs import EPOCH_PASSES, POSITIVE, Family, Float, Int, Map

MIXTURE = (3 / 20, 3 / 4, 1 / 10)  # standard, old posterior, wide ("uniform") component
WIDE_LOGVAR = 10.0


FAMILY = Family(
    name="recvae",
    schema=Map(
        {
            "hidden": Int(min=1),
            "latent": Int(min=1),
            "lr": POSITIVE,
            "batch_size": Int(min=1),
            "gamma": Float(min=0.0),
            "dropout": Float(min=0.0, max=0.99),
            "encoder_passes": Int(min=1),
            "decoder_passes": Int(min=1),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="RecVAE",
    reads_vectors=True,
    models={"recvae": "RecVAE"},
    order=8,
)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; μ, e^logvar)."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class Encoder(nn.Module):
    def __init__(self, n_items: int, hidden: int, latent: int, layers: int = 5) -> None:
        super().__init__()
        self.fcs = nn.ModuleList(
            [nn.Linear(n_items, hidden)] + [nn.Linear(hidden, hidden) for _ in range(layers - 1)]
        )
        self.lns = nn.ModuleList([nn.LayerNorm(hidden, eps=0.1) for _ in range(layers)])
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(
        self, rows: torch.Tensor, drop: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = rows / (rows.pow(2).sum(dim=-1, keepdim=True).sqrt() + 1e-10)
        if drop > 0:
            assert generator is not None
            x = dropout(x, drop, generator)
        hs: list[torch.Tensor] = []
        for i, (fc, ln) in enumerate(zip(self.fcs, self.lns, strict=True)):
            pre = fc(x if i == 0 else hs[-1])
            if hs:
                pre = pre + sum(hs)
            hs.append(ln(F.silu(pre)))  # swish
        return self.mu(hs[-1]), self.logvar(hs[-1])


class CompositePrior(nn.Module):
    def __init__(self, encoder: Encoder, weights: tuple[float, float, float] = MIXTURE) -> None:
        super().__init__()
        self.weights = weights
        self.encoder_old = copy.deepcopy(encoder).requires_grad_(False)

    def log_prob(self, rows: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per latent dimension: the log-sum-exp of the three weighted components."""
        with torch.no_grad():
            mu_old, logvar_old = self.encoder_old(rows)
        zero = torch.zeros_like(z)
        comps = [
            log_normal(z, zero, zero),
            log_normal(z, mu_old, logvar_old),
            log_normal(z, zero, torch.full_like(z, WIDE_LOGVAR)),
        ]
        return torch.logsumexp(
            torch.stack([c + math.log(w) for c, w in zip(comps, self.weights, strict=True)]), dim=0
        )

    @torch.no_grad()
    def update(self, encoder: Encoder) -> None:
        self.encoder_old.load_state_dict(encoder.state_dict())


class RecVAE(UserRowModel):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        self.encoder = Encoder(n_items, p["hidden"], p["latent"])
        self.prior = CompositePrior(self.encoder)
        self.decoder = nn.Linear(p["latent"], n_items)

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.params["lr"]
        return {
            "encoder": torch.optim.Adam(self.encoder.parameters(), lr=lr),
            "decoder": torch.optim.Adam(self.decoder.parameters(), lr=lr),
        }

    def schedule(self, epoch: int) -> list[tuple[str, int, int]]:
        p = self.params
        one = [
            ("encoder", p["encoder_passes"], p["batch_size"]),
            ("decoder", p["decoder_passes"], p["batch_size"]),
        ]
        return one * p["epoch_passes"]

    def negative_elbo(
        self,
        rows: torch.Tensor,
        drop: float,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(−ELBO, −log-likelihood, weighted KL), batch means (RecVAE Eq. 5 with γ·|x_u|)."""
        mu, logvar = self.encoder(rows, drop, generator)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(
            mu.shape, generator=generator, device=mu.device
        )
        mll = (F.log_softmax(self.decoder(z), dim=-1) * rows).sum(dim=-1)
        kl_weight = self.params["gamma"] * rows.sum(dim=-1)
        kld = (log_normal(z, mu, logvar) - self.prior.log_prob(rows, z)).sum(dim=-1) * kl_weight
        return (kld - mll).mean(), -mll.mean(), kld.mean()

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts, p = self.optimizers(), self.params
        if batch.phase == "decoder" and batch.first:
            self.prior.update(self.encoder)  # after the encoder's passes, before the decoder's
        rows = self.rows(batch.users)
        drop = p["dropout"] if batch.phase == "encoder" else 0.0
        loss, nll, kld = self.negative_elbo(rows, drop, generator)
        for o in opts.values():  # the loss reaches both networks; only this phase's one learns,
            o.zero_grad(set_to_none=True)  # and the other is left without a stale gradient
        step(opts[batch.phase], loss)
        return {"loss": loss.detach(), "loss_nll": nll.detach(), "loss_kl": kld.detach()}

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encoder(self.rows(users))
        return self.decoder(mu)
