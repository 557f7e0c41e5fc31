"""Parsers for every source format, each checking the schema and values it relies on.

The fast path reads the columns as text with pyarrow's CSV reader, checks every value against
its kind with one vectorised match, and converts strictly. If anything is in doubt, the exact
line-by-line scan decides: it raises :class:`~dave_repro.errors.DataFormatError` naming the file,
the first offending line and the reason, or (for files only the fast path disliked, e.g. blank
lines holding spaces) returns the same table the fast path would. No reader ever returns a
partial table or accepts a value the scan would reject.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import DataFormatError

# Column kinds: nonnegative integer, integer, number, non-empty token. Written with explicit
# ASCII classes so that Python's re (the scan) and RE2 (the fast path) agree on every string.
SPACE = " \t\r\f\v"  # stripped around a value, by both paths
KINDS = {
    "uint": re.compile(r"[0-9]+"),
    "int": re.compile(r"-?[0-9]+"),
    "float": re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?"),
    "token": re.compile(r"[^ \t\n\r\f\v]+"),
}
WHAT = {
    "uint": "a nonnegative integer",
    "int": "an integer",
    "float": "a number",
    "token": "a non-empty value",
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Columns = Sequence[tuple[str, str]]


def value_problem(kind: str, value: str) -> str | None:
    """Why ``value`` is not of ``kind`` (None when it is): shape, then range."""
    if not KINDS[kind].fullmatch(value):
        return f"must be {WHAT[kind]}"
    if kind in ("uint", "int") and len(value) > 18 and not INT64_MIN <= int(value) <= INT64_MAX:
        return "is too large for a 64-bit integer"
    if kind == "float" and not math.isfinite(float(value)):
        return "must be a finite number"
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFormatError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise DataFormatError(path, f"could not be read ({exc.strerror or exc})") from None


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
            raise DataFormatError(
                path, f"expected {n} fields separated by {sep!r}, found {len(fields)}", i
            )
        for (name, kind), value in zip(columns, fields, strict=True):
            problem = value_problem(kind, value.strip(SPACE))
            if problem is not None:
                raise DataFormatError(path, f"column {name!r} {problem}, found {value!r}", i)


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
    if len(sep) > 1:  # multi-character separators: the CSV reader needs one character
        if "\t" in text:
            scan_lines(path, text, sep, columns, first_line)
        parse_text, parse_sep = text.replace(sep, "\t"), "\t"
    df = _parse_fast(
        parse_text, parse_sep, columns, sum(1 for ln in text.split("\n") if ln.strip())
    )
    if df is None:
        scan_lines(path, text, sep, columns, first_line)  # raises for the first offending line
        df = _parse_scanned(text, sep, columns)
    return df


def _convert(kind: str, values: list[str] | pa.ChunkedArray) -> np.ndarray | pd.Series:
    if kind in ("uint", "int"):
        return np.asarray(
            pc.cast(values, pa.int64())
            if isinstance(values, pa.ChunkedArray)
            else [int(v) for v in values],
            dtype=np.int64,
        )
    if kind == "float":
        return np.asarray(
            pc.cast(values, pa.float64())
            if isinstance(values, pa.ChunkedArray)
            else [float(v) for v in values],
            dtype=np.float64,
        )
    if isinstance(values, pa.ChunkedArray):
        return values.to_pandas().astype("string")
    return pd.Series(values, dtype="string")


def _parse_fast(text: str, sep: str, columns: Columns, rows: int) -> pd.DataFrame | None:
    """All columns as text, every value checked against its kind, then converted; None in doubt."""
    names = [c for c, _ in columns]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=sep,
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if (
        table.num_rows != rows
    ):  # e.g. a lone "\r", which pyarrow ends a row at and the scan does not
        return None
    out: dict[str, np.ndarray | pd.Series] = {}
    for c, kind in columns:
        values = pc.utf8_trim(table[c], characters=SPACE)
        if not pc.all(pc.match_substring_regex(values, f"^(?:{KINDS[kind].pattern})$")).as_py():
            return None
        try:
            out[c] = _convert(kind, values)
        except (pa.ArrowInvalid, OverflowError):  # e.g. an integer past int64
            return None
        if kind == "float" and not np.isfinite(out[c]).all():
            return None
    return pd.DataFrame(out)


def _parse_scanned(text: str, sep: str, columns: Columns) -> pd.DataFrame:
    """The table of a file the scan accepted (the fast path's result, computed line by line)."""
    cells: list[list[str]] = [[] for _ in columns]
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.strip():
            for j, value in enumerate(line.split(sep)):
                cells[j].append(value.strip(SPACE))
    return pd.DataFrame({c: _convert(kind, cells[j]) for j, (c, kind) in enumerate(columns)})


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
    return read_delimited(
        path,
        ",",
        [("item", "token"), ("user", "token"), ("rating", "float"), ("timestamp", "uint")],
    )


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
        for f in fields:
            problem = value_problem("uint", f)
            if problem is not None:
                what = (
                    "ids must be nonnegative integers" if "must be" in problem else f"id {problem}"
                )
                raise DataFormatError(path, f"{what}, found {f!r}", i)
        ids = np.asarray(fields, dtype=np.int64)
        items.append(ids[1:])
        users.append(np.full(len(ids) - 1, ids[0], dtype=np.int64))
    if not users or not sum(len(x) for x in items):
        raise DataFormatError(path, "no data rows (no line lists a user and an item)")
    return pd.DataFrame({"user": np.concatenate(users), "item": np.concatenate(items)})


LATEST_HEADER = [
    "user_idx",
    "user_id",
    "ncf_item",
    "movie_id",
    "rating",
    "timestamp",
    "resolution",
    "candidate_movie_ids",
]


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
            problem = value_problem("uint", rec[key])
            if problem is not None:
                raise DataFormatError(path, f"column {key!r} {problem}, found {rec[key]!r}", i)
        if rec["resolution"] in ("unique", "caser_latest"):
            if value_problem("uint", rec["movie_id"]) is not None:
                raise DataFormatError(
                    path, f"column 'movie_id' must be a MovieID, found {rec['movie_id']!r}", i
                )
            movies = [int(rec["movie_id"])]
        elif rec["resolution"] == "ambiguous":
            cands = [c for c in rec["candidate_movie_ids"].split(";") if c]
            if not cands or any(value_problem("uint", c) is not None for c in cands):
                raise DataFormatError(
                    path, "an ambiguous row needs ';'-separated candidate MovieIDs", i
                )
            movies = [int(c) for c in cands]
        else:
            raise DataFormatError(path, f"unknown resolution {rec['resolution']!r}", i)
        rows.extend((int(rec["user_id"]), m, int(rec["timestamp"])) for m in movies)
    if not rows:
        raise DataFormatError(path, "no data rows")
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


# -- one reader per source form (named by the form's ``reader`` in data/registry.py) ----------
# Each turns the form's downloaded files into rows of (user, item[, timestamp]) with the
# source's own ids, and says what else the form's reading found.


def read_form_movielens_100k(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return read_movielens_100k(raw / "u.data"), {}


def read_form_movielens_1m(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return read_movielens_1m(raw / "ratings.dat"), {}


def read_form_pairs_plus_latest(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """ml-1m's equivalent form: every user-movie pair, plus each user's latest movie."""
    pairs = pd.concat(
        [read_adjacency(raw / "pairs_train.txt"), read_adjacency(raw / "pairs_test.txt")],
        ignore_index=True,
    )
    pairs = pairs + 1  # the LightGCN files hold UserID-1 and MovieID-1
    latest = read_latest_items(raw / "latest.tsv")
    merged = pairs.merge(latest, on=["user", "item"], how="left")
    unmatched = latest.merge(pairs, on=["user", "item"], how="left", indicator=True)
    unmatched = unmatched[unmatched["_merge"] == "left_only"]
    # A candidate of an ambiguous row that the user never rated is simply not a candidate.
    resolved_users = set(latest["user"]) - set(merged.loc[merged["timestamp"].notna(), "user"])
    if resolved_users:
        raise DataFormatError(
            raw / "latest.tsv",
            f"latest item of user(s) {sorted(resolved_users)[:5]} is not among their pairs",
        )
    return merged, {"latest_rows_not_in_pairs": int(len(unmatched))}


def read_form_yelp_eals(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return read_rating_tsv(raw / "yelp.rating"), {}


def read_form_yelp_apr_split(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    parts = [read_rating_tsv(raw / n) for n in ("yelp.train.rating", "yelp.test.rating")]
    return pd.concat(parts, ignore_index=True), {}


def read_form_amazon_ratings(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return read_amazon_ratings(raw / "Digital_Music.csv"), {}


def read_form_pinterest_ncf(raw: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    names = ("pinterest-20.train.rating", "pinterest-20.test.rating")
    df = pd.concat([read_rating_tsv(raw / n) for n in names], ignore_index=True)
    df["timestamp"] = pd.NA  # Pinterest has no timestamps (its files hold 0)
    return df, {}
