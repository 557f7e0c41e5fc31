"""Both engines end to end on a tiny generated dataset (and the real ml-100k data layer):
content caching (a re-run does nothing), per-model and per-dataset invalidation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import MIRROR, REPO, tiny_params

from dave_repro.data import synthetic

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def sh(
    cwd: Path, *cmd: str, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    full_env.pop("DAVE_PARAMS", None)
    proc = subprocess.run(list(cmd), cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def make_project(root: Path, p: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "workflow", root / "workflow")
    # dvc.yaml tracks the source it runs (the package itself is imported from the install)
    shutil.copytree(
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "t@example.com")
    sh(root, "git", "config", "user.name", "t")
    sh(root, "dvc", "init", "-q")
    sh(root, "dvc", "config", "core.analytics", "false")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "init")
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def tiny_project(tmp_path, params):
    mirror = tmp_path / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=80, n_items=300)
    sums.update(synthetic.write_mirror(mirror, "pinterest", n_users=70, n_items=300, seed=5))
    p = tiny_params(params, sums, epochs=1, models=["dave", "dave-adv", "itempop"], studies=False)
    root = make_project(tmp_path / "proj", p)
    return root, {"DAVE_DATA_MIRROR": str(mirror)}


def test_snakemake_builds_the_real_data_layer_from_nothing(tmp_path, params):
    if MIRROR is None:
        mirror = tmp_path / "mirror"
        p = tiny_params(params, synthetic.write_mirror(mirror, "ml-100k"))
    else:
        mirror, p = MIRROR, params
    root = make_project(tmp_path / "proj", p)
    sh(
        root,
        "snakemake",
        "--cores",
        "2",
        "data/processed/ml-100k/negatives_test.parquet",
        env={"DAVE_DATA_MIRROR": str(mirror)},
    )
    stats = json.loads((root / "data/processed/ml-100k/stats.json").read_text())
    if MIRROR is not None:
        assert (stats["interactions"], stats["users"], stats["items"]) == (100_000, 943, 1_682)
    for f in (
        "train.parquet",
        "valid.parquet",
        "test.parquet",
        "negatives_valid.parquet",
        "train_csr.npz",
    ):
        assert (root / "data/processed/ml-100k" / f).is_file()


def test_snakemake_grid_caching_and_per_model_invalidation(tiny_project):
    root, env = tiny_project
    sh(root, "snakemake", "--cores", "2", "results/tables", env=env)
    summary = (root / "results/tables/summary.md").read_text()
    assert "DAVE" in summary and "DAVE-adv" in summary and "ItemPop" in summary
    assert (root / "results/tables/datasets.md").is_file()
    dry = sh(root, "snakemake", "-n", "results/tables", env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    manifest = lambda m: root / f"results/runs/ml-100k/{m}/seed-0/train.manifest.json"  # noqa: E731
    before = {m: digest(manifest(m)) for m in ("dave", "dave-adv", "itempop")}
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["models"]["dave-adv"]["lr"] = 1e-3
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    dry = sh(root, "snakemake", "-n", "results/tables", env=env)
    jobs = dry.stdout + dry.stderr
    assert "train" in jobs and "wildcards: dataset=ml-100k, model=dave-adv, seed=0" in jobs
    assert "model=dave," not in jobs and "model=itempop" not in jobs
    sh(root, "snakemake", "--cores", "2", "results/tables", env=env)
    after = {m: digest(manifest(m)) for m in before}
    assert after["dave"] == before["dave"] and after["itempop"] == before["itempop"]
    assert after["dave-adv"] != before["dave-adv"]


def test_dvc_repro_end_to_end_then_up_to_date_then_one_model(tiny_project):
    root, env = tiny_project
    sh(root, "dvc", "repro", env=env)
    assert (root / "results/tables/summary.csv").is_file() and (
        root / "results/metrics/ml-100k.json"
    ).is_file()
    again = sh(root, "dvc", "repro", env=env)
    assert "up to date" in again.stdout.lower()
    metrics = sh(root, "dvc", "metrics", "show", env=env)
    assert "results/metrics/ml-100k.json" in metrics.stdout
    manifest = lambda m: root / f"results/runs/ml-100k/{m}/seed-0/train.manifest.json"  # noqa: E731
    before = {m: digest(manifest(m)) for m in ("dave", "dave-adv", "itempop")}
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["models"]["dave"]["d_lr"] = 5e-4
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh(root, "dvc", "repro", env=env)
    after = {m: digest(manifest(m)) for m in before}
    assert after["dave-adv"] == before["dave-adv"] and after["itempop"] == before["itempop"]
    assert after["dave"] != before["dave"]


def test_one_datasets_parameter_reruns_that_dataset_only(tiny_project):
    root, env = tiny_project
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["datasets"] = ["ml-100k", "pinterest"]
    p["hparams"]["pinterest"] = p["hparams"]["ml-100k"]
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    targets = ["data/processed/ml-100k/train_csr.npz", "data/processed/pinterest/train_csr.npz"]
    # DVC
    sh(root, "dvc", "repro", "split@ml-100k", "split@pinterest", env=env)
    # Snakemake on the same workspace (it has no metadata of DVC's runs: its key files decide)
    sh(root, "snakemake", "--cores", "2", *targets, env=env)
    p["data"]["pinterest"]["min_user_interactions"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    status = sh(
        root, "dvc", "status", "--with-deps", "split@ml-100k", "split@pinterest", env=env
    ).stdout
    assert "preprocess@pinterest" in status
    assert not any(f"{stage}@ml-100k" in status for stage in ("download", "preprocess", "split"))
    dry = sh(root, "snakemake", "-n", *targets, env=env)
    out = dry.stdout + dry.stderr

    assert "dataset=pinterest" in out and "dataset=ml-100k" not in out
