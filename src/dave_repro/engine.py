"""What the Snakefile needs from the package: the validated parameters and a key per job that
changes exactly when the job's result would (parameters it uses + its code).

Nothing here runs a stage; rules only call the ``dave`` CLI. Which jobs exist and their target
files are :mod:`.plan`'s; where they live, :mod:`.layout`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import config, layout, plan
from .errors import ConfigError
from .provenance import job_key as _key
from .provenance import run_key

OVERRIDABLE = {"profile", "datasets"}  # what `snakemake --config` may change


def load(snakemake_config: dict[str, Any], path: str = config.DEFAULT_PARAMS) -> dict[str, Any]:
    """params.yaml, validated, with the only overrides the CLI will also see applied."""
    params = config.load_params(path)
    changed = sorted(k for k in snakemake_config if snakemake_config[k] != params.get(k))
    bad = [k for k in changed if k not in OVERRIDABLE]
    if bad:
        raise ConfigError(
            [
                f"{k}: cannot be overridden with --config (edit params.yaml); only "
                f"{', '.join(sorted(OVERRIDABLE))} can"
                for k in bad
            ]
        )
    merged = {**params, **{k: snakemake_config[k] for k in changed}}
    config.validate_params(merged, "params.yaml with --config overrides")
    return merged


def data_key(params: dict[str, Any], stage: str, dataset: str) -> str:
    return _key(stage, config.dataset_config(params, dataset))


def job_key(params: dict[str, Any], stage: str, dataset: str, model: str, seed: int | str) -> str:
    return run_key(stage, config.job_config(params, dataset, model, int(seed), params["profile"]))


def study_key(params: dict[str, Any], stage: str, dataset: str, model: str, seed: int | str) -> str:
    job = config.job_config(params, dataset, model, int(seed), params["profile"])
    settings = {"noise": plan.noise_settings, "tsne": plan.tsne_settings}[stage](params)
    return _key(stage, {"job": job, stage: settings}, job["family"])


def sweep_key(
    params: dict[str, Any], dataset: str, point: str, seed: int | str, model: str | None = None
) -> str:
    return point_key(params, "train", dataset, point, seed, model)


def point_key(
    params: dict[str, Any],
    stage: str,
    dataset: str,
    point: str,
    seed: int | str,
    model: str | None = None,
) -> str:
    """The key of a sweep or readings point's train or evaluate stage."""
    return run_key(stage, plan.sweep_job(params, dataset, point, int(seed), model))


def key_file(stage: str, key: str, *parts: str, manifest: str | None = None) -> str:
    """An empty file named by a job's key, used as one of the job's inputs.

    It is created (once) when the Snakefile is parsed, so a new key — changed parameters or
    code — is an input newer than the job's outputs and re-runs exactly that job, also where
    Snakemake has no metadata of earlier runs (after `dvc checkout`, on a fresh clone, or for
    outputs DVC made). An unchanged key is an old file and triggers nothing. The job itself
    still checks its inputs by content before doing any work.
    """
    path = Path(layout.KEYS, stage, *parts, f"{key}.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif manifest is not None and _recorded_key(Path(manifest)) not in (None, key):
        # The outputs are another key's: e.g. an interrupted job under this key, whose earlier
        # outputs Snakemake put back (update() restores them, with fresh file times). A fresh
        # time on this key's file makes the job run again; the job then decides by content.
        path.touch()
    return path.as_posix()


def _recorded_key(manifest: Path) -> str | None:
    """The key a stage's manifest says its outputs were made under (None: no manifest)."""
    try:
        rec = json.loads(manifest.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return rec.get("key", "")
