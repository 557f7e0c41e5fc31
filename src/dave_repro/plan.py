"""Which jobs exist, decided once from params.yaml for both engines, the stages and the reports.

* the main grid: every (dataset, model, seed) of the selected profile;
* noise (P§4): every run of the profile whose dataset is in ``noise.datasets`` and whose model
  is in ``noise.models`` and reads interaction vectors (others cannot be corrupted);
* t-SNE (P§5): the runs of the profile's first seed of ``tsne.models`` on ``tsne.datasets``;
* sweeps (P§6): one training per grid value of ``sweeps.grid`` and sweep seed. A point whose
  resolved configuration equals another's is trained once (``default``), and one that equals a
  run of the main grid *is* that run: nothing is trained twice;
* readings (docs/models.md): every named reading of DAVE's open points and every baseline's
  tuning point, selected on validation; the same reuse of main-grid runs.

Each job's artifacts are placed by :mod:`.layout`; the stages that make them are in
:mod:`.stages`. Nothing here runs anything or imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config, layout
from .errors import ConfigError
from .layout import run_dir, sweep_run_dir
from .models.specs import READS_INTERACTION_VECTORS

Job = tuple[str, str, int]


def grid(params: dict[str, Any], profile: str | None = None) -> list[Job]:
    """Every (dataset, model, seed) job of the selected profile, in a stable order."""
    prof = config.active_profile(params, profile)
    return [
        (d, m, s) for d in params["datasets"] for m in prof["models"] for s in seeds(prof, d, m)
    ]


def seeds(prof: dict[str, Any], dataset: str, model: str) -> list[int]:
    """The seeds ``model`` runs with on ``dataset``: the profile's, or the fewer that its
    ``dataset_seeds`` names (the slowest models on a large dataset)."""
    return prof.get("dataset_seeds", {}).get(dataset, {}).get(model, prof["seeds"])


def noise_jobs(params: dict[str, Any], profile: str | None = None) -> list[Job]:
    prof, study = config.active_profile(params, profile), params["noise"]
    models = [
        m
        for m in study["models"]
        if m in prof["models"]
        and m in params["models"]
        and params["models"][m]["family"] in READS_INTERACTION_VECTORS
    ]
    return [
        (d, m, s)
        for d in params["datasets"]
        if d in study["datasets"]
        for m in models
        for s in seeds(prof, d, m)
    ]


def tsne_jobs(params: dict[str, Any], profile: str | None = None) -> list[Job]:
    prof, study = config.active_profile(params, profile), params["tsne"]
    models = [
        m
        for m in study["models"]
        if m in prof["models"] and m in params["models"] and params["models"][m]["family"] == "dave"
    ]
    return [
        (d, m, seeds(prof, d, m)[0])
        for d in params["datasets"]
        if d in study["datasets"]
        for m in models
    ]


def noise_settings(params: dict[str, Any]) -> dict[str, Any]:
    """What a noise job's result depends on (not which datasets or models are studied)."""
    return {k: params["noise"][k] for k in ("levels", "mode", "seed")}


def tsne_settings(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params["tsne"][k] for k in ("clusters", "perplexity", "seed")}


@dataclass(frozen=True)
class SweepPoint:
    param: str
    value: int
    seed: int
    point: str  # directory name: "<param>-<value>", or "default" when nothing changes
    rd: Path  # where its train.json lives (a main-grid run where the configuration is the same)
    chosen: bool  # the paper's setting for this dataset (Section 4.1.4)


def sweep_profile(params: dict[str, Any]) -> str:
    return params["sweeps"]["profile"] or params["profile"]


READING_PREFIX = "reading-"
TUNE_PREFIX = "tune-"
WITH_INPUT = "+input"


def parse_point(point: str) -> dict[str, int]:
    if point == "default":
        return {}
    param, _, value = point.rpartition("-")
    if param not in config.SWEEPABLE or not value.isdigit():
        raise ConfigError(
            [
                f"sweep point {point!r}: expected 'default' or <param>-<value> with param "
                f"one of {', '.join(config.SWEEPABLE)}"
            ]
        )
    return {param: int(value)}


def sweep_job(
    params: dict[str, Any], dataset: str, point: str, seed: int, model: str | None = None
) -> dict[str, Any]:
    """The configuration of one point: a Figures 5-6 sweep point (of ``sweeps.model``) or, for
    ``reading-...`` points, one reading of ``model``'s open points."""
    if is_study_point(point):
        if model is None:
            raise ConfigError([f"point {point}: a reading needs its model (--model)"])
        return config.job_config(
            params,
            dataset,
            model,
            seed,
            readings_profile(params),
            overrides=reading_overrides(params, model, point),
        )
    sw = params["sweeps"]
    if model is not None and model != sw["model"]:
        raise ConfigError([f"point {point}: the sweep of Figures 5-6 is of {sw['model']}"])
    return config.job_config(
        params, dataset, sw["model"], seed, sweep_profile(params), overrides=parse_point(point)
    )


# -- The readings study (docs/models.md): DAVE's open points, and each baseline's tuning -----
# Every point is a named set of model parameters, trained like a sweep point (validation only)
# and evaluated on test for the report; the selection per model reads validation numbers only.


def readings_profile(params: dict[str, Any]) -> str:
    return params["readings"]["profile"] or params["profile"]


def readings_grid(params: dict[str, Any]) -> dict[str, Any]:
    """The DAVE grid of the profile the readings train under (its own ``readings_grid``)."""
    prof = config.active_profile(params, readings_profile(params))
    return prof.get("readings_grid", params["readings"]["grid"])


def readings_tuning(params: dict[str, Any]) -> dict[str, Any]:
    """The baselines' tuning grids of that profile (its own ``readings_tuning``, if any)."""
    prof = config.active_profile(params, readings_profile(params))
    return prof.get("readings_tuning", params["readings"]["tuning"])


def reading_name(scaling: str, discriminator_input: str | None) -> str:
    suffix = WITH_INPUT if discriminator_input == "embedding+input" else ""
    return f"{READING_PREFIX}{scaling}{suffix}"


def tune_name(name: str) -> str:
    return f"{TUNE_PREFIX}{name}"


def _is_adversarial(params: dict[str, Any], model: str) -> bool:
    return params["models"][model].get("regularizer") == "adversarial"


def is_study_point(point: str) -> bool:
    return point.startswith((READING_PREFIX, TUNE_PREFIX))


def reading_overrides(params: dict[str, Any], model: str, point: str) -> dict[str, Any]:
    """The model parameters that a point sets: ``reading-<scaling>[+input]`` (DAVE family) or
    ``tune-<name>`` (a baseline's tuning grid, ``readings.tuning.<model>.<name>``)."""
    if point.startswith(TUNE_PREFIX):
        grid = readings_tuning(params).get(model, {})
        name = point.removeprefix(TUNE_PREFIX)
        if name not in grid:
            raise ConfigError(
                [f"point {point}: not in readings.tuning.{model} ({', '.join(grid) or 'empty'})"]
            )
        return dict(grid[name])
    grid = readings_grid(params)
    name = point.removeprefix(READING_PREFIX)
    with_input = name.endswith(WITH_INPUT)
    scaling = name.removesuffix(WITH_INPUT)
    errors = []
    if model not in params["readings"]["models"]:
        errors.append(f"reading {point}: model {model} is not in readings.models")
    if scaling not in grid["scaling"]:
        errors.append(
            f"reading {point}: unknown scaling {scaling!r} (grid: {', '.join(grid['scaling'])})"
        )
    if errors:
        raise ConfigError(errors)
    overrides = dict(grid["scaling"][scaling])
    if _is_adversarial(params, model):
        if with_input:
            if "embedding+input" not in grid["discriminator_input"]:
                raise ConfigError(
                    [f"reading {point}: the grid has no discriminator input 'embedding+input'"]
                )
            overrides["discriminator_input"] = "embedding+input"
        elif "default" not in grid["discriminator_input"]:
            overrides["discriminator_input"] = "embedding"
        # else "default": the model keeps its own discriminator input
    elif with_input:
        raise ConfigError([f"reading {point}: {model} has no discriminator"])
    return overrides


@dataclass(frozen=True)
class ReadingPoint:
    model: str
    point: str  # "reading-<scaling>[+input]" or "tune-<name>"
    setting: dict[str, Any]  # {"scaling", "discriminator_input"}, or a tuning point's overrides
    seed: int
    rd: Path  # where its run lives (a main-grid run where the configuration is the same)
    default: bool  # params.yaml's own configuration of the model (the current defaults)


def _model_points(params: dict[str, Any], model: str) -> list[tuple[str, dict[str, Any]]]:
    if params["models"][model]["family"] == "dave":
        if model not in params["readings"]["models"]:
            return []
        grid = readings_grid(params)
        inputs = grid["discriminator_input"] if _is_adversarial(params, model) else [None]
        own = params["models"][model].get("discriminator_input")
        return [  # the setting names the input D sees ("default": the model's own)
            (
                reading_name(sc, di),
                {"scaling": sc, "discriminator_input": own if di == "default" else di},
            )
            for sc in grid["scaling"]
            for di in inputs
        ]
    grid = readings_tuning(params).get(model, {})
    return [(tune_name(name), dict(overrides)) for name, overrides in grid.items()]


def readings_points(params: dict[str, Any], dataset: str) -> list[ReadingPoint]:
    """Every (model, point, seed) of the readings study on ``dataset``: the models of the
    selected profile that have a grid (``readings.models``, ``readings.tuning``)."""
    study = params["readings"]
    if dataset not in study["datasets"]:
        return []
    prof = config.active_profile(params)
    out = []
    for model in prof["models"]:
        points = _model_points(params, model)
        for seed in study["seeds"] if points else []:
            own = config.job_config(params, dataset, model, seed, readings_profile(params))
            main = (
                config.job_config(params, dataset, model, seed)
                if seed in seeds(prof, dataset, model)
                else None
            )
            for point, setting in points:
                job = sweep_job(params, dataset, point, seed, model)
                rd = (
                    run_dir(dataset, model, seed)
                    if job == main
                    else sweep_run_dir(dataset, model, point, seed)
                )
                out.append(ReadingPoint(model, point, setting, seed, rd, job == own))
    return out


def sweep_points(params: dict[str, Any], dataset: str) -> list[SweepPoint]:
    sw, prof = params["sweeps"], config.active_profile(params)
    model = sw["model"]
    out = []
    for seed in sw["seeds"]:
        default = sweep_job(params, dataset, "default", seed)
        main = (
            config.job_config(params, dataset, model, seed)
            if model in prof["models"] and seed in seeds(prof, dataset, model)
            else None
        )
        for param, values in prof.get("sweep_grid", sw["grid"]).items():
            for value in values:
                job = sweep_job(params, dataset, f"{param}-{value}", seed)
                point = "default" if job == default else f"{param}-{value}"
                rd = (
                    run_dir(dataset, model, seed)
                    if job == main
                    else sweep_run_dir(dataset, model, point, seed)
                )
                chosen = value == default["model_params"][param]
                out.append(SweepPoint(param, value, seed, point, rd, chosen))
    return out


def sweep_runs(params: dict[str, Any], dataset: str) -> list[tuple[str, int]]:
    """The (point, seed) trainings the sweeps need beyond the main grid, each once."""
    main = layout.RESULTS / "runs"
    seen = {
        (p.point, p.seed): None for p in sweep_points(params, dataset) if main not in p.rd.parents
    }
    return list(seen)


# ---------------------------------------------------------------------------------------------
# Targets: the files each engine asks for


def run_targets(params: dict[str, Any], filename: str, dataset: str | None = None) -> list[str]:
    return [
        (run_dir(d, m, s) / filename).as_posix()
        for d, m, s in grid(params)
        if dataset is None or d == dataset
    ]


def metrics_outputs(params: dict[str, Any], dataset: str, profile: str | None = None) -> list[Path]:
    """What the metrics stage of ``dataset`` writes beside its manifest: every run in one file,
    test HR@10 / NDCG@10 per model of the grid (`dvc metrics show`), the per-epoch curves table
    (`dvc plots show`). Both engines declare these, and the stage writes exactly these."""
    models = config.active_profile(params, profile)["models"]
    return [
        layout.metrics_path(dataset),
        *(layout.compact_metrics_path(dataset, m) for m in models),
        layout.curves_table_path(dataset),
    ]


def noise_targets(params: dict[str, Any], dataset: str) -> list[str]:
    return [layout.noise_path(d, m, s).as_posix() for d, m, s in noise_jobs(params) if d == dataset]


def tsne_targets(params: dict[str, Any], dataset: str) -> list[str]:
    return [layout.tsne_path(d, m, s).as_posix() for d, m, s in tsne_jobs(params) if d == dataset]


def sweep_targets(params: dict[str, Any], dataset: str) -> list[str]:
    """train.json of every sweep point (main-grid runs where a point is one of them)."""
    return sorted({(p.rd / "train.json").as_posix() for p in sweep_points(params, dataset)})


def readings_targets(params: dict[str, Any], dataset: str) -> list[str]:
    """train.json (validation, the selection) and metrics.json (test, the report) of every
    readings point (main-grid runs where a point is one of them)."""
    return sorted(
        {
            (p.rd / name).as_posix()
            for p in readings_points(params, dataset)
            for name in ("train.json", "metrics.json")
        }
    )


def trainings(params: dict[str, Any], profile: str | None = None) -> dict[str, int]:
    """How many trainings the selected profile runs: the grid, and the studies' own points
    beyond it (what ``dave check-params`` announces)."""
    p = params if profile is None else {**params, "profile": profile}
    sweeps = sum(len(sweep_runs(p, d)) for d in p["datasets"])
    readings = sum(
        1
        for d in p["datasets"]
        for pt in readings_points(p, d)
        if not layout.is_under(pt.rd, layout.RESULTS / "runs")
    )
    return {"grid": len(grid(p)), "sweeps": sweeps, "readings": readings}
