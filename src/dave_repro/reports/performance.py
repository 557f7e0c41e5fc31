"""Tables 4-8: one per dataset, our mean ± std over seeds beside the paper's value.

Rows in the paper's order (models the paper does not list, e.g. ItemPop, at the end); columns
HR@5, HR@10, HR@20, NDCG@5, NDCG@10, NDCG@20. As in the paper, the best value per column is
bold and the best among the robust methods CDAE, APR and ACAE underlined, for our numbers (over
the rows we have) and for the paper's (over the paper's full table, as it printed them). The
sampled protocol is the paper's; the full-ranking version follows it. The last column is DAVE's
paired difference in per-user NDCG@10 from each model, with its p-value (see significance.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import config
from . import paper
from .aggregate import collect
from .significance import HOW_SEEDS_COMBINE, REFERENCE, against_reference, format_p

METRICS = paper.METRIC_COLUMNS
PROTOCOLS = ("sampled", "full")
TEST_METRIC = "ndcg@10"


def _prefix(protocol: str) -> str:
    return "" if protocol == "sampled" else "full_"


def columns() -> list[str]:
    """The CSV's columns, in order."""
    cols = ["model", "name", "seeds"]
    for m in METRICS:
        cols += [
            f"{m}_mean",
            f"{m}_std",
            f"{m}_paper",
            f"{m}_diff",
            f"{m}_best",
            f"{m}_best_robust",
            f"{m}_paper_best",
            f"{m}_paper_best_robust",
        ]
    cols += [f"dave_diff_{TEST_METRIC}", f"dave_p_{TEST_METRIC}", f"dave_users_{TEST_METRIC}"]
    for m in METRICS:
        cols += [f"full_{m}_mean", f"full_{m}_std", f"full_{m}_best", f"full_{m}_best_robust"]
    cols += [
        f"full_dave_diff_{TEST_METRIC}",
        f"full_dave_p_{TEST_METRIC}",
        f"full_dave_users_{TEST_METRIC}",
    ]
    return cols


def _best(values: pd.Series, among: pd.Series) -> pd.Series:
    """True where the value equals the maximum over the rows in ``among`` (ties all marked)."""
    pool = values[among & values.notna()]
    if pool.empty:
        return pd.Series(False, index=values.index)
    return among & np.isclose(values.fillna(-np.inf), pool.max(), rtol=0, atol=1e-12)


def _paper_marks(dataset: str) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(model, metric) -> (bold, underlined) as the paper's own table marks them."""
    df = paper.results()
    df = df[df["dataset"] == dataset].reset_index(drop=True)
    robust = df["model"].isin(paper.ROBUST)
    out = {}
    for m in METRICS:
        bold, under = _best(df[m], pd.Series(True, index=df.index)), _best(df[m], robust)
        for i, model in enumerate(df["model"]):
            out[(model, m)] = (bool(bold[i]), bool(under[i]))
    return out


def dataset_table(
    params: dict[str, Any], dataset: str, profile: str | None = None, root: Path = Path("results")
) -> pd.DataFrame:
    agg = collect(params, dataset, profile, root)
    prof = config.active_profile(params, profile)
    models = paper.model_order(list(agg["models"]))
    marks = _paper_marks(dataset)
    rows = []
    for model in models:
        res = agg["models"][model]
        row: dict[str, Any] = {
            "model": model,
            "name": paper.DISPLAY.get(model, model),
            "seeds": res.get("sampled", {}).get("n", 0),
        }
        for proto in PROTOCOLS:
            block = res.get(proto) or {}
            for m in METRICS:
                row[f"{_prefix(proto)}{m}_mean"] = block.get("mean", {}).get(m, np.nan)
                row[f"{_prefix(proto)}{m}_std"] = block.get("std", {}).get(m, np.nan)
        for m in METRICS:
            pv = paper.paper_value(dataset, model, m)
            row[f"{m}_paper"] = np.nan if pv is None else pv
            row[f"{m}_diff"] = row[f"{m}_mean"] - row[f"{m}_paper"]
            row[f"{m}_paper_best"], row[f"{m}_paper_best_robust"] = marks.get(
                (model, m), (False, False)
            )
        rows.append(row)
    df = pd.DataFrame(rows)
    everyone = pd.Series(True, index=df.index)
    robust = df["model"].isin(paper.ROBUST)
    for proto in PROTOCOLS:
        p = _prefix(proto)
        for m in METRICS:
            df[f"{p}{m}_best"] = _best(df[f"{p}{m}_mean"], everyone)
            df[f"{p}{m}_best_robust"] = _best(df[f"{p}{m}_mean"], robust)
        seeds_of = {model: prof["seeds"] for model in models}
        tests = against_reference(root, dataset, seeds_of, proto, k=10)
        key = f"{p}dave_%s_{TEST_METRIC}"
        df[key % "diff"] = [tests.get(mo, {}).get("diff", np.nan) for mo in df["model"]]
        df[key % "p"] = [tests.get(mo, {}).get("p", np.nan) for mo in df["model"]]
        df[key % "users"] = [tests.get(mo, {}).get("users", pd.NA) for mo in df["model"]]
        df[key % "users"] = df[key % "users"].astype("Int64")
    return df[columns()]


# ---------------------------------------------------------------------------------------------
# Rendering


def _num(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.4f}"


def _mark_md(text: str, bold: bool, under: bool) -> str:
    if under:
        text = f"<u>{text}</u>"
    return f"**{text}**" if bold else text


def _test_cell(r: pd.Series, p: str) -> str:
    if r["model"] == REFERENCE:
        return "(reference)"
    diff = r[f"{p}dave_diff_{TEST_METRIC}"]
    if pd.isna(diff):
        return "–"
    pv = r[f"{p}dave_p_{TEST_METRIC}"]
    return f"{diff:+.4f} ({format_p(pv)}; {int(r[f'{p}dave_users_{TEST_METRIC}'])} users)"


def _header(extra: str) -> list[str]:
    names = [m.upper().replace("NDCG", "NDCG") for m in METRICS]
    return [
        "| Model | Seeds | " + " | ".join(names) + f" | {extra} |",
        "|---|---|" + "---|" * len(METRICS) + "---|",
    ]


def table_markdown(df: pd.DataFrame, dataset: str, profile: str) -> str:
    title = paper.DATASET_TITLES.get(dataset, dataset)
    number = paper.TABLE_NUMBER.get(dataset)
    has_ref = (df["model"] == REFERENCE).any()
    lines = [
        f"# Table {number}: recommendation performance on {title} (ours beside the paper's)",
        "",
        f"Profile `{profile}`. Each cell: **ours**, mean ± std over the seeds "
        "(sample standard deviation), then [the paper's value, ours − paper]. Bold: best per column; "
        "underlined: best among the robust methods CDAE, APR and ACAE (ours over the rows below, "
        "the paper's as its own table marks them). Ties count for every tied row.",
        "",
        "## Sampled protocol (the paper's: the test item against its 99 fixed negatives)",
        "",
        *_header("DAVE − model, NDCG@10 per user"),
    ]
    for _, r in df.iterrows():
        cells = []
        for m in METRICS:
            ours = (
                _mark_md(
                    f"{_num(r[f'{m}_mean'])} ± {_num(r[f'{m}_std'])}",
                    r[f"{m}_best"],
                    r[f"{m}_best_robust"],
                )
                if not pd.isna(r[f"{m}_mean"])
                else "–"
            )
            if pd.isna(r[f"{m}_paper"]):
                theirs = "[not in the paper]"
            else:
                pv = _mark_md(
                    _num(r[f"{m}_paper"]), r[f"{m}_paper_best"], r[f"{m}_paper_best_robust"]
                )
                theirs = f"[{pv}, {r[f'{m}_diff']:+.4f}]"
            cells.append(f"{ours} {theirs}")
        lines.append(
            f"| {r['name']} | {r['seeds']} | " + " | ".join(cells) + f" | {_test_cell(r, '')} |"
        )
    lines += [
        "",
        "## Full ranking (the test item against every item outside the user's training row)",
        "",
        "Not in the paper (P§3): sampled metrics can rank models differently (Krichene & Rendle, 2020).",
        "",
        *_header("DAVE − model, NDCG@10 per user"),
    ]
    for _, r in df.iterrows():
        cells = [
            _mark_md(
                f"{_num(r[f'full_{m}_mean'])} ± {_num(r[f'full_{m}_std'])}",
                r[f"full_{m}_best"],
                r[f"full_{m}_best_robust"],
            )
            if not pd.isna(r[f"full_{m}_mean"])
            else "–"
            for m in METRICS
        ]
        lines.append(
            f"| {r['name']} | {r['seeds']} | "
            + " | ".join(cells)
            + f" | {_test_cell(r, 'full_')} |"
        )
    lines += ["", "## Notes", ""]
    if has_ref:
        lines.append(
            f"* Last column: DAVE's paired difference from each model in per-user NDCG@10: "
            f"{HOW_SEEDS_COMBINE}. Positive: DAVE is better."
        )
    else:
        lines.append("* DAVE is not among these runs, so no paired tests against it.")
    missing = [paper.DISPLAY[m] for m in paper.PAPER_ORDER if m not in set(df["model"])]
    if missing:
        lines.append(
            f"* Not run in this profile (the paper's rows without ours): {', '.join(missing)}."
        )
    return "\n".join(lines) + "\n"


def _mark_tex(text: str, bold: bool, under: bool) -> str:
    if under:
        text = f"\\underline{{{text}}}"
    return f"\\textbf{{{text}}}" if bold else text


def table_latex(df: pd.DataFrame, dataset: str, profile: str) -> str:
    title = paper.DATASET_TITLES.get(dataset, dataset)
    number = paper.TABLE_NUMBER.get(dataset)
    head = " & ".join(["Model", *[m.upper() for m in METRICS], r"$\Delta$NDCG@10 ($p$)"]) + r" \\"
    out = []
    for proto, caption in (
        ("sampled", "sampled protocol (99 fixed negatives)"),
        ("full", "full ranking (not in the paper)"),
    ):
        p = _prefix(proto)
        body = []
        for _, r in df.iterrows():
            cells = [
                _mark_tex(
                    f"{_num(r[f'{p}{m}_mean'])} $\\pm$ {_num(r[f'{p}{m}_std'])}",
                    r[f"{p}{m}_best"],
                    r[f"{p}{m}_best_robust"],
                )
                if not pd.isna(r[f"{p}{m}_mean"])
                else "--"
                for m in METRICS
            ]
            test = _test_cell(r, p).replace("p < ", "$p<$").replace("p = ", "$p=$")
            body.append(" & ".join([r["name"], *cells, test]) + r" \\")
            if proto == "sampled" and not pd.isna(r[f"{METRICS[0]}_paper"]):
                paper_cells = [
                    "\\textit{"
                    + _mark_tex(
                        _num(r[f"{m}_paper"]), r[f"{m}_paper_best"], r[f"{m}_paper_best_robust"]
                    )
                    + f" ({r[f'{m}_diff']:+.4f})}}"
                    for m in METRICS
                ]
                body.append(
                    " & ".join([r"\quad\textit{paper ($\Delta$)}", *paper_cells, ""]) + r" \\"
                )
        out += [
            r"\begin{table}[t]",
            r"\centering",
            f"\\caption{{Table {number} (reproduced): {title}, {caption}; profile \\texttt{{{profile}}}, "
            r"mean $\pm$ std over seeds. Bold: best per column; underlined: best among CDAE, APR, ACAE. "
            r"Last column: DAVE minus the model in per-user NDCG@10 (Wilcoxon signed-rank).}",
            f"\\label{{tab:{dataset}-{proto}}}",
            r"\resizebox{\textwidth}{!}{%",
            r"\begin{tabular}{l" + "c" * len(METRICS) + "l}",
            r"\toprule",
            head,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}}",
            r"\end{table}",
            "",
        ]
    return "\n".join(out)
