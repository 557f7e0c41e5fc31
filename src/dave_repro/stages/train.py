"""The train stage of one run: a (dataset, model, seed) of the main grid, or a sweep or readings
point in its own directory. It writes ``model.pt`` (best validation epoch), ``train.json`` and the
per-epoch curves (DVCLive); training resumes from ``last.pt`` after an interruption.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import atomic, layout
from ..config import runtime_config
from ..provenance import StageRun, run_key, tree_hashes
from .base import Done, Stage, execute

log = logging.getLogger(__name__)


def train_params(job: dict[str, Any]) -> dict[str, Any]:
    """The parameters a training's result depends on (its fingerprint's parameters)."""
    return {
        k: job[k]
        for k in ("dataset", "model", "family", "seed", "profile", "model_params", "train")
    } | {"ks": job["evaluation"]["ks"]}


def lock_name(job: dict[str, Any], rd: Path) -> str:
    main = layout.run_dir(job["dataset"], job["model"], job["seed"])
    return (
        f"runs/{job['dataset']}/{job['model']}/seed-{job['seed']}" if rd == main else rd.as_posix()
    )


def train(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
    rd: Path | None = None,
) -> bool:
    """Train one run into ``rd`` (default: its place in the grid; study points pass their own)."""
    ds, model, seed = job["dataset"], job["model"], job["seed"]
    main = layout.run_dir(ds, model, seed)
    rd = rd or main
    curves = layout.curves_dir(ds, model, seed) if rd == main else rd / "curves"
    names = ("model.pt", "last.pt", "train.json", "train.manifest.json")
    stage = Stage(
        "train",
        "train",
        f"{lock_name(job, rd)}/train",
        rd / "train.manifest.json",
        inputs=[layout.processed_dir(ds) / f for f in layout.TRAIN_INPUTS],
        outputs=[rd / f for f in layout.TRAIN_OUTPUTS],
        params=train_params(job),
        family=job["family"],
        temporaries=(rd, names),
        key=run_key("train", job),
    )

    def work(run: StageRun) -> Done:
        import torch  # noqa: F401  (only now: validation and skips stay fast)

        from ..data.dataset import load_split
        from ..training.device import configure, resolve_device
        from ..training.trainer import train as fit

        rt = runtime_config(params)
        configure(threads or rt["num_threads"])
        dev = resolve_device(device or rt["device"])
        split = load_split(layout.processed_dir(ds))
        log.info("training on %s (%d users, %d items)", dev, split.n_users, split.n_items)
        _, result = fit(
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
        log.info(
            "trained: best %s %.4f at epoch %d, %.0fs",
            job["train"]["select_metric"],
            result.best_value,
            result.best_epoch,
            result.train_seconds,
        )
        # the curves carry wall-clock times: recorded (for `dave audit`), not compared on a rerun
        return Done(
            extra={"dataset": ds, "model": model, "seed": seed, "byproducts": tree_hashes(curves)},
            device=str(dev),
            # training finished: the resume state is spent
            then=lambda: (rd / "last.pt").unlink(missing_ok=True),
        )

    return execute(stage, work, force=force)
