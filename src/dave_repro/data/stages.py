"""The data stages as the CLI runs them: content-checked, locked, atomically written."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic
from ..errors import DataFormatError, DaveError
from ..locks import artifact_lock
from ..provenance import StageRun
from . import fetch, preprocess, split
from .dataset import read_parquet_checked

log = logging.getLogger(__name__)


def raw_dir(dataset: str, root: Path = Path("data")) -> Path:
    return root / "raw" / dataset


def processed_dir(dataset: str, root: Path = Path("data")) -> Path:
    return root / "processed" / dataset


def run_download(cfg: dict[str, Any], root: Path = Path("data"), *, force: bool = False) -> bool:
    """Fetch the dataset's sources. Returns False when the recorded files were still valid."""
    ds = cfg["dataset"]
    out = raw_dir(ds, root)
    params = {"checksums": cfg["checksums"]}
    with artifact_lock(f"raw/{ds}"):
        run = StageRun("download", out / "manifest.json", inputs=[], outputs=None, params=params)
        if not force and run.up_to_date():
            log.info("download %s: up to date", ds)
            return False
        result = fetch.download(ds, out, checksums=cfg["checksums"])
        run.finish(extra={"dataset": ds, "form": result.form, "files": result.files},
                   outputs=[out / name for name in result.files])
        log.info("download %s: form %s, %d file(s)", ds, result.form, len(result.files))
        return True


def _downloaded(ds: str, root: Path) -> tuple[str, list[Path]]:
    manifest = raw_dir(ds, root) / "manifest.json"
    try:
        rec = json.loads(manifest.read_text())
        return rec["form"], [raw_dir(ds, root) / n for n in rec["files"]]
    except FileNotFoundError:
        raise DaveError(f"{ds}: no downloaded sources ({manifest} missing); run `dave download {ds}`") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataFormatError(manifest, "not a download manifest") from None


def run_preprocess(cfg: dict[str, Any], root: Path = Path("data"), *, force: bool = False) -> bool:
    ds = cfg["dataset"]
    out = processed_dir(ds, root)
    form, inputs = _downloaded(ds, root)
    params = {k: cfg[k] for k in ("dedup_pairs", "min_user_interactions", "k_core", "min_interactions")}
    params["form"] = form
    with artifact_lock(f"processed/{ds}/preprocess"):
        _clean_temporaries(out, (*preprocess.OUTPUTS, "preprocess.manifest.json"))
        run = StageRun("preprocess", out / "preprocess.manifest.json", inputs=inputs,
                       outputs=[out / n for n in preprocess.OUTPUTS], params=params)
        if not force and run.up_to_date():
            log.info("preprocess %s: up to date", ds)
            return False
        stats = preprocess.preprocess(ds, raw_dir(ds, root), out, cfg, form)
        run.finish(extra={"dataset": ds, "stats": {k: stats[k] for k in ("interactions", "users", "items")}})
        return True


def run_split(cfg: dict[str, Any], root: Path = Path("data"), *, force: bool = False) -> bool:
    ds = cfg["dataset"]
    out = processed_dir(ds, root)
    inputs = [out / "interactions.parquet", out / "stats.json"]
    params = {k: cfg[k] for k in ("holdout", "split_seed", "num_negatives")}
    with artifact_lock(f"processed/{ds}/split"):
        _clean_temporaries(out, (*split.OUTPUTS, "split.manifest.json"))
        run = StageRun("split", out / "split.manifest.json", inputs=inputs,
                       outputs=[out / n for n in split.OUTPUTS], params=params)
        if not force and run.up_to_date():
            log.info("split %s: up to date", ds)
            return False
        interactions = read_parquet_checked(out / "interactions.parquet",
                                            {"user": "int", "item": "int", "timestamp": "any"})
        stats = _read_stats(out / "stats.json")
        info = split.split(interactions, stats, out, {**cfg, "dataset": ds})
        run.finish(extra={"dataset": ds, "split": info})
        return True


def _clean_temporaries(directory: Path, names: tuple[str, ...]) -> None:
    """Remove what a killed earlier run of this stage left (``.tmp-<output>.*``), and only that:
    the directory is shared with the other data stage, which may be running."""
    n = sum(atomic.clean_stale_temporaries(directory, name) for name in names)
    if n:
        log.info("removed %d temporary file(s) left by an interrupted run", n)


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        stats = json.loads(path.read_text())
        int(stats["users"]), int(stats["items"])
        return stats
    except FileNotFoundError:
        raise DataFormatError(path, "file not found (run preprocess first)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DataFormatError(path, "not a stats file with 'users' and 'items'") from None


def load_interactions(ds: str, root: Path = Path("data")) -> pd.DataFrame:
    return read_parquet_checked(processed_dir(ds, root) / "interactions.parquet",
                                {"user": "int", "item": "int", "timestamp": "any"})
