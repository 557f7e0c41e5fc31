"""params.yaml: loading, validation before any work, and per-job resolution.

Both engines read the same file. The Snakefile and dvc.yaml only pick jobs from it; every stage
calls the ``dave`` CLI, which re-reads params.yaml and validates it here, so a bad value is
reported with its key path before a single file is touched.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .data.registry import REGISTRY
from .errors import ConfigError
from .models.specs import BASELINES, DATASET_SETTINGS, DAVE_MODELS, DISPLAY, FAMILIES
from .schema import Bool, Custom, DictOf, Float, Int, List, Map, Str, join, load_yaml

DATASETS = tuple(REGISTRY)  # every dataset the data registry declares
MODEL_NAMES = tuple(DISPLAY)  # every model of every family (models/specs.py declares them)
METRIC_NAMES = ("hr", "ndcg")  # at every k of evaluation.ks (checked against it)
DEFAULT_PARAMS = "params.yaml"


def check_device(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not (
        value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())
    ):
        errors.append(f"{path}: expected auto, cpu, cuda or cuda:N, got {value!r}")


def _model_entry(name: str) -> Custom:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {value!r}")
            return
        family = value.get("family")
        if family not in FAMILIES:
            errors.append(
                f"{join(path, 'family')}: unknown model family {family!r} "
                f"(known: {', '.join(sorted(FAMILIES))})"
            )
            return
        FAMILIES[family].params_schema(value, path, errors)

    return Custom(check)


def _metric_name(value: Any, path: str, errors: list[str]) -> None:
    """hr@k or ndcg@k; that k is one of evaluation.ks is checked with the whole file."""
    names = "|".join(METRIC_NAMES)
    if not isinstance(value, str) or not re.fullmatch(rf"({names})@[0-9]+", value):
        errors.append(f"{path}: unknown value {value!r} (expected hr@<k> or ndcg@<k>)")


DATASET_DATA = Map(
    {
        "holdout": Str(choices=("latest", "random")),
        "dedup_pairs": Bool(),
        "min_user_interactions": Int(min=0),
        "k_core": Int(min=0),
    }
)

TRAIN_SCHEDULE = Map(
    {
        "max_epochs": Int(min=1),
        "patience": Int(min=1),
        "select_metric": Custom(_metric_name),
        "max_train_pairs": Int(min=1, nullable=True),
    }
)

# The studies of Section 4.2 beyond the tables (P§4-6).
SWEEPABLE = ("embedding_dim", "negative_ratio")
STUDIES = {
    "noise": Map(
        {
            "datasets": List(Str(choices=DATASETS), unique=True),
            "models": List(Str(choices=MODEL_NAMES), unique=True),
            "levels": List(Float(min=0.0, max=1.0), min_len=1, unique=True),
            "mode": Str(choices=("uniform", "heterogeneous")),
            "seed": Int(min=0),
        }
    ),
    "tsne": Map(
        {
            "datasets": List(Str(choices=DATASETS), unique=True),
            "models": List(Str(choices=MODEL_NAMES), unique=True),
            "clusters": List(Int(min=2), min_len=2),
            "perplexity": Float(min=0.0, exclusive_min=True),
            "seed": Int(min=0),
        }
    ),
    "sweeps": Map(
        {
            "model": Str(choices=MODEL_NAMES),
            "profile": Str(nullable=True),
            "seeds": List(Int(min=0), unique=True),
            "grid": DictOf(List(Int(min=1), unique=True), keys=SWEEPABLE),
        }
    ),
}

# The readings of DAVE's open points (docs/models.md): a scaling is a named set of model
# parameters; each is crossed with the discriminator's inputs for the adversarial models.
# "default" keeps each model's own input (a profile whose grid is only the defaults, e.g. the
# quick one, then reuses the main runs whatever each model's defaults are).
READING_NAME = r"[a-z0-9][a-z0-9.-]*"
DISCRIMINATOR_INPUTS = ("embedding", "embedding+input", "default")
SCALING_PARAMS = ("reduction", "loss_weights")
READINGS_GRID = Map(
    {
        "scaling": DictOf(DictOf(Custom(lambda v, p, e: None)), key_pattern=READING_NAME),
        "discriminator_input": List(Str(choices=DISCRIMINATOR_INPUTS), min_len=1, unique=True),
    }
)
OVERRIDES = DictOf(DictOf(Custom(lambda v, p, e: None)), key_pattern=READING_NAME)
STUDIES["readings"] = Map(
    {
        "datasets": List(Str(choices=DATASETS), unique=True),
        "models": List(Str(choices=DAVE_MODELS), unique=True),
        "profile": Str(nullable=True),
        "seeds": List(Int(min=0), unique=True),
        "grid": READINGS_GRID,
        "as_written": Str(),
        # tuning parity: each baseline's named settings, searched on validation like DAVE's
        "tuning": DictOf(OVERRIDES, keys=BASELINES),
    }
)

SCHEMA = Map(
    {
        "profile": Str(),
        "datasets": List(Str(choices=DATASETS), min_len=1, unique=True),
        "profiles": DictOf(
            Map(
                {
                    "models": List(Str(choices=MODEL_NAMES), min_len=1, unique=True),
                    "seeds": List(Int(min=0), min_len=1, unique=True),
                    "train": TRAIN_SCHEDULE,
                    # optional: this profile's own sweep grid (e.g. a short one for `quick`)
                    "sweep_grid": DictOf(List(Int(min=1), unique=True), keys=SWEEPABLE),
                    # optional: this profile's own readings grid (the quick one: the defaults)
                    "readings_grid": READINGS_GRID,
                    "readings_tuning": DictOf(OVERRIDES, keys=BASELINES),
                    # optional: fewer seeds for some models on a dataset, {<dataset>: {<model>:
                    # [seeds]}}, a subset of `seeds` (what a CPU affords; the tables say so)
                    "dataset_seeds": DictOf(
                        DictOf(List(Int(min=0), min_len=1, unique=True), keys=MODEL_NAMES),
                        keys=DATASETS,
                    ),
                },
                required=("models", "seeds", "train"),
            ),
            key_pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*",  # profile names reach command lines
        ),
        "data": Map(
            {
                "split_seed": Int(min=0),
                "num_negatives": Int(min=1),
                "min_interactions": Int(min=3),
                "checksums": DictOf(Str()),
                **{ds: DATASET_DATA for ds in DATASETS},
            }
        ),
        "hparams": DictOf(
            Map(
                {
                    "batch_size": Int(min=1),
                    "negative_ratio": Int(min=1),
                    "embedding_dim": Int(min=1),
                    # optional: what this dataset changes in a model beyond the paper's
                    # settings, {<model>: {<param>: value}} (docs/models.md)
                    "models": DictOf(DictOf(Custom(lambda v, p, e: None)), keys=MODEL_NAMES),
                },
                required=("batch_size", "negative_ratio", "embedding_dim"),
            ),
            keys=DATASETS,
        ),
        "train": Map(
            {
                "device": Custom(check_device),
                "num_threads": Int(min=1, nullable=True),
                "progress": Bool(),
            }
        ),
        "evaluation": Map(
            {
                "ks": List(Int(min=1), min_len=1, unique=True),
                "full_ranking": Bool(),
                "user_batch": Int(min=1),
            }
        ),
        "models": DictOf(_model_entry, keys=MODEL_NAMES),
        **STUDIES,
    }
)


def params_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("DAVE_PARAMS", DEFAULT_PARAMS))


def load_params(
    path: str | os.PathLike[str] | None = None, *, validate: bool = True
) -> dict[str, Any]:
    path = params_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: file not found (run from the repository root)"], str(path)
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror or exc})"], str(path)) from None
    try:
        params, duplicates = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
    if duplicates:
        raise ConfigError(duplicates, str(path))
    if params is None:
        raise ConfigError(["the file is empty"], str(path))
    if validate:
        validate_params(params, str(path))
    return params


def validate_params(params: Any, source: str = "params") -> None:
    errors: list[str] = []
    SCHEMA(params, "", errors)
    if not errors:
        _cross_checks(params, errors)
    if errors:
        raise ConfigError(errors, source)


def _cross_checks(params: dict[str, Any], errors: list[str]) -> None:
    if params["profile"] not in params["profiles"]:
        errors.append(
            f"profile: unknown profile {params['profile']!r} "
            f"(defined: {', '.join(sorted(params['profiles']))})"
        )
    for pname, prof in params["profiles"].items():
        for i, m in enumerate(prof["models"]):
            if m not in params["models"]:
                errors.append(
                    f"profiles.{pname}.models[{i}]: model {m!r} has no entry under models"
                )
        for ds, per_model in prof.get("dataset_seeds", {}).items():
            for m, seeds in per_model.items():
                path = f"profiles.{pname}.dataset_seeds.{ds}.{m}"
                if m not in prof["models"]:
                    errors.append(f"{path}: {m} is not one of the profile's models")
                extra = [s for s in seeds if s not in prof["seeds"]]
                if extra:
                    errors.append(
                        f"{path}: seeds {extra} are not the profile's seeds {prof['seeds']} "
                        "(a dataset may run fewer, never others)"
                    )
    metrics = [f"{m}@{k}" for m in METRIC_NAMES for k in params["evaluation"]["ks"]]
    for pname, prof in params["profiles"].items():
        if prof["train"]["select_metric"] not in metrics:
            errors.append(
                f"profiles.{pname}.train.select_metric: {prof['train']['select_metric']!r} is "
                f"not a metric of evaluation.ks (one of {', '.join(metrics)})"
            )
    for ds in params["datasets"]:
        if ds not in params["hparams"]:
            errors.append(f"hparams.{ds}: missing (needed because datasets lists {ds})")
    for ds, hp in params["hparams"].items():
        for m, changes in hp.get("models", {}).items():
            path = f"hparams.{ds}.models.{m}"
            entry = params["models"].get(m)
            if entry is None:
                errors.append(f"{path}: model {m!r} has no entry under models")
                continue
            bad = [k for k in changes if k not in entry or k == "family"]
            errors.extend(f"{path}.{k}: not a parameter of model {m}" for k in bad)
            if not bad:
                FAMILIES[entry["family"]].params_schema({**entry, **changes}, path, errors)
    _study_checks(params, errors)


def _study_checks(params: dict[str, Any], errors: list[str]) -> None:
    lo_hi = params["tsne"]["clusters"]
    if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
        errors.append(f"tsne.clusters: expected [lowest k, highest k], got {lo_hi!r}")
    for i, m in enumerate(params["tsne"]["models"]):
        if m in params["models"] and params["models"][m]["family"] != "dave":
            errors.append(
                f"tsne.models[{i}]: {m} has no posterior (only family dave has [mu, sigma])"
            )
    sw = params["sweeps"]
    if sw["profile"] is not None and sw["profile"] not in params["profiles"]:
        errors.append(f"sweeps.profile: unknown profile {sw['profile']!r}")
    model = params["models"].get(sw["model"])
    if model is None:
        errors.append(f"sweeps.model: model {sw['model']!r} has no entry under models")
    else:
        for key in sw["grid"]:
            if key not in model:
                errors.append(f"sweeps.grid.{key}: not a parameter of model {sw['model']}")
    _readings_checks(params, errors)


def _tuning_checks(
    params: dict[str, Any], where: str, tuning: dict[str, Any], errors: list[str]
) -> None:
    for m, points in tuning.items():
        entry = params["models"].get(m)
        if entry is None:
            errors.append(f"{where}.{m}: model {m!r} has no entry under models")
            continue
        for name, overrides in points.items():
            path = f"{where}.{m}.{name}"
            bad = [k for k in overrides if k not in entry or k == "family"]
            errors.extend(f"{path}.{k}: not a parameter of model {m}" for k in bad)
            if not bad:
                FAMILIES[entry["family"]].params_schema({**entry, **overrides}, path, errors)


def _readings_checks(params: dict[str, Any], errors: list[str]) -> None:
    """Every reading of every studied model resolves to a valid model entry."""
    rd = params["readings"]
    if rd["profile"] is not None and rd["profile"] not in params["profiles"]:
        errors.append(f"readings.profile: unknown profile {rd['profile']!r}")
    grids = [("readings.grid", rd["grid"])] + [
        (f"profiles.{name}.readings_grid", prof["readings_grid"])
        for name, prof in params["profiles"].items()
        if "readings_grid" in prof
    ]
    for where, grid in grids:
        if {"default", "embedding"} <= set(grid["discriminator_input"]):
            errors.append(
                f"{where}.discriminator_input: 'default' and 'embedding' would name the same "
                "reading (reading-<scaling>); list one of them"
            )
    if rd["as_written"] not in rd["grid"]["scaling"]:
        errors.append(f"readings.as_written: {rd['as_written']!r} is not in readings.grid.scaling")
    tunings = [("readings.tuning", rd["tuning"])] + [
        (f"profiles.{name}.readings_tuning", prof["readings_tuning"])
        for name, prof in params["profiles"].items()
        if "readings_tuning" in prof
    ]
    for where, tuning in tunings:
        _tuning_checks(params, where, tuning, errors)
    for i, m in enumerate(rd["models"]):
        entry = params["models"].get(m)
        if entry is None:
            errors.append(f"readings.models[{i}]: model {m!r} has no entry under models")
            continue
        if entry["family"] != "dave":
            errors.append(f"readings.models[{i}]: {m} is not of family dave")
            continue
        for where, grid in grids:
            for name, overrides in grid["scaling"].items():
                path = f"{where}.scaling.{name}"
                missing = [k for k in SCALING_PARAMS if overrides and k not in overrides]
                if missing:  # else the point would mean another reading when a default moves
                    errors.append(
                        f"{path}: sets {', '.join(sorted(overrides))} but not "
                        f"{', '.join(missing)} (a scaling sets all of "
                        f"{', '.join(SCALING_PARAMS)}, or is empty: the defaults)"
                    )
                for key in overrides:
                    if key not in entry or key in ("family", "discriminator_input"):
                        errors.append(f"{path}.{key}: not a scaling parameter of model {m}")
                if not all(key in entry for key in overrides):
                    continue
                FAMILIES["dave"].params_schema(
                    {**entry, **overrides}, f"{path} (model {m})", errors
                )


def active_profile(params: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    name = profile or params["profile"]
    if name not in params["profiles"]:
        raise ConfigError([f"profile: unknown profile {name!r}"])
    return params["profiles"][name]


def dataset_config(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Exactly the parameters the data stages of ``dataset`` use (and nothing else)."""
    if dataset not in DATASETS:
        raise ConfigError([f"dataset: unknown dataset {dataset!r} (known: {', '.join(DATASETS)})"])
    data = params["data"]
    checksums = {k: v for k, v in data["checksums"].items() if k.split("/", 1)[0] == dataset}
    return {
        "dataset": dataset,
        "split_seed": data["split_seed"],
        "num_negatives": data["num_negatives"],
        "min_interactions": data["min_interactions"],
        "checksums": checksums,
        **data[dataset],
    }


def job_config(
    params: dict[str, Any],
    dataset: str,
    model: str,
    seed: int,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved configuration of one training run: all it depends on, nothing more."""
    errors: list[str] = []
    if dataset not in DATASETS:
        errors.append(f"dataset: unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    if model not in params["models"]:
        errors.append(
            f"model: unknown model {model!r} (configured: {', '.join(sorted(params['models']))})"
        )
    if errors:
        raise ConfigError(errors)
    prof_name = profile or params["profile"]
    prof = active_profile(params, prof_name)
    model_params = copy.deepcopy(params["models"][model])
    hp = params["hparams"].get(dataset)
    # the dataset's own changes to the model (hparams.<dataset>.models), then the point's
    model_params.update(copy.deepcopy((hp or {}).get("models", {}).get(model, {})))
    for key, value in (overrides or {}).items():
        if key not in model_params:
            raise ConfigError([f"override {key}: not a parameter of model {model}"])
        model_params[key] = value
    for key in DATASET_SETTINGS:
        if key in model_params and model_params[key] is None:
            if hp is None:
                raise ConfigError(
                    [f"hparams.{dataset}: missing (model {model} takes {key} from it)"]
                )
            model_params[key] = hp[key]
    FAMILIES[model_params["family"]].params_schema(model_params, f"models.{model}", errors)
    if errors:
        raise ConfigError(errors)
    return {
        "dataset": dataset,
        "model": model,
        "family": model_params.pop("family"),
        "seed": int(seed),
        "profile": prof_name,
        "model_params": model_params,
        "train": copy.deepcopy(prof["train"]),
        "evaluation": copy.deepcopy(params["evaluation"]),
    }


def runtime_config(params: dict[str, Any]) -> dict[str, Any]:
    """Settings that change how a job runs but not what it computes (not fingerprinted)."""
    return copy.deepcopy(params["train"])


__all__ = [
    "BASELINES",
    "DATASETS",
    "DAVE_MODELS",
    "METRIC_NAMES",
    "MODEL_NAMES",
    "active_profile",
    "dataset_config",
    "job_config",
    "load_params",
    "runtime_config",
    "validate_params",
]
