"""Per-artifact locks, so two runs (of either engine) never write the same artifact at once.

Snakemake and DVC each lock their own runs; these locks also cover a DVC run and a Snakemake run
started on the same workspace. The second writer is refused at once with a message naming the
artifact, and the first one's outputs stay intact. The locks are ``flock`` locks: the system
releases them when their process ends, however it ends, so a killed run never leaves a lock
that blocks the next one (the lock file itself stays, harmless).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import WorkspaceLockedError

LOCK_DIR = Path(".dave") / "locks"


@contextlib.contextmanager
def artifact_lock(key: str, wait: float = 0.0) -> Iterator[None]:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    path = LOCK_DIR / (re.sub(r"[^A-Za-z0-9._-]+", "_", key) + ".lock")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise WorkspaceLockedError(
            f"another run is writing {key} in this workspace (lock {path}); wait for it to finish. "
            f"This run (pid {os.getpid()}) did nothing."
        ) from None
    try:
        yield
    finally:
        lock.release()
