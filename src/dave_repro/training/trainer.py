"""The training loop shared by every model.

Per epoch: the model's batches (negatives redrawn), its own update step, then validation HR@10
(or the configured metric) on the fixed validation candidates. The best-validation state is
kept as the model to evaluate; the state after every epoch is kept so that an interrupted run
resumes at its last completed epoch and ends exactly where an uninterrupted run would (all
randomness of an epoch is a function of the seed and the epoch number). Training never looks at
the test split.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..data.dataset import Split
from ..errors import CheckpointError, TrainingError
from ..evaluation.metrics import metrics_from_ranks
from ..evaluation.ranking import sampled_ranks
from ..models.base import Recommender
from ..models.registry import build
from . import checkpoint
from .device import epoch_generators, seed_everything

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_epoch: int
    best_value: float
    epochs_run: int
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int | None = None


def validate(model: Recommender, split: Split, ks: list[int]) -> dict[str, float]:
    model.eval()
    ranks = sampled_ranks(model, split, "valid")
    model.train()
    return metrics_from_ranks(ranks, ks)


class CurveLogger:
    """Per-epoch curves through DVCLive (``dvc plots show`` / ``dvc exp show`` read them)."""

    def __init__(self, directory: Path | None) -> None:
        self.live = None
        if directory is None:
            return
        from dvclive import Live

        shutil.rmtree(directory, ignore_errors=True)
        self.live = Live(
            dir=str(directory),
            resume=False,
            report=None,
            save_dvc_exp=False,
            dvcyaml=None,
            monitor_system=False,
        )

    def log(self, record: dict[str, Any]) -> None:
        if self.live is None:
            return
        for key, value in record.items():
            if key != "epoch" and isinstance(value, int | float):
                self.live.log_metric(key, value)
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


def train(
    job: dict[str, Any],
    split: Split,
    run_dir: Path,
    device: torch.device,
    fingerprint: str,
    *,
    curves_dir: Path | None = None,
    progress: bool = True,
) -> tuple[Recommender, TrainResult]:
    """Train (or resume) one run; leaves ``model.pt`` (best) and ``last.pt`` in ``run_dir``."""
    seed, sched = job["seed"], job["train"]
    ks, select = job["evaluation"]["ks"], sched["select_metric"]
    seed_everything(seed)
    model = build(job["family"], split.n_users, split.n_items, job["model_params"]).to(device)
    model.set_inputs(split.train, device)
    best_path, last_path = run_dir / "model.pt", run_dir / "last.pt"
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    if not model.iterative:
        model.fit(split.train)
        val = validate(model, split, ks)
        record = {"epoch": 0, **{f"valid/{k}": v for k, v in val.items()}}
        _save_best(best_path, model, fingerprint, 0, val[select])
        curves = CurveLogger(curves_dir)
        curves.log(record)
        curves.close()
        return model, TrainResult(0, val[select], 1, time.perf_counter() - t0, [record])

    opts = model.optimizers()
    start, history, best, spent, resumed = 0, [], None, 0.0, None
    if last_path.exists():
        try:
            state = checkpoint.load(last_path, fingerprint, map_location=device)
        except CheckpointError as exc:
            log.warning("%s; starting from scratch", exc)
        else:
            model.load_state_dict(state["model"])
            for name, opt in opts.items():
                opt.load_state_dict(state["optimizers"][name])
            start, history, best, spent = (
                state["epoch"] + 1,
                state["history"],
                state["best"],
                state["train_seconds"],
            )
            resumed = state["epoch"]
            log.info(
                "resuming after epoch %d (best %s %.4f at epoch %d)",
                state["epoch"],
                select,
                best["value"],
                best["epoch"],
            )
    curves = CurveLogger(curves_dir)
    for record in history:
        curves.log(record)
    every = log_interval(device)
    per_epoch: int | None = None  # batches in an epoch, known after the first (all are equal)

    for epoch in range(start, sched["max_epochs"]):
        if best is not None and epoch - best["epoch"] > sched["patience"]:
            break
        t_epoch = time.perf_counter()
        rng, gen = epoch_generators(seed, epoch, device)
        model.on_epoch_start(epoch)
        sums: dict[str, float] = {}
        steps = 0
        pending: list[tuple[int, dict[str, Any]]] = []
        kept = f"{last_path} (after epoch {epoch - 1})" if epoch > 0 else "none yet"
        bar = _progress(
            model.batches(split.train, rng, sched["max_train_pairs"]),
            epoch,
            progress,
            total=per_epoch,
            epochs=sched["max_epochs"],
        )
        for step, batch in enumerate(bar):
            logs = model.train_step(batch, gen)
            pending.append((step, logs))
            steps += 1
            if steps % every == 0 or not any(isinstance(v, torch.Tensor) for v in logs.values()):
                _add_logs(pending, sums, epoch, kept)
            if steps % 50 == 0:
                bar.set_postfix(loss=f"{sums.get('loss', 0.0) / steps:.4f}")
        _add_logs(pending, sums, epoch, kept)
        bar.close()
        per_epoch = steps
        val = validate(model, split, ks)
        spent += time.perf_counter() - t_epoch
        record = {
            "epoch": epoch,
            **{f"train/{k}": v / max(steps, 1) for k, v in sums.items()},
            **{f"valid/{k}": v for k, v in val.items()},
            "seconds": time.perf_counter() - t_epoch,
        }
        history.append(record)
        curves.log(record)
        improved = best is None or val[select] > best["value"]
        if improved:
            best = {"epoch": epoch, "value": val[select]}
            _save_best(best_path, model, fingerprint, epoch, val[select])
        checkpoint.save(
            last_path,
            {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizers": {n: o.state_dict() for n, o in opts.items()},
                "history": history,
                "best": best,
                "train_seconds": spent,
            },
        )
        log.info(
            "%s: loss %.4f, valid %s %.4f, ndcg@10 %.4f%s (%.0fs)",
            _epoch_label(epoch, sched["max_epochs"]),
            record.get("train/loss", float("nan")),
            select,
            val[select],
            val.get("ndcg@10", float("nan")),
            " *" if improved else "",
            record["seconds"],
        )
    curves.close()
    assert best is not None
    state = checkpoint.load(best_path, fingerprint, map_location=device)
    model.load_state_dict(state["model"])
    model.eval()
    return model, TrainResult(best["epoch"], best["value"], len(history), spent, history, resumed)


def log_interval(device: torch.device) -> int:
    """Steps between readings of the logged losses: every step on a CPU, where reading is free;
    every 50 on a GPU, where each reading makes the host wait for the queued steps."""
    return 1 if device.type == "cpu" else 50


def _add_logs(
    pending: list[tuple[int, dict[str, Any]]], sums: dict[str, float], epoch: int, kept: str
) -> None:
    """Add the pending steps' losses to ``sums`` (tensors read in one copy), in step order; the
    first non-finite one stops training, named by its own step even when read later."""
    tensors = [v for _, logs in pending for v in logs.values() if isinstance(v, torch.Tensor)]
    read = iter(torch.stack([t.float().reshape(()) for t in tensors]).tolist() if tensors else [])
    for step, logs in pending:
        for key, value in logs.items():
            value = next(read) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(value):
                raise TrainingError(
                    f"epoch {epoch}, step {step}: loss term {key} is {value}; "
                    f"training stopped. Last good checkpoint: {kept}."
                )
            sums[key] = sums.get(key, 0.0) + value
    pending.clear()


class _LogProgress:
    """Progress for logs (no terminal): a line every ``every`` seconds instead of a bar, with how
    far the epoch is and when it ends once the epoch's length is known (after the first)."""

    def __init__(
        self, it: Any, epoch: int, total: int | None, epochs: int, every: float = 30.0
    ) -> None:
        self.it, self.epoch, self.total, self.epochs, self.every = it, epoch, total, epochs, every
        self.postfix = ""

    def line(self, n: int, seconds: float) -> str:
        rate = n / seconds if seconds > 0 else 0.0
        done = f"{n}/{self.total} batches" if self.total else f"{n} batches"
        eta = ""
        if self.total and rate > 0:
            eta = f", epoch ends in {_duration(max(self.total - n, 0) / rate)}"
        return f"{_epoch_label(self.epoch, self.epochs)}: {done}, {rate:.1f} batch/s{eta} {self.postfix}"

    def __iter__(self) -> Any:
        t0 = last = time.perf_counter()
        for n, item in enumerate(self.it, start=1):
            yield item
            now = time.perf_counter()
            if now - last >= self.every:
                log.info("%s", self.line(n, now - t0).rstrip())
                last = now

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        pass


def _epoch_label(epoch: int, epochs: int) -> str:
    """Epochs count from 0 in every record; the console also says which of the schedule's."""
    return f"epoch {epoch} ({epoch + 1}/{epochs})"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _progress(it: Any, epoch: int, enabled: bool, *, total: int | None, epochs: int) -> Any:
    if enabled and sys.stderr.isatty():
        desc = _epoch_label(epoch, epochs)
        return tqdm(it, desc=desc, total=total, unit="batch", mininterval=1.0, leave=False)
    if enabled:
        return _LogProgress(it, epoch, total, epochs)
    return tqdm(it, disable=True)


def _save_best(path: Path, model: Recommender, fingerprint: str, epoch: int, value: float) -> None:
    checkpoint.save(
        path,
        {"fingerprint": fingerprint, "epoch": epoch, "value": value, "model": model.state_dict()},
    )
