"""The points of the sweeps (P§6, Figures 5-6) and of the readings study (docs/models.md): each is
trained into its own directory, on validation, and a readings point is also evaluated on test
(for the report; the selection reads validation only). A point whose configuration equals a
main-grid run *is* that run (:mod:`dave_repro.plan`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plan import is_study_point, readings_points, sweep_job, sweep_points
from .evaluate import evaluate
from .train import train


def point_run(
    params: dict[str, Any], dataset: str, point: str, seed: int, model: str | None
) -> tuple[dict[str, Any], Path]:
    """The configuration of a sweep or readings point and the directory of its run."""
    job = sweep_job(params, dataset, point, seed, model)
    if is_study_point(point):
        match: list[Any] = [
            p
            for p in readings_points(params, dataset)
            if (p.model, p.point, p.seed) == (job["model"], point, seed)
        ]
        where = "readings (grid, tuning, seeds, datasets)"
    else:
        match = [p for p in sweep_points(params, dataset) if p.point == point and p.seed == seed]
        where = "sweeps.grid / sweeps.seeds"
    if not match:
        raise ConfigError([f"point {point} seed {seed} of {dataset} is not in {where}"])
    return job, match[0].rd


def sweep(
    params: dict[str, Any],
    dataset: str,
    point: str,
    seed: int,
    *,
    model: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> bool:
    """Train one sweep point (or readings point) into its own directory, on validation."""
    job, rd = point_run(params, dataset, point, seed, model)
    return train(job, params, device=device, threads=threads, force=force, rd=rd)


def point_evaluate(
    params: dict[str, Any],
    dataset: str,
    point: str,
    seed: int,
    *,
    model: str,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> bool:
    """Evaluate one readings point on test: numbers for the report, never for the selection."""
    if not is_study_point(point):
        raise ConfigError([f"point {point}: only the readings study's points are evaluated"])
    job, rd = point_run(params, dataset, point, seed, model)
    return evaluate(job, params, device=device, threads=threads, force=force, rd=rd)
