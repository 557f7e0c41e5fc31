"""A stage's code hash: the package modules it imports (its import closure), normalised.

A stage names its root modules (``provenance.STAGE_ROOTS``, plus the family's module for a model
stage); every ``import`` of a package module in them, at any depth and also inside functions
(the lazy imports of torch-using code), is followed. Each module enters the hash as its syntax
tree without docstrings, so formatting, comments and docstrings never re-key a run, while a
changed line of code re-keys exactly the stages whose closure holds its module. A module that
cannot be found is an error, never an empty hash.

The same functions hash a commit's source without checking it out (``dave audit``): they read
through a ``read(path) -> bytes | None`` callable over package-relative paths.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Iterable

from .errors import DaveError

PACKAGE = "dave_repro"
Reader = Callable[[str], bytes | None]


class MissingModule(DaveError):
    pass


def _module_path(parts: list[str], read: Reader) -> str | None:
    """``a/b.py`` or ``a/b/__init__.py`` for the module ``a.b`` of the package, if it exists."""
    if not parts:
        return "__init__.py" if read("__init__.py") is not None else None
    for rel in ("/".join(parts) + ".py", "/".join([*parts, "__init__.py"])):
        if read(rel) is not None:
            return rel
    return None


def _package_of(rel: str) -> list[str]:
    parts = rel.split("/")
    return parts[:-1]  # a/b.py -> [a]; a/__init__.py -> [a]


def imports(rel: str, tree: ast.AST, read: Reader, *, parents: bool = True) -> set[str]:
    """The package modules ``rel`` imports (as paths), anywhere in its code; with ``parents``
    also the packages' ``__init__.py`` files that importing them runs."""
    found: set[str] = set()

    def need(parts: list[str], what: str) -> None:
        path = _module_path(parts, read)
        if path is None:
            raise MissingModule(f"{rel}: imports {what}, which is not a module of {PACKAGE}")
        found.add(path)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head, *rest = alias.name.split(".")
                if head == PACKAGE:
                    need(rest, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                head, *rest = (node.module or "").split(".")
                if head != PACKAGE:
                    continue
                base = rest
            else:
                pkg = _package_of(rel)
                up = node.level - 1
                if up > len(pkg):
                    raise MissingModule(f"{rel}: a relative import climbs out of {PACKAGE}")
                base = pkg[: len(pkg) - up] + (node.module.split(".") if node.module else [])
            need(base, "." * node.level + (node.module or ""))
            for alias in node.names:  # `from . import atomic`: a submodule, if it is one
                sub = _module_path([*base, alias.name], read)
                if sub is not None:
                    found.add(sub)
    # importing a.b.c runs a/__init__.py and a/b/__init__.py first
    for path in list(found) if parents else []:
        parts = path.split("/")[:-1]
        for i in range(len(parts) + 1):
            init = "/".join([*parts[:i], "__init__.py"])
            if read(init) is not None:
                found.add(init)
    found.discard(rel)
    return found


def normalised(source: bytes, rel: str) -> str:
    """The module's syntax tree without docstrings: what it computes, not how it is written."""
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as exc:
        raise DaveError(f"{rel}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def closure(roots: Iterable[str], read: Reader) -> dict[str, str]:
    """Every module reachable from ``roots`` (package-relative paths) and its normalised form."""
    todo, seen = list(roots), {}
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        source = read(rel)
        if source is None:
            raise MissingModule(f"{rel}: no such module in {PACKAGE}")
        seen[rel] = normalised(source, rel)
        tree = ast.parse(source, filename=rel)
        todo.extend(imports(rel, tree, read) - seen.keys())
    return seen


def closure_hash(roots: Iterable[str], read: Reader) -> tuple[str, list[str]]:
    """sha256 over (path, normalised module) of the closure, in path order; and the paths."""
    mods = closure(roots, read)
    h = hashlib.sha256()
    for rel in sorted(mods, key=lambda r: tuple(r.split("/"))):
        h.update(rel.encode() + b"\0" + mods[rel].encode() + b"\0")
    return h.hexdigest(), sorted(mods)
