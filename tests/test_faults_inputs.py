"""Fault class: malformed input files.

Every parser in ``data/readers.py`` is fuzzed (random bytes, truncated real-format files, wrong
column counts, non-integer ids, bad timestamps, bad encodings): the only exception allowed is
``DataFormatError`` naming the file (and the offending line where there is one), and a table is
returned only when every row satisfies the schema. The preprocess stage fed such a file stops
with that error and writes nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import tiny_params
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dave_repro import config
from dave_repro.data import readers, synthetic
from dave_repro.errors import DataFormatError
from dave_repro.stages import data as stages

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INT64_MAX = np.iinfo(np.int64).max

# name -> (reader, separator, the columns a valid row has, encoding, id columns)
Reader = Callable[[Path], pd.DataFrame]
DELIMITED: dict[str, tuple[Reader, str, list[tuple[str, str]], str]] = {
    "ml-100k u.data": (readers.read_movielens_100k, "\t", readers.INTERACTIONS, "utf-8"),
    "ml-1m ratings.dat": (readers.read_movielens_1m, "::", readers.INTERACTIONS, "latin-1"),
    "*.rating": (readers.read_rating_tsv, "\t", readers.INTERACTIONS, "utf-8"),
    "amazon csv": (
        readers.read_amazon_ratings,
        ",",
        [("item", "token"), ("user", "token"), ("rating", "float"), ("timestamp", "uint")],
        "utf-8",
    ),
}
ALL_READERS: dict[str, Reader] = {
    **{k: v[0] for k, v in DELIMITED.items()},
    "adjacency": readers.read_adjacency,
    "latest items": readers.read_latest_items,
}


def valid_line(sep: str, columns: list[tuple[str, str]], i: int) -> str:
    values = {
        "uint": str(i + 1),
        "int": str(-i),
        "float": f"{(i % 5) + 1}.0",
        "token": f"T{i:05d}",
    }
    fields = [
        values[kind] if name != "timestamp" else str(880_000_000 + i) for name, kind in columns
    ]
    return sep.join(fields)


def check_outcome(reader: Reader, path: Path, n_lines: int) -> pd.DataFrame | None:
    """Run ``reader``: a schema-valid table, or DataFormatError naming ``path`` and a real line."""
    try:
        df = reader(path)
    except DataFormatError as exc:
        assert exc.path == str(path)
        assert str(path) in str(exc)
        if exc.line is not None:
            assert 1 <= exc.line <= max(n_lines, 1)
            assert f"line {exc.line}" in str(exc)
        return None
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    for col in df.columns:
        if col in ("user", "item", "timestamp") and pd.api.types.is_integer_dtype(df[col].dtype):
            assert (df[col] >= 0).all(), col
    return df


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- random bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_READERS))
@FUZZ
@given(data=st.binary(max_size=400))
@example(data=b"")
@example(data=b"\n\n\r\n")
@example(data=b"\xff\xfe\x00")
@example(data=b"1\t2\t3\t99999999999999999999999\n")
@example(data=b"1 2 99999999999999999999999\n")
@example(data=b"1\t2\tnan\t4\n")
@example(data=b"1\t2\tinf\t4\n")
@example(data=b"1\t2\t3\t4\x00\n")
@example(data=b"\xd9\xa3\t2\t3\t4\n")  # an Arabic-Indic digit: not an ASCII id
def test_random_bytes_give_a_table_or_a_data_format_error(fuzz_dir, name, data):
    path = fuzz_dir / f"{name.replace(' ', '_').replace('*', 'x')}.txt"
    path.write_bytes(data)
    check_outcome(ALL_READERS[name], path, data.count(b"\n") + 1)


@pytest.mark.parametrize("name", sorted(ALL_READERS))
@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("0123456789\t:, -.eE\n\rxA;")), max_size=300))
def test_random_near_format_text(fuzz_dir, name, text):
    """Text over the formats' own alphabet reaches deeper than random bytes."""
    path = fuzz_dir / f"near-{name.replace(' ', '_').replace('*', 'x')}.txt"
    path.write_text(text, encoding="utf-8", newline="")
    check_outcome(ALL_READERS[name], path, text.count("\n") + 1)


# -- truncated real-format files ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DELIMITED))
@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated_file_never_crashes_and_keeps_only_complete_rows(fuzz_dir, name, cut):
    reader, sep, columns, encoding = DELIMITED[name]
    full = "".join(valid_line(sep, columns, i) + "\n" for i in range(60)).encode(encoding)
    data = full[: cut % (len(full) + 1)]
    path = fuzz_dir / f"trunc-{name.replace(' ', '_').replace('*', 'x')}.txt"
    path.write_bytes(data)
    df = check_outcome(reader, path, data.count(b"\n") + 1)
    complete = data.count(b"\n")
    if df is not None:
        # every complete line, plus at most the cut last line when what is left of it is a valid row
        assert complete <= len(df) <= complete + 1
        expected = pd.read_csv(
            io.StringIO(full.decode(encoding).replace(sep, "\t")),
            sep="\t",
            header=None,
            names=[c for c, _ in columns],
        )
        head = expected.iloc[:complete].reset_index(drop=True)
        got = df.iloc[:complete].reset_index(drop=True)
        for c, kind in columns:
            if kind in ("uint", "int"):
                assert (got[c].to_numpy() == head[c].to_numpy()).all()
    else:
        # only a cut inside the last line (or an empty file) can make the file invalid
        assert complete == 0 or not data.endswith(b"\n")


def adjacency_text(n: int) -> str:
    return "".join(
        f"{u} " + " ".join(str(u * 7 + k) for k in range(1 + u % 4)) + "\n" for u in range(n)
    )


def latest_text(n: int) -> str:
    rows = ["\t".join(readers.LATEST_HEADER)]
    for u in range(n):
        if u % 5 == 4:
            rows.append(f"{u}\t{u + 1}\t\t\t5\t{978300000 + u}\tambiguous\t{u + 10};{u + 11}")
        else:
            rows.append(f"{u}\t{u + 1}\t{u}\t{u + 10}\t5\t{978300000 + u}\tunique\t")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    "name,make", [("adjacency", adjacency_text), ("latest items", latest_text)]
)
@FUZZ
@given(cut=st.integers(min_value=0, max_value=5_000))
def test_truncated_line_based_files(fuzz_dir, name, make, cut):
    full = make(30).encode()
    data = full[: cut % (len(full) + 1)]
    path = fuzz_dir / f"trunc-{name.replace(' ', '_')}.txt"
    path.write_bytes(data)
    check_outcome(ALL_READERS[name], path, data.count(b"\n") + 1)


# -- one bad line in an otherwise valid file: the error names exactly that line ---------------

BAD_FIELDS = {
    "too few columns": lambda fields: fields[:-1],
    "too many columns": lambda fields: [*fields, "7"],
    "non-integer id": lambda fields: ["u17", *fields[1:]],
    "float id": lambda fields: [fields[0], "3.5", *fields[2:]],
    "negative id": lambda fields: ["-4", *fields[1:]],
    "empty id": lambda fields: ["", *fields[1:]],
    "timestamp not a number": lambda fields: [*fields[:-1], "2001-09-09"],
    "negative timestamp": lambda fields: [*fields[:-1], "-880000000"],
    "timestamp past int64": lambda fields: [*fields[:-1], str(INT64_MAX + 1)],
    "fractional timestamp": lambda fields: [*fields[:-1], "880000000.5"],
}


TOKEN_IDS = {"non-integer id", "float id", "negative id"}  # any non-empty token is an Amazon id
BAD_LINE_CASES = [
    (name, fault)
    for name in sorted(DELIMITED)
    for fault in sorted(BAD_FIELDS)
    if not (name == "amazon csv" and fault in TOKEN_IDS)
]


@pytest.mark.parametrize("name,fault", BAD_LINE_CASES)
@pytest.mark.parametrize("where", [1, 7, 30])
def test_one_bad_line_is_named_exactly(tmp_path, name, fault, where):
    reader, sep, columns, encoding = DELIMITED[name]
    lines = [valid_line(sep, columns, i) for i in range(30)]
    fields = lines[where - 1].split(sep)
    lines[where - 1] = sep.join(BAD_FIELDS[fault](fields))
    path = tmp_path / "f.txt"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    with pytest.raises(DataFormatError) as exc:
        reader(path)
    assert exc.value.line == where, str(exc.value)
    assert exc.value.path == str(path)


@pytest.mark.parametrize("name", ["ml-100k u.data", "*.rating", "amazon csv"])
@pytest.mark.parametrize("where", [1, 12])
def test_invalid_utf8_is_named_with_its_line(tmp_path, name, where):
    reader, sep, columns, _ = DELIMITED[name]
    lines = [valid_line(sep, columns, i).encode() for i in range(20)]
    lines[where - 1] = lines[where - 1][:2] + b"\xe9\xff" + lines[where - 1][2:]
    path = tmp_path / "f.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataFormatError, match="not valid utf-8 text") as exc:
        reader(path)
    assert exc.value.line == where


def test_utf16_file_is_refused_at_line_1(tmp_path):
    path = tmp_path / "u.data"
    path.write_bytes("1\t2\t3\t880000000\n".encode("utf-16"))
    with pytest.raises(DataFormatError) as exc:
        readers.read_movielens_100k(path)
    assert exc.value.line == 1


@pytest.mark.parametrize(
    "text,line,reason",
    [
        ("1 2 3\n4 x\n", 2, "nonnegative integers"),
        ("1 2 3\n4 99999999999999999999\n", 2, "too large"),
        ("1 2 3\n\n\n5 -1\n", 4, "nonnegative integers"),
    ],
)
def test_adjacency_bad_line(tmp_path, text, line, reason):
    path = tmp_path / "train.txt"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=reason) as exc:
        readers.read_adjacency(path)
    assert exc.value.line == line


@pytest.mark.parametrize(
    "mutate,line,reason",
    [
        (lambda rows: rows.__setitem__(0, "user\titem"), 1, "header"),
        (lambda rows: rows.__setitem__(3, rows[3] + "\textra"), 4, "expected 8 fields"),
        (
            lambda rows: rows.__setitem__(2, rows[2].replace("unique", "maybe")),
            3,
            "unknown resolution",
        ),
        (
            lambda rows: rows.__setitem__(2, rows[2].replace("\t978300001\t", "\tyesterday\t")),
            3,
            "timestamp",
        ),
        (
            lambda rows: rows.__setitem__(
                2, rows[2].replace("\t978300001\t", "\t99999999999999999999\t")
            ),
            3,
            "too large",
        ),
        (lambda rows: rows.__setitem__(5, rows[5].replace("14;15", "14;x")), 6, "candidate"),
    ],
)
def test_latest_items_bad_line(tmp_path, mutate, line, reason):
    rows = latest_text(10).rstrip("\n").split("\n")
    mutate(rows)
    path = tmp_path / "latest.tsv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=reason) as exc:
        readers.read_latest_items(path)
    assert exc.value.line == line


def test_missing_file_and_directory_are_named(tmp_path):
    for reader in ALL_READERS.values():
        with pytest.raises(DataFormatError, match="file not found"):
            reader(tmp_path / "nope.txt")
        with pytest.raises(DataFormatError, match="is a directory"):
            reader(tmp_path)


# -- the preprocess stage fed a malformed file writes nothing -----------------------------------


@pytest.fixture()
def downloaded(tmp_path, monkeypatch, params):
    """A workspace whose ml-100k source was downloaded (generated data), ready to preprocess."""
    monkeypatch.chdir(tmp_path)
    sums = synthetic.write_mirror(tmp_path / "mirror", "ml-100k", n_users=40, n_items=120)
    monkeypatch.setenv("DAVE_DATA_MIRROR", str(tmp_path / "mirror"))
    p = tiny_params(params, sums)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    stages.download(config.dataset_config(p, "ml-100k"))
    return tmp_path, p


def _corrupt_source(ws: Path, p: dict, line: int, replacement: bytes) -> dict:
    """Corrupt one line of the mirror's u.data and pin its new checksum (as a user would)."""
    src = ws / "mirror/ml-100k/u.data"
    lines = src.read_bytes().split(b"\n")
    lines[line - 1] = replacement
    data = b"\n".join(lines)
    src.write_bytes(data)
    p["data"]["checksums"]["ml-100k/u.data"] = "sha256:" + hashlib.sha256(data).hexdigest()
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return p


@pytest.mark.parametrize(
    "replacement,reason",
    [
        (b"3\t17\t4", "expected 4 fields"),
        (b"3\tseventeen\t4\t880000000", "column 'item' must be a nonnegative integer"),
        (b"3\t17\t4\t88e7", "column 'timestamp' must be a nonnegative integer"),
        (b"3\t17\t4\t\xff\xfe", "not valid utf-8 text"),
    ],
)
def test_preprocess_of_a_malformed_source_writes_nothing(downloaded, replacement, reason):
    ws, p = downloaded
    p = _corrupt_source(ws, p, 25, replacement)
    stages.download(config.dataset_config(p, "ml-100k"))
    env = {**os.environ, "DAVE_PARAMS": str(ws / "params.yaml")}
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", "preprocess", "ml-100k"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert f"data/raw/ml-100k/u.data, line 25: {reason}" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = ws / "data/processed/ml-100k"
    assert not out.exists() or not any(out.iterdir())


def test_preprocess_failure_keeps_the_previous_complete_outputs(downloaded):
    ws, p = downloaded
    cfg = config.dataset_config(p, "ml-100k")
    stages.preprocess(cfg)
    out = ws / "data/processed/ml-100k"
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    p = _corrupt_source(ws, p, 3, b"1\t2")
    cfg = config.dataset_config(p, "ml-100k")
    stages.download(cfg)
    with pytest.raises(DataFormatError) as exc:
        stages.preprocess(cfg)
    assert exc.value.line == 3
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
