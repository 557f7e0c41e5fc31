"""Helpers of the fault tests: run ``dave`` as a real process, see when it holds a lock, and
stop it at a chosen moment."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dave_repro.locks import LOCK_DIR

BIN = Path(sys.executable).parent


def env_for(ws: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    env.pop("DAVE_PARAMS", None)
    env.update(extra)
    return env


def dave(ws: Path, *args: str, **popen: object) -> subprocess.Popen:
    """``dave <args>`` in ``ws``, as its own process group (so a test can stop all of it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dave_repro.cli", *args],
        cwd=ws,
        env=env_for(ws),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,
    )  # type: ignore[call-overload]


def lock_path(ws: Path, key: str) -> Path:
    return ws / LOCK_DIR / (key.replace("/", "_") + ".lock")


def lock_held(path: Path, pid: int | None = None) -> bool:
    """Whether some process (``pid``, if given) holds a flock on ``path``, read from /proc/locks
    without touching the lock (trying to take it could make the holder's own attempt fail)."""
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if "->" in f:  # a waiter, not a holder
            continue
        if (
            len(f) >= 8
            and f[1] == "FLOCK"
            and int(f[5].rsplit(":", 1)[1]) == inode
            and (pid is None or int(f[4]) == pid)
        ):
            return True
    return False


def wait_for(
    pred: Callable[[], bool],
    timeout: float,
    proc: subprocess.Popen | None = None,
    every: float = 0.002,
) -> bool:
    """Poll ``pred`` until true (True), the timeout, or ``proc`` exiting (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(every)
    return False


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob(".tmp-*")) if directory.is_dir() else []


@contextlib.contextmanager
def root_logging_restored() -> Iterator[None]:
    """``cli.main`` run in-process replaces the root log handlers (with one bound to this test's
    captured stderr); put the previous ones back so later tests log where they expect."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
