"""``results/report.md``: what a reviewer reads first.

Built only from files the pipeline wrote (the tables, the study summaries, the figures), so it
is regenerated with them; the list of the paper's claims is computed (claims.py), never typed.
Links are relative to ``results/``, so a copy of the folder (e.g. ``results/paper/``) keeps them.
A profile other than ``paper`` is a smoke test (performance.is_evidence): its report says so at
the top and judges no claim.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic, config
from ..errors import DataFormatError
from . import paper
from .claims import (
    AGREES,
    DISAGREES,
    UNCHECKED,
    Claim,
    check_all,
    check_as_written,
    claims_markdown,
    tally,
)
from .performance import is_evidence, smoke_test_note
from .studies import read_summary

RESULTS = Path("results")


def _demote(markdown: str, levels: int = 2) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", markdown, flags=re.M)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise DataFormatError(path, "missing (run `dave report tables` first)") from None


def _figure(root: Path, name: str, caption: str) -> list[str]:
    if not (root / "figures" / name).is_file():
        return [f"*{caption}: not produced in this run (its study had no results).*", ""]
    return [f"![{caption}](figures/{name})", ""]


def _noise_section(noise: dict[str, pd.DataFrame]) -> list[str]:
    lines = []
    for ds, s in noise.items():
        rows = s[s["group"] != "all"] if (s["group"] != "all").any() else s
        piv = rows.pivot_table(index="model", columns="level", values="hr@10_mean")
        piv = piv.loc[paper.model_order(list(piv.index))]
        levels = list(piv.columns)
        lines += [
            f"HR@10 on {paper.DATASET_TITLES.get(ds, ds)} by noise level (mean over seeds; "
            f"mode `{s['mode'].iloc[0]}`; full numbers in `noise/{ds}.csv`):",
            "",
            "| Model | " + " | ".join(f"p = {lv:g}" for lv in levels) + " |",
            "|---|" + "---|" * len(levels),
        ]
        for model, vals in piv.iterrows():
            best = piv.max(axis=0)
            cells = [
                f"**{v:.4f}**" if abs(v - best[lv]) < 1e-12 else f"{v:.4f}"
                for lv, v in vals.items()
            ]
            lines.append(f"| {paper.DISPLAY.get(model, model)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _tsne_section(tsne: dict[str, pd.DataFrame]) -> list[str]:
    lines = []
    for ds, s in tsne.items():
        best = s[s["best"].astype(bool)]
        lines += [
            f"Silhouette of the best k-means clustering of [μ, σ] on {paper.DATASET_TITLES.get(ds, ds)} "
            "(higher: more separated clusters; every k in `figures/tsne-silhouette.csv`):",
            "",
            "| Model | users (k) | items (k) |",
            "|---|---|---|",
        ]
        for model in paper.model_order(list(dict.fromkeys(best["model"]))):
            cells = []
            for side in ("user", "item"):
                r = best[(best["model"] == model) & (best["side"] == side)]
                cells.append(
                    "–" if r.empty else f"{r.iloc[0]['silhouette']:.3f} ({int(r.iloc[0]['k'])})"
                )
            lines.append(f"| {paper.DISPLAY.get(model, model)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _sweep_section(sweeps: dict[str, pd.DataFrame]) -> list[str]:
    lines = []
    for ds, s in sweeps.items():
        for param in s["param"].unique():
            g = s[s["param"] == param].groupby("value")[["hr@10", "ndcg@10"]].mean()
            cells = " | ".join(
                f"{v}: {r['hr@10']:.4f} / {r['ndcg@10']:.4f}" for v, r in g.iterrows()
            )
            lines.append(
                f"* {paper.DATASET_TITLES.get(ds, ds)}, {param} (validation HR@10 / NDCG@10): {cells}"
            )
    return [*lines, ""] if lines else []


def _fmt(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{float(v):.4f}"


BADGE = {AGREES: "✅", DISAGREES: "❌", UNCHECKED: "⬜"}


def _tally(claims: list[Claim]) -> str:
    n = tally(claims)
    return (
        f"**{n[AGREES]} of {len(claims)} agree**, {n[DISAGREES]} "
        f"{'does' if n[DISAGREES] == 1 else 'do'} not, {n[UNCHECKED]} could not be checked"
    )


def _verdict(c: Claim) -> str:
    return f"{BADGE[c.status]} {c.held} of {len(c.parts)}" if c.parts else BADGE[UNCHECKED]


def _answer_section(
    tables: dict[str, pd.DataFrame],
    readings: dict[str, pd.DataFrame],
    claims: list[Claim],
    written: list[Claim] | None,
    readings_params: dict[str, Any],
) -> list[str]:
    """The reviewer's question, answered first: which claims hold under the reading the main
    runs use (and whether validation selected it), which under Eq. 17 as written, and how far
    the reading moves the result beside the seed spread."""
    family, as_written = readings_params["models"], readings_params["as_written"]
    lines = ["## In short: the paper's claims under each reading", ""]
    used = []
    for t in tables.values():
        for _, r in t[t["model"].isin(family)].iterrows():
            if pd.isna(r.get("reading")):
                continue
            how = (
                "selected on validation"
                if r["reading"] == r["selected_reading"]
                else f"validation selects `{r['selected_reading']}`"
                if pd.notna(r["selected_reading"])
                else "the grid is not complete"
            )
            used.append(f"{r['name']} `{r['reading']}` ({how})")
    lines.append(
        "* **Under the reading of the main runs** ("
        + (", ".join(dict.fromkeys(used)) if used else "no readings study in this run")
        + f"): {_tally(claims)}."
    )
    if written is not None:
        lines.append(
            f"* **Under Eq. 17 as written** (`{as_written}`: the terms summed unweighted, D sees x; "
            "the readings study's run of that point for each DAVE model): "
            f"{_tally(written)}. The noise, t-SNE and sweep claims were studied with the main "
            "runs only, so they are not checked under this reading."
        )
    for ds, s in readings.items():
        t = tables.get(ds)
        cells = []
        for model in [m for m in paper.model_order(list(dict.fromkeys(s["model"]))) if m in family]:
            pts = s[s["model"] == model].groupby("point")["test_hr@10"].mean()
            row = None if t is None else t[t["model"] == model]
            seed = (
                f"± {row.iloc[0]['hr@10_std']:.4f} over its {int(row.iloc[0]['seeds'])} seeds"
                if row is not None and not row.empty and pd.notna(row.iloc[0]["hr@10_std"])
                else "one seed, no seed spread"
            )
            cells.append(
                f"{paper.DISPLAY.get(model, model)} {pts.min():.4f}–{pts.max():.4f} over "
                f"{len(pts)} readings ({seed})"
            )
        if cells:
            lines.append(
                f"* **How far the reading moves the result** on {paper.DATASET_TITLES.get(ds, ds)} "
                "(test HR@10 across the grid, beside the main runs' seed spread): "
                + "; ".join(cells)
                + "."
            )
    lines += ["", "| # | claim (§) | main runs | as written |", "|---|---|---|---|"]
    for i, c in enumerate(claims, start=1):
        short = textwrap.shorten(c.statement, 90, placeholder=" …")
        other = _verdict(written[i - 1]) if written is not None else "–"
        lines.append(f"| {i} | {short} (§{c.section}) | {_verdict(c)} | {other} |")
    lines += [
        "",
        "Each cell: the verdict and how many of the claim's checked parts hold; the parts "
        "and their numbers are in the list under “The paper's claims” below.",
        "",
    ]
    return lines


def _readings_section(readings: dict[str, pd.DataFrame], as_written: str) -> list[str]:
    """Per model: the reading the validation split selects, the as-written one, and how far
    the result moves across the grid (the spread of test HR@10 over every point)."""
    lines = []
    for ds, s in readings.items():
        lines += [
            f"On {paper.DATASET_TITLES.get(ds, ds)} (one row per model; every point in "
            f"`readings/{ds}.csv`, the figure below). Selected: the best validation HR@10 "
            "(test numbers are never read by the selection). As written: Eq. 17's literal sum "
            f"(`{as_written}`, D(x)). Spread: the range of test HR@10 over the model's grid.",
            "",
            "| Model | points | selected | valid HR@10 / NDCG@10 | test HR@10 / NDCG@10 | "
            "as written: valid / test HR@10 | test HR@10 spread over the grid |",
            "|---|---|---|---|---|---|---|",
        ]
        for model in paper.model_order(list(dict.fromkeys(s["model"]))):
            g = s[s["model"] == model]
            means = g.groupby("point", sort=False).mean(numeric_only=True)
            sel = g[g["selected"].astype(bool)]
            if sel.empty:
                continue
            pt = str(sel["point"].iloc[0])
            aw = g[g["as_written"].astype(bool)]
            aw_cell = (
                f"{_fmt(aw['valid_hr@10'].mean())} / {_fmt(aw['test_hr@10'].mean())}"
                if len(aw)
                else "–"
            )
            spread = means["test_hr@10"]
            lines.append(
                f"| {paper.DISPLAY.get(model, model)} | {len(means)} | `{pt}` | "
                f"{_fmt(means.at[pt, 'valid_hr@10'])} / {_fmt(means.at[pt, 'valid_ndcg@10'])} | "
                f"{_fmt(means.at[pt, 'test_hr@10'])} / {_fmt(means.at[pt, 'test_ndcg@10'])} | "
                f"{aw_cell} | {_fmt(spread.min())} – {_fmt(spread.max())} |"
            )
        lines.append("")
    return lines


def report_markdown(
    params: dict[str, Any], profile: str | None = None, root: Path = RESULTS
) -> str:
    prof_name = profile or params["profile"]
    prof = config.active_profile(params, prof_name)
    datasets = params["datasets"]
    tables = {
        d: pd.read_csv(root / "tables" / f"table-{d}.csv")
        for d in datasets
        if (root / "tables" / f"table-{d}.csv").is_file()
    }
    noise = {d: s for d in datasets if (s := read_summary("noise", d, root)) is not None}
    tsne = {d: s for d in datasets if (s := read_summary("tsne", d, root)) is not None}
    sweeps = {d: s for d in datasets if (s := read_summary("sweeps", d, root)) is not None}
    readings = {d: s for d in datasets if (s := read_summary("readings", d, root)) is not None}
    claims = check_all(tables, noise, tsne, sweeps)
    written = check_as_written(tables)
    evidence = is_evidence(prof_name)
    names = ", ".join(paper.DISPLAY.get(m, m) for m in paper.model_order(prof["models"]))
    banner = [
        f"> {smoke_test_note(params, prof_name)} So no claim below is judged, a cell of one "
        "seed shows n = 1 (one run has no spread), and no p-value is quoted.",
        "",
    ]
    lines = [
        "# DAVE, reproduced: results beside the paper's",
        "",
        *([] if evidence else banner),
        f"Profile `{prof_name}`: {names}; seeds {', '.join(map(str, prof['seeds']))}; datasets "
        f"{', '.join(paper.DATASET_TITLES.get(d, d) for d in datasets)}. Everything below is generated "
        "from the files in this folder (`dave report write`); the protocol is `docs/protocol.md` in the repository.",
        "",
        *(
            _answer_section(tables, readings, claims, written, params["readings"])
            if evidence
            else []
        ),
        "## The readings of what the paper leaves open, and each baseline's tuning",
        "",
        "The paper does not say how the terms of Eq. 17 are scaled within a mini-batch, nor "
        "what the discriminators see, and the choice moves DAVE's results (docs/models.md). "
        "Each reading, and each baseline's learning rate, was trained and selected on the "
        "validation split, the way the paper set its hyper-parameters (§4.1.4).",
        "",
        *(
            _readings_section(readings, params["readings"]["as_written"])
            if readings
            else ["*No readings study in this run.*", ""]
        ),
        *_figure(root, "readings.png", "The readings on the validation split"),
        "## The paper's claims (Section 4.2), checked against our numbers"
        if evidence
        else "## The paper's claims (Section 4.2): not judged in a smoke test",
        "",
        claims_markdown(claims, judged=evidence),
        "## Datasets (Table 2)",
        "",
        _demote(_read(root / "tables" / "datasets.md")).split("\n", 2)[2].strip(),
        "",
        "## Recommendation performance (Tables 4–8)",
        "",
    ]
    for d in datasets:
        path = root / "tables" / f"table-{d}.md"
        lines += [
            _demote(_read(path)).strip(),
            "",
            f"(also `tables/table-{d}.csv`, `tables/table-{d}.tex`)",
            "",
        ]
    lines += [
        "## Noise tolerability (Figure 2)",
        "",
        *_figure(root, "noise.png", "Figure 2: noise"),
        *_noise_section(noise),
        "## Expressiveness (Figures 3–4)",
        "",
        *_figure(root, "tsne-users.png", "Figure 3: t-SNE of user posteriors"),
        *_figure(root, "tsne-items.png", "Figure 4: t-SNE of item posteriors"),
        *_tsne_section(tsne),
        "## Hyper-parameters (Figures 5–6)",
        "",
        *_figure(root, "sweep-dim.png", "Figure 5: embedding dimension"),
        *_figure(root, "sweep-negratio.png", "Figure 6: negative sampling ratio"),
        *_sweep_section(sweeps),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_report(params: dict[str, Any], profile: str | None = None, root: Path = RESULTS) -> Path:
    path = root / "report.md"
    atomic.write_text(path, report_markdown(params, profile, root))
    return path
