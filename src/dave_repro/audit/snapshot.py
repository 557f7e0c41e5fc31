"""One commit's artifacts, read without checking the commit out.

A commit holds its results in two places: files git tracks (code, params.yaml, dvc.lock, and the
small ``cache: false`` outputs such as metrics, tables and curves) and files only ``dvc.lock``
names by md5 (data, checkpoints, ranks), whose bytes are in the DVC cache after ``dvc repro`` or
``dvc pull``. :class:`Snapshot` expands every output in the commit's ``dvc.lock`` into files and
finds the bytes of each one: the DVC cache, the commit's git tree, or (when the commit is the
one checked out) the working tree.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DaveError

_CHUNK = 1 << 20
# what a stage's result depends on besides its inputs: parameters, code, pipeline, environment
DEPENDS_ON = (
    "params.yaml",
    "src",
    "dvc.yaml",
    "Snakefile",
    "workflow",
    "requirements.lock",
    "pyproject.toml",
    "checksums.lock.json",
)


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: DVC writes dvc.lock with a YAML 1.2 writer,
    which prints 3e-05 (no dot), a string to YAML 1.1's resolver but the float DVC read."""


def _load_yaml12(text: bytes) -> Any:
    """``yaml.safe_load`` with :class:`Yaml12Loader` (a SafeLoader: no object construction)."""
    loader = Yaml12Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class AuditInputError(DaveError):
    """The commit cannot be audited at all (no such commit, no dvc.lock)."""


def digests(data: bytes | Path) -> tuple[str, str]:
    """(md5, sha256) in one pass: DVC names files by md5, our manifests by sha256."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    if isinstance(data, bytes):
        md5.update(data)
        sha.update(data)
    else:
        with open(data, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                md5.update(chunk)
                sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def dir_md5(entries: dict[str, str]) -> str:
    """DVC's hash of a directory: md5 of its sorted (relpath, md5) listing as DVC serialises it."""
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries.items())]
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def git(root: Path, *args: str, data: bool = False) -> Any:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise AuditInputError(
            f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout if data else proc.stdout.decode()


RESULTS_DIR = "results"


class GitCommit:
    """The tree of one commit: paths, blob contents, and an exported copy. With
    ``results_copy`` (a committed copy of a results folder, e.g. ``results/paper``) the tree is
    seen as if that copy were ``results/``: the place its manifests describe."""

    def __init__(self, root: Path, rev: str, results_copy: str | None = None) -> None:
        self.root = root
        self.results_copy: str | None = None
        try:
            self.sha = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
        except AuditInputError:
            raise AuditInputError(f"{rev!r} is not a commit of the repository at {root}") from None
        self.blobs: dict[str, str] = {}
        self.outside: dict[str, str] = {}  # with results_copy: results/ files outside the copy
        out = git(root, "ls-tree", "-r", "-z", "--full-tree", self.sha, data=True)
        for entry in out.split(b"\0"):
            if not entry:
                continue
            meta, _, path = entry.partition(b"\t")
            mode, kind, oid = meta.decode().split()
            if kind == "blob":
                self.blobs[path.decode()] = oid
        self._batch: subprocess.Popen[bytes] | None = None
        if results_copy is not None:
            self._see_as_results(results_copy)

    def _see_as_results(self, folder: str) -> None:
        pre = folder.strip("/") + "/"
        if not pre.startswith(RESULTS_DIR + "/") or pre == RESULTS_DIR + "/" or ".." in pre:
            raise AuditInputError(
                f"--results {folder}: give a folder inside {RESULTS_DIR}/ (e.g. results/paper)"
            )
        inside = {p[len(pre) :]: oid for p, oid in self.blobs.items() if p.startswith(pre)}
        if not inside:
            raise AuditInputError(f"--results {folder}: commit {self.sha[:12]} has no files there")
        # the other committed results folders (e.g. results/readings-runs/, which the readings
        # report of results/paper/ read), by their real paths: what the copy's runs read there
        # is checked against them, their own lineage is another copy's audit
        self.outside = {
            p: o
            for p, o in self.blobs.items()
            if p.startswith(RESULTS_DIR + "/") and not p.startswith(pre)
        }
        self.blobs = {p: o for p, o in self.blobs.items() if not p.startswith(RESULTS_DIR + "/")}
        self.blobs.update({f"{RESULTS_DIR}/{rel}": oid for rel, oid in inside.items()})
        self.results_copy = pre.rstrip("/")

    def tree_path(self, path: str) -> str:
        """Where ``path`` (as the manifests name it) lies in the commit's real tree."""
        if self.results_copy and path.startswith(RESULTS_DIR + "/"):
            return self.results_copy + path[len(RESULTS_DIR) :]
        return path

    def has(self, path: str) -> bool:
        return path in self.blobs

    def files_under(self, prefix: str) -> list[str]:
        pre = prefix.rstrip("/") + "/"
        return sorted(p for p in self.blobs if p.startswith(pre))

    def read(self, path: str) -> bytes:
        return self._cat(self.blobs[path])

    def read_outside(self, path: str) -> bytes | None:
        """A file of another committed results folder, by its real path (``results_copy`` only)."""
        return self._cat(self.outside[path]) if path in self.outside else None

    def _cat(self, oid: str) -> bytes:
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.root), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        assert self._batch.stdin and self._batch.stdout
        self._batch.stdin.write(oid.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        size = int(header[2])
        data = self._batch.stdout.read(size)
        self._batch.stdout.read(1)  # the newline after each object
        return data

    def export(self, dest: Path) -> None:
        """The commit's tree as plain files (``git archive``; no checkout, no worktree)."""
        import tarfile

        proc = subprocess.Popen(
            ["git", "-C", str(self.root), "archive", "--format=tar", self.sha],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout
        root = dest.resolve()
        # member by member rather than extractall(filter="data"): that filter is missing from
        # Python 3.11 before 3.11.4, and a tree holds only directories and regular files anyway
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                target = (root / member.name).resolve()
                if member.name.startswith("/") or not target.is_relative_to(root):
                    raise AuditInputError(
                        f"git archive {self.sha}: {member.name!r} escapes the tree"
                    )
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    assert src is not None
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                    target.chmod(0o755 if member.mode & 0o111 else 0o644)
                else:
                    raise AuditInputError(
                        f"git archive {self.sha}: {member.name!r} is a link or special file "
                        "(the audit re-runs only trees of plain files)"
                    )
        if proc.wait() != 0:
            raise AuditInputError(f"git archive {self.sha} failed")
        if self.results_copy:  # the copy takes the place of results/
            shutil.rmtree(root / RESULTS_DIR, ignore_errors=True)
            for path in self.blobs:
                if path.startswith(RESULTS_DIR + "/"):
                    (root / path).parent.mkdir(parents=True, exist_ok=True)
                    (root / path).write_bytes(self.read(path))

    def close(self) -> None:
        if self._batch is not None:
            self._batch.stdin.close()  # type: ignore[union-attr]
            self._batch.wait()
            self._batch = None


def dvc_cache_dir(root: Path) -> Path:
    """The repository's DVC cache (``cache.dir`` in .dvc/config.local or .dvc/config, else .dvc/cache)."""
    for name in ("config.local", "config"):
        cfg = configparser.ConfigParser()
        try:
            cfg.read(root / ".dvc" / name)
        except configparser.Error:
            continue
        if cfg.has_option("cache", "dir"):
            return (root / ".dvc" / os.path.expanduser(cfg.get("cache", "dir"))).resolve()
    return root / ".dvc" / "cache"


@dataclass
class Artifact:
    """One file of a commit's results, as dvc.lock records it."""

    path: str
    md5: str
    stage: str
    out: str  # the dvc.lock output it belongs to (a file or a directory)
    cached: bool  # in the DVC cache; otherwise git tracks it (``cache: false``)
    source: str | None = None  # where verified bytes were found: cache, git or workspace
    sha256: str | None = None  # of those bytes
    location: Path | None = None  # cache object or workspace file holding them
    problems: list[str] = field(default_factory=list)


class Snapshot:
    """Every artifact of one commit, with where its bytes are."""

    def __init__(
        self, root: str | os.PathLike[str], rev: str, results_copy: str | None = None
    ) -> None:
        self.root = Path(git(Path(root), "rev-parse", "--show-toplevel").strip())
        self.commit = GitCommit(self.root, rev, results_copy)
        self.sha = self.commit.sha
        self.cache = dvc_cache_dir(self.root)
        head = git(self.root, "rev-parse", "HEAD").strip()
        self.checked_out = head == self.sha  # only then does the working tree belong to the commit
        # a committed results copy holds the runs' records, not what dvc.lock describes (the
        # pipeline's own results/): it is audited on its manifests alone
        self.results_copy = self.commit.results_copy
        self.lock: dict[str, Any] = {}
        if self.results_copy:
            pass
        elif not self.commit.has("dvc.lock"):
            raise AuditInputError(
                f"commit {self.sha[:12]} has no dvc.lock: no pipeline results were "
                "committed there (run `dvc repro`, then commit dvc.lock; a committed copy of a "
                "results folder is audited with --results, e.g. --results results/paper)"
            )
        else:
            try:
                self.lock = _load_yaml12(self.commit.read("dvc.lock")) or {}
            except yaml.YAMLError as exc:
                raise AuditInputError(
                    f"dvc.lock of {self.sha[:12]} is not valid YAML: {exc}"
                ) from None
        self.stages: dict[str, dict[str, Any]] = self.lock.get("stages", {}) or {}
        self.artifacts: dict[str, Artifact] = {}
        self.out_md5: dict[str, str] = {}  # every dvc.lock output (file or dir) -> its md5
        self.notes: list[str] = []
        self.problems: list[tuple[str, str]] = []  # (path, why): found while expanding outputs
        self._expand()

    # -- the artifact list --------------------------------------------------------------------

    def cache_object(self, md5: str) -> Path | None:
        for p in (self.cache / "files" / "md5" / md5[:2] / md5[2:], self.cache / md5[:2] / md5[2:]):
            if p.is_file():
                return p
        return None

    def _expand(self) -> None:
        for stage, entry in self.stages.items():
            for out in entry.get("outs", []) or []:
                path, md5 = out["path"], out.get("md5")
                if md5 is None:
                    self.notes.append(
                        f"{stage}: output {path} has no md5 in dvc.lock (not audited)"
                    )
                    continue
                self.out_md5[path] = md5
                if not md5.endswith(".dir"):
                    self._add(Artifact(path, md5, stage, path, cached=not self.commit.has(path)))
                    continue
                listing = self._dir_listing(path, md5)
                if listing is None:
                    self._add(
                        Artifact(
                            path,
                            md5,
                            stage,
                            path,
                            cached=True,
                            problems=[
                                f"directory listing {md5} is not in the DVC cache ({self.cache}) nor in the "
                                "commit: run `dvc pull` (for a commit not checked out: `dvc fetch --all-commits`)"
                            ],
                        )
                    )
                    continue
                entries, cached = listing
                if not cached and dir_md5(entries) != md5:
                    where = "committed" if self.commit.files_under(path) else "working-tree"
                    self.problems.append(
                        (
                            path,
                            f"the {where} directory hashes to {dir_md5(entries)}, "
                            f"dvc.lock records {md5}: files were added, removed or changed",
                        )
                    )
                for rel, fmd5 in entries.items():
                    self._add(Artifact(f"{path}/{rel}", fmd5, stage, path, cached=cached))

    def _add(self, art: Artifact) -> None:
        self.artifacts[art.path] = art

    def _dir_listing(self, path: str, md5: str) -> tuple[dict[str, str], bool] | None:
        obj = self.cache_object(md5)
        if obj is not None:
            try:
                return {e["relpath"]: e["md5"] for e in json.loads(obj.read_bytes())}, True
            except (json.JSONDecodeError, KeyError, TypeError):
                self.notes.append(f"{path}: the DVC cache's directory listing {obj} is unreadable")
        tracked = self.commit.files_under(path)
        if tracked:  # a `cache: false` directory: git holds its files
            return {p[len(path) + 1 :]: digests(self.commit.read(p))[0] for p in tracked}, False
        if self.checked_out and (self.root / path).is_dir():
            files = sorted(p for p in (self.root / path).rglob("*") if p.is_file())
            return {p.relative_to(self.root / path).as_posix(): digests(p)[0] for p in files}, False
        return None

    # -- bytes ----------------------------------------------------------------------------------

    def workspace_file(self, path: str) -> Path | None:
        p = self.root / self.commit.tree_path(path)
        return p if self.checked_out and p.is_file() else None

    def read(self, path: str) -> bytes | None:
        """The verified bytes of an artifact, or of a git-tracked file of the commit."""
        art = self.artifacts.get(path)
        if art is not None and art.source is not None:
            return self.commit.read(path) if art.source == "git" else art.location.read_bytes()  # type: ignore[union-attr]
        if art is None and self.commit.has(path):
            return self.commit.read(path)
        return None

    def outside_sha256(self, path: str) -> str | None:
        """With a results copy: the sha256 of ``path`` in another committed results folder."""
        data = self.commit.read_outside(path)
        return None if data is None else digests(data)[1]

    def sha256(self, path: str) -> str | None:
        art = self.artifacts.get(path)
        if art is not None:
            return art.sha256
        return digests(self.commit.read(path))[1] if self.commit.has(path) else None

    def copy_to(self, path: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        art = self.artifacts.get(path)
        if art is not None and art.location is not None:
            shutil.copyfile(art.location, dest)
            return
        data = self.read(path)
        if data is None:
            raise AuditInputError(f"{path}: no verified copy to restore")
        dest.write_bytes(data)

    def paths_in(self, directory: str) -> Iterator[str]:
        """Artifacts and tracked files directly inside ``directory`` (not in sub-directories)."""
        pre = directory.rstrip("/") + "/"
        seen = set()
        for p in [*self.artifacts, *self.commit.blobs]:
            if p.startswith(pre) and "/" not in p[len(pre) :] and p not in seen:
                seen.add(p)
                yield p

    def dirty(self) -> list[str]:
        """The files the results depend on (:data:`DEPENDS_ON`) that differ between the working
        tree and the commit: modified, staged, deleted or untracked (not ignored). Only for the
        checked-out commit: the tree of another commit is not read, so cannot be dirty."""
        if not self.checked_out:
            return []
        changed = git(
            self.root, "diff", "--name-only", "--no-renames", "-z", self.sha, "--", *DEPENDS_ON
        )
        new = git(self.root, "ls-files", "--others", "--exclude-standard", "-z", "--", *DEPENDS_ON)
        return sorted({p for p in (changed + new).split("\0") if p})

    def params_yaml(self) -> dict[str, Any]:
        if not self.commit.has("params.yaml"):
            return {}
        return yaml.safe_load(self.commit.read("params.yaml")) or {}

    def close(self) -> None:
        self.commit.close()
