"""Where every artifact lives, relative to the workspace root: the one place paths are spelled.

Pathlib only, and nothing else of the package: the stages, the plan, the reports, the engine
and the audit all ask here, so moving an artifact is one edit. Every function takes a ``root``
(``results/`` or ``data/``) so that a copy of the results folder (``results/paper/``) or a
scratch workspace reads the same way.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
RESULTS = Path("results")
KEYS = Path(".dave") / "keys"  # the engine's per-job key files (Snakemake inputs)
LOCKS = Path(".dave") / "locks"
LOGS = Path("logs")  # each Snakemake job's log; the console shows the job's own error too

# What a training reads (the validation split) and what an evaluation reads (the test split).
TRAIN_INPUTS = ("train_csr.npz", "valid.parquet", "negatives_valid.parquet")
EVAL_INPUTS = ("train_csr.npz", "test.parquet", "negatives_test.parquet")
PREPROCESS_OUTPUTS = ("interactions.parquet", "user_map.parquet", "item_map.parquet", "stats.json")
SPLIT_OUTPUTS = (
    "train.parquet",
    "valid.parquet",
    "test.parquet",
    "negatives_test.parquet",
    "negatives_valid.parquet",
    "train_csr.npz",
    "split.json",
)
TRAIN_OUTPUTS = ("model.pt", "train.json")
EVAL_OUTPUTS = ("metrics.json", "ranks.parquet")
STUDY_KINDS = ("noise", "tsne", "sweeps", "readings")


# -- data --------------------------------------------------------------------------------------


def raw_dir(dataset: str, root: Path = DATA) -> Path:
    return root / "raw" / dataset


def processed_dir(dataset: str, root: Path = DATA) -> Path:
    return root / "processed" / dataset


def stats_path(dataset: str, root: Path = DATA) -> Path:
    return processed_dir(dataset, root) / "stats.json"


# -- runs --------------------------------------------------------------------------------------


def run_dir(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    """A run of the main grid: ``model.pt`` (best validation epoch), ``train.json``,
    ``metrics.json``, ``ranks.parquet``, each stage with its manifest."""
    return root / "runs" / dataset / model / f"seed-{seed}"


def sweep_run_dir(dataset: str, model: str, point: str, seed: int, root: Path = RESULTS) -> Path:
    """A sweep point's or a readings point's own run (``point``: ``<param>-<value>``,
    ``default``, ``reading-...`` or ``tune-...``)."""
    return root / "sweep-runs" / dataset / model / point / f"seed-{seed}"


def sweep_runs_root(dataset: str, root: Path = RESULTS) -> Path:
    return root / "sweep-runs" / dataset


def curves_dir(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    """A main-grid run's per-epoch curves (DVCLive); a study point keeps its own inside its run."""
    return root / "curves" / dataset / model / f"seed-{seed}"


def is_under(path: Path, root: Path) -> bool:
    return root in path.parents


# -- reports -----------------------------------------------------------------------------------


def metrics_path(dataset: str, root: Path = RESULTS) -> Path:
    return root / "metrics" / f"{dataset}.json"


def metrics_manifest_path(dataset: str, root: Path = RESULTS) -> Path:
    return root / "metrics" / f"{dataset}.manifest.json"


def compact_metrics_dir(dataset: str, root: Path = RESULTS) -> Path:
    """One small file per model (test HR@10 / NDCG@10): `dvc metrics show` prints a file per
    row, so this folder reads as a dataset × model table."""
    return root / "metrics" / "compact" / dataset


def compact_metrics_path(dataset: str, model: str, root: Path = RESULTS) -> Path:
    return compact_metrics_dir(dataset, root) / f"{model}.json"


def curves_table_path(dataset: str, root: Path = RESULTS) -> Path:
    """Every main-grid run's per-epoch history in one long table (`dvc plots show` draws one
    panel per metric from it, the models overlaid)."""
    return root / "curves" / f"{dataset}.json"


def tables_dir(root: Path = RESULTS) -> Path:
    return root / "tables"


def table_path(dataset: str, suffix: str = ".md", root: Path = RESULTS) -> Path:
    return tables_dir(root) / f"table-{dataset}{suffix}"


def figures_dir(root: Path = RESULTS) -> Path:
    return root / "figures"


def report_path(root: Path = RESULTS) -> Path:
    return root / "report.md"


# -- studies -----------------------------------------------------------------------------------


def noise_path(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    return root / "noise" / dataset / f"{model}-seed-{seed}.csv"


def tsne_path(dataset: str, model: str, seed: int, root: Path = RESULTS) -> Path:
    """Coordinates (``.parquet``); the silhouette of every k sits beside them (``.csv``)."""
    return root / "tsne" / dataset / f"{model}-seed-{seed}.parquet"


def summary_paths(kind: str, dataset: str, root: Path = RESULTS) -> tuple[Path, Path]:
    """A study's per-dataset summary: a CSV for people and figures, a JSON for DVC metrics."""
    base = root / kind / dataset
    return base.with_suffix(".csv"), base.with_suffix(".json")
