"""Atomic artifact writes: a temporary file in the target's directory, then ``os.replace``.

A stage killed at any moment therefore leaves either the previous complete file or none, never a
half-written one, and no engine can cache a partial artifact.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def _temporary_name(target: Path) -> Path:
    """A fresh name beside ``target``, chosen *before* anything is created: an interruption at
    any point after it (a SIGTERM between creating the file and entering the clean-up) still
    knows what to remove. The pid and 48 random bits make it unique."""
    return target.with_name(f"{TMP_PREFIX}{target.name}.{os.getpid()}-{secrets.token_hex(6)}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it into place on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _temporary_name(target)
    try:
        os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # mode & ~umask
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; swap it into place on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(target)
    old = None
    try:
        os.mkdir(tmp, 0o777)  # mode & ~umask
        yield tmp
        if target.exists():
            old = target.with_name(f"{TMP_PREFIX}{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(target.parent)
    except BaseException:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)  # interrupted between the two renames: the old one goes back
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, fixed indent) so equal content gives equal bytes."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(target: str | os.PathLike[str], obj: Any) -> None:
    write_text(target, dumps_json(obj))


def clean_stale_temporaries(directory: str | os.PathLike[str], name: str | None = None) -> int:
    """Remove leftovers of killed writers (``.tmp-<name>.*``) so a re-run starts clean.

    With ``name``, only temporaries of that target are touched, so parallel jobs writing other
    targets in the same directory are safe.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    n = 0
    pattern = TMP_PREFIX + (f"{name}.*" if name else "*")
    for p in list(directory.glob(pattern)):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
