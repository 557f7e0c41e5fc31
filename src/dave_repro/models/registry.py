"""Model families by name (imports torch; the schemas live in :mod:`.specs`)."""

from __future__ import annotations

from typing import Any

from .acae import ACAE
from .apr import APR
from .avb import AVB
from .base import Recommender
from .cdae import CDAE
from .cfgan import CFGAN
from .cvae_gan import CVAEGAN
from .dave import DAVE
from .itempop import ItemPop
from .neumf import NeuMF
from .recvae import RecVAE
from .vaegan import VAEGAN

FAMILIES: dict[str, type[Recommender]] = {
    "dave": DAVE,
    "itempop": ItemPop,
    "neumf": NeuMF,
    "cdae": CDAE,
    "cfgan": CFGAN,
    "apr": APR,
    "acae": ACAE,
    "avb": AVB,
    "vaegan": VAEGAN,
    "cvae-gan": CVAEGAN,
    "recvae": RecVAE,
}


def build(family: str, n_users: int, n_items: int, params: dict[str, Any]) -> Recommender:
    return FAMILIES[family](n_users, n_items, params)
