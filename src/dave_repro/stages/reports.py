"""The report stages, with manifests like every other stage: the per-dataset metrics file, the
tables, each study's summary, the figures and ``report.md``.

Each goes through :func:`.base.execute`, so its manifest is the same whichever engine ran the
command and ``dave audit`` can trace every number in a table, a figure or the report back to the
runs, the split and the raw files it came from.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .. import atomic, config, layout, plan
from ..errors import ConfigError
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
        "dataset_seeds": prof.get("dataset_seeds", {}),
        # what each dataset changes in a model (the tables' notes name it)
        "dataset_models": {
            d: hp["models"] for d, hp in params["hparams"].items() if "models" in hp
        },
    }


def _paper_numbers() -> dict[str, str]:
    """The paper's numbers are data files, not code: they enter as hashed parameters."""
    return {p.name: sha256_file(p) for p in sorted(PAPER_NUMBERS.glob("*.csv"))}


def _displayed() -> list[list[str]]:
    """The models' display names in table order: declared in the model modules (their
    ``FAMILY``), which the report stages do not import, so they enter as parameters."""
    from ..models.specs import DISPLAY

    return [[model, name] for model, name in DISPLAY.items()]


def _run_metrics(dataset: str, used: dict[str, Any]) -> list[Path]:
    return [
        layout.run_dir(dataset, m, s) / "metrics.json"
        for m in used["models"]
        for s in plan.seeds(used, dataset, m)
    ]


# The columns of the paper's Tables 4-8 that `dvc metrics show/diff` and `dvc exp show` print.
COMPACT_METRICS = ("hr@10", "ndcg@10")
# What a run's history records besides the curves (wall-clock time differs on every rerun).
NOT_CURVES = ("epoch", "seconds")


def _train_records(dataset: str, used: dict[str, Any]) -> list[Path]:
    return [
        layout.run_dir(dataset, m, s) / "train.json"
        for m in used["models"]
        for s in plan.seeds(used, dataset, m)
    ]


def compact_metrics(collected: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per model, test HR@10 / NDCG@10 of the sampled protocol (the paper's), mean over seeds:
    the few numbers worth a column, out of the hundreds the per-dataset file holds."""
    return {
        model: {k: res["sampled"]["mean"][k] for k in COMPACT_METRICS}
        for model, res in collected["models"].items()
    }


def _write_compact(dataset: str, compact: dict[str, dict[str, float]]) -> None:
    """One file per model, so `dvc metrics show` prints the dataset as a models × metrics table;
    files of models no longer in the grid go (Snakemake runs do not clean up like DVC)."""
    folder = layout.compact_metrics_dir(dataset)
    for model, values in compact.items():
        atomic.write_json(layout.compact_metrics_path(dataset, model), values)
    for stale in folder.glob("*.json"):
        if stale.stem not in compact:
            stale.unlink()


def _metric_order(name: str) -> tuple[bool, str, int]:
    """Validation metrics first (what early stopping reads), then losses; @5 before @10."""
    base, _, k = name.partition("@")
    return (not name.startswith("valid/"), base, int(k) if k.isdigit() else 0)


def curve_rows(history: dict[tuple[str, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Long rows (model, seed, epoch, metric, value), the template's input: a panel per
    ``metric``, in the order ``panel`` gives (vega-lite would sort the names), coloured by
    ``model``."""
    metrics = {k for records in history.values() for r in records for k in r}
    rows = []
    for panel, metric in enumerate(sorted(metrics - set(NOT_CURVES), key=_metric_order)):
        for (model, seed), records in history.items():
            rows += [
                {
                    "model": model,
                    "seed": seed,
                    "epoch": r["epoch"],
                    "metric": metric,
                    "panel": panel,
                    "value": float(f"{r[metric]:.6g}"),
                }
                for r in records
                if isinstance(r.get(metric), int | float)
            ]
    return rows


def _write_curves(dataset: str, used: dict[str, Any]) -> None:
    """Every run's per-epoch history (``train.json``, written atomically, unlike the DVCLive
    copy) in one file, a row per line so that git diffs stay readable."""
    history = {
        (m, s): json.loads((layout.run_dir(dataset, m, s) / "train.json").read_text())["history"]
        for m in used["models"]
        for s in plan.seeds(used, dataset, m)
    }
    lines = [json.dumps(r, separators=(",", ":")) for r in curve_rows(history)]
    atomic.write_text(layout.curves_table_path(dataset), "[\n" + ",\n".join(lines) + "\n]\n")


def metrics(
    params: dict[str, Any], dataset: str, profile: str | None = None, *, force: bool = False
) -> Path:
    """Every run of ``dataset`` in the selected grid, in one file, and the two views of it that
    DVC prints readably: test HR@10 / NDCG@10 per model (`dvc metrics show`) and the per-epoch
    curves (`dvc plots show`)."""
    used = {"report": "metrics", "dataset": dataset, **_profile_params(params, profile)}
    out = layout.metrics_path(dataset)
    stage = Stage(
        "report",
        f"report metrics {dataset}",
        f"metrics/{dataset}",
        layout.metrics_manifest_path(dataset),
        inputs=[*_run_metrics(dataset, used), *_train_records(dataset, used)],
        outputs=plan.metrics_outputs(params, dataset, profile),
        params=used,
    )

    def work(run: StageRun) -> Done:
        from ..reports.aggregate import write_dataset_metrics

        collected = write_dataset_metrics(params, dataset, profile)
        _write_compact(dataset, compact_metrics(collected))
        _write_curves(dataset, used)
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
        "displayed": _displayed(),
    }
    # the per-dataset metrics files, and the run results the summary re-reads from them
    inputs = [
        p for ds in params["datasets"] for p in (layout.metrics_path(ds), *_run_metrics(ds, used))
    ]
    # Table 2 reads each selected dataset's statistics when they exist; Tables 4-8 the readings
    # study's summary (which point each row's runs are; the as-written rows)
    inputs += [p for ds in params["datasets"] if (p := layout.stats_path(ds)).is_file()]
    inputs += [
        p for ds in params["datasets"] if (p := layout.summary_paths("readings", ds)[0]).is_file()
    ]
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


def summary(
    kind: str,
    params: dict[str, Any],
    dataset: str,
    *,
    runs_root: Path | None = None,
    force: bool = False,
) -> list[Path]:
    """A study's per-dataset summary (``results/<kind>/<dataset>.{csv,json}``). ``runs_root``
    (the readings study only): read the points' records from there, laid out like ``results/``
    (the committed exploration runs, each naming the commit that made it), not from results/."""
    if runs_root is not None and kind != "readings":
        raise ConfigError([f"report {kind}: only the readings summary reads another runs root"])
    csv, js = layout.summary_paths(kind, dataset)
    inputs = _summary_inputs(kind, params, dataset)
    if runs_root is not None:
        inputs = [runs_root / p.relative_to(layout.RESULTS) for p in inputs]
    extra = {"runs_root": runs_root.as_posix()} if runs_root is not None else {}
    stage = Stage(
        "report",
        f"report {kind} {dataset}",
        f"{kind}/{dataset}",
        csv.with_suffix(".manifest.json"),
        inputs=inputs,
        outputs=[csv, js],
        params={**_summary_settings(kind, params), "dataset": dataset, **extra},
    )

    def work(run: StageRun) -> Done:
        from ..reports.studies import write_summary

        write_summary(kind, params, dataset, runs_root=runs_root)
        return Done(extra={"report": kind, "dataset": dataset, **extra})

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
        "displayed": _displayed(),
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
        # the tables as the tables stage wrote them: not its manifest, nor the hidden file
        # Snakemake keeps in a directory output (.snakemake_timestamp)
        *(p for p in sorted(tables_dir.glob("[!.]*")) if p.is_file() and p.name != "manifest.json"),
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
            "displayed": _displayed(),
        },
    )

    def work(run: StageRun) -> Done:
        from ..reports.report import write_report

        write_report(params)
        return Done(extra={"report": "report"})

    execute(stage, work, force=force)
    return out
