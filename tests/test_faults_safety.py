"""Fault class: hostile files and strings.

Checkpoints, split matrices, parameter files and downloaded data are loaded without executing
code; no shell command is built from a user-controlled string. Checked two ways: the source
itself (every ``torch.load`` has ``weights_only=True``; no pickle, eval, ``shell=True``,
``os.system``; every Snakemake shell placeholder is a constrained wildcard or a quoted value),
and hostile files planted where the pipeline reads (nothing they carry runs).
"""

from __future__ import annotations

import ast
import json
import os
import re
import string
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO
from faults import root_logging_restored
from hypothesis import given, settings
from hypothesis import strategies as st

from dave_repro import cli, config
from dave_repro.data.dataset import load_split
from dave_repro.errors import CheckpointError, ConfigError, DataFormatError
from dave_repro.layout import run_dir
from dave_repro.stages.evaluate import evaluate as evaluate_stage
from dave_repro.stages.train import train as train_stage

SRC = REPO / "src" / "dave_repro"
SAFE = set(string.ascii_letters + string.digits + "._-")

# call targets that execute code from data, or run a shell
FORBIDDEN_CALLS = {
    "os.system",
    "os.popen",
    "os.execl",
    "os.execlp",
    "os.execv",
    "os.execvp",
    "os.spawnl",
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "dill.load",
    "dill.loads",
    "joblib.load",
    "yaml.load",
    "yaml.unsafe_load",
    "yaml.full_load",
    "yaml.load_all",
    "pd.read_pickle",
    "pandas.read_pickle",
    "torch.jit.load",
    "eval",
    "exec",
    "__import__",
    "compile",
}
FORBIDDEN_IMPORTS = {"pickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}


@pytest.fixture(autouse=True)
def _logging_restored():
    with root_logging_restored():
        yield


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


def calls() -> list[tuple[str, int, ast.Call]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                out.append((f"{path.relative_to(SRC)}:{node.lineno}", node.lineno, node))
    return out


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_torch_load_uses_weights_only():
    loads = [(where, c) for where, _, c in calls() if dotted(c.func) == "torch.load"]
    assert loads, "no torch.load found: the check looks in the wrong place"
    for where, c in loads:
        value = keyword(c, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, where


def test_no_code_executing_loader_or_shell_in_the_source():
    bad = [
        f"{where}: {dotted(c.func)}" for where, _, c in calls() if dotted(c.func) in FORBIDDEN_CALLS
    ]
    assert bad == []
    for where, _, c in calls():
        name = dotted(c.func)
        if name.startswith("subprocess.") or name in ("Popen", "run", "check_output"):
            shell = keyword(c, "shell")
            assert shell is None or (isinstance(shell, ast.Constant) and shell.value is False), (
                where
            )
            if name.startswith("subprocess.") and c.args:  # an argument list, never a string
                assert isinstance(c.args[0], ast.List | ast.Tuple), where
        if name in ("np.load", "numpy.load"):
            allow = keyword(c, "allow_pickle")
            assert allow is None or (isinstance(allow, ast.Constant) and allow.value is False), (
                where
            )
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not {n.split(".")[0] for n in names} & FORBIDDEN_IMPORTS, path


# -- the Snakemake rules -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, params):
    """The real parsed workflow (rules, shell commands, wildcard constraints)."""
    import shutil

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    root = tmp_path_factory.mktemp("wf")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflow", root / "workflow")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
            wf_api = api.workflow(
                resource_settings=ResourceSettings(), snakefile=Path("Snakefile"), workdir=root
            )
            wf_api.list_rules()
            yield wf_api._workflow
    finally:
        os.chdir(cwd)


PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")


def test_every_shell_placeholder_is_a_constrained_wildcard_or_a_quoted_value(workflow):
    constraints = dict(workflow.wildcard_constraints)
    shells = {r.name: r.shellcmd for r in workflow.rules if r.shellcmd}
    assert {"download", "preprocess", "split", "train", "evaluate", "tables"} <= set(shells)
    for rule, cmd in shells.items():
        for field in PLACEHOLDER.findall(cmd):
            if field.startswith("wildcards."):
                assert field.split(".", 1)[1] in constraints, (rule, field)
            elif field.startswith("params."):
                assert field.endswith(":q"), f"rule {rule}: {{{field}}} must be quoted with :q"
            else:
                assert field in ("log", "threads"), (rule, field)


HOSTILE = st.text(
    alphabet=st.sampled_from(list("ab09-._/ ;|&$`'\"\\()<>*?~!#\n\t") + ["٣", "é"]),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(value=HOSTILE)
def test_wildcard_constraints_admit_only_safe_characters(workflow, value):
    for name, pattern in workflow.wildcard_constraints.items():
        if re.fullmatch(pattern, value):
            assert set(value) <= SAFE, (name, value)


@pytest.mark.parametrize(
    "value", ["0; touch pwned", "$(touch pwned)", "`id`", "0 --force", "٣", "a/../b"]
)
def test_a_target_carrying_shell_syntax_matches_no_rule(workflow, value):
    targets = [
        f"results/runs/ml-100k/{value}/seed-0/model.pt",
        f"results/runs/ml-100k/dave/seed-{value}/metrics.json",
        f"data/processed/{value}/split.json",
        f"data/raw/{value}/manifest.json",
    ]
    for rule in workflow.rules:
        for out in rule.output:
            if hasattr(out, "regex"):
                assert not any(out.regex().match(t) for t in targets), (rule.name, str(out))
    # while the same targets with ordinary names do match (the check looks at the right rules)
    ok = ["results/runs/ml-100k/dave/seed-0/model.pt", "data/processed/ml-100k/split.json"]
    assert all(
        any(
            out.regex().match(t)
            for r in workflow.rules
            for out in r.output
            if hasattr(out, "regex")
        )
        for t in ok
    )


# -- hostile files planted where the pipeline reads ------------------------------------------------


class Payload:
    """Pickling this makes unpickling run ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_checkpoint_is_refused_by_evaluate_and_ignored_by_resume(tiny_workspace, caplog):
    ws = tiny_workspace
    marker = ws / "pwned"
    p = config.load_params(ws / "params.yaml")
    job = config.job_config(p, "ml-100k", "dave", 0)
    train_stage(job, p)
    rd = ws / run_dir("ml-100k", "dave", 0)
    fingerprint = json.loads((rd / "train.manifest.json").read_text())["fingerprint"]
    torch.save({"fingerprint": fingerprint, "model": Payload(marker)}, rd / "model.pt")
    with pytest.raises(CheckpointError, match="model.pt: not a readable checkpoint .*Unpickl"):
        evaluate_stage(job, p)
    assert not marker.exists() and not (rd / "metrics.json").exists()
    # a hostile resume state is not loaded: training starts over and ends normally
    torch.save({"fingerprint": fingerprint, "epoch": 1, "model": Payload(marker)}, rd / "last.pt")
    with caplog.at_level("WARNING"):
        assert train_stage(job, p, force=True) is True
    assert (
        "last.pt: not a readable checkpoint" in caplog.text
        and "starting from scratch" in caplog.text
    )
    assert not marker.exists()


def test_split_matrix_holding_pickled_objects_is_refused(tiny_workspace):
    d = tiny_workspace / "data/processed/ml-100k"
    marker = tiny_workspace / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    with open(d / "train_csr.npz", "wb") as fh:
        np.savez(
            fh,
            format=np.array("csr"),
            data=payload,
            indices=payload,
            indptr=payload,
            shape=np.array([1, 1]),
        )
    with pytest.raises(DataFormatError, match="train_csr.npz: not a readable sparse matrix"):
        load_split(d)
    assert not marker.exists()


def test_params_file_with_python_tags_is_refused_without_running_them(
    tmp_path, capsys, monkeypatch
):
    marker = tmp_path / "pwned"
    (tmp_path / "params.yaml").write_text(
        f"profile: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAVE_PARAMS", raising=False)
    assert cli.main(["check-params"]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML: could not determine a constructor for the tag" in err
    assert not marker.exists()
    with pytest.raises(ConfigError):
        config.load_params(tmp_path / "params.yaml")
    assert not marker.exists()
