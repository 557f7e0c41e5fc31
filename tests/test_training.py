"""Training: determinism, resume after SIGTERM/SIGKILL, non-finite losses, foreign checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dave_repro import config
from dave_repro.errors import CheckpointError, TrainingError
from dave_repro.layout import run_dir
from dave_repro.stages.evaluate import evaluate as evaluate_stage
from dave_repro.stages.train import train as train_stage
from dave_repro.training import checkpoint


def _load(ws: Path) -> dict:
    return config.load_params(ws / "params.yaml")


def _run(ws: Path, model: str = "dave", seed: int = 0, force: bool = False) -> dict:
    p = _load(ws)
    job = config.job_config(p, "ml-100k", model, seed)
    train_stage(job, p, force=force)
    evaluate_stage(job, p, force=force)
    return json.loads((run_dir("ml-100k", model, seed) / "metrics.json").read_text())


def test_same_seed_same_machine_identical_metrics(tiny_workspace):
    first = _run(tiny_workspace)
    second = _run(tiny_workspace, force=True)
    assert first["sampled"] == second["sampled"] and first["full"] == second["full"]
    assert first["best_epoch"] == second["best_epoch"]
    ranks = run_dir("ml-100k", "dave", 0) / "ranks.parquet"
    import pandas as pd

    r = pd.read_parquet(ranks)
    assert list(r.columns) == ["user", "rank_sampled", "rank_full"]
    assert r["rank_sampled"].between(1, 100).all() and (r["rank_full"] >= 1).all()
    assert set(first) >= {"profile", "sampled", "full", "best_epoch", "train_seconds", "device"}


def test_rerun_with_nothing_changed_does_no_work(tiny_workspace):
    _run(tiny_workspace, "dave-adv")
    p = _load(tiny_workspace)
    job = config.job_config(p, "ml-100k", "dave-adv", 0)
    assert train_stage(job, p) is False and evaluate_stage(job, p) is False


def test_changed_parameter_retrains(tiny_workspace):
    _run(tiny_workspace, "dave-aae")
    p = _load(tiny_workspace)
    p["models"]["dave-aae"]["lr"] = 1e-3
    job = config.job_config(p, "ml-100k", "dave-aae", 0)
    assert train_stage(job, p) is True


def _cli(ws: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DAVE_PARAMS": str(ws / "params.yaml"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "dave_repro.cli", *args],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize(
    ("sig", "decoder_sample"),
    [(signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0), (signal.SIGKILL, 0.5)],
)
def test_interrupted_training_resumes_to_the_same_result(tiny_workspace, sig, decoder_sample):
    """Also with decoder_sample < 1: its column draws come from the epoch's generator, a
    function of (seed, epoch), so a resumed epoch draws what an uninterrupted one would."""
    p = _load(tiny_workspace)
    p["profiles"]["quick"]["train"].update(max_epochs=5, patience=5)
    p["models"]["dave"]["decoder_sample"] = decoder_sample
    (tiny_workspace / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    reference = _run(tiny_workspace, "dave", 0)
    rd = run_dir("ml-100k", "dave", 0)
    for f in rd.iterdir():
        f.unlink()
    proc = _cli(tiny_workspace, "train", "ml-100k", "dave", "0")
    deadline = time.time() + 120
    while time.time() < deadline:
        if (rd / "last.pt").exists():
            try:
                if torch.load(rd / "last.pt", weights_only=True)["epoch"] >= 1:
                    break
            except Exception:  # being replaced right now
                pass
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be interrupted"
    assert not (rd / "train.json").exists()
    resumed = _run(tiny_workspace, "dave", 0)  # also removes any temporary the kill left
    assert json.loads((rd / "train.json").read_text())["resumed_from_epoch"] >= 1
    assert resumed["sampled"] == reference["sampled"] and resumed["full"] == reference["full"]
    assert resumed["best_epoch"] == reference["best_epoch"]
    assert not list(rd.glob(".tmp-*"))


@pytest.mark.parametrize("interval", [1, 7], ids=["read-every-step", "read-every-7-as-on-gpu"])
def test_non_finite_loss_stops_with_epoch_step_and_term(tiny_workspace, monkeypatch, interval):
    import scipy.sparse as sp

    from dave_repro.models.dave import DAVE
    from dave_repro.training import trainer

    monkeypatch.setattr(trainer, "log_interval", lambda device: interval)

    nnz = sp.load_npz(tiny_workspace / "data/processed/ml-100k/train_csr.npz").nnz
    steps_per_epoch = -(-nnz * 3 // 64)  # ratio 2 (+1 positive), batch 64
    calls = {"n": 0}
    original = DAVE.joint_objective

    def poisoned(self, st, gen, noise=None):
        loss, parts = original(self, st, gen, noise)
        calls["n"] += 1
        if calls["n"] > steps_per_epoch + 5:  # in the second epoch
            parts["prediction"] = parts["prediction"] * float("nan")
            loss = loss * float("nan")
        return loss, parts

    monkeypatch.setattr(DAVE, "joint_objective", poisoned)
    p = _load(tiny_workspace)
    job = config.job_config(p, "ml-100k", "dave", 0)
    with pytest.raises(TrainingError, match=r"epoch 1, step 5: loss term loss\w* is nan") as exc:
        train_stage(job, p)
    rd = run_dir("ml-100k", "dave", 0)
    assert "Last good checkpoint" in str(exc.value)
    assert (rd / "last.pt").exists() and not (rd / "train.json").exists()


def test_losses_read_in_bulk_keep_their_steps_and_sums():
    from dave_repro.training.trainer import _add_logs

    pending = [
        (0, {"loss": torch.tensor(0.5), "loss_d": 2.0}),
        (1, {"loss": torch.tensor(0.25), "loss_d": torch.tensor(1.0)}),
    ]
    sums: dict[str, float] = {}
    _add_logs(pending, sums, 3, "kept")
    assert sums == {"loss": 0.75, "loss_d": 3.0} and pending == []
    pending += [
        (2, {"loss": torch.tensor(1.0), "loss_d": 1.0}),
        (3, {"loss": torch.tensor(float("inf")), "loss_d": 1.0}),
        (4, {"loss": torch.tensor(float("nan")), "loss_d": 1.0}),
    ]
    with pytest.raises(TrainingError, match=r"^epoch 3, step 3: loss term loss is inf; .* kept"):
        _add_logs(pending, sums, 3, "kept")


def test_checkpoint_from_another_configuration_is_refused(tiny_workspace, caplog):
    _run(tiny_workspace, "dave", 0)
    rd = run_dir("ml-100k", "dave", 0)
    state = checkpoint.load(rd / "model.pt")
    with pytest.raises(CheckpointError, match="another configuration"):
        checkpoint.load(rd / "model.pt", fingerprint="0" * 64)
    # a stale resume state from another configuration is not continued
    checkpoint.save(
        rd / "last.pt",
        {
            **state,
            "fingerprint": "f" * 64,
            "epoch": 1,
            "optimizers": {},
            "history": [],
            "best": None,
            "train_seconds": 0.0,
        },
    )
    p = _load(tiny_workspace)
    p["models"]["dave"]["lr"] = 2e-3
    with caplog.at_level("WARNING"):
        train_stage(config.job_config(p, "ml-100k", "dave", 0), p)
    assert "another configuration" in caplog.text and "refused" in caplog.text


def test_checkpoints_load_without_executing_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"fingerprint": "x", "model": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()


def test_a_model_trained_under_other_parameters_is_not_evaluated_as_this_run(tiny_workspace):
    """The case of a training interrupted under a new profile, whose old outputs Snakemake put
    back: evaluating them would label the old model's metrics with the new configuration."""
    _run(tiny_workspace, "itempop", 0)
    rd = run_dir("ml-100k", "itempop", 0)
    assert json.loads((rd / "train.manifest.json").read_text())["key"]
    p = _load(tiny_workspace)
    p["profiles"]["quick"]["train"]["patience"] = 1  # another configuration of the same run
    job = config.job_config(p, "ml-100k", "itempop", 0)
    with pytest.raises(CheckpointError, match="trained under other parameters"):
        evaluate_stage(job, p)
    assert train_stage(job, p) and evaluate_stage(job, p)  # trained anew, it evaluates


def test_an_outputs_key_other_than_the_jobs_refreshes_the_key_file(tmp_path, monkeypatch):
    from dave_repro import engine

    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "train.manifest.json"
    manifest.write_text(json.dumps({"key": "aaaa"}))
    path = Path(engine.key_file("train", "aaaa", "ml-100k", manifest=str(manifest)))
    os.utime(path, (1_000_000, 1_000_000))
    engine.key_file("train", "aaaa", "ml-100k", manifest=str(manifest))
    assert path.stat().st_mtime == 1_000_000  # the outputs are this key's: nothing to re-run
    manifest.write_text(json.dumps({"key": "bbbb"}))  # outputs of another key, put back
    engine.key_file("train", "aaaa", "ml-100k", manifest=str(manifest))
    assert path.stat().st_mtime > time.time() - 60  # newer than those outputs: the job re-runs


def test_progress_lines_say_how_far_the_epoch_is_and_when_it_ends():
    """Without a terminal (DVC's and Snakemake's consoles), a line every 30 s: epochs of the
    schedule, batches of the epoch (known after the first) and the time left in it."""
    from dave_repro.training.trainer import _LogProgress

    first = _LogProgress(iter([]), 0, None, 40)
    assert first.line(100, 10.0).rstrip() == "epoch 0 (1/40): 100 batches, 10.0 batch/s"
    later = _LogProgress(iter([]), 3, 1000, 40)
    later.set_postfix(loss="0.5000")
    assert later.line(400, 40.0) == (
        "epoch 3 (4/40): 400/1000 batches, 10.0 batch/s, epoch ends in 1m00s loss=0.5000"
    )
