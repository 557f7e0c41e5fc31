"""A committed results copy that read files of another committed results folder (the readings
report of results/paper/ reads results/readings-runs/): the audit of the copy checks those files
against the sha256 its runs recorded, names the folder, and fails on a changed or missing file."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from dave_repro.audit.coverage import verify_inputs
from dave_repro.audit.snapshot import Snapshot
from dave_repro.audit.verify import Findings, Run, _beside_outputs


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _repo(tmp_path: Path, recorded: str) -> Path:
    root = tmp_path / "repo"
    (root / "results/other/runs").mkdir(parents=True)
    (root / "results/paper/readings").mkdir(parents=True)
    (root / "results/other/runs/a.json").write_text('{"hr@10": 0.8}')
    manifest = {
        "stage": "report",
        "fingerprint": "f",
        "inputs": {"results/other/runs/a.json": recorded, "results/nowhere/b.json": "0" * 64},
        "outputs": {"results/readings/x.csv": "1" * 64},
    }
    (root / "results/paper/readings/x.manifest.json").write_text(json.dumps(manifest))
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy")
    return root


def _audit_inputs(root: Path) -> Findings:
    snap = Snapshot(root, "HEAD", results_copy="results/paper")
    m = json.loads(snap.commit.read("results/readings/x.manifest.json"))
    found = Findings()
    verify_inputs([Run(1, "results/readings/x.manifest.json", m)], found, snap)
    return found


def test_files_of_another_committed_results_folder_are_checked_not_lost(tmp_path):
    sha = hashlib.sha256(b'{"hr@10": 0.8}').hexdigest()
    found = _audit_inputs(_repo(tmp_path, sha))
    assert any(
        "1 file(s) of another committed results folder, results/other/" in n for n in found.notes
    )
    # a file that no folder holds still stops the lineage
    assert len(found.failures) == 1 and found.failures[0].startswith("results/nowhere/b.json:")


def test_a_changed_file_of_another_folder_fails(tmp_path):
    found = _audit_inputs(_repo(tmp_path / "x", "2" * 64))
    assert any(
        f.startswith("results/other/runs/a.json:") and "changed after the run read it" in f
        for f in found.failures
    )
    assert not any("another committed results folder" in n for n in found.notes)


def test_a_manifest_beside_one_of_its_outputs_is_a_run_not_a_copy():
    # the metrics summary writes results/metrics/ and results/curves/: it is where it was made
    m = {"outputs": {"results/metrics/a.json": "x", "results/curves/a.json": "y"}}
    assert _beside_outputs("results/metrics/a.manifest.json", m)
    # a copy under results/paper/ describes files at results/...: not beside any of them
    assert not _beside_outputs("results/paper/metrics/a.manifest.json", m)
