"""The sparse input layer equals the dense product it replaces, in value and in gradient."""

from __future__ import annotations

import scipy.sparse as sp
import torch

from dave_repro.models.nets import CSRStore, SparseLinear


def _rows_and_dense():
    # rows 1 and 4 empty, column 5 in no row, column 2 in four rows; rows gathered out of order
    # and one of them twice, as a batch of distinct ids never does but a caller might
    m = sp.csr_matrix(
        [
            [1, 0, 1, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 1, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, 0, 0, 0, 0],
        ],
        dtype="float32",
    )
    ids = torch.tensor([3, 1, 0, 5, 2, 4, 3])
    rows = CSRStore.from_scipy(m).rows(ids)
    return rows, torch.as_tensor(m.toarray())[ids]


def test_forward_and_weight_gradient_equal_the_dense_product():
    torch.manual_seed(0)
    rows, dense = _rows_and_dense()
    layer = SparseLinear(7, 5)
    out = layer(rows)
    expected = dense @ layer.weight + layer.bias
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(out)
    out.backward(g)
    torch.testing.assert_close(layer.weight.grad, dense.t() @ g)
    torch.testing.assert_close(layer.bias.grad, g.sum(0))
    assert torch.count_nonzero(layer.weight.grad[5]) == 0  # a column in no row gets no gradient


def test_gradient_matches_pytorch_embedding_bag_on_real_sized_batch():
    torch.manual_seed(1)
    m = sp.random(300, 800, density=0.05, format="csr", random_state=0, dtype="float32")
    m.data[:] = 1.0
    rows = CSRStore.from_scipy(m).rows(torch.randperm(300)[:128])
    layer = SparseLinear(800, 16)
    w = layer.weight.detach().clone().requires_grad_(True)
    g = torch.randn(128, 16)
    layer(rows).backward(g)
    torch.nn.functional.embedding_bag(rows.indices, w, rows.offsets, mode="sum").backward(g)
    torch.testing.assert_close(layer.weight.grad, w.grad)


def test_no_grad_path_gives_the_same_output():
    rows, _ = _rows_and_dense()
    layer = SparseLinear(7, 3)
    with torch.no_grad():
        a = layer(rows)
    torch.testing.assert_close(a, layer(rows).detach())


def test_trailing_unused_columns_and_an_empty_batch():
    m = sp.csr_matrix([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype="float32")
    store = CSRStore.from_scipy(m)
    layer = SparseLinear(4, 3)
    for ids in (torch.tensor([0, 1]), torch.tensor([2, 2])):  # the second holds no entry at all
        layer.zero_grad()
        out = layer(store.rows(ids))
        g = torch.randn_like(out)
        out.backward(g)
        dense = torch.as_tensor(m.toarray())[ids]
        torch.testing.assert_close(layer.weight.grad, dense.t() @ g)
