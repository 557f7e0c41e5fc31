"""Content-addressed stage runs: fingerprints, manifests, and the environment that made them.

Every stage, whichever engine started it, goes through :class:`StageRun`. Its *fingerprint* is
the sha256 of the stage name, the parameters it uses (only those), the sha256 of every input file
and the hash of the source modules it runs. After the outputs are written (atomically), a
manifest next to them records the fingerprint, each input's and output's sha256, the parameters,
the git commit (and whether the tree was dirty) and the environment. A later call with the same
fingerprint whose outputs still hash as recorded does no work: caching is by content, never by
file times, so it holds after ``dvc checkout`` and on another machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from . import __version__, atomic
from .codehash import closure_hash
from .hashing import sha256_bytes, sha256_file

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST_VERSION = 1

# The root modules of each stage, relative to the package: its code hash covers their import
# closure (codehash.py), and for a model stage the closure of the family's own module too, so
# editing one model never re-keys the runs of another. dvc.yaml's deps are tested against it.
STAGE_ROOTS: dict[str, tuple[str, ...]] = {
    "download": ("stages/data.py",),
    "preprocess": ("stages/data.py",),
    "split": ("stages/data.py",),
    "train": ("stages/train.py",),
    "evaluate": ("stages/evaluate.py",),
    "noise": ("stages/studies.py",),
    "tsne": ("stages/studies.py",),
    "report": ("stages/reports.py",),
}


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A stage's manifest as written, or None where there is none to trust (missing, not JSON,
    not a mapping): every caller then treats the stage as not run."""
    try:
        rec = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def _read_package(rel: str) -> bytes | None:
    path = PACKAGE_DIR / rel
    return path.read_bytes() if path.is_file() else None


def family_module(family: str) -> str:
    """The package-relative path of a family's module, as its declaration names it."""
    from .models.specs import FAMILIES

    return f"models/{FAMILIES[family].module}.py"


def stage_roots(stage: str, family: str | None = None) -> tuple[str, ...]:
    roots = STAGE_ROOTS[stage]
    return roots if family is None else (*roots, family_module(family))


@cache
def stage_code(stage: str, family: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The stage's code hash and the modules it covers."""
    digest, modules = closure_hash(stage_roots(stage, family), _read_package)
    return digest, tuple(modules)


def stage_code_hash(stage: str, family: str | None = None) -> str:
    return stage_code(stage, family)[0]


def hash_sources(sources: dict[str, bytes]) -> str:
    """sha256 over (package-relative path, content) pairs in path order (the code hash of
    manifests written before the import-closure hash; ``dave audit`` still checks those)."""
    h = hashlib.sha256()
    for rel in sorted(sources, key=lambda r: tuple(r.split("/"))):
        h.update(rel.encode() + b"\0")
        h.update(sources[rel])
        h.update(b"\0")
    return h.hexdigest()


def job_key(stage: str, payload: Any, family: str | None = None) -> str:
    """A job's key: changes exactly when its result would (the parameters it uses, its code).

    The engine names a key file by it (a Snakemake input); the stages record it in manifests.
    Deterministic: no times, no random values.
    """
    code = stage_code_hash(stage, family)
    return sha256_bytes(canonical({"stage": stage, "payload": payload, "code": code}).encode())[:16]


def run_key(stage: str, job: dict[str, Any]) -> str:
    """The key of a run's train or evaluate stage from its resolved job configuration."""
    return job_key(stage, job, job["family"])


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _rel(p: str | os.PathLike[str]) -> str:
    p = Path(p)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@lru_cache(maxsize=1)
def lock_hash() -> str | None:
    for candidate in (Path("requirements.lock"), PACKAGE_DIR.parents[1] / "requirements.lock"):
        if candidate.is_file():
            return sha256_file(candidate)
    return None


def environment(device: str | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dave_repro": __version__,
        "requirements_lock_sha256": lock_hash(),
    }
    if "torch" in sys.modules:  # only report torch where the stage used it
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["cuda_available"] = torch.cuda.is_available()
        env["torch_threads"] = torch.get_num_threads()  # float reductions depend on it
        if device is not None:
            env["device"] = device
            if device.startswith("cuda") and torch.cuda.is_available():
                env["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return env


def tree_hashes(directory: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every file under ``directory`` (by-products such as training curves, which a
    manifest records without making them part of what ``up_to_date`` requires)."""
    root = Path(directory)
    return (
        {_rel(p): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
        if root.is_dir()
        else {}
    )


def _hashes(stage: str, paths: list[Path], missing_message: str) -> dict[str, str]:
    """sha256 of each file; a file that is (or goes) missing is a clear error, not a traceback."""
    out, missing = {}, []
    for p in paths:
        try:
            out[_rel(p)] = sha256_file(p)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            missing.append(str(p))
    if missing:
        from .errors import DaveError

        raise DaveError(f"{stage}: " + missing_message.format(", ".join(missing)))
    return out


class StageRun:
    """One execution of a stage on given inputs and parameters."""

    def __init__(
        self,
        stage: str,
        manifest: str | os.PathLike[str],
        *,
        inputs: Iterable[str | os.PathLike[str]],
        outputs: Iterable[str | os.PathLike[str]] | None,
        params: dict[str, Any],
        code: str | None = None,
        family: str | None = None,
    ) -> None:
        self.stage = stage
        self.manifest_path = Path(manifest)
        self.inputs = [Path(p) for p in inputs]
        # None: the outputs are only known after the run (e.g. the files of a download form).
        self.outputs = None if outputs is None else [Path(p) for p in outputs]
        self.params = params
        self.family = family
        self.code = code if code is not None else stage_code_hash(stage, family)
        self.input_hashes = _hashes(
            stage, self.inputs, "missing input file(s): {} (run the upstream stage first)"
        )
        self.fingerprint = sha256_bytes(
            canonical(
                {
                    "stage": stage,
                    "params": params,
                    "inputs": self.input_hashes,
                    "code": self.code,
                }
            ).encode()
        )

    def recorded(self) -> dict[str, Any] | None:
        return read_manifest(self.manifest_path)

    def up_to_date(self) -> bool:
        """Same fingerprint, and every output still hashes to what was recorded."""
        rec = self.recorded()
        if not rec or rec.get("fingerprint") != self.fingerprint:
            return False
        outs = rec.get("outputs", {})
        expected = [_rel(p) for p in self.outputs] if self.outputs is not None else list(outs)
        for key in expected:
            p = Path(key)
            if key not in outs or not p.is_file() or sha256_file(p) != outs[key]:
                return False
        return True

    def finish(
        self,
        extra: dict[str, Any] | None = None,
        device: str | None = None,
        outputs: Iterable[str | os.PathLike[str]] | None = None,
    ) -> dict[str, Any]:
        if outputs is not None:
            self.outputs = [Path(p) for p in outputs]
        if self.outputs is None:
            raise ValueError("StageRun.finish needs the outputs")
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "stage": self.stage,
            "fingerprint": self.fingerprint,
            "inputs": self.input_hashes,
            "outputs": _hashes(
                self.stage,
                self.outputs,
                "output(s) {} vanished before this run could record them (another "
                "tool removed them meanwhile?); nothing was recorded, run it again",
            ),
            "params": self.params,
            "code_sha256": self.code,
            # what the code hash covers (the import closure), and the family's own module
            "code_modules": list(stage_code(self.stage, self.family)[1]),
            **({"family_module": family_module(self.family)} if self.family else {}),
            "git": git_state(),
            "environment": environment(device),
            "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if extra:
            manifest.update(extra)
        atomic.write_json(self.manifest_path, manifest)
        return manifest
