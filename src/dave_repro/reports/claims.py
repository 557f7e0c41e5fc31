"""The claims of the paper's Section 4.2, each checked against our numbers.

A claim is split into parts (a dataset, a metric, a noise level, ...), each decided from our
results: the claim *agrees* when every part we could check holds, *does not agree* when any part
fails (the failing parts are named), and is *not checked* when we have none of the results it
needs. Comparisons use the means over seeds under the paper's (sampled) protocol; where a paired
test exists its p-value is quoted, so a "win" by noise is visible as such. A smoke test's results
(any profile but ``paper``) decide nothing: its claims are listed, each *not meaningful*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from . import paper
from .performance import AS_WRITTEN, TEST_METRIC, is_as_written
from .significance import format_p

AGREES, DISAGREES, UNCHECKED = "agrees", "does not agree", "not checked"
NOT_MEANINGFUL = "not meaningful (smoke test)"
DS = paper.DATASET_TITLES

# The relative NDCG gains Section 4.2.1 states: dataset -> (strongest robust method, k=5, 10, 20 in %).
STATED_NDCG_GAINS = {
    "ml-100k": ("apr", 5.0, 1.9, 2.2),
    "ml-1m": ("acae", 8.3, 8.2, 6.4),
    "yelp": ("apr", 4.3, 3.5, 2.6),
    "digital-music": ("apr", 1.5, 1.5, 2.8),
    "pinterest": ("apr", 1.3, 0.9, 1.0),
}
STATED_DIM = {"ml-100k": 64, "ml-1m": 64, "digital-music": 64, "pinterest": 64, "yelp": 32}
STATED_RATIO = {"yelp": 4, "ml-100k": 4, "digital-music": 2, "pinterest": 2, "ml-1m": 3}


@dataclass
class Claim:
    section: str
    statement: str
    parts: list[tuple[bool, str]] = field(default_factory=list)  # (holds, evidence)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # context that decides nothing

    @property
    def held(self) -> int:
        return sum(ok for ok, _ in self.parts)

    @property
    def status(self) -> str:
        if not self.parts:
            return UNCHECKED
        return AGREES if all(ok for ok, _ in self.parts) else DISAGREES

    def evidence(self) -> str:
        bits = []
        if self.parts:
            bits.append(f"{self.held} of {len(self.parts)} checked parts hold")
            failing = [e for ok, e in self.parts if not ok]
            shown = failing if failing else [e for _, e in self.parts]
            more = len(shown) - 6
            bits.append(
                ("fails: " if failing else "e.g. ")
                + "; ".join(shown[:6])
                + (f"; and {more} more" if more > 0 else "")
            )
        if self.missing:
            bits.append("not checked: " + "; ".join(self.missing))
        return ". ".join(bits) + "."


def _name(model: str) -> str:
    return paper.DISPLAY.get(model, model)


def _mean(table: pd.DataFrame, model: str, metric: str) -> float | None:
    row = table[table["model"] == model]
    if row.empty or pd.isna(row.iloc[0][f"{metric}_mean"]):
        return None
    return float(row.iloc[0][f"{metric}_mean"])


def _p(table: pd.DataFrame, model: str) -> str:
    row = table[table["model"] == model]
    if row.empty or pd.isna(row.iloc[0]["dave_diff_ndcg@10"]):
        return ""
    return f", paired NDCG@10 {format_p(float(row.iloc[0]['dave_p_ndcg@10']))}"


def _seeds_note(table: pd.DataFrame, ds: str, models: list[str]) -> str | None:
    """How many seeds each mean of a comparison is over, so that a claim decided by one
    seed's draw says so (``dataset_seeds`` gives the slowest models fewer on a large dataset)."""
    if "seeds" not in table:
        return None
    counts = {}
    for m in models:
        row = table[table["model"] == m]
        if not row.empty and not pd.isna(row.iloc[0]["seeds"]):
            counts[m] = int(row.iloc[0]["seeds"])
    if not counts:
        return None
    if len(set(counts.values())) == 1:
        n = next(iter(counts.values()))
        return f"{DS[ds]}: every mean compared is over {n} seed{'s' if n != 1 else ''}."
    note = f"{DS[ds]}: means over " + ", ".join(
        f"{_name(m)} {n} seed{'s' if n != 1 else ''}" for m, n in counts.items()
    )
    if 1 in counts.values():
        note += (
            "; a model with one seed is a single draw (no seed spread), so read its margins "
            "beside the other models' spread and the paired test across users"
        )
    return note + "."


def _versus(
    claim: Claim,
    tables: dict[str, pd.DataFrame],
    datasets: list[str],
    rivals: list[str],
    metrics: list[str],
    dave_better: bool = True,
    group: bool = True,
    skip: Callable[[str, str], bool] = lambda d, m: False,
) -> None:
    """DAVE against the best of ``rivals`` (``group``) or against each rival, per metric."""
    for ds in datasets:
        if ds not in tables:
            claim.missing.append(f"{DS[ds]} (not run)")
            continue
        t = tables[ds]
        present = [r for r in rivals if _mean(t, r, metrics[0]) is not None]
        absent = [_name(r) for r in rivals if r not in present]
        if _mean(t, "dave", metrics[0]) is None:
            claim.missing.append(f"{DS[ds]} (DAVE not run)")
            continue
        if not present:
            claim.missing.append(f"{DS[ds]} ({', '.join(absent)} not run)")
            continue
        if absent:
            claim.missing.append(f"{DS[ds]}: {', '.join(absent)} not run")
        note = _seeds_note(t, ds, ["dave", *present])
        if note and note not in claim.notes:
            claim.notes.append(note)
        pools = [present] if group else [[r] for r in present]
        for pool in pools:
            for m in metrics:
                if skip(ds, m):
                    continue
                dave = _mean(t, "dave", m)
                best = max(pool, key=lambda r, m=m: _mean(t, r, m))
                other = _mean(t, best, m)
                ok = dave > other if dave_better else dave < other
                claim.parts.append(
                    (
                        ok,
                        f"{DS[ds]} {m.upper()}: DAVE {dave:.4f} vs {_name(best)} {other:.4f}"
                        + (_p(t, best) if m == "ndcg@10" else ""),
                    )
                )


def table_claims(tables: dict[str, pd.DataFrame]) -> list[Claim]:
    hr = ["hr@5", "hr@10", "hr@20"]
    ndcg = ["ndcg@5", "ndcg@10", "ndcg@20"]
    allm = hr + ndcg
    c1 = Claim(
        "4.2.1",
        "On MovieLens 100K, MovieLens 1M, Yelp and Digital Music, DAVE beats the robust "
        "methods CDAE, APR and ACAE on HR@5, HR@10 and HR@20, except HR@10 on MovieLens 100K "
        "and HR@20 on Yelp.",
    )
    _versus(
        c1,
        tables,
        ["ml-100k", "ml-1m", "yelp", "digital-music"],
        paper.ROBUST,
        hr,
        skip=lambda d, m: (d, m) in {("ml-100k", "hr@10"), ("yelp", "hr@20")},
    )
    c2 = Claim(
        "4.2.1",
        "DAVE beats CDAE, APR and ACAE on NDCG@5, NDCG@10 and NDCG@20 on all five datasets "
        "(by 0.9-8.3% over the strongest of them).",
    )
    _versus(c2, tables, list(paper.DATASET_TITLES), paper.ROBUST, ndcg)
    for ds, (rival, *gains) in STATED_NDCG_GAINS.items():
        t = tables.get(ds)
        if t is None or _mean(t, "dave", "ndcg@10") is None:
            continue
        present = [r for r in paper.ROBUST if _mean(t, r, "ndcg@10") is not None]
        if not present:
            continue
        ours = []
        for m, stated in zip(ndcg, gains, strict=True):
            best = max(present, key=lambda r, m=m: _mean(t, r, m))
            ours.append(
                f"{m.upper()} {100 * (_mean(t, 'dave', m) / _mean(t, best, m) - 1):+.1f}% over "
                f"{_name(best)} (paper {stated:+.1f}% over {_name(rival)})"
            )
        c2.notes.append(
            f"NDCG gain over the strongest robust method on {DS[ds]}: " + ", ".join(ours) + "."
        )
    c3 = Claim("4.2.1", "On Pinterest, DAVE is slightly inferior to APR on HR@k.")
    _versus(c3, tables, ["pinterest"], ["apr"], hr, dave_better=False)
    c4 = Claim("4.2.1", "DAVE outperforms NeuMF and CFGAN on all datasets (all six metrics).")
    _versus(c4, tables, list(paper.DATASET_TITLES), ["neumf", "cfgan"], allm, group=False)
    c5 = Claim(
        "4.2.1",
        "DAVE outperforms AVB, VAEGAN, CVAE-GAN and RecVAE on all datasets (all six metrics).",
    )
    _versus(
        c5,
        tables,
        list(paper.DATASET_TITLES),
        ["avb", "vaegan", "cvae-gan", "recvae"],
        allm,
        group=False,
    )
    return [c1, c2, c3, c4, c5]


def noise_claims(noise: dict[str, pd.DataFrame]) -> list[Claim]:
    c6 = Claim("4.2.2", "The performance of all methods degrades as the noise level increases.")
    c7 = Claim(
        "4.2.2", "At every noise level DAVE performs better than all the alternative methods."
    )
    c8 = Claim(
        "4.2.2",
        "The greater the noise level, the bigger the gap between DAVE and the alternatives.",
    )
    if not noise:
        for c in (c6, c7, c8):
            c.missing.append("no noise study was run")
        return [c6, c7, c8]
    for ds, s in noise.items():
        rows = (
            s[(s["group"] != "all") & (s["level"] > 0)]
            if (s["group"] != "all").any()
            else s[s["level"] > 0]
        )
        models = paper.model_order(list(dict.fromkeys(rows["model"])))
        levels = sorted(rows["level"].unique())
        if len(levels) < 2:
            for c in (c6, c8):
                c.missing.append(f"{DS[ds]}: fewer than two noise levels")
        piv = {
            m: rows.pivot_table(index="level", columns="model", values=f"{m}_mean")
            for m in ("hr@5", "hr@10", "ndcg@5", "ndcg@10")
        }
        for metric, tab in piv.items():
            for model in models:
                col = tab[model]
                if len(levels) >= 2:
                    ups = int((col.diff().dropna() > 0).sum())
                    c6.parts.append(
                        (
                            col.iloc[-1] < col.iloc[0],
                            f"{DS[ds]} {_name(model)} {metric.upper()}: {col.iloc[0]:.4f} at p={levels[0]:g} "
                            f"→ {col.iloc[-1]:.4f} at p={levels[-1]:g} ({ups} rise(s) between levels)",
                        )
                    )
            if "dave" not in tab.columns or len(models) < 2:
                continue
            others = tab.drop(columns=["dave"])
            best_other = others.max(axis=1)
            who = others.idxmax(axis=1)
            for lv in levels:
                c7.parts.append(
                    (
                        tab.loc[lv, "dave"] > best_other[lv],
                        f"{DS[ds]} p={lv:g} {metric.upper()}: DAVE {tab.loc[lv, 'dave']:.4f} vs "
                        f"{_name(who[lv])} {best_other[lv]:.4f}",
                    )
                )
            if len(levels) >= 2:
                gap = tab["dave"] - best_other
                c8.parts.append(
                    (
                        gap.iloc[-1] > gap.iloc[0],
                        f"{DS[ds]} {metric.upper()}: DAVE − best other "
                        + ", ".join(f"{g:+.4f} (p={lv:g})" for lv, g in gap.items()),
                    )
                )
        if "dave" not in models:
            for c in (c7, c8):
                c.missing.append(f"{DS[ds]}: DAVE not in the noise study")
        elif len(models) < 2:
            for c in (c7, c8):
                c.missing.append(f"{DS[ds]}: no alternative model in the noise study")
    return [c6, c7, c8]


def tsne_claims(tsne: dict[str, pd.DataFrame]) -> list[Claim]:
    c = Claim(
        "4.2.3",
        "DAVE's user and item posteriors [μ, σ] form clearly separated clusters, far more "
        "than DAVE-adv's (measured: the silhouette of the best k-means clustering).",
    )
    if not tsne:
        c.missing.append("no t-SNE study was run")
    for ds, s in tsne.items():
        best = s[s["best"].astype(bool)]
        for side in ("user", "item"):
            vals = {
                m: best[(best["model"] == m) & (best["side"] == side)] for m in ("dave", "dave-adv")
            }
            if any(v.empty for v in vals.values()):
                c.missing.append(f"{DS[ds]} {side}s: needs both DAVE and DAVE-adv")
                continue
            d, a = (vals[m].iloc[0] for m in ("dave", "dave-adv"))
            c.parts.append(
                (
                    d["silhouette"] > a["silhouette"],
                    f"{DS[ds]} {side}s: DAVE {d['silhouette']:.3f} (k={int(d['k'])}) vs DAVE-adv "
                    f"{a['silhouette']:.3f} (k={int(a['k'])})",
                )
            )
    return [c]


def sweep_claims(sweeps: dict[str, pd.DataFrame]) -> list[Claim]:
    out = []
    for param, stated, text in (
        (
            "embedding_dim",
            STATED_DIM,
            "The best embedding dimension is 64 on MovieLens 100K, MovieLens 1M, "
            "Digital Music and Pinterest, and 32 on Yelp",
        ),
        (
            "negative_ratio",
            STATED_RATIO,
            "The best negative sampling ratio is 4 on Yelp and MovieLens 100K, "
            "3 on MovieLens 1M, and 2 on Digital Music and Pinterest",
        ),
    ):
        c = Claim("4.2.4", text + " (validation HR@10 and NDCG@10).")
        for ds in paper.DATASET_TITLES:
            s = sweeps.get(ds)
            if s is None or not (s["param"] == param).any():
                c.missing.append(f"{DS[ds]} (no sweep)")
                continue
            rows = s[s["param"] == param]
            g = rows.groupby("value")[["hr@10", "ndcg@10"]].mean()
            if stated[ds] not in g.index:
                c.missing.append(f"{DS[ds]} (the paper's {stated[ds]} is not in our grid)")
                continue
            for metric in ("hr@10", "ndcg@10"):
                best = int(g[metric].idxmax())
                c.parts.append(
                    (
                        best == stated[ds],
                        f"{DS[ds]} {metric.upper()}: best at {best} "
                        f"({g[metric].max():.4f}), paper {stated[ds]} "
                        f"({g.loc[stated[ds], metric]:.4f})",
                    )
                )
            c.notes.append(_sweep_margin_note(DS[ds], rows, g, stated[ds]))
        out.append(c)
    return out


def _sweep_margin_note(title: str, rows: pd.DataFrame, g: pd.DataFrame, stated: int) -> str:
    """How much a sweep's winner is worth: seeds per point and the margin over the runner-up.
    A margin of one seed's draw decides little; and the paper's point is the main run (point
    `default`), whose setting a readings or tuning study may have chosen as the best of a grid
    on the same validation split, which favours it against single draws of the other points."""
    seeds = rows.groupby("value").size()
    bits = []
    for metric in ("hr@10", "ndcg@10"):
        ranked = g[metric].sort_values(ascending=False)
        if len(ranked) > 1:
            bits.append(
                f"{metric.upper()} {int(ranked.index[0])} over {int(ranked.index[1])} "
                f"by {ranked.iloc[0] - ranked.iloc[1]:.4f}"
            )
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    note = f"{title}: {n} seed(s) per point; margins: " + ", ".join(bits) + "."
    if "point" in rows and (rows.loc[rows["value"] == stated, "point"] == "default").any():
        note += (
            f" The paper's {stated} is the main run, whose other settings were selected on this "
            "validation split (readings study), so its score is the best of a grid, not one draw "
            "like the other points: read a margin of that size against the seed-to-seed spread "
            "of the main runs' validation scores, not as a ranking."
        )
    return note


def check_all(
    tables: dict[str, pd.DataFrame],
    noise: dict[str, pd.DataFrame],
    tsne: dict[str, pd.DataFrame],
    sweeps: dict[str, pd.DataFrame],
) -> list[Claim]:
    return [*table_claims(tables), *noise_claims(noise), *tsne_claims(tsne), *sweep_claims(sweeps)]


def as_written_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each table with the DAVE family's rows replaced by their rows under Eq. 17 as written
    (tables without such rows are left out), and no paired test: those were of the main runs.
    The claims checked on these are the paper's claims under the reading as literally written."""
    out = {}
    for ds, t in tables.items():
        written = is_as_written(t["model"])
        if not written.any():
            continue
        alt = t[written].assign(model=t.loc[written, "model"].str.removesuffix(AS_WRITTEN))
        alt = pd.concat([t[~written & ~t["model"].isin(alt["model"])], alt], ignore_index=True)
        for col in alt.columns:
            if f"dave_diff_{TEST_METRIC}" in col or f"dave_p_{TEST_METRIC}" in col:
                alt[col] = float("nan")
        out[ds] = alt
    return out


def check_as_written(tables: dict[str, pd.DataFrame]) -> list[Claim] | None:
    """Every claim under Eq. 17 as written: the table claims on ``as_written_tables``; the
    studies' claims are not checked (the noise, t-SNE and sweep studies ran the main runs).
    None where no table has an as-written row."""
    written = as_written_tables(tables)
    if not written:
        return None
    rest = [*noise_claims({}), *tsne_claims({}), *sweep_claims({})]
    for c in rest:
        c.missing = ["its study ran the main runs only"]
    return [*table_claims(written), *rest]


def tally(claims: list[Claim]) -> dict[str, int]:
    """How many claims have each status."""
    return {s: sum(c.status == s for c in claims) for s in (AGREES, DISAGREES, UNCHECKED)}


def claims_markdown(claims: list[Claim], judged: bool = True) -> str:
    """The claims as a numbered list. ``judged=False`` (a smoke test's results): every claim is
    marked not meaningful, with no verdict, no evidence and no p-value."""
    if not judged:
        head = (
            f"Not judged: these results are a smoke test (see the top), so none of the "
            f"{len(claims)} claims is marked as agreeing or not, and no comparison or p-value is "
            "quoted. The `paper` profile's report checks them."
        )
        lines = [
            f"{i}. ⬜ *{NOT_MEANINGFUL}* — *“{c.statement}”* (§{c.section})."
            for i, c in enumerate(claims, start=1)
        ]
        return head + "\n\n" + "\n".join(lines) + "\n"
    badge = {
        AGREES: "✅ **agrees**",
        DISAGREES: "❌ **does not agree**",
        UNCHECKED: "⬜ *not checked*",
    }
    lines = []
    for i, c in enumerate(claims, start=1):
        lines.append(f"{i}. {badge[c.status]} — *“{c.statement}”* (§{c.section}). {c.evidence()}")
        lines += [f"   * {n}" for n in c.notes]
    counts = tally(claims)

    def n(k: str, one: str, many: str) -> str:
        return f"{counts[k]} {one if counts[k] == 1 else many}"

    head = (
        f"Of {len(claims)} claims: {n(AGREES, 'agrees', 'agree')} with our numbers, "
        f"{n(DISAGREES, 'does not', 'do not')}, {n(UNCHECKED, 'could', 'could')} not be checked "
        "with the results of this run."
    )
    return head + "\n\n" + "\n".join(lines) + "\n"


def claims_frame(claims: list[Claim], judged: bool = True) -> pd.DataFrame:
    """One row per claim; ``judged=False`` (a smoke test): status not meaningful, no evidence."""
    return pd.DataFrame(
        [
            {
                "section": c.section,
                "claim": c.statement,
                "status": c.status if judged else NOT_MEANINGFUL,
                "parts_held": c.held if judged else pd.NA,
                "parts": len(c.parts) if judged else pd.NA,
                "evidence": c.evidence() if judged else "",
            }
            for c in claims
        ]
    )


__all__ = [
    "AGREES",
    "DISAGREES",
    "NOT_MEANINGFUL",
    "UNCHECKED",
    "Claim",
    "as_written_tables",
    "check_all",
    "check_as_written",
    "claims_frame",
    "claims_markdown",
    "tally",
]
