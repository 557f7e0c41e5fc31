"""DAVE (Section 3) and its two variants, as one model with two switches.

* ``regularizer``: ``adversarial`` — discriminators D_u, D_v tell prior samples from encoder
  samples (Eq. 10, 13) and the encoders maximise the logit D(x) in place of −KL (Eq. 11, 14);
  ``kl`` — the analytic Gaussian KL of Eq. 4 (DAVE-adv).
* ``stochastic``: ``x = μ + σ ⊙ ε`` (the reparameterisation of §3.2.1); ``false`` gives the
  point embedding ``x = μ`` of an adversarial auto-encoder (DAVE+aae).

Per step (Algorithm 1): the encoders run once on the batch's distinct users and items (sparse
rows); the discriminators are updated first (RMSprop) on prior samples (real) against the
batch's encoder samples (fake); then, with D fixed, encoders, decoders and F are updated jointly
(Adam) on Eq. 1: reconstruction NLL + regulariser + the BCE of F (Eq. 16).

Exactness of the fast path (tested against a dense per-pair reference): the reference computes
each pair's user and item VAE terms. A user who appears in c pairs of the batch is encoded and
decoded once here and its reconstruction term weighted by c: the same objective, and with the
noise fixed the same loss and gradients; with fresh noise, equal in expectation. F and D still
see one independent sample per pair, exactly as in the reference.

On a GPU the step never waits for the device: everything whose size depends on the data (the
distinct users and items, their stored entries) is worked out on the host as the batch is made
(:meth:`DAVE.prepare`) and shipped with it, and the losses are returned as tensors for the
trainer to read in bulk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..training.sampling import PairBatch, pair_batches
from .base import Recommender
from .nets import ACTIVATIONS, CSRStore, SparseLinear, SparseRows, mlp, to_device
from .specs import (
    ACTIVATION_NAMES,
    POSITIVE,
    POSITIVE_INTS,
    Bool,
    Family,
    Float,
    Int,
    List,
    Map,
    Str,
    dataset_setting,
)

FAMILY = Family(
    name="dave",
    schema=Map(
        {
            "regularizer": Str(choices=("adversarial", "kl")),
            "stochastic": Bool(),
            "encoder_hidden": POSITIVE_INTS,
            "decoder_hidden": POSITIVE_INTS,
            "activation": Str(choices=ACTIVATION_NAMES),
            "discriminator_hidden": POSITIVE_INTS,
            "discriminator_input": Str(choices=("embedding", "embedding+input")),
            "predictor_hidden": List(Int(min=1), min_len=1),
            "lr": POSITIVE,
            "d_lr": POSITIVE,
            "weight_decay": Float(min=0.0),
            "d_steps": Int(min=1),
            "reduction": Str(choices=("sum", "per_entry", "mean")),
            "loss_weights": Map(
                {
                    "reconstruction": Float(min=0.0),
                    "regularizer": Float(min=0.0),
                    "prediction": POSITIVE,
                }
            ),
            "eval_embedding": Str(choices=("mean", "sample")),
            "precision": Str(choices=("fp32", "bf16")),
            "decoder_sample": Float(min=0.0, exclusive_min=True, max=1.0),
            "embedding_dim": dataset_setting(),
            "batch_size": dataset_setting(),
            "negative_ratio": dataset_setting(),
        }
    ),
    cls="DAVE",
    reads_vectors=True,
    models={"dave-adv": "DAVE-adv", "dave-aae": "DAVE+aae", "dave": "DAVE"},  # the paper's rows
    order=9,
)


@dataclass
class Distinct:
    """The distinct users (or items) of a batch: ids, each pair's index among them, how often
    each occurs (float, a weight), and their interaction rows."""

    ids: torch.Tensor
    inverse: torch.Tensor
    count: torch.Tensor
    rows: SparseRows

    @classmethod
    def of(cls, ids: torch.Tensor, store: CSRStore) -> Distinct:
        uniq, inverse, count = _distinct(ids)
        return cls(uniq, inverse, count, store.rows(uniq))

    def to(self, device: torch.device) -> Distinct:
        return Distinct(
            *(to_device(t, device) for t in (self.ids, self.inverse, self.count)),
            self.rows.to(device),
        )


@dataclass
class PreparedBatch:
    """A batch of pairs with its distinct users and items worked out on the host (DAVE.prepare)."""

    batch: PairBatch
    users: Distinct
    items: Distinct


@dataclass
class BatchState:
    """The encoded batch shared by the discriminator step and the joint step."""

    batch: PairBatch
    urows: SparseRows
    vrows: SparseRows
    u_inv: torch.Tensor
    v_inv: torch.Tensor
    u_count: torch.Tensor
    v_count: torch.Tensor
    mu_u: torch.Tensor
    lv_u: torch.Tensor | None
    mu_v: torch.Tensor
    lv_v: torch.Tensor | None
    x_pair: torch.Tensor
    y_pair: torch.Tensor


class VAE(nn.Module):
    """One side of DAVE: inference network Q (sparse row → μ, log σ²) and decoder G."""

    def __init__(
        self,
        dim: int,
        d: int,
        enc_hidden: list[int],
        dec_hidden: list[int],
        activation: str,
        stochastic: bool,
    ) -> None:
        super().__init__()
        self.dim, self.d, self.stochastic = dim, d, stochastic
        out = 2 * d if stochastic else d
        widths = [*enc_hidden, out]
        self.enc_in = SparseLinear(dim, widths[0])
        self.enc_rest = mlp(widths, activation) if len(widths) > 1 else nn.Identity()
        self.enc_act = ACTIVATIONS[activation]() if len(widths) > 1 else nn.Identity()
        self.decoder = (
            mlp([d, *dec_hidden], activation, final_activation=True)
            if dec_hidden
            else nn.Identity()
        )
        self.dec_out = nn.Linear(dec_hidden[-1] if dec_hidden else d, dim)

    def encode(self, rows: SparseRows) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.enc_rest(self.enc_act(self.enc_in(rows)))
        if self.stochastic:
            mu, logvar = h.chunk(2, dim=-1)
            return mu, logvar
        return h, None

    def logits(self, x: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder logits of every entry, or of the given entries (``columns``) only."""
        h = self.decoder(x)
        if columns is None:
            return self.dec_out(h)
        w, b = self.dec_out.weight, self.dec_out.bias
        return F.linear(h, w.index_select(0, columns), b.index_select(0, columns))

    def reconstruction_nll(
        self,
        x: torch.Tensor,
        rows: SparseRows,
        weight: torch.Tensor,
        autocast: bool = False,
        mean: bool = False,
        columns: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Σ_r weight_r · −log g(row_r | x_r), Bernoulli over all ``dim`` entries of each row (Eq. 3).

        −log g = Σ_j softplus(z_j) − Σ_{j observed} z_j, so only the observed entries are read
        from the sparse row. With ``columns`` (K entries drawn uniformly without replacement,
        shared by the batch's rows: ``decoder_sample``) the sum over j runs over those entries
        only and is scaled by dim/K: each entry is drawn with probability K/dim, so the estimate,
        and its gradient, equal the full sum in expectation at K/dim of the decoder's cost.
        """
        if autocast:
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                z = self.logits(x, columns)
            z = z.float()
        else:
            z = self.logits(x, columns)
        obs_weight = weight[rows.row_ids]
        if columns is None:
            obs_cols, scale = rows.indices, 1.0
        else:  # the observed entries that fall among the drawn columns, at their place in z
            slot = torch.full((self.dim,), -1, dtype=torch.long, device=z.device)
            slot[columns] = torch.arange(columns.numel(), device=z.device)
            at = slot[rows.indices]
            # entries outside the draw get weight 0 rather than being filtered out, so that no
            # data-dependent shape (a host-device round trip on a GPU) enters the step
            obs_weight = obs_weight * (at >= 0)
            obs_cols, scale = at.clamp(min=0), self.dim / columns.numel()
        # flat index_select: its backward is an index_add, cheaper than a 2-D index's
        obs_z = z.reshape(-1).index_select(0, rows.row_ids * z.shape[1] + obs_cols)
        all_terms = (F.softplus(z).sum(dim=1) * weight).sum()
        observed = (obs_z * obs_weight).sum()
        nll = scale * (all_terms - observed)
        return nll / self.dim if mean else nll


class Discriminator(nn.Module):
    """D(x) (DAVE §4.1.4: two hidden layers of 50 and 100, ReLU), or D(x, u) (AVB reading)."""

    def __init__(self, d: int, hidden: list[int], input_dim: int | None) -> None:
        super().__init__()
        widths = [d, *hidden, 1]
        self.first = nn.Linear(d, widths[1])
        self.input_proj = SparseLinear(input_dim, widths[1]) if input_dim else None
        self.rest = nn.Sequential(nn.ReLU(), *(mlp(widths[1:], "relu") if len(widths) > 2 else []))

    def input_features(self, rows: SparseRows) -> torch.Tensor | None:
        return self.input_proj(rows) if self.input_proj is not None else None

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(x)
        if features is not None:
            h = h + features
        return self.rest(h).squeeze(-1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per row (Eq. 4's regulariser, in closed form)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """−(Eq. 10): prior samples are real (label 1), encoder samples fake (label 0); batch mean."""
    return F.binary_cross_entropy_with_logits(
        d_real, torch.ones_like(d_real)
    ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


class DAVE(Recommender):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        p = params
        d = p["embedding_dim"]
        self.adversarial = p["regularizer"] == "adversarial"
        self.stochastic = p["stochastic"]
        # A user's interaction vector has one entry per item; an item's, one per user.
        self.user_vae = VAE(
            n_items, d, p["encoder_hidden"], p["decoder_hidden"], p["activation"], self.stochastic
        )
        self.item_vae = VAE(
            n_users, d, p["encoder_hidden"], p["decoder_hidden"], p["activation"], self.stochastic
        )
        self.predictor = mlp([d, *p["predictor_hidden"], 1], "relu")  # F (Eq. 15), logits
        if self.adversarial:
            with_input = p["discriminator_input"] == "embedding+input"
            self.user_d = Discriminator(
                d, p["discriminator_hidden"], n_items if with_input else None
            )
            self.item_d = Discriminator(
                d, p["discriminator_hidden"], n_users if with_input else None
            )
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._host_rows: tuple[CSRStore, CSRStore] | None = None

    # -- parameters and optimisers -------------------------------------------------------
    def generator_parameters(self) -> list[nn.Parameter]:
        return [
            *self.user_vae.parameters(),
            *self.item_vae.parameters(),
            *self.predictor.parameters(),
        ]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.user_d.parameters(), *self.item_d.parameters()] if self.adversarial else []

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        opts: dict[str, torch.optim.Optimizer] = {
            "joint": torch.optim.Adam(
                self.generator_parameters(),
                lr=p["lr"],
                fused=True,
                weight_decay=p["weight_decay"],
            )
        }
        if self.adversarial:
            opts["discriminator"] = torch.optim.RMSprop(
                self.discriminator_parameters(), lr=p["d_lr"]
            )
        return opts

    # -- training ------------------------------------------------------------------------
    def batches(
        self, train: sp.csr_matrix, epoch_rng: np.random.Generator, max_pairs: int | None
    ) -> Iterator[PreparedBatch]:
        host = torch.device("cpu")
        for batch in pair_batches(
            train,
            self.params["negative_ratio"],
            self.params["batch_size"],
            epoch_rng,
            max_pairs,
            host,
        ):
            yield self.prepare(batch)

    def prepare(self, batch: PairBatch) -> PreparedBatch:
        """The batch's distinct users and items and their sparse rows, computed on the host.

        Their sizes depend on the data, so on a GPU finding them inside the step would make the
        host wait for the device (twice a step); here they are found from host copies of the
        interaction rows and sent along with the batch (from pinned memory, without waiting).
        """
        assert self._host_rows is not None, "call set_inputs first"
        host_u, host_v = self._host_rows
        dev = self.device
        return PreparedBatch(
            PairBatch(*(to_device(t, dev) for t in (batch.users, batch.items, batch.labels))),
            Distinct.of(batch.users.cpu(), host_u).to(dev),
            Distinct.of(batch.items.cpu(), host_v).to(dev),
        )

    def _sample(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor | None,
        inverse: torch.Tensor | None,
        generator: torch.Generator,
        noise: torch.Tensor | None,
    ) -> torch.Tensor:
        """x = μ + σ ⊙ ε for each row of ``mu[inverse]`` (or of ``mu``)."""
        m = mu if inverse is None else mu[inverse]
        if not self.stochastic:
            return m
        lv = logvar if inverse is None else logvar[inverse]
        eps = (
            noise
            if noise is not None
            else torch.randn(m.shape, generator=generator, device=m.device)
        )
        return m + torch.exp(0.5 * lv) * eps

    def encode_batch(
        self,
        batch: PairBatch | PreparedBatch,
        generator: torch.Generator,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> BatchState:
        """Step 4 of Algorithm 1: encode the batch's distinct users and items once."""
        prepared = batch if isinstance(batch, PreparedBatch) else self.prepare(batch)
        noise = noise or {}
        u, v = prepared.users, prepared.items
        mu_u, lv_u = self.user_vae.encode(u.rows)
        mu_v, lv_v = self.item_vae.encode(v.rows)
        return BatchState(
            batch=prepared.batch,
            urows=u.rows,
            vrows=v.rows,
            u_inv=u.inverse,
            v_inv=v.inverse,
            u_count=u.count,
            v_count=v.count,
            mu_u=mu_u,
            lv_u=lv_u,
            mu_v=mu_v,
            lv_v=lv_v,
            x_pair=self._sample(mu_u, lv_u, u.inverse, generator, noise.get("eps_user_pair")),
            y_pair=self._sample(mu_v, lv_v, v.inverse, generator, noise.get("eps_item_pair")),
        )

    def discriminator_objective(
        self,
        st: BatchState,
        generator: torch.Generator,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """−(Eq. 10) − (Eq. 13): prior samples real, the batch's encoder samples fake."""
        noise = noise or {}
        # D(x, u)'s input projection is part of D: it learns here (the joint step freezes D).
        # The rows are data, so nothing of the encoders is reached through these features.
        fu, fv = self.user_d.input_features(st.urows), self.item_d.input_features(st.vrows)
        fu = None if fu is None else fu[st.u_inv]
        fv = None if fv is None else fv[st.v_inv]
        prior_u = _noise(noise, "prior_user", st.x_pair, generator)
        prior_v = _noise(noise, "prior_item", st.y_pair, generator)
        return discriminator_loss(
            self.user_d(prior_u, fu), self.user_d(st.x_pair.detach(), fu)
        ) + discriminator_loss(self.item_d(prior_v, fv), self.item_d(st.y_pair.detach(), fv))

    def joint_objective(
        self,
        st: BatchState,
        generator: torch.Generator,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 17 to minimise, per pair of the batch: each side's −ELBO (Eq. 11/14, or Eq. 4 for
        DAVE-adv), scaled as ``reduction`` says, plus the BCE of F (−Eq. 16).

        Each distinct user's (item's) terms are computed once and weighted by how often it
        occurs in the batch, which is the per-pair sum of the reference. The returned parts are
        per pair: ``reconstruction``, ``regularizer`` and ``prediction`` as they enter the loss
        (scaled and weighted), and each side's unscaled terms in nats per vector
        (``nll_user``, ``reg_user``, ...), so that readings can be compared in one unit.
        """
        noise = noise or {}
        p, w = self.params, self.params["loss_weights"]
        n = st.batch.users.numel()
        x_rec = self._sample(st.mu_u, st.lv_u, None, generator, noise.get("eps_user"))
        y_rec = self._sample(st.mu_v, st.lv_v, None, generator, noise.get("eps_item"))
        bf16 = p["precision"] == "bf16"
        nll_u = self.user_vae.reconstruction_nll(
            x_rec, st.urows, st.u_count, bf16, columns=self.decoded_columns(self.n_items, generator)
        )
        nll_v = self.item_vae.reconstruction_nll(
            y_rec, st.vrows, st.v_count, bf16, columns=self.decoded_columns(self.n_users, generator)
        )
        if self.adversarial:  # Eq. 11, 14: the logit D(x) stands in for −KL
            fu, fv = self.user_d.input_features(st.urows), self.item_d.input_features(st.vrows)
            reg_u = -self.user_d(st.x_pair, None if fu is None else fu[st.u_inv]).sum()
            reg_v = -self.item_d(st.y_pair, None if fv is None else fv[st.v_inv]).sum()
        else:  # Eq. 4: analytic KL, summed over the d latent dimensions
            reg_u = (kl_to_standard_normal(st.mu_u, st.lv_u) * st.u_count).sum()
            reg_v = (kl_to_standard_normal(st.mu_v, st.lv_v) * st.v_count).sum()
        ru, gu = self.elbo_divisors(self.n_items)
        rv, gv = self.elbo_divisors(self.n_users)
        rec = nll_u / ru + nll_v / rv
        reg = (reg_u + reg_v) / gu if gu == gv else reg_u / gu + reg_v / gv
        logit = self.predictor(st.x_pair * st.y_pair).squeeze(-1)  # F(x_u ⊙ y_v), Eq. 15
        pred = F.binary_cross_entropy_with_logits(
            logit, st.batch.labels, reduction="sum"
        )  # −Eq. 16
        loss = (w["reconstruction"] * rec + w["regularizer"] * reg + w["prediction"] * pred) / n
        parts = {
            "reconstruction": w["reconstruction"] * rec / n,
            "regularizer": w["regularizer"] * reg / n,
            "prediction": pred / n,
            "nll_user": nll_u / n,
            "nll_item": nll_v / n,
            "reg_user": reg_u / n,
            "reg_item": reg_v / n,
        }
        return loss, parts

    def elbo_divisors(self, dim: int) -> tuple[float, float]:
        """What one side's reconstruction NLL and regulariser (each in nats per vector of length
        ``dim``) are divided by in the per-pair loss. The paper leaves this scale open (Eq. 17
        adds expectations of per-vector ELBOs to a sum over pairs), so it is the ``reduction``
        parameter (docs/models.md, "The scale of Eq. 17"):

        * ``sum``: 1 and 1, the per-vector ELBO as it is (β with ``loss_weights``; β = 1 is the
          literal sum);
        * ``per_entry``: the vector's length for both: the whole ELBO per entry;
        * ``mean``: the vector's length for the reconstruction, d for the KL, 1 for D(x) (the
          reading of the first runs; it weights the regulariser M/d or M times its ELBO weight,
          and the two sides differently).
        """
        red = self.params["reduction"]
        if red == "sum":
            return 1.0, 1.0
        if red == "per_entry":
            return float(dim), float(dim)
        return float(dim), (1.0 if self.adversarial else float(self.params["embedding_dim"]))

    def decoded_columns(self, dim: int, generator: torch.Generator) -> torch.Tensor | None:
        """The entries of the decoded rows that this step's reconstruction term reads.

        ``decoder_sample: 1.0`` (default): all of them (None), the objective as written. Below 1:
        ⌈f·dim⌉ entries drawn uniformly without replacement, shared by the batch's rows.
        """
        f = self.params["decoder_sample"]
        if f >= 1.0:
            return None
        k = max(1, math.ceil(f * dim))
        return torch.randperm(dim, generator=generator, device=self.device)[:k]

    def train_step(
        self,
        batch: PairBatch | PreparedBatch,
        generator: torch.Generator,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """One iteration of Algorithm 1. ``noise`` fixes ε and the prior samples (for tests).

        The losses come back as detached tensors: reading them here would make a GPU step wait.
        """
        self._cache = None
        opts = self.optimizers()
        st = self.encode_batch(batch, generator, noise)
        logs: dict[str, torch.Tensor] = {}
        if self.adversarial:  # steps 5-8: D first, encoders fixed (their samples detached)
            for _ in range(self.params["d_steps"]):
                d_loss = self.discriminator_objective(st, generator, noise)
                opts["discriminator"].zero_grad(set_to_none=True)
                d_loss.backward()
                opts["discriminator"].step()
            logs["loss_discriminator"] = d_loss.detach()
            for q in self.discriminator_parameters():  # step 9 leaves D untouched
                q.requires_grad_(False)
        try:
            loss, parts = self.joint_objective(st, generator, noise)
            opts["joint"].zero_grad(set_to_none=True)
            loss.backward()
            opts["joint"].step()
        finally:
            for q in self.discriminator_parameters():
                q.requires_grad_(True)
        logs["loss"] = loss.detach()
        logs.update({f"loss_{k}": v.detach() for k, v in parts.items()})
        return logs

    # -- scoring -------------------------------------------------------------------------
    def set_inputs(
        self,
        train: sp.csr_matrix,
        device: torch.device | None = None,
        item_vectors: sp.csr_matrix | None = None,
    ) -> None:
        super().set_inputs(train, device, item_vectors)
        assert self.user_rows is not None and self.item_rows is not None
        host = torch.device("cpu")  # prepare() reads host copies (on a CPU, the same tensors)
        self._host_rows = (self.user_rows.to(host), self.item_rows.to(host))
        self._cache = None

    @torch.no_grad()
    def embed(
        self, side: str, ids: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        vae, store = (
            (self.user_vae, self.user_rows) if side == "user" else (self.item_vae, self.item_rows)
        )
        assert store is not None
        mu, logvar = vae.encode(store.rows(ids))
        if self.params["eval_embedding"] == "sample" and self.stochastic:
            return mu + torch.exp(0.5 * logvar) * torch.randn(
                mu.shape, generator=generator, device=mu.device
            )
        return mu

    @torch.no_grad()
    def posterior(self, side: str, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(μ, σ) of the given users or items (for the t-SNE of Figures 3-4)."""
        vae, store = (
            (self.user_vae, self.user_rows) if side == "user" else (self.item_vae, self.item_rows)
        )
        assert store is not None
        mu, logvar = vae.encode(store.rows(ids))
        return mu, None if logvar is None else torch.exp(0.5 * logvar)

    @torch.no_grad()
    def _embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None:
            dev = self.device
            gen = torch.Generator(device=dev).manual_seed(0)
            chunk = 4096
            xs = [
                self.embed("user", torch.arange(s, min(s + chunk, self.n_users), device=dev), gen)
                for s in range(0, self.n_users, chunk)
            ]
            ys = [
                self.embed("item", torch.arange(s, min(s + chunk, self.n_items), device=dev), gen)
                for s in range(0, self.n_items, chunk)
            ]
            self._cache = (torch.cat(xs), torch.cat(ys))
        return self._cache

    def train(self, mode: bool = True) -> DAVE:
        self._cache = None
        return super().train(mode)

    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x, y = self._embeddings()
        return self.predictor(x[users].unsqueeze(1) * y[items]).squeeze(-1)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """F(x_u ⊙ y_v) for every item; the first layer as one product per user, (Y diag(x_u)) W₁ᵀ."""
        x, y = self._embeddings()
        first: nn.Linear = self.predictor[0]  # type: ignore[assignment]
        step = max(1, (1 << 24) // (self.n_items * first.out_features))  # bound U × M × h
        parts = []
        for s in range(0, users.numel(), step):
            a = x[users[s : s + step]].unsqueeze(-1) * first.weight.t().unsqueeze(0)  # U × d × h
            h = torch.matmul(y.unsqueeze(0), a) + first.bias  # U × M × h
            parts.append(self.predictor[1:](h).squeeze(-1))
        return torch.cat(parts)


def _noise(
    noise: dict[str, torch.Tensor], key: str, like: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    if key in noise:
        return noise[key]
    return torch.randn(like.shape, generator=generator, device=like.device)


def _distinct(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct ids, the index of each entry among them, and how often each occurs (as float)."""
    uniq, inverse = torch.unique(ids, return_inverse=True)
    counts = torch.bincount(inverse, minlength=uniq.numel()).to(torch.float32)
    return uniq, inverse, counts
