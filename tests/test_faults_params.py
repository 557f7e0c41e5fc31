"""Fault class: bad parameters.

params.yaml is validated before any work, by every command: one error lists every problem with
its key path, the exit code is 2, and the workspace holds nothing new afterwards. (More cases:
tests/test_config.py.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from faults import root_logging_restored

from dave_repro import cli, config, engine
from dave_repro.errors import ConfigError

COMMANDS = [
    ["check-params"],
    ["download", "ml-100k"],
    ["preprocess", "ml-100k"],
    ["split", "ml-100k"],
    ["data", "ml-100k"],
    ["train", "ml-100k", "dave", "0"],
    ["evaluate", "ml-100k", "dave", "0"],
    ["run", "ml-100k", "dave", "0"],
    ["report", "metrics", "ml-100k"],
    ["report", "tables"],
]


@pytest.fixture(autouse=True)
def _logging_restored():
    with root_logging_restored():
        yield


def run_cli(ws: Path, argv: list[str], capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(ws)
    monkeypatch.delenv("DAVE_PARAMS", raising=False)
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


def workspace_files(ws: Path) -> list[str]:
    return sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*"))


def broken(p: dict) -> tuple[dict, list[str]]:
    """Many kinds of mistakes at once, and the exact problem each must produce."""
    p["data"]["split_seed"] = -1
    p["data"]["num_negatives"] = "99"
    p["data"]["min_interactions"] = 2
    p["data"]["ml-100k"]["holdout"] = "oldest"
    p["data"]["yelp"]["dedup_pairs"] = "yes"
    p["hparams"]["yelp"]["batch_size"] = 12.5
    p["evaluation"]["ks"] = [10, 0]
    p["evaluation"]["full_ranking"] = 1
    p["profiles"]["quick"]["train"]["max_epochs"] = 0
    p["profiles"]["quick"]["train"]["select_metric"] = "auc"
    p["profiles"]["quick"]["train"].pop("patience")
    p["models"]["dave"]["lr"] = float("nan")
    p["models"]["dave"]["encoder_hidden"] = [600, -3]
    p["models"]["dave-adv"]["loss_weights"]["prediction"] = 0.0
    p["models"]["lightgcn"] = {"family": "dave"}
    p["train"]["num_threads"] = True
    p["seed"] = 3
    return p, [
        "data.split_seed: -1 is below the minimum 0",
        "data.num_negatives: expected an integer, got str '99'",
        "data.min_interactions: 2 is below the minimum 3",
        "data.ml-100k.holdout: unknown value 'oldest'",
        "data.yelp.dedup_pairs: expected true or false, got str 'yes'",
        "hparams.yelp.batch_size: expected an integer, got float 12.5",
        "evaluation.ks[1]: 0 is below the minimum 1",
        "evaluation.full_ranking: expected true or false, got int 1",
        "profiles.quick.train.max_epochs: 0 is below the minimum 1",
        "profiles.quick.train.select_metric: unknown value 'auc'",
        "profiles.quick.train.patience: missing",
        "models.dave.lr: must be finite, got nan",
        "models.dave.encoder_hidden[1]: -3 is below the minimum 1",
        "models.dave-adv.loss_weights.prediction: 0.0 must be greater than 0.0",
        "models.lightgcn: unknown key",
        "train.num_threads: expected an integer, got bool True",
        "seed: unknown key",
    ]


def test_every_problem_of_every_section_is_listed_with_its_key_path(fresh_params):
    p, expected = broken(fresh_params)
    with pytest.raises(ConfigError) as exc:
        config.validate_params(p)
    problems = exc.value.problems
    for e in expected:
        assert sum(x.startswith(e) for x in problems) == 1, (e, problems)
    assert len(problems) == len(expected), problems
    assert str(exc.value).startswith(f"{len(expected)} problem(s) in params:")


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_refuses_bad_params_before_any_work(
    tmp_path, fresh_params, argv, capsys, monkeypatch
):
    p, expected = broken(fresh_params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    rc, err = run_cli(tmp_path, argv, capsys, monkeypatch)
    assert rc == 2
    assert f"{len(expected)} problem(s) in params.yaml" in err
    assert all(e in err for e in expected)
    assert "Traceback" not in err
    assert workspace_files(tmp_path) == ["params.yaml"]


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "the file is empty"),
        (b"# nothing but a comment\n", "the file is empty"),
        (b"- 1\n- 2\n", "(top level): expected a mapping, got list [1, 2]"),
        (b"profile: [unclosed\n", "not valid YAML"),
        (b"\xff\xfeprofile: quick\n", "not UTF-8 text (byte 0)"),
        (
            b"profile: quick\ndatasets: [ml-100k]\nprofile: paper\n",
            "line 3: key 'profile' given twice",
        ),
    ],
)
def test_unreadable_params_file(tmp_path, content, message, capsys, monkeypatch):
    (tmp_path / "params.yaml").write_bytes(content)
    rc, err = run_cli(tmp_path, ["check-params"], capsys, monkeypatch)
    assert rc == 2 and "1 problem(s) in params.yaml" in err and message in err, err
    assert "Traceback" not in err
    assert workspace_files(tmp_path) == ["params.yaml"]


def test_duplicate_key_deep_in_the_file_is_reported(tmp_path, params, capsys, monkeypatch):
    text = yaml.safe_dump(params, sort_keys=False)
    text = text.replace("    lr: 0.0001\n", "    lr: 0.0001\n    lr: 0.1\n", 1)
    line = text.splitlines().index("    lr: 0.1") + 1
    (tmp_path / "params.yaml").write_text(text)
    rc, err = run_cli(tmp_path, ["check-params"], capsys, monkeypatch)
    assert rc == 2 and f"line {line}: key 'lr' given twice" in err


def test_params_path_that_is_missing_or_a_directory(tmp_path, capsys, monkeypatch):
    rc, err = run_cli(tmp_path, ["check-params"], capsys, monkeypatch)
    assert rc == 2 and "params.yaml: file not found" in err
    (tmp_path / "params.yaml").mkdir()
    rc, err = run_cli(tmp_path, ["check-params"], capsys, monkeypatch)
    assert rc == 2 and "params.yaml: cannot be read (Is a directory)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["quick; touch pwned", "$(touch pwned)", "../up", "a b", ""])
def test_profile_names_that_could_reach_a_shell_are_refused(fresh_params, name):
    fresh_params["profiles"][name] = fresh_params["profiles"]["quick"]
    fresh_params["profile"] = name
    with pytest.raises(ConfigError) as exc:
        config.validate_params(fresh_params)
    assert any(x.startswith(f"profiles.{name}: invalid name {name!r}") for x in exc.value.problems)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["split", "netflix"], "dataset: unknown dataset 'netflix'"),
        (["train", "ml-100k", "dave;touch pwned", "0"], "model: unknown model 'dave;touch pwned'"),
        (["train", "ml-100k", "../../../tmp", "0"], "model: unknown model '../../../tmp'"),
        (["train", "movielens", "bert4rec", "0"], "dataset: unknown dataset 'movielens'"),
        (["run", "ml-100k", "dave", "0", "--profile", "fast"], "profile: unknown profile 'fast'"),
        (["check-params", "--profile", "fast"], "profile: unknown profile 'fast'"),
    ],
)
def test_unknown_names_on_the_command_line(tmp_path, params, argv, message, capsys, monkeypatch):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rc, err = run_cli(tmp_path, argv, capsys, monkeypatch)
    assert rc == 2 and message in err, err
    assert workspace_files(tmp_path) == ["params.yaml"]
    assert "Traceback" not in err
    if "train" in argv:  # both mistakes of one call are listed together
        assert ("2 problem(s)" in err) == (argv[1] == "movielens")


def test_snakemake_config_overrides_are_validated(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(ConfigError, match=r"profile: unknown profile 'fast'"):
        engine.load({**params, "profile": "fast"}, str(path))
    with pytest.raises(ConfigError, match=r"datasets\[0\]: unknown value 'netflix'"):
        engine.load({**params, "datasets": ["netflix"]}, str(path))
    with pytest.raises(ConfigError, match="models: cannot be overridden with --config"):
        engine.load({**params, "models": {}}, str(path))


def test_exit_code_and_single_message_in_a_real_process(tmp_path, fresh_params):
    p, expected = broken(fresh_params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", "run", "ml-100k", "dave", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert f"ERROR   {len(expected)} problem(s) in params.yaml:" in lines[0]
    assert len(lines) == 1 + len(expected)  # the summary, then one line per problem
    assert proc.stdout == "" and workspace_files(tmp_path) == ["params.yaml"]
