"""The source dependencies of each DVC stage, from the same import closures as the code hashes.

``dvc.yaml`` lists them (directories where every module of a directory is covered), and
``tests/test_architecture.py`` holds the file to exactly this, so DVC re-runs a stage exactly
when a module its commands import changes, as the stages' own fingerprints do.
"""

from __future__ import annotations

from pathlib import Path

from .models.specs import FAMILIES
from .provenance import PACKAGE_DIR, stage_code

SRC = "src/dave_repro"

# Which stages of the package each DVC stage's command runs.
DVC_STAGES: dict[str, tuple[str, ...]] = {
    "check-params": (),  # `dave check-params` alone: no stage of the package, no source deps
    "download": ("download",),
    "preprocess": ("preprocess",),
    "split": ("split",),
    "experiments": ("train", "evaluate", "report"),
    "studies": ("noise", "tsne", "train", "evaluate", "report"),
    "tables": ("report",),
    "figures": ("report",),
    "report": ("report",),
}
MODEL_STAGES = ("train", "evaluate", "noise", "tsne")


def modules(dvc_stage: str) -> set[str]:
    out: set[str] = set()
    for stage in DVC_STAGES[dvc_stage]:
        families = list(FAMILIES) if stage in MODEL_STAGES else [None]
        for family in families:
            out |= set(stage_code(stage, family)[1])
    return out


def deps(dvc_stage: str, package: Path = PACKAGE_DIR) -> list[str]:
    """The stage's source deps as dvc.yaml writes them: whole directories where possible."""
    files = modules(dvc_stage)
    full = set()
    for d in sorted({str(Path(f).parent) for f in files if "/" in f}):
        if {str(x.relative_to(package)) for x in (package / d).rglob("*.py")} <= files:
            full.add(d)
    full = {d for d in full if not any(d.startswith(e + "/") for e in full if e != d)}
    rest = [f for f in sorted(files) if not any(f.startswith(d + "/") for d in full)]
    return [f"{SRC}/{p}" for p in (*sorted(full), *rest)]
