"""The train and evaluate stages of one (dataset, model, seed) run, as the CLI executes them.

Layout: ``results/runs/<dataset>/<model>/seed-<seed>/`` holds ``model.pt`` (best validation
epoch), ``train.json``, ``metrics.json`` and ``ranks.parquet`` (one row per user: the rank of the
test item among the 100 fixed candidates and among all items outside the training row), each
stage with its manifest. Per-epoch curves go to ``results/curves/<dataset>/<model>/seed-<seed>/``
(DVCLive format).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import atomic
from .config import runtime_config
from .engine import run_key
from .errors import CheckpointError, DataFormatError
from .locks import artifact_lock
from .provenance import StageRun, tree_hashes

log = logging.getLogger(__name__)

RESULTS = Path("results")
TRAIN_INPUTS = ("train_csr.npz", "valid.parquet", "negatives_valid.parquet")
EVAL_INPUTS = ("train_csr.npz", "test.parquet", "negatives_test.parquet")


def run_dir(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    return root / "runs" / dataset / model / f"seed-{seed}"


def sweep_run_dir(dataset: str, model: str, point: str, seed: int, root: Path = RESULTS) -> Path:
    """A hyper-parameter sweep's own run (``point``: ``<param>-<value>`` or ``default``)."""
    return root / "sweep-runs" / dataset / model / point / f"seed-{seed}"


def curves_dir(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    return root / "curves" / dataset / model / f"seed-{seed}"


def data_dir(dataset: str) -> Path:
    return Path("data") / "processed" / dataset


def train_params(job: dict[str, Any]) -> dict[str, Any]:
    return {
        k: job[k]
        for k in ("dataset", "model", "family", "seed", "profile", "model_params", "train")
    } | {"ks": job["evaluation"]["ks"]}


def train_stage(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
    rd: Path | None = None,
) -> bool:
    """Train one run into ``rd`` (default: its place in the grid; sweeps pass their own)."""
    ds, model, seed = job["dataset"], job["model"], job["seed"]
    main = run_dir(ds, model, seed)
    rd = rd or main
    curves = curves_dir(ds, model, seed) if rd == main else rd / "curves"
    inputs = [data_dir(ds) / f for f in TRAIN_INPUTS]
    outputs = [rd / "model.pt", rd / "train.json"]
    lock = f"runs/{ds}/{model}/seed-{seed}" if rd == main else rd.as_posix()
    with artifact_lock(f"{lock}/train"):
        run = StageRun(
            "train",
            rd / "train.manifest.json",
            inputs=inputs,
            outputs=outputs,
            params=train_params(job),
            family=job["family"],
        )
        key = run_key("train", job)
        if not force and run.up_to_date():
            _record_key(run, key)
            log.info("train: up to date")
            return False
        import torch  # noqa: F401  (only now: validation and skips stay fast)

        from .data.dataset import load_split
        from .training.device import configure, resolve_device
        from .training.trainer import train

        rt = runtime_config(params)
        configure(threads or rt["num_threads"])
        dev = resolve_device(device or rt["device"])
        split = load_split(data_dir(ds))
        _clean_temporaries(rd, ("model.pt", "last.pt", "train.json", "train.manifest.json"))
        log.info("training on %s (%d users, %d items)", dev, split.n_users, split.n_items)
        _, result = train(
            job, split, rd, dev, run.fingerprint, curves_dir=curves, progress=rt["progress"]
        )
        atomic.write_json(
            rd / "train.json",
            {
                "best_epoch": result.best_epoch,
                "best_valid": result.best_value,
                "select_metric": job["train"]["select_metric"],
                "epochs_run": result.epochs_run,
                "train_seconds": round(result.train_seconds, 3),
                "device": str(dev),
                "resumed_from_epoch": result.resumed_from,
                "history": result.history,
            },
        )
        # the curves carry wall-clock times: recorded (for `dave audit`), not compared on a rerun
        run.finish(
            extra={
                "dataset": ds,
                "model": model,
                "seed": seed,
                "key": key,
                "byproducts": tree_hashes(curves),
            },
            device=str(dev),
        )
        (rd / "last.pt").unlink(missing_ok=True)  # training finished: the resume state is spent
        log.info(
            "trained: best %s %.4f at epoch %d, %.0fs",
            job["train"]["select_metric"],
            result.best_value,
            result.best_epoch,
            result.train_seconds,
        )
        return True


def evaluate_stage(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
    rd: Path | None = None,
) -> bool:
    """Evaluate the run in ``rd`` (default: its place in the grid; a study point passes its own)
    on the test split."""
    ds, model, seed = job["dataset"], job["model"], job["seed"]
    main = run_dir(ds, model, seed)
    rd = rd or main
    inputs = [rd / "model.pt", rd / "train.json", *(data_dir(ds) / f for f in EVAL_INPUTS)]
    outputs = [rd / "metrics.json", rd / "ranks.parquet"]
    lock = f"runs/{ds}/{model}/seed-{seed}" if rd == main else rd.as_posix()
    with artifact_lock(f"{lock}/evaluate"):
        _clean_temporaries(rd, ("metrics.json", "ranks.parquet", "evaluate.manifest.json"))
        run = StageRun(
            "evaluate",
            rd / "evaluate.manifest.json",
            inputs=inputs,
            outputs=outputs,
            params={**train_params(job), "evaluation": job["evaluation"]},
            family=job["family"],
        )
        key = run_key("evaluate", job)
        if not force and run.up_to_date():
            _record_key(run, key)
            log.info("evaluate: up to date")
            return False
        from .evaluation.evaluate import evaluate_model

        split, net, dev = load_run(job, params, rd, device=device, threads=threads)
        train_info = read_json(rd / "train.json")
        result = evaluate_model(net, split, "test", job["evaluation"])
        metrics = {
            "dataset": ds,
            "model": model,
            "seed": seed,
            "profile": job["profile"],
            "sampled": result["sampled"],
            "full": result.get("full", {}),
            "best_epoch": train_info["best_epoch"],
            "train_seconds": train_info["train_seconds"],
            "device": train_info["device"],
        }
        ranks = pd.DataFrame(
            {
                "user": np.arange(split.n_users, dtype=np.int32),
                "rank_sampled": result["rank_sampled"].astype(np.int32),
            }
        )
        if "rank_full" in result:
            ranks["rank_full"] = result["rank_full"].astype(np.int32)
        with atomic.atomic_path(rd / "ranks.parquet") as tmp:
            ranks.to_parquet(tmp, index=False)
        atomic.write_json(rd / "metrics.json", metrics)
        run.finish(extra={"dataset": ds, "model": model, "seed": seed, "key": key}, device=str(dev))
        s = result["sampled"]
        log.info(
            "test: HR@10 %.4f NDCG@10 %.4f (sampled)%s",
            s["hr@10"],
            s["ndcg@10"],
            f"; HR@10 {result['full']['hr@10']:.4f} (full)" if result.get("full") else "",
        )
        return True


def _record_key(run: StageRun, key: str) -> None:
    """An up-to-date run whose manifest lacks the engine's current key (made by older code, or
    under parameters that changed nothing it uses) records it, so the engine stops re-checking."""
    rec = run.recorded()
    if rec is not None and rec.get("key") != key:
        atomic.write_json(run.manifest_path, {**rec, "key": key})


def _check_trained_as_configured(job: dict[str, Any], rd: Path, recorded: dict[str, Any]) -> None:
    """Refuse a model trained under other parameters than this job's (say, a previous profile's
    model, left in place when a training under the new one was interrupted): its metrics, noise
    curves or maps would be labelled with a configuration that did not produce them."""
    manifest = rd / "train.manifest.json"
    if recorded.get("params") != json.loads(json.dumps(train_params(job))):
        raise CheckpointError(
            f"{rd / 'model.pt'}: trained under other parameters than this run's (see "
            f"{manifest}); train it first: dave train {job['dataset']} {job['model']} "
            f"{job['seed']} --profile {job['profile']}"
        )


def _clean_temporaries(directory: Path, names: tuple[str, ...]) -> None:
    """Remove the temporaries a killed earlier run of this stage left, and only those: train and
    evaluate share the run directory, each under its own lock."""
    n = sum(atomic.clean_stale_temporaries(directory, name) for name in names)
    if n:
        log.info("removed %d temporary file(s) left by an interrupted run", n)


def load_run(
    job: dict[str, Any],
    params: dict[str, Any],
    rd: Path,
    *,
    device: str | None = None,
    threads: int | None = None,
) -> tuple[Any, Any, Any]:
    """The split, the trained model of ``rd`` (its best checkpoint, clean inputs) and the device."""
    from .data.dataset import load_split
    from .evaluation.evaluate import load_trained
    from .training.device import configure, resolve_device

    train_manifest = read_json(rd / "train.manifest.json")
    _check_trained_as_configured(job, rd, train_manifest)
    rt = runtime_config(params)
    configure(threads or rt["num_threads"])
    dev = resolve_device(device or rt["device"])
    split = load_split(data_dir(job["dataset"]))
    net = load_trained(job, split, rd / "model.pt", train_manifest["fingerprint"], dev)
    return split, net, dev


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "file not found (train the model first)") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON ({exc})") from None
