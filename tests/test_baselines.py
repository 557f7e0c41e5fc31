"""The nine baselines: shapes, a training step that lowers the loss, each model's own piece, and
a run of every family through the shared train and evaluate stages."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import random_train

from dave_repro import config
from dave_repro.config import BASELINES
from dave_repro.models import baseline_utils as bu
from dave_repro.models.registry import build
from dave_repro.models.specs import READS_INTERACTION_VECTORS
from dave_repro.training.sampling import PairBatch

N_USERS, N_ITEMS = 40, 30

# Small networks for generated data; every other value is params.yaml's.
SMALL = {
    "neumf": {"factors": 4, "mlp_layers": [8, 4], "batch_size": 32, "lr": 0.01},
    "apr": {"embedding_dim": 6, "batch_size": 16, "pretrain_passes": 1, "epoch_passes": 1},
    "cdae": {"hidden": 8, "batch_size": 8, "lr": 0.01, "epoch_passes": 1},
    "acae": {"hidden": 8, "batch_size": 8, "lr": 0.01, "pretrain_passes": 1, "epoch_passes": 1},
    "cfgan": {
        "g_hidden": 12,
        "d_hidden": 8,
        "g_batch_size": 8,
        "d_batch_size": 8,
        "g_lr": 1e-3,
        "d_lr": 1e-3,
        "epoch_passes": 1,
    },
    "avb": {
        "embedding_dim": 4,
        "encoder_hidden": [12],
        "decoder_hidden": [12],
        "critic_hidden": [8, 8],
        "noise_dim": 4,
        "batch_size": 8,
        "lr": 1e-2,
        "critic_lr": 1e-2,
        "epoch_passes": 1,
    },
    "vaegan": {
        "embedding_dim": 4,
        "encoder_hidden": [12],
        "decoder_hidden": [12],
        "critic_hidden": [8, 8],
        "noise_dim": 4,
        "batch_size": 8,
        "lr": 1e-2,
        "critic_lr": 1e-2,
        "discriminator_hidden": [8],
        "epoch_passes": 1,
    },
    "cvae-gan": {
        "embedding_dim": 4,
        "encoder_hidden": [12],
        "generator_hidden": [12],
        "discriminator_hidden": [8],
        "classifier_hidden": [8],
        "batch_size": 8,
        "lr": 1e-2,
        "epoch_passes": 1,
    },
    "recvae": {"hidden": 12, "latent": 4, "batch_size": 16, "lr": 1e-2},
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def small_params(params: dict, model: str, **overrides) -> dict:
    p = config.job_config(params, "ml-100k", model, 0)["model_params"]
    p.update(SMALL[model])
    p.update(overrides)
    return p


def make(params: dict, model: str, train=None, **overrides):
    torch.manual_seed(0)
    train = random_train(N_USERS, N_ITEMS) if train is None else train
    net = build(model, N_USERS, N_ITEMS, small_params(params, model, **overrides))
    net.set_inputs(train, torch.device("cpu"))
    return net, train


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def first_batch(net, train, epoch: int = 0, phase: str | None = None):
    net.on_epoch_start(epoch)
    for b in net.batches(train, np.random.default_rng(epoch), None):
        if phase is None or b.phase == phase:
            return b
    raise AssertionError(f"no {phase} batch")


# -- every family ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", BASELINES)
def test_scores_have_the_right_shapes_and_agree(params, model):
    net, _ = make(params, model)
    net.eval()
    users = torch.tensor([0, 3, 7])
    items = torch.randint(0, N_ITEMS, (3, 11), generator=gen())
    full = net.score_all(users)
    assert full.shape == (3, N_ITEMS) and torch.isfinite(full).all()
    cand = net.score_candidates(users, items)
    assert cand.shape == (3, 11)
    torch.testing.assert_close(cand, torch.gather(full, 1, items))
    assert full.std() > 0  # not a constant scorer


def _objective(net, model: str, batch) -> float:
    """The quantity each model's step minimises, on a fixed batch with fixed noise."""
    g = gen(123)
    with torch.no_grad():
        if model == "neumf":
            return float(
                F.binary_cross_entropy_with_logits(
                    net.logits(batch.users, batch.items), batch.labels
                )
            )
        if model == "apr":  # L(Θ) + λ_adv L(Θ + Δ_adv), the adversarial phase's objective
            with torch.enable_grad():
                adv = net.perturbations(batch)
            n = batch.users.numel()
            p, q = net.user_emb[adv["users"]], net.item_emb[adv["items"]]
            idx = (adv["i_inv"][:n], adv["i_inv"][n:])
            return float(
                net.bpr_loss(batch, p[adv["u_inv"]], q, idx)
                + net.bpr_loss(
                    batch, (p + adv["delta_user"])[adv["u_inv"]], q + adv["delta_item"], idx
                )
            )
        if model == "cdae":
            rows = net.rows(batch.users)
            z = net.logits(net.corrupt(rows, g), batch.users)
            return float(
                F.binary_cross_entropy_with_logits(z, rows, reduction="none").sum(1).mean()
            )
        if model == "acae":
            return float(net.loss(net.rows(batch.users), batch.users))
        if model == "cfgan":  # the generator's objective against the current D
            rows = net.rows(batch.users)
            pm, zr = net.masks(rows, g)
            out = net.generator(rows)
            return float(
                bu.gan_loss(net.discriminate(rows, out * pm), True)
                + 0.03 * (out.pow(2) * zr).sum(1).mean()
            )
        if model in ("avb", "vaegan"):  # reconstruction part of the VAE objective
            sparse = net.user_rows.rows(batch.users)
            z = net.encoder(sparse, net.encoder.noise(batch.users.numel(), g, torch.device("cpu")))
            return float(bu.bernoulli_nll(net.decoder(z), sparse.to_dense()).mean())
        if model == "cvae-gan":
            with torch.enable_grad():
                losses = net.objectives(batch, g)
            return float(losses["kl"] * 3 + losses["pairwise"])
        if model == "recvae":
            return float(net.negative_elbo(net.rows(batch.users), 0.0, g)[0])
    raise AssertionError(model)


@pytest.mark.parametrize("model", BASELINES)
def test_training_steps_lower_the_loss(params, model):
    epoch = 1 if model in ("apr", "acae") else 0  # after pre-training: the adversarial phase
    net, train = make(params, model, **({"pretrain_passes": 30} if model == "apr" else {}))
    if model == "apr":  # APR starts from BPR-MF: perturbations of norm ε dwarf untrained embeddings
        net.on_epoch_start(0)
        for b in net.batches(train, np.random.default_rng(0), None):
            net.train_step(b, gen())
    phase = {"cfgan": "generator", "recvae": "encoder"}.get(model)
    batch = first_batch(net, train, epoch, phase)
    before = _objective(net, model, batch)
    g = gen(1)
    for _ in range(5):
        logs = net.train_step(batch, g)
        assert "loss" in logs and all(math.isfinite(v) for v in logs.values())
    after = _objective(net, model, batch)
    assert after < before, (model, before, after)


def test_user_based_models_read_interaction_vectors(params):
    """A user-based model's score changes with the user's row; an embedding model's does not."""
    for model in BASELINES:
        net, train = make(params, model)
        net.eval()
        users = torch.arange(4)
        before = net.score_all(users)
        altered = train.copy().tolil()
        for u in range(4):
            altered[u, :] = 0
            altered[u, [1, 2, 3]] = 1
        net.set_inputs(altered.tocsr(), torch.device("cpu"))
        changed = not torch.allclose(before, net.score_all(users))
        assert changed == (model in READS_INTERACTION_VECTORS), model
    assert {
        "cdae",
        "acae",
        "recvae",
        "cvae-gan",
        "cfgan",
        "avb",
        "vaegan",
    } <= READS_INTERACTION_VECTORS


# -- NeuMF ---------------------------------------------------------------------------------------
def test_neumf_fuses_gmf_and_mlp_in_one_output_layer(params):
    net, _ = make(params, "neumf")
    u, i = torch.tensor([0, 5, 9]), torch.tensor([1, 2, 29])
    gmf = net.gmf_user.weight[u] * net.gmf_item.weight[i]
    h = torch.cat([net.mlp_user.weight[u], net.mlp_item.weight[i]], 1)
    for layer in net.mlp:
        h = layer(h)
    manual = torch.cat([gmf, h], 1) @ net.head.weight.t() + net.head.bias
    torch.testing.assert_close(net.logits(u, i), manual.squeeze(1))
    # GMF and the MLP use separate embeddings (NCF §3.4)
    assert net.gmf_user.weight.shape[1] == 4 and net.mlp_user.weight.shape[1] == 4


def test_neumf_pretraining_switches_to_the_alpha_mixed_fused_layer(params):
    net, train = make(params, "neumf", pretrain_passes=1, pretrain_alpha=0.3)
    assert not bool(net.fused)
    batch = first_batch(net, train, 0)
    net.train_step(batch, gen())
    u, i = batch.users, batch.items
    before = net.logits(u, i).detach()
    net.on_epoch_start(1)
    assert bool(net.fused)
    torch.testing.assert_close(net.logits(u, i).detach(), before)  # the switch keeps the scores
    torch.testing.assert_close(net.head.weight[:, :4], 0.3 * net.gmf_head.weight)
    state = copy.deepcopy(net.state_dict())
    net2, _ = make(params, "neumf", pretrain_passes=1, pretrain_alpha=0.3)
    net2.load_state_dict(state)
    net2.on_epoch_start(2)  # a resumed run keeps the trained fused layer
    torch.testing.assert_close(net2.head.weight, net.head.weight)


# -- APR -----------------------------------------------------------------------------------------
def test_apr_perturbation_is_eps_times_the_normalised_gradient_per_row(params):
    net, train = make(params, "apr", eps=0.7)
    batch = first_batch(net, train, 1)
    adv = net.perturbations(batch)
    # reference: the gradient of the batch's BPR loss with respect to the whole embedding matrices
    P = net.user_emb.detach().clone().requires_grad_(True)
    Q = net.item_emb.detach().clone().requires_grad_(True)
    x = (P[batch.users] * Q[batch.pos]).sum(1) - (P[batch.users] * Q[batch.neg]).sum(1)
    gP, gQ = torch.autograd.grad(F.softplus(-x).sum(), [P, Q])
    for delta, ids, g in (
        (adv["delta_user"], adv["users"], gP),
        (adv["delta_item"], adv["items"], gQ),
    ):
        torch.testing.assert_close(delta.norm(dim=1), torch.full((ids.numel(),), 0.7))
        torch.testing.assert_close(delta, 0.7 * g[ids] / g[ids].norm(dim=1, keepdim=True))
    # the perturbation raises the loss: it is adversarial
    n = batch.users.numel()
    idx = (adv["i_inv"][:n], adv["i_inv"][n:])
    p, q = net.user_emb[adv["users"]].detach(), net.item_emb[adv["items"]].detach()
    clean = net.bpr_loss(batch, p[adv["u_inv"]], q, idx)
    attacked = net.bpr_loss(
        batch, (p + adv["delta_user"])[adv["u_inv"]], q + adv["delta_item"], idx
    )
    assert attacked > clean


def test_apr_pretrains_bpr_then_trains_adversarially(params):
    net, train = make(params, "apr", pretrain_passes=2, epoch_passes=1)
    n_pos = train.nnz
    net.on_epoch_start(0)
    assert (
        sum(b.users.numel() for b in net.batches(train, np.random.default_rng(0), None))
        == 2 * n_pos
    )
    logs = net.train_step(first_batch(net, train, 0), gen())
    assert "loss_adversarial" not in logs
    logs = net.train_step(first_batch(net, train, 1), gen())
    assert "loss_adversarial" in logs
    assert set(net.optimizers()) == {"bpr", "apr"}  # the adversarial phase starts a fresh Adagrad


def test_triples_pair_each_positive_with_an_unobserved_item():
    train = random_train(N_USERS, N_ITEMS)
    dense = train.toarray()
    batches = list(bu.triple_batches(train, 7, np.random.default_rng(0), None, torch.device("cpu")))
    u = torch.cat([b.users for b in batches]).numpy()
    i = torch.cat([b.pos for b in batches]).numpy()
    j = torch.cat([b.neg for b in batches]).numpy()
    assert u.size == train.nnz and (dense[u, i] == 1).all() and (dense[u, j] == 0).all()


# -- CDAE ----------------------------------------------------------------------------------------
def test_cdae_corruption_drops_the_expected_share_and_rescales_the_rest(params):
    net, _ = make(params, "cdae", corruption=0.3)
    rows = torch.ones(200, 500)
    out = net.corrupt(rows, gen())
    dropped = float((out == 0).float().mean())
    assert abs(dropped - 0.3) < 0.01  # 100,000 entries: sd of the share ≈ 0.0015
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))


def test_cdae_user_node_makes_two_users_with_one_row_differ(params):
    train = random_train(N_USERS, N_ITEMS).tolil()
    train[1, :] = train[0, :]
    net, _ = make(params, "cdae", train=train.tocsr())
    with torch.no_grad():
        net.user_node.weight[1] += 1.0
    s = net.score_all(torch.tensor([0, 1]))
    assert not torch.allclose(s[0], s[1])


# -- ACAE ----------------------------------------------------------------------------------------
def test_acae_adversarial_noise_has_norm_eps_along_the_gradient(params):
    net, train = make(
        params,
        "acae",
        eps=0.4,
        hidden_activation="sigmoid",
        noise={"encoder": 1.0, "user": 0.5, "hidden": 0.25, "decoder": 1.0},
    )
    batch = first_batch(net, train, 1)
    rows = net.rows(batch.users)
    delta = net.perturbations(rows, batch.users)
    assert set(delta) == {"encoder", "user", "hidden", "decoder"}
    for pos, coef in (("encoder", 1.0), ("user", 0.5), ("hidden", 0.25), ("decoder", 1.0)):
        assert float(delta[pos].norm()) == pytest.approx(0.4 * coef, rel=1e-5)
    # direction: the gradient of the loss with respect to the perturbed weight itself
    w2 = net.w2.detach().clone().requires_grad_(True)
    h = torch.sigmoid(rows @ net.w1 + net.b1 + net.user_node[batch.users])
    loss = F.binary_cross_entropy_with_logits(h @ w2 + net.b2, rows, reduction="none").sum(1).mean()
    (g,) = torch.autograd.grad(loss, [w2])
    torch.testing.assert_close(delta["decoder"], 0.4 * g / g.norm())
    with torch.no_grad():
        assert net.loss(rows, batch.users, delta) > net.loss(rows, batch.users)
    # pre-training makes no perturbation
    assert "loss_adversarial" not in net.train_step(first_batch(net, train, 0), gen())
    assert "loss_adversarial" in net.train_step(batch, gen())


# -- CFGAN ---------------------------------------------------------------------------------------
def test_cfgan_unobserved_sampling_takes_the_share_of_unobserved_entries_only():
    rows = (torch.rand(50, 40, generator=gen()) < 0.3).float()
    mask = bu.sample_unobserved_mask(rows, 0.7, gen(1))
    assert (mask * rows).sum() == 0
    expected = torch.floor((rows == 0).sum(1).float() * 0.7)
    torch.testing.assert_close(mask.sum(1), expected)


def test_cfgan_partial_masking_zeroes_the_sampled_entries(params):
    """ZP: D sees G's output on the user's items and on PM-sampled unobserved items (where the real
    vector is 0, so G is pushed to zero them) and zero elsewhere; ZR penalises G's outputs on
    another sample of unobserved items."""
    net, train = make(params, "cfgan", zr_coefficient=0.0)
    rows = net.rows(torch.arange(6))
    pm, zr = net.masks(rows, gen(5))
    sampled = pm - rows
    assert (
        ((sampled == 0) | (sampled == 1)).all()
        and (sampled * rows).sum() == 0
        and sampled.sum() > 0
    )
    out = net.generator(rows).detach().requires_grad_(True)
    fake = out * pm
    torch.testing.assert_close(fake[pm == 0], torch.zeros(int((pm == 0).sum())))
    torch.testing.assert_close(fake[pm == 1], out[pm == 1])
    assert (rows[sampled == 1] == 0).all()  # the real vector on the sampled entries
    (g,) = torch.autograd.grad(bu.gan_loss(net.discriminate(rows, fake), True), [out])
    assert (g[pm == 0] == 0).all() and (g[sampled == 1] != 0).all()
    zr_loss = (out.pow(2) * zr).sum(1).mean()
    (gz,) = torch.autograd.grad(zr_loss, [out])
    assert (gz[zr == 0] == 0).all() and (zr * rows).sum() == 0


def test_cfgan_epoch_alternates_discriminator_and_generator_passes(params):
    net, train = make(
        params, "cfgan", d_passes=2, g_passes=3, d_batch_size=40, g_batch_size=40, epoch_passes=2
    )
    net.on_epoch_start(0)
    phases = [b.phase for b in net.batches(train, np.random.default_rng(0), None)]
    assert phases == (["discriminator"] * 2 + ["generator"] * 3) * 2
    d_before = [q.detach().clone() for q in net.discriminator.parameters()]
    net.train_step(first_batch(net, train, 0, "generator"), gen())
    assert all(
        torch.equal(a, b) for a, b in zip(d_before, net.discriminator.parameters(), strict=True)
    )


# -- AVB and VAEGAN -------------------------------------------------------------------------------
def test_avb_critic_sees_both_the_input_row_and_the_code(params):
    net, _ = make(params, "avb")
    rows_a = net.user_rows.rows(torch.tensor([0, 1]))
    rows_b = net.user_rows.rows(torch.tensor([2, 3]))
    z = torch.randn(2, 4, generator=gen())
    with torch.no_grad():
        t = net.critic(net.critic.features(rows_a), z)
        assert not torch.allclose(t, net.critic(net.critic.features(rows_b), z))
        assert not torch.allclose(t, net.critic(net.critic.features(rows_a), z + 1.0))


def test_avb_critic_learns_to_tell_posterior_from_prior_codes(params):
    net, train = make(params, "avb")
    batch = first_batch(net, train)
    sparse = net.user_rows.rows(batch.users)

    def margin() -> float:
        g = gen(9)
        with torch.no_grad():
            z = net.encoder(sparse, net.encoder.noise(batch.users.numel(), g, torch.device("cpu")))
            zp = torch.randn(z.shape, generator=g)
            f = net.critic.features(sparse)
            return float(net.critic(f, z).mean() - net.critic(f, zp).mean())

    before = margin()
    g = gen(2)
    for _ in range(10):
        net.train_step(batch, g)
    assert margin() > before  # T rises on (x, z ~ q) relative to (x, z ~ p): label 1 vs 0


def test_implicit_encoder_uses_its_noise(params):
    net, _ = make(params, "avb")
    rows = net.user_rows.rows(torch.tensor([0, 1]))
    with torch.no_grad():
        a = net.encoder(rows, net.encoder.noise(2, gen(1), torch.device("cpu")))
        b = net.encoder(rows, net.encoder.noise(2, gen(2), torch.device("cpu")))
    assert not torch.allclose(a, b)


def test_vaegan_contractive_penalty_is_the_first_layer_jacobian_norm(params):
    net, _ = make(params, "vaegan")
    enc = net.encoder
    x = net.rows(torch.tensor([4]))
    eps = enc.noise(1, gen(), torch.device("cpu"))

    def first(dense: torch.Tensor) -> torch.Tensor:
        return torch.tanh(dense @ enc.x_in.weight + enc.x_in.bias + enc.eps_in(eps))

    jac = torch.autograd.functional.jacobian(first, x).reshape(-1, N_ITEMS)
    h1 = enc.first_layer(net.user_rows.rows(torch.tensor([4])), eps)
    torch.testing.assert_close(enc.contractive_penalty(h1), jac.pow(2).sum().reshape(1))


def test_vaegan_discriminator_learns_real_rows_from_generated_ones(params):
    net, train = make(params, "vaegan")
    batch = first_batch(net, train)
    rows = net.rows(batch.users)

    def d_loss() -> float:
        with torch.no_grad():
            z = net.encoder(
                net.user_rows.rows(batch.users),
                net.encoder.noise(batch.users.numel(), gen(3), torch.device("cpu")),
            )
            return float(net.discriminator_loss(rows, torch.sigmoid(net.decoder(z))))

    before = d_loss()
    g = gen(4)
    for _ in range(5):
        logs = net.train_step(batch, g)
    assert d_loss() < before
    assert {"loss_gan", "loss_contractive", "loss_critic", "loss_discriminator"} <= set(logs)


# -- CVAE-GAN ------------------------------------------------------------------------------------
def test_cvae_gan_classifier_learns_whose_row_it_is(params):
    net, train = make(params, "cvae-gan")
    batch = first_batch(net, train)

    def ce() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(net.classifier(net.rows(batch.users))[0], batch.users))

    before = ce()
    g = gen()
    for _ in range(5):
        net.train_step(batch, g)
    assert ce() < before


def test_cvae_gan_each_network_follows_its_own_objective(params):
    """With G's weights λ₃ = λ₄ = 0, a step moves E, D and C but leaves G untouched."""
    net, train = make(
        params,
        "cvae-gan",
        loss_weights={
            "kl": 3.0,
            "encoder_pairwise": 1.0,
            "generator_pairwise": 0.0,
            "mean_matching": 0.0,
        },
    )
    snap = {k: v.detach().clone() for k, v in net.state_dict().items()}
    logs = net.train_step(first_batch(net, train), gen())
    moved = {k.split(".")[0] for k, v in net.state_dict().items() if not torch.equal(v, snap[k])}
    assert moved == {"encoder", "discriminator", "classifier"}
    for key in (
        "loss_discriminator",
        "loss_classifier",
        "loss_kl",
        "loss_pairwise",
        "loss_mean_d",
        "loss_mean_c",
    ):
        assert math.isfinite(logs[key])


# -- RecVAE --------------------------------------------------------------------------------------
def test_recvae_composite_prior_mixes_its_three_components(params):
    net, _ = make(params, "recvae")
    rows = net.rows(torch.arange(5))
    z = torch.randn(5, 4, generator=gen())
    with torch.no_grad():
        mu, logvar = net.prior.encoder_old(rows)
        dens = (
            3 / 20 * torch.distributions.Normal(0.0, 1.0).log_prob(z).exp()
            + 3 / 4 * torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).exp()
            + 1 / 10 * torch.distributions.Normal(0.0, math.exp(5.0)).log_prob(z).exp()
        )
        torch.testing.assert_close(net.prior.log_prob(rows, z), dens.log())
    assert net.prior.weights == (3 / 20, 3 / 4, 1 / 10)


def test_recvae_alternates_encoder_and_decoder_and_refreshes_the_prior(params):
    net, train = make(
        params, "recvae", batch_size=20, encoder_passes=3, decoder_passes=1, epoch_passes=1
    )
    net.on_epoch_start(0)
    batches = list(net.batches(train, np.random.default_rng(0), None))
    assert [b.phase for b in batches] == ["encoder"] * 6 + ["decoder"] * 2
    assert [b.first for b in batches] == [True] + [False] * 5 + [True, False]
    g = gen()
    dec = [q.detach().clone() for q in net.decoder.parameters()]
    net.train_step(batches[0], g)
    assert all(torch.equal(a, b) for a, b in zip(dec, net.decoder.parameters(), strict=True))
    old = net.prior.encoder_old.state_dict()
    assert not torch.equal(old["mu.weight"], net.encoder.state_dict()["mu.weight"])
    enc = {k: v.detach().clone() for k, v in net.encoder.state_dict().items()}
    net.train_step(batches[6], g)  # the first decoder batch copies the encoder into the prior first
    for k, v in net.prior.encoder_old.state_dict().items():
        torch.testing.assert_close(v, enc[k])
    for k, v in net.encoder.state_dict().items():
        assert torch.equal(v, enc[k]), k  # the decoder phase leaves the encoder alone


def test_recvae_kl_weight_is_gamma_times_the_users_interactions(params):
    net, _ = make(params, "recvae", gamma=0.5)
    rows = net.rows(torch.arange(3))
    _, _, kld = net.negative_elbo(rows, 0.0, gen(7))
    net.params["gamma"] = 1.0
    _, _, kld2 = net.negative_elbo(rows, 0.0, gen(7))
    torch.testing.assert_close(kld2, 2 * kld)


# -- shared helpers ------------------------------------------------------------------------------
def test_user_passes_cover_every_user_once_per_pass_and_respect_the_pair_cap(params):
    net, train = make(params, "cdae", batch_size=7, epoch_passes=2)
    net.on_epoch_start(0)
    ids = torch.cat([b.users for b in net.batches(train, np.random.default_rng(0), None)]).numpy()
    assert ids.size == 2 * N_USERS and sorted(ids[:N_USERS]) == list(range(N_USERS))
    capped = torch.cat(
        [b.users for b in net.batches(train, np.random.default_rng(0), train.nnz // 4)]
    )
    assert capped.numel() == 2 * math.ceil(N_USERS / 4)


def test_fgsm_normalises_rows_or_the_whole_tensor():
    g = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(
        bu.fgsm(g, 2.0, per_row=True), torch.tensor([[1.2, 1.6], [0.0, 0.0], [2.0, 0.0]])
    )
    assert float(bu.fgsm(g, 2.0, per_row=False).norm()) == pytest.approx(2.0)


def test_pair_passes_redraw_negatives_each_pass():
    train = random_train(N_USERS, N_ITEMS)
    batches = list(
        bu.pair_passes(train, 2, 10_000, np.random.default_rng(0), None, torch.device("cpu"), 2)
    )
    assert len(batches) == 2 and all(isinstance(b, PairBatch) for b in batches)
    neg = [
        set(zip(b.users[b.labels == 0].tolist(), b.items[b.labels == 0].tolist(), strict=True))
        for b in batches
    ]
    assert neg[0] != neg[1]


# -- through the shared train and evaluate stages -----------------------------------------------
TINY = {
    "neumf": {"factors": 4, "mlp_layers": [8, 4], "batch_size": 64},
    "apr": {"embedding_dim": 8, "batch_size": 64, "pretrain_passes": 1, "epoch_passes": 1},
    "cdae": {"hidden": 8, "epoch_passes": 1},
    "acae": {"hidden": 8, "pretrain_passes": 1, "epoch_passes": 1},
    "cfgan": {"g_hidden": 16, "d_hidden": 8, "g_passes": 1, "d_passes": 1, "epoch_passes": 1},
    "avb": {
        "encoder_hidden": [16],
        "decoder_hidden": [16],
        "critic_hidden": [8],
        "noise_dim": 4,
        "epoch_passes": 1,
    },
    "vaegan": {
        "encoder_hidden": [16],
        "decoder_hidden": [16],
        "critic_hidden": [8],
        "noise_dim": 4,
        "discriminator_hidden": [8],
        "epoch_passes": 1,
    },
    "cvae-gan": {
        "encoder_hidden": [16],
        "generator_hidden": [16],
        "discriminator_hidden": [8],
        "classifier_hidden": [8],
        "epoch_passes": 1,
    },
    "recvae": {"hidden": 16, "latent": 8, "batch_size": 64},
}


@pytest.mark.parametrize("model", BASELINES)
def test_every_baseline_trains_and_evaluates_through_the_shared_stages(tiny_workspace, model):
    from dave_repro.layout import run_dir
    from dave_repro.stages.evaluate import evaluate as evaluate_stage
    from dave_repro.stages.train import train as train_stage

    path = tiny_workspace / "params.yaml"
    p = yaml.safe_load(path.read_text())
    p["profiles"]["quick"]["train"].update(max_epochs=2, patience=2)
    p["models"][model].update(TINY[model])
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    p = config.load_params(path)
    job = config.job_config(p, "ml-100k", model, 0)
    assert train_stage(job, p) is True
    assert evaluate_stage(job, p) is True
    rd = run_dir("ml-100k", model, 0)
    metrics = json.loads((rd / "metrics.json").read_text())
    train_info = json.loads((rd / "train.json").read_text())
    assert train_info["epochs_run"] == 2 and len(train_info["history"]) == 2
    assert all(math.isfinite(v) for v in metrics["sampled"].values())
    assert 0.0 <= metrics["sampled"]["hr@10"] <= 1.0 and set(metrics["full"]) == set(
        metrics["sampled"]
    )
    assert (rd / "ranks.parquet").exists() and not (rd / "last.pt").exists()
    assert train_stage(job, p) is False  # nothing changed: no work
