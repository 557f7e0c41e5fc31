"""Helpers shared by the benchmark scripts: data at hand, thread settings, target lines."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / ".cache"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a run of about a minute")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (both paths)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    return p


def setup_torch(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def processed(dataset: str) -> Path:
    """The processed split of a real dataset: the workspace's, or built once into benchmarks/.cache."""
    here = REPO / "data" / "processed" / dataset
    if (here / "train_csr.npz").is_file():
        return here
    cached = CACHE / "data" / "processed" / dataset
    if (cached / "train_csr.npz").is_file():
        return cached
    if not os.environ.get("DAVE_DATA_MIRROR"):
        sys.exit(
            f"{dataset}: no processed data in {here}; set DAVE_DATA_MIRROR (or run the pipeline) first"
        )
    from dave_repro import config
    from dave_repro.stages import data as stages

    params = config.load_params(REPO / "params.yaml")
    cfg = config.dataset_config(params, dataset)
    root = CACHE / "data"
    stages.download(cfg, root)
    stages.preprocess(cfg, root)
    stages.split(cfg, root)
    return cached


def matmul_rate(device: str = "cpu", n: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matrix-multiply rate (GFLOP/s) with the current thread setting."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def target(
    name: str, measured: float, goal: float, unit: str = "", higher_is_better: bool = True
) -> str:
    ok = measured >= goal if higher_is_better else measured <= goal
    return f"{name}: {measured:.3g}{unit} (target {goal:g}{unit}) {'met' if ok else 'missed'}"


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    line = " | ".join(c.ljust(widths[c]) for c in columns)
    sep = "-+-".join("-" * widths[c] for c in columns)
    body = "\n".join(" | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows)
    return f"{line}\n{sep}\n{body}"
