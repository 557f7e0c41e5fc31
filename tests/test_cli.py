"""The CLI's arguments are validated like params.yaml's, before any work: a bad value is one
clear line (argparse's usage error, exit 2), never a traceback or a half-made run folder; and
every positional argument and option says what it is in --help."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import yaml

from dave_repro.cli import build_parser


def _actions(parser: argparse.ArgumentParser, path: str = "dave"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_argument_and_option_of_every_command_has_a_help_text():
    found = list(_actions(build_parser()))
    assert len({p for p, _ in found}) > 15  # the subcommands were walked, not just the top
    missing = [f"{p}: {a.dest}" for p, a in found if not (a.help and a.help.strip())]
    assert not missing, missing


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ml-100k", "dave", "-1"], "argument seed: expected a seed (an integer >= 0)"),
        (["train", "ml-100k", "dave", "x"], "argument seed: expected a seed (an integer >= 0)"),
        (["run", "ml-100k", "dave", "0", "--threads", "0"], "expected a number of threads >= 1"),
        (["train", "ml-100k", "dave", "0", "--device", "tpu"], "argument --device"),
        (["train", "ml-100k", "Dave!", "0"], "model: unknown model 'Dave!' (configured: acae"),
        (["evaluate", "ml-100k", "dave", "0", "--profile", "../x"], "not a profile name"),
    ],
)
def test_a_bad_argument_is_one_clear_line_and_nothing_is_made(tmp_path, params, argv, message):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no seed--1/ folders
