"""A small declarative validator: every problem is collected with its key path.

Why not stop at the first error: a user editing params.yaml should see all mistakes at once,
before any work starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml


def _tname(v: Any) -> str:
    return "null" if v is None else type(v).__name__


class Spec:
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        raise NotImplementedError

    def __call__(self, value: Any, path: str, errors: list[str]) -> None:
        if value is None:
            if not self.nullable:
                errors.append(f"{path or TOP}: must not be null")
            return
        if path:
            self.check(value, path, errors)
        else:
            self._check_top(value, errors)

    def _check_top(self, value: Any, errors: list[str]) -> None:
        """The document itself: its problems are named "(top level)", its keys by their name."""
        found: list[str] = []
        self.check(value, "", found)
        errors.extend(e if not e.startswith(": ") else TOP + e for e in found)


TOP = "(top level)"


@dataclass
class Int(Spec):
    min: int | None = None
    max: int | None = None
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {_tname(value)} {value!r}")
            return
        if self.min is not None and value < self.min:
            errors.append(f"{path}: {value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            errors.append(f"{path}: {value} is above the maximum {self.max}")


@dataclass
class Float(Spec):
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {_tname(value)} {value!r}")
            return
        if value != value or value in (float("inf"), float("-inf")):
            errors.append(f"{path}: must be finite, got {value!r}")
            return
        if self.min is not None:
            if self.exclusive_min and value <= self.min:
                errors.append(f"{path}: {value} must be greater than {self.min}")
            elif not self.exclusive_min and value < self.min:
                errors.append(f"{path}: {value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            errors.append(f"{path}: {value} is above the maximum {self.max}")


@dataclass
class Bool(Spec):
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {_tname(value)} {value!r}")


@dataclass
class Str(Spec):
    choices: Iterable[str] | None = None
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {_tname(value)} {value!r}")
            return
        if self.choices is not None and value not in tuple(self.choices):
            errors.append(
                f"{path}: unknown value {value!r} (expected one of {sorted(self.choices)})"
            )


@dataclass
class List(Spec):
    item: Spec
    min_len: int = 0
    unique: bool = False
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {_tname(value)} {value!r}")
            return
        if len(value) < self.min_len:
            errors.append(
                f"{path}: needs at least {self.min_len} entr{'y' if self.min_len == 1 else 'ies'}"
            )
        for i, v in enumerate(value):
            self.item(v, f"{path}[{i}]", errors)
        if self.unique:
            seen: set[Any] = set()
            for v in value:
                key = repr(v)
                if key in seen:
                    errors.append(f"{path}: duplicate entry {v!r}")
                seen.add(key)


@dataclass
class Map(Spec):
    """A mapping with known keys; unknown keys are errors."""

    fields: Mapping[str, Spec]
    required: Iterable[str] | None = None  # None: every field is required
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {_tname(value)} {value!r}")
            return
        required = set(self.fields) if self.required is None else set(self.required)
        for k in value:
            if k not in self.fields:
                errors.append(
                    f"{join(path, k)}: unknown key (allowed: {', '.join(sorted(self.fields))})"
                )
        for k, spec in self.fields.items():
            if k in value:
                spec(value[k], join(path, k), errors)
            elif k in required:
                errors.append(f"{join(path, k)}: missing")


@dataclass
class DictOf(Spec):
    """A mapping with free keys (optionally restricted, or shaped by ``key_pattern``) and one
    value spec."""

    value: Spec | Callable[[str], Spec]
    keys: Iterable[str] | None = None
    nullable: bool = False
    key_pattern: str | None = None

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {_tname(value)} {value!r}")
            return
        allowed = None if self.keys is None else set(self.keys)
        for k, v in value.items():
            if allowed is not None and k not in allowed:
                errors.append(
                    f"{join(path, str(k))}: unknown key (allowed: {', '.join(sorted(allowed))})"
                )
                continue
            if self.key_pattern is not None and not (
                isinstance(k, str) and re.fullmatch(self.key_pattern, k)
            ):
                errors.append(
                    f"{join(path, str(k))}: invalid name {k!r} (allowed: {self.key_pattern})"
                )
                continue
            spec = self.value if isinstance(self.value, Spec) else self.value(k)
            spec(v, join(path, str(k)), errors)


@dataclass
class Custom(Spec):
    fn: Callable[[Any, str, list[str]], None] = field(default=lambda v, p, e: None)
    nullable: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        self.fn(value, path, errors)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that also reports a key given twice in one mapping (YAML keeps the
    last silently, so an edit could be ignored without a word)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool):
            continue
        if key in seen:
            loader.duplicates.append(
                f"line {key_node.start_mark.line + 1}: key {key!r} given twice"
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse YAML safely (no object construction); return the document and any duplicate keys."""
    loader = _StrictLoader(text)
    loader.duplicates = []  # type: ignore[attr-defined]
    try:
        return loader.get_single_data(), loader.duplicates  # type: ignore[attr-defined]
    finally:
        loader.dispose()
