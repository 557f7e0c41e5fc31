"""The SLURM profile: valid for Snakemake and the official SLURM executor plugin; a dry run with
it plans every job of the grid with its resources; and jobs submitted through it (to a stand-in
`sbatch` that records each call and runs the job) carry those resources and produce the same
artifacts as a local run."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import REPO, tiny_params
from fake_slurm import install
from test_pipeline import make_project, sh

from dave_repro.data import synthetic

pytestmark = pytest.mark.slow
PROFILE = "workflow/profiles/slurm"


def test_profile_is_valid_for_snakemake_and_the_slurm_plugin():
    from snakemake.cli import get_argument_parser
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    cfg = yaml.safe_load((REPO / PROFILE / "config.yaml").read_text())
    assert cfg["executor"] == "slurm"
    plugin = ExecutorPluginRegistry().get_plugin("slurm")
    assert plugin.name == "slurm"
    options = {o.lstrip("-") for a in get_argument_parser()._actions for o in a.option_strings}
    assert not [k for k in cfg if k not in options], "every profile key is a snakemake option"
    assert {"mem_mb", "runtime"} <= set(cfg["default-resources"])


def _tiny(tmp_path, params, **kw):
    mirror = tmp_path / "mirror"
    sums = synthetic.write_mirror(mirror, "ml-100k", n_users=60, n_items=200)
    root = make_project(tmp_path / "proj", tiny_params(params, sums, epochs=1, studies=False, **kw))
    return root, {"DAVE_DATA_MIRROR": str(mirror), **install(tmp_path / "bin", tmp_path / "slurm")}


def _jobs(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\nrule )", dry_run_output):
        m = re.search(r"^rule (\w+):$", block, re.M)
        r = re.search(r"^\s+resources: (.*)$", block, re.M)
        if m:
            res = dict(kv.split("=", 1) for kv in r.group(1).split(", ")) if r else {}
            jobs.append((m.group(1), res))
    return jobs


def test_dry_run_with_the_profile_plans_every_job_with_its_resources(tmp_path, params):
    root, env = _tiny(tmp_path, params, models=["dave", "dave-adv", "itempop"], seeds=[0, 1])
    dry = sh(root, "snakemake", "--profile", PROFILE, "-n", "results/tables", env=env)
    jobs = _jobs(dry.stdout + dry.stderr)
    counts = {rule: sum(1 for r, _ in jobs if r == rule) for rule, _ in jobs}
    assert counts == {
        "download": 1,
        "preprocess": 1,
        "split": 1,
        "train": 6,
        "evaluate": 6,
        "dataset_metrics": 1,
        "readings_summary": 1,  # Tables 4-8 name each row's reading (here: the main runs)
        "tables": 1,
    }
    for rule, res in jobs:
        assert int(res["mem_mb"]) >= 1000 and int(res["runtime"]) >= 10, (rule, res)
        assert (res.get("gpu") == "1") == (rule == "train"), (rule, res)
    assert not (tmp_path / "slurm" / "sbatch.jsonl").exists(), "a dry run submits nothing"


def test_jobs_submitted_through_the_profile_carry_their_resources(tmp_path, params):
    root, env = _tiny(tmp_path, params, models=["itempop"])
    target = "results/runs/ml-100k/itempop/seed-0/train.json"
    sh(
        root,
        "snakemake",
        "--profile",
        PROFILE,
        "--slurm-init-seconds-before-status-checks",
        "1",
        target,
        env=env,
    )
    calls = [
        json.loads(line)["argv"]
        for line in (tmp_path / "slurm" / "sbatch.jsonl").read_text().splitlines()
    ]
    by_rule = {
        next(a for a in c if a.startswith("rule_")).split("_wildcards")[0][5:]: c for c in calls
    }
    assert sorted(by_rule) == ["download", "preprocess", "split", "train"] and len(calls) == 4

    def opt(call, name):
        return next((call[i + 1] for i, a in enumerate(call) if a == name), None)

    for rule, call in by_rule.items():
        assert opt(call, "--mem") and opt(call, "-t"), (rule, call)
        assert ("--gpus=1" in call) == (rule == "train"), (rule, call)
    train = by_rule["train"]
    assert (opt(train, "--mem"), opt(train, "-t")) == (
        "8000",
        "720",
    ) and "--cpus-per-task=2" in train
    assert opt(by_rule["download"], "--mem") == "1000"
    manifest = json.loads(
        (root / "results/runs/ml-100k/itempop/seed-0/train.manifest.json").read_text()
    )
    assert manifest["stage"] == "train" and manifest["environment"]["torch_threads"] == 2
