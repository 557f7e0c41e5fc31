"""Parameters are validated before any work: every problem listed with its key path."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from dave_repro import config, plan
from dave_repro.errors import ConfigError


def problems(p: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        config.validate_params(p)
    return exc.value.problems


def test_shipped_params_are_valid(params):
    config.validate_params(params)
    assert plan.grid(params) == [
        ("ml-100k", m, 0) for m in ("dave", "dave-adv", "dave-aae", "itempop")
    ]


def test_every_problem_is_listed_with_its_key_path(fresh_params):
    p = fresh_params
    p["hparams"]["ml-100k"]["negative_ratio"] = 0
    p["models"]["dave"]["embedding_dim"] = -1
    p["models"]["dave"]["lr"] = "fast"
    p["models"]["dave"]["colour"] = "blue"
    p["datasets"] = ["ml-100k", "netflix"]
    p["profiles"]["quick"]["seeds"] = [0, 0]
    p["train"]["device"] = "tpu"
    out = problems(p)
    expected = [
        "hparams.ml-100k.negative_ratio: 0 is below the minimum 1",
        "models.dave.embedding_dim: -1 is below the minimum 1",
        "models.dave.lr: expected a number",
        "models.dave.colour: unknown key",
        "datasets[1]: unknown value 'netflix'",
        "profiles.quick.seeds: duplicate entry 0",
        "train.device: expected auto, cpu, cuda or cuda:N",
    ]
    for e in expected:
        assert any(x.startswith(e) for x in out), (e, out)
    assert len(out) == len(expected)


def test_unknown_model_and_profile(fresh_params):
    p = fresh_params
    p["profiles"]["quick"]["models"] = ["dave", "bert4rec"]
    p["profile"] = "fast"
    out = problems(p)
    assert any("profiles.quick.models[1]: unknown value 'bert4rec'" in x for x in out)
    p["profiles"]["quick"]["models"] = ["dave"]
    assert any("profile: unknown profile 'fast'" in x for x in problems(p))


def test_unknown_model_family(fresh_params):
    fresh_params["models"]["dave"]["family"] = "transformer"
    assert any("models.dave.family: unknown model family" in x for x in problems(fresh_params))


def test_job_config_fills_dataset_settings(params):
    job = config.job_config(params, "ml-1m", "dave", 1)
    assert job["model_params"]["negative_ratio"] == 3 and job["model_params"]["batch_size"] == 256
    job = config.job_config(params, "yelp", "dave-adv", 0)
    assert job["model_params"]["embedding_dim"] == 32 and job["model_params"]["batch_size"] == 128
    with pytest.raises(ConfigError, match="unknown model"):
        config.job_config(params, "ml-1m", "gru4rec", 0)


def test_a_dataset_can_change_a_model_on_that_dataset_only(fresh_params):
    """hparams.<dataset>.models: e.g. decoder_sample on ml-1m, where an exact epoch costs too
    much on a CPU; a readings point still sets its own parameters on top of it."""
    p = fresh_params
    p["hparams"]["ml-1m"]["models"] = {"dave": {"decoder_sample": 0.25, "lr": 3.0e-4}}
    config.validate_params(p)  # valid
    on_1m = config.job_config(p, "ml-1m", "dave", 0)["model_params"]
    on_100k = config.job_config(p, "ml-100k", "dave", 0)["model_params"]
    assert (on_1m["decoder_sample"], on_1m["lr"]) == (0.25, 3.0e-4)
    assert on_100k == config.job_config(fresh_params, "ml-100k", "dave", 0)["model_params"]
    assert on_100k["decoder_sample"] == p["models"]["dave"]["decoder_sample"]
    point = config.job_config(p, "ml-1m", "dave", 0, overrides={"lr": 1.0e-3})["model_params"]
    assert (point["decoder_sample"], point["lr"]) == (0.25, 1.0e-3)
    p["hparams"]["ml-1m"]["models"] = {"dave": {"decoder_sample": 0.5, "no_such_param": 1}}
    p["hparams"]["yelp"]["models"] = {"neumf": {"lr": -1.0}}
    text = "\n".join(problems(p))
    assert "hparams.ml-1m.models.dave.no_such_param: not a parameter of model dave" in text
    assert "hparams.yelp.models.neumf.lr" in text
    p["hparams"]["yelp"]["models"] = {"ghost": {"lr": 1.0}}
    assert any("hparams.yelp.models.ghost" in x for x in problems(p))
    del p["hparams"]["yelp"]["models"]
    p["hparams"]["ml-1m"]["models"] = {"dave": {"decoder_sample": 2.0}}
    assert any("hparams.ml-1m.models.dave.decoder_sample" in x for x in problems(p))


def test_a_dataset_can_run_fewer_seeds_of_a_model(fresh_params):
    """profiles.<p>.dataset_seeds: the slowest models on a large dataset, a subset only."""
    p = fresh_params
    p["datasets"] = ["ml-100k", "ml-1m"]
    prof = p["profiles"]["paper"]
    prof["dataset_seeds"] = {"ml-1m": {"dave": [0], "dave-adv": [0, 2]}}
    p["profile"] = "paper"
    config.validate_params(p)
    jobs = plan.grid(p)
    assert [s for d, m, s in jobs if (d, m) == ("ml-1m", "dave")] == [0]
    assert [s for d, m, s in jobs if (d, m) == ("ml-1m", "dave-adv")] == [0, 2]
    assert [s for d, m, s in jobs if (d, m) == ("ml-100k", "dave")] == prof["seeds"]
    assert [s for d, m, s in jobs if (d, m) == ("ml-1m", "neumf")] == prof["seeds"]
    assert len(jobs) == 2 * len(prof["models"]) * len(prof["seeds"]) - 3
    prof["dataset_seeds"] = {"ml-1m": {"dave": [7], "itempop": [0]}}
    prof["models"] = [m for m in prof["models"] if m != "itempop"]
    text = "\n".join(problems(p))
    assert "profiles.paper.dataset_seeds.ml-1m.dave: seeds [7] are not the profile's" in text
    assert "profiles.paper.dataset_seeds.ml-1m.itempop: itempop is not one of the profile's" in text


def test_cli_refuses_bad_params_before_any_work(tmp_path, fresh_params):
    fresh_params["hparams"]["ml-100k"]["embedding_dim"] = -1
    fresh_params["models"]["dave"]["d_steps"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(fresh_params))
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", "data", "ml-100k"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "2 problem(s)" in proc.stderr
    assert "hparams.ml-100k.embedding_dim" in proc.stderr and "models.dave.d_steps" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing was created


def test_cli_unknown_dataset_is_a_clear_error(tmp_path, params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", "download", "movielens"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown dataset 'movielens'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_yaml_syntax_error(tmp_path):
    (tmp_path / "params.yaml").write_text("profile: [unclosed\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", "check-params"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr
