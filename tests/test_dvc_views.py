"""What DVC's own views show of the pipeline: `dvc plots show` renders offline, a panel per
metric; `dvc metrics show results/metrics/compact` is a models × (HR@10, NDCG@10) table; and
`dvc exp run -S key=<bad value>` is refused before DVC removes any output, without restyling
params.yaml."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest
import yaml
from conftest import REPO, tiny_params
from test_pipeline import make_project, sh

from dave_repro import layout
from dave_repro.data import synthetic
from dave_repro.stages import reports

OFFLINE_PAGE = REPO / ".dvc" / "plots" / "offline.html"
BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
MODELS = ["dave", "dave-adv", "itempop"]


def _set_param(path: Path, *overrides: str) -> None:
    """What `dvc exp run -S` does to the file before it runs anything."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(str(path), list(overrides))


def _digests(root: Path, paths: list[str]) -> dict[str, str]:
    out = {}
    for rel in paths:
        p = root / rel
        for f in sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]:
            out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _specs(page: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"var spec = (\{.*?\});\n", page, flags=re.S)]


# -- params.yaml and dvc.yaml, no pipeline run -------------------------------------------------


def test_params_yaml_is_what_dvc_set_param_writes(tmp_path):
    """DVC rewrites params.yaml with ruamel on every `-S` (lists in block style, null as an
    empty value, flow mappings wrapped at 80 columns, comments after a list dropped): in that
    style already, the file changes by exactly the overridden line."""
    original = (REPO / "params.yaml").read_text()
    values = yaml.safe_load(original)
    path = tmp_path / "params.yaml"
    path.write_text(original)
    _set_param(path, f"profile={values['profile']}")  # the value it has
    assert path.read_text() == original
    epochs = values["profiles"]["quick"]["train"]["max_epochs"]
    _set_param(path, f"profiles.quick.train.max_epochs={epochs + 1}")
    changed = [
        (a, b)
        for a, b in zip(original.splitlines(), path.read_text().splitlines(), strict=True)
        if a != b
    ]
    assert changed == [(f"      max_epochs: {epochs}", f"      max_epochs: {epochs + 1}")]


def test_every_stage_runs_after_check_params():
    """DVC removes a stage's outputs right before its command: the validation must come first,
    and it does for every stage downstream of it (DVC runs stages in dependency order)."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        graph = repo.index.graph  # edges: stage -> the stages it depends on
        (check,) = [s for s in graph if s.addressing == "check-params"]
        others = [s for s in graph if s is not check]
        assert others
        assert all(check in nx.descendants(graph, s) for s in others), [
            s.addressing for s in others if check not in nx.descendants(graph, s)
        ]
        (marker,) = check.outs  # constant content: a valid edit re-runs nothing through it
        assert marker.def_path == ".dave/params.ok"  # engine state, not a result
        assert not marker.use_cache and marker.persist  # in git, and kept by a failed check


def test_offline_page_template_inlines_the_vega_scripts():
    page = OFFLINE_PAGE.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{scripts}" not in page  # DVC's CDN tags never go in
    assert not re.search(r"<script[^>]+src=", page)
    assert [m for m in ("cdn.jsdelivr.net/npm/vega", "sourceMappingURL") if m in page] == []
    for version in ("5.21.0", "5.2.0", "6.20.8"):  # vega, vega-lite, vega-embed
        assert f'"{version}"' in page, version


def test_curve_rows_are_one_panel_per_metric_validation_first():
    history = {
        ("dave", 0): [
            {"epoch": 0, "seconds": 1.0, "train/loss": 2.0, "valid/hr@10": 0.5, "valid/hr@5": 0.3},
            {"epoch": 1, "seconds": 1.0, "train/loss": 1.0, "valid/hr@10": 0.6, "valid/hr@5": 0.4},
        ],
        ("itempop", 0): [{"epoch": 0, "valid/hr@10": 0.4, "valid/hr@5": 0.2}],
    }
    rows = reports.curve_rows(history)
    panels = {r["metric"]: r["panel"] for r in rows}
    assert panels == {"valid/hr@5": 0, "valid/hr@10": 1, "train/loss": 2}  # no wall-clock time
    assert {tuple(sorted(r)) for r in rows} == {
        ("epoch", "metric", "model", "panel", "seed", "value")
    }
    assert [r["value"] for r in rows if r["metric"] == "valid/hr@10"] == [0.5, 0.6, 0.4]


# -- a tiny project through `dvc repro` ---------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory, params):
    """A tiny project after `dvc repro`, committed, with the repository's plot templates."""
    tmp = tmp_path_factory.mktemp("views")
    mirror = tmp / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=80, n_items=300)
    p = tiny_params(params, sums, epochs=2, models=MODELS, studies=False)
    root = make_project(tmp / "proj", p)
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    env = {"DAVE_DATA_MIRROR": str(mirror)}
    sh(root, "dvc", "repro", env=env)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "repro")
    return root, env


@pytest.mark.slow
def test_compact_metrics_are_a_models_by_two_metrics_table(built):
    root, env = built
    folder = root / layout.compact_metrics_dir("ml-100k")
    assert sorted(f.name for f in folder.iterdir()) == sorted(f"{m}.json" for m in MODELS)
    full = json.loads((root / layout.metrics_path("ml-100k")).read_text())
    for model in MODELS:
        compact = json.loads((folder / f"{model}.json").read_text())
        assert set(compact) == {"hr@10", "ndcg@10"}
        means = full["models"][model]["sampled"]["mean"]
        assert compact == {k: means[k] for k in ("hr@10", "ndcg@10")}
    shown = sh(root, "dvc", "metrics", "show", "results/metrics/compact", env=env).stdout
    header, *rows = [line.split() for line in shown.strip().splitlines()]
    assert header == ["Path", "hr@10", "ndcg@10"]
    assert sorted(r[0] for r in rows) == sorted(
        f"results/metrics/compact/ml-100k/{m}.json" for m in MODELS
    )


@pytest.mark.slow
def test_plots_page_draws_the_curves_with_no_network(built, tmp_path):
    root, env = built
    out = tmp_path / "page"
    sh(root, "dvc", "plots", "show", "--html-template", str(OFFLINE_PAGE), "-o", str(out), env=env)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page)
    (curves,) = [s for s in _specs(page) if s.get("facet")]
    assert curves["facet"]["field"] == "metric"
    assert curves["spec"]["encoding"]["color"]["field"] == "model"
    assert curves["spec"]["encoding"]["x"]["field"] == "epoch"
    values = curves["data"]["values"]
    assert {v["model"] for v in values} == set(MODELS)
    assert {v["epoch"] for v in values} == {0, 1}
    assert "valid/hr@10" in {v["metric"] for v in values}
    assert not re.search(r"<img[^>]+src=\"?https?:", page)  # the figures are copied beside it
    if BROWSER is None:
        return
    # the page drawn by a browser with every network request refused: vega-embed leaves a
    # canvas or an svg in the chart's div only when the scripts ran and the spec compiled
    dom = subprocess.run(
        [BROWSER, "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--dump-dom",
         (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert 'class="vega-embed' in dom and ("<canvas" in dom or "<svg" in dom)


@pytest.mark.slow
def test_a_bad_set_param_is_refused_before_dvc_removes_anything(built):
    root, env = built
    outputs = [
        "results/metrics/ml-100k.json",
        "results/metrics/ml-100k.manifest.json",
        "results/metrics/compact",
        "results/curves/ml-100k.json",
        "results/tables",
        "data/processed/ml-100k",
    ]
    before = _digests(root, outputs)
    run = sh(
        root, "dvc", "exp", "run", "-S", "profiles.quick.train.max_epochs=-3", env=env, check=False
    )
    assert run.returncode != 0
    assert "max_epochs" in run.stdout + run.stderr  # dave check-params said why
    assert "Running stage 'check-params'" in run.stdout
    assert "experiments@ml-100k" not in run.stdout  # nothing after the check ran
    assert _digests(root, outputs) == before
