"""Fault class: a stage killed at any moment.

``dave split`` and ``dave train`` are killed (SIGKILL, and SIGTERM) at seeded random moments and
at the worst moment (while a temporary file is being written). Afterwards every output is
either the old complete file or the new complete file, byte for byte, never a partial one; a
manifest that claims the new outputs is only ever beside all of them; and the next run recovers
by itself: it removes the ``.tmp-*`` leftovers and ends with exactly what an uninterrupted run
gives.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from faults import dave, lock_held, lock_path, root_logging_restored, temporaries, wait_for

from dave_repro import atomic, cli, config
from dave_repro.data import split as split_module
from dave_repro.hashing import sha256_file
from dave_repro.layout import run_dir
from dave_repro.stages import data as stages
from dave_repro.stages.evaluate import evaluate as evaluate_stage
from dave_repro.stages.train import train as train_stage
from dave_repro.training import checkpoint

pytestmark = pytest.mark.slow
DS = "ml-100k"
SPLIT_FILES = (*split_module.OUTPUTS, "split.manifest.json")


def set_split_seed(ws: Path, seed: int) -> dict:
    p = yaml.safe_load((ws / "params.yaml").read_text())
    p["data"]["split_seed"] = seed
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return p


def load_each(d: Path) -> None:
    """Every output present is a complete, loadable file."""
    for name in split_module.OUTPUTS:
        f = d / name
        if not f.exists():
            continue
        if name.endswith(".parquet"):
            pd.read_parquet(f)
        elif name.endswith(".npz"):
            sp.load_npz(f)
        else:
            json.loads(f.read_text())


def kill_at(
    proc: subprocess.Popen,
    lock: Path,
    sig: int,
    moment: float | str | tuple,
    d: Path,
    outputs: tuple[str, ...] = (),
) -> None:
    """Send ``sig`` once ``proc`` holds ``lock`` and then: ``moment`` seconds passed; or (for
    "writing") the first time a temporary file shows up in ``d``; or (for ("after", k)) as soon
    as k of ``outputs`` have been renamed into place; or (for ("renewed", name, s)) s seconds
    after this run first replaced ``name``."""
    assert wait_for(lambda: lock_held(lock, proc.pid), 60, proc), proc.communicate()
    if moment == "writing":
        wait_for(lambda: bool(temporaries(d)), 60, proc, every=0.0002)
    elif isinstance(moment, tuple) and moment[0] == "after":
        before = {n: _inode(d / n) for n in outputs}
        wait_for(
            lambda: sum(_inode(d / n) != before[n] for n in outputs) >= moment[1],
            60,
            proc,
            every=0.0002,
        )
    elif isinstance(moment, tuple):  # ("renewed", name, delay): once this run replaced `name`
        first = _inode(d / moment[1])
        wait_for(lambda: _inode(d / moment[1]) not in (first, None), 120, proc, every=0.001)
        time.sleep(moment[2])
    else:
        time.sleep(float(moment))
    proc.send_signal(sig)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


@pytest.fixture()
def two_splits(tiny_workspace):
    """The split outputs for two split seeds (bytes), the workspace left holding seed A's."""
    ws, d = tiny_workspace, tiny_workspace / "data/processed" / DS
    ref = {}
    for seed in (11, 2024):
        p = set_split_seed(ws, seed)
        stages.split(config.dataset_config(p, DS))
        ref[seed] = {n: (d / n).read_bytes() for n in split_module.OUTPUTS}
        ref[seed]["fingerprint"] = json.loads((d / "split.manifest.json").read_text())[
            "fingerprint"
        ]
    assert ref[11]["train_csr.npz"] != ref[2024]["train_csr.npz"]
    return ws, d, ref


# seeded random delays, a kill while a temporary is open, and kills between two renames
MOMENTS = [
    *(random.Random(s).uniform(0.0, 0.1) for s in range(3)),
    "writing",
    ("after", 1),
    ("after", 3),
    ("after", 5),
]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_split_killed_at_any_moment_leaves_old_or_new_files_and_recovers(two_splits, sig):
    ws, d, ref = two_splits
    lock = lock_path(ws, f"processed/{DS}/split")
    old, interrupted, mixed, codes = 2024, 0, 0, []
    for moment in MOMENTS:
        new = 11 if old == 2024 else 2024
        set_split_seed(ws, new)
        proc = dave(ws, "split", DS)
        kill_at(proc, lock, sig, moment, d, split_module.OUTPUTS)
        _, err = proc.communicate(timeout=60)
        codes.append(proc.returncode)
        # every output is exactly the old or the new complete file
        for name in split_module.OUTPUTS:
            assert (d / name).read_bytes() in (ref[old][name], ref[new][name]), (moment, name)
        load_each(d)
        manifest = json.loads((d / "split.manifest.json").read_text())
        complete = manifest["fingerprint"] == ref[new]["fingerprint"]
        if complete:  # the manifest is written last: it never claims files that are not there yet
            assert all((d / n).read_bytes() == ref[new][n] for n in split_module.OUTPUTS)
        else:
            assert manifest["fingerprint"] == ref[old]["fingerprint"]
        if sig == signal.SIGTERM:
            if proc.returncode in (0, -sig):  # the signal came after main() returned
                assert complete
            else:
                assert proc.returncode == 143
                assert (
                    err.strip()
                    .splitlines()[-1]
                    .endswith(
                        "terminated (SIGTERM); completed artifacts are kept, partial ones were discarded"
                    )
                )
                assert "Traceback" not in err
                assert temporaries(d) == []  # a clean exit removes its own temporaries
        interrupted += not complete
        changed = [n for n in split_module.OUTPUTS if ref[old][n] != ref[new][n]]
        replaced = sum((d / n).read_bytes() == ref[new][n] for n in changed)
        mixed += 0 < replaced < len(changed)
        # the next run recovers by itself
        rerun = dave(ws, "split", DS)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert temporaries(d) == []
        assert all((d / n).read_bytes() == ref[new][n] for n in split_module.OUTPUTS)
        old = new
    assert interrupted >= len(MOMENTS) - 2, f"the runs mostly finished before the signal: {codes}"
    assert mixed >= 2, "no kill landed between two outputs' renames"


def test_stale_temporaries_of_a_killed_writer_are_removed_by_the_next_run(two_splits):
    ws, d, ref = two_splits
    for name in SPLIT_FILES:
        (d / f"{atomic.TMP_PREFIX}{name}.abc123").write_bytes(b"half")
    (d / f"{atomic.TMP_PREFIX}interactions.parquet.zz").write_bytes(b"not split's")
    p = set_split_seed(ws, 11)
    stages.split(config.dataset_config(p, DS))
    # only the split's own leftovers: the other stage of this directory may be running
    assert temporaries(d) == [f"{atomic.TMP_PREFIX}interactions.parquet.zz"]
    assert all((d / n).read_bytes() == ref[11][n] for n in split_module.OUTPUTS)


def test_atomic_dir_interrupted_between_its_renames_puts_the_old_one_back(tmp_path, monkeypatch):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "u.data").write_text("old, complete")
    real_replace = atomic.os.replace
    calls = {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the new directory's rename into place
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_dir(target) as stage:
        (stage / "u.data").write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert (target / "u.data").read_text() == "old, complete"
    assert temporaries(tmp_path) == []


def test_a_signal_right_after_the_temporary_is_created_leaves_nothing(tmp_path, monkeypatch):
    """The window the SIGTERM kill test found: the file exists, the clean-up is not armed yet."""
    from dave_repro.errors import Terminated

    real_close, real_mkdir = atomic.os.close, atomic.os.mkdir

    def close_then_signal(fd):
        real_close(fd)
        raise Terminated(signal.SIGTERM)

    def mkdir_then_signal(path, mode=0o777):
        real_mkdir(path, mode)
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(atomic.os, "close", close_then_signal)
    with pytest.raises(Terminated), atomic.atomic_path(tmp_path / "model.pt"):
        pass
    monkeypatch.setattr(atomic.os, "close", real_close)
    monkeypatch.setattr(atomic.os, "mkdir", mkdir_then_signal)
    with pytest.raises(Terminated), atomic.atomic_dir(tmp_path / "raw"):
        pass
    monkeypatch.setattr(atomic.os, "mkdir", real_mkdir)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- training ----------------------------------------------------------------------------------


def _job(ws: Path) -> tuple[dict, dict]:
    p = config.load_params(ws / "params.yaml")
    return config.job_config(p, DS, "dave", 0), p


def check_run_dir(ws: Path, rd: Path, fingerprint: str) -> None:
    """Whatever a kill left is complete: checkpoints load (with this run's fingerprint), JSON
    parses, and a manifest is only ever beside the outputs it records."""
    for name in ("model.pt", "last.pt"):
        if (rd / name).exists():
            checkpoint.load(rd / name, fingerprint)
    if (rd / "train.json").exists():
        json.loads((rd / "train.json").read_text())
    if (rd / "train.manifest.json").exists():
        manifest = json.loads((rd / "train.manifest.json").read_text())
        assert manifest["fingerprint"] == fingerprint
        for key, digest in manifest["outputs"].items():
            assert sha256_file(ws / key) == digest


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_training_killed_again_and_again_resumes_to_the_uninterrupted_result(tiny_workspace, sig):
    ws = tiny_workspace
    p = yaml.safe_load((ws / "params.yaml").read_text())
    p["profiles"]["quick"]["train"].update(max_epochs=6, patience=6)
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    job, p = _job(ws)
    train_stage(job, p)
    evaluate_stage(job, p)
    rd = ws / run_dir(DS, "dave", 0)
    reference = json.loads((rd / "metrics.json").read_text())
    fingerprint = json.loads((rd / "train.manifest.json").read_text())["fingerprint"]
    for f in rd.iterdir():
        f.unlink()
    lock = lock_path(ws, f"runs/{DS}/dave/seed-0/train")
    rng = random.Random(int(sig))
    # by progress, not wall time (the machine may be slow): inside an epoch after the first
    # checkpoint, while a checkpoint is being written, and early (during start-up, as it falls)
    moments = [("renewed", "last.pt", rng.uniform(0.0, 0.8)), "writing", rng.uniform(0.0, 1.5)]
    resumed = []
    for moment in moments:
        proc = dave(ws, "train", DS, "dave", "0")
        kill_at(proc, lock, sig, moment, rd)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode != 0, f"finished before the signal ({moment})"
        check_run_dir(ws, rd, fingerprint)
        assert not (rd / "train.json").exists()  # written only when training is complete
        if sig == signal.SIGTERM:
            assert (
                proc.returncode == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err
            )
            assert temporaries(rd) == []
        if (rd / "last.pt").exists():
            resumed.append(checkpoint.load(rd / "last.pt", fingerprint)["epoch"])
    assert resumed, "no kill came late enough to leave a resume state"
    final = dave(ws, "run", DS, "dave", "0")
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert temporaries(rd) == [] and not (rd / "last.pt").exists()
    metrics = json.loads((rd / "metrics.json").read_text())
    assert metrics["sampled"] == reference["sampled"] and metrics["full"] == reference["full"]
    assert metrics["best_epoch"] == reference["best_epoch"]
    info = json.loads((rd / "train.json").read_text())
    assert info["resumed_from_epoch"] == (resumed[-1] if resumed else None)


def test_disk_full_mid_write_is_a_clear_error_and_the_next_run_recovers(
    two_splits, monkeypatch, capsys
):
    ws, d, ref = two_splits
    real_fsync = atomic._fsync

    def fsync(path: Path) -> None:  # the disk fills up while the fifth output is written
        if path.name.startswith(f"{atomic.TMP_PREFIX}negatives_test.parquet."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_fsync(path)

    monkeypatch.setattr(atomic, "_fsync", fsync)
    set_split_seed(ws, 11)
    monkeypatch.delenv("DAVE_PARAMS", raising=False)
    with root_logging_restored():
        assert cli.main(["split", DS]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "negatives_test.parquet." in err and err.endswith(
        "No space left on device; completed artifacts are kept, partial ones were discarded (-v for details)"
    )
    assert temporaries(d) == []
    for name in split_module.OUTPUTS:
        assert (d / name).read_bytes() in (ref[2024][name], ref[11][name])
    assert (
        json.loads((d / "split.manifest.json").read_text())["fingerprint"]
        == ref[2024]["fingerprint"]
    )
    monkeypatch.setattr(atomic, "_fsync", real_fsync)  # space freed: the next run completes
    p = config.load_params(ws / "params.yaml")
    assert stages.split(config.dataset_config(p, DS)) is True
    assert all((d / n).read_bytes() == ref[11][n] for n in split_module.OUTPUTS)
