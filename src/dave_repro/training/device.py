"""Device and thread selection, and the seeding that makes CPU runs repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import DaveError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DaveError(
            f"device {name!r} requested but CUDA is not available (use 'auto' or 'cpu')"
        )
    return dev


def configure(num_threads: int | None) -> None:
    if num_threads:
        torch.set_num_threads(num_threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def epoch_generators(
    seed: int, epoch: int, device: torch.device
) -> tuple[np.random.Generator, torch.Generator]:
    """All randomness of one epoch, a function of (seed, epoch) only, so resume is exact."""
    rng = np.random.default_rng([seed, epoch, 17])
    gen = torch.Generator(device=device)
    gen.manual_seed(int(np.random.default_rng([seed, epoch, 29]).integers(0, 2**62)))
    return rng, gen
