"""The noise study's corruption (P§4) pinned: ones kept, exactly round(p·n) originals gone,
uniform over the unobserved entries, p = 0 is the clean model, same seed same corruption."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import random_train, small_dave_params

from dave_repro.data.dataset import Split
from dave_repro.models.dave import DAVE
from dave_repro.noise import corrupt_rows, corrupted_inputs, draw_levels, flips, noise_curve

STUDY = {"levels": [0.1, 0.3, 0.5, 0.7, 0.9], "mode": "uniform", "seed": 0}


def _rows(m: sp.csr_matrix) -> list[set[int]]:
    return [set(m.indices[m.indptr[i] : m.indptr[i + 1]].tolist()) for i in range(m.shape[0])]


def test_flips_round_half_up():
    assert [
        flips(5, 0.5),
        flips(5, 0.1),
        flips(10, 0.3),
        flips(15, 0.1),
        flips(7, 0.9),
        flips(0, 0.9),
    ] == [3, 1, 3, 2, 6, 0]
    assert (
        flips(30, 0.1) == 3 and flips(10, 0.7) == 7
    )  # float error (0.7 * 10 = 7.000000000000001) ignored


@pytest.mark.parametrize("level", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
def test_each_row_keeps_its_ones_and_loses_exactly_round_pn_originals(level):
    m = random_train(60, 40, density=0.2, seed=3)
    out, saturated = corrupt_rows(m, level, np.random.default_rng(1))
    assert saturated == 0 and out.shape == m.shape
    assert np.all(out.data == 1.0) and out.dtype == np.float32
    for before, after in zip(_rows(m), _rows(out), strict=True):
        n = len(before)
        assert len(after) == n  # the vector keeps its number of ones
        assert len(before - after) == flips(n, level)  # exactly round(p·n) originals gone
        assert len(after - before) == flips(n, level)  # as many new ones, all on unobserved entries
    assert out.has_sorted_indices


def test_new_ones_are_uniform_over_the_unobserved_entries():
    # 3000 copies of one row: 5 ones among 20 columns, level 0.4 -> 2 removed, 2 of the 15 zeros added
    row = np.zeros(20, dtype=np.float32)
    ones = [1, 4, 9, 10, 17]
    row[ones] = 1
    m = sp.csr_matrix(np.tile(row, (3000, 1)))
    out, _ = corrupt_rows(m, 0.4, np.random.default_rng(7))
    counts = np.asarray(out.sum(axis=0)).ravel()
    zeros = np.setdiff1d(np.arange(20), ones)
    expected_added = 3000 * 2 / 15
    expected_kept = 3000 * 3 / 5
    # binomial standard deviations: about 18 (added) and 27 (kept); 5 sigma bounds
    assert np.all(np.abs(counts[zeros] - expected_added) < 5 * np.sqrt(3000 * 2 / 15 * 13 / 15))
    assert np.all(np.abs(counts[ones] - expected_kept) < 5 * np.sqrt(3000 * 0.6 * 0.4))


def test_a_row_with_too_few_unobserved_entries_gains_all_of_them():
    dense = np.zeros((2, 10), dtype=np.float32)
    dense[0, :8] = 1  # 8 ones, 2 zeros; level 0.9 -> 7 removed, only 2 can be added
    dense[1, :2] = 1
    out, saturated = corrupt_rows(sp.csr_matrix(dense), 0.9, np.random.default_rng(0))
    r0 = _rows(out)[0]
    assert saturated == 1
    assert len(set(range(8)) - r0) == 7 and {8, 9} <= r0 and len(r0) == 3


def test_same_seed_same_corruption_and_sides_independent():
    train = random_train(50, 35, seed=2)
    a = corrupted_inputs(train, STUDY, run_seed=0, level=0.5)
    b = corrupted_inputs(train, STUDY, run_seed=0, level=0.5)
    c = corrupted_inputs(train, STUDY, run_seed=1, level=0.5)
    d = corrupted_inputs(train, {**STUDY, "seed": 9}, run_seed=0, level=0.5)
    for side in ("user", "item"):
        assert (a[side] != b[side]).nnz == 0
        assert (a[side] != c[side]).nnz > 0 and (a[side] != d[side]).nnz > 0
    # items' columns are corrupted on their own, not as the transpose of the corrupted rows
    assert (a["item"] != a["user"].T.tocsr()).nnz > 0
    assert (a["item"].sum(axis=1) == train.T.sum(axis=1)).all()


def test_heterogeneous_mode_gives_each_entity_its_own_level():
    train = random_train(80, 40, density=0.3, seed=4)
    ci = corrupted_inputs(train, {**STUDY, "mode": "heterogeneous"}, run_seed=0, level=None)
    levels = ci["user_levels"]
    assert set(np.unique(levels)) <= set(STUDY["levels"]) and len(np.unique(levels)) >= 3
    for before, after, lv in zip(_rows(train), _rows(ci["user"]), levels, strict=True):
        assert len(after) == len(before) and len(before - after) == flips(len(before), lv)
    drawn = draw_levels(10_000, [0.1, 0.9], np.random.default_rng(0))
    assert abs((drawn == 0.1).mean() - 0.5) < 0.03


def _split(train: sp.csr_matrix, n_neg: int = 9, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    dense = train.toarray()
    test, negs = [], []
    for u in range(train.shape[0]):
        free = np.flatnonzero(dense[u] == 0)
        pick = rng.choice(free, size=n_neg + 1, replace=False)
        test.append(pick[0])
        negs.append(pick[1:])
    test_a, negs_a = np.array(test), np.array(negs)
    return Split(
        train=train,
        valid_item=test_a,
        test_item=test_a,
        valid_negatives=negs_a,
        test_negatives=negs_a,
    )


def _dave(params, train):
    torch.manual_seed(0)
    m = DAVE(train.shape[0], train.shape[1], small_dave_params(params))
    m.set_inputs(train)
    m.eval()
    return m


def test_level_zero_gives_the_clean_predictions_and_noise_changes_them(params):
    train = random_train(40, 30, density=0.25, seed=0)
    split = _split(train)
    model = _dave(params, train)
    users = torch.arange(40)
    cand = torch.as_tensor(np.concatenate([split.test_item[:, None], split.test_negatives], axis=1))
    clean = model.score_candidates(users, cand).clone()
    ci = corrupted_inputs(train, STUDY, run_seed=0, level=0.0)
    model.set_inputs(ci["user"], item_vectors=ci["item"])
    assert torch.equal(model.score_candidates(users, cand), clean)
    noisy = corrupted_inputs(train, STUDY, run_seed=0, level=0.9)
    model.set_inputs(train, item_vectors=noisy["item"])  # only the items' columns corrupted
    assert not torch.allclose(model.score_candidates(users, cand), clean)


def test_noise_curve_rows_and_clean_inputs_restored(params):
    from dave_repro.evaluation.metrics import metrics_from_ranks
    from dave_repro.evaluation.ranking import sampled_ranks

    train = random_train(40, 30, density=0.25, seed=0)
    split = _split(train)
    model = _dave(params, train)
    clean = metrics_from_ranks(sampled_ranks(model, split, "test"), [5, 10])
    curve = noise_curve(model, split, {**STUDY, "levels": [0.5, 0.1]}, run_seed=0, ks=[5, 10])
    assert list(curve["level"]) == [0.0, 0.1, 0.5] and set(curve["group"]) == {"all"}
    assert list(curve.columns[:7]) == [
        "mode",
        "group",
        "level",
        "users",
        "saturated_users",
        "saturated_items",
        "hr@5",
    ]
    for k, v in clean.items():
        assert curve.iloc[0][k] == pytest.approx(v)
    assert (
        metrics_from_ranks(sampled_ranks(model, split, "test"), [5, 10]) == clean
    )  # inputs restored
    het = noise_curve(
        model, split, {**STUDY, "mode": "heterogeneous", "levels": [0.1, 0.9]}, 0, [10]
    )
    assert list(het["group"]) == ["all", "user level", "user level"]
    assert het.iloc[1]["users"] + het.iloc[2]["users"] == het.iloc[0]["users"] == 40
