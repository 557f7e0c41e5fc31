"""Model families by name (imports torch; the schemas live in :mod:`.specs`)."""

from __future__ import annotations

from typing import Any

from .base import Recommender
from .dave import DAVE
from .itempop import ItemPop

FAMILIES: dict[str, type[Recommender]] = {
    "dave": DAVE,
    "itempop": ItemPop,
}


def build(family: str, n_users: int, n_items: int, params: dict[str, Any]) -> Recommender:
    return FAMILIES[family](n_users, n_items, params)
