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

from .baseline_utils import (
    BernoulliDecoder,
    ImplicitEncoder,
    PairCritic,
    RowNet,
    UserBatch,
    UserRowModel,
    bernoulli_nll,
    critic_loss,
    frozen,
    gan_loss,
)


class VAEGAN(UserRowModel):
    family = "vaegan"

    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        d = p["embedding_dim"]
        self.encoder = ImplicitEncoder(n_items, p["encoder_hidden"], p["noise_dim"], d)
        self.decoder = BernoulliDecoder(d, p["decoder_hidden"], n_items)
        self.critic = PairCritic(n_items, d, p["critic_hidden"])
        self.discriminator = RowNet(2 * n_items, p["discriminator_hidden"], 1)
        self._opts: dict[str, torch.optim.Optimizer] | None = None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if self._opts is None:
            p = self.params
            betas = (p["beta1"], 0.999)
            vae = [*self.encoder.parameters(), *self.decoder.parameters()]
            self._opts = {
                "vae": torch.optim.Adam(vae, lr=p["lr"], betas=betas),
                "critic": torch.optim.Adam(
                    self.critic.parameters(), lr=p["critic_lr"], betas=betas
                ),
                "discriminator": torch.optim.Adam(
                    self.discriminator.parameters(), lr=p["critic_lr"], betas=betas
                ),
            }
        return self._opts

    def discriminate(self, condition: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([condition, row], dim=1))[0].squeeze(-1)

    def discriminator_loss(self, rows: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Real rows labelled 1, generated rows (detached) labelled 0; batch means."""
        return gan_loss(self.discriminate(rows, rows), True) + gan_loss(
            self.discriminate(rows, fake.detach()), False
        )

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, float]:
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
        for name, part in (("critic", t_loss), ("discriminator", d_loss)):
            opts[name].zero_grad(set_to_none=True)
            part.backward()
            opts[name].step()

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
        opts["vae"].zero_grad(set_to_none=True)
        loss.backward()
        opts["vae"].step()
        return {
            "loss": float(loss.detach()),
            "loss_reconstruction": float(nll.mean().detach()),
            "loss_kl_estimate": float(t.mean().detach()),
            "loss_gan": float(adv.detach()),
            "loss_contractive": float(contractive.mean().detach()),
            "loss_critic": float(t_loss.detach()),
            "loss_discriminator": float(d_loss.detach()),
        }

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        sparse = self.user_rows.rows(users)  # type: ignore[union-attr]
        return self.decoder(
            self.encoder(sparse, self.encoder.noise(users.numel(), None, users.device))
        )
