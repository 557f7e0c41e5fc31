"""The data stages: download (verified sources), preprocess (filtered, re-indexed interactions),
split (leave-one-out, fixed negatives)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .. import layout
from ..errors import DataFormatError, DaveError
from ..provenance import StageRun
from .base import Done, Stage, execute

log = logging.getLogger(__name__)


def download(cfg: dict[str, Any], root: Path = layout.DATA, *, force: bool = False) -> bool:
    """Fetch the dataset's sources. Returns False when the recorded files were still valid."""
    from ..data import fetch

    ds = cfg["dataset"]
    out = layout.raw_dir(ds, root)
    stage = Stage(
        "download",
        f"download {ds}",
        f"raw/{ds}",
        out / "manifest.json",
        inputs=[],
        outputs=None,
        params={"checksums": cfg["checksums"]},
    )

    def work(run: StageRun) -> Done:
        result = fetch.download(ds, out, checksums=cfg["checksums"])
        log.info("download %s: form %s, %d file(s)", ds, result.form, len(result.files))
        return Done(
            extra={"dataset": ds, "form": result.form, "files": result.files},
            outputs=[out / name for name in result.files],
        )

    return execute(stage, work, force=force)


def _downloaded(ds: str, root: Path) -> tuple[str, list[Path]]:
    manifest = layout.raw_dir(ds, root) / "manifest.json"
    try:
        rec = json.loads(manifest.read_text())
        return rec["form"], [layout.raw_dir(ds, root) / n for n in rec["files"]]
    except FileNotFoundError:
        raise DaveError(
            f"{ds}: no downloaded sources ({manifest} missing); run `dave download {ds}`"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataFormatError(manifest, "not a download manifest") from None


def preprocess(cfg: dict[str, Any], root: Path = layout.DATA, *, force: bool = False) -> bool:
    from ..data import preprocess as pre

    ds = cfg["dataset"]
    out = layout.processed_dir(ds, root)
    form, inputs = _downloaded(ds, root)
    params = {
        k: cfg[k] for k in ("dedup_pairs", "min_user_interactions", "k_core", "min_interactions")
    }
    params["form"] = form
    names = layout.PREPROCESS_OUTPUTS
    stage = Stage(
        "preprocess",
        f"preprocess {ds}",
        f"processed/{ds}/preprocess",
        out / "preprocess.manifest.json",
        inputs=inputs,
        outputs=[out / n for n in names],
        params=params,
        temporaries=(out, (*names, "preprocess.manifest.json")),
    )

    def work(run: StageRun) -> Done:
        stats = pre.preprocess(ds, layout.raw_dir(ds, root), out, cfg, form)
        counts = {k: stats[k] for k in ("interactions", "users", "items")}
        return Done(extra={"dataset": ds, "stats": counts})

    return execute(stage, work, force=force)


def split(cfg: dict[str, Any], root: Path = layout.DATA, *, force: bool = False) -> bool:
    from ..data import split as splitting
    from ..data.dataset import read_parquet_checked

    ds = cfg["dataset"]
    out = layout.processed_dir(ds, root)
    names = layout.SPLIT_OUTPUTS
    stage = Stage(
        "split",
        f"split {ds}",
        f"processed/{ds}/split",
        out / "split.manifest.json",
        inputs=[out / "interactions.parquet", out / "stats.json"],
        outputs=[out / n for n in names],
        params={k: cfg[k] for k in ("holdout", "split_seed", "num_negatives")},
        temporaries=(out, (*names, "split.manifest.json")),
    )

    def work(run: StageRun) -> Done:
        interactions = read_parquet_checked(
            out / "interactions.parquet", {"user": "int", "item": "int", "timestamp": "any"}
        )
        stats = _read_stats(out / "stats.json")
        info = splitting.split(interactions, stats, out, {**cfg, "dataset": ds})
        return Done(extra={"dataset": ds, "split": info})

    return execute(stage, work, force=force)


STAGES = {"download": download, "preprocess": preprocess, "split": split}


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        stats = json.loads(path.read_text())
        int(stats["users"]), int(stats["items"])
        return stats
    except FileNotFoundError:
        raise DataFormatError(path, "file not found (run preprocess first)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DataFormatError(path, "not a stats file with 'users' and 'items'") from None
