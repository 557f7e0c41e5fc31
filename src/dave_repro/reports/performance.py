"""Tables 4-8: one per dataset, our mean ± std over seeds beside the paper's value.

Rows in the paper's order (models the paper does not list, e.g. ItemPop, at the end); columns
HR@5, HR@10, HR@20, NDCG@5, NDCG@10, NDCG@20. As in the paper, the best value per column is
bold and the best among the robust methods CDAE, APR and ACAE underlined, for our numbers (over
the rows we have) and for the paper's (over the paper's full table, as it printed them). The
sampled protocol is the paper's; the full-ranking version follows it. The last column is DAVE's
paired difference in per-user NDCG@10 from each model, with its p-value (see significance.py).
A smoke test's tables (is_evidence) say so and keep no p-value; one seed shows n = 1, no spread.

Where the readings study ran (``results/readings/<dataset>.csv``), each row names the reading
or tuning point its runs are and the one validation selects, and every model of the DAVE family
gets a second row beside its own: Eq. 17 as written (``readings.as_written``), from the study's
runs. Those rows take no part in the marks or the paired tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import config, plan
from . import paper
from .aggregate import collect
from .significance import HOW_SEEDS_COMBINE, REFERENCE, against_reference, format_p
from .studies import TEST_COLUMNS, read_summary

METRICS = paper.METRIC_COLUMNS
PROTOCOLS = ("sampled", "full")
TEST_METRIC = "ndcg@10"
EVIDENCE_PROFILE = "paper"
AS_WRITTEN = "@as-written"  # the model key of a row that is the model under Eq. 17 as written


def is_as_written(models: pd.Series) -> pd.Series:
    """Which rows of a table are a model under Eq. 17 as written (see _as_written_rows)."""
    return models.astype(str).str.endswith(AS_WRITTEN)


def is_evidence(profile: str) -> bool:
    """Whether a profile's results are evidence for or against the paper: only the ``paper``
    profile's (the paper's models and settings, several seeds, trained to convergence). Any
    other profile (e.g. ``quick``: one seed, epochs capped) is a smoke test of the pipeline; its
    report and tables say so, judge no claim and quote no p-value."""
    return profile == EVIDENCE_PROFILE


def smoke_test_note(params: dict[str, Any], profile: str) -> str:
    """The sentence a smoke test's report and tables open with: which profile, how many seeds,
    how its training is capped, and that only the ``paper`` profile is evidence."""
    prof = config.active_profile(params, profile)
    seeds, train = prof["seeds"], prof["train"]
    cap = f"training capped at {train['max_epochs']} epoch{'s' if train['max_epochs'] != 1 else ''}"
    if train.get("max_train_pairs"):
        cap += f" and {train['max_train_pairs']:,} training pairs per epoch"
    ref = params["profiles"].get(EVIDENCE_PROFILE)
    ref_txt = (
        f" ({len(ref['seeds'])} seeds, up to {ref['train']['max_epochs']} epochs)" if ref else ""
    )
    return (
        f"**Smoke test: these numbers are not evidence.** Profile `{profile}` ran "
        f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}), "
        f"{cap}. It shows that the pipeline runs end to end; only profile "
        f"`{EVIDENCE_PROFILE}`{ref_txt} can support or contradict the paper."
    )


def spread_cell(mean: Any, std: Any, n: Any, tex: bool = False) -> str:
    """``mean ± std`` over the seeds; ``mean (n = 1)`` where one seed leaves no spread (its std
    is NaN, see dataset_table), so a single run never reads as a spread of zero."""
    if mean is None or pd.isna(mean):
        return "--" if tex else "–"
    if std is None or pd.isna(std):
        return f"{mean:.4f} ($n={n}$)" if tex else f"{mean:.4f} (n = {n})"
    return f"{mean:.4f} $\\pm$ {std:.4f}" if tex else f"{mean:.4f} ± {std:.4f}"


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
    return [*cols, "reading", "selected_reading"]  # the readings study's points (None: none)


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
    evidence = is_evidence(profile or params["profile"])
    models = paper.model_order(list(agg["models"]))
    marks = _paper_marks(dataset)
    readings = read_summary("readings", dataset, root)
    rows = []
    for model in models:
        res = agg["models"][model]
        row: dict[str, Any] = {
            "model": model,
            "name": paper.DISPLAY.get(model, model),
            "seeds": res.get("sampled", {}).get("n", 0),
            **_points(readings, model),
        }
        for proto in PROTOCOLS:
            block = res.get(proto) or {}
            for m in METRICS:
                row[f"{_prefix(proto)}{m}_mean"] = block.get("mean", {}).get(m, np.nan)
                row[f"{_prefix(proto)}{m}_std"] = (  # one seed: no spread, not a zero one
                    block.get("std", {}).get(m, np.nan) if block.get("n", 0) > 1 else np.nan
                )
        for m in METRICS:
            pv = paper.paper_value(dataset, model, m)
            row[f"{m}_paper"] = np.nan if pv is None else pv
            row[f"{m}_diff"] = row[f"{m}_mean"] - row[f"{m}_paper"]
            row[f"{m}_paper_best"], row[f"{m}_paper_best_robust"] = marks.get(
                (model, m), (False, False)
            )
        rows.append(row)
        rows += _as_written_rows(readings, row)
    df = pd.DataFrame(rows)
    everyone = ~is_as_written(df["model"])  # a reading's row competes for no mark
    robust = df["model"].isin(paper.ROBUST)
    for proto in PROTOCOLS:
        p = _prefix(proto)
        for m in METRICS:
            df[f"{p}{m}_best"] = _best(df[f"{p}{m}_mean"], everyone)
            df[f"{p}{m}_best_robust"] = _best(df[f"{p}{m}_mean"], robust)
        seeds_of = {model: plan.seeds(prof, dataset, model) for model in models}
        tests = against_reference(root, dataset, seeds_of, proto, k=10)
        key = f"{p}dave_%s_{TEST_METRIC}"
        df[key % "diff"] = [tests.get(mo, {}).get("diff", np.nan) for mo in df["model"]]
        df[key % "p"] = [  # a smoke test's p-values are not evidence: none is kept
            tests.get(mo, {}).get("p", np.nan) if evidence else np.nan for mo in df["model"]
        ]
        df[key % "users"] = [tests.get(mo, {}).get("users", pd.NA) for mo in df["model"]]
        df[key % "users"] = df[key % "users"].astype("Int64")
    return df[columns()]


def _points(readings: pd.DataFrame | None, model: str) -> dict[str, Any]:
    """Which point of the readings study (or of a baseline's tuning) the main runs are, and
    which one validation selects; None where the study has no grid for the model."""
    g = None if readings is None else readings[readings["model"] == model]
    if g is None or g.empty:
        return {"reading": None, "selected_reading": None}
    return {
        key: next(iter(g.loc[g[flag].astype(bool), "point"]), None)
        for key, flag in (("reading", "default"), ("selected_reading", "selected"))
    }


def _as_written_rows(readings: pd.DataFrame | None, main: dict[str, Any]) -> list[dict[str, Any]]:
    """The row of ``main``'s model under Eq. 17 as written, from the readings study's runs of
    that point (their test numbers; the study selected nothing by them): none where the model
    has no such point or where its main runs already are that reading."""
    model = main["model"]
    if readings is None or not set(TEST_COLUMNS) <= set(readings.columns):
        return []  # no study, or a summary from before it kept every test metric
    g = readings[(readings["model"] == model) & readings["as_written"].astype(bool)]
    if g.empty or g["default"].astype(bool).any():
        return []
    n = len(g)
    row: dict[str, Any] = {
        "model": model + AS_WRITTEN,
        "name": f"{main['name']}, as written",
        "seeds": n,
        "reading": str(g["point"].iloc[0]),
        "selected_reading": main["selected_reading"],
    }
    for proto in PROTOCOLS:
        for m in METRICS:
            vals = g[f"test_{_prefix(proto)}{m}"]
            row[f"{_prefix(proto)}{m}_mean"] = vals.mean()
            row[f"{_prefix(proto)}{m}_std"] = vals.std(ddof=1) if n > 1 else np.nan
    for m in METRICS:
        row[f"{m}_paper"] = main[f"{m}_paper"]
        row[f"{m}_diff"] = row[f"{m}_mean"] - row[f"{m}_paper"]
        row[f"{m}_paper_best"] = row[f"{m}_paper_best_robust"] = False
    return [row]


# ---------------------------------------------------------------------------------------------
# Rendering


def _num(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.4f}"


def _mark_md(text: str, bold: bool, under: bool) -> str:
    if under:
        text = f"<u>{text}</u>"
    return f"**{text}**" if bold else text


def _test_cell(r: pd.Series, p: str, evidence: bool = True) -> str:
    if r["model"] == REFERENCE:
        return "(reference)"
    diff = r[f"{p}dave_diff_{TEST_METRIC}"]
    if pd.isna(diff):
        return "–"
    users = int(r[f"{p}dave_users_{TEST_METRIC}"])
    if not evidence:  # the difference and its users, no p-value
        return f"{diff:+.4f} ({users} users)" if users else "no difference"
    pv = r[f"{p}dave_p_{TEST_METRIC}"]
    return f"{diff:+.4f} ({format_p(pv)}; {users} users)"


def _header(extra: str) -> list[str]:
    names = [m.upper().replace("NDCG", "NDCG") for m in METRICS]
    return [
        "| Model | Seeds | " + " | ".join(names) + f" | {extra} |",
        "|---|---|" + "---|" * len(METRICS) + "---|",
    ]


def _one_seed(df: pd.DataFrame) -> bool:
    return bool((df["seeds"] == 1).any())


def setup_notes(params: dict[str, Any], dataset: str, profile: str | None = None) -> list[str]:
    """What this dataset's runs do beyond the profile and the paper's settings, stated where the
    numbers are read: models with fewer seeds (``dataset_seeds``) and changed parameters
    (``hparams.<dataset>.models``)."""
    prof = config.active_profile(params, profile)
    lines = []
    fewer = prof.get("dataset_seeds", {}).get(dataset, {})
    fewer = {m: s for m, s in fewer.items() if m in prof["models"]}
    if fewer:
        lines.append(
            f"* Fewer seeds than the profile's {len(prof['seeds'])} on this dataset "
            "(`dataset_seeds`, what the compute allowed): "
            + ", ".join(
                f"{paper.DISPLAY.get(m, m)} (seed{'s' if len(s) > 1 else ''} "
                f"{', '.join(map(str, s))})"
                for m, s in fewer.items()
            )
            + "."
        )
    carried = _carried_reading(params, dataset, prof["models"])
    if carried:
        lines.append(carried)
    changes = params["hparams"].get(dataset, {}).get("models", {})
    changes = {m: c for m, c in changes.items() if m in prof["models"] and c}
    if changes:
        parts = [
            f"{paper.DISPLAY.get(m, m)} " + ", ".join(f"`{k}: {v}`" for k, v in sorted(c.items()))
            for m, c in changes.items()
        ]
        sampled = any("decoder_sample" in c for c in changes.values())
        lines.append(
            f"* Changed on this dataset beyond the paper's settings (`hparams.{dataset}.models`): "
            + "; ".join(parts)
            + "."
            + (
                " `decoder_sample` below 1 estimates Eq. 3's sum from a uniform sample of the "
                "decoded entries, unbiased (equal in expectation; docs/models.md), to afford "
                "the runs on a CPU; its checks against the exact path on validation are in "
                "benchmarks/RESULTS.md."
                if sampled
                else ""
            )
        )
    return lines


def _carried_reading(params: dict[str, Any], dataset: str, models: list[str]) -> str | None:
    """On a dataset the readings study did not run on, the DAVE family's scale of Eq. 17 is the
    one selected elsewhere, carried as numbers: said where the numbers are read, since a rule
    such as beta = 1/M would give another value here."""
    readings = params.get("readings", {})
    if not readings.get("datasets") or dataset in readings["datasets"]:
        return None
    family = [m for m in readings.get("models", []) if m in models]
    if not family:
        return None
    parts = []
    for m in family:
        mp = config.job_config(params, dataset, m, 0)["model_params"]
        w = mp.get("loss_weights", {})
        parts.append(
            f"{paper.DISPLAY.get(m, m)} `reduction: {mp.get('reduction')}`, reconstruction "
            f"{w.get('reconstruction'):g}, regularizer {w.get('regularizer'):g}, prediction "
            f"{w.get('prediction'):g}"
        )
    on = ", ".join(paper.DATASET_TITLES.get(d, d) for d in readings["datasets"])
    return (
        f"* The DAVE family's scale of Eq. 17 was selected on {on}'s validation split (the "
        "readings study) and is carried here as those numbers, not re-derived from this "
        'dataset\'s sizes (docs/models.md, "Carrying the readings to other datasets"): '
        + "; ".join(parts)
        + "."
    )


def table_markdown(
    df: pd.DataFrame,
    dataset: str,
    profile: str,
    note: str | None = None,
    setup: list[str] | None = None,
) -> str:
    """Table ``number`` in Markdown. ``note``: the smoke-test sentence a profile other than
    ``paper`` opens with (smoke_test_note; a shorter one when not given). ``setup``: the
    dataset's :func:`setup_notes`."""
    title = paper.DATASET_TITLES.get(dataset, dataset)
    number = paper.TABLE_NUMBER.get(dataset)
    has_ref = (df["model"] == REFERENCE).any()
    evidence = is_evidence(profile)
    extra = "DAVE − model, NDCG@10 per user" + ("" if evidence else " (no p-values: smoke test)")
    lines = [
        f"# Table {number}: recommendation performance on {title} (ours beside the paper's)",
        "",
    ]
    if not evidence:
        lines += [
            note or f"**Smoke test: these numbers are not evidence** (profile `{profile}`).",
            "",
        ]
    lines += [
        f"Profile `{profile}`. Each cell: **ours**, mean ± std over the seeds "
        "(sample standard deviation), then [the paper's value, ours − paper]. Bold: best per column; "
        "underlined: best among the robust methods CDAE, APR and ACAE (ours over the rows below, "
        "the paper's as its own table marks them). Ties count for every tied row."
        + (" One seed has no spread: its cells show the mean and n = 1." if _one_seed(df) else ""),
        "",
        "## Sampled protocol (the paper's: the test item against its 99 fixed negatives)",
        "",
        *_header(extra),
    ]
    for _, r in df.iterrows():
        cells = []
        for m in METRICS:
            ours = (
                _mark_md(
                    spread_cell(r[f"{m}_mean"], r[f"{m}_std"], r["seeds"]),
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
            f"| {r['name']} | {r['seeds']} | "
            + " | ".join(cells)
            + f" | {_test_cell(r, '', evidence)} |"
        )
    lines += [
        "",
        "## Full ranking (the test item against every item outside the user's training row)",
        "",
        "Not in the paper (P§3): sampled metrics can rank models differently (Krichene & Rendle, 2020).",
        "",
        *_header(extra),
    ]
    for _, r in df.iterrows():
        cells = [
            _mark_md(
                spread_cell(r[f"full_{m}_mean"], r[f"full_{m}_std"], r["seeds"]),
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
            + f" | {_test_cell(r, 'full_', evidence)} |"
        )
    lines += ["", "## Notes", ""]
    if has_ref and evidence:
        lines.append(
            f"* Last column: DAVE's paired difference from each model in per-user NDCG@10: "
            f"{HOW_SEEDS_COMBINE}. Positive: DAVE is better."
        )
    elif has_ref:
        lines.append(
            "* Last column: DAVE's mean difference from each model in per-user NDCG@10 (averaged "
            "over the model's seeds) and the users where it is not zero. Positive: DAVE is better. "
            f"No p-value: profile `{profile}` is a smoke test, and a test of its numbers is not "
            "evidence."
        )
    else:
        lines.append("* DAVE is not among these runs, so no paired tests against it.")
    lines += setup or []
    lines += _readings_notes(df, dataset)
    missing = [paper.DISPLAY[m] for m in paper.PAPER_ORDER if m not in set(df["model"])]
    if missing:
        lines.append(
            f"* Not run in this profile (the paper's rows without ours): {', '.join(missing)}."
        )
    return "\n".join(lines) + "\n"


def _readings_notes(df: pd.DataFrame, dataset: str) -> list[str]:
    """Which reading (or tuning point) each row's runs are, and the as-written rows."""
    main = df[~is_as_written(df["model"]) & df["reading"].notna()]
    if main.empty:
        return []
    at = [
        f"{r['name']} `{r['reading']}`"
        for _, r in main.iterrows()
        if r["reading"] == r["selected_reading"]
    ]
    off = [
        f"{r['name']} `{r['reading']}` (validation selects "
        + (f"`{r['selected_reading']}`)" if pd.notna(r["selected_reading"]) else "nothing yet)")
        for _, r in main.iterrows()
        if r["reading"] != r["selected_reading"]
    ]
    lines = [
        f"* The readings study and the baselines' tuning (`readings/{dataset}.csv`, selected on "
        "validation): the runs of each row are the point "
        + (f"validation selects: {', '.join(at)}" if at else "")
        + ("; " if at and off else "")
        + (f"**not** the selected one: {', '.join(off)}" if off else "")
        + "."
    ]
    written = df[is_as_written(df["model"])]
    if not written.empty:
        r0 = written.iloc[0]
        lines.append(
            f"* Rows “…, as written”: the model under Eq. 17 read literally (`{r0['reading']}`: "
            "the per-vector ELBOs and the per-pair BCE summed unweighted; DAVE's and DAVE+aae's "
            "discriminators see x as Eq. 10 writes), from the readings study's "
            f"run{'s' if r0['seeds'] != 1 else ''} of that point (n = {r0['seeds']}), beside the model's own row; they take no part in the bold and "
            "underline marks or the paired tests."
        )
    return lines


def _mark_tex(text: str, bold: bool, under: bool) -> str:
    if under:
        text = f"\\underline{{{text}}}"
    return f"\\textbf{{{text}}}" if bold else text


def table_latex(df: pd.DataFrame, dataset: str, profile: str) -> str:
    title = paper.DATASET_TITLES.get(dataset, dataset)
    number = paper.TABLE_NUMBER.get(dataset)
    evidence = is_evidence(profile)
    last = r"$\Delta$NDCG@10 ($p$)" if evidence else r"$\Delta$NDCG@10 (users)"
    head = " & ".join(["Model", *[m.upper() for m in METRICS], last]) + r" \\"
    last_txt = (
        r"Last column: DAVE minus the model in per-user NDCG@10 (Wilcoxon signed-rank)."
        if evidence
        else r"Last column: DAVE minus the model in per-user NDCG@10 (the users where they "
        f"differ). Smoke test (profile \\texttt{{{profile}}}): these numbers are not evidence; "
        r"no $p$-values."
    ) + (r" One seed has no spread ($n=1$)." if _one_seed(df) else "")
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
                    spread_cell(r[f"{p}{m}_mean"], r[f"{p}{m}_std"], r["seeds"], tex=True),
                    r[f"{p}{m}_best"],
                    r[f"{p}{m}_best_robust"],
                )
                if not pd.isna(r[f"{p}{m}_mean"])
                else "--"
                for m in METRICS
            ]
            test = _test_cell(r, p, evidence).replace("p < ", "$p<$").replace("p = ", "$p=$")
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
            + last_txt
            + "}",
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
