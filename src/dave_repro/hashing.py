"""Content hashes: ``sha256`` for our artifacts, and the published forms of source checksums.

A pinned checksum is written ``<algorithm>:<hex>``. ``sha256`` is the default; ``md5`` is what
GroupLens publishes for its archives, and ``git-sha1`` (the blob id ``git hash-object`` prints) is
the only hash published for some GitHub-hosted files. All three are content hashes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import ChecksumError

ALGORITHMS = ("sha256", "md5", "git-sha1")
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    return file_digest(path, "sha256")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    path = Path(path)
    if algorithm == "git-sha1":
        h = hashlib.sha1()
        h.update(b"blob %d\0" % path.stat().st_size)
    elif algorithm in ("sha256", "md5"):
        h = hashlib.new(algorithm)
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}")
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def parse_checksum(spec: str) -> tuple[str, str]:
    algorithm, sep, digest = spec.partition(":")
    if not sep:
        algorithm, digest = "sha256", spec
    if algorithm not in ALGORITHMS:
        raise ValueError(f"checksum {spec!r}: algorithm must be one of {ALGORITHMS}")
    digest = digest.lower()
    want = {"sha256": 64, "md5": 32, "git-sha1": 40}[algorithm]
    if len(digest) != want or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"checksum {spec!r}: expected {want} hex digits")
    return algorithm, digest


def verify(path: str | os.PathLike[str], spec: str, name: str | None = None) -> None:
    """Raise :class:`ChecksumError` (after deleting ``path``) when the content does not match."""
    algorithm, expected = parse_checksum(spec)
    actual = file_digest(path, algorithm)
    if actual != expected:
        Path(path).unlink(missing_ok=True)
        raise ChecksumError(name or str(path), f"{algorithm}:{expected}", f"{algorithm}:{actual}")
