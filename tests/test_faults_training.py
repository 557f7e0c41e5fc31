"""Fault class: training faults.

A non-finite loss stops training with an error naming the epoch, the step and the loss term and
keeps the last good checkpoint, from which the next run resumes to the uninterrupted result; a
checkpoint from another configuration, or a damaged one, is refused (or, as a resume state,
ignored) with a clear message; damaged split inputs stop training before it writes anything.
(Resume after SIGKILL/SIGTERM: tests/test_faults_atomic.py and tests/test_training.py.)
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from faults import root_logging_restored

from dave_repro import cli, config
from dave_repro.errors import CheckpointError, DataFormatError, DaveError, TrainingError
from dave_repro.layout import run_dir
from dave_repro.models.dave import DAVE
from dave_repro.stages.evaluate import evaluate as evaluate_stage
from dave_repro.stages.train import train as train_stage
from dave_repro.training import checkpoint

DS = "ml-100k"


@pytest.fixture(autouse=True)
def _logging_restored():
    with root_logging_restored():
        yield


def job_and_params(ws: Path, model: str = "dave") -> tuple[dict, dict]:
    p = config.load_params(ws / "params.yaml")
    return config.job_config(p, DS, model, 0), p


def reference_metrics(ws: Path) -> dict:
    job, p = job_and_params(ws)
    train_stage(job, p)
    evaluate_stage(job, p)
    rd = ws / run_dir(DS, "dave", 0)
    metrics = json.loads((rd / "metrics.json").read_text())
    shutil.rmtree(rd)
    return metrics


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.fixture()
def epoch_of_step(monkeypatch):
    """Track the epoch the trainer is in (DAVE's epoch hook), for faults at a chosen step."""
    where = {"epoch": -1, "step": -1}
    original = DAVE.on_epoch_start

    def on_epoch_start(self, epoch):
        where["epoch"], where["step"] = epoch, -1
        return original(self, epoch)

    monkeypatch.setattr(DAVE, "on_epoch_start", on_epoch_start)
    return where


def test_nan_discriminator_loss_through_the_cli(tiny_workspace, monkeypatch, capsys, epoch_of_step):
    original = DAVE.discriminator_objective

    def poisoned(self, st, gen, noise=None):
        epoch_of_step["step"] += 1  # one discriminator update per step (d_steps: 1)
        loss = original(self, st, gen, noise)
        return loss * float("nan") if epoch_of_step["step"] == 2 else loss

    monkeypatch.setattr(DAVE, "discriminator_objective", poisoned)
    monkeypatch.delenv("DAVE_PARAMS", raising=False)
    rc = cli.main(["train", DS, "dave", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "epoch 0, step 2: loss term loss_discriminator is nan; training stopped. "
            "Last good checkpoint: none yet."
        )
    )
    assert listing(tiny_workspace / run_dir(DS, "dave", 0)) == []  # no checkpoint, no manifest


def test_inf_loss_later_keeps_the_last_good_checkpoint_and_the_rerun_resumes(
    tiny_workspace, monkeypatch, epoch_of_step
):
    ws = tiny_workspace
    reference = reference_metrics(ws)
    original = DAVE.joint_objective

    def poisoned(self, st, gen, noise=None):
        loss, parts = original(self, st, gen, noise)
        epoch_of_step["step"] += 1
        if epoch_of_step["epoch"] == 1 and epoch_of_step["step"] == 4:
            loss = loss * float("inf")
        return loss, parts

    monkeypatch.setattr(DAVE, "joint_objective", poisoned)
    job, p = job_and_params(ws)
    rd = run_dir(DS, "dave", 0)
    with pytest.raises(TrainingError) as exc:
        train_stage(job, p)
    assert str(exc.value) == (
        f"epoch 1, step 4: loss term loss is inf; training stopped. Last good "
        f"checkpoint: {rd / 'last.pt'} (after epoch 0)."
    )
    assert listing(ws / rd) == ["last.pt", "model.pt"]  # no train.json, no manifest, no temporary
    fingerprint = checkpoint.load(ws / rd / "last.pt")["fingerprint"]
    assert checkpoint.load(ws / rd / "last.pt", fingerprint)["epoch"] == 0
    assert checkpoint.load(ws / rd / "model.pt", fingerprint)["epoch"] == 0
    monkeypatch.setattr(DAVE, "joint_objective", original)  # the fault was transient
    train_stage(job, p)
    evaluate_stage(job, p)
    assert json.loads((ws / rd / "train.json").read_text())["resumed_from_epoch"] == 0
    metrics = json.loads((ws / rd / "metrics.json").read_text())
    assert metrics["sampled"] == reference["sampled"] and metrics["full"] == reference["full"]


def test_checkpoint_of_another_run_is_refused_by_evaluate(tiny_workspace):
    ws = tiny_workspace
    for model in ("dave", "itempop"):
        job, p = job_and_params(ws, model)
        train_stage(job, p)
    dave_dir, other = ws / run_dir(DS, "dave", 0), ws / run_dir(DS, "itempop", 0)
    shutil.copy(other / "model.pt", dave_dir / "model.pt")  # e.g. a copy into the wrong folder
    theirs = checkpoint.load(other / "model.pt")["fingerprint"]
    ours = json.loads((dave_dir / "train.manifest.json").read_text())["fingerprint"]
    job, p = job_and_params(ws)
    with pytest.raises(CheckpointError) as exc:
        evaluate_stage(job, p)
    assert str(exc.value) == (
        f"{run_dir(DS, 'dave', 0) / 'model.pt'}: written by another configuration (its fingerprint "
        f"{theirs[:12]}… differs from this run's {ours[:12]}…: parameters, data or code changed); refused"
    )
    assert not (dave_dir / "metrics.json").exists() and not (dave_dir / "ranks.parquet").exists()


def test_truncated_checkpoint_is_refused_and_a_truncated_resume_state_ignored(
    tiny_workspace, capsys, monkeypatch, caplog
):
    ws = tiny_workspace
    reference = reference_metrics(ws)
    job, p = job_and_params(ws)
    train_stage(job, p)
    rd = ws / run_dir(DS, "dave", 0)
    good = (rd / "model.pt").read_bytes()
    (rd / "model.pt").write_bytes(good[: len(good) // 2])  # e.g. a disk that filled up
    monkeypatch.delenv("DAVE_PARAMS", raising=False)
    assert cli.main(["evaluate", DS, "dave", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir(DS, 'dave', 0) / 'model.pt'}: not a readable checkpoint" in err
    assert "Traceback" not in err and listing(rd) == [
        "model.pt",
        "train.json",
        "train.manifest.json",
    ]
    logging.getLogger().addHandler(caplog.handler)  # the CLI replaced the root handlers
    # a damaged resume state: training starts over (with a warning) and ends where it should
    (rd / "last.pt").write_bytes(good[:1000])
    with caplog.at_level("WARNING"):
        assert train_stage(job, p) is True  # model.pt no longer hashes as recorded: retrain
    assert (
        "last.pt: not a readable checkpoint" in caplog.text
        and "starting from scratch" in caplog.text
    )
    evaluate_stage(job, p)
    metrics = json.loads((rd / "metrics.json").read_text())
    assert metrics["sampled"] == reference["sampled"] and metrics["full"] == reference["full"]


@pytest.mark.parametrize(
    "name,damage,error,reason",
    [
        (
            "train_csr.npz",
            lambda b: b[: len(b) // 2],
            DataFormatError,
            f"data/processed/{DS}/train_csr.npz: not a readable sparse matrix",
        ),
        (
            "valid.parquet",
            lambda b: b"PAR1" + b"\0" * 64,
            DataFormatError,
            f"data/processed/{DS}/valid.parquet: not a readable parquet file",
        ),
        (
            "negatives_valid.parquet",
            None,
            DaveError,  # caught by the stage before any work
            f"train: missing input file(s): data/processed/{DS}/negatives_valid.parquet (run the upstream "
            "stage first)",
        ),
    ],
)
def test_damaged_split_input_stops_training_before_it_writes(
    tiny_workspace, name, damage, error, reason
):
    ws = tiny_workspace
    f = ws / "data/processed" / DS / name
    if damage is None:
        f.unlink()
    else:
        f.write_bytes(damage(f.read_bytes()))
    job, p = job_and_params(ws)
    with pytest.raises(error) as exc:
        train_stage(job, p)
    assert str(exc.value).startswith(reason)
    assert not (ws / run_dir(DS, "dave", 0)).exists()


def test_checkpoints_are_loaded_with_weights_only(tiny_workspace, monkeypatch):
    """Every checkpoint read of a real train + evaluate goes through torch.load(weights_only=True)."""
    seen: list[object] = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    job, p = job_and_params(tiny_workspace)
    train_stage(job, p)
    evaluate_stage(job, p)
    assert seen and all(w is True for w in seen)
