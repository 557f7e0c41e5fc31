"""Collecting run results: per-dataset metrics files and mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic, config, plan
from ..errors import DataFormatError
from ..layout import RESULTS, metrics_path, run_dir

PROTOCOLS = ("sampled", "full")


def read_metrics(path: Path) -> dict[str, Any]:
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "missing (run the evaluate stage)") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON ({exc})") from None
    if not isinstance(m, dict) or "sampled" not in m:
        raise DataFormatError(path, "not a metrics.json (no 'sampled' block)")
    return m


def collect(
    params: dict[str, Any], dataset: str, profile: str | None = None, root: Path = RESULTS
) -> dict[str, Any]:
    """All runs of ``dataset`` in the selected grid: per seed, plus mean and std per metric."""
    prof = config.active_profile(params, profile)
    out: dict[str, Any] = {
        "dataset": dataset,
        "profile": profile or params["profile"],
        "models": {},
    }
    for model in prof["models"]:
        seeds = {}
        for seed in plan.seeds(prof, dataset, model):
            m = read_metrics(run_dir(dataset, model, seed, root) / "metrics.json")
            seeds[str(seed)] = {p: m.get(p, {}) for p in PROTOCOLS} | {
                "best_epoch": m.get("best_epoch"),
                "train_seconds": m.get("train_seconds"),
            }
        out["models"][model] = {"seeds": seeds, **summarise(seeds)}
    return out


def summarise(seeds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for p in PROTOCOLS:
        keys = sorted({k for s in seeds.values() for k in s.get(p, {})})
        if not keys:
            continue
        vals = {k: np.array([s[p][k] for s in seeds.values() if k in s.get(p, {})]) for k in keys}
        res[p] = {
            "mean": {k: float(v.mean()) for k, v in vals.items()},
            "std": {k: float(v.std(ddof=1)) if v.size > 1 else 0.0 for k, v in vals.items()},
            "n": int(min(v.size for v in vals.values())),
        }
    return res


def write_dataset_metrics(
    params: dict[str, Any], dataset: str, profile: str | None = None
) -> dict[str, Any]:
    """Write ``results/metrics/<dataset>.json`` and return what it holds."""
    data = collect(params, dataset, profile)
    atomic.write_json(metrics_path(dataset), data)
    return data
