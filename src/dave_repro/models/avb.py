"""AVB (Mescheder et al., ICML'17) on users' rows: a VAE with a black-box posterior, its KL term
estimated by an adversarially trained discriminator T(x, z).

* Encoder ``z = f(x, ε)``: the user's row and Gaussian noise enter the network together, so
  q(z | x) is implicit (AVB §3).
* Discriminator ``T(x, z)`` sees the input row and the code (AVB Eq. 3): trained with the
  logistic loss to tell (x, z ~ q(z|x)) from (x, z ~ p(z)), p = N(0, I); at its optimum
  ``T*(x, z) = log q(z|x) − log p(z)``, so ``−T`` stands in for −KL.
* Encoder and decoder maximise ``E[−T(x, z) + log p(x | z)]`` (AVB Eq. 4; Algorithm 1: one T
  step, then one VAE step per batch), with independent Bernoullis over the items as p(x | z).

Adam with β₁ = 0.5, as in the authors' code. Prediction: the decoder's logits for the code of
the user's training row at ε = 0 (a deterministic code; a user-based model).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .baseline_utils import (
    BernoulliDecoder,
    ImplicitEncoder,
    PairCritic,
    UserBatch,
    UserRowModel,
    bernoulli_nll,
    critic_loss,
    frozen,
)
from .nets import step
from .specs import (
    EPOCH_PASSES,
    POSITIVE,
    POSITIVE_INTS,
    WIDTHS,
    Family,
    Float,
    Int,
    Map,
    dataset_setting,
)

AVB_FIELDS = {  # VAEGAN's schema builds on these (models/vaegan.py)
    "embedding_dim": dataset_setting(),
    "encoder_hidden": WIDTHS,
    "decoder_hidden": POSITIVE_INTS,
    "critic_hidden": WIDTHS,
    "noise_dim": Int(min=1),
    "lr": POSITIVE,
    "critic_lr": POSITIVE,
    "beta1": Float(min=0.0, max=0.999),
    "batch_size": Int(min=1),
    "epoch_passes": EPOCH_PASSES,
}
FAMILY = Family(
    name="avb",
    schema=Map(AVB_FIELDS),
    cls="AVB",
    reads_vectors=True,
    models={"avb": "AVB"},
    order=5,
)


class AVB(UserRowModel):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        d = p["embedding_dim"]
        self.encoder = ImplicitEncoder(n_items, p["encoder_hidden"], p["noise_dim"], d)
        self.decoder = BernoulliDecoder(d, p["decoder_hidden"], n_items)
        self.critic = PairCritic(n_items, d, p["critic_hidden"])

    def _adam(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """Adam with β₁ from the params (0.5 in the authors' code)."""
        return torch.optim.Adam(params, lr=lr, betas=(self.params["beta1"], 0.999))

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        return {
            "vae": self._adam([*self.encoder.parameters(), *self.decoder.parameters()], p["lr"]),
            "critic": self._adam(self.critic.parameters(), p["critic_lr"]),
        }

    def train_step(self, batch: UserBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opts = self.optimizers()
        sparse = self.user_rows.rows(batch.users)  # type: ignore[union-attr]
        n, dev = batch.users.numel(), batch.users.device
        z = self.encoder(sparse, self.encoder.noise(n, generator, dev))
        z_prior = torch.randn(z.shape, generator=generator, device=dev)
        t_loss = critic_loss(self.critic, sparse, z, z_prior)  # AVB Eq. 3, T first
        step(opts["critic"], t_loss)
        with frozen(self.critic.parameters()):
            t = self.critic(self.critic.features(sparse), z)
            nll = bernoulli_nll(self.decoder(z), sparse.to_dense())
            loss = (t + nll).mean()  # −(AVB Eq. 4)
        step(opts["vae"], loss)
        return {
            "loss": loss.detach(),
            "loss_reconstruction": nll.mean().detach(),
            "loss_kl_estimate": t.mean().detach(),
            "loss_critic": t_loss.detach(),
        }

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        sparse = self.user_rows.rows(users)  # type: ignore[union-attr]
        return self.decoder(
            self.encoder(sparse, self.encoder.noise(users.numel(), None, users.device))
        )
