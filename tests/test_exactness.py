"""The fast training path computes the reference's objective and gradients (issue: exact fast path).

The reference (benchmarks/reference_dave.py) is the plain dense per-pair implementation. With the
noise fixed so that pairs of the same user share their ε, the fast path's losses and gradients
must equal the reference's, for every variant and with duplicated users and items in the batch.
"""

from __future__ import annotations

import pytest
import torch
from conftest import random_train, small_dave_params
from reference_dave import DenseReference

from dave_repro.models.dave import DAVE, _distinct
from dave_repro.training.sampling import PairBatch

VARIANTS = {  # name: (model entry, overrides)
    "dave": ("dave", {}),
    "dave-adv": ("dave-adv", {}),
    "dave-aae": ("dave-aae", {}),
    "dave-input-d": ("dave", {"discriminator_input": "embedding+input"}),
    "dave-sum": ("dave", {"reduction": "sum"}),
    "dave-per-entry-input-d": (
        "dave",
        {"reduction": "per_entry", "discriminator_input": "embedding+input"},
    ),
    "dave-adv-per-entry": ("dave-adv", {"reduction": "per_entry"}),
    "dave-adv-beta": (
        "dave-adv",
        {
            "reduction": "sum",
            "loss_weights": {"reconstruction": 0.01, "regularizer": 0.01, "prediction": 1.0},
        },
    ),
}


def _setup(params, name):
    base, overrides = VARIANTS[name]
    torch.manual_seed(0)
    train = random_train()
    model = DAVE(train.shape[0], train.shape[1], small_dave_params(params, base, **overrides))
    model.set_inputs(train)
    # duplicated users and items inside one batch, positives and negatives
    users = torch.tensor([0, 1, 1, 2, 3, 3, 3, 5, 7, 0])
    items = torch.tensor([4, 4, 9, 1, 2, 2, 8, 4, 0, 9])
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 0, 1, 1, 0], dtype=torch.float32)
    batch = PairBatch(users, items, labels)
    d = model.params["embedding_dim"]
    g = torch.Generator().manual_seed(1)
    u_ids, u_inv, _ = _distinct(users)
    v_ids, v_inv, _ = _distinct(items)
    eps_u = torch.randn(u_ids.numel(), d, generator=g)
    eps_v = torch.randn(v_ids.numel(), d, generator=g)
    noise = {
        "eps_user": eps_u,
        "eps_item": eps_v,
        "eps_user_pair": eps_u[u_inv],
        "eps_item_pair": eps_v[v_inv],
        "prior_user": torch.randn(10, d, generator=g),
        "prior_item": torch.randn(10, d, generator=g),
    }
    return model, DenseReference(model, train), batch, noise


def _variant(model, **overrides):
    """The same model (same weights and inputs) with some parameters changed."""
    other = DAVE(model.n_users, model.n_items, {**model.params, **overrides})
    other.load_state_dict(model.state_dict())
    other.set_inputs(random_train())
    return other


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_joint_objective_and_gradients_equal_reference(params, name):
    model, ref, batch, noise = _setup(params, name)
    gen = torch.Generator().manual_seed(2)
    fast_loss, _ = model.joint_objective(model.encode_batch(batch, gen, noise), gen, noise)
    fast = _grads(model, fast_loss)
    ref_loss = ref.joint_objective(batch, noise)
    slow = _grads(model, ref_loss)
    assert fast_loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    assert fast.keys() == slow.keys() and len(fast) > 0
    for n in fast:
        torch.testing.assert_close(
            fast[n], slow[n], rtol=1e-4, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}"
        )


@pytest.mark.parametrize("name", ["dave", "dave-aae", "dave-input-d"])
def test_discriminator_objective_and_gradients_equal_reference(params, name):
    model, ref, batch, noise = _setup(params, name)
    gen = torch.Generator().manual_seed(2)
    fast_loss = model.discriminator_objective(model.encode_batch(batch, gen, noise), gen, noise)
    fast = _grads(model, fast_loss)
    ref_loss = ref.discriminator_objective(batch, noise)
    slow = _grads(model, ref_loss)
    assert fast_loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
    assert set(fast) == set(slow)
    assert all(n.startswith(("user_d.", "item_d.")) for n in fast)  # only D receives gradient
    # D(x, u)'s input projection is part of D and learns in this step
    assert any("input_proj" in n for n in fast) == (name == "dave-input-d")
    for n in fast:
        torch.testing.assert_close(fast[n], slow[n], rtol=1e-5, atol=1e-7)


def _mc_gradients(model, ref, batch, n, ignore_counts=False):
    fast, slow = [], []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        st = model.encode_batch(batch, g)
        if ignore_counts:  # a deliberately wrong fast path: duplicates weighted once
            st.u_count = torch.ones_like(st.u_count)
            st.v_count = torch.ones_like(st.v_count)
        loss, _ = model.joint_objective(st, g)
        fast.append(_grads(model, loss)["user_vae.dec_out.weight"].flatten())
        slow.append(
            _grads(model, ref.joint_objective(batch, {}))["user_vae.dec_out.weight"].flatten()
        )
    return torch.stack(fast).double(), torch.stack(slow).double()


def _project(x, directions=8):
    """Rows of ``x`` along fixed random directions (the same for every call of one width)."""
    v = torch.randn(
        directions, x.shape[-1], generator=torch.Generator().manual_seed(9), dtype=torch.float64
    )
    return x @ v.T


def _max_abs_z(f, s):
    """Largest |z| of the mean difference along fixed random directions (each z ~ N(0,1) under H0)."""
    pf, ps = _project(f), _project(s)
    n = f.shape[0]
    z = (pf.mean(0) - ps.mean(0)) / (pf.var(0) / n + ps.var(0) / n).sqrt()
    return z.abs().max().item()


def test_gradient_equals_reference_in_expectation_with_fresh_noise(params):
    """With independent noise (duplicates no longer share ε) the gradients agree in expectation,
    and the same statistic does flag a fast path that gets the duplicate weighting wrong."""
    model, ref, batch, _ = _setup(params, "dave-adv")
    torch.manual_seed(3)
    f, s = _mc_gradients(model, ref, batch, 800)
    assert _max_abs_z(f, s) < 4.5
    torch.manual_seed(3)
    f_bad, s_bad = _mc_gradients(model, ref, batch, 800, ignore_counts=True)
    assert _max_abs_z(f_bad, s_bad) > 6.0


def test_bf16_option_is_close_to_fp32_but_not_claimed_exact(params):
    """`precision: bf16` autocasts the decoders only: the loss stays within bf16 rounding of fp32's,
    every parameter still gets its gradient, and the option really changes the arithmetic."""
    model, _, batch, noise = _setup(params, "dave")
    half = _variant(model, precision="bf16")
    losses, grads = [], []
    for m in (model, half):
        gen = torch.Generator().manual_seed(2)
        loss, _ = m.joint_objective(m.encode_batch(batch, gen, noise), gen, noise)
        losses.append(loss.item())
        grads.append(_grads(m, loss))
    assert losses[1] == pytest.approx(losses[0], rel=2e-2)
    assert losses[1] != losses[0]
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        cos = torch.nn.functional.cosine_similarity(
            grads[0][n].flatten(), grads[1][n].flatten(), dim=0
        )
        assert cos > 0.98, n


def _sampled_draws(model, batch, noise, n):
    """Loss and gradient of the joint objective over n column draws (noise ε fixed)."""
    losses, grads = [], []
    for i in range(n):
        g = torch.Generator().manual_seed(100 + i)
        loss, _ = model.joint_objective(model.encode_batch(batch, g, noise), g, noise)
        gr = _grads(model, loss)
        losses.append(loss.item())
        grads.append(torch.cat([gr[k].flatten() for k in sorted(gr)]))
    return torch.tensor(losses, dtype=torch.float64), torch.stack(grads).double()


def _z_against_exact(draws, exact):
    """Largest |z| of the mean of the draws (n × k) against a known value (k), per column."""
    z = (draws.mean(0) - exact) / (draws.var(0) / draws.shape[0]).sqrt()
    return z.abs().max().item()


def test_decoder_sample_is_unbiased_for_loss_and_gradients(params, monkeypatch):
    """`decoder_sample < 1` reads a uniform share of each decoded row, weighted dim/K: with ε fixed,
    the mean loss and gradient over column draws equal the reference's full objective (z-tests),
    single draws do differ from it, and the same test flags a draw that is not uniform."""
    model, ref, batch, noise = _setup(params, "dave-adv")
    sampled = _variant(model, decoder_sample=0.3)
    exact_loss = ref.joint_objective(batch, noise)
    g_exact = _grads(model, exact_loss)
    exact = torch.cat([g_exact[k].flatten() for k in sorted(g_exact)]).double()

    cols = sampled.decoded_columns(20, torch.Generator().manual_seed(0))
    assert cols.numel() == 6 and cols.unique().numel() == 6  # ⌈0.3·20⌉ distinct entries

    exact_loss = exact_loss.detach().double().reshape(1)
    losses, grads = _sampled_draws(sampled, batch, noise, 600)
    assert losses.std() > 1e-3 * exact_loss.abs().item()  # a draw is not the full sum
    assert _z_against_exact(losses.unsqueeze(1), exact_loss) < 4.0
    assert _z_against_exact(_project(grads), _project(exact)) < 4.5

    # negative control: columns drawn from the first half of each row only (a biased draw)
    def first_half(dim, generator):
        k = max(1, -(-3 * dim // 10))
        return torch.randperm(dim // 2, generator=generator)[:k]

    monkeypatch.setattr(sampled, "decoded_columns", first_half)
    bad_losses, bad_grads = _sampled_draws(sampled, batch, noise, 600)
    bad_z = _z_against_exact(bad_losses.unsqueeze(1), exact_loss)
    assert max(bad_z, _z_against_exact(_project(bad_grads), _project(exact))) > 6.0


def test_decoder_sample_one_is_the_exact_path(params):
    model, *_ = _setup(params, "dave")
    assert model.params["decoder_sample"] == 1.0
    assert model.decoded_columns(50, torch.Generator()) is None
