"""The report stages as the CLI runs them, with manifests like every other stage.

``dave report metrics <dataset>`` writes ``results/metrics/<dataset>.json`` and
``results/metrics/<dataset>.manifest.json``; ``dave report tables`` writes ``results/tables/``
with ``results/tables/manifest.json`` inside. Both go through :class:`~.provenance.StageRun`, so
the manifest is the same whichever engine ran the command, and ``dave audit`` can trace every
number in a table back to the runs, the split and the raw files it came from.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from . import config
from .hashing import sha256_file
from .locks import artifact_lock
from .provenance import PACKAGE_DIR, StageRun

log = logging.getLogger(__name__)

METRICS_DIR = Path("results") / "metrics"
TABLES_DIR = Path("results") / "tables"
PAPER_NUMBERS = PACKAGE_DIR / "reports" / "paper_numbers"


def metrics_path(dataset: str) -> Path:
    return METRICS_DIR / f"{dataset}.json"


def metrics_manifest_path(dataset: str) -> Path:
    return METRICS_DIR / f"{dataset}.manifest.json"


def _profile_params(params: dict[str, Any], profile: str | None) -> dict[str, Any]:
    prof = config.active_profile(params, profile)
    return {
        "profile": profile or params["profile"],
        "models": prof["models"],
        "seeds": prof["seeds"],
    }


def _paper_numbers() -> dict[str, str]:
    """The paper's numbers are data files, not code: they enter as hashed parameters."""
    return {p.name: sha256_file(p) for p in sorted(PAPER_NUMBERS.glob("*.csv"))}


def _run_metrics(dataset: str, used: dict[str, Any]) -> list[Path]:
    return [
        Path("results") / "runs" / dataset / m / f"seed-{s}" / "metrics.json"
        for m in used["models"]
        for s in used["seeds"]
    ]


def metrics_stage(
    params: dict[str, Any], dataset: str, profile: str | None = None, *, force: bool = False
) -> Path:
    """Every run of ``dataset`` in the selected grid, in one file (what `dvc metrics` reads)."""
    from .reports.aggregate import write_dataset_metrics

    used = {"report": "metrics", "dataset": dataset, **_profile_params(params, profile)}
    inputs = _run_metrics(dataset, used)
    out = metrics_path(dataset)
    with artifact_lock(f"metrics/{dataset}"):
        run = StageRun(
            "report", metrics_manifest_path(dataset), inputs=inputs, outputs=[out], params=used
        )
        if not force and run.up_to_date():
            log.info("report metrics %s: up to date", dataset)
            return out
        write_dataset_metrics(params, dataset, profile)
        run.finish(extra={"report": "metrics", "dataset": dataset})
    return out


def tables_stage(
    params: dict[str, Any], profile: str | None = None, *, force: bool = False
) -> list[Path]:
    """Every table (and whatever else ``reports.tables.write_tables`` renders) plus a manifest."""
    from .data.fetch import MIRROR_ENV
    from .reports.tables import write_tables

    used = {
        "report": "tables",
        "datasets": list(params["datasets"]),
        **_profile_params(params, profile),
        "paper_numbers_sha256": _paper_numbers(),
    }
    # the per-dataset metrics files, and the run results the summary re-reads from them
    inputs = [p for ds in params["datasets"] for p in (metrics_path(ds), *_run_metrics(ds, used))]
    # Table 2 reads each selected dataset's statistics when they exist
    inputs += [
        p
        for ds in params["datasets"]
        if (p := Path("data") / "processed" / ds / "stats.json").is_file()
    ]
    with artifact_lock("tables"):
        run = StageRun(
            "report", TABLES_DIR / "manifest.json", inputs=inputs, outputs=None, params=used
        )
        if not force and run.up_to_date():
            log.info("report tables: up to date")
            return [Path(p) for p in (run.recorded() or {}).get("outputs", {})]
        paths = write_tables(params, profile)
        # Table 2's notes on unselected datasets say what the configured mirror holds
        run.finish(
            extra={"report": "tables", "data_mirror": os.environ.get(MIRROR_ENV)}, outputs=paths
        )
    return paths
