"""Pieces shared by several baselines: batching over users or pairs, generator-driven noise,
adversarial perturbations, and the implicit-posterior VAE parts of AVB and VAEGAN.

Every baseline's code hash includes this module (see ``provenance.family_modules``), so a change
here re-runs every baseline and nothing else. All randomness comes from the epoch's numpy
generator (batch composition) or the step's torch generator (noise), so a resumed run repeats an
uninterrupted one exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..training.sampling import PairBatch, pair_batches, positive_pairs, sample_unobserved
from .base import Recommender
from .nets import CSRStore, SparseLinear, SparseRows, mlp


# -- batches ---------------------------------------------------------------------------------
@dataclass
class UserBatch:
    """A batch of user ids; ``phase`` names the update it feeds (models with several updates)."""

    users: torch.Tensor
    phase: str = "train"
    first: bool = False  # the first batch of its block of passes (see UserRowModel.schedule)


@dataclass
class TripleBatch:
    """(user, observed item, unobserved item) triples for pairwise ranking (BPR)."""

    users: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor


def users_per_pass(train: sp.csr_matrix, max_pairs: int | None) -> int:
    """How many users one pass visits: all, or a share that covers about ``max_pairs`` positives."""
    n = train.shape[0]
    if max_pairs is None or train.nnz <= max_pairs:
        return n
    return max(1, math.ceil(n * max_pairs / train.nnz))


def user_batches(
    n_users: int,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    limit: int | None = None,
) -> Iterator[torch.Tensor]:
    """One shuffled pass over the users (or a random ``limit`` of them), in batches of ids."""
    order = rng.permutation(n_users)
    if limit is not None and limit < n_users:
        order = order[:limit]
    ids = torch.from_numpy(order).to(device)
    for s in range(0, ids.numel(), batch_size):
        yield ids[s : s + batch_size]


def pair_passes(
    train: sp.csr_matrix,
    ratio: int,
    batch_size: int,
    rng: np.random.Generator,
    max_pairs: int | None,
    device: torch.device,
    passes: int,
) -> Iterator[PairBatch]:
    """``passes`` passes of (user, item, label) pairs, negatives redrawn every pass."""
    for _ in range(passes):
        yield from pair_batches(train, ratio, batch_size, rng, max_pairs, device)


def triple_batches(
    train: sp.csr_matrix,
    batch_size: int,
    rng: np.random.Generator,
    max_pairs: int | None,
    device: torch.device,
) -> Iterator[TripleBatch]:
    """One pass of BPR triples: every observed pair once, with one unobserved item drawn for it."""
    users, pos = positive_pairs(train)
    if max_pairs is not None and max_pairs < users.size:
        keep = np.sort(rng.choice(users.size, size=max_pairs, replace=False))
        users, pos = users[keep], pos[keep]
    neg = sample_unobserved(train, users, rng)
    perm = rng.permutation(users.size)
    u, i, j = (torch.from_numpy(a[perm]).to(device) for a in (users, pos, neg))
    for s in range(0, u.numel(), batch_size):
        yield TripleBatch(u[s : s + batch_size], i[s : s + batch_size], j[s : s + batch_size])


def dense_rows(store: CSRStore, ids: torch.Tensor) -> torch.Tensor:
    """The users' binary rows as a dense B × width batch (never the whole matrix)."""
    return store.rows(ids).to_dense()


class UserRowModel(Recommender):
    """Base of the user-based baselines: they read each user's training row and train on
    batches of users. An epoch is a sequence of blocks ``(phase, passes, batch_size)``
    (:meth:`schedule`); the first batch of each block is flagged so that a model can act between
    blocks (RecVAE's prior update)."""

    def __init__(self, n_users: int, n_items: int, params: dict) -> None:  # type: ignore[type-arg]
        super().__init__(n_users, n_items, params)
        self.epoch = 0

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def schedule(self, epoch: int) -> list[tuple[str, int, int]]:
        p = self.params
        pre = p.get("pretrain_passes", 0)
        if epoch == 0 and pre > 0:
            return [("pretrain", pre, p["batch_size"])]
        return [("train", p["epoch_passes"], p["batch_size"])]

    def batches(
        self, train: sp.csr_matrix, epoch_rng: np.random.Generator, max_pairs: int | None
    ) -> Iterator[UserBatch]:
        limit = users_per_pass(train, max_pairs)
        for phase, passes, batch_size in self.schedule(self.epoch):
            first = True
            for _ in range(passes):
                for ids in user_batches(self.n_users, batch_size, epoch_rng, self.device, limit):
                    yield UserBatch(ids, phase, first)
                    first = False

    def rows(self, users: torch.Tensor) -> torch.Tensor:
        """The users' training rows, dense B × M."""
        assert self.user_rows is not None, "call set_inputs first"
        return dense_rows(self.user_rows, users)


# -- noise ------------------------------------------------------------------------------------
def bernoulli(
    shape: tuple[int, ...], p: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A 0/1 float tensor with P(1) = p, drawn from ``generator``."""
    return (torch.rand(shape, generator=generator, device=device) < p).float()


def dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout (kept entries scaled by 1/(1-p)) with the step's generator."""
    if p <= 0.0:
        return x
    keep = bernoulli(tuple(x.shape), 1.0 - p, generator, x.device)
    return x * keep / (1.0 - p)


def sample_unobserved_mask(
    rows: torch.Tensor, share: float, generator: torch.Generator
) -> torch.Tensor:
    """For each 0/1 row, a 0/1 mask of ``floor(share × #unobserved)`` of its unobserved entries,
    drawn uniformly without replacement (CFGAN's negative sampling for ZR and PM)."""
    unobserved = rows == 0
    k = torch.floor(unobserved.sum(dim=1, keepdim=True).float() * share).long()
    keys = torch.rand(rows.shape, generator=generator, device=rows.device)
    keys = keys.masked_fill(~unobserved, -1.0)  # observed entries sort last
    # the k largest keys of each row: at or above the row's k-th largest (ties have probability 0)
    kth = keys.sort(dim=1, descending=True).values.gather(1, (k - 1).clamp_min(0))
    return ((keys >= kth) & unobserved & (k > 0)).float()


def fgsm(grad: torch.Tensor, eps: float, per_row: bool) -> torch.Tensor:
    """The fast-gradient adversarial perturbation ``eps · g / ‖g‖`` (APR, ACAE).

    ``per_row``: each row normalised on its own (APR's ``l2_normalize(grad, 1)``); otherwise the
    whole tensor at once. Rows (or tensors) without gradient stay zero.
    """
    g = grad.detach()
    norm = g.norm(dim=-1, keepdim=True) if per_row else g.norm()
    return eps * g / norm.clamp_min(1e-12)


@contextmanager
def frozen(params: Iterable[nn.Parameter]) -> Iterator[None]:
    """Parameters excluded from autograd for the duration (the other player's step)."""
    params = list(params)
    flags = [q.requires_grad for q in params]
    for q in params:
        q.requires_grad_(False)
    try:
        yield
    finally:
        for q, f in zip(params, flags, strict=True):
            q.requires_grad_(f)


def l2(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """½ Σ‖θ‖² (TensorFlow's ``l2_loss``, the weight penalty of the reference implementations)."""
    return sum(0.5 * q.pow(2).sum() for q in params)  # type: ignore[return-value]


def lecun_uniform_(layer: nn.Linear) -> nn.Linear:
    """Keras' ``lecun_uniform`` weights, zero bias (NeuMF's dense layers)."""
    bound = math.sqrt(3.0 / layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of a discriminator's logits against "real" (1) or "fake" (0), mean."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def bernoulli_nll(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """−log p(row | logits) under independent Bernoullis, summed over entries, per row."""
    return F.binary_cross_entropy_with_logits(logits, rows, reduction="none").sum(dim=1)


# -- the implicit-posterior VAE of AVB (shared by AVB and VAEGAN) ------------------------------
class ImplicitEncoder(nn.Module):
    """A black-box posterior ``z = f(x, ε)``: noise enters beside the input, so q(z|x) has no
    closed form (AVB §3). The sparse row enters through an embedding bag."""

    def __init__(self, n_in: int, hidden: list[int], noise_dim: int, latent: int) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.x_in = SparseLinear(n_in, hidden[0])
        self.eps_in = nn.Linear(noise_dim, hidden[0], bias=False)
        self.rest = mlp([*hidden, latent], "tanh")

    def first_layer(self, rows: SparseRows, eps: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.x_in(rows) + self.eps_in(eps))

    def forward(self, rows: SparseRows, eps: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first_layer(rows, eps))

    def contractive_penalty(self, h1: torch.Tensor) -> torch.Tensor:
        """‖∂h₁/∂x‖²_F of the first layer, per row: Σ_j (1 − h₁ⱼ²)² Σ_i W_ij² (closed form for tanh)."""
        w_sq = self.x_in.weight.pow(2).sum(dim=0)
        return ((1 - h1.pow(2)).pow(2) * w_sq).sum(dim=1)

    def noise(
        self, n: int, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """ε for ``n`` rows; without a generator, ε = 0 (the noise's mode: a deterministic code)."""
        if generator is None:
            return torch.zeros(n, self.noise_dim, device=device)
        return torch.randn(n, self.noise_dim, generator=generator, device=device)


class PairCritic(nn.Module):
    """AVB's discriminator T(x, z): it sees the input row and the code together (AVB Eq. 3)."""

    def __init__(self, n_in: int, latent: int, hidden: list[int]) -> None:
        super().__init__()
        self.x_in = SparseLinear(n_in, hidden[0])
        self.z_in = nn.Linear(latent, hidden[0], bias=False)
        self.rest = nn.Sequential(nn.ReLU(), *mlp([*hidden, 1], "relu"))

    def features(self, rows: SparseRows) -> torch.Tensor:
        return self.x_in(rows)

    def forward(self, x_features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.rest(x_features + self.z_in(z)).squeeze(-1)


def critic_loss(
    critic: PairCritic, rows: SparseRows, z_post: torch.Tensor, z_prior: torch.Tensor
) -> torch.Tensor:
    """AVB Eq. 3 to minimise: (x, z ~ q(z|x)) labelled 1, (x, z ~ p(z)) labelled 0; batch mean."""
    fx = critic.features(rows)
    return gan_loss(critic(fx, z_post.detach()), True) + gan_loss(critic(fx, z_prior), False)


class BernoulliDecoder(nn.Module):
    """p(x | z): an MLP from the code to one logit per item (independent Bernoullis)."""

    def __init__(self, latent: int, hidden: list[int], n_out: int) -> None:
        super().__init__()
        self.net = mlp([latent, *hidden, n_out], "tanh")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class RowNet(nn.Module):
    """An MLP over dense rows returning its outputs and its last hidden layer (the features that
    VAEGAN's and CVAE-GAN's discriminator and classifier expose to feature matching)."""

    def __init__(self, n_in: int, hidden: list[int], n_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = [n_in, *hidden]
        for i in range(len(widths) - 1):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(widths[-1], n_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return self.out(f), f
