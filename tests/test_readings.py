"""The readings study: DAVE's open points and the baselines' tuning, selected on validation only."""

from __future__ import annotations

import builtins
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from dave_repro import config
from dave_repro import plan as studies
from dave_repro.errors import ConfigError, DataFormatError
from dave_repro.reports import studies as summaries
from dave_repro.reports.figures import readings_figure


def _paper(p: dict) -> dict:
    p["profile"] = "paper"
    return p


def test_the_paper_grid_crosses_scalings_with_the_discriminators_inputs(fresh_params):
    p = _paper(fresh_params)
    points = studies.readings_points(p, "ml-100k")
    n_scaling = len(p["readings"]["grid"]["scaling"])
    per_model = pd.Series([x.model for x in points]).value_counts().to_dict()
    assert per_model["dave"] == per_model["dave-aae"] == 2 * n_scaling
    assert per_model["dave-adv"] == n_scaling  # no discriminator, so one input
    for baseline in config.BASELINES:
        assert per_model[baseline] == len(p["readings"]["tuning"][baseline])
    # the point equal to params.yaml's own configuration is the main run, never trained twice
    defaults = [x for x in points if x.default]
    assert {x.model for x in defaults} == set(per_model)
    assert all(x.rd == Path(f"results/runs/ml-100k/{x.model}/seed-0") for x in defaults)
    others = [x for x in points if not x.default]
    assert all(x.rd.parts[:2] == ("results", "sweep-runs") for x in others)
    assert len({x.rd for x in points}) == len(points)


def test_a_reading_sets_its_scaling_and_the_discriminators_input(fresh_params):
    p = _paper(fresh_params)
    job = studies.sweep_job(p, "ml-100k", "reading-per-entry+input", 0, "dave")
    assert job["model_params"]["reduction"] == "per_entry"
    assert job["model_params"]["discriminator_input"] == "embedding+input"
    job = studies.sweep_job(p, "ml-100k", "reading-beta-0.004", 0, "dave-aae")
    mp = job["model_params"]
    assert mp["reduction"] == "sum" and mp["discriminator_input"] == "embedding"
    assert mp["loss_weights"] == {
        "reconstruction": 0.0039,
        "regularizer": 0.0039,
        "prediction": 1.0,
    }
    assert studies.sweep_job(p, "ml-100k", "tune-lr-3e-3", 0, "neumf")["model_params"]["lr"] == 3e-3
    for point, model in (
        ("reading-mean+input", "dave-adv"),  # no discriminator to give the input to
        ("reading-nonsense", "dave"),
        ("tune-lr-9", "neumf"),
        ("reading-mean", None),
    ):
        with pytest.raises(ConfigError):
            studies.sweep_job(p, "ml-100k", point, 0, model)


def test_the_readings_parameters_are_validated(fresh_params):
    p = fresh_params
    p["readings"]["grid"]["scaling"]["bad"] = {"reduction": "halved"}
    p["readings"]["grid"]["scaling"]["odd"] = {"no_such_key": 1}
    p["readings"]["grid"]["scaling"]["partial"] = {"reduction": "sum"}
    p["profiles"]["quick"]["readings_grid"]["discriminator_input"] = ["default", "embedding"]
    p["readings"]["as_written"] = "missing"
    p["readings"]["tuning"]["neumf"]["fast"] = {"lr": -1.0}
    with pytest.raises(ConfigError) as exc:
        config.validate_params(p)
    text = str(exc.value)
    assert "readings.grid.scaling.odd.no_such_key" in text
    assert "readings.grid.scaling.bad (model dave).reduction" in text
    assert "readings.as_written" in text
    assert "readings.tuning.neumf.fast.lr" in text
    # a point that sets only part of the scaling would change meaning with the defaults
    assert "readings.grid.scaling.partial: sets reduction but not loss_weights" in text
    assert "profiles.quick.readings_grid.discriminator_input: 'default' and 'embedding'" in text


def _history(hr: float, ndcg: float, best: int = 2) -> dict:
    return {
        "best_epoch": best,
        "best_valid": hr,
        "epochs_run": best + 1,
        "train_seconds": 10.0,
        "history": [
            {"epoch": e, "valid/hr@10": hr - 0.01 * (best - e), "valid/ndcg@10": ndcg}
            for e in range(best + 1)
        ],
    }


@pytest.fixture()
def readings_workspace(tmp_path, monkeypatch, fresh_params):
    """Every point of the paper grid with a train.json and a metrics.json whose test numbers
    rank the points in the reverse order of their validation numbers."""
    monkeypatch.chdir(tmp_path)
    p = _paper(fresh_params)
    points = studies.readings_points(p, "ml-100k")
    for i, x in enumerate(points):
        x.rd.mkdir(parents=True, exist_ok=True)
        (x.rd / "train.json").write_text(json.dumps(_history(0.5 + 0.001 * i, 0.3)))
        job = studies.sweep_job(p, "ml-100k", x.point, x.seed, x.model)
        (x.rd / "train.manifest.json").write_text(json.dumps({"params": job}))
        test = {"sampled": {"hr@10": 0.9 - 0.001 * i, "ndcg@10": 0.6}}
        (x.rd / "metrics.json").write_text(json.dumps(test))
    return p, points


def test_the_selection_reads_validation_numbers_only(readings_workspace, monkeypatch):
    p, points = readings_workspace
    opened: list[str] = []
    real_open = builtins.open

    def guarded(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        name = str(file)
        opened.append(name)
        if "metrics.json" in name or "test" in Path(name).name or "ranks" in name:
            raise AssertionError(f"the selection opened a test-split file: {name}")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)
    valid = summaries.readings_validation(p, "ml-100k")
    chosen = summaries.select_readings(valid, summaries.select_metric(p))
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(io, "open", real_open)
    # the training records only: each point's history and the manifest that says what trained it
    assert opened and all(name.endswith(("train.json", "train.manifest.json")) for name in opened)
    # per model, the last point of its grid has the best validation number (and the worst test)
    last = {x.model: x.point for x in points}
    assert chosen == last
    # a selection that peeked at test numbers would have chosen the first points instead
    for x in points:
        (x.rd / "metrics.json").unlink()
    again = summaries.select_readings(
        summaries.readings_validation(p, "ml-100k"), summaries.select_metric(p)
    )
    assert again == chosen


def test_the_selection_breaks_ties_on_validation_ndcg_then_grid_order():
    valid = pd.DataFrame(
        {
            "model": ["dave"] * 3,
            "point": ["reading-a", "reading-b", "reading-c"],
            "seed": [0, 0, 0],
            "hr@10": [0.8, 0.8, 0.8],
            "ndcg@10": [0.5, 0.6, 0.6],
        }
    )
    assert summaries.select_readings(valid, "hr@10") == {"dave": "reading-b"}


def test_the_summary_marks_the_selected_and_the_as_written_readings(readings_workspace, tmp_path):
    p, points = readings_workspace
    paths = summaries.write_summary("readings", p, "ml-100k")
    table = pd.read_csv(paths[0])
    assert len(table) == len(points)
    assert table.groupby("model")["selected"].sum().eq(1).all()
    written = table[table["as_written"]]
    assert set(written["model"]) == {"dave", "dave-adv", "dave-aae"}
    assert (written["scaling"] == p["readings"]["as_written"]).all()
    assert set(written["discriminator_input"].fillna("none")) <= {"embedding", "none"}
    assert set(table["kind"]) == {"reading", "tuning"}
    tuned = table[table["kind"] == "tuning"]
    assert tuned["scaling"].isna().all() and tuned["setting"].str.contains("lr").all()
    metrics = json.loads(paths[1].read_text())
    assert (
        metrics["dave"]["selected"]
        == table.loc[table["selected"] & (table["model"] == "dave"), "point"].item()
    )
    fig = readings_figure(table, "ml-100k")
    assert len(fig.axes) == 2 * 3  # (HR@10, NDCG@10) × (DAVE, DAVE-adv, DAVE+aae)
    titles = {ax.get_title() for ax in fig.axes}
    assert titles == {"DAVE", "DAVE-adv", "DAVE+aae"}
    # each as-written bar is hatched in a colour that shows (a hatch takes the edge colour)
    from matplotlib.colors import to_rgba

    hatched = [b for ax in fig.axes for b in ax.patches if b.get_hatch()]
    assert len(hatched) == 2 * len(written)
    assert all(to_rgba(b.get_edgecolor()) != to_rgba(b.get_facecolor()) for b in hatched)


def test_the_quick_profile_reuses_its_main_runs(fresh_params):
    points = studies.readings_points(fresh_params, "ml-100k")
    assert points and all(x.default and x.rd.parts[1] == "runs" for x in points)
    assert {x.model for x in points} == {"dave", "dave-adv", "dave-aae"}
    # its one point keeps each model's own discriminator input, and says which that is
    models = fresh_params["models"]
    for x in points:
        assert x.point == "reading-default"
        own = models[x.model]["discriminator_input"]
        assert x.setting["discriminator_input"] == (
            own if models[x.model]["regularizer"] == "adversarial" else None
        )
    assert studies.sweep_job(fresh_params, "ml-100k", "reading-default", 0, "dave") == (
        config.job_config(fresh_params, "ml-100k", "dave", 0)
    )
    with pytest.raises(ConfigError, match="no discriminator input 'embedding\\+input'"):
        studies.sweep_job(fresh_params, "ml-100k", "reading-default+input", 0, "dave")


def test_the_readings_summary_can_read_committed_records_under_another_root(
    readings_workspace, monkeypatch
):
    """`dave report readings --runs-root results/readings-runs`: the points' records are read
    from there (their manifest names them as inputs), the summary is written to results/."""
    import shutil

    from dave_repro.stages import reports as report_stages

    p, points = readings_workspace
    records = Path("results/readings-runs")
    for x in points:  # move every record: nothing may be read from results/runs or sweep-runs
        dest = records / x.rd.relative_to("results")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(x.rd, dest)
    monkeypatch.setattr(report_stages, "execute", lambda stage, work, force: work(None) or stage)
    captured = {}
    real_stage = report_stages.Stage

    def stage(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        captured.update(kwargs)
        return real_stage(*args, **kwargs)

    monkeypatch.setattr(report_stages, "Stage", stage)
    csv, _ = report_stages.summary("readings", p, "ml-100k", runs_root=records)
    table = pd.read_csv(csv)
    assert csv == Path("results/readings/ml-100k.csv") and len(table) == len(points)
    assert all(str(i).startswith("results/readings-runs/") for i in captured["inputs"])
    assert captured["params"]["runs_root"] == "results/readings-runs"
    with pytest.raises(ConfigError, match="only the readings summary"):
        report_stages.summary("sweeps", p, "ml-100k", runs_root=records)


def test_progress_lists_missing_points_and_selects_only_complete_models(readings_workspace):
    """`dave report readings --progress`: while the grid runs, a model with a missing point
    selects nothing (a partial grid would select among what happened to finish first); a
    complete model selects exactly what the summary would."""
    import shutil

    p, points = readings_workspace
    dave = [x for x in points if x.model == "dave"]
    shutil.rmtree(dave[-1].rd)  # one of DAVE's points has not run yet
    text = summaries.readings_progress(p, "ml-100k")
    assert f"| dave | `{dave[-1].point}` | " in text and "not run yet" in text
    assert f"| dave | {len(dave) - 1} of {len(dave)} | waits for 1 more point(s) |" in text
    complete = [x for x in points if x.model == "dave-adv"]
    best = complete[-1].point  # validation rises with the grid's order in this workspace
    assert f"| dave-adv | {len(complete)} of {len(complete)} | `{best}` |" in text
    assert not Path("results/readings").exists()  # a view: nothing written


def test_a_record_filed_under_another_point_is_refused(readings_workspace):
    """A run copied to the wrong point's folder (or one trained before a default changed) would
    enter the selection as that point: its manifest's parameters must be the point's."""
    import shutil

    p, points = readings_workspace
    a, b = [x for x in points if x.model == "dave-adv" and not x.default][:2]
    for name in ("train.json", "train.manifest.json"):
        shutil.copy(a.rd / name, b.rd / name)
    with pytest.raises(DataFormatError, match=f"another configuration than dave-adv {b.point}"):
        summaries.readings_validation(p, "ml-100k")
    with pytest.raises(DataFormatError, match="differs in model_params"):
        summaries.readings_progress(p, "ml-100k")
    (b.rd / "train.manifest.json").unlink()
    with pytest.raises(DataFormatError, match=f"cannot tell what trained {b.point}"):
        summaries.readings_validation(p, "ml-100k")
