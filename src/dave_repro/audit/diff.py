"""Say precisely how two versions of an artifact differ: which key, column, row, array, tensor,
line or byte, with both values. Used by ``dave audit --rerun``."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

MAX_ITEMS = 8
TEXT_SUFFIXES = (
    ".md",
    ".csv",
    ".tsv",
    ".txt",
    ".data",
    ".dat",
    ".yaml",
    ".yml",
    ".rating",
    ".item",
    ".user",
)


def _short(v: Any, n: int = 60) -> str:
    if type(v).__module__ == "numpy" and hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        v = v.item()  # 144, not np.int32(144)
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def values_diff(a: Any, b: Any, path: str = "", ignore: frozenset[str] = frozenset()) -> list[str]:
    """Every differing leaf of two JSON-like values, as ``path: recorded → rerun``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k in ignore:
                continue
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p}: absent → {_short(b[k])}")
            elif k not in b:
                out.append(f"{p}: {_short(a[k])} → absent")
            else:
                out.extend(values_diff(a[k], b[k], p, ignore))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} entries → {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in values_diff(x, y, f"{path}[{i}]", ignore)
        ]
    same = a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )
    return [] if same else [f"{path or '(value)'}: {_short(a)} → {_short(b)}"]


def _json(a: bytes, b: bytes, ignore: frozenset[str]) -> list[str]:
    return values_diff(json.loads(a), json.loads(b), ignore=ignore)


def _frame(a: bytes, b: bytes) -> list[str]:
    import pandas as pd

    x, y = pd.read_parquet(io.BytesIO(a)), pd.read_parquet(io.BytesIO(b))
    if list(x.columns) != list(y.columns):
        return [f"columns {list(x.columns)} → {list(y.columns)}"]
    if len(x) != len(y):
        return [f"{len(x)} rows → {len(y)}"]
    out = []
    for col in x.columns:
        if str(x[col].dtype) != str(y[col].dtype):
            out.append(f"column {col}: dtype {x[col].dtype} → {y[col].dtype}")
            continue
        neq = ~((x[col] == y[col]) | (x[col].isna() & y[col].isna()))
        if neq.any():
            i = int(neq.to_numpy().nonzero()[0][0])
            out.append(
                f"column {col}: {int(neq.sum())} of {len(x)} rows differ, first row {i}: "
                f"{_short(x[col].iloc[i])} → {_short(y[col].iloc[i])}"
            )
    return out


def _arrays(x: Any, y: Any, name: str) -> list[str]:
    import numpy as np

    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype != y.dtype:
        return [f"{name}: {x.dtype}{list(x.shape)} → {y.dtype}{list(y.shape)}"]
    neq = x != y
    if x.dtype.kind == "f":
        neq &= ~(np.isnan(x) & np.isnan(y))
    if not neq.any():
        return []
    idx = tuple(int(i) for i in np.argwhere(neq)[0])
    detail = f"{int(neq.sum())} of {x.size} entries differ, first at {list(idx)}: {_short(x[idx])} → {_short(y[idx])}"
    if x.dtype.kind == "f":
        detail += (
            f", max |difference| {float(np.nanmax(np.abs(x.astype(float) - y.astype(float)))):.3g}"
        )
    return [f"{name}: {detail}"]


def _npz(a: bytes, b: bytes) -> list[str]:
    import numpy as np

    x, y = np.load(io.BytesIO(a), allow_pickle=False), np.load(io.BytesIO(b), allow_pickle=False)
    if sorted(x.files) != sorted(y.files):
        return [f"arrays {sorted(x.files)} → {sorted(y.files)}"]
    return [d for k in sorted(x.files) for d in _arrays(x[k], y[k], k)]


def _torch(a: bytes, b: bytes) -> list[str]:
    import torch

    x = torch.load(io.BytesIO(a), map_location="cpu", weights_only=True)
    y = torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    return _tensors(x, y, "")


def _tensors(x: Any, y: Any, path: str) -> list[str]:
    import torch

    if isinstance(x, dict) and isinstance(y, dict):
        if set(x) != set(y):
            return [f"{path or '(top)'}: keys {sorted(map(str, x))} → {sorted(map(str, y))}"]
        return [
            d
            for k in sorted(x, key=str)
            for d in _tensors(x[k], y[k], f"{path}.{k}" if path else str(k))
        ]
    if isinstance(x, list | tuple) and isinstance(y, list | tuple) and len(x) == len(y):
        return [
            d
            for i, (u, v) in enumerate(zip(x, y, strict=True))
            for d in _tensors(u, v, f"{path}[{i}]")
        ]
    if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
        return _arrays(
            x.detach().float().numpy() if x.dtype == torch.bfloat16 else x.detach().numpy(),
            y.detach().float().numpy() if y.dtype == torch.bfloat16 else y.detach().numpy(),
            path,
        )
    return values_diff(x, y, path)


def _text(a: bytes, b: bytes) -> list[str]:
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for i, (u, v) in enumerate(zip(la, lb, strict=False), 1):
        if u != v:
            return [f"line {i}: {_short(u, 120)} → {_short(v, 120)}"]
    if len(la) != len(lb):
        return [f"{len(la)} lines → {len(lb)}"]
    return []


def describe(name: str, a: bytes, b: bytes, ignore: frozenset[str] = frozenset()) -> list[str]:
    """How ``b`` (rerun) differs from ``a`` (recorded), in content terms; [] when the content is
    the same (the bytes may still differ, e.g. in file metadata or in ignored keys)."""
    if a == b:
        return []
    suffix = Path(name).suffix
    readers = {
        ".json": lambda: _json(a, b, ignore),
        ".parquet": lambda: _frame(a, b),
        ".npz": lambda: _npz(a, b),
        ".pt": lambda: _torch(a, b),
    }
    try:
        if suffix in readers:
            diffs = readers[suffix]()
        elif suffix in TEXT_SUFFIXES:
            diffs = _text(a, b)
        else:
            diffs = None
    except Exception as exc:  # an unreadable version is itself the difference
        diffs = [f"cannot compare contents ({type(exc).__name__}: {exc})"]
    if diffs is None:
        first = next(
            (i for i, (u, v) in enumerate(zip(a, b, strict=False)) if u != v), min(len(a), len(b))
        )
        diffs = [f"{len(a)} bytes → {len(b)} bytes, first difference at byte {first}"]
    if len(diffs) > MAX_ITEMS:
        diffs = [*diffs[:MAX_ITEMS], f"… and {len(diffs) - MAX_ITEMS} more"]
    return diffs
