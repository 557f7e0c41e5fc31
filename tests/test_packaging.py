"""A non-editable install (what `pip install .` gives a user) carries everything the stages read
at run time: the paper's numbers are package data, the model families are read from the
installed modules' source. Installed from a copy of this checkout into a fresh virtual
environment and run from there, it trains a run and renders the tables, the paper's values
beside ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DAVE_PARAMS", "PYTHONPATH")}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _fresh_venv(root: Path) -> Path:
    """A new virtual environment whose only package is what pip installs into it; the pinned
    dependencies (torch, ...) are found through a path entry to this environment's
    site-packages, whose own .pth files (this checkout's editable install) are not read."""
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def test_a_non_editable_install_in_a_fresh_venv_renders_the_tables(
    tiny_workspace, tmp_path_factory
):
    env_root = tmp_path_factory.mktemp("venv")
    source = tmp_path_factory.mktemp("source")  # a copy: building writes build/ and egg-info
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    python = _fresh_venv(env_root)
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + ["--no-deps", "--no-build-isolation", "--no-index", str(source)],
        source,
    )
    code = "import dave_repro; print(dave_repro.__file__)"
    where = Path(_run([str(python), "-c", code], REPO).strip())
    assert where.is_relative_to(env_root)  # the installed copy, not the checkout's src/
    assert not (where.parent / "__editable__").exists() and (where.parent / "cli.py").is_file()

    params = tiny_workspace / "params.yaml"
    p = yaml.safe_load(params.read_text())
    p["profiles"]["quick"]["models"] = ["itempop"]  # one quick run is enough to render tables
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    dave = [str(env_root / "bin" / "dave")]  # the installed console script
    _run([*dave, "run", "ml-100k", "itempop", "0"], tiny_workspace)
    _run([*dave, "report", "metrics", "ml-100k"], tiny_workspace)
    _run([*dave, "report", "tables"], tiny_workspace)

    table2 = (tiny_workspace / "results/tables/datasets.md").read_text()
    assert "/ 1,682 |" in table2 and "/ 943 |" in table2  # the paper's ml-100k counts
    table4 = (tiny_workspace / "results/tables/table-ml-100k.md").read_text()
    assert "| ItemPop | 1 |" in table4
    assert "the paper's rows without ours): CDAE, APR" in table4  # the paper's rows, from data
