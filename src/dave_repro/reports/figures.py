"""Figures 2-6 of the paper, drawn from our study summaries (matplotlib, Agg backend).

Each ``*_figure`` function returns the matplotlib Figure (tests inspect its lines and labels);
:func:`write_figures` saves every figure the selected studies produced into ``results/figures``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic
from ..errors import DataFormatError
from ..layout import figures_dir, tsne_path
from ..plan import tsne_jobs
from . import paper
from .studies import read_summary

log = logging.getLogger(__name__)
FIGURES = figures_dir()
NOISE_PANELS = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")
SWEEP_PANELS = ("hr@10", "ndcg@10")
SWEEP_FILES = {"embedding_dim": "sweep-dim", "negative_ratio": "sweep-negratio"}
SWEEP_TITLES = {
    "embedding_dim": "embedding dimension d",
    "negative_ratio": "negative sampling ratio",
}
PAPER_FIGURE = {"embedding_dim": 5, "negative_ratio": 6}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(metric: str) -> str:
    return metric.upper().replace("@", "@")


def _style(model: str) -> dict[str, Any]:
    if model == "dave":
        return {"color": "black", "linewidth": 2.4, "marker": "o", "zorder": 5}
    return {"linewidth": 1.4, "marker": "s", "markersize": 4}


# ---------------------------------------------------------------------------------------------
# Figure 2


def noise_figure(summary: pd.DataFrame, dataset: str) -> Any:
    """HR@5, HR@10, NDCG@5, NDCG@10 against the noise level, one line per model (± std)."""
    plt = _plt()
    mode = str(summary["mode"].iloc[0])
    rows = summary[summary["group"] != "all"] if mode == "heterogeneous" else summary
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.0), constrained_layout=True)
    models = paper.model_order(list(dict.fromkeys(rows["model"])))
    for ax, metric in zip(axes, NOISE_PANELS, strict=True):
        for model in models:
            g = rows[rows["model"] == model].sort_values("level")
            ax.errorbar(
                g["level"],
                g[f"{metric}_mean"],
                yerr=g[f"{metric}_std"],
                capsize=2,
                label=paper.DISPLAY.get(model, model),
                **_style(model),
            )
        ax.set_title(_label(metric))
        ax.set_xlabel("noise level p" if mode == "uniform" else "the user's noise level p")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test metric (sampled, 99 negatives)")
    axes[-1].legend(loc="best", fontsize=8)
    seeds = int(rows["seeds"].max()) if "seeds" in rows else 1
    how = (
        "every user and item corrupted at level p (p = 0: clean inputs)"
        if mode == "uniform"
        else "each user and item at its own level; grouped by the user's"
    )
    fig.suptitle(
        f"Figure 2 (ours): noise tolerability on {paper.DATASET_TITLES.get(dataset, dataset)} — "
        f"{how}; mean ± std over {seeds} seed(s)",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Figures 3-4


def tsne_figure(
    maps: dict[str, pd.DataFrame], scores: pd.DataFrame, side: str, dataset: str
) -> Any:
    """One panel per model: the t-SNE map of ``side`` coloured by the best k-means clustering."""
    plt = _plt()
    models = list(maps)  # as tsne.models lists them: DAVE first, as the paper's panels (a), (b)
    fig, axes = plt.subplots(
        1, len(models), figsize=(5.6 * len(models), 5.4), squeeze=False, constrained_layout=True
    )
    for ax, model in zip(axes[0], models, strict=True):
        pts = maps[model]
        pts = pts[pts["side"] == side]
        best = scores[
            (scores["model"] == model) & (scores["side"] == side) & scores["best"].astype(bool)
        ]
        ax.scatter(
            pts["x"],
            pts["y"],
            c=pts["cluster"],
            cmap="tab10",
            s=6,
            alpha=0.8,
            linewidths=0,
            vmin=0,
            vmax=9,
        )
        name = paper.DISPLAY.get(model, model)
        if best.empty:
            note = "no clustering"
        else:
            b = best.iloc[0]
            note = f"silhouette {b['silhouette']:.3f} (k = {int(b['k'])})"
        ax.set_title(f"{name}: {len(pts):,} {side}s")
        ax.text(
            0.02,
            0.98,
            note,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=11,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
        )
        ax.set_xticks([])
        ax.set_yticks([])
    number = 3 if side == "user" else 4
    fig.suptitle(
        f"Figure {number} (ours): t-SNE of the {side} posteriors [μ, σ] on "
        f"{paper.DATASET_TITLES.get(dataset, dataset)}; colours: best k-means of [μ, σ] "
        "(silhouette on [μ, σ])",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Figures 5-6


def sweep_figure(summaries: dict[str, pd.DataFrame], param: str) -> Any:
    """Validation HR@10 and NDCG@10 against one setting, a curve per dataset, the paper's value starred."""
    plt = _plt()
    chosen = paper.hyperparameters().set_index("dataset")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, metric in zip(axes, SWEEP_PANELS, strict=True):
        for dataset, df in summaries.items():
            g = (
                df[df["param"] == param]
                .groupby("value")[metric]
                .agg(["mean", "std", "count"])
                .reset_index()
            )
            if g.empty:
                continue
            line = ax.errorbar(
                g["value"],
                g["mean"],
                yerr=g["std"].fillna(0.0),
                marker="o",
                capsize=2,
                label=paper.DATASET_TITLES.get(dataset, dataset),
            )
            if dataset in chosen.index and param in chosen.columns:
                v = int(chosen.loc[dataset, param])
                hit = g[g["value"] == v]
                if not hit.empty:
                    ax.plot(
                        [v],
                        [hit["mean"].iloc[0]],
                        marker="*",
                        markersize=16,
                        linestyle="none",
                        color=line[0].get_color(),
                        markeredgecolor="black",
                        zorder=6,
                    )
        if param == "embedding_dim":
            ax.set_xscale("log", base=2)
        values = sorted(
            {int(v) for df in summaries.values() for v in df.loc[df["param"] == param, "value"]}
        )
        ax.set_xticks(values)
        ax.set_xticklabels([str(v) for v in values])
        ax.set_xlabel(SWEEP_TITLES[param])
        ax.set_ylabel(f"validation {_label(metric)}")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(
        f"Figure {PAPER_FIGURE[param]} (ours): DAVE against the {SWEEP_TITLES[param]} "
        "(★ the paper's chosen value)",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# The readings study (not a figure of the paper): validation HR@10 / NDCG@10 per reading


def readings_figure(summary: pd.DataFrame, dataset: str) -> Any:
    """Validation HR@10 and NDCG@10 of every reading of every DAVE model: a panel per (metric,
    model), a bar per scaling, D(x) and D(x, u) side by side; the selected reading outlined,
    the as-written one hatched."""
    plt = _plt()
    rd = summary[summary["kind"] == "reading"]
    models = list(dict.fromkeys(rd["model"]))
    fig, axes = plt.subplots(
        len(SWEEP_PANELS),
        max(1, len(models)),
        figsize=(4.6 * max(1, len(models)), 7.0),
        constrained_layout=True,
        squeeze=False,
    )
    inputs = {"embedding": ("D(x)", "tab:blue"), "embedding+input": ("D(x, u)", "tab:orange")}
    for col, model in enumerate(models):
        g = rd[rd["model"] == model]
        scalings = list(dict.fromkeys(g["scaling"]))
        kinds = [k for k in inputs if k in set(g["discriminator_input"].dropna())] or [None]
        width = 0.8 / len(kinds)
        for row, metric in enumerate(SWEEP_PANELS):
            ax = axes[row][col]
            for j, kind in enumerate(kinds):
                sub = g if kind is None else g[g["discriminator_input"] == kind]
                means = sub.groupby("scaling", sort=False)[f"valid_{metric}"].mean()
                flags = sub.groupby("scaling", sort=False)[["selected", "as_written"]].any()
                xs = [i + (j - (len(kinds) - 1) / 2) * width for i in range(len(scalings))]
                label, color = inputs.get(kind, ("KL (no D)", "tab:green"))
                for x, sc in zip(xs, scalings, strict=True):
                    if sc not in means.index:
                        continue
                    ax.bar(
                        x,
                        means[sc],
                        width=width * 0.95,
                        color=color,
                        # a hatch is drawn in the edge colour: as written needs a dark one
                        edgecolor="black"
                        if flags.at[sc, "selected"] or flags.at[sc, "as_written"]
                        else color,
                        linewidth=2.2 if flags.at[sc, "selected"] else 0.5,
                        hatch="//" if flags.at[sc, "as_written"] else None,
                        label=label if sc == scalings[0] else None,
                    )
            ax.set_xticks(range(len(scalings)))
            ax.set_xticklabels(scalings, rotation=35, ha="right", fontsize=8)
            vals = g[f"valid_{metric}"].dropna()
            if len(vals):
                ax.set_ylim(max(0.0, float(vals.min()) - 0.05), min(1.0, float(vals.max()) + 0.03))
            ax.set_ylabel(f"validation {_label(metric)}")
            ax.set_title(f"{paper.DISPLAY.get(model, model)}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            if row == 0:
                ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(
        f"The readings of Eq. 17 on {paper.DATASET_TITLES.get(dataset, dataset)}, validation split "
        "(outlined: selected; hatched: as written)",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------------------------------


def _read_map(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataFormatError(path, "missing (run the tsne job first)") from None
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataFormatError(path, f"not a readable parquet file ({exc})") from None


def _save(fig: Any, target: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    plt = _plt()
    out = []
    for fmt in formats:
        path = target.with_suffix(f".{fmt}")
        with atomic.atomic_path(path) as tmp:
            fig.savefig(
                tmp,
                format=fmt,
                dpi=130,
                metadata={"CreationDate": None}
                if fmt == "pdf"
                else {"Software": None}
                if fmt == "png"
                else None,
            )
        out.append(path)
    plt.close(fig)
    return out


def write_figures(
    params: dict[str, Any], out: Path = FIGURES, root: Path = Path("results")
) -> list[Path]:
    """Every figure whose study produced results, into ``out`` (replaced as a whole)."""
    written: list[str] = []
    with atomic.atomic_dir(out) as tmp:
        noise = [
            (d, s) for d in params["datasets"] if (s := read_summary("noise", d, root)) is not None
        ]
        for i, (dataset, summary) in enumerate(noise):
            name = "noise" if i == 0 else f"noise-{dataset}"
            written += [
                p.name for p in _save(noise_figure(summary, dataset), tmp / name, ("png", "pdf"))
            ]
        sil = []
        for dataset in params["datasets"]:
            scores = read_summary("tsne", dataset, root)
            if scores is None:
                continue
            maps = {
                m: _read_map(tsne_path(d, m, s, root))
                for d, m, s in tsne_jobs(params)
                if d == dataset
            }
            suffix = "" if not sil else f"-{dataset}"
            for side in ("user", "item"):
                fig = tsne_figure(maps, scores, side, dataset)
                written += [p.name for p in _save(fig, tmp / f"tsne-{side}s{suffix}")]
            sil.append(scores.assign(dataset=dataset))
        if sil:
            table = pd.concat(sil, ignore_index=True)
            table.to_csv(tmp / "tsne-silhouette.csv", index=False, float_format="%.6f")
            written.append("tsne-silhouette.csv")
        sweeps = {
            d: s for d in params["datasets"] if (s := read_summary("sweeps", d, root)) is not None
        }
        for param, name in SWEEP_FILES.items():
            have = {d: s for d, s in sweeps.items() if (s["param"] == param).any()}
            if have:
                written += [
                    p.name for p in _save(sweep_figure(have, param), tmp / name, ("png", "pdf"))
                ]
        for dataset in params["datasets"]:
            summary = read_summary("readings", dataset, root)
            if summary is not None and (summary["kind"] == "reading").any():
                suffix = "" if dataset == params["datasets"][0] else f"-{dataset}"
                fig = readings_figure(summary, dataset)
                written += [p.name for p in _save(fig, tmp / f"readings{suffix}", ("png", "pdf"))]
    if not written:
        log.warning("no study produced results for the selected datasets: no figures")
    return [out / n for n in sorted(written)]


__all__ = ["noise_figure", "readings_figure", "sweep_figure", "tsne_figure", "write_figures"]
