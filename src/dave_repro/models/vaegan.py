"""VAEGAN (Yu, Zhang, Cao, Xia, IJCAI'19): AVB on users' rows, plus an auxiliary discriminator
on the generated rows and a contractive penalty on the encoder.

* The VAE is AVB's (see ``avb.py``): black-box encoder ``z = f(x, ε)``, a discriminator
  ``T(x, z)`` whose logit replaces the KL term, Bernoulli decoder over the items.
* Auxiliary adversarial training: a discriminator ``D([c_u ; x])``, conditioned on the user's
  training row ``c_u``, tells the real row from the decoder's output ``σ(g(z))`` for
  ``z ~ q(z | x)``; the decoder and encoder add ``w_gan · −log D(fake)`` to their loss.
* Contractive loss: ``w_contractive · ‖∂h₁/∂x‖²_F`` on the encoder's first layer, the penalty of
  contractive auto-encoders, for robust features.

Per batch: T step, D step, then one step of encoder and decoder. No reference code for
collaborative filtering exists; the choices where the paper is silent are in docs/models.md.
Prediction: decoder logits for the user's training row at ε = 0 (a user-based model).
"""

from __future__ import annotations

from typing import Any

import torch

from .avb import AVB, AVB_FIELDS
from .baseline_utils import (
    RowNet,
    UserBatch,
    bernoulli_nll,
    critic_loss,
    frozen,
    gan_loss,
)
from .nets import step
from .specs import WIDTHS, Family, Float, Map

FAMILY = Family(
    name="vaegan",
    schema=Map(
        {
            **AVB_FIELDS,
            "discriminator_hidden": WIDTHS,
            "gan_weight": Float(min=0.0),
            "contractive_weight": Float(min=0.0),
        }
    ),
    cls="VAEGAN",
    reads_vectors=True,
    models={"vaegan": "VAEGAN"},
    order=6,
)


class VAEGAN(AVB):
    """AVB's encoder, decoder, T and optimisers (and its scoring), plus the discriminator D."""

    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        self.discriminator = RowNet(2 * n_items, params["discriminator_hidden"], 1)

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        d = self._adam(self.discriminator.parameters(), self.params["critic_lr"])
        return {**super()._make_optimizers(), "discriminator": d}

    def discriminate(self, condition: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([condition, row], dim=1))[0].squeeze(-1)

    def discriminator_loss(self, rows: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Real rows labelled 1, generated rows (detached) labelled 0; batch means."""
        return gan_loss(self.discriminate(rows, rows), True) + gan_loss(
            self.discriminate(rows, fake.detach()), False
        )

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts, p = self.optimizers(), self.params
        sparse = self.user_rows.rows(batch.users)  # type: ignore[union-attr]
        rows = sparse.to_dense()
        n, dev = batch.users.numel(), batch.users.device
        h1 = self.encoder.first_layer(sparse, self.encoder.noise(n, generator, dev))
        z = self.encoder.rest(h1)
        logits = self.decoder(z)
        fake = torch.sigmoid(logits)

        t_loss = critic_loss(
            self.critic, sparse, z, torch.randn(z.shape, generator=generator, device=dev)
        )
        d_loss = self.discriminator_loss(rows, fake)
        step(opts["critic"], t_loss)
        step(opts["discriminator"], d_loss)

        with frozen([*self.critic.parameters(), *self.discriminator.parameters()]):
            t = self.critic(self.critic.features(sparse), z)
            nll = bernoulli_nll(logits, rows)
            adv = gan_loss(self.discriminate(rows, fake), True)
            contractive = self.encoder.contractive_penalty(h1)
            loss = (
                (t + nll).mean()
                + p["gan_weight"] * adv
                + p["contractive_weight"] * contractive.mean()
            )
        step(opts["vae"], loss)
        return {
            "loss": loss.detach(),
            "loss_reconstruction": nll.mean().detach(),
            "loss_kl_estimate": t.mean().detach(),
            "loss_gan": adv.detach(),
            "loss_contractive": contractive.mean().detach(),
            "loss_critic": t_loss.detach(),
            "loss_discriminator": d_loss.detach(),
        }
