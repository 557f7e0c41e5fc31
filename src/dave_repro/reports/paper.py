"""The paper's published numbers and our model naming."""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from ..data.registry import REGISTRY
from ..models import specs

# Our model names, the paper's names and its row order: declared with the families.
DISPLAY = specs.DISPLAY
PAPER_ORDER = specs.PAPER_ORDER
ROBUST = ["cdae", "apr", "acae"]  # underlined group of Tables 4-8
# The datasets' titles and the paper's table of each: declared with the datasets.
DATASET_TITLES = {name: spec.title for name, spec in REGISTRY.items()}
TABLE_NUMBER = {name: spec.table for name, spec in REGISTRY.items() if spec.table is not None}
METRIC_COLUMNS = ["hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20"]


def model_order(models: list[str]) -> list[str]:
    """Paper order first, then anything the paper does not list (e.g. ItemPop) at the end."""
    return [m for m in PAPER_ORDER if m in models] + [m for m in models if m not in PAPER_ORDER]


def _csv(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath("paper_numbers", name).open("r") as fh:
        return pd.read_csv(fh)


@cache
def results() -> pd.DataFrame:
    """Tables 4-8: one row per (dataset, model) with our model names."""
    df = _csv("paper_results.csv")
    inverse = {v: k for k, v in DISPLAY.items()}
    df["model"] = df["model"].map(inverse)
    return df


@cache
def dataset_stats() -> pd.DataFrame:
    return _csv("dataset_stats.csv")


@cache
def hyperparameters() -> pd.DataFrame:
    return _csv("hyperparameters.csv")


def paper_value(dataset: str, model: str, metric: str) -> float | None:
    df = results()
    row = df[(df["dataset"] == dataset) & (df["model"] == model)]
    return None if row.empty else float(row.iloc[0][metric])
