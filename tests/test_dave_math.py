"""The maths of DAVE on tiny hand-checkable cases (Section 3 of the paper)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import random_train, small_dave_params

from dave_repro.models.dave import DAVE, discriminator_loss, kl_to_standard_normal
from dave_repro.models.nets import CSRStore
from dave_repro.training.sampling import PairBatch


def test_kl_to_standard_normal_closed_form():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])
    kl = kl_to_standard_normal(mu, logvar)
    # KL(N(m, s^2)||N(0,1)) = 0.5 (m^2 + s^2 - 1 - log s^2) per dimension
    expected = 0.5 * ((1 + 4 - 1 - math.log(4)) + (4 + 1 - 1 - 0))
    assert kl[0].item() == pytest.approx(0.0)
    assert kl[1].item() == pytest.approx(expected)


def test_discriminator_loss_is_negative_eq10():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    eq10 = torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()
    assert discriminator_loss(real, fake).item() == pytest.approx(-eq10.item(), rel=1e-6)


def _model(params, name="dave", **kw):
    torch.manual_seed(0)
    train = random_train()
    m = DAVE(train.shape[0], train.shape[1], small_dave_params(params, name, **kw))
    m.set_inputs(train)
    return m, train


def _batch():
    return PairBatch(
        torch.tensor([0, 1, 2, 2]), torch.tensor([3, 3, 5, 7]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    )


def test_reparameterisation_uses_mu_plus_sigma_eps(params):
    m, _ = _model(params)
    st = m.encode_batch(
        _batch(),
        torch.Generator().manual_seed(0),
        {"eps_user_pair": torch.ones(4, 8), "eps_item_pair": torch.zeros(4, 8)},
    )
    x_expected = st.mu_u[st.u_inv] + torch.exp(0.5 * st.lv_u[st.u_inv])
    torch.testing.assert_close(st.x_pair, x_expected)
    torch.testing.assert_close(st.y_pair, st.mu_v[st.v_inv])  # ε = 0 gives the mean


def test_deterministic_variant_has_point_embeddings(params):
    m, _ = _model(params, "dave-aae")
    st = m.encode_batch(_batch(), torch.Generator().manual_seed(0))
    assert st.lv_u is None and st.lv_v is None
    torch.testing.assert_close(st.x_pair, st.mu_u[st.u_inv])


def test_joint_objective_terms_by_hand(params):
    """Eq. 11/14 generator term, the Bernoulli reconstruction and the BCE of Eq. 16."""
    m, train = _model(params, reduction="sum")
    b = _batch()
    noise = {
        "eps_user_pair": torch.zeros(4, 8),
        "eps_item_pair": torch.zeros(4, 8),
        "eps_user": torch.zeros(3, 8),
        "eps_item": torch.zeros(3, 8),
    }
    st = m.encode_batch(b, torch.Generator(), noise)
    loss, parts = m.joint_objective(st, torch.Generator(), noise)
    x, y = st.x_pair, st.y_pair
    dense_u = torch.as_tensor(train.toarray())[b.users]
    dense_v = torch.as_tensor(train.T.toarray())[b.items]
    rec = (
        F.binary_cross_entropy_with_logits(m.user_vae.logits(x), dense_u, reduction="sum")
        + F.binary_cross_entropy_with_logits(m.item_vae.logits(y), dense_v, reduction="sum")
    ) / 4
    reg = -(m.user_d(x) + m.item_d(y)).mean()
    pred = F.binary_cross_entropy(torch.sigmoid(m.predictor(x * y).squeeze(-1)), b.labels)
    assert parts["reconstruction"].item() == pytest.approx(rec.item(), rel=1e-5)
    assert parts["regularizer"].item() == pytest.approx(reg.item(), rel=1e-5)
    assert parts["prediction"].item() == pytest.approx(pred.item(), rel=1e-5)
    assert loss.item() == pytest.approx((rec + reg + pred).item(), rel=1e-5)


def test_mean_reconstruction_divides_by_the_vector_length(params):
    m_sum, _ = _model(params, reduction="sum")
    m_mean, _ = _model(params, reduction="mean")
    noise = {
        k: torch.zeros(n, 8)
        for k, n in (("eps_user_pair", 4), ("eps_item_pair", 4), ("eps_user", 3), ("eps_item", 3))
    }
    st = m_sum.encode_batch(_batch(), torch.Generator(), noise)
    rows_u, rows_v = st.urows, st.vrows
    s = m_sum.user_vae.reconstruction_nll(st.mu_u, rows_u, st.u_count)
    mm = m_mean.user_vae.reconstruction_nll(st.mu_u, rows_u, st.u_count, mean=True)
    assert mm.item() == pytest.approx(s.item() / m_sum.n_items, rel=1e-6)
    assert rows_v.width == m_sum.n_users


def test_mean_reduction_averages_the_kl_over_latent_dimensions(params):
    noise = {
        k: torch.zeros(n, 8)
        for k, n in (("eps_user_pair", 4), ("eps_item_pair", 4), ("eps_user", 3), ("eps_item", 3))
    }
    parts = {}
    for red in ("sum", "mean"):
        m, _ = _model(params, "dave-adv", reduction=red)
        st = m.encode_batch(_batch(), torch.Generator(), noise)
        parts[red] = m.joint_objective(st, torch.Generator(), noise)[1]["regularizer"].item()
    assert parts["mean"] == pytest.approx(parts["sum"] / 8, rel=1e-6)


def _snapshot(params_iter):
    return [p.detach().clone() for p in params_iter]


def test_discriminator_step_leaves_encoders_untouched_and_joint_step_leaves_d_untouched(params):
    m, _ = _model(params)
    opts = m.optimizers()
    gen = torch.Generator().manual_seed(0)
    st = m.encode_batch(_batch(), gen)
    gen_before = _snapshot(m.generator_parameters())
    d_before = _snapshot(m.discriminator_parameters())
    d_loss = m.discriminator_objective(st, gen)
    opts["discriminator"].zero_grad()
    d_loss.backward()
    opts["discriminator"].step()
    assert all(torch.equal(a, b) for a, b in zip(gen_before, m.generator_parameters(), strict=True))
    assert any(
        not torch.equal(a, b) for a, b in zip(d_before, m.discriminator_parameters(), strict=True)
    )
    # the joint step (a whole train_step's second half) must not move D
    d_mid = _snapshot(m.discriminator_parameters())
    for q in m.discriminator_parameters():
        q.requires_grad_(False)
    loss, _ = m.joint_objective(st, gen)
    opts["joint"].zero_grad()
    loss.backward()
    opts["joint"].step()
    assert all(torch.equal(a, b) for a, b in zip(d_mid, m.discriminator_parameters(), strict=True))
    assert any(
        not torch.equal(a, b) for a, b in zip(gen_before, m.generator_parameters(), strict=True)
    )


def test_train_step_runs_d_then_joint_and_lowers_the_loss(params):
    m, train = _model(params)
    gen = torch.Generator().manual_seed(0)
    b = _batch()
    first = m.train_step(b, gen)
    for _ in range(60):
        last = m.train_step(b, gen)
    assert set(first) >= {"loss", "loss_discriminator", "loss_reconstruction", "loss_prediction"}
    assert last["loss_prediction"] < first["loss_prediction"]


def test_full_scores_equal_candidate_scores(params):
    m, train = _model(params)
    m.eval()
    users = torch.arange(train.shape[0])
    allscores = m.score_all(users)
    cand = torch.tensor([[0, 5, 9]] * train.shape[0])
    torch.testing.assert_close(
        m.score_candidates(users, cand), allscores.gather(1, cand), rtol=1e-5, atol=1e-6
    )


def test_csr_rows_match_scipy():
    train = random_train()
    store = CSRStore.from_scipy(train)
    ids = torch.tensor([3, 0, 3, 7])
    rows = store.rows(ids)
    dense = rows.to_dense()
    torch.testing.assert_close(dense, torch.as_tensor(train.toarray())[ids])


# -- The readings of Eq. 17's scale (docs/models.md), on a case computed by hand -------------
# Every network is set to constants: decoder logits 0 (each entry costs ln 2 nats, a row of
# length L costs L ln 2), encoders μ = 1, log σ² = 0 (KL = d/2 nats per vector), D(x) = c, F's
# logit 0 (BCE ln 2 per pair). With ε = 0 nothing else enters.
LN2 = math.log(2.0)
D_LOGIT = 0.7


def _constant_model(params, name, **kw):
    m, _ = _model(params, name, **kw)
    d = m.params["embedding_dim"]
    with torch.no_grad():
        for vae in (m.user_vae, m.item_vae):
            last = vae.enc_rest[-1]
            last.weight.zero_()
            last.bias.copy_(torch.cat([torch.ones(d), torch.zeros(d)]) if vae.stochastic else 1.0)
            vae.dec_out.weight.zero_()
            vae.dec_out.bias.zero_()
        m.predictor[-1].weight.zero_()
        m.predictor[-1].bias.zero_()
        if m.adversarial:
            for disc in (m.user_d, m.item_d):
                disc.rest[-1].weight.zero_()
                disc.rest[-1].bias.fill_(D_LOGIT)
    return m


def _objective(m):
    noise = {
        k: torch.zeros(n, 8)
        for k, n in (("eps_user_pair", 4), ("eps_item_pair", 4), ("eps_user", 3), ("eps_item", 3))
    }
    st = m.encode_batch(_batch(), torch.Generator(), noise)
    loss, parts = m.joint_objective(st, torch.Generator(), noise)
    return loss.item(), {k: v.item() for k, v in parts.items()}


BETA = 0.01


@pytest.mark.parametrize(
    ("name", "reduction", "beta", "expected"),
    [
        # M = 30 items (a user's row), N = 40 users (an item's column), d = 8
        ("dave-adv", "sum", 1.0, 30 * LN2 + 4 + 40 * LN2 + 4 + LN2),  # the literal sum
        ("dave-adv", "sum", BETA, BETA * (30 * LN2 + 4 + 40 * LN2 + 4) + LN2),
        ("dave-adv", "per_entry", 1.0, (30 * LN2 + 4) / 30 + (40 * LN2 + 4) / 40 + LN2),
        ("dave-adv", "mean", 1.0, LN2 + 4 / 8 + LN2 + 4 / 8 + LN2),
        ("dave", "sum", 1.0, 30 * LN2 - D_LOGIT + 40 * LN2 - D_LOGIT + LN2),
        ("dave", "sum", BETA, BETA * (30 * LN2 - D_LOGIT + 40 * LN2 - D_LOGIT) + LN2),
        ("dave", "per_entry", 1.0, (30 * LN2 - D_LOGIT) / 30 + (40 * LN2 - D_LOGIT) / 40 + LN2),
        ("dave", "mean", 1.0, LN2 - D_LOGIT + LN2 - D_LOGIT + LN2),
        ("dave-aae", "per_entry", 1.0, (30 * LN2 - D_LOGIT) / 30 + (40 * LN2 - D_LOGIT) / 40 + LN2),
    ],
)
def test_each_reading_of_eq17_by_hand(params, name, reduction, beta, expected):
    weights = {"reconstruction": beta, "regularizer": beta, "prediction": 1.0}
    m = _constant_model(params, name, reduction=reduction, loss_weights=weights)
    loss, parts = _objective(m)
    assert loss == pytest.approx(expected, rel=1e-5)
    # the unscaled terms are nats per vector whatever the reading
    assert parts["nll_user"] == pytest.approx(30 * LN2, rel=1e-5)
    assert parts["nll_item"] == pytest.approx(40 * LN2, rel=1e-5)
    reg = 4.0 if name == "dave-adv" else -D_LOGIT
    assert parts["reg_user"] == pytest.approx(reg, rel=1e-5)
    assert parts["reg_item"] == pytest.approx(reg, rel=1e-5)
    assert parts["prediction"] == pytest.approx(LN2, rel=1e-5)
    total = parts["reconstruction"] + parts["regularizer"] + parts["prediction"]
    assert total == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("name", ["dave", "dave-aae"])
@pytest.mark.parametrize("d_input", ["embedding", "embedding+input"])
def test_discriminator_step_trains_every_discriminator_parameter(params, name, d_input):
    """D(x, u)'s input projection is part of D: the D step must move it (the joint step freezes
    D, so a detached projection would never learn)."""
    m, _ = _model(params, name, discriminator_input=d_input)
    gen = torch.Generator().manual_seed(0)
    before = {n: p.detach().clone() for n, p in m.named_parameters() if "_d." in n}
    assert before and (d_input == "embedding") == all("input_proj" not in n for n in before)
    m.train_step(_batch(), gen)
    after = dict(m.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n])]
    assert unchanged == []
