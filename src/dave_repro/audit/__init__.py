"""``dave audit <commit>``: where each result of a commit came from, and a check that it still is.

Reads the commit's ``dvc.lock`` and every stage manifest of its results (from the DVC cache,
the commit's git tree or, for the checked-out commit, the working tree), prints each stage run
(parameters, inputs, code hash, git state, environment) and each result's lineage down to the
raw files, verifies every hash (see :mod:`.verify`) and that the record is complete: no stage
that never ran, no gap in a lineage (see :mod:`.coverage`). ``--rerun`` re-executes stage runs
in a scratch workspace and compares (see :mod:`.rerun`). Any problem is listed and the exit
status is non-zero; works on a fresh clone after ``dvc pull``.

A checked-out commit whose working tree differs from it in what the results depend on
(params.yaml, src/, the pipeline, the lock files: :meth:`.Snapshot.dirty`) fails too, unless
allowed (``allow_dirty``, or ``DAVE_AUDIT_ALLOW_DIRTY=1``), and is then passed with a DIRTY line:
the audit reads that tree's results, so "OK" would tell its user that this tree reproduces them,
while a ``dvc repro`` here would run other code or parameters. Failing is the only answer a
script checking the exit status cannot miss; the committed results themselves are verified
either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import atomic
from ..errors import DaveError
from .coverage import verify_coverage
from .rerun import RerunResult, rerun_one, select
from .snapshot import Snapshot, git
from .verify import (
    Findings,
    Run,
    lineage,
    listed,
    load_runs,
    producers,
    verify_artifacts,
    verify_lock,
    verify_runs,
    verify_tracked,
)

RESULT_STAGES = ("evaluate", "noise", "tsne", "report")
ALLOW_DIRTY_ENV = "DAVE_AUDIT_ALLOW_DIRTY"


class AuditFailed(DaveError):
    exit_code = 1


def audit(
    rev: str,
    *,
    rerun: str | None = None,
    repo: str = ".",
    json_out: str | None = None,
    device: str = "cpu",
    keep_scratch: bool = False,
    scratch_root: str | None = None,
    allow_dirty: bool = False,
    results: str | None = None,
) -> int:
    allow_dirty = allow_dirty or os.environ.get(ALLOW_DIRTY_ENV) == "1"
    snap = Snapshot(repo, rev, results)
    try:
        found = Findings(notes=list(snap.notes))
        dirty = snap.dirty()
        check_dirty(dirty, allow_dirty, found)
        verify_artifacts(snap, found)
        verify_lock(snap, found)
        runs = load_runs(snap, found)
        verify_runs(snap, runs, found)
        verify_tracked(snap, runs, found)
        verify_coverage(snap, runs, found)
        targets = select(runs, rerun) if rerun else []
        print(render(snap, runs, found, dirty), flush=True)
        reruns: list[RerunResult] = []
        for run in targets:
            res = rerun_one(
                snap,
                run,
                device=device,
                keep=keep_scratch,
                scratch_root=Path(scratch_root) if scratch_root else None,
            )
            reruns.append(res)
            print(render_rerun(res, keep_scratch), flush=True)
            found.failures += res.failures
            found.notes += res.notes
        if json_out:
            atomic.write_json(json_out, as_json(snap, runs, found, reruns, dirty))
    finally:
        snap.close()
    if dirty:
        print(f"\n{dirty_line(snap, dirty)}", flush=True)
    if found.failures:
        print(f"\nFAILED: {len(found.failures)} problem(s)", flush=True)
        for f in found.failures:
            print(f"  - {f}", flush=True)
        raise AuditFailed(
            f"audit of {snap.sha[:12]}: {len(found.failures)} problem(s), listed above"
        )
    what = f"; re-run of {rerun}: identical" if rerun else ""
    print(
        f"\nOK: commit {snap.sha[:12]}: "
        + (
            f"{snap.results_copy}/ and "
            if snap.results_copy
            else f"{len(snap.artifacts)} artifacts and "
        )
        + f"{len(runs)} stage runs "
        f"verified{what}" + (" (working tree DIRTY, allowed)" if dirty else ""),
        flush=True,
    )
    return 0


def dirty_line(snap: Snapshot, dirty: list[str]) -> str:
    return (
        f"DIRTY: the working tree differs from commit {snap.sha[:12]} in {len(dirty)} file(s) "
        f"the results depend on: {listed(dirty)}"
    )


def check_dirty(dirty: list[str], allowed: bool, found: Findings) -> None:
    """A dirty tree fails the audit unless allowed (the module's docstring says why)."""
    if not dirty:
        return
    if allowed:
        found.notes.append(
            f"the working tree differs from the commit in {len(dirty)} file(s) the results "
            "depend on; allowed, so passed with a DIRTY line"
        )
        return
    found.fail(
        "working tree",
        f"differs from the audited commit in {listed(dirty)}: the results verified here "
        "are the commit's, but this tree would not reproduce them; "
        f"commit or stash the changes, audit a clean clone, or pass --allow-dirty",
    )


# -- rendering ---------------------------------------------------------------------------------


def _flat(obj: Any, prefix: str = "") -> list[str]:
    if isinstance(obj, dict) and obj:
        return [
            item for k, v in obj.items() for item in _flat(v, f"{prefix}.{k}" if prefix else str(k))
        ]
    return [f"{prefix}={json.dumps(obj, separators=(',', ':'))}"]


def _env_line(env: dict[str, Any]) -> str:
    parts = [f"Python {env.get('python', '?')}"]
    if "torch" in env:
        parts.append(f"torch {env['torch']}")
        parts.append(f"CUDA {env.get('cuda') or 'none'}")
        if env.get("device"):
            parts.append(
                f"device {env['device']}"
                + (f" ({env['device_name']})" if env.get("device_name") else "")
            )
        if env.get("torch_threads"):
            parts.append(f"{env['torch_threads']} torch threads")
    lock = env.get("requirements_lock_sha256")
    parts.append(f"requirements.lock {lock[:12]}…" if lock else "requirements.lock not found")
    parts.append(str(env.get("platform", "")))
    return ", ".join(p for p in parts if p)


def render(snap: Snapshot, runs: list[Run], found: Findings, dirty: list[str]) -> str:
    subject = git(snap.root, "log", "-1", "--format=%s", snap.sha).strip()
    cached = sum(1 for a in snap.artifacts.values() if a.source == "cache")
    tracked = sum(1 for a in snap.artifacts.values() if a.source == "git")
    tree = "is this commit (checked too)" if snap.checked_out else "is another commit (not used)"
    lines = [
        f"Audit of commit {snap.sha} ({subject})",
        f"  results copy {snap.results_copy}/, read as the results/ its manifests describe "
        f"(dvc.lock not used); working tree {tree}"
        if snap.results_copy
        else f"  dvc.lock: {len(snap.stages)} stage(s), {len(snap.artifacts)} artifact(s): "
        f"{cached} read from the DVC cache ({snap.cache}), {tracked} from git; working tree "
        + tree,
        *([dirty_line(snap, dirty)] if dirty else []),
        "",
        f"Stage runs ({len(runs)} manifests):",
    ]
    made_by = producers(runs)
    for r in runs:
        m = r.manifest
        g = m.get("git") or {}
        state = "dirty" if g.get("dirty") else "clean" if g.get("dirty") is False else "unknown"
        lines += [
            f"  [{r.id}] {r.label}  ({r.path}; --rerun {r.spec})",
            f"      fingerprint {str(m.get('fingerprint'))[:16]}…  code {str(m.get('code_sha256'))[:16]}…  "
            f"made {m.get('created_utc', '?')} at git {str(g.get('commit'))[:12]} ({state})",
            f"      environment: {_env_line(m.get('environment') or {})}",
            f"      params: {' '.join(_flat(m.get('params') or {}))}",
        ]
        for path, sha in r.files("inputs").items():
            up = made_by.get(path)
            lines.append(
                f"      in:  {path}  sha256 {sha[:16]}…" + (f"  ← [{up.id}]" if up else "")
            )
        lines += [
            f"      out: {path}  sha256 {sha[:16]}…" for path, sha in r.files("outputs").items()
        ]
        if r.files("byproducts"):
            lines.append(f"      by-products: {len(r.files('byproducts'))} file(s) (curves)")
    lines += ["", "Results (each with its lineage, from the result back to the raw data):"]
    for r in runs:
        if r.stage not in RESULT_STAGES:
            continue
        lines += [f"  {path}  sha256 {sha[:16]}…" for path, sha in r.files("outputs").items()]
        lines.append("      from " + " ← ".join(f"[{u.id}] {u.label}" for u in lineage(r, made_by)))
    if found.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in found.notes]
    return "\n".join(lines)


def render_rerun(res: RerunResult, kept: bool) -> str:
    lines = [
        f"\nRe-run of [{res.run.id}] {res.run.label}"
        + (f" (scratch kept: {res.scratch})" if kept else "")
    ]
    lines += [f"  identical bytes: {p}" for p in res.identical]
    lines += [
        f"  identical content (only wall-clock timings differ): {p}" for p in res.same_content
    ]
    lines += [f"  DIFFERS: {f}" for f in res.failures]
    lines += [f"  note: {n}" for n in res.notes]
    return "\n".join(lines)


def as_json(
    snap: Snapshot, runs: list[Run], found: Findings, reruns: list[RerunResult], dirty: list[str]
) -> dict[str, Any]:
    made_by = producers(runs)
    return {
        "commit": snap.sha,
        "artifacts": {
            p: {"md5": a.md5, "sha256": a.sha256, "source": a.source, "stage": a.stage}
            for p, a in sorted(snap.artifacts.items())
        },
        "runs": [
            {
                "id": r.id,
                "label": r.label,
                "rerun": r.spec,
                "manifest_path": r.path,
                "manifest": r.manifest,
            }
            for r in runs
        ],
        "results": {
            p: [u.id for u in lineage(r, made_by)]
            for r in runs
            if r.stage in RESULT_STAGES
            for p in r.files("outputs")
        },
        "reruns": [
            {
                "run": x.run.id,
                "identical": x.identical,
                "same_content": x.same_content,
                "failures": x.failures,
                "notes": x.notes,
            }
            for x in reruns
        ],
        "dirty": dirty,
        "failures": found.failures,
        "notes": found.notes,
        "ok": not found.failures,
    }
