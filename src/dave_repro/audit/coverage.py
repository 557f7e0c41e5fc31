"""Whether a commit's record is complete: every stage of its pipeline ran, and every result's
lineage reaches the raw files without a gap.

:mod:`.verify` checks what is recorded; this module names what is not, so that a commit whose
studies, figures or report never ran (or whose manifests were never committed) is not passed
for having nothing wrong in what it does hold:

1. **Stages.** Every stage of the commit's ``dvc.yaml`` (``foreach`` stages once per item) has
   an entry in its ``dvc.lock``; the others never ran under DVC.
2. **Inputs.** Every file a stage run read was made by another run the commit records. With
   (1) and the lock's parameter check this covers the plan's jobs too: each summary, table and
   figure lists the jobs of the commit's params.yaml as inputs.
3. **Outputs.** Every file of dvc.lock's outputs under data/ and results/ is recorded by some
   run (as an output or a by-product); one that none records has no lineage at all. (Engine
   state elsewhere, such as a stage's stamp file, is not a result.)
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .snapshot import Snapshot
from .verify import RESULT_ROOTS, Findings, Run, is_manifest, listed, lookup, producers

_VAR = re.compile(r"^\$\{\s*([\w.-]+)\s*\}$")


def _foreach_items(value: Any, params: dict[str, Any]) -> list[str] | None:
    """The items of a ``foreach`` (a list, a dict's keys, or ``${key}`` of params.yaml)."""
    if isinstance(value, str) and (m := _VAR.match(value)):
        present, value = lookup(params, m.group(1))
        if not present:
            return None
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    return None


def pipeline_stages(snap: Snapshot, found: Findings) -> list[str]:
    """The stage names the commit's dvc.yaml defines, as dvc.lock spells them."""
    if not snap.commit.has("dvc.yaml"):
        found.notes.append("the commit has no dvc.yaml: whether every stage ran is not checked")
        return []
    try:
        spec = yaml.safe_load(snap.commit.read("dvc.yaml")) or {}
    except yaml.YAMLError as exc:
        found.fail("dvc.yaml", f"not valid YAML ({exc})")
        return []
    params = snap.params_yaml()
    names = []
    for name, body in (spec.get("stages") or {}).items():
        if isinstance(body, dict) and "matrix" in body:
            found.notes.append(f"dvc.yaml stage {name}: a matrix stage; whether it ran not checked")
            continue
        if not isinstance(body, dict) or "foreach" not in body:
            names.append(str(name))
            continue
        items = _foreach_items(body["foreach"], params)
        if items is None:
            found.notes.append(f"dvc.yaml stage {name}: its foreach is not resolvable; not checked")
            continue
        names += [f"{name}@{item}" for item in items]
    return names


def verify_stages(snap: Snapshot, found: Findings) -> None:
    missing = [s for s in pipeline_stages(snap, found) if s not in snap.stages]
    if missing:
        found.fail(
            "dvc.lock",
            f"never ran: {listed(missing)} (stages of the commit's dvc.yaml that its dvc.lock "
            "does not record: their results are not part of this commit; `dvc repro`)",
        )


def verify_inputs(runs: list[Run], found: Findings, snap: Snapshot | None = None) -> None:
    """``snap`` only for a results copy: its inputs outside it are checked in the commit's tree."""
    copy = snap.results_copy if snap is not None else None
    made_by = producers(runs)
    readers: dict[str, list[Run]] = {}
    data: set[str] = set()
    elsewhere: dict[str, set[str]] = {}  # another committed results folder -> files read there
    for run in runs:
        for path, sha in run.files("inputs").items():
            if path in made_by:
                continue
            if copy and path.startswith("data/"):
                data.add(path)  # a results copy's lineage starts at the split it read
                continue
            there = snap.outside_sha256(path) if copy and snap is not None else None
            if there is None:
                readers.setdefault(path, []).append(run)
            elif there != sha:
                found.fail(
                    path,
                    f"read by [{run.id}] {run.label} with sha256 {str(sha)[:12]}…, but the "
                    f"committed file is {there[:12]}…: it changed after the run read it",
                )
            else:
                folder = "/".join(path.split("/")[:2])
                elsewhere.setdefault(folder, set()).add(path)
    for path, who in sorted(readers.items()):
        ids = ", ".join(f"[{r.id}] {r.label}" for r in who[:3])
        found.fail(
            path,
            f"read by {ids}{' …' if len(who) > 3 else ''}, but made by no stage run of this "
            "commit (never ran, or its manifest was not committed): the lineage stops here",
        )
    for folder, paths in sorted(elsewhere.items()):
        found.notes.append(
            f"{copy}: its runs read {len(paths)} file(s) of another committed results folder, "
            f"{folder}/, each the bytes they recorded (sha256 checked); how those were made is "
            f"that folder's record (its README; `dave audit <commit> --results {folder}`)"
        )
    if data:
        found.notes.append(
            f"{copy}: its runs read {len(data)} data file(s) made by no run it holds (a results "
            "copy keeps no data stages): their lineage starts at the recorded sha256, which a "
            "--rerun checks after re-making the data from its sources"
        )


def verify_outputs(snap: Snapshot, runs: list[Run], found: Findings) -> None:
    recorded = {p for r in runs for key in ("outputs", "byproducts") for p in r.files(key)}
    orphans = [  # manifests are the records themselves; a missing or corrupt file is reported
        p
        for p, art in sorted(snap.artifacts.items())
        if p.startswith(RESULT_ROOTS)
        and p not in recorded
        and not is_manifest(p)
        and art.source is not None
    ]
    for path in orphans:
        found.fail(
            path,
            f"in dvc.lock (stage {snap.artifacts[path].stage}), but no stage manifest of this "
            "commit records making it (its stage never ran as a recorded run, or the manifest "
            "was not committed): where it came from is unknown",
        )


def verify_coverage(snap: Snapshot, runs: list[Run], found: Findings) -> None:
    if snap.results_copy:  # no dvc.lock is audited: only the copy's own lineage
        verify_inputs(runs, found, snap)
        return
    verify_stages(snap, found)
    verify_inputs(runs, found)
    verify_outputs(snap, runs, found)
