"""DAVE's training step never makes the host wait for the device (issue 7, GPU).

On a GPU, reading a value back (``.item()``, ``float(t)``, ``int(t)``) or calling an op whose
output size depends on the data (``unique``, ``nonzero``, ``bincount``, a boolean mask,
``repeat_interleave`` without its size) makes the host wait for every kernel queued so far. These
are the same aten ops on a CPU, so the step runs here under a dispatch mode that records every op
it calls, and none may be one of them. The batch's data-dependent work belongs in
``DAVE.prepare``, on the host, and the test checks that it is found there (the recorder's
negative control).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_train, small_dave_params
from torch.utils._python_dispatch import TorchDispatchMode

from dave_repro.models.dave import DAVE, PreparedBatch
from dave_repro.training.sampling import pair_batches

aten = torch.ops.aten
WAITS = {  # ops that read a value back, or whose output size depends on the data
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten._unique.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.bincount.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
    aten.equal.default,
}


class Recorder(TorchDispatchMode):
    """Records every op that would make a GPU's host wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        repeat = (aten.repeat_interleave.Tensor, aten.repeat_interleave.self_Tensor)
        index = (aten.index.Tensor, aten.index_put_.default, aten.index_put.default)
        if func in WAITS:
            self.waits.append(str(func))
        elif func in repeat and kwargs.get("output_size") is None:
            self.waits.append(f"{func} without output_size")
        elif func in index and any(i is not None and i.dtype == torch.bool for i in args[1]):
            self.waits.append(f"{func} with a boolean mask")
        return func(*args, **kwargs)


def _model(params, name="dave", **overrides):
    train = random_train(n_users=60, n_items=45)
    torch.manual_seed(0)
    model = DAVE(train.shape[0], train.shape[1], small_dave_params(params, name, **overrides))
    model.set_inputs(train)
    return model, train


def _host_batch(train):
    return next(pair_batches(train, 2, 16, np.random.default_rng(0), None, torch.device("cpu")))


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("dave", {}),
        ("dave", {"decoder_sample": 0.5}),
        ("dave", {"discriminator_input": "embedding+input"}),
        ("dave-adv", {}),
        ("dave-aae", {}),
    ],
)
def test_train_step_never_waits_for_the_device(params, name, overrides):
    model, train = _model(params, name, **overrides)
    batches = model.batches(train, np.random.default_rng(0), None)
    first, second = next(batches), next(batches)
    assert isinstance(second, PreparedBatch)
    gen = torch.Generator().manual_seed(0)
    model.train_step(first, gen)  # the optimisers' state exists from here on
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with Recorder() as rec:
        logs = model.train_step(second, gen)
    assert rec.waits == []
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in logs.values())
    # the recorded step did its work: encoder, decoder and (where adversarial) D moved
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("user_vae.enc_in") for n in moved)
    assert any(n.startswith("item_vae.dec_out") for n in moved)
    if name != "dave-adv":
        assert any(n.startswith("user_d.") for n in moved)


def test_recorder_catches_the_data_dependent_work_of_prepare(params):
    """Negative control: the host-side preparation is exactly the work that would wait."""
    model, train = _model(params)
    batch = _host_batch(train)
    with Recorder() as rec:
        model.prepare(batch)
    assert any("unique" in w for w in rec.waits)
    with Recorder() as rec:  # and a step handed an unprepared batch does it inline
        model.train_step(batch, torch.Generator().manual_seed(0))
    assert any("unique" in w for w in rec.waits)


def test_prepared_and_inline_batches_give_the_same_step(params):
    out = []
    for prepare in (True, False):
        model, train = _model(params)
        batch = _host_batch(train)
        b = model.prepare(batch) if prepare else batch
        logs = model.train_step(b, torch.Generator().manual_seed(3))
        out.append(({k: float(v) for k, v in logs.items()}, model.state_dict()))
    assert out[0][0] == out[1][0]
    for k, v in out[0][1].items():
        assert torch.equal(v, out[1][1][k]), k
