"""Parsers for every source format, each checking the schema and values it relies on.

The fast path hands the file to pandas' C parser with typed columns. If that fails for any
reason, a line-by-line scan finds the first offending line and raises
:class:`~dave_repro.errors.DataFormatError` naming the file, the line and the reason; no reader
ever returns a partial table.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError

# Column kinds: nonnegative integer, integer, number, non-empty token.
KINDS = {
    "uint": re.compile(r"\d+"),
    "int": re.compile(r"-?\d+"),
    "float": re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"),
    "token": re.compile(r"[^\s]+"),
}
DTYPES = {"uint": "int64", "int": "int64", "float": "float64", "token": "string"}
Columns = Sequence[tuple[str, str]]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFormatError(path, "is a directory, not a file") from None


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(path, f"not valid {encoding} text", line) from None


def scan_lines(path: Path, text: str, sep: str, columns: Columns, first_line: int = 1) -> None:
    """Raise for the first line that does not have ``columns`` (the slow, precise check)."""
    n = len(columns)
    for i, line in enumerate(text.split("\n"), start=first_line):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) != n:
            raise DataFormatError(path, f"expected {n} fields separated by {sep!r}, found {len(fields)}", i)
        for (name, kind), value in zip(columns, fields, strict=True):
            if not KINDS[kind].fullmatch(value.strip()):
                what = {"uint": "a nonnegative integer", "int": "an integer", "float": "a number",
                        "token": "a non-empty value"}[kind]
                raise DataFormatError(path, f"column {name!r} must be {what}, found {value!r}", i)


def read_delimited(
    path: str | Path,
    sep: str,
    columns: Columns,
    *,
    header: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a headerless (or exactly-headed) delimited file with typed, validated columns."""
    path = Path(path)
    data = _read_bytes(path)
    text = _decode(path, data, encoding)
    first_line = 1
    if header is not None:
        head, _, text = text.partition("\n")
        if head.rstrip("\r").split(sep) != list(header):
            raise DataFormatError(path, f"header must be {sep.join(header)!r}, found {head!r}", 1)
        first_line = 2
    if not text.strip():
        raise DataFormatError(path, "no data rows")
    parse_text = text
    parse_sep = sep
    if len(sep) > 1:  # multi-character separators: the C parser needs one character
        if "\t" in text:
            scan_lines(path, text, sep, columns, first_line)
        parse_text, parse_sep = text.replace(sep, "\t"), "\t"
    try:
        df = pd.read_csv(
            io.StringIO(parse_text), sep=parse_sep, header=None, names=[c for c, _ in columns],
            dtype={c: DTYPES[k] for c, k in columns}, engine="c", na_filter=False,
            skip_blank_lines=True, quoting=3,
        )
    except (ValueError, pd.errors.ParserError, OverflowError) as exc:
        scan_lines(path, text, sep, columns, first_line)
        raise DataFormatError(path, f"could not be parsed ({exc})") from None
    for c, k in columns:
        if k == "uint" and len(df) and (df[c] < 0).any():
            scan_lines(path, text, sep, columns, first_line)
        if k == "token" and len(df) and (df[c].str.len() == 0).any():
            scan_lines(path, text, sep, columns, first_line)
    # Whole-file sanity: the C parser can accept a value the scan would reject (e.g. "1 2").
    if len(df) != sum(1 for ln in text.split("\n") if ln.strip()):
        scan_lines(path, text, sep, columns, first_line)
        raise DataFormatError(path, "row count does not match the number of non-blank lines")
    return df


INTERACTIONS = [("user", "uint"), ("item", "uint"), ("rating", "float"), ("timestamp", "uint")]


def read_movielens_100k(path: str | Path) -> pd.DataFrame:
    """``u.data``: user \\t item \\t rating \\t timestamp."""
    return read_delimited(path, "\t", INTERACTIONS)


def read_movielens_1m(path: str | Path) -> pd.DataFrame:
    """``ratings.dat``: UserID::MovieID::Rating::Timestamp."""
    return read_delimited(path, "::", INTERACTIONS, encoding="latin-1")


def read_rating_tsv(path: str | Path) -> pd.DataFrame:
    """NCF/eALS/APR ``*.rating``: user \\t item \\t rating \\t timestamp."""
    return read_delimited(path, "\t", INTERACTIONS)


def read_amazon_ratings(path: str | Path) -> pd.DataFrame:
    """Amazon 2018 ratings-only CSV: item,user,rating,timestamp."""
    return read_delimited(path, ",", [("item", "token"), ("user", "token"), ("rating", "float"),
                                      ("timestamp", "uint")])


def read_adjacency(path: str | Path) -> pd.DataFrame:
    """LightGCN ``train.txt``/``test.txt``: ``user item item …`` per line, space-separated."""
    path = Path(path)
    text = _decode(path, _read_bytes(path), "utf-8")
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for i, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        fields = line.split()
        bad = next((f for f in fields if not KINDS["uint"].fullmatch(f)), None)
        if bad is not None:
            raise DataFormatError(path, f"ids must be nonnegative integers, found {bad!r}", i)
        ids = np.asarray(fields, dtype=np.int64)
        items.append(ids[1:])
        users.append(np.full(len(ids) - 1, ids[0], dtype=np.int64))
    if not users:
        raise DataFormatError(path, "no data rows")
    return pd.DataFrame({"user": np.concatenate(users), "item": np.concatenate(items)})


LATEST_HEADER = ["user_idx", "user_id", "ncf_item", "movie_id", "rating", "timestamp", "resolution",
                 "candidate_movie_ids"]


def read_latest_items(path: str | Path) -> pd.DataFrame:
    """The ml-1m latest-item file: one row per user; returns (user, item, timestamp) rows.

    A row resolved to one MovieID gives one row. An ambiguous row gives one row per candidate,
    all at the latest timestamp, so the split's seeded tie-break decides between them.
    """
    path = Path(path)
    text = _decode(path, _read_bytes(path), "utf-8")
    lines = text.split("\n")
    if lines[0].rstrip("\r").split("\t") != LATEST_HEADER:
        raise DataFormatError(path, f"header must be {chr(9).join(LATEST_HEADER)!r}", 1)
    rows: list[tuple[int, int, int]] = []
    for i, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        f = line.split("\t")
        if len(f) != len(LATEST_HEADER):
            raise DataFormatError(path, f"expected {len(LATEST_HEADER)} fields, found {len(f)}", i)
        rec = dict(zip(LATEST_HEADER, f, strict=True))
        for key in ("user_id", "timestamp"):
            if not KINDS["uint"].fullmatch(rec[key]):
                raise DataFormatError(path, f"column {key!r} must be a nonnegative integer, found {rec[key]!r}", i)
        if rec["resolution"] in ("unique", "caser_latest"):
            if not KINDS["uint"].fullmatch(rec["movie_id"]):
                raise DataFormatError(path, f"column 'movie_id' must be a MovieID, found {rec['movie_id']!r}", i)
            movies = [int(rec["movie_id"])]
        elif rec["resolution"] == "ambiguous":
            cands = [c for c in rec["candidate_movie_ids"].split(";") if c]
            if not cands or not all(KINDS["uint"].fullmatch(c) for c in cands):
                raise DataFormatError(path, "an ambiguous row needs ';'-separated candidate MovieIDs", i)
            movies = [int(c) for c in cands]
        else:
            raise DataFormatError(path, f"unknown resolution {rec['resolution']!r}", i)
        rows.extend((int(rec["user_id"]), m, int(rec["timestamp"])) for m in movies)
    if not rows:
        raise DataFormatError(path, "no data rows")
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])
