"""The stages of the studies of Section 4.2 that read a trained run: noise (P§4, Figure 2) and
t-SNE (P§5, Figures 3-4). Which jobs exist is :mod:`dave_repro.plan`'s; none writes into the
run directories.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import atomic, layout
from ..errors import ConfigError
from ..models.specs import READS_INTERACTION_VECTORS
from ..plan import (
    noise_settings,
    tsne_settings,
)
from ..provenance import StageRun
from .base import Done, Stage, execute
from .evaluate import load_run
from .train import train_params

log = logging.getLogger(__name__)


def noise(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> bool:
    """Figure 2: the run's test metrics with its input vectors corrupted at each level."""
    ds, model, seed = job["dataset"], job["model"], job["seed"]
    if job["family"] not in READS_INTERACTION_VECTORS:
        raise ConfigError(
            [
                f"noise: model {model} (family {job['family']}) does not read interaction "
                "vectors, so corrupting them cannot change its predictions"
            ]
        )
    rd, out = layout.run_dir(ds, model, seed), layout.noise_path(ds, model, seed)
    study = noise_settings(params)
    stage = Stage(
        "noise",
        "noise",
        f"noise/{ds}/{model}/seed-{seed}",
        out.with_suffix(".manifest.json"),
        inputs=[
            rd / "model.pt",
            rd / "train.json",
            *(layout.processed_dir(ds) / f for f in layout.EVAL_INPUTS),
        ],
        outputs=[out],
        params={**train_params(job), "noise": study},
        family=job["family"],
    )

    def work(run: StageRun) -> Done:
        from ..noise import noise_curve

        split, net, dev = load_run(job, params, rd, device=device, threads=threads)
        curve = noise_curve(net, split, study, seed, job["evaluation"]["ks"])
        with atomic.atomic_path(out) as tmp:
            curve.to_csv(tmp, index=False, float_format="%.6f")
        first, last = curve.iloc[0], curve.iloc[-1]
        log.info(
            "noise (%s): HR@10 %.4f at level %s, %.4f at level %s",
            study["mode"],
            first["hr@10"],
            first["level"],
            last["hr@10"],
            last["level"],
        )
        return Done(extra={"dataset": ds, "model": model, "seed": seed}, device=str(dev))

    return execute(stage, work, force=force)


def tsne(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    device: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> bool:
    """Figures 3-4: t-SNE of the run's posteriors [mu, sigma] and the silhouette of each k."""
    ds, model, seed = job["dataset"], job["model"], job["seed"]
    if job["family"] != "dave":
        raise ConfigError(
            [f"tsne: model {model} (family {job['family']}) has no posterior [mu, sigma]"]
        )
    rd, coords = layout.run_dir(ds, model, seed), layout.tsne_path(ds, model, seed)
    scores = coords.with_suffix(".csv")
    study = tsne_settings(params)
    stage = Stage(
        "tsne",
        "tsne",
        f"tsne/{ds}/{model}/seed-{seed}",
        coords.with_suffix(".manifest.json"),
        inputs=[rd / "model.pt", rd / "train.json", layout.processed_dir(ds) / "train_csr.npz"],
        outputs=[coords, scores],
        params={**train_params(job), "tsne": study},
        family=job["family"],
    )

    def work(run: StageRun) -> Done:
        from ..tsne import embedding_map

        _, net, dev = load_run(job, params, rd, device=device, threads=threads)
        xy, table = embedding_map(net, study)
        with atomic.atomic_path(coords) as tmp:
            xy.to_parquet(tmp, index=False)
        with atomic.atomic_path(scores) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
        best = table[table["best"]]
        log.info(
            "tsne: best silhouette %s",
            ", ".join(f"{r.side}s {r.silhouette:.3f} (k={r.k})" for r in best.itertuples()),
        )
        return Done(extra={"dataset": ds, "model": model, "seed": seed}, device=str(dev))

    return execute(stage, work, force=force)
