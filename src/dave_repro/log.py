"""Logging that always says which stage, dataset and model a line is about."""

from __future__ import annotations

import logging
import sys

_context = ""


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = _context
        return True


def setup(verbosity: int = 0) -> None:
    level = logging.DEBUG if verbosity > 0 else logging.INFO if verbosity == 0 else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(context)s%(message)s", "%H:%M:%S")
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("matplotlib", "PIL", "fsspec", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def set_context(*parts: str) -> None:
    global _context
    _context = "[" + " ".join(p for p in parts if p) + "] " if parts else ""
