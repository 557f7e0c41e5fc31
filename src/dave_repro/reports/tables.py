"""Table 2 (dataset statistics) and the summary table, each beside the paper's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic, config, layout
from ..data import registry
from . import paper
from .aggregate import collect
from .performance import (
    dataset_table,
    is_evidence,
    setup_notes,
    smoke_test_note,
    spread_cell,
    table_latex,
    table_markdown,
)

TABLES = Path("results") / "tables"


# ---------------------------------------------------------------------------------------------
# Table 2


def _availability(dataset: str) -> str:
    """Which source forms a directory mirror holds (informational; downloads verify anyway)."""
    import os

    from ..data.fetch import MIRROR_ENV

    mirror = os.environ.get(MIRROR_ENV)
    spec = registry.spec(dataset)
    if not mirror or mirror.startswith(("http://", "https://")):
        return "source availability not probed (no local mirror configured)"
    root = Path(mirror) / dataset
    complete = [
        f.name
        for f in spec.forms
        if all(
            any(
                (root / (sf.mirror_path + sfx)).exists()
                or list(
                    (root / sf.mirror_path).parent.glob(Path(sf.mirror_path).name + sfx + ".part*")
                )
                for sfx in ("", ".gz", ".bz2", ".xz")
            )
            for sf in f.files
        )
    ]
    if complete:
        return f"the mirror holds source form(s): {', '.join(complete)}"
    return (
        f"its source files are not in the mirror (${MIRROR_ENV}/{dataset}): "
        "the mirror holds no complete form"
    )


def _difference_note(ds: str, ours: dict[str, Any], theirs: pd.Series) -> str:
    diffs = [
        f"{k} {ours[k] - int(theirs[k]):+,}"
        for k in ("interactions", "items", "users")
        if ours[k] != int(theirs[k])
    ]
    form = ours.get("source", {}).get("form", "?")
    if not diffs:
        note = "matches the paper exactly."
    else:
        note = "differs from the paper: " + ", ".join(diffs) + "."
        if ds == "yelp":
            note += (
                " The paper's counts are APR's filtered Yelp; ours apply the protocol's filters "
                "(repeated pairs once, users with at least 10) to the eALS file."
            )
        elif ds == "digital-music":
            note += (
                " The paper's exact filtering of the 2018 data is not fully specified "
                "(an iterative 5-core is our reading)."
            )
        elif ours.get("dropped_users"):
            note += f" {ours['dropped_users']} user(s) were dropped by the filters."
    if ds == "ml-1m" and form == "pairs-plus-latest":
        note += (
            " Built from the equivalent form (all pairs + each user's latest item), so only the "
            "latest interaction of each user carries a timestamp."
        )
    return note


def datasets_table(params: dict[str, Any], root: Path = Path("data")) -> pd.DataFrame:
    stats = paper.dataset_stats().set_index("dataset")
    rows = []
    # every dataset of the paper's Table 2, and any other selected one (no paper row to compare)
    for ds in [*stats.index, *(d for d in params["datasets"] if d not in stats.index)]:
        if ds not in config.DATASETS:
            continue
        in_paper = ds in stats.index
        theirs = stats.loc[ds] if in_paper else None
        row: dict[str, Any] = {
            "dataset": ds,
            "title": paper.DATASET_TITLES[ds],
            **{
                f"paper_{k}": (int(theirs[k]) if theirs is not None else None)
                for k in ("interactions", "items", "users")
            },
            "paper_sparsity": float(theirs["sparsity"]) if theirs is not None else None,
        }
        path = layout.stats_path(ds, root)
        if ds in params["datasets"] and path.is_file():
            ours = json.loads(path.read_text())
            row.update(
                interactions=ours["interactions"],
                items=ours["items"],
                users=ours["users"],
                sparsity=round(ours["sparsity"], 4),
                source_form=ours.get("source", {}).get("form"),
            )
            if theirs is not None:
                row.update(
                    diff_interactions=ours["interactions"] - row["paper_interactions"],
                    diff_items=ours["items"] - row["paper_items"],
                    diff_users=ours["users"] - row["paper_users"],
                    note=_difference_note(ds, ours, theirs),
                )
            else:
                row["note"] = "not a dataset of the paper (no published statistics to compare)."
        elif ds in params["datasets"]:
            row["note"] = "selected but not built yet (run the data stages)."
        else:
            row["note"] = f"not selected in params.yaml `datasets`; {_availability(ds)}."
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt_int(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{int(v):,}"


def _fmt_pct(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * float(v):.2f}%"


def datasets_markdown(df: pd.DataFrame) -> str:
    lines = [
        "# Table 2: dataset statistics, ours beside the paper's",
        "",
        "Measured after preprocessing (`data/processed/<dataset>/stats.json`); the paper's numbers",
        "from its Table 2. Differences are reported, not hidden.",
        "",
        "| Dataset | #Interactions (ours / paper) | #Items (ours / paper) | #Users (ours / paper) | Sparsity (ours / paper) |",
        "|---|---|---|---|---|",
    ]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['title']} | {_fmt_int(r.get('interactions'))} / {_fmt_int(r['paper_interactions'])} "
            f"| {_fmt_int(r.get('items'))} / {_fmt_int(r['paper_items'])} "
            f"| {_fmt_int(r.get('users'))} / {_fmt_int(r['paper_users'])} "
            f"| {_fmt_pct(r.get('sparsity'))} / {_fmt_pct(r['paper_sparsity'])} |"
        )
    lines += ["", "## Notes", ""]
    lines += [f"* **{r['title']}**: {r['note']}" for _, r in df.iterrows()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Summary (one row per dataset × model)


def summary_frame(
    params: dict[str, Any], profile: str | None = None, root: Path = Path("results")
) -> pd.DataFrame:
    rows = []
    for ds in params["datasets"]:
        agg = collect(params, ds, profile, root)
        for model in paper.model_order(list(agg["models"])):
            res = agg["models"][model]
            row: dict[str, Any] = {
                "dataset": ds,
                "model": model,
                "name": paper.DISPLAY.get(model, model),
                "seeds": res.get("sampled", {}).get("n", 0),
            }
            for proto in ("sampled", "full"):
                block = res.get(proto)
                for metric in paper.METRIC_COLUMNS:
                    if block and metric in block["mean"]:
                        row[f"{proto}_{metric}_mean"] = block["mean"][metric]
                        row[f"{proto}_{metric}_std"] = (  # one seed: no spread, not a zero one
                            block["std"][metric] if block["n"] > 1 else float("nan")
                        )
            for metric in paper.METRIC_COLUMNS:
                row[f"paper_{metric}"] = paper.paper_value(ds, model, metric)
            rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(df: pd.DataFrame, profile: str, note: str | None = None) -> str:
    """The summary in Markdown. ``note``: the smoke-test sentence a profile other than ``paper``
    opens with (smoke_test_note; a shorter one when not given)."""
    lines = [f"# Summary: every run of profile `{profile}`, mean ± std over seeds", ""]
    if not is_evidence(profile):
        lines += [
            note or f"**Smoke test: these numbers are not evidence** (profile `{profile}`).",
            "",
        ]
    lines += [
        "Sampled protocol (the held-out item against its 99 fixed negatives, pessimistic ties);",
        "the paper's value in brackets. Full-ranking results follow below."
        + (
            " One seed has no spread: its cells show the mean and n = 1."
            if len(df) and (df["seeds"] == 1).any()
            else ""
        ),
        "",
    ]
    cols = paper.METRIC_COLUMNS
    header = (
        "| Dataset | Model | Seeds | "
        + " | ".join(c.upper().replace("@", "@") for c in cols)
        + " |"
    )
    sep = "|---|---|---|" + "---|" * len(cols)
    lines += [header, sep]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            pv = r.get(f"paper_{c}")
            paper_txt = f" [{pv:.4f}]" if pv is not None and not pd.isna(pv) else ""
            cells.append(
                spread_cell(r.get(f"sampled_{c}_mean"), r.get(f"sampled_{c}_std"), r["seeds"])
                + paper_txt
            )
        lines.append(f"| {r['dataset']} | {r['name']} | {r['seeds']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Full ranking (against every item outside the user's training row)",
        "",
        header,
        sep,
    ]
    for _, r in df.iterrows():
        cells = [
            spread_cell(r.get(f"full_{c}_mean"), r.get(f"full_{c}_std"), r["seeds"]) for c in cols
        ]
        lines.append(f"| {r['dataset']} | {r['name']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(
    params: dict[str, Any],
    profile: str | None = None,
    out: Path = TABLES,
    root: Path = Path("results"),
) -> list[Path]:
    """Render every table into ``out`` (replaced as a whole): Table 2, the summary, Tables 4-8."""
    prof = profile or params["profile"]
    note = None if is_evidence(prof) else smoke_test_note(params, prof)
    ds = datasets_table(params)
    summary = summary_frame(params, prof, root)
    per_dataset = {d: dataset_table(params, d, prof, root) for d in params["datasets"]}
    with atomic.atomic_dir(out) as tmp:
        ds.to_csv(tmp / "datasets.csv", index=False)
        (tmp / "datasets.md").write_text(datasets_markdown(ds))
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6f")
        (tmp / "summary.md").write_text(summary_markdown(summary, prof, note))
        for d, table in per_dataset.items():
            table.to_csv(tmp / f"table-{d}.csv", index=False, float_format="%.6g")
            setup = setup_notes(params, d, prof)
            (tmp / f"table-{d}.md").write_text(table_markdown(table, d, prof, note, setup))
            (tmp / f"table-{d}.tex").write_text(table_latex(table, d, prof))
        names = sorted(p.name for p in tmp.iterdir())
    return [out / n for n in names]
