"""A plain, dense, per-pair implementation of DAVE: the reference our training path must match.

It is deliberately straightforward: every pair of the batch gets its user's dense interaction
row (length M) and its item's dense column (length N), the encoders run on those dense vectors,
the reconstruction likelihood is computed for every pair separately, and the encoders run again
for the joint step after the discriminator update (Algorithm 1, read literally). It works on the
parameters of a :class:`dave_repro.models.dave.DAVE`, so losses and gradients of both paths can be
compared on the same weights (``tests/test_exactness.py``), and timed side by side
(``benchmarks/train_throughput.py``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from dave_repro.models.dave import DAVE, VAE, discriminator_loss, kl_to_standard_normal
from dave_repro.training.sampling import PairBatch


def dense_rows(m: sp.csr_matrix, ids: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(m[ids.cpu().numpy()].toarray().astype(np.float32)).to(ids.device)


class DenseReference:
    def __init__(self, model: DAVE, train: sp.csr_matrix) -> None:
        self.model = model
        self.train = train.tocsr()
        self.train_t = self.train.T.tocsr()

    @staticmethod
    def encode(vae: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = x @ vae.enc_in.weight + vae.enc_in.bias  # a dense product over all M (or N) entries
        h = vae.enc_rest(vae.enc_act(h))
        if vae.stochastic:
            mu, logvar = h.chunk(2, dim=-1)
            return mu, logvar
        return h, None

    def _sample(self, mu, logvar, eps):  # noqa: ANN001, ANN202
        if logvar is None:
            return mu
        return mu + torch.exp(0.5 * logvar) * eps

    def _d_features(self, d, x_dense):  # noqa: ANN001, ANN202
        if d.input_proj is None:
            return None
        return x_dense @ d.input_proj.weight + d.input_proj.bias

    def pair_embeddings(
        self, batch: PairBatch, eps_u: torch.Tensor | None, eps_v: torch.Tensor | None
    ):  # noqa: ANN201
        m = self.model
        U = dense_rows(self.train, batch.users)  # B × M
        V = dense_rows(self.train_t, batch.items)  # B × N
        mu_u, lv_u = self.encode(m.user_vae, U)
        mu_v, lv_v = self.encode(m.item_vae, V)
        if eps_u is None and lv_u is not None:
            eps_u, eps_v = torch.randn_like(mu_u), torch.randn_like(mu_v)
        x = self._sample(mu_u, lv_u, eps_u)
        y = self._sample(mu_v, lv_v, eps_v)
        return U, V, mu_u, lv_u, mu_v, lv_v, x, y

    def discriminator_objective(
        self, batch: PairBatch, noise: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        m = self.model
        U, V, *_, x, y = self.pair_embeddings(
            batch, noise.get("eps_user_pair"), noise.get("eps_item_pair")
        )
        fu, fv = self._d_features(m.user_d, U), self._d_features(m.item_d, V)  # D learns them
        prior_u = noise.get("prior_user", torch.randn_like(x))
        prior_v = noise.get("prior_item", torch.randn_like(y))
        return discriminator_loss(
            m.user_d(prior_u, fu), m.user_d(x.detach(), fu)
        ) + discriminator_loss(m.item_d(prior_v, fv), m.item_d(y.detach(), fv))

    def joint_objective(self, batch: PairBatch, noise: dict[str, torch.Tensor]) -> torch.Tensor:
        m, p = self.model, self.model.params
        w = p["loss_weights"]
        U, V, mu_u, lv_u, mu_v, lv_v, x, y = self.pair_embeddings(
            batch, noise.get("eps_user_pair"), noise.get("eps_item_pair")
        )
        # log g(u | x_u) for every pair: Bernoulli over all M entries of the dense row
        rec_u = F.binary_cross_entropy_with_logits(m.user_vae.logits(x), U, reduction="none").sum(1)
        rec_v = F.binary_cross_entropy_with_logits(m.item_vae.logits(y), V, reduction="none").sum(1)
        if m.adversarial:
            reg_u = -m.user_d(x, self._d_features(m.user_d, U))
            reg_v = -m.item_d(y, self._d_features(m.item_d, V))
        else:
            reg_u, reg_v = kl_to_standard_normal(mu_u, lv_u), kl_to_standard_normal(mu_v, lv_v)
        M, N, d = U.shape[1], V.shape[1], mu_u.shape[1]
        if p["reduction"] == "per_entry":  # each side's whole ELBO over its vector's length
            rec_u, reg_u, rec_v, reg_v = rec_u / M, reg_u / M, rec_v / N, reg_v / N
        elif p["reduction"] == "mean":  # reconstruction per entry, KL per latent dim, D as is
            rec_u, rec_v = rec_u / M, rec_v / N
            if not m.adversarial:
                reg_u, reg_v = reg_u / d, reg_v / d
        rec, reg = rec_u + rec_v, reg_u + reg_v
        pred = F.binary_cross_entropy_with_logits(
            m.predictor(x * y).squeeze(-1), batch.labels, reduction="none"
        )
        return (w["reconstruction"] * rec + w["regularizer"] * reg + w["prediction"] * pred).mean()

    def train_step(self, batch: PairBatch) -> float:
        """Algorithm 1 read literally: D step on fresh samples, then the joint step re-encodes."""
        m = self.model
        opts = m.optimizers()
        if m.adversarial:
            d_loss = self.discriminator_objective(batch, {})
            opts["discriminator"].zero_grad(set_to_none=True)
            d_loss.backward()
            opts["discriminator"].step()
            for q in m.discriminator_parameters():
                q.requires_grad_(False)
        loss = self.joint_objective(batch, {})
        opts["joint"].zero_grad(set_to_none=True)
        loss.backward()
        opts["joint"].step()
        for q in m.discriminator_parameters():
            q.requires_grad_(True)
        return float(loss.detach())
