"""The checks of ``dave audit <commit>``: artifacts, dvc.lock, and the stage manifests.

1. **Artifacts.** Every file of every dvc.lock output still hashes to its recorded md5 wherever
   a copy is: the DVC cache object, the commit's git blob (``cache: false`` outputs) and, when
   the commit is checked out, the working-tree file. A changed byte anywhere is named.
2. **dvc.lock against the commit.** Each stage's recorded parameters equal the commit's
   params.yaml, and each dependency's recorded md5 equals what the commit holds (code in git,
   upstream outputs in the lock): otherwise the commit's results are stale.
3. **Manifests.** Each stage manifest (those among dvc.lock's outputs, and those git tracks
   beside the studies' per-job files, the summaries and report.md) recomputes its fingerprint
   from its own params, inputs and code hash; its inputs and outputs hash (sha256) to the
   commit's artifacts or committed files, whose working-tree copies are checked too when the
   commit is checked out; its code hash equals the hash of the commit's source of that stage.
"""

from __future__ import annotations

import ast
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ..codehash import closure_hash
from ..errors import DaveError
from ..hashing import sha256_bytes
from ..provenance import canonical, hash_sources
from .snapshot import Artifact, Snapshot, digests, dir_md5

PACKAGE = "src/dave_repro"
MANIFEST_NAMES = ("manifest.json",)
FILE_KEYS = ("inputs", "outputs", "byproducts")  # the files a manifest records, by sha256
# the stages whose code hash covers the model family's module (StageRun's ``family``)
FAMILY_STAGES = ("train", "evaluate", "noise", "tsne")
SWEEP_RUNS = "sweep-runs"  # layout.sweep_run_dir: results/sweep-runs/<ds>/<model>/<point>/seed-<s>


def is_manifest(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in MANIFEST_NAMES or name.endswith(".manifest.json")


def listed(items: list[str], n: int = 12) -> str:
    """The first ``n`` items, and how many more: a failure line stays readable."""
    more = len(items) - n
    return ", ".join(items[:n]) + (f" … and {more} more" if more > 0 else "")


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, path: str, why: str) -> None:
        self.failures.append(f"{path}: {why}")


# -- 1. artifacts ------------------------------------------------------------------------------


def verify_artifacts(snap: Snapshot, found: Findings) -> None:
    for path, why in snap.problems:
        found.fail(path, why)
    for art in snap.artifacts.values():
        for problem in art.problems:
            found.fail(art.path, problem)
        if art.problems:
            continue
        _verify_one(snap, art, found)


def _verify_one(snap: Snapshot, art: Artifact, found: Findings) -> None:
    copies = []
    obj = snap.cache_object(art.md5)
    if obj is not None:
        copies.append(("cache", obj))
    if snap.commit.has(art.path):
        copies.append(("git", None))
    ws = snap.workspace_file(art.path)
    if ws is not None and ws != obj:
        copies.append(("workspace", ws))
    if not copies:
        where = "the DVC cache" if art.cached else "the commit"
        found.fail(
            art.path,
            f"missing: not in {where} (md5 {art.md5}); run `dvc pull` (for a commit "
            "not checked out: `dvc fetch --all-commits`) to get it from the remote",
        )
        return
    for kind, location in copies:
        md5, sha = digests(snap.commit.read(art.path) if kind == "git" else location)
        if md5 != art.md5:
            what = {
                "cache": f"DVC cache object {location} is corrupted",
                "git": "the committed file differs from what dvc.lock records",
                "workspace": "the working-tree copy differs from what the commit recorded "
                f"(modified or re-run since; `{'dvc' if art.cached else 'git'} "
                "checkout` restores it)",
            }[kind]
            found.fail(art.path, f"{what}: md5 {md5}, dvc.lock records {art.md5}")
        elif art.source is None:
            art.source, art.sha256, art.location = kind, sha, location


# -- 2. dvc.lock against the commit ------------------------------------------------------------


def lookup(tree: Any, dotted: str) -> tuple[bool, Any]:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _md5_at_commit(snap: Snapshot, path: str) -> str | None:
    """md5 (DVC's form) of a file or directory as the commit holds it, from artifacts and git."""
    path = path.rstrip("/")
    if path in snap.out_md5:
        return snap.out_md5[path]
    if path in snap.artifacts:
        return snap.artifacts[path].md5
    if snap.commit.has(path):
        return digests(snap.commit.read(path))[0]
    pre = path + "/"
    entries = {p[len(pre) :]: a.md5 for p, a in snap.artifacts.items() if p.startswith(pre)}
    for p in snap.commit.files_under(path):
        entries.setdefault(p[len(pre) :], digests(snap.commit.read(p))[0])
    return dir_md5(entries) if entries else None


def verify_lock(snap: Snapshot, found: Findings) -> None:
    params = snap.params_yaml()
    for stage, entry in snap.stages.items():
        for pfile, values in (entry.get("params") or {}).items():
            if pfile != "params.yaml":
                found.notes.append(f"{stage}: parameters from {pfile} not checked")
                continue
            for key, recorded in (values or {}).items():
                present, now = lookup(params, key)
                if not present or now != recorded:
                    found.fail(
                        f"dvc.lock stage {stage}",
                        f"params.yaml's {key} is {now!r} in this commit, but the stage's outputs "
                        f"were made with {recorded!r}: the committed results are stale (`dvc repro`)",
                    )
        for dep in entry.get("deps") or []:
            path, md5 = dep["path"], dep.get("md5")
            now = _md5_at_commit(snap, path)
            if now is None:
                found.notes.append(
                    f"{stage}: dependency {path} is neither committed nor an output "
                    "of the pipeline; not verifiable"
                )
            elif now != md5:
                found.fail(
                    f"dvc.lock stage {stage}",
                    f"depends on {path} as md5 {md5}, but the commit holds {now}: its outputs "
                    "were made from something else than this commit (stale; `dvc repro`)",
                )


# -- 3. manifests ------------------------------------------------------------------------------


@dataclass
class Run:
    """One stage run, as its manifest records it."""

    id: int
    path: str
    manifest: dict[str, Any]

    @property
    def stage(self) -> str:
        return str(self.manifest.get("stage"))

    @property
    def report_kind(self) -> str:
        m = self.manifest
        return str(m.get("report") or (m.get("params") or {}).get("report", ""))

    @property
    def point(self) -> str | None:
        """The sweep or readings point of a run in ``results/sweep-runs/<ds>/<model>/<point>/
        seed-<s>/`` (the manifest does not record it: its place does); None for the main grid."""
        parts = PurePosixPath(self.path).parts
        if SWEEP_RUNS not in parts:
            return None
        i = parts.index(SWEEP_RUNS)
        return parts[i + 3] if len(parts) > i + 5 else None

    @property
    def address(self) -> list[str]:
        """What names this run and no other in ``--rerun STAGE@ADDRESS``: DATASET for the data
        stages, DATASET/MODEL[/POINT]/SEED for the model stages, KIND[/DATASET] for reports."""
        m = self.manifest
        if self.stage == "report":
            kind = "write" if self.report_kind == "report" else self.report_kind
            return [kind, *([str(m["dataset"])] if "dataset" in m else [])]
        parts = [str(m[k]) for k in ("dataset", "model") if k in m]
        if self.point is not None:
            parts.append(self.point)
        return [*parts, *([str(m["seed"])] if "seed" in m else [])]

    @property
    def spec(self) -> str:
        """The ``--rerun`` argument that selects exactly this run."""
        return f"{self.stage}@{'/'.join(self.address)}" if self.address else self.stage

    @property
    def label(self) -> str:
        m = self.manifest
        if m.get("stage") == "report":
            return f"report {self.report_kind} {m.get('dataset', '')}".rstrip()
        parts = [str(m[k]) for k in ("dataset", "model") if k in m]
        parts += [self.point] if self.point is not None else []
        parts += [f"seed-{m['seed']}"] if "seed" in m else []
        return f"{self.stage} {'/'.join(parts)}".rstrip()

    def files(self, key: str) -> dict[str, str]:
        value = self.manifest.get(key) or {}
        return value if isinstance(value, dict) else {}


STAGE_ORDER = ("download", "preprocess", "split", "train", "evaluate", "noise", "tsne", "report")
# reports read each other in this order (the summaries, then the tables, figures and report.md)
REPORT_ORDER = ("metrics", "noise", "tsne", "sweeps", "readings", "tables", "figures", "report")
RESULT_ROOTS = ("data/", "results/")  # layout.DATA and layout.RESULTS: where stages write


def _beside_outputs(path: str, m: dict[str, Any]) -> bool:
    """Whether a manifest sits where its stage wrote it, beside its outputs: a copy elsewhere
    (``results/paper/``, a benchmark's record) describes files at another place."""
    here = str(PurePosixPath(path).parent) + "/"
    outs = m.get("outputs") or {}
    # any, not all: a stage may also write elsewhere (the metrics summary writes results/curves/)
    return isinstance(outs, dict) and (not outs or any(str(o).startswith(here) for o in outs))


def manifest_paths(snap: Snapshot) -> tuple[list[str], set[str]]:
    """Every manifest of the commit: those in dvc.lock's outputs, and the ones git tracks
    under data/ and results/ (the studies' per-job and summary manifests, report.md's: the
    pipeline writes them beside ``cache: false`` outputs without declaring them)."""
    locked = {p for p in snap.artifacts if is_manifest(p)}
    tracked = {
        p
        for p in snap.commit.blobs
        if is_manifest(p) and p.startswith(RESULT_ROOTS) and p not in snap.artifacts
    }
    return sorted(locked | tracked), tracked


def load_runs(snap: Snapshot, found: Findings) -> list[Run]:
    runs, copies = [], []
    paths, tracked = manifest_paths(snap)
    for path in paths:
        data = snap.read(path)
        if data is None:
            continue  # already reported as missing or corrupt
        try:
            m = json.loads(data)
        except json.JSONDecodeError as exc:
            found.fail(path, f"not valid JSON ({exc})")
            continue
        if not isinstance(m, dict) or "stage" not in m or "fingerprint" not in m:
            found.notes.append(f"{path}: not a stage manifest; skipped")
            continue
        if path in tracked and not _beside_outputs(path, m):
            copies.append(path)
            continue
        runs.append(Run(len(runs) + 1, path, m))
    if copies:
        found.notes.append(
            f"{len(copies)} committed manifest(s) away from the outputs they record (copies, "
            f"e.g. {copies[0]}): not audited"
        )
    runs.sort(key=_run_order)
    for i, r in enumerate(runs, 1):
        r.id = i
    return runs


def _run_order(r: Run) -> tuple[int, int, str]:
    """Stage order, so that every run comes after the runs it read (lineage lists rely on it)."""
    stage = STAGE_ORDER.index(r.stage) if r.stage in STAGE_ORDER else len(STAGE_ORDER)
    kind = REPORT_ORDER.index(r.report_kind) if r.report_kind in REPORT_ORDER else len(REPORT_ORDER)
    return stage, kind, r.path


# How commits made before the import-closure hash (codehash.py) listed each stage's source.
LEGACY_OWN_FAMILIES = ("dave", "itempop")
LEGACY_BASELINE_SHARED = "models/baseline_utils.py"


def commit_code_hash(
    snap: Snapshot, stage: str, family: str | None, family_module: str | None = None
) -> str | None:
    """The code hash a stage would record if run from the commit's source (None: no source)."""
    files = {p[len(PACKAGE) + 1 :]: p for p in snap.commit.files_under(PACKAGE)}
    if not files:
        return None
    consts = (
        _literals(
            snap.commit.read(files["provenance.py"]),
            ("STAGE_ROOTS", "STAGE_CODE", "OWN_FAMILIES", "BASELINE_SHARED"),
        )
        if "provenance.py" in files
        else {}
    )
    if "STAGE_ROOTS" in consts:  # the commit hashes each stage's import closure
        roots = consts["STAGE_ROOTS"].get(stage)
        if roots is None:
            return None
        if family is not None:
            roots = (*roots, family_module or f"models/{family.replace('-', '_')}.py")

        def read(rel: str) -> bytes | None:
            return snap.commit.read(files[rel]) if rel in files else None

        try:
            return closure_hash(roots, read)[0]
        except DaveError:
            return None
    stage_code = consts.get("STAGE_CODE")
    own = consts.get("OWN_FAMILIES", LEGACY_OWN_FAMILIES)
    shared = consts.get("BASELINE_SHARED", LEGACY_BASELINE_SHARED)
    if stage_code is None or stage not in stage_code:
        return None
    parts = list(stage_code[stage])
    if family is not None:
        parts.append(f"models/{family.replace('-', '_')}.py")
        if family not in own and shared in files:
            parts.append(shared)
    chosen: set[str] = set()
    for part in parts:
        if part in files:
            chosen.add(part)
        else:
            chosen.update(
                rel
                for rel in files
                if rel.startswith(part.rstrip("/") + "/") and rel.endswith(".py")
            )
    return hash_sources({rel: snap.commit.read(files[rel]) for rel in chosen})


def _literals(source: bytes, names: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
            )
        )
        if isinstance(target, ast.Name) and target.id in names and node.value is not None:
            with contextlib.suppress(ValueError):  # not a literal: keep the current value
                found[target.id] = ast.literal_eval(node.value)
    return found


def fingerprint_of(m: dict[str, Any]) -> str:
    return sha256_bytes(
        canonical(
            {
                "stage": m.get("stage"),
                "params": m.get("params"),
                "inputs": m.get("inputs"),
                "code": m.get("code_sha256"),
            }
        ).encode()
    )


def verify_runs(snap: Snapshot, runs: list[Run], found: Findings) -> None:
    code_cache: dict[tuple[str, str | None], str | None] = {}
    absent: dict[str, int] = {}  # a results copy's files it does not hold, by kind
    for run in runs:
        m = run.manifest
        if fingerprint_of(m) != m.get("fingerprint"):
            found.fail(
                run.path,
                "the fingerprint does not recompute from the manifest's own params, "
                "inputs and code hash (the manifest was edited)",
            )
        for key, kind in zip(FILE_KEYS, ("input", "output", "by-product"), strict=True):
            for path, recorded in run.files(key).items():
                now = snap.sha256(path)
                if now is None:
                    if path in snap.artifacts:
                        continue  # missing or corrupt: reported with the artifact
                    if snap.results_copy:  # records only: checkpoints, curves, data are not kept
                        what = "data input" if path.startswith("data/") else kind
                        absent[what] = absent.get(what, 0) + 1
                        continue
                    found.fail(
                        run.path,
                        f"{kind} {path} is not among the commit's artifacts "
                        "(not tracked by dvc.lock nor committed)",
                    )
                elif now != recorded:
                    found.fail(
                        run.path,
                        f"{kind} {path} hashes to sha256 {now[:16]}… in this commit, "
                        f"the {run.stage} run recorded {recorded[:16]}… (stale or replaced)",
                    )
        family = (m.get("params") or {}).get("family") if run.stage in FAMILY_STAGES else None
        key = (run.stage, family)
        if key not in code_cache:
            code_cache[key] = commit_code_hash(snap, run.stage, family, m.get("family_module"))
        expected = code_cache[key]
        if expected is None:
            found.notes.append(
                f"{run.path}: code hash not checked (the commit has no {PACKAGE} source "
                f"for stage {run.stage})"
            )
        elif expected != m.get("code_sha256"):
            found.fail(
                run.path,
                f"made by other code than this commit's (code hash "
                f"{str(m.get('code_sha256'))[:12]}…, the commit's source hashes to "
                f"{expected[:12]}…): re-run the stage",
            )
    if absent:
        found.notes.append(
            f"{snap.results_copy} holds the runs' records, not every file they recorded: "
            + ", ".join(f"{n} {what}(s)" for what, n in sorted(absent.items()))
            + " are not in it (checkpoints, curves, the data) and were not checked; a --rerun "
            "re-makes them (the data from its sources) and checks each against its recorded sha256"
        )
    dirty = [str(r.id) for r in runs if (r.manifest.get("git") or {}).get("dirty")]
    if dirty:
        found.notes.append(
            f"{len(dirty)} stage run(s) ran in a working tree with uncommitted changes "
            f"(normal for `dvc repro` before the commit): [{'], ['.join(dirty)}]"
        )


def verify_tracked(snap: Snapshot, runs: list[Run], found: Findings) -> None:
    """The working-tree copies of what the runs record beyond dvc.lock's outputs (the studies'
    per-job files, the committed manifests): checked like the artifacts' when the commit is
    the one checked out, since the audit reads that tree (the commit's copy is checked by
    :func:`verify_runs`)."""
    if not snap.checked_out:
        return
    paths = {r.path for r in runs} | {p for r in runs for key in FILE_KEYS for p in r.files(key)}
    for path in sorted(p for p in paths if p not in snap.artifacts and snap.commit.has(p)):
        ws = snap.root / snap.commit.tree_path(path)
        if not ws.is_file():
            found.fail(
                path, "committed, but missing from the working tree (`git checkout` restores it)"
            )
            continue
        now, committed = digests(ws)[1], snap.sha256(path) or ""
        if now != committed:
            found.fail(
                path,
                f"the working-tree copy differs from what the commit recorded (modified or "
                f"re-run since; `git checkout` restores it): sha256 {now[:16]}…, the commit "
                f"holds {committed[:16]}…",
            )


def producers(runs: list[Run]) -> dict[str, Run]:
    return {path: run for run in runs for path in run.files("outputs")}


def lineage(run: Run, made_by: dict[str, Run]) -> list[Run]:
    """The run and every run upstream of it, downstream first (runs are numbered in stage order)."""
    seen, queue = {run.id: run}, [run]
    while queue:
        for path in queue.pop().files("inputs"):
            up = made_by.get(path)
            if up is not None and up.id not in seen:
                seen[up.id] = up
                queue.append(up)
    return sorted(seen.values(), key=lambda r: -r.id)
