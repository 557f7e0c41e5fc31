"""The report stages, with manifests like every other stage: the per-dataset metrics file, the
tables, each study's summary, the figures and ``report.md``.

Each goes through :func:`.base.execute`, so its manifest is the same whichever engine ran the
command and ``dave audit`` can trace every number in a table, a figure or the report back to the
runs, the split and the raw files it came from.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .. import config, layout, plan
from ..hashing import sha256_file
from ..provenance import PACKAGE_DIR, StageRun
from .base import Done, Stage, execute, recorded_outputs

log = logging.getLogger(__name__)

PAPER_NUMBERS = PACKAGE_DIR / "reports" / "paper_numbers"


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
        layout.run_dir(dataset, m, s) / "metrics.json"
        for m in used["models"]
        for s in used["seeds"]
    ]


def metrics(
    params: dict[str, Any], dataset: str, profile: str | None = None, *, force: bool = False
) -> Path:
    """Every run of ``dataset`` in the selected grid, in one file (what `dvc metrics` reads)."""
    used = {"report": "metrics", "dataset": dataset, **_profile_params(params, profile)}
    out = layout.metrics_path(dataset)
    stage = Stage(
        "report",
        f"report metrics {dataset}",
        f"metrics/{dataset}",
        layout.metrics_manifest_path(dataset),
        inputs=_run_metrics(dataset, used),
        outputs=[out],
        params=used,
    )

    def work(run: StageRun) -> Done:
        from ..reports.aggregate import write_dataset_metrics

        write_dataset_metrics(params, dataset, profile)
        return Done(extra={"report": "metrics", "dataset": dataset})

    execute(stage, work, force=force)
    return out


def tables(
    params: dict[str, Any], profile: str | None = None, *, force: bool = False
) -> list[Path]:
    """Every table (and whatever else ``reports.tables.write_tables`` renders) plus a manifest."""
    from ..data.fetch import MIRROR_ENV

    used = {
        "report": "tables",
        "datasets": list(params["datasets"]),
        **_profile_params(params, profile),
        "paper_numbers_sha256": _paper_numbers(),
    }
    # the per-dataset metrics files, and the run results the summary re-reads from them
    inputs = [
        p for ds in params["datasets"] for p in (layout.metrics_path(ds), *_run_metrics(ds, used))
    ]
    # Table 2 reads each selected dataset's statistics when they exist
    inputs += [p for ds in params["datasets"] if (p := layout.stats_path(ds)).is_file()]
    stage = Stage(
        "report",
        "report tables",
        "tables",
        layout.tables_dir() / "manifest.json",
        inputs=inputs,
        outputs=None,
        params=used,
    )
    written: list[Path] = []

    def work(run: StageRun) -> Done:
        from ..reports.tables import write_tables

        written.extend(write_tables(params, profile))
        # Table 2's notes on unselected datasets say what the configured mirror holds; the
        # variable's name is recorded, never a path of this machine
        mirror = "set" if os.environ.get(MIRROR_ENV) else None
        return Done(extra={"report": "tables", "data_mirror": mirror}, outputs=written)

    if not execute(stage, work, force=force):
        return recorded_outputs(stage.manifest)
    return written


def _summary_inputs(kind: str, params: dict[str, Any], dataset: str) -> list[Path]:
    if kind == "noise":
        return [Path(t) for t in plan.noise_targets(params, dataset)]
    if kind == "tsne":
        return [Path(t).with_suffix(".csv") for t in plan.tsne_targets(params, dataset)]
    if kind == "sweeps":
        return [Path(t) for t in plan.sweep_targets(params, dataset)]
    return [Path(t) for t in plan.readings_targets(params, dataset)]


def _summary_settings(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a summary depends on: its study's section and the jobs of the profile."""
    key = {"noise": "noise", "tsne": "tsne", "sweeps": "sweeps", "readings": "readings"}[kind]
    return {
        "report": kind,
        key: params[key],
        **_profile_params(params, None),
        "grid": [list(j) for j in plan.grid(params)],
    }


def summary(kind: str, params: dict[str, Any], dataset: str, *, force: bool = False) -> list[Path]:
    """A study's per-dataset summary (``results/<kind>/<dataset>.{csv,json}``)."""
    csv, js = layout.summary_paths(kind, dataset)
    stage = Stage(
        "report",
        f"report {kind} {dataset}",
        f"{kind}/{dataset}",
        csv.with_suffix(".manifest.json"),
        inputs=_summary_inputs(kind, params, dataset),
        outputs=[csv, js],
        params={**_summary_settings(kind, params), "dataset": dataset},
    )

    def work(run: StageRun) -> Done:
        from ..reports.studies import write_summary

        write_summary(kind, params, dataset)
        return Done(extra={"report": kind, "dataset": dataset})

    execute(stage, work, force=force)
    return [csv, js]


def _figure_inputs(params: dict[str, Any]) -> list[Path]:
    out = []
    for ds in params["datasets"]:
        out += [p for kind in layout.STUDY_KINDS for p in layout.summary_paths(kind, ds)[:1]]
        out += [Path(t) for t in plan.tsne_targets(params, ds)]
    return [p for p in out if p.is_file()]


def figures(params: dict[str, Any], *, force: bool = False) -> list[Path]:
    """Figures 2-6 and the readings figure (``results/figures/``, its manifest inside)."""
    used = {
        "report": "figures",
        "datasets": list(params["datasets"]),
        "profile": params["profile"],
        **{k: params[k] for k in ("noise", "tsne", "sweeps", "readings")},
        "paper_numbers_sha256": _paper_numbers(),
    }
    stage = Stage(
        "report",
        "report figures",
        "figures",
        layout.figures_dir() / "manifest.json",
        inputs=_figure_inputs(params),
        outputs=None,
        params=used,
    )
    written: list[Path] = []

    def work(run: StageRun) -> Done:
        from ..reports.figures import write_figures

        written.extend(write_figures(params))
        return Done(extra={"report": "figures"}, outputs=written)

    if not execute(stage, work, force=force):
        return recorded_outputs(stage.manifest)
    return written


def report(params: dict[str, Any], *, force: bool = False) -> Path:
    """``results/report.md`` from the tables, the summaries and the figures."""
    out = layout.report_path()
    tables_dir, figures_dir = layout.tables_dir(), layout.figures_dir()
    inputs = [
        *(p for p in sorted(tables_dir.glob("*")) if p.is_file() and p.name != "manifest.json"),
        *(p for p in sorted(figures_dir.glob("*.png"))),
        *(
            p
            for ds in params["datasets"]
            for kind in layout.STUDY_KINDS
            if (p := layout.summary_paths(kind, ds)[0]).is_file()
        ),
    ]
    stage = Stage(
        "report",
        "report write",
        "report",
        out.with_suffix(".manifest.json"),
        inputs=inputs,
        outputs=[out],
        params={
            "report": "report",
            "datasets": list(params["datasets"]),
            **_profile_params(params, None),
            "readings": params["readings"],
        },
    )

    def work(run: StageRun) -> Done:
        from ..reports.report import write_report

        write_report(params)
        return Done(extra={"report": "report"})

    execute(stage, work, force=force)
    return out
