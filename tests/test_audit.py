"""`dave audit` on a tiny generated project run by DVC end to end: a committed result passes, a
changed byte is named, re-executed stages match (data byte for byte, CPU training exactly), a
stale commit is reported precisely, the studies, figures and report are traced like the runs,
a stage that never ran and a dirty working tree are named, and a fresh clone after `dvc pull`
audits clean and has nothing to reproduce."""

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
from dave_repro.audit.rerun import host_note, select
from dave_repro.audit.snapshot import dir_md5
from dave_repro.audit.verify import Run
from dave_repro.config import load_params
from dave_repro.data import synthetic
from dave_repro.errors import DaveError

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
    p = tiny_params(load_params(REPO / "params.yaml"), sums, epochs=1, models=["dave", "itempop"])
    p["sweeps"]["grid"]["embedding_dim"] = [8, 16]  # 16: a sweep point with its own run
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
        "noise",
        "preprocess",
        "report",
        "split",
        "train",
        "tsne",
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
    assert out.count("Re-run of") == 1, out  # the main run only, not the sweep point's
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


NOISE_CSV = "results/noise/ml-100k/dave-seed-0.csv"  # a study job's output, committed to git
SWEEP_POINT = "results/sweep-runs/ml-100k/dave/embedding_dim-16/seed-0"


def test_rerun_of_a_sweep_point_address_reruns_that_run_only(project):
    root, env = project
    rc, out = audit(root, env, "HEAD", "--rerun", "train@ml-100k/dave/embedding_dim-16/0")
    assert rc == 0, out
    assert out.count("Re-run of") == 1, out
    assert "Re-run of [" in out and "train ml-100k/dave/embedding_dim-16/seed-0" in out
    assert f"{SWEEP_POINT}/model.pt" in out and "DIFFERS" not in out
    rc, out = audit(root, env, "HEAD", "--rerun", "train@ml-100k/dave/embedding_dim-32/0")
    assert rc != 0
    assert "no train run of this commit has that address" in out
    assert "train@ml-100k/dave/0" in out and "train@ml-100k/dave/embedding_dim-16/0" in out


def test_studies_figures_and_report_are_traced_and_verified(project):
    root, env = project
    rc, out = audit(root, env, "HEAD", "--json", "audit.json")
    assert rc == 0, out
    rep = json.loads((root / "audit.json").read_text())
    stage = {r["id"]: r["manifest"]["stage"] for r in rep["runs"]}
    noise = [stage[i] for i in rep["results"][NOISE_CSV]]
    assert noise == ["noise", "train", "split", "preprocess", "download"], noise
    for result in ("results/report.md", "results/figures/noise.png", "results/tsne/ml-100k.csv"):
        assert stage[rep["results"][result][-1]] == "download", result
    report = {r["label"] for r in rep["runs"] if r["id"] in rep["results"]["results/report.md"]}
    assert {"report noise ml-100k", "noise ml-100k/dave/seed-0", "report figures"} <= report

    csv = root / NOISE_CSV
    original = csv.read_bytes()
    try:
        csv.write_bytes(original[:40] + bytes([original[40] ^ 1]) + original[41:])
        rc, out = audit(root, env, "HEAD")
        assert rc == 1, out
        assert f"{NOISE_CSV}: the working-tree copy differs from what the commit recorded" in out
        sh(root, "git", "commit", "-qam", "a study's output changed by hand")
        try:
            rc, out = audit(root, env, "HEAD")
            assert rc == 1, out
            manifest = NOISE_CSV.replace(".csv", ".manifest.json")
            assert f"{manifest}: output {NOISE_CSV} hashes to sha256" in out
            assert f"results/noise/ml-100k.manifest.json: input {NOISE_CSV} hashes to" in out
        finally:
            sh(root, "git", "reset", "-q", "--hard", "HEAD~1")
    finally:
        csv.write_bytes(original)
    assert audit(root, env, "HEAD")[0] == 0


def test_stages_that_never_ran_and_gaps_in_a_lineage_are_named(project):
    root, env = project
    lock = root / "dvc.lock"
    text = lock.read_text()
    assert "\n  report:\n" in text and text.index("\n  report:\n") > text.index("\n  figures:\n")
    lock.write_text(text[: text.index("\n  report:\n") + 1])  # the last stage, report, is gone
    sh(root, "git", "rm", "-q", "results/report.md", "results/report.manifest.json")
    sh(root, "git", "rm", "-q", NOISE_CSV.replace(".csv", ".manifest.json"))
    sh(root, "git", "rm", "-q", "results/tsne/ml-100k.manifest.json")
    sh(root, "git", "commit", "-qam", "the report never ran; two manifests never committed")
    try:
        rc, out = audit(root, env, "HEAD")
        assert rc == 1, out
        assert "dvc.lock: never ran: report (" in out
        assert f"{NOISE_CSV}: read by [" in out and "made by no stage run of this commit" in out
        assert "results/tsne/ml-100k.csv: in dvc.lock (stage studies@ml-100k), but no stage" in out
    finally:
        sh(root, "git", "reset", "-q", "--hard", "HEAD~1")
    assert audit(root, env, "HEAD")[0] == 0


def test_committed_copies_of_results_are_not_taken_for_runs(project):
    """A copy of a results folder (results/paper/) holds manifests that describe files at
    another place: they are not runs of the commit, and do not fail its audit."""
    root, env = project
    shutil.copytree(root / "results/noise/ml-100k", root / "results/paper/noise/ml-100k")
    sh(root, "git", "add", "results/paper")
    sh(root, "git", "commit", "-qm", "a copy of the noise study")
    try:
        rc, out = audit(root, env, "HEAD")
        assert rc == 0, out
        assert "1 committed manifest(s) away from the outputs they record" in out
        assert "results/paper/noise/ml-100k/dave-seed-0.manifest.json; --rerun" not in out
    finally:
        sh(root, "git", "reset", "-q", "--hard", "HEAD~1")


RECORDS = ("train.json", "train.manifest.json", "metrics.json", "ranks.parquet")


def test_a_committed_results_copy_is_audited_and_rerun_from_a_fresh_clone(project, tmp_path):
    """`dave audit <commit> --results results/paper --rerun train@...`: a copy of a run's records
    (no checkpoint, no data, no dvc.lock entry) is verified against its manifests, and its
    training re-made in a clone with nothing but the commit and the data's sources: the data
    re-made and checked against the recorded sha256, then weights and history identical."""
    root, env = project
    for stage_file in (*RECORDS, "evaluate.manifest.json"):
        src = root / "results/runs/ml-100k/dave/seed-0" / stage_file
        dst = root / "results/paper/runs/ml-100k/dave/seed-0" / stage_file
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    sh(root, "git", "add", "-f", "results/paper")
    sh(root, "git", "commit", "-qm", "a committed copy of one run's records")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(root), str(clone))
    try:
        rc, out = audit(clone, env, "HEAD", "--results", "results/paper")
        assert rc == 0, out
        assert "results copy results/paper/" in out and "train ml-100k/dave/seed-0" in out
        assert "checkpoints, curves, the data" in out
        rc, out = audit(
            clone, env, "HEAD", "--results", "results/paper", "--rerun", "train@ml-100k/dave/0"
        )
        assert rc == 0, out
        assert "its data re-made from the sources" in out
        assert "results/runs/ml-100k/dave/seed-0/model.pt" in out and "DIFFERS" not in out
        # negative control: one changed number in the copy's history is named
        hist = clone / "results/paper/runs/ml-100k/dave/seed-0/train.json"
        data = json.loads(hist.read_text())
        data["best_valid"] = 0.999
        hist.write_text(json.dumps(data))
        sh(clone, "git", "commit", "-qam", "an edited record")
        rc, out = audit(clone, env, "HEAD", "--results", "results/paper")
        assert rc == 1, out
        assert "results/runs/ml-100k/dave/seed-0/train.json hashes to sha256" in out
        rc, out = audit(clone, env, "HEAD", "--results", "results/nowhere")
        assert rc != 0 and "has no files there" in out
    finally:
        sh(root, "git", "reset", "-q", "--hard", "HEAD~1")


def test_a_dirty_working_tree_fails_unless_allowed(project):
    root, env = project
    params, extra = root / "params.yaml", root / "src/dave_repro/extra.py"
    text = params.read_text()
    try:
        assert "split_seed: 2024" in text
        params.write_text(text.replace("split_seed: 2024", "split_seed: 7"))
        extra.write_text("X = 1\n")
        (root / "notes.txt").write_text("not something the results depend on\n")
        rc, out = audit(root, env, "HEAD")
        assert rc == 1, out
        dirty = "in 2 file(s) the results depend on: params.yaml, src/dave_repro/extra.py"
        assert "DIRTY: the working tree differs from commit" in out and dirty in out
        assert "working tree: differs from the audited commit in params.yaml" in out
        assert "OK: commit" not in out
        for how in ({"args": ("--allow-dirty",)}, {"env": {"DAVE_AUDIT_ALLOW_DIRTY": "1"}}):
            rc, out = audit(root, {**env, **how.get("env", {})}, "HEAD", *how.get("args", ()))
            assert rc == 0, out
            assert dirty in out and "(working tree DIRTY, allowed)" in out
    finally:
        params.write_text(text)
        extra.unlink(missing_ok=True)
        (root / "notes.txt").unlink(missing_ok=True)
    rc, out = audit(root, env, "HEAD")
    assert rc == 0 and "DIRTY" not in out, out


# -- the pieces, without a pipeline -----------------------------------------------------------


def _run(i: int, path: str, **manifest) -> Run:
    return Run(i, path, {"fingerprint": str(i), **manifest})


def _train(i: int, where: str, seed: int = 0) -> Run:
    return _run(
        i,
        f"{where}/seed-{seed}/train.manifest.json",
        stage="train",
        dataset="ml-100k",
        model="dave",
        seed=seed,
    )


RUNS = [
    _train(1, "results/runs/ml-100k/dave"),
    _train(2, "results/runs/ml-100k/dave", seed=1),
    _train(3, "results/sweep-runs/ml-100k/dave/reading-per-entry"),
    _train(4, "results/sweep-runs/ml-100k/dave/embedding_dim-16"),
    _run(
        5, "results/noise/ml-100k.manifest.json", stage="report", report="noise", dataset="ml-100k"
    ),
    _run(
        6,
        "results/metrics/ml-100k.manifest.json",
        stage="report",
        report="metrics",
        dataset="ml-100k",
    ),
    _run(7, "results/tables/manifest.json", stage="report", report="tables"),
    _run(8, "results/report.manifest.json", stage="report", report="report"),
]


def test_a_run_address_selects_exactly_that_run():
    for run in RUNS:
        assert select(RUNS, run.spec) == [run], run.spec
    assert [r.spec for r in RUNS[:4]] == [
        "train@ml-100k/dave/0",
        "train@ml-100k/dave/1",
        "train@ml-100k/dave/reading-per-entry/0",
        "train@ml-100k/dave/embedding_dim-16/0",
    ]
    assert select(RUNS, "train@ml-100k/dave/seed-0") == [RUNS[0]]
    assert select(RUNS, "train@ml-100k/dave/reading-per-entry/seed-0") == [RUNS[2]]
    assert RUNS[2].label == "train ml-100k/dave/reading-per-entry/seed-0"
    # a leading part of addresses is a group: every run under it, the points' too
    assert select(RUNS, "train@ml-100k/dave") == RUNS[:4]
    assert select(RUNS, "train@ml-100k/dave/reading-per-entry") == [RUNS[2]]
    assert select(RUNS, "report@ml-100k") == RUNS[4:6]  # a dataset's reports, as before
    assert [r.spec for r in RUNS[4:]] == [
        "report@noise/ml-100k",
        "report@metrics/ml-100k",
        "report@tables",
        "report@write",
    ]


def test_an_unknown_or_ambiguous_address_is_an_error_listing_the_runs():
    with pytest.raises(DaveError) as err:
        select(RUNS, "train@ml-100k/dave/reading-mean/0")
    msg = str(err.value)
    assert "no train run of this commit has that address" in msg
    assert all(r.spec in msg for r in RUNS[:4]), msg
    with pytest.raises(DaveError, match="it has: report@noise/ml-100k, report@metrics"):
        select(RUNS, "report@figures")
    copy = _train(9, "results/runs/ml-100k/dave")
    with pytest.raises(DaveError, match="ambiguous, 2 train runs have that address"):
        select([*RUNS, copy], "train@ml-100k/dave/0")


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


def test_a_re_run_on_another_host_says_why_it_may_differ():
    run = _run(
        1,
        "results/runs/ml-100k/dave/seed-0/train.manifest.json",
        stage="train",
        dataset="ml-100k",
        model="dave",
        seed=0,
        environment={"platform": "Linux-a"},
    )
    note = host_note(run, "Linux-b")
    assert note and "Linux-a" in note and "Linux-b" in note and "provenance.md" in note
    assert host_note(run, "Linux-a") is None  # same host: a difference is a real difference
    split = _run(2, "data/splits/ml-100k/manifest.json", stage="split", dataset="ml-100k")
    assert host_note(split, "Linux-b") is None  # data stages must be byte-identical anywhere
