"""What docs/extending.md promises: a new model family is one module plus one params.yaml entry,
a new dataset one registry entry plus its params.yaml entries, and both run through train,
evaluate and the tables with nothing else edited. Each test copies the project, adds only those,
and runs the copy's own package (PYTHONPATH) through the ``dave`` command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tiny_params
from test_pipeline import make_project

from dave_repro.data import synthetic

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

TOY_MODULE = '''"""A toy family: matrix factorisation on (user, item, label) pairs, cross-entropy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..training.sampling import PairBatch, pair_batches
from .base import Recommender
from .nets import step
from .specs import POSITIVE, Family, Int, Map

FAMILY = Family(
    name="toy-mf",
    schema=Map(
        {"factors": Int(min=1), "lr": POSITIVE, "batch_size": Int(min=1), "ratio": Int(min=1)}
    ),
    cls="ToyMF",
    reads_vectors=False,
    models={"toy-mf": "ToyMF"},
)


class ToyMF(Recommender):
    def __init__(self, n_users: int, n_items: int, params: dict[str, Any]) -> None:
        super().__init__(n_users, n_items, params)
        self.user = nn.Embedding(n_users, params["factors"])
        self.item = nn.Embedding(n_items, params["factors"])
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"mf": torch.optim.Adam(self.parameters(), lr=self.params["lr"])}

    def batches(
        self, train: sp.csr_matrix, epoch_rng: np.random.Generator, max_pairs: int | None
    ) -> Iterator[PairBatch]:
        p = self.params
        yield from pair_batches(train, p["ratio"], p["batch_size"], epoch_rng, max_pairs, self.device)

    def train_step(self, batch: PairBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        logit = (self.user(batch.users) * self.item(batch.items)).sum(-1)
        loss = F.binary_cross_entropy_with_logits(logit, batch.labels)
        step(self.optimizers()["mf"], loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users) @ self.item.weight.T
'''


def dave(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The copy's own ``dave`` (its src/ first on the path), as a user would run it."""
    full = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),
        **env,
    }
    full.pop("DAVE_PARAMS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", *args],
        cwd=root,
        env=full,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        f"dave {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def _project(tmp_path: Path, params: dict, models: list[str]) -> tuple[Path, dict[str, str], dict]:
    mirror = tmp_path / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=60, n_items=200)
    p = tiny_params(params, sums, epochs=2, models=models, studies=False)
    p["readings"]["models"] = []
    root = make_project(tmp_path / "proj", p)
    return root, {"DAVE_DATA_MIRROR": str(mirror)}, p


def _table_row(table: Path, display: str) -> str:
    """The model's row of the sampled protocol (the table's first; the full ranking follows)."""
    rows = [line for line in table.read_text().splitlines() if line.startswith(f"| {display} ")]
    assert len(rows) == 2, f"{display} in {table}:\n{table.read_text()}"
    return rows[0]


def test_a_new_model_family_is_one_module_and_one_params_entry(tmp_path, params):
    root, env, p = _project(tmp_path, params, ["toy-mf", "itempop"])
    (root / "src/dave_repro/models/toy_mf.py").write_text(TOY_MODULE)
    p["models"]["toy-mf"] = {
        "family": "toy-mf",
        "factors": 8,
        "lr": 0.01,
        "batch_size": 64,
        "ratio": 2,
    }
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))

    out = dave(root, "check-params", env=env)  # its entry is checked against its schema
    assert "2 in the grid" in out.stdout
    dave(root, "data", "ml-100k", env=env)
    for model in ("toy-mf", "itempop"):
        dave(root, "run", "ml-100k", model, "0", env=env)
    dave(root, "report", "metrics", "ml-100k", env=env)
    dave(root, "report", "tables", env=env)

    run = root / "results/runs/ml-100k/toy-mf/seed-0"
    trained = json.loads((run / "train.json").read_text())
    assert trained["epochs_run"] == len(trained["history"]) == 2  # iterated, in the shared trainer
    manifest = json.loads((run / "train.manifest.json").read_text())
    assert "models/toy_mf.py" in manifest["code_modules"]  # its code hash covers it
    assert "models/dave.py" not in manifest["code_modules"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["sampled"]["hr@10"] <= 1.0
    row = _table_row(root / "results/tables/table-ml-100k.md", "ToyMF")
    assert "ItemPop" in (root / "results/tables/table-ml-100k.md").read_text()
    assert "[not in the paper]" in row  # no paper value beside a model the paper does not have


def test_a_new_dataset_is_one_registry_entry_and_its_params(tmp_path, params):
    root, env, p = _project(tmp_path, params, ["itempop"])
    mirror = Path(env["DAVE_DATA_MIRROR"])
    data = (mirror / "ml-100k" / "u.data").read_bytes()
    (mirror / "toy-movies").mkdir()
    (mirror / "toy-movies" / "ratings.tsv").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    registry = root / "src/dave_repro/data/registry.py"
    registry.write_text(
        registry.read_text()
        + f"""
REGISTRY["toy-movies"] = DatasetSpec(
    "toy-movies",
    "Toy Movies",
    (
        SourceForm(
            "plain",
            "a u.data-format file",
            (SourceFile("u.data", "ratings.tsv", None, "sha256:{digest}", {len(data)}),),
            canonical=True,
            reader="movielens_100k",
        ),
    ),
)
"""
    )
    p["datasets"] = ["toy-movies"]
    p["data"]["toy-movies"] = p["data"]["ml-100k"]
    p["hparams"]["toy-movies"] = p["hparams"]["ml-100k"]
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))

    dave(root, "check-params", env=env)
    dave(root, "data", "toy-movies", env=env)
    dave(root, "run", "toy-movies", "itempop", "0", env=env)
    dave(root, "report", "metrics", "toy-movies", env=env)
    dave(root, "report", "tables", env=env)

    table2 = (root / "results/tables/datasets.md").read_text()
    assert "Toy Movies" in table2
    assert (root / "results/tables/table-toy-movies.md").is_file()
    _table_row(root / "results/tables/table-toy-movies.md", "ItemPop")
    # the dataset is a wildcard value of both engines' rules, derived from the registry
    proc = subprocess.run(
        [str(BIN / "snakemake"), "-n", "results/metrics/toy-movies.json"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "src"), **env},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
