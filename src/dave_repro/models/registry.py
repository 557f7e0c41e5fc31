"""Model families by name: the class of each, imported only when a model is built (so a stage's
code hash covers the one family it trains, and validating params.yaml never imports torch).
Each family is declared in its own module (``FAMILY``, read by :mod:`.specs`)."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Recommender
from .specs import FAMILIES


def family_class(family: str) -> type[Recommender]:
    spec = FAMILIES[family]
    module = importlib.import_module(f"{__package__}.{spec.module}")
    if module.FAMILY.name != family:  # the imported module is the one that was read
        raise RuntimeError(
            f"models/{spec.module}.py declares {module.FAMILY.name!r}, not {family!r}"
        )
    return getattr(module, spec.cls)


def build(family: str, n_users: int, n_items: int, params: dict[str, Any]) -> Recommender:
    return family_class(family)(n_users, n_items, params)
