"""Per-dataset summaries of the studies (noise, t-SNE, sweeps): one CSV for people and figures,
one JSON for ``dvc metrics diff``. A dataset outside a study gets empty files, so both engines
can always ask for them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import atomic, config, layout
from ..errors import DataFormatError
from ..layout import RESULTS, noise_path, summary_paths, tsne_path
from ..plan import (
    ReadingPoint,
    noise_jobs,
    readings_points,
    readings_profile,
    sweep_job,
    sweep_points,
    tsne_jobs,
)
from ..provenance import read_manifest
from . import paper
from .aggregate import read_metrics

KINDS = layout.STUDY_KINDS
NOISE_KEYS = ["model", "name", "mode", "group", "level"]
SWEEP_METRICS = ("hr@10", "ndcg@10")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataFormatError(path, "missing (run its study job first)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"not a readable CSV ({exc})") from None


def _mean_std(frame: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    g = frame.groupby(keys, sort=False, dropna=False)
    out = g.size().rename("seeds").reset_index()
    for m in metrics:
        out[f"{m}_mean"] = g[m].mean().to_numpy()
        out[f"{m}_std"] = g[m].std(ddof=1).fillna(0.0).to_numpy()
    return out


# ---------------------------------------------------------------------------------------------
# Noise


def noise_summary(params: dict[str, Any], dataset: str, root: Path = RESULTS) -> pd.DataFrame:
    frames = []
    for d, model, seed in noise_jobs(params):
        if d != dataset:
            continue
        df = _read_csv(noise_path(d, model, seed, root))
        frames.append(df.assign(model=model, name=paper.DISPLAY.get(model, model), seed=seed))
    if not frames:
        return pd.DataFrame(columns=[*NOISE_KEYS, "seeds"])
    allrows = pd.concat(frames, ignore_index=True)
    metrics = [c for c in allrows.columns if c.startswith(("hr@", "ndcg@"))]
    out = _mean_std(allrows, NOISE_KEYS, metrics)
    users = allrows.groupby(NOISE_KEYS, sort=False, dropna=False)["users"].first().to_numpy()
    return out.assign(users=users)


def _level_key(level: Any) -> str:
    return (
        "all" if level is None or (isinstance(level, float) and math.isnan(level)) else f"{level:g}"
    )


def noise_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in summary.to_dict("records"):
        block = out.setdefault(row["model"], {}).setdefault(_level_key(row["level"]), {})
        for m in ("hr@5", "hr@10", "ndcg@5", "ndcg@10"):
            if f"{m}_mean" in row:
                block[m] = round(float(row[f"{m}_mean"]), 6)
    return out


# ---------------------------------------------------------------------------------------------
# t-SNE


def tsne_summary(params: dict[str, Any], dataset: str, root: Path = RESULTS) -> pd.DataFrame:
    frames = []
    for d, model, seed in tsne_jobs(params):
        if d != dataset:
            continue
        df = _read_csv(tsne_path(d, model, seed, root).with_suffix(".csv"))
        frames.append(df.assign(model=model, name=paper.DISPLAY.get(model, model), seed=seed))
    cols = ["model", "name", "seed", "side", "k", "silhouette", "best", "dims"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def tsne_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in summary[summary["best"].astype(bool)].itertuples(index=False):
        out.setdefault(r.model, {})[f"{r.side}s"] = {
            "k": int(r.k),
            "silhouette": round(float(r.silhouette), 6),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Sweeps


def _validation_at_best(path: Path, metrics: tuple[str, ...] = SWEEP_METRICS) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "missing (train the sweep point first)") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON ({exc})") from None
    best = [h for h in info.get("history", []) if h.get("epoch") == info.get("best_epoch")]
    if not best:
        raise DataFormatError(
            path, f"no history record for the best epoch {info.get('best_epoch')}"
        )
    return {
        "best_epoch": info["best_epoch"],
        "epochs_run": info.get("epochs_run"),
        "train_seconds": info.get("train_seconds"),
        **{m: best[0].get(f"valid/{m}", np.nan) for m in metrics},
    }


def sweep_summary(params: dict[str, Any], dataset: str, root: Path = RESULTS) -> pd.DataFrame:
    rows = []
    for p in sweep_points(params, dataset):
        rd = root / p.rd.relative_to(RESULTS) if p.rd.is_relative_to(RESULTS) else p.rd
        rows.append(
            {
                "param": p.param,
                "value": p.value,
                "seed": p.seed,
                "chosen": p.chosen,
                "point": p.point,
                "run": p.rd.as_posix(),
                **_validation_at_best(rd / "train.json"),
            }
        )
    cols = [
        "param",
        "value",
        "seed",
        "chosen",
        "point",
        "run",
        "best_epoch",
        "epochs_run",
        *SWEEP_METRICS,
    ]
    return pd.DataFrame(rows, columns=cols)


def sweep_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if summary.empty:
        return out
    for (param, value), g in summary.groupby(["param", "value"], sort=False):
        out.setdefault(param, {})[str(value)] = {
            m: round(float(g[m].mean()), 6) for m in SWEEP_METRICS
        }
    return out


# ---------------------------------------------------------------------------------------------
# Readings (DAVE's open points) and the baselines' tuning, selected on validation


def _run_path(rd: Path, root: Path) -> Path:
    return root / rd.relative_to(RESULTS) if rd.is_relative_to(RESULTS) else rd


def select_metric(params: dict[str, Any]) -> str:
    return config.active_profile(params, readings_profile(params))["train"]["select_metric"]


# What a point's training manifest must record for its run to count as that point: the model's
# parameters and the schedule (the rest of a job's record has changed shape across versions).
TRAINED_AS = ("dataset", "model", "seed", "model_params", "train")


def _check_trained_as(
    params: dict[str, Any], dataset: str, p: ReadingPoint, rd: Path
) -> dict[str, Any]:
    """A record filed under the wrong point (a copy, a relayout, a default changed since it
    ran) would enter the selection silently; its manifest says what it was trained with.
    Returns that manifest."""
    path = rd / "train.manifest.json"
    manifest = read_manifest(path) or {}
    recorded = manifest.get("params")
    if not isinstance(recorded, dict):
        raise DataFormatError(path, f"missing or unreadable: cannot tell what trained {p.point}")
    job = sweep_job(params, dataset, p.point, p.seed, p.model)
    wrong = [k for k in TRAINED_AS if recorded.get(k) != job.get(k)]
    if wrong:
        own = recorded.get("model_params") or {}
        mp = [
            f"{k} {own.get(k)!r} (the point sets {v!r})"
            for k, v in job["model_params"].items()
            if own.get(k) != v
        ]
        raise DataFormatError(
            path,
            f"trained as another configuration than {p.model} {p.point}: differs in "
            + ", ".join(wrong)
            + (f" ({'; '.join(mp)})" if mp else ""),
        )
    return manifest


def readings_validation(params: dict[str, Any], dataset: str, root: Path = RESULTS) -> pd.DataFrame:
    """Every point's validation numbers at its best epoch, from its ``train.json`` (and the
    manifest beside it, to check that the run is that point's; no test-split file)."""
    metric = select_metric(params)
    metrics = tuple(dict.fromkeys((metric, *SWEEP_METRICS)))
    rows = []
    for p in readings_points(params, dataset):
        _check_trained_as(params, dataset, p, _run_path(p.rd, root))
        rows.append(
            {
                "model": p.model,
                "point": p.point,
                "seed": p.seed,
                "default": p.default,
                "run": p.rd.as_posix(),
                **_validation_at_best(_run_path(p.rd, root) / "train.json", metrics),
            }
        )
    return pd.DataFrame(rows)


def select_readings(valid: pd.DataFrame, metric: str) -> dict[str, str]:
    """Per model, the point with the best mean validation ``metric`` over its seeds (ties: the
    better validation NDCG@10, then the earlier point of the grid). Reads nothing but ``valid``."""
    out: dict[str, str] = {}
    if valid.empty:
        return out
    for model, g in valid.groupby("model", sort=False):
        means = g.groupby("point", sort=False)[[metric, "ndcg@10"]].mean()
        order = {pt: i for i, pt in enumerate(means.index)}
        best = sorted(
            means.index, key=lambda pt: (-means.at[pt, metric], -means.at[pt, "ndcg@10"], order[pt])
        )
        out[str(model)] = str(best[0])
    return out


# A point's test numbers: every column of Tables 4-8, both protocols (``test_full_``), so the
# report can set a reading's row beside the main runs' (never read by the selection).
TEST_PROTOCOLS = {"sampled": "test_", "full": "test_full_"}  # metrics.json block -> prefix
TEST_COLUMNS = [f"{pre}{m}" for pre in TEST_PROTOCOLS.values() for m in paper.METRIC_COLUMNS]


def _test_metrics(path: Path) -> dict[str, float]:
    m = read_metrics(path)  # the run's metrics.json, schema-checked
    return {
        f"{pre}{k}": (m.get(proto) or {}).get(k, np.nan)
        for proto, pre in TEST_PROTOCOLS.items()
        for k in paper.METRIC_COLUMNS
    }


READING_COLUMNS = [
    "model",
    "name",
    "point",
    "kind",
    "scaling",
    "discriminator_input",
    "setting",
    "seed",
    "default",
    "as_written",
    "selected",
    "run",
    "best_epoch",
    "epochs_run",
    "train_seconds",
    "valid_hr@10",
    "valid_ndcg@10",
    *TEST_COLUMNS,
]


def readings_summary(params: dict[str, Any], dataset: str, root: Path = RESULTS) -> pd.DataFrame:
    """One row per (model, point, seed): what it sets, its validation numbers (the only ones
    the selection reads), whether it is selected, and its test numbers (for the report)."""
    valid = readings_validation(params, dataset, root)
    if valid.empty:
        return pd.DataFrame(columns=READING_COLUMNS)
    metric = select_metric(params)
    chosen = select_readings(valid, metric)
    as_written = params["readings"]["as_written"]
    settings = {(p.model, p.point): p.setting for p in readings_points(params, dataset)}
    rows = []
    for r in valid.to_dict("records"):
        setting = settings[(r["model"], r["point"])]
        reading = "scaling" in setting
        rows.append(
            {
                "model": r["model"],
                "name": paper.DISPLAY.get(r["model"], r["model"]),
                "point": r["point"],
                "kind": "reading" if reading else "tuning",
                "scaling": setting.get("scaling") if reading else None,
                "discriminator_input": setting.get("discriminator_input") if reading else None,
                "setting": None if reading else json.dumps(setting, sort_keys=True),
                "seed": r["seed"],
                "default": r["default"],
                "as_written": reading
                and setting["scaling"] == as_written
                and setting["discriminator_input"] in (None, "embedding"),
                "selected": chosen.get(r["model"]) == r["point"],
                "run": r["run"],
                "best_epoch": r["best_epoch"],
                "epochs_run": r["epochs_run"],
                "train_seconds": r["train_seconds"],
                "valid_hr@10": r["hr@10"],
                "valid_ndcg@10": r["ndcg@10"],
                **_test_metrics(_run_path(Path(r["run"]), root) / "metrics.json"),
            }
        )
    return pd.DataFrame(rows, columns=READING_COLUMNS)


def readings_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model, g in summary.groupby("model", sort=False):
        sel = g[g["selected"].astype(bool)]
        block: dict[str, Any] = {"selected": str(sel["point"].iloc[0]) if len(sel) else None}
        for point, gp in g.groupby("point", sort=False):
            block[str(point)] = {
                c: round(float(gp[c].mean()), 6)
                for c in ("valid_hr@10", "valid_ndcg@10", "test_hr@10", "test_ndcg@10")
            }
        out[str(model)] = block
    return out


def readings_progress(params: dict[str, Any], dataset: str, root: Path = RESULTS) -> str:
    """The readings study while it runs, as Markdown: every point, run or not yet (with the
    commit that trained it and its validation and test numbers), and per model the selection
    once all of its points have run (the same rule as the summary; a partial grid selects
    nothing). Reads the records only and writes nothing."""
    metric = select_metric(params)
    metrics = tuple(dict.fromkeys((metric, *SWEEP_METRICS)))
    lines = [
        "| model | point | run | commit | best / epochs | valid HR@10 / NDCG@10 "
        "| test HR@10 / NDCG@10 | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    done: dict[str, list[dict[str, Any]]] = {}
    total: dict[str, int] = {}
    for pt in readings_points(params, dataset):
        rd = _run_path(pt.rd, root)
        run = rd.relative_to(root).as_posix() if rd.is_relative_to(root) else rd.as_posix()
        total[pt.model] = total.get(pt.model, 0) + 1
        if not (rd / "train.json").is_file():
            lines.append(f"| {pt.model} | `{pt.point}` | `{run}` | not run yet | | | | |")
            continue
        manifest = _check_trained_as(params, dataset, pt, rd)
        v = _validation_at_best(rd / "train.json", metrics)
        done.setdefault(pt.model, []).append({"model": pt.model, "point": pt.point, **v})
        commit = str((manifest.get("git") or {}).get("commit", "?"))[:7]
        test = "–"
        if (rd / "metrics.json").is_file():
            t = _test_metrics(rd / "metrics.json")
            test = f"{t['test_hr@10']:.4f} / {t['test_ndcg@10']:.4f}"
        lines.append(
            f"| {pt.model} | `{pt.point}` | `{run}` | `{commit}` | "
            f"{v['best_epoch']} / {v['epochs_run']} | {v['hr@10']:.4f} / {v['ndcg@10']:.4f} | "
            f"{test} | {v['train_seconds']:.0f} |"
        )
    lines += ["", "| model | points run | selected on validation |", "|---|---|---|"]
    for model, n in total.items():
        have = done.get(model, [])
        if len(have) < n:
            chosen = f"waits for {n - len(have)} more point(s)"
        else:
            chosen = f"`{select_readings(pd.DataFrame(have), metric)[model]}`"
        lines.append(f"| {model} | {len(have)} of {n} | {chosen} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def write_summary(
    kind: str,
    params: dict[str, Any],
    dataset: str,
    root: Path = RESULTS,
    runs_root: Path | None = None,
) -> list[Path]:
    """The summary of ``kind`` under ``root``, from the runs under ``runs_root`` (default
    ``root``; the readings study can read committed records laid out like results/)."""
    build, metrics = {
        "noise": (noise_summary, noise_metrics),
        "tsne": (tsne_summary, tsne_metrics),
        "sweeps": (sweep_summary, sweep_metrics),
        "readings": (readings_summary, readings_metrics),
    }[kind]
    table = build(params, dataset, runs_root or root)
    if kind in ("sweeps", "readings"):
        # DVC tracks this directory; a study that reuses only main runs leaves it empty
        layout.sweep_runs_root(dataset, root).mkdir(parents=True, exist_ok=True)
    csv, js = summary_paths(kind, dataset, root)
    with atomic.atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    atomic.write_json(js, metrics(table))
    return [csv, js]


def read_summary(kind: str, dataset: str, root: Path = RESULTS) -> pd.DataFrame | None:
    """A study's summary, or None where it was not produced or holds no rows."""
    csv, _ = summary_paths(kind, dataset, root)
    if not csv.is_file():
        return None
    df = _read_csv(csv)
    return None if df.empty else df
