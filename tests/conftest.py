"""Shared fixtures: the real-data mirror (when present), generated data, small models."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the dense reference lives beside the benchmarks


def _mirror() -> Path | None:
    env = os.environ.get("DAVE_DATA_MIRROR")
    candidates = [Path(env)] if env and not env.startswith("http") else []
    candidates.append(REPO.parent / "shared" / "datasets")
    return next((c.resolve() for c in candidates if (c / "ml-100k").is_dir()), None)


MIRROR = _mirror()


@pytest.fixture(scope="session")
def mirror() -> Path | None:
    """The project's real-data mirror, or None where this machine has none."""
    return MIRROR


@pytest.fixture(scope="session")
def params() -> dict:
    from dave_repro.config import load_params

    return load_params(REPO / "params.yaml")


@pytest.fixture()
def fresh_params(params: dict) -> dict:
    return copy.deepcopy(params)


def random_train(
    n_users: int = 40, n_items: int = 30, density: float = 0.25, seed: int = 0
) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density).astype(np.float32)
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0  # nobody is empty
    return sp.csr_matrix(dense)


def small_dave_params(params: dict, model: str = "dave", **overrides) -> dict:
    p = copy.deepcopy(params["models"][model])
    p.pop("family")
    p.update(
        embedding_dim=8,
        batch_size=16,
        negative_ratio=2,
        encoder_hidden=[12],
        decoder_hidden=[12],
        discriminator_hidden=[6, 7],
        predictor_hidden=[5, 5],
        # the hand-computed cases are written for unweighted terms and D(x), whatever the
        # defaults select; a test that is about a reading sets it (reduction=..., etc.)
        reduction="mean",
        loss_weights={"reconstruction": 1.0, "regularizer": 1.0, "prediction": 1.0},
        discriminator_input="embedding",
    )
    p.update(overrides)
    return p


def tiny_params(
    params: dict, checksums: dict, *, epochs: int = 3, models=None, seeds=None, studies: bool = True
) -> dict:
    """params.yaml for a tiny workspace: small networks, a few epochs, generated ml-100k.

    ``studies=False`` studies no dataset (noise, t-SNE): engine tests that are not about the
    studies skip their jobs (test_pipeline_studies covers them end to end)."""
    p = copy.deepcopy(params)
    p["data"]["checksums"] = checksums
    p["datasets"] = ["ml-100k"]
    p["profile"] = "quick"
    prof = p["profiles"]["quick"]
    prof["models"] = models or ["dave", "dave-adv", "dave-aae", "itempop"]
    prof["seeds"] = seeds or [0]
    prof["train"].update(max_epochs=epochs, patience=epochs, max_train_pairs=None)
    p["hparams"]["ml-100k"] = {"batch_size": 64, "negative_ratio": 2, "embedding_dim": 8}
    for name in ("dave", "dave-adv", "dave-aae"):
        p["models"][name].update(
            encoder_hidden=[16],
            decoder_hidden=[16],
            discriminator_hidden=[8, 8],
            predictor_hidden=[8, 8],
            lr=3e-3,
            d_lr=1e-3,
        )
    p["train"]["progress"] = False
    p["train"]["num_threads"] = 1
    # the studies of Section 4.2, small; the sweep's points are the grid's own run (d 8, ratio 2)
    p["noise"]["levels"] = [0.1, 0.5, 0.9]
    p["tsne"].update(clusters=[2, 4], perplexity=10)
    p["sweeps"]["grid"] = {"embedding_dim": [8], "negative_ratio": [2]}
    prof.pop("sweep_grid", None)  # the tests set the grid through sweeps.grid
    p["noise"]["models"] = [m for m in p["noise"]["models"] if m in prof["models"]]
    if not studies:
        p["noise"]["datasets"] = []
        p["tsne"]["datasets"] = []
    return p


@pytest.fixture()
def tiny_workspace(tmp_path, monkeypatch, params):
    """A workspace with generated ml-100k-format data built, and a tiny params.yaml."""
    import yaml

    from dave_repro import config
    from dave_repro.data import synthetic
    from dave_repro.stages import data as stages

    monkeypatch.chdir(tmp_path)
    checksums = synthetic.write_mirror(tmp_path / "mirror", "ml-100k", n_users=120, n_items=300)
    monkeypatch.setenv("DAVE_DATA_MIRROR", str(tmp_path / "mirror"))
    p = tiny_params(params, checksums)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    cfg = config.dataset_config(p, "ml-100k")
    stages.download(cfg)
    stages.preprocess(cfg)
    stages.split(cfg)
    return tmp_path
