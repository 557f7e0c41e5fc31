"""Evaluating a trained model on a split part: ranks, then metrics from the ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.dataset import Split
from ..models.base import Recommender
from ..models.registry import build
from ..training import checkpoint
from .metrics import metrics_from_ranks
from .ranking import full_ranks, sampled_ranks


def load_trained(
    job: dict[str, Any], split: Split, path: Path, fingerprint: str, device: torch.device
) -> Recommender:
    state = checkpoint.load(path, fingerprint, map_location=device)
    model = build(job["family"], split.n_users, split.n_items, job["model_params"]).to(device)
    model.load_state_dict(state["model"])
    model.set_inputs(split.train, device)
    model.eval()
    return model


def evaluate_model(
    model: Recommender, split: Split, part: str, ev: dict[str, Any]
) -> dict[str, Any]:
    model.eval()
    out: dict[str, Any] = {}
    rs = sampled_ranks(model, split, part)
    out["rank_sampled"] = rs
    out["sampled"] = metrics_from_ranks(rs, ev["ks"])
    if ev["full_ranking"]:
        rf = full_ranks(model, split, part, ev["user_batch"])
        out["rank_full"] = rf
        out["full"] = metrics_from_ranks(rf, ev["ks"])
    return out


__all__ = ["evaluate_model", "load_trained"]
