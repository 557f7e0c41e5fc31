"""The evaluate stage of one run (the test split: ``metrics.json``, ``ranks.parquet``) and the
loading of a trained run that it shares with the studies.

``ranks.parquet`` holds one row per user: the rank of the test item among the 100 fixed
candidates and among all items outside the training row, so any metric can be recomputed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .. import atomic, layout
from ..config import runtime_config
from ..errors import CheckpointError, DataFormatError
from ..provenance import StageRun, run_key
from .base import Done, Stage, execute
from .train import lock_name, train_params

log = logging.getLogger(__name__)


def evaluate(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
    rd: Path | None = None,
) -> bool:
    """Evaluate the run in ``rd`` (default: its place in the grid) on the test split."""
    ds, model, seed = job["dataset"], job["model"], job["seed"]
    rd = rd or layout.run_dir(ds, model, seed)
    stage = Stage(
        "evaluate",
        "evaluate",
        f"{lock_name(job, rd)}/evaluate",
        rd / "evaluate.manifest.json",
        inputs=[
            rd / "model.pt",
            rd / "train.json",
            *(layout.processed_dir(ds) / f for f in layout.EVAL_INPUTS),
        ],
        outputs=[rd / f for f in layout.EVAL_OUTPUTS],
        params={**train_params(job), "evaluation": job["evaluation"]},
        family=job["family"],
        temporaries=(rd, ("metrics.json", "ranks.parquet", "evaluate.manifest.json")),
        key=run_key("evaluate", job),
    )

    def work(run: StageRun) -> Done:
        import numpy as np
        import pandas as pd

        from ..evaluation.evaluate import evaluate_model

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
        s = result["sampled"]
        log.info(
            "test: HR@10 %.4f NDCG@10 %.4f (sampled)%s",
            s["hr@10"],
            s["ndcg@10"],
            f"; HR@10 {result['full']['hr@10']:.4f} (full)" if result.get("full") else "",
        )
        return Done(extra={"dataset": ds, "model": model, "seed": seed}, device=str(dev))

    return execute(stage, work, force=force)


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


def load_run(
    job: dict[str, Any],
    params: dict[str, Any],
    rd: Path,
    *,
    device: str | None = None,
    threads: int | None = None,
) -> tuple[Any, Any, Any]:
    """The split, the trained model of ``rd`` (its best checkpoint, clean inputs) and the device."""
    from ..data.dataset import load_split
    from ..evaluation.evaluate import load_trained
    from ..training.device import configure, resolve_device

    train_manifest = read_json(rd / "train.manifest.json")
    _check_trained_as_configured(job, rd, train_manifest)
    rt = runtime_config(params)
    configure(threads or rt["num_threads"])
    dev = resolve_device(device or rt["device"])
    split = load_split(layout.processed_dir(job["dataset"]))
    net = load_trained(job, split, rd / "model.pt", train_manifest["fingerprint"], dev)
    return split, net, dev


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "file not found (train the model first)") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON ({exc})") from None
