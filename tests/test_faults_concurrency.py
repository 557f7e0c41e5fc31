"""Fault class: two runs on one workspace at once.

The first run is frozen (SIGSTOP) at a moment it holds its lock, so the overlap is certain, not
a race: the second run is refused at once with a message naming the artifact and exit code 3
(or, for a second Snakemake, Snakemake's own directory lock), writes nothing, and the first run,
resumed, completes with intact outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import tiny_params
from faults import BIN, dave, env_for, lock_held, lock_path, temporaries, wait_for

from dave_repro.data import split as split_module
from dave_repro.data import synthetic
from dave_repro.hashing import sha256_file
from dave_repro.locks import artifact_lock

pytestmark = pytest.mark.slow
DS = "ml-100k"


def files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def consistent(ws: Path, manifest: Path) -> bool:
    """Every output the manifest records hashes as recorded (the run finished as a whole)."""
    rec = json.loads(manifest.read_text())
    return all(sha256_file(ws / k) == v for k, v in rec["outputs"].items())


def holder_of(lock: Path) -> int | None:
    inode = lock.stat().st_ino if lock.exists() else None
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if inode and "->" not in f and f[1] == "FLOCK" and int(f[5].rsplit(":", 1)[1]) == inode:
            return int(f[4])
    return None


def refused(proc: subprocess.CompletedProcess | subprocess.Popen, err: str, key: str) -> None:
    assert proc.returncode == 3, err
    assert f"another run is writing {key} in this workspace" in err
    assert "did nothing" in err and "Traceback" not in err


def test_two_splits_of_one_dataset(tiny_workspace):
    ws = tiny_workspace
    d = ws / "data/processed" / DS
    p = yaml.safe_load((ws / "params.yaml").read_text())
    p["data"]["split_seed"] = 5  # the first run has real work to do
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    lock = lock_path(ws, f"processed/{DS}/split")
    first = dave(ws, "split", DS)
    assert wait_for(lambda: lock_held(lock, first.pid), 60, first), first.communicate()
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        before = files(d)
        second = dave(ws, "split", DS)
        _, err = second.communicate(timeout=60)
        refused(second, err, f"processed/{DS}/split")
        assert files(d) == before  # the second run wrote nothing
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert json.loads((d / "split.json").read_text())["split_seed"] == 5
    assert consistent(ws, d / "split.manifest.json") and temporaries(d) == []


def test_two_trainings_of_one_run(tiny_workspace):
    ws = tiny_workspace
    rd = ws / "results/runs" / DS / "dave" / "seed-0"
    lock = lock_path(ws, f"runs/{DS}/dave/seed-0/train")
    first = dave(ws, "train", DS, "dave", "0")
    # frozen while it writes its first checkpoint
    assert wait_for(lambda: lock_held(lock, first.pid), 60, first), first.communicate()
    wait_for(lambda: bool(temporaries(rd)), 60, first, every=0.0005)
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        before = files(rd)
        second = dave(ws, "run", DS, "dave", "0")
        _, err = second.communicate(timeout=120)
        refused(second, err, f"runs/{DS}/dave/seed-0/train")
        assert files(rd) == before
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert consistent(ws, rd / "train.manifest.json") and temporaries(rd) == []
    assert sorted(files(rd)) == ["model.pt", "train.json", "train.manifest.json"]


def test_a_lock_left_by_a_killed_run_does_not_block(tiny_workspace):
    ws = tiny_workspace
    lock = lock_path(ws, f"processed/{DS}/split")
    first = dave(ws, "split", DS, "--force")
    assert wait_for(lambda: lock_held(lock, first.pid), 60, first), first.communicate()
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    assert lock.exists() and not lock_held(lock)  # the file stays; the OS released the lock
    again = dave(ws, "split", DS, "--force")
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err


def test_in_process_lock_refuses_at_once_and_is_released(tmp_path, monkeypatch):
    from dave_repro.errors import WorkspaceLockedError

    monkeypatch.chdir(tmp_path)
    with artifact_lock("runs/x"):
        with pytest.raises(WorkspaceLockedError) as exc, artifact_lock("runs/x"):
            pass
        assert exc.value.exit_code == 3 and "runs/x" in str(exc.value)
    with artifact_lock("runs/x"):  # released by the first holder
        pass


# -- the engines: two Snakemakes, and DVC beside Snakemake ----------------------------------------


@pytest.fixture()
def project(tmp_path, params):
    from test_pipeline import make_project

    mirror = tmp_path / "mirror"
    sums = synthetic.write_mirror(mirror, DS, n_users=80, n_items=300)
    root = make_project(
        tmp_path / "proj", tiny_params(params, sums, epochs=2, models=["dave"], studies=False)
    )
    return root, env_for(root, DAVE_DATA_MIRROR=str(mirror))


def run(root: Path, env: dict, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=root, env=env, capture_output=True, text=True, timeout=600)


def test_snakemake_and_dvc_beside_a_running_snakemake(project):
    root, env = project
    d = root / "data/processed" / DS
    target = f"data/processed/{DS}/split.manifest.json"
    assert run(root, env, str(BIN / "snakemake"), "--cores", "1", target).returncode == 0
    old = files(d)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["data"]["split_seed"] = 5  # the first run below replaces every split output
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    first = subprocess.Popen(
        [str(BIN / "snakemake"), "--cores", "1", target],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lock = lock_path(root, f"processed/{DS}/split")
    assert wait_for(lambda: holder_of(lock) is not None, 300, first), first.communicate()
    job = holder_of(lock)  # the `dave split` job the first Snakemake started
    assert job is not None
    os.kill(job, signal.SIGSTOP)
    try:
        # a second Snakemake sees the running job's outputs marked incomplete and stops; told to
        # re-run them, it meets the first one's directory lock
        second = run(root, env, str(BIN / "snakemake"), "--cores", "1", target)
        assert second.returncode != 0 and "IncompleteFilesException" in second.stderr, second.stderr
        second = run(
            root, env, str(BIN / "snakemake"), "--cores", "1", "--rerun-incomplete", target
        )
        assert second.returncode != 0 and "Directory cannot be locked" in second.stderr, (
            second.stderr
        )
        # DVC knows nothing of Snakemake's lock: the per-artifact lock of `dave split` refuses it
        dvc = run(root, env, str(BIN / "dvc"), "repro", f"split@{DS}")
        out = dvc.stdout + dvc.stderr
        assert dvc.returncode != 0
        assert f"another run is writing processed/{DS}/split in this workspace" in out
        # each split output is the old complete file, or gone (DVC removes a stage's outputs
        # before running its command; see docs/reliability.md), never a partial one
        for name in (*split_module.OUTPUTS, "split.manifest.json"):
            assert not (d / name).exists() or (d / name).read_bytes() == old[name], name
    finally:
        os.kill(job, signal.SIGCONT)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    assert json.loads((d / "split.json").read_text())["split_seed"] == 5
    assert consistent(root, root / target) and temporaries(d) == []
    assert all((d / n).is_file() for n in split_module.OUTPUTS)
    # and once the first run is done, both engines proceed
    again = run(root, env, str(BIN / "dvc"), "repro", f"split@{DS}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert run(root, env, str(BIN / "snakemake"), "--cores", "1", target).returncode == 0
    assert json.loads((d / "split.json").read_text())["split_seed"] == 5


def test_an_output_removed_by_another_tool_mid_run_is_a_clear_error(tiny_workspace, monkeypatch):
    from dave_repro import config
    from dave_repro.errors import DaveError
    from dave_repro.stages import data as stages

    ws = tiny_workspace
    d = ws / "data/processed" / DS
    real_split = split_module.split

    def split_then_removed(*args, **kwargs):
        info = real_split(*args, **kwargs)
        (d / "train_csr.npz").unlink()  # e.g. `dvc repro` clearing the stage's outputs meanwhile
        return info

    monkeypatch.setattr(split_module, "split", split_then_removed)
    before = (d / "split.manifest.json").read_bytes()
    p = config.load_params(ws / "params.yaml")
    with pytest.raises(
        DaveError,
        match=r"split: output\(s\) data/processed/ml-100k/train_csr.npz "
        r"vanished before this run could record them",
    ):
        stages.split(config.dataset_config(p, DS), force=True)
    assert (d / "split.manifest.json").read_bytes() == before  # nothing recorded
    monkeypatch.setattr(split_module, "split", real_split)
    assert stages.split(config.dataset_config(p, DS)) is True  # the next run redoes it
