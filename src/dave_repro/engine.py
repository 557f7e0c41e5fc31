"""What the Snakefile needs from the package: the validated parameters, a key per job that
changes exactly when the job's result would (parameters it uses + its code), and the file times
Snakemake compares, set from content (see "what Snakemake compares" below).

Nothing here runs a stage; rules only call the ``dave`` CLI. Which jobs exist and their target
files are :mod:`.plan`'s; where they live, :mod:`.layout`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from . import config, layout, plan
from .errors import ConfigError
from .provenance import job_key as _key
from .provenance import read_manifest, run_key

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


SPLIT_PARAMS = ("holdout", "split_seed", "num_negatives")


def data_key(params: dict[str, Any], stage: str, dataset: str) -> str:
    """A data stage's key, from the parameters that stage reads and no other (each within what
    its DVC stage tracks, so a change DVC re-runs nothing for re-keys nothing either)."""
    cfg = config.dataset_config(params, dataset)
    used = {
        "download": lambda k: k in ("dataset", "checksums"),
        "preprocess": lambda k: k not in ("checksums", *SPLIT_PARAMS),
        "split": lambda k: k in ("dataset", *SPLIT_PARAMS),
    }[stage]
    return _key(stage, {k: v for k, v in cfg.items() if used(k)})


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


# -- what Snakemake compares -------------------------------------------------------------------
#
# Snakemake re-runs a job when an input is newer than its oldest output. File times are no
# evidence here: `dvc checkout`/`dvc pull` and `git clone` write files in any order, and DVC runs
# some stages itself. So the rules read data files as ancient() (their times never count) and
# each job's inputs that do count are file times the engine sets from content: its key file,
# and the manifests of the jobs it reads from. A job whose manifest says its outputs are current
# has its key file and manifest dated KEPT (older than any output: they trigger nothing); any
# other job gets a key file dated now, which runs it, and Snakemake then re-runs everything
# downstream of it through those manifests. The job itself still decides by content.

KEPT = 946_684_800.0  # 2000-01-01 UTC: what the engine dates a current job's key and manifest
MANIFESTS = {
    **dict.fromkeys(layout.PREPROCESS_OUTPUTS, "preprocess.manifest.json"),
    **dict.fromkeys(layout.SPLIT_OUTPUTS, "split.manifest.json"),
    **dict.fromkeys(layout.TRAIN_OUTPUTS, "train.manifest.json"),
    **dict.fromkeys(layout.EVAL_OUTPUTS, "evaluate.manifest.json"),
}


def key_file(
    stage: str,
    key: str | None,
    *parts: str,
    manifest: str,
    dated: tuple[str, ...] = (),
) -> str:
    """An empty file named by a job's key (None: a report, which has none), one of its inputs.

    Its time says whether the job is current (:func:`is_current`, from content alone): if so, at
    most KEPT, as are its manifest and ``dated`` (e.g. a directory output); if not, now, newer
    than any output, so the job runs. Both engines' workspaces and fresh clones therefore agree.
    """
    path = Path(layout.KEYS, stage, *parts, f"{key or 'report'}.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    if is_current(Path(manifest), key):
        for p in (path, Path(manifest), *map(Path, dated)):
            _keep(p)
    else:
        os.utime(path)
    return path.as_posix()


def is_current(manifest: Path, key: str | None) -> bool:
    """The manifest records ``key``, every output it records exists, and every input it read
    is what the manifest beside that input (its producer's) records now: a producer that ran
    again since, in another invocation or by the other engine, makes this job stale."""
    rec = read_manifest(manifest)
    if rec is None or (key is not None and rec.get("key") != key):
        return False
    if not all(Path(p).is_file() for p in rec.get("outputs", {})):
        return False
    inputs = rec.get("inputs", {})
    made = {d: _outputs_beside(d) for d in {Path(p).parent for p in inputs}}
    return all(made[Path(p).parent].get(p, sha) == sha for p, sha in inputs.items())


def manifests_for(files: Iterable[str]) -> list[str]:
    """The manifest of the job that writes each file (patterns with wildcards too), in order."""
    return list(dict.fromkeys(_manifest_for(f) for f in files))


def _manifest_for(file: str) -> str:
    path = PurePosixPath(file)
    if path.name.endswith("manifest.json"):
        return file  # a manifest is its own job's (download's only output)
    if path.name in MANIFESTS:
        return path.with_name(MANIFESTS[path.name]).as_posix()
    return path.with_suffix(".manifest.json").as_posix()  # studies, summaries, report.md


def _outputs_beside(directory: Path) -> dict[str, str]:
    """Every output the manifests in ``directory`` record, with its sha256 (a file no manifest
    writes, such as the code or the paper's numbers, is not the engine's to judge)."""
    return {
        out: sha
        for m in sorted(directory.glob("*manifest.json"))
        for out, sha in ((read_manifest(m) or {}).get("outputs") or {}).items()
    }


def _keep(path: Path) -> None:
    """Date a file KEPT unless it is older already; for a directory also Snakemake's timestamp
    file inside it, which is what Snakemake reads where it exists."""
    for p in (path, path / ".snakemake_timestamp"):
        if p.exists() and p.stat().st_mtime > KEPT:
            os.utime(p, (KEPT, KEPT))


def main(argv: list[str] | None = None) -> None:
    """``python -m dave_repro.engine key STAGE DATASET`` prints a data stage's key: DVC runs the
    data stages itself and hands it to them as Snakemake's rules do (``DAVE_JOB_KEY``)."""
    import sys

    match argv if argv is not None else sys.argv[1:]:
        case ["key", "download" | "preprocess" | "split" as stage, dataset]:
            print(data_key(config.load_params(), stage, dataset))
        case _:
            sys.exit("usage: python -m dave_repro.engine key download|preprocess|split DATASET")


if __name__ == "__main__":
    main()
