"""`dave audit` on a tiny generated project run by DVC end to end: a committed result passes, a
changed byte is named, re-executed stages match (data byte for byte, CPU training exactly), a
stale commit is reported precisely, and a fresh clone after `dvc pull` audits clean and has
nothing to reproduce."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, tiny_params
from test_pipeline import digest, make_project, sh

from dave_repro.audit.diff import describe
from dave_repro.audit.snapshot import dir_md5
from dave_repro.config import load_params
from dave_repro.data import synthetic

SPLIT_OUTPUTS = (
    "negatives_test.parquet",
    "negatives_valid.parquet",
    "split.json",
    "test.parquet",
    "train.parquet",
    "train_csr.npz",
    "valid.parquet",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A committed project whose pipeline ran (dvc repro) and was pushed to a local remote."""
    tmp = tmp_path_factory.mktemp("audit")
    sums = synthetic.write_mirror(tmp / "mirror", "ml-100k", n_users=60, n_items=200)
    p = tiny_params(
        load_params(REPO / "params.yaml"), sums, epochs=1, models=["dave", "itempop"], studies=False
    )
    root = make_project(tmp / "proj", p)
    for name in (".gitignore", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    sh(root, "dvc", "remote", "add", "-d", "shared", str(tmp / "remote"))
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "ignore rules and remote")
    # the project's own copy of the code runs (and leaves __pycache__ in src/, as a user's would)
    env = {"DAVE_DATA_MIRROR": str(tmp / "mirror"), "PYTHONPATH": str(root / "src")}
    sh(root, "dvc", "repro", env=env)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "results")
    sh(root, "dvc", "push", "-q", env=env)
    return root, env


def audit(root: Path, env: dict, *args: str):
    proc = sh(root, "dave", "audit", *args, env=env, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_audit_head_passes_and_traces_every_result(project):
    root, env = project
    rc, out = audit(root, env, "HEAD", "--json", "audit.json")
    assert rc == 0, out
    assert "OK: commit" in out
    rep = json.loads((root / "audit.json").read_text())
    assert rep["ok"] and not rep["failures"]
    assert all(a["source"] in ("cache", "git", "workspace") for a in rep["artifacts"].values())
    runs = {r["id"]: r for r in rep["runs"]}
    assert sorted({r["manifest"]["stage"] for r in runs.values()}) == [
        "download",
        "evaluate",
        "preprocess",
        "report",
        "split",
        "train",
    ]
    # every result, tables included, traces back to the raw download
    expected = {
        "results/metrics/ml-100k.json",
        "results/tables/summary.md",
        *(f"results/runs/ml-100k/{m}/seed-0/metrics.json" for m in ("dave", "itempop")),
    }
    assert expected <= set(rep["results"])
    for path in expected:
        stages = [runs[i]["manifest"]["stage"] for i in rep["results"][path]]
        assert stages[-1] == "download" and "split" in stages, (path, stages)
    train = next(r["manifest"] for r in runs.values() if r["label"] == "train ml-100k/dave/seed-0")
    assert (
        train["git"]["commit"]
        and train["environment"]["torch"]
        and train["environment"]["device"] == "cpu"
    )
    assert train["byproducts"], "the training curves are recorded"
    assert (
        "model_params" in train["params"] and "datasets" not in train["params"]
    )  # only what it used


def test_rerun_split_is_byte_identical(project):
    root, env = project
    rc, out = audit(root, env, "HEAD", "--rerun", "split")
    assert rc == 0, out
    for name in SPLIT_OUTPUTS:
        assert f"identical bytes: data/processed/ml-100k/{name}" in out


def test_rerun_reports_are_identical(project):
    root, env = project
    rc, out = audit(root, env, "HEAD", "--rerun", "report")
    assert rc == 0, out
    assert "identical bytes: results/metrics/ml-100k.json" in out
    assert "identical bytes: results/tables/summary.md" in out


def test_rerun_cpu_training_and_evaluation_give_identical_results(project):
    root, env = project
    rc, out = audit(root, env, "HEAD", "--rerun", "train@ml-100k/dave/0")
    assert rc == 0, out
    assert "Re-run of" in out and "train ml-100k/dave/seed-0" in out
    assert "results/runs/ml-100k/dave/seed-0/model.pt" in out and "DIFFERS" not in out
    rc, out = audit(root, env, "HEAD", "--rerun", "evaluate@ml-100k/itempop")
    assert rc == 0, out
    assert "identical bytes: results/runs/ml-100k/itempop/seed-0/metrics.json" in out


def _cache_object(root: Path, rel: str) -> Path:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    out = next(
        o
        for s in lock["stages"].values()
        for o in s.get("outs", [])
        if o["path"] == "results/runs/ml-100k"
    )
    listing = json.loads(
        (root / ".dvc/cache/files/md5" / out["md5"][:2] / out["md5"][2:]).read_text()
    )
    md5 = next(e["md5"] for e in listing if e["relpath"] == rel)
    return root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def test_a_changed_byte_is_named_and_fails(project):
    root, env = project
    obj = _cache_object(root, "dave/seed-0/model.pt")
    original = obj.read_bytes()
    obj.chmod(0o644)
    try:
        obj.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
        rc, out = audit(root, env, "HEAD")
        assert rc == 1, out
        assert (
            "results/runs/ml-100k/dave/seed-0/model.pt: DVC cache object" in out
            and "corrupted" in out
        )
    finally:
        obj.write_bytes(original)
    tracked = root / "results/metrics/ml-100k.json"
    text = tracked.read_text()
    try:
        tracked.write_text(text.replace("0", "1", 1))
        rc, out = audit(root, env, "HEAD")
        assert rc == 1 and "results/metrics/ml-100k.json: the working-tree copy differs" in out, out
    finally:
        tracked.write_text(text)
    assert audit(root, env, "HEAD")[0] == 0


def test_a_stale_commit_is_reported_precisely(project):
    root, env = project
    params = root / "params.yaml"
    p = yaml.safe_load(params.read_text())
    p["data"]["split_seed"] = 7
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    sh(root, "git", "commit", "-qam", "change the split seed without re-running")
    try:
        rc, out = audit(root, env, "HEAD", "--rerun", "split@ml-100k")
        assert rc == 1, out
        assert "params.yaml's data.split_seed is 7 in this commit" in out  # the lock is stale
        assert "params.split_seed: 2024 → 7" in out  # why the re-run differs
        assert "data/processed/ml-100k/negatives_test.parquet: not byte-identical" in out
        assert "split.json: not byte-identical to the recorded output: split_seed: 2024 → 7" in out
    finally:
        sh(root, "git", "reset", "-q", "--hard", "HEAD~1")


def test_fresh_clone_after_dvc_pull_audits_clean_with_nothing_to_reproduce(project, tmp_path):
    root, env = project
    commit = sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(root), str(clone))
    cenv = {**env, "PYTHONPATH": str(clone / "src")}
    sh(clone, "dvc", "pull", "-q", env=cenv)
    rc, out = audit(clone, cenv, commit)
    assert rc == 0, out
    manifests = sorted(clone.glob("results/runs/ml-100k/*/seed-0/*.manifest.json"))
    before = {m: digest(m) for m in manifests}
    repro = sh(clone, "dvc", "repro", env=cenv)
    assert "Data and pipelines are up to date." in repro.stdout, repro.stdout
    assert "Running stage" not in repro.stdout
    assert {m: digest(m) for m in manifests} == before
    assert sh(clone, "git", "status", "--porcelain").stdout == ""


# -- the pieces, without a pipeline -----------------------------------------------------------


def test_dir_md5_is_dvcs(tmp_path):
    """The directory hash the audit recomputes for `cache: false` outputs is DVC's own."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    entries = {"a/x.tsv": "0" * 32, "a-b/y.json": "1" * 32, "z.md": "2" * 32}
    tree = Tree()
    for rel, md5 in entries.items():
        tree.add(tuple(rel.split("/")), Meta(), HashInfo("md5", md5))
    tree.digest()
    assert dir_md5(entries) == tree.hash_info.value


def test_differences_are_described_precisely(tmp_path):
    a = json.dumps({"sampled": {"hr@10": 0.5}, "seconds": 1.0}).encode()
    b = json.dumps({"sampled": {"hr@10": 0.25}, "seconds": 2.0}).encode()
    assert describe("m.json", a, b) == ["sampled.hr@10: 0.5 → 0.25", "seconds: 1.0 → 2.0"]
    assert describe("m.json", a, b, frozenset({"seconds"})) == ["sampled.hr@10: 0.5 → 0.25"]

    def parquet(items):
        pd.DataFrame({"user": [0, 1, 2], "item": items}).to_parquet(
            tmp_path / "f.parquet", index=False
        )
        return (tmp_path / "f.parquet").read_bytes()

    assert describe("t.parquet", parquet([5, 6, 7]), parquet([5, 9, 7])) == [
        "column item: 1 of 3 rows differ, first row 1: 6 → 9"
    ]

    def npz(indices):
        np.savez(tmp_path / "f.npz", indices=np.array(indices, dtype=np.int32))
        return (tmp_path / "f.npz").read_bytes()

    assert describe("c.npz", npz([1, 2, 3]), npz([1, 2, 4])) == [
        "indices: 1 of 3 entries differ, first at [2]: 3 → 4"
    ]
    assert describe("s.md", b"a\nb\nc\n", b"a\nB\nc\n") == ["line 2: 'b' → 'B'"]
    assert describe("x.bin", b"\x00\x01\x02", b"\x00\x01\x03") == [
        "3 bytes → 3 bytes, first difference at byte 2"
    ]
