"""A non-editable install (what `pip install .` gives a user) carries everything the stages read
at run time: the paper's numbers are package data, the model families are read from the
installed modules' source. Built from this checkout into a target directory and run from there,
it trains a run and renders the tables, the paper's values beside ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, site: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("DAVE_PARAMS", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_a_non_editable_install_renders_the_tables(tiny_workspace, tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("source")  # a copy: building writes build/ and egg-info
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + ["--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
        check=True,
        cwd=source,
    )
    installed = site / "dave_repro"
    assert not (installed / "__editable__").exists() and (installed / "cli.py").is_file()
    where = _run(
        [sys.executable, "-c", "import dave_repro; print(dave_repro.__file__)"], REPO, site
    )
    assert Path(where.strip()).is_relative_to(site)  # the installed copy, not the checkout's src/

    params = tiny_workspace / "params.yaml"
    p = yaml.safe_load(params.read_text())
    p["profiles"]["quick"]["models"] = ["itempop"]  # one quick run is enough to render tables
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    dave = [sys.executable, "-m", "dave_repro.cli"]
    _run([*dave, "run", "ml-100k", "itempop", "0"], tiny_workspace, site)
    _run([*dave, "report", "metrics", "ml-100k"], tiny_workspace, site)
    _run([*dave, "report", "tables"], tiny_workspace, site)

    table2 = (tiny_workspace / "results/tables/datasets.md").read_text()
    assert "/ 1,682 |" in table2 and "/ 943 |" in table2  # the paper's ml-100k counts
    table4 = (tiny_workspace / "results/tables/table-ml-100k.md").read_text()
    assert "| ItemPop | 1 |" in table4
    assert "the paper's rows without ours): CDAE, APR" in table4  # the paper's rows, from data
