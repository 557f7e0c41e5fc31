"""`snakemake results/figures results/report.md` end to end on a tiny generated dataset: the
studies of Section 4.2 run on the trained grid, and a changed study parameter re-runs only them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import tiny_params
from test_pipeline import make_project, sh

from dave_repro.data import synthetic

pytestmark = pytest.mark.slow


def test_snakemake_figures_and_report_end_to_end(tmp_path, params):
    mirror = tmp_path / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=80, n_items=300)
    p = tiny_params(params, sums, epochs=1, models=["dave", "dave-adv"])
    p["sweeps"]["grid"] = {
        "embedding_dim": [4, 8],
        "negative_ratio": [2],
    }  # one training beyond the grid
    # the readings study: the defaults (the main runs) and one more reading of each model,
    # D seeing what each model's default gives it
    unweighted = {"reconstruction": 1.0, "regularizer": 1.0, "prediction": 1.0}
    p["profiles"]["quick"]["readings_grid"] = {
        "scaling": {
            "default": {},
            "per-entry": {"reduction": "per_entry", "loss_weights": unweighted},
        },
        "discriminator_input": ["default"],
    }
    root = make_project(tmp_path / "proj", p)
    env = {"DAVE_DATA_MIRROR": str(mirror)}
    sh(root, "snakemake", "--cores", "2", "results/figures", "results/report.md", env=env)

    figures = {f.name for f in (root / "results/figures").iterdir()}
    assert {
        "noise.png",
        "noise.pdf",
        "tsne-users.png",
        "tsne-items.png",
        "tsne-silhouette.csv",
        "sweep-dim.png",
        "sweep-negratio.png",
        "readings.png",
    } <= figures
    # Figure 2: the profile's models of noise.models (DAVE; DAVE-adv is not one), the clean level
    # equal to the run's own test metrics
    noise = pd.read_csv(root / "results/noise/ml-100k.csv")
    assert set(noise["model"]) == {"dave"}
    assert sorted(noise["level"].unique()) == [0.0, 0.1, 0.5, 0.9]
    for model in ("dave",):
        metrics = json.loads(
            (root / f"results/runs/ml-100k/{model}/seed-0/metrics.json").read_text()
        )
        clean = noise[(noise["model"] == model) & (noise["level"] == 0.0)].iloc[0]
        assert clean["hr@10_mean"] == pytest.approx(metrics["sampled"]["hr@10"], abs=1e-6)
    # Figures 3-4: DAVE and DAVE-adv, users and items
    sil = pd.read_csv(root / "results/tsne/ml-100k.csv")
    assert set(zip(sil["model"], sil["side"], strict=True)) == {
        (m, s) for m in ("dave", "dave-adv") for s in ("user", "item")
    }
    # Figures 5-6: one extra training (d = 4); d = 8 and ratio 2 are the main run itself
    sweeps = pd.read_csv(root / "results/sweeps/ml-100k.csv")
    assert len(sweeps) == 3 and sorted(sweeps["run"].unique()) == [
        "results/runs/ml-100k/dave/seed-0",
        "results/sweep-runs/ml-100k/dave/embedding_dim-4/seed-0",
    ]
    main = json.loads((root / "results/runs/ml-100k/dave/seed-0/train.json").read_text())
    assert sweeps.loc[sweeps["chosen"], "hr@10"].tolist() == pytest.approx([main["best_valid"]] * 2)
    # the readings: two per model, the default being the main run, each evaluated on test
    readings = pd.read_csv(root / "results/readings/ml-100k.csv")
    assert sorted(zip(readings["model"], readings["point"], strict=True)) == [
        (m, f"reading-{s}") for m in ("dave", "dave-adv") for s in ("default", "per-entry")
    ]
    assert readings.groupby("model")["selected"].sum().eq(1).all()
    extra = root / "results/sweep-runs/ml-100k/dave-adv/reading-per-entry/seed-0"
    assert (extra / "metrics.json").is_file() and (extra / "evaluate.manifest.json").is_file()
    row = readings[(readings["model"] == "dave-adv") & (readings["point"] == "reading-per-entry")]
    assert row["test_hr@10"].item() == pytest.approx(
        json.loads((extra / "metrics.json").read_text())["sampled"]["hr@10"]
    )
    report = (root / "results/report.md").read_text()
    assert "## The readings of what the paper leaves open" in report
    # a quick-profile report is a smoke test: its claims are listed, never judged
    assert "Smoke test: these numbers are not evidence" in report
    assert "not judged in a smoke test" in report and "Of 11 claims:" not in report
    assert "![Figure 2: noise](figures/noise.png)" in report
    assert "### Table 4: recommendation performance on MovieLens 100K" in report

    dry = sh(root, "snakemake", "-n", "results/figures", "results/report.md", env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # a study parameter re-runs that study's jobs, never a training
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["noise"]["levels"] = [0.3]
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    jobs = sh(root, "snakemake", "-n", "results/figures", "results/report.md", env=env)
    out = jobs.stdout + jobs.stderr
    assert "rule noise:" in out and "rule train:" not in out and "rule sweep_train:" not in out
    assert "rule point_evaluate:" not in out
    assert "rule tsne:" not in out
