"""The two engines agree: on a workspace either has brought up to date (also a fresh clone after
`dvc pull`, whose file times are DVC's), the other plans nothing and a real run changes no byte;
and a failing job's error reaches the console, not only its log in logs/."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, tiny_params
from test_pipeline import make_project, sh

from dave_repro import engine
from dave_repro.data import synthetic

TARGETS = ("results/tables", "results/figures", "results/report.md")
NOTHING = "Nothing to be done"


def contents(root: Path) -> dict[str, str]:
    """sha256 of every artifact (what DVC and git version), by path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for top in ("data", "results")
        for p in sorted((root / top).rglob("*"))
        if p.is_file()
    }


def planned(root: Path, env: dict) -> str:
    dry = sh(root, "snakemake", "-n", *TARGETS, env=env)
    return dry.stdout + dry.stderr


def assert_current_for_both(root: Path, env: dict) -> None:
    """Snakemake plans nothing, runs nothing (no byte changes), and DVC and the audit agree."""
    assert NOTHING in planned(root, env)
    before = contents(root)
    sh(root, "snakemake", "--cores", "2", *TARGETS, env=env)
    assert contents(root) == before
    assert "up to date" in sh(root, "dvc", "status", env=env).stdout
    assert "Running stage" not in sh(root, "dvc", "repro", "--dry", env=env).stdout
    sh(root, "dave", "audit", "HEAD", env=env)  # exits non-zero on any changed byte


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, params):
    """A tiny project after `dvc repro`, committed and pushed to a local remote."""
    tmp = tmp_path_factory.mktemp("agree")
    mirror = tmp / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=80, n_items=300)
    p = tiny_params(params, sums, epochs=1, models=["dave", "itempop"], studies=False)
    root = make_project(tmp / "proj", p)
    for name in (".gitignore", ".dvcignore"):  # engine state (.dave/, .snakemake/) stays out
        shutil.copy(REPO / name, root / name)
    env = {"DAVE_DATA_MIRROR": str(mirror)}
    repro = sh(root, "dvc", "repro", env=env)
    sh(root, "dvc", "remote", "add", "-d", "tmp", str(tmp / "remote"))
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "dvc repro")
    sh(root, "dvc", "push", "-q", env=env)
    return root, env, repro.stdout + repro.stderr


@pytest.mark.slow
def test_after_dvc_repro_snakemake_plans_nothing_and_changes_no_byte(reproduced):
    root, env, console = reproduced
    # every job's lines reach DVC's console, each saying which stage, dataset and model
    assert "[train ml-100k/dave/seed-0] training on" in console
    assert "[train ml-100k/dave/seed-0] epoch 0 (1/1):" in console
    assert "[download ml-100k]" in console
    assert_current_for_both(root, env)
    # a changed parameter re-runs exactly the jobs that use it
    params = root / "params.yaml"
    original = params.read_text()
    p = yaml.safe_load(original)
    p["models"]["dave"]["lr"] = 1e-3
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    jobs = planned(root, env)
    assert "model=dave, seed=0" in jobs and "model=itempop" not in jobs
    assert "rule split:" not in jobs and "rule download:" not in jobs
    # and what DVC re-runs for a parameter leaves Snakemake nothing to do
    p = yaml.safe_load(original)
    p["data"]["split_seed"] += 1
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    jobs = planned(root, env)
    assert "rule split:" in jobs and "rule download:" not in jobs
    sh(root, "dvc", "repro", env=env)
    assert NOTHING in planned(root, env)


@pytest.mark.slow
def test_snakemake_declares_every_file_a_stage_writes(reproduced):
    """A file a job writes but its rule does not declare is neither protected nor planned by
    Snakemake (the metrics stage's per-model files and curves table once were)."""
    root, env, _ = reproduced
    summary = sh(root, "snakemake", "--summary", *TARGETS, env=env).stdout
    declared = {line.split("\t")[0] for line in summary.splitlines()[1:] if line.strip()}
    # the raw files are named per dataset by the data registry, not by a pattern: the download
    # rule declares its manifest, which stands for them (preprocess consumes the manifest)
    download = (root / "data" / "raw").rglob("manifest.json")
    assert all(m.relative_to(root).as_posix() in declared for m in download)
    written = {
        out
        for top in ("data/processed", "results")
        for manifest in (root / top).rglob("*manifest.json")
        for out in json.loads(manifest.read_text()).get("outputs", {})
    }
    assert any(w.startswith("results/metrics/compact/") for w in written)
    undeclared = {
        w for w in written if not any(p in declared for p in (w, *map(str, Path(w).parents)))
    }
    assert not undeclared, f"written but not declared by any rule: {sorted(undeclared)}"


@pytest.mark.slow
def test_a_fresh_clones_dry_run_prints_every_stage_and_changes_nothing(reproduced, tmp_path):
    """On a fresh clone plain `dvc repro --dry` stops at the first stage whose input is not there
    yet (DVC hashes it for its run cache: treeverse/dvc#9818); with --force it skips that lookup
    and prints the whole plan, which on a fresh clone is every stage (README, Preview)."""
    root, env, _ = reproduced
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(root), str(clone))
    before = contents(clone)  # the committed results (cache: false) are in the clone
    dry = sh(clone, "dvc", "repro", "--dry", "--force", env=env)
    stages = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        shown = [name] if "foreach" not in stage else [f"{name}@ml-100k"]
        for s in shown:
            assert f"Running stage '{s}'" in dry.stdout, s
    assert contents(clone) == before


@pytest.mark.slow
def test_a_fresh_clone_after_dvc_pull_is_current_for_both_engines(reproduced, tmp_path):
    root, env, _ = reproduced
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(root), str(clone))
    sh(clone, "dvc", "pull", "-q", env=env)
    assert_current_for_both(clone, env)


@pytest.mark.slow
def test_a_failing_jobs_error_reaches_the_console(tmp_path, params):
    mirror = tmp_path / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=80, n_items=300)
    sums = {name: "sha256:" + "0" * 64 for name in sums}  # every pinned checksum wrong
    root = make_project(tmp_path / "proj", tiny_params(params, sums, studies=False))
    target = "data/raw/ml-100k/manifest.json"
    env = {"DAVE_DATA_MIRROR": str(mirror)}
    run = sh(root, "snakemake", "--cores", "1", target, env=env, check=False)
    assert run.returncode != 0
    console = run.stdout + run.stderr
    assert "[download ml-100k] checksum mismatch for ml-100k/" in console
    assert "checksum mismatch" in (root / "logs/download/ml-100k.log").read_text()


def write_manifest(path: Path, **record) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_a_current_jobs_key_file_and_manifest_trigger_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out.bin").write_bytes(b"x")
    manifest = write_manifest(tmp_path / "job.manifest.json", key="k1", outputs={"out.bin": "h"})
    key = Path(engine.key_file("train", "k1", "ds", manifest=str(manifest)))
    assert key.stat().st_mtime == manifest.stat().st_mtime == engine.KEPT
    assert key.stat().st_mtime < Path("out.bin").stat().st_mtime  # older than any output


def test_a_key_the_manifest_does_not_record_runs_the_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = write_manifest(tmp_path / "job.manifest.json", key="k1", outputs={})
    old = os.stat(manifest).st_mtime
    key = Path(engine.key_file("train", "k2", "ds", manifest=str(manifest)))
    assert key.stat().st_mtime > time.time() - 60  # now: newer than the job's outputs
    assert manifest.stat().st_mtime == old  # a stale job's manifest keeps its time
    assert not engine.is_current(tmp_path / "missing.manifest.json", None)


def test_an_input_its_producer_has_rewritten_since_makes_the_reader_stale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("in.csv", "out.csv"):
        Path(name).write_text(name)
    write_manifest(tmp_path / "in.manifest.json", outputs={"in.csv": "new"})
    reader = write_manifest(
        tmp_path / "out.manifest.json", inputs={"in.csv": "old"}, outputs={"out.csv": "h"}
    )
    assert not engine.is_current(reader, None)
    write_manifest(tmp_path / "in.manifest.json", outputs={"in.csv": "old"})
    assert engine.is_current(reader, None)
    Path("out.csv").unlink()  # an output it records is gone
    assert not engine.is_current(reader, None)


def test_each_data_file_maps_to_the_manifest_of_the_job_that_writes_it():
    assert engine.manifests_for(
        [
            "data/raw/{dataset}/manifest.json",
            "data/processed/{dataset}/stats.json",
            "data/processed/{dataset}/train_csr.npz",
            "data/processed/{dataset}/valid.parquet",
            "results/runs/ml-100k/dave/seed-0/train.json",
            "results/runs/ml-100k/dave/seed-0/ranks.parquet",
            "results/noise/ml-100k/dave-seed-0.csv",
            "results/metrics/ml-100k.json",
        ]
    ) == [
        "data/raw/{dataset}/manifest.json",
        "data/processed/{dataset}/preprocess.manifest.json",
        "data/processed/{dataset}/split.manifest.json",
        "results/runs/ml-100k/dave/seed-0/train.manifest.json",
        "results/runs/ml-100k/dave/seed-0/evaluate.manifest.json",
        "results/noise/ml-100k/dave-seed-0.manifest.json",
        "results/metrics/ml-100k.manifest.json",
    ]
