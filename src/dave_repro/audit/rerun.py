"""``dave audit <commit> --rerun <stage>[@<address>]``: re-execute stage runs of a commit and
compare.

Each run has an address naming it alone (:attr:`.Run.address`; a sweep or readings point's run
has its point in it) and :func:`select` takes a run's address or a leading part of addresses.
Each selected run is re-executed in a scratch workspace: the commit's tree (``git archive``,
its own code and params.yaml), plus the files of the directories the run read, restored from
the DVC cache or the commit and checked against the sha256 the run recorded. The stage is run
with the commit's code (``python -m dave_repro.cli`` with the scratch ``src`` first on the path)
and its outputs are compared with the recorded ones: data stages must be byte-identical; a
training or evaluation run must give identical contents (weights, histories, metrics, ranks;
only wall-clock timings may differ); reports identical contents. Every difference is named.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import DaveError
from .diff import describe, values_diff
from .snapshot import Snapshot, digests
from .verify import Run, fingerprint_of, listed

DATA_STAGES = ("download", "preprocess", "split")
MODEL_STAGES = ("train", "evaluate", "noise", "tsne")
STAGES = (*DATA_STAGES, *MODEL_STAGES, "report")
# wall-clock fields of train.json: the only values a faithful re-run may change
TIMINGS = frozenset({"seconds", "train_seconds"})
MAX_LISTED = 40  # addresses an unknown --rerun address lists


@dataclass
class RerunResult:
    run: Run
    scratch: str
    identical: list[str] = field(default_factory=list)  # byte-identical outputs
    same_content: list[str] = field(default_factory=list)  # same content, other bytes (timings)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _normal(part: str) -> str:
    """``seed-3`` and ``3`` name the same seed (the directory and the CLI spell it each way)."""
    rest = part.removeprefix("seed-")
    return rest if rest != part and rest.isdigit() else part


def _matches(run: Run, want: list[str]) -> bool:
    """Whether ``want`` is the run's address or a leading part of it; ``report@DATASET`` also
    selects that dataset's reports, as before reports had addresses of their own."""
    if run.address[: len(want)] == want:
        return True
    return run.stage == "report" and len(want) == 1 and run.manifest.get("dataset") == want[0]


def _have(runs: list[Run], stage: str) -> str:
    return listed([r.spec for r in runs if r.stage == stage], MAX_LISTED) or "none"


def select(runs: list[Run], spec: str) -> list[Run]:
    """The runs ``STAGE[@ADDRESS]`` names. A run's full address (:attr:`.Run.address`) selects
    that run and no other, a sweep or readings point's run included; a leading part of
    addresses selects every run under it (``train@ml-100k/dave``: dave's trainings on
    ml-100k, its points' too; no address: every run of the stage)."""
    stage, _, sel = spec.partition("@")
    if stage not in STAGES:
        raise DaveError(f"--rerun {spec}: unknown stage {stage!r} (one of {', '.join(STAGES)})")
    want = [_normal(p) for p in sel.split("/")] if sel else []
    of_stage = [r for r in runs if r.stage == stage]
    exact = [r for r in of_stage if r.address == want]
    if len(exact) > 1:
        raise DaveError(
            f"--rerun {spec}: ambiguous, {len(exact)} {stage} runs have that address: "
            + ", ".join(r.path for r in exact)
        )
    chosen = exact or [r for r in of_stage if _matches(r, want)]
    if not chosen:
        form = "DATASET/MODEL[/POINT]/SEED" if stage in MODEL_STAGES else "KIND[/DATASET]"
        raise DaveError(
            f"--rerun {spec}: no {stage} run of this commit has that address "
            f"({stage}@{'DATASET' if stage in DATA_STAGES else form}; "
            f"it has: {_have(runs, stage)})"
        )
    return chosen


def command(run: Run, device: str) -> list[str]:
    m, p = run.manifest, run.manifest.get("params") or {}
    if run.stage in DATA_STAGES:
        return [run.stage, str(m["dataset"])]
    if run.stage in MODEL_STAGES:
        if run.point is not None:  # results/sweep-runs/<ds>/<model>/<point>/seed-<s>/
            ds, model, seed = str(m["dataset"]), str(m["model"]), str(m["seed"])
            if run.stage == "train":
                cmd = ["sweep", ds, run.point, seed, "--model", model]
            else:
                cmd = ["evaluate", ds, model, seed, "--point", run.point]
        else:
            cmd = [run.stage, str(m["dataset"]), str(m["model"]), str(m["seed"])]
        cmd += ["--profile", str(p["profile"]), "--device", device]
        threads = (m.get("environment") or {}).get("torch_threads")
        return [*cmd, "--threads", str(threads)] if threads else cmd
    kind = p.get("report")
    if kind in ("metrics", "noise", "tsne", "sweeps", "readings"):
        return ["report", kind, str(p["dataset"]), "--profile", str(p["profile"])]
    return [
        "report",
        "write" if kind == "report" else str(kind or "tables"),
        "--profile",
        str(p["profile"]),
        "--datasets",
        *map(str, p["datasets"]),
    ]


def _scratch_outputs(run: Run) -> set[str]:
    return {run.path, *run.files("outputs"), *run.files("byproducts")}


def prepare(snap: Snapshot, run: Run, scratch: Path) -> list[str]:
    """Export the commit, drop the run's own outputs, restore what it read. Returns problems."""
    snap.commit.export(scratch)
    own = _scratch_outputs(run)
    for path in own:
        (scratch / path).unlink(missing_ok=True)
    for path in run.files("byproducts"):  # the run's curves: written afresh, like the original's
        (scratch / path).unlink(missing_ok=True)
    for directory in sorted({str(PurePosixPath(p).parent) for p in run.files("inputs")}):
        for path in snap.paths_in(directory):
            if path in own or (scratch / path).exists():
                continue
            art = snap.artifacts.get(path)
            if art is not None and art.source is None:
                continue  # missing or corrupt: reported by the verification; checked below if an input
            snap.copy_to(path, scratch / path)
    return check_inputs(run, scratch)


def check_inputs(run: Run, scratch: Path) -> list[str]:
    """Each input the run read, as the scratch holds it, against the sha256 it recorded."""
    problems = []
    for path, recorded in run.files("inputs").items():
        f = scratch / path
        if not f.is_file():
            problems.append(
                f"input {path} cannot be restored from this commit (missing from the cache: "
                "`dvc pull`)"
            )
        elif digests(f)[1] != recorded:
            problems.append(
                f"input {path} as this commit holds it hashes to sha256 {digests(f)[1][:16]}…, "
                f"the run recorded {recorded[:16]}…: the commit does not hold what the run used"
            )
    return problems


def _env(scratch: Path) -> tuple[dict[str, str], str | None]:
    env = {k: v for k, v in os.environ.items() if k != "DAVE_PARAMS"}
    env["GIT_CEILING_DIRECTORIES"] = str(scratch.parent)  # the scratch copy is not the repository
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    src = scratch / "src"
    if (src / "dave_repro").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
        return env, None
    return env, "the commit holds no src/dave_repro: the installed dave_repro ran instead"


def _dave(args: list[str], scratch: Path, env: dict[str, str], lines: int) -> tuple[int, str]:
    """Run the commit's own CLI in the scratch copy: its exit status and its output's tail."""
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", *args],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
    )
    tail = "\n      ".join((proc.stderr or proc.stdout).strip().splitlines()[-lines:])
    return proc.returncode, tail


def remake_data(run: Run, scratch: Path, env: dict[str, str]) -> str | None:
    """A results copy keeps no data: re-make the dataset the run read with the commit's own
    data stages (downloads checked against their checksums). Returns a problem, or None."""
    if not any(p.startswith("data/") and not (scratch / p).is_file() for p in run.files("inputs")):
        return None
    dataset = str(run.manifest.get("dataset"))
    rc, tail = _dave(["data", dataset], scratch, env, 6)
    if rc != 0:
        return f"re-making the data of {dataset} (`dave data {dataset}`) failed:\n      {tail}"
    return None


def rerun_one(
    snap: Snapshot, run: Run, *, device: str, scratch_root: Path | None, keep: bool
) -> RerunResult:
    scratch = Path(tempfile.mkdtemp(prefix="dave-audit-", dir=scratch_root))
    res = RerunResult(run, str(scratch))
    try:
        problems = prepare(snap, run, scratch)
        env, note = _env(scratch)
        if problems and snap.results_copy:
            remade = remake_data(run, scratch, env)
            problems = [remade] if remade else check_inputs(run, scratch)
            if not problems:
                res.notes.append(
                    f"{run.label}: its data re-made from the sources; every input matches the "
                    "sha256 the run recorded"
                )
        if problems:
            res.failures += [f"{run.label}: not re-run: {p}" for p in problems]
            return res
        if note:
            res.notes.append(note)
        if "data_mirror" in run.manifest:  # Table 2's notes describe the mirror the run saw
            from ..data.fetch import MIRROR_ENV

            env.pop(MIRROR_ENV, None)
            if run.manifest["data_mirror"]:
                env[MIRROR_ENV] = str(run.manifest["data_mirror"])
        recorded_device = (run.manifest.get("environment") or {}).get("device")
        if run.stage in MODEL_STAGES and recorded_device and recorded_device != device:
            res.notes.append(
                f"{run.label} ran on {recorded_device}, re-run on {device}: results on different "
                "devices need not agree bit for bit"
            )
        if run.stage in MODEL_STAGES and not (run.manifest.get("environment") or {}).get(
            "torch_threads"
        ):
            res.notes.append(
                f"{run.label}: its torch thread count was not recorded; re-run with the default "
                "(float sums may then differ in the last bits)"
            )
        args = command(run, device)
        rc, tail = _dave(args, scratch, env, 8)
        if rc != 0:
            res.failures.append(
                f"{run.label}: the re-run `dave {' '.join(args)}` failed (exit {rc}):\n      {tail}"
            )
            return res
        compare(snap, run, scratch, res)
        if res.failures and (note := host_note(run, platform.platform())):
            res.notes.append(note)
        return res
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def host_note(run: Run, here: str) -> str | None:
    """Why a model stage's re-run may differ on another host, when it ran on one.

    Bitwise identity holds on the same kind of CPU: another CPU can take other MKL kernels, whose
    float sums round differently (seen: a training loss differing in its 8th digit at epoch 0,
    docs/provenance.md), and an adversarial model's run can then diverge.
    """
    recorded = (run.manifest.get("environment") or {}).get("platform")
    if run.stage not in MODEL_STAGES or not recorded or recorded == here:
        return None
    return (
        f"{run.label} ran on host {recorded}, re-run on {here}: on another CPU the math "
        "libraries may round float sums differently, so a training may differ from the first "
        "epoch on (docs/provenance.md, 'Re-runs on another machine')"
    )


def compare(snap: Snapshot, run: Run, scratch: Path, res: RerunResult) -> None:
    try:
        new = json.loads((scratch / run.path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        res.failures.append(f"{run.label}: the re-run wrote no manifest at {run.path}")
        return
    if new.get("fingerprint") != run.manifest.get("fingerprint"):
        why = values_diff(run.manifest.get("params"), new.get("params"), "params")
        why += values_diff(run.manifest.get("inputs"), new.get("inputs"), "inputs")
        if run.manifest.get("code_sha256") != new.get("code_sha256"):
            why.append(
                "code hash differs (the commit's source is not the code that made the result)"
            )
        if fingerprint_of(run.manifest) != run.manifest.get("fingerprint"):
            why.append("the recorded manifest does not recompute its own fingerprint")
        res.failures.append(
            f"{run.label}: the re-run's fingerprint differs from the recorded one: "
            + "; ".join(why or ["(no component differs?)"])
        )
    for path, recorded in run.files("outputs").items():
        f = scratch / path
        if not f.is_file():
            res.failures.append(f"{path}: the re-run did not write it")
            continue
        if digests(f)[1] == recorded:
            res.identical.append(path)
            continue
        old = snap.read(path)
        if old is None:
            res.failures.append(
                f"{path}: re-run sha256 {digests(f)[1][:16]}… differs from the recorded "
                f"{recorded[:16]}…, and the recorded copy is not available to compare"
            )
            continue
        diffs = describe(
            path, old, f.read_bytes(), TIMINGS if run.stage == "train" else frozenset()
        )
        if run.stage in DATA_STAGES:
            detail = "; ".join(diffs) if diffs else "same content, different bytes"
            res.failures.append(f"{path}: not byte-identical to the recorded output: {detail}")
        elif diffs:
            res.failures.append(f"{path}: differs from the recorded output: " + "; ".join(diffs))
        else:
            res.same_content.append(path)
