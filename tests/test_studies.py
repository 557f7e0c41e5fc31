"""Which study jobs exist (noise, t-SNE, sweeps), their keys, parameters and summaries."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dave_repro import config, engine, layout, plan
from dave_repro import plan as studies
from dave_repro.errors import ConfigError
from dave_repro.layout import run_dir, sweep_run_dir
from dave_repro.reports.studies import noise_summary, sweep_summary, tsne_summary, write_summary
from dave_repro.stages import studies as study_stages


def test_noise_jobs_only_for_vector_reading_models_of_the_profile(fresh_params):
    p = fresh_params
    p["profiles"]["quick"]["seeds"] = [0, 1]
    # quick profile: dave, dave-adv, dave-aae, itempop; noise.models lists dave, dave-aae and baselines
    assert studies.noise_jobs(p) == [
        ("ml-100k", m, s) for m in ("dave", "dave-aae") for s in (0, 1)
    ]
    p["noise"]["models"].append("itempop")  # listed, but its prediction reads no vectors
    assert ("ml-100k", "itempop", 0) not in studies.noise_jobs(p)
    p["noise"]["datasets"] = ["ml-1m"]
    assert studies.noise_jobs(p) == []


def test_tsne_jobs_use_the_first_seed(fresh_params):
    p = fresh_params
    p["profiles"]["quick"]["seeds"] = [3, 1]
    assert studies.tsne_jobs(p) == [("ml-100k", "dave", 3), ("ml-100k", "dave-adv", 3)]


def test_sweep_points_reuse_the_main_grid_and_train_each_configuration_once(fresh_params):
    p = fresh_params  # ml-100k: embedding_dim 64, negative_ratio 4 are the paper's settings
    short = p["profiles"]["quick"].pop("sweep_grid")  # the quick profile's own, short grid
    assert studies.sweep_runs(
        {
            **p,
            "profiles": {**p["profiles"], "quick": {**p["profiles"]["quick"], "sweep_grid": short}},
        },
        "ml-100k",
    ) == [(f"embedding_dim-{d}", 0) for d in short["embedding_dim"] if d != 64] + [
        (f"negative_ratio-{r}", 0) for r in short["negative_ratio"] if r != 4
    ]
    points = studies.sweep_points(p, "ml-100k")
    assert [(x.param, x.value) for x in points] == [
        ("embedding_dim", d) for d in (8, 16, 32, 64, 128)
    ] + [("negative_ratio", r) for r in (1, 2, 3, 4, 5)]
    shared = [x for x in points if x.rd == run_dir("ml-100k", "dave", 0)]
    assert [(x.param, x.value) for x in shared] == [("embedding_dim", 64), ("negative_ratio", 4)]
    assert all(x.chosen == (x in shared) for x in points)
    assert points[0].rd == sweep_run_dir("ml-100k", "dave", "embedding_dim-8", 0)
    assert len(studies.sweep_runs(p, "ml-100k")) == 8
    # another schedule for the sweeps: nothing equals a main run, the paper's point is trained once
    p["sweeps"]["profile"] = "paper"
    runs = studies.sweep_runs(p, "ml-100k")
    assert len(runs) == 9 and ("default", 0) in runs
    job = studies.sweep_job(p, "ml-100k", "embedding_dim-16", 0)
    assert job["model_params"]["embedding_dim"] == 16 and job["profile"] == "paper"
    assert job["train"]["max_epochs"] == p["profiles"]["paper"]["train"]["max_epochs"]


def test_sweep_keys(fresh_params):
    p = fresh_params
    k16, k32 = (engine.sweep_key(p, "ml-100k", f"embedding_dim-{d}", 0) for d in (16, 32))
    assert k16 != k32
    # the default point is exactly the main run: the same key as its train job
    assert engine.sweep_key(p, "ml-100k", "default", 0) == engine.job_key(
        p, "train", "ml-100k", "dave", 0
    )
    assert "results/runs/ml-100k/dave/seed-0/train.json" in plan.sweep_targets(p, "ml-100k")
    with pytest.raises(ConfigError, match="sweep point"):
        studies.parse_point("learning_rate-3")


def test_study_keys_change_with_their_settings_only(fresh_params):
    p = fresh_params
    a = engine.study_key(p, "noise", "ml-100k", "dave", 0)
    q = copy.deepcopy(p)
    q["noise"]["models"] = ["dave"]  # which models are studied does not change a job's result
    assert engine.study_key(q, "noise", "ml-100k", "dave", 0) == a
    q["noise"]["levels"] = [0.2]
    assert engine.study_key(q, "noise", "ml-100k", "dave", 0) != a
    assert engine.study_key(p, "tsne", "ml-100k", "dave", 0) != engine.study_key(
        p, "tsne", "ml-100k", "dave-adv", 0
    )


def test_study_parameters_are_validated(params):
    p = copy.deepcopy(params)
    p["noise"]["mode"] = "gaussian"
    p["noise"]["levels"] = [0.1, 1.5]
    p["tsne"]["models"] = ["itempop"]
    p["tsne"]["clusters"] = [6, 3]
    p["sweeps"]["grid"] = {"embedding_dim": [0], "dropout": [1]}
    with pytest.raises(ConfigError) as exc:
        config.validate_params(p)
    out = "\n".join(exc.value.problems)
    for expected in (
        "noise.mode: unknown value 'gaussian'",
        "noise.levels[1]: 1.5 is above the maximum 1.0",
        "sweeps.grid.embedding_dim[0]: 0 is below the minimum 1",
        "sweeps.grid.dropout: unknown key",
    ):
        assert expected in out, out
    p = copy.deepcopy(params)
    p["tsne"]["models"] = ["itempop"]
    p["tsne"]["clusters"] = [6, 3]
    p["sweeps"]["profile"] = "slow"
    with pytest.raises(ConfigError) as exc:
        config.validate_params(p)
    out = "\n".join(exc.value.problems)
    for expected in (
        "tsne.clusters: expected [lowest k, highest k]",
        "tsne.models[0]: itempop has no posterior",
        "sweeps.profile: unknown profile 'slow'",
    ):
        assert expected in out, out


# ---------------------------------------------------------------------------------------------
# Summaries from fake job outputs


def write_noise(
    root: Path, model: str, seed: int, base: float, levels=(0.0, 0.1, 0.5, 0.9)
) -> None:
    rows = [
        {
            "mode": "uniform",
            "group": "all",
            "level": lv,
            "users": 100,
            "saturated_users": 0,
            "saturated_items": 0,
            **{
                f"{m}@{k}": max(base - lv * 0.3 + 0.01 * seed - 0.05 * (m == "ndcg"), 0.0)
                for m in ("hr", "ndcg")
                for k in (5, 10, 20)
            },
        }
        for lv in levels
    ]
    path = layout.noise_path("ml-100k", model, seed, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def write_train_json(rd: Path, hr: float, ndcg: float) -> None:
    rd.mkdir(parents=True, exist_ok=True)
    hist = [
        {"epoch": 0, "valid/hr@10": hr - 0.1, "valid/ndcg@10": ndcg - 0.1},
        {"epoch": 1, "valid/hr@10": hr, "valid/ndcg@10": ndcg},
    ]
    (rd / "train.json").write_text(
        json.dumps({"best_epoch": 1, "best_valid": hr, "epochs_run": 2, "history": hist})
    )


def test_noise_summary_means_and_stds(tmp_path, fresh_params):
    p = fresh_params
    p["profiles"]["quick"]["seeds"] = [0, 1]
    root = tmp_path / "results"
    for model, base in (("dave", 0.7), ("dave-aae", 0.6)):
        for seed in (0, 1):
            write_noise(root, model, seed, base)
    s = noise_summary(p, "ml-100k", root)
    assert list(s.columns[:6]) == ["model", "name", "mode", "group", "level", "seeds"]
    row = s[(s["model"] == "dave") & (s["level"] == 0.5)].iloc[0]
    assert row["hr@10_mean"] == pytest.approx(0.7 - 0.15 + 0.005)
    assert row["hr@10_std"] == pytest.approx(np.std([0.55, 0.56], ddof=1))
    assert row["seeds"] == 2 and row["name"] == "DAVE"
    paths = write_summary("noise", p, "ml-100k", root)
    metrics = json.loads(paths[1].read_text())
    assert metrics["dave"]["0.5"]["hr@10"] == pytest.approx(0.555)
    assert set(metrics) == {"dave", "dave-aae"} and set(metrics["dave"]) == {
        "0",
        "0.1",
        "0.5",
        "0.9",
    }


def test_summaries_of_a_dataset_outside_a_study_are_empty(tmp_path, fresh_params):
    p = fresh_params
    p["noise"]["datasets"] = []
    p["tsne"]["datasets"] = []
    for kind in ("noise", "tsne"):
        csv, js = write_summary(kind, p, "ml-100k", tmp_path)
        assert pd.read_csv(csv).empty and json.loads(js.read_text()) == {}
    assert tsne_summary(p, "ml-100k", tmp_path).empty


def test_sweep_summary_reads_validation_at_the_best_epoch(tmp_path, fresh_params):
    p = fresh_params
    p["profiles"]["quick"].pop("sweep_grid")  # the full grid of sweeps.grid
    root = tmp_path / "results"
    for pt in studies.sweep_points(p, "ml-100k"):
        write_train_json(root / pt.rd.relative_to("results"), hr=0.5 + pt.value / 1000, ndcg=0.3)
    s = sweep_summary(p, "ml-100k", root)
    assert len(s) == 10 and list(s["param"].unique()) == ["embedding_dim", "negative_ratio"]
    r = s[(s["param"] == "embedding_dim") & (s["value"] == 128)].iloc[0]
    assert (
        r["hr@10"] == pytest.approx(0.628)
        and r["ndcg@10"] == pytest.approx(0.3)
        and r["best_epoch"] == 1
    )
    assert r["run"] == "results/sweep-runs/ml-100k/dave/embedding_dim-128/seed-0"
    assert s.loc[s["chosen"], "run"].tolist() == ["results/runs/ml-100k/dave/seed-0"] * 2


def test_noise_refuses_a_model_that_reads_no_vectors(fresh_params):
    job = config.job_config(fresh_params, "ml-100k", "itempop", 0)
    with pytest.raises(ConfigError, match="does not read interaction vectors"):
        study_stages.noise(job, fresh_params)
