"""Checkpoints: written atomically, loaded without executing code, refused when foreign.

A checkpoint records the fingerprint of the run that wrote it (configuration, input data and
code). Loading one from another configuration is refused with a message saying why, instead of
silently continuing someone else's training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import atomic
from ..errors import CheckpointError


def save(path: Path, payload: dict[str, Any]) -> None:
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(
    path: Path, fingerprint: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint (train the model first)") from None
    except Exception as exc:  # truncated or foreign files raise many types
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(payload, dict) or "fingerprint" not in payload:
        raise CheckpointError(f"{path}: not a dave-repro checkpoint")
    if fingerprint is not None and payload["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"{path}: written by another configuration (its fingerprint {payload['fingerprint'][:12]}… "
            f"differs from this run's {fingerprint[:12]}…: parameters, data or code changed); refused"
        )
    return payload
