"""CVAE-GAN (Bao et al., ICCV'17) on users' rows: a conditional VAE whose generator is also
trained against a discriminator D and a classifier C, with the paper's asymmetric losses.

The paper's four networks, with the category label read as the user's identity:

* E: the user's row → (μ, log σ²), Gaussian posterior, KL to N(0, I) (``L_KL``).
* G: (z, c) → the row's logits; c enters as a one-hot user id (a user node in G's first layer).
* D: row → real/fake, trained with cross-entropy on real rows vs. reconstructions
  ``x_f = G(E(x), c)`` and prior samples ``x_p = G(z_p, c)`` (``L_D``).
* C: row → which user, trained with cross-entropy on real rows (``L_C``).
* Generator objectives (CVAE-GAN §3.3-3.4): pairwise feature matching
  ``L_G = ½(‖x − x_f‖² + ‖f_D(x) − f_D(x_f)‖² + ‖f_C(x) − f_C(x_f)‖²)`` and mean feature
  matching ``L_GD = ½‖E f_D(x) − E f_D(x_p)‖²``, ``L_GC = ½ Σ_c ‖E f_C(x_c) − E f_C(x_p,c)‖²``
  (each user is its own class, so the per-class means are the user's own rows).
* Updates (CVAE-GAN Algorithm 1): D on L_D, C on L_C, E on ``λ₁ L_KL + λ₂ L_G``,
  G on ``λ₃ L_G + λ₄ (L_GD + L_GC)``.

No collaborative-filtering code exists; the choices are listed in docs/models.md. Prediction:
G's logits at z = μ of the user's training row, with the user's label (a user-based model).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .baseline_utils import RowNet, UserBatch, UserRowModel, gan_loss
from .nets import SparseLinear, SparseRows, mlp
from .specs import EPOCH_PASSES, POSITIVE, WIDTHS, Family, Float, Int, Map, dataset_setting

FAMILY = Family(
    name="cvae-gan",
    schema=Map(
        {
            "embedding_dim": dataset_setting(),
            "encoder_hidden": WIDTHS,
            "generator_hidden": WIDTHS,
            "discriminator_hidden": WIDTHS,
            "classifier_hidden": WIDTHS,
            "lr": POSITIVE,
            "beta1": Float(min=0.0, max=0.999),
            "batch_size": Int(min=1),
            "loss_weights": Map(
                {
                    k: Float(min=0.0)
                    for k in ("kl", "encoder_pairwise", "generator_pairwise", "mean_matching")
                }
            ),
            "epoch_passes": EPOCH_PASSES,
        }
    ),
    cls="CVAEGAN",
    reads_vectors=True,
    models={"cvae-gan": "CVAE-GAN"},
    order=7,
)


class Encoder(nn.Module):
    def __init__(self, n_items: int, hidden: list[int], latent: int) -> None:
        super().__init__()
        self.first = SparseLinear(n_items, hidden[0])
        self.rest = nn.Sequential(nn.ReLU(), *mlp([*hidden, 2 * latent], "relu"))

    def forward(self, rows: SparseRows) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.rest(self.first(rows)).chunk(2, dim=-1)
        return mu, logvar


class Generator(nn.Module):
    def __init__(self, latent: int, hidden: list[int], n_users: int, n_items: int) -> None:
        super().__init__()
        self.z_in = nn.Linear(latent, hidden[0])
        self.label = nn.Embedding(n_users, hidden[0])  # the one-hot label times a weight matrix
        nn.init.normal_(self.label.weight, 0.0, 0.01)
        self.rest = nn.Sequential(nn.ReLU(), *mlp([*hidden, n_items], "relu"))

    def forward(self, z: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.rest(self.z_in(z) + self.label(users))


def half_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """½‖a − b‖² per row."""
    return 0.5 * (a - b).pow(2).sum(dim=-1)


class CVAEGAN(UserRowModel):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        d = p["embedding_dim"]
        self.encoder = Encoder(n_items, p["encoder_hidden"], d)
        self.generator = Generator(d, p["generator_hidden"], n_users, n_items)
        self.discriminator = RowNet(n_items, p["discriminator_hidden"], 1)
        self.classifier = RowNet(n_items, p["classifier_hidden"], n_users)

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        betas = (p["beta1"], 0.999)
        return {
            name: torch.optim.Adam(getattr(self, name).parameters(), lr=p["lr"], betas=betas)
            for name in ("encoder", "generator", "discriminator", "classifier")
        }

    def objectives(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Every loss of one step (Algorithm 1), as batch means. Each is later differentiated
        with respect to its own network only, so no term needs detaching for the others."""
        sparse = self.user_rows.rows(batch.users)  # type: ignore[union-attr]
        x = sparse.to_dense()
        mu, logvar = self.encoder(sparse)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(
            mu.shape, generator=generator, device=mu.device
        )
        z_p = torch.randn(mu.shape, generator=generator, device=mu.device)
        x_f = torch.sigmoid(self.generator(z, batch.users))
        x_p = torch.sigmoid(self.generator(z_p, batch.users))
        d_real, fd_real = self.discriminator(x)
        d_f, fd_f = self.discriminator(x_f)
        d_p, fd_p = self.discriminator(x_p)
        c_real, fc_real = self.classifier(x)
        _, fc_f = self.classifier(x_f)
        _, fc_p = self.classifier(x_p)
        fd_real, fc_real = fd_real.detach(), fc_real.detach()  # targets of feature matching
        return {
            "discriminator": gan_loss(d_real, True) + gan_loss(d_f, False) + gan_loss(d_p, False),
            "classifier": F.cross_entropy(c_real, batch.users),
            "kl": (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)).mean(),
            "pairwise": (half_sq(x, x_f) + half_sq(fd_real, fd_f) + half_sq(fc_real, fc_f)).mean(),
            "mean_d": half_sq(fd_real.mean(dim=0), fd_p.mean(dim=0)),
            "mean_c": half_sq(fc_real, fc_p).mean(),  # one row per user (class) in a batch
        }

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts, w = self.optimizers(), self.params["loss_weights"]
        losses = self.objectives(batch, generator)
        # Each network gets the gradient of its own objective only (Algorithm 1).
        targets = {
            "discriminator": losses["discriminator"],
            "classifier": losses["classifier"],
            "encoder": w["kl"] * losses["kl"] + w["encoder_pairwise"] * losses["pairwise"],
            "generator": w["generator_pairwise"] * losses["pairwise"]
            + w["mean_matching"] * (losses["mean_d"] + losses["mean_c"]),
        }
        grads = {
            name: torch.autograd.grad(
                obj, list(getattr(self, name).parameters()), retain_graph=True, allow_unused=True
            )
            for name, obj in targets.items()
        }
        for name, gs in grads.items():
            for q, g in zip(getattr(self, name).parameters(), gs, strict=True):
                q.grad = g
            opts[name].step()
        total = sum(targets.values())
        return {
            "loss": total.detach(),
            **{f"loss_{k}": v.detach() for k, v in losses.items()},
        }

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encoder(self.user_rows.rows(users))  # type: ignore[union-attr]
        return self.generator(mu, users)
