"""The one skeleton every stage runs: lock, clean, up-to-date check, work, manifest."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from ..locks import artifact_lock
from ..provenance import StageRun, read_manifest

log = logging.getLogger(__name__)
KEY_ENV = "DAVE_JOB_KEY"  # the engine's key for a job, set by the Snakefile's KEYED prefix


@dataclass
class Stage:
    """What a stage reads, writes and depends on (its fingerprint is computed from this)."""

    name: str  # provenance stage: download, preprocess, split, train, evaluate, noise, ...
    label: str  # what the log calls it
    lock: str  # the artifact lock, one per set of outputs
    manifest: Path
    inputs: list[Path]
    outputs: list[Path] | None  # None: the work says what it wrote (Done.outputs)
    params: dict[str, Any]
    family: str | None = None  # model stages: the family whose module enters the code hash
    temporaries: tuple[Path, tuple[str, ...]] | None = None  # (directory, output names)
    # the engine's key for this job, recorded in the manifest (None: the rule's, from KEY_ENV)
    key: str | None = None


@dataclass
class Done:
    """What the work reports back, for the manifest."""

    extra: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    outputs: list[Path] | None = None
    then: Callable[[], None] | None = None  # after the manifest is written (e.g. drop resume state)


def execute(stage: Stage, work: Callable[[StageRun], Done], *, force: bool = False) -> bool:
    """Run ``work`` unless the stage is up to date; returns whether it ran."""
    key = stage.key if stage.key is not None else os.environ.get(KEY_ENV) or None
    with artifact_lock(stage.lock):
        if stage.temporaries is not None:
            clean_temporaries(*stage.temporaries)
        run = StageRun(
            stage.name,
            stage.manifest,
            inputs=stage.inputs,
            outputs=stage.outputs,
            params=stage.params,
            family=stage.family,
        )
        if not force and run.up_to_date():
            if key is not None:
                _record_key(run, key)
            log.info("%s: up to date", stage.label)
            return False
        done = work(run)
        extra = {**done.extra, **({"key": key} if key is not None else {})}
        run.finish(extra=extra, device=done.device, outputs=done.outputs)
        if done.then is not None:
            done.then()
        return True


def recorded_outputs(manifest: Path) -> list[Path]:
    """The outputs an up-to-date stage's manifest records (a stage whose outputs are a folder's
    contents reports them without re-listing the folder)."""
    rec = read_manifest(manifest) or {}
    return [Path(p) for p in rec.get("outputs", {})]


def clean_temporaries(directory: Path, names: tuple[str, ...]) -> None:
    """Remove the temporaries (``.tmp-<output>.*``) a killed earlier run of this stage left, and
    only those: a directory may be shared with another stage that is running now."""
    n = sum(atomic.clean_stale_temporaries(directory, name) for name in names)
    if n:
        log.info("removed %d temporary file(s) left by an interrupted run", n)


def _record_key(run: StageRun, key: str) -> None:
    """An up-to-date run whose manifest lacks the engine's current key (made by older code, or
    under parameters that changed nothing it uses) records it, so the engine stops re-checking."""
    rec = run.recorded()
    if rec is not None and rec.get("key") != key:
        atomic.write_json(run.manifest_path, {**rec, "key": key})
