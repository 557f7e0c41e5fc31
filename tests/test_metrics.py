"""HR@k and NDCG@k on hand-computed ranks, and pessimistic tie-breaking in ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dave_repro.data.dataset import Split
from dave_repro.evaluation.metrics import hit_ratio, metrics_from_ranks, ndcg
from dave_repro.evaluation.ranking import full_ranks, sampled_ranks
from dave_repro.models.base import Recommender


def test_hit_ratio_and_ndcg_by_hand():
    ranks = np.array([1, 2, 5, 11, 100])
    assert hit_ratio(ranks, 1) == pytest.approx(1 / 5)
    assert hit_ratio(ranks, 5) == pytest.approx(3 / 5)
    assert hit_ratio(ranks, 10) == pytest.approx(3 / 5)
    assert hit_ratio(ranks, 20) == pytest.approx(4 / 5)
    expected10 = (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(6)) / 5
    assert ndcg(ranks, 10) == pytest.approx(expected10)
    assert ndcg(ranks, 1) == pytest.approx(1 / 5)
    m = metrics_from_ranks(ranks, [5, 10, 20])
    assert set(m) == {"hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20"}
    assert m["ndcg@20"] == pytest.approx(expected10 + (1 / math.log2(12)) / 5)


class FixedScores(Recommender):
    """Scores from a fixed table (users × items)."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__(table.shape[0], table.shape[1], {})
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.table[users]


def _split(train: np.ndarray, test_item, negatives) -> Split:
    return Split(
        sp.csr_matrix(train),
        np.asarray(test_item),
        np.asarray(test_item),
        np.asarray(negatives),
        np.asarray(negatives),
    )


def test_ties_are_pessimistic_so_a_constant_model_never_hits():
    n_users, n_items = 3, 120
    train = np.zeros((n_users, n_items), np.float32)
    negs = np.tile(np.arange(1, 100), (n_users, 1))
    split = _split(train, [0, 0, 0], negs)
    model = FixedScores(np.zeros((n_users, n_items)))
    ranks = sampled_ranks(model, split, "test")
    assert (ranks == 100).all()
    assert hit_ratio(ranks, 10) == 0.0
    assert (full_ranks(model, split, "test") == n_items).all()


def test_sampled_and_full_ranks_by_hand():
    # user 0: held-out item 2 scores 0.5; negatives 3,4,5 score 0.9, 0.5 (tie), 0.1
    scores = np.array([[0.0, 0.95, 0.5, 0.9, 0.5, 0.1, 0.7]])
    train = np.array([[0, 1, 0, 0, 0, 0, 0]], np.float32)  # item 1 is a training item
    split = Split(
        sp.csr_matrix(train),
        np.array([2]),
        np.array([2]),
        np.array([[3, 4, 5]]),
        np.array([[3, 4, 5]]),
    )
    model = FixedScores(scores)
    assert sampled_ranks(model, split, "test").tolist() == [3]  # 0.9 and the tie rank ahead
    # full: candidates are items 0,2,3,4,5,6 (item 1 is in training); ahead: 3 (0.9), 6 (0.7), 4 (tie)
    assert full_ranks(model, split, "test").tolist() == [4]


def test_non_finite_scores_are_an_error():
    from dave_repro.errors import TrainingError

    split = _split(np.zeros((1, 5), np.float32), [0], [[1, 2]])
    with pytest.raises(TrainingError, match="non-finite"):
        sampled_ranks(FixedScores(np.array([[np.nan, 1, 2, 3, 4]])), split, "test")
