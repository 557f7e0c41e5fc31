"""The studies of Section 4.2 beyond Tables 4-8, as jobs: noise (P§4), t-SNE (P§5), sweeps (P§6).

Which jobs exist is decided here from params.yaml, for both engines and the reports alike:

* noise: every (dataset, model, seed) of the profile whose dataset is in ``noise.datasets`` and
  whose model is in ``noise.models`` and reads interaction vectors (others cannot be corrupted);
* t-SNE: the runs of the profile's first seed of ``tsne.models`` on ``tsne.datasets``;
* sweeps: one training per grid value of ``sweeps.grid`` and sweep seed, on every selected
  dataset. A point whose resolved configuration equals another's is trained once (``default``),
  and one that equals a run of the main grid *is* that run: nothing is trained twice.

Each job is a content-addressed stage (:class:`~dave_repro.provenance.StageRun`) reading a
trained run; none of them writes into the main grid's run directories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic, config
from .errors import ConfigError
from .locks import artifact_lock
from .models.specs import READS_INTERACTION_VECTORS
from .provenance import StageRun
from .runs import (
    EVAL_INPUTS,
    RESULTS,
    data_dir,
    load_run,
    run_dir,
    sweep_run_dir,
    train_params,
    train_stage,
)

log = logging.getLogger(__name__)

Job = tuple[str, str, int]


# ---------------------------------------------------------------------------------------------
# Which jobs


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
        for s in prof["seeds"]
    ]


def tsne_jobs(params: dict[str, Any], profile: str | None = None) -> list[Job]:
    prof, study = config.active_profile(params, profile), params["tsne"]
    models = [
        m
        for m in study["models"]
        if m in prof["models"] and m in params["models"] and params["models"][m]["family"] == "dave"
    ]
    return [
        (d, m, prof["seeds"][0])
        for d in params["datasets"]
        if d in study["datasets"]
        for m in models
    ]


def noise_settings(params: dict[str, Any]) -> dict[str, Any]:
    """What a noise job's result depends on (not which datasets or models are studied)."""
    return {k: params["noise"][k] for k in ("levels", "mode", "seed")}


def tsne_settings(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params["tsne"][k] for k in ("clusters", "perplexity", "seed")}


def noise_path(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    return root / "noise" / dataset / f"{model}-seed-{seed}.csv"


def tsne_path(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    """Coordinates (``.parquet``); the silhouette of every k sits beside them (``.csv``)."""
    return root / "tsne" / dataset / f"{model}-seed-{seed}.parquet"


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
        overrides["discriminator_input"] = "embedding+input" if with_input else "embedding"
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
        return [
            (reading_name(sc, di), {"scaling": sc, "discriminator_input": di})
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
                config.job_config(params, dataset, model, seed) if seed in prof["seeds"] else None
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
            if model in prof["models"] and seed in prof["seeds"]
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
    main = RESULTS / "runs"
    seen = {
        (p.point, p.seed): None for p in sweep_points(params, dataset) if main not in p.rd.parents
    }
    return list(seen)


# ---------------------------------------------------------------------------------------------
# Stages


def noise_stage(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> bool:
    from .noise import noise_curve

    ds, model, seed = job["dataset"], job["model"], job["seed"]
    if job["family"] not in READS_INTERACTION_VECTORS:
        raise ConfigError(
            [
                f"noise: model {model} (family {job['family']}) does not read interaction "
                "vectors, so corrupting them cannot change its predictions"
            ]
        )
    rd, out = run_dir(ds, model, seed), noise_path(ds, model, seed)
    study = noise_settings(params)
    inputs = [rd / "model.pt", rd / "train.json", *(data_dir(ds) / f for f in EVAL_INPUTS)]
    with artifact_lock(f"noise/{ds}/{model}/seed-{seed}"):
        run = StageRun(
            "noise",
            out.with_suffix(".manifest.json"),
            inputs=inputs,
            outputs=[out],
            params={**train_params(job), "noise": study},
            family=job["family"],
        )
        if not force and run.up_to_date():
            log.info("noise: up to date")
            return False
        split, net, dev = load_run(job, params, rd, device=device, threads=threads)
        curve = noise_curve(net, split, study, seed, job["evaluation"]["ks"])
        with atomic.atomic_path(out) as tmp:
            curve.to_csv(tmp, index=False, float_format="%.6f")
        run.finish(extra={"dataset": ds, "model": model, "seed": seed}, device=str(dev))
        first, last = curve.iloc[0], curve.iloc[-1]
        log.info(
            "noise (%s): HR@10 %.4f at level %s, %.4f at level %s",
            study["mode"],
            first["hr@10"],
            first["level"],
            last["hr@10"],
            last["level"],
        )
        return True


def tsne_stage(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> bool:
    from .tsne import embedding_map

    ds, model, seed = job["dataset"], job["model"], job["seed"]
    if job["family"] != "dave":
        raise ConfigError(
            [f"tsne: model {model} (family {job['family']}) has no posterior [mu, sigma]"]
        )
    rd, coords = run_dir(ds, model, seed), tsne_path(ds, model, seed)
    scores = coords.with_suffix(".csv")
    study = tsne_settings(params)
    inputs = [rd / "model.pt", rd / "train.json", data_dir(ds) / "train_csr.npz"]
    with artifact_lock(f"tsne/{ds}/{model}/seed-{seed}"):
        run = StageRun(
            "tsne",
            coords.with_suffix(".manifest.json"),
            inputs=inputs,
            outputs=[coords, scores],
            params={**train_params(job), "tsne": study},
            family=job["family"],
        )
        if not force and run.up_to_date():
            log.info("tsne: up to date")
            return False
        _, net, dev = load_run(job, params, rd, device=device, threads=threads)
        xy, table = embedding_map(net, study)
        with atomic.atomic_path(coords) as tmp:
            xy.to_parquet(tmp, index=False)
        with atomic.atomic_path(scores) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
        run.finish(extra={"dataset": ds, "model": model, "seed": seed}, device=str(dev))
        best = table[table["best"]]
        log.info(
            "tsne: best silhouette %s",
            ", ".join(f"{r.side}s {r.silhouette:.3f} (k={r.k})" for r in best.itertuples()),
        )
        return True


def sweep_stage(
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
    """Train one sweep point (or reading) into its own directory (trained on validation)."""
    job, rd = point_run(params, dataset, point, seed, model)
    return train_stage(job, params, device=device, threads=threads, force=force, rd=rd)


def point_evaluate_stage(
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
    from .runs import evaluate_stage

    if not is_study_point(point):
        raise ConfigError([f"point {point}: only the readings study's points are evaluated"])
    job, rd = point_run(params, dataset, point, seed, model)
    return evaluate_stage(job, params, device=device, threads=threads, force=force, rd=rd)


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
