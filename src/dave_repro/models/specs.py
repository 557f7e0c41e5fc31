"""Model families, each declared once in its own module, read here without importing torch.

A family's module (``models/<module>.py``) holds, beside its ``Recommender`` class, one
top-level ``FAMILY = Family(...)``: the schema of its ``params.yaml`` entries, the class, whether
its prediction reads the interaction vectors, the display names of its models and its row in the
paper's tables. Validating params.yaml and parsing the Snakefile must stay fast and torch-free,
so :func:`declarations` reads each module's source and evaluates only its constant top-level
assignments (``UPPER_CASE = <expression>``) over this module's vocabulary; nothing of the module
runs. Adding a model is therefore one module plus one ``params.yaml`` entry (docs/extending.md).

``null`` for ``embedding_dim``, ``batch_size`` or ``negative_ratio`` means "the dataset's paper
setting" (``hparams.<dataset>``, Section 4.1.4).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import DaveError
from ..schema import Bool, Float, Int, List, Map, Spec, Str

MODELS_DIR = Path(__file__).resolve().parent

# -- the vocabulary of declarations ------------------------------------------------------------
POSITIVE = Float(min=0.0, exclusive_min=True)
SHARE = Float(min=0.0, max=1.0)
WIDTHS = List(Int(min=1), min_len=1)  # hidden widths, at least one layer
POSITIVE_INTS = List(Int(min=1), min_len=0)  # hidden widths, possibly none
EPOCH_PASSES = Int(min=1)  # passes over the training data that one trainer epoch makes
ACTIVATION_NAMES = ("tanh", "relu", "sigmoid")

# Fields whose null means "take the dataset's paper setting".
DATASET_SETTINGS = ("embedding_dim", "batch_size", "negative_ratio")


def dataset_setting(min_value: int = 1) -> Int:
    """An integer whose null means the dataset's paper setting (``hparams.<dataset>``)."""
    return Int(min=min_value, nullable=True)


@dataclass(frozen=True)
class Family:
    """One model family, declared once in its module: what params.yaml's entries of the family
    are checked against (``schema``; the ``family`` key is added), the ``Recommender`` class the
    registry builds, whether the noise study can corrupt its inputs, the display names of its
    models, and where its rows go in the paper's tables (``order``; the paper's own rows are
    0-11, ours and a user's come after them)."""

    name: str
    schema: Map
    cls: str
    reads_vectors: (
        bool  # its prediction reads the interaction vectors (Section 4.2.2 corrupts them)
    )
    models: dict[str, str]  # model name -> display name
    order: int = 100
    module: str = ""  # models/<module>.py, filled in by declarations()

    @property
    def params_schema(self) -> Spec:
        return Map({"family": Str(choices=(self.name,)), **self.schema.fields})


VOCABULARY: dict[str, Any] = {
    "Bool": Bool,
    "Float": Float,
    "Int": Int,
    "List": List,
    "Map": Map,
    "Str": Str,
    "Family": Family,
    "dataset_setting": dataset_setting,
    "POSITIVE": POSITIVE,
    "SHARE": SHARE,
    "WIDTHS": WIDTHS,
    "POSITIVE_INTS": POSITIVE_INTS,
    "EPOCH_PASSES": EPOCH_PASSES,
    "ACTIVATION_NAMES": ACTIVATION_NAMES,
}


class DeclarationError(DaveError):
    pass


def _sibling(node: ast.ImportFrom) -> str | None:
    """``from .avb import X`` in a model module: the sibling module's name, else None."""
    return node.module if node.level == 1 and node.module and "." not in node.module else None


def constants(path: Path) -> dict[str, Any]:
    """The constant top-level ``UPPER_CASE`` assignments of the model module at ``path``,
    evaluated in order over the vocabulary and the constants it imports from sibling modules. An
    assignment that needs anything else (torch, a class of the module) is not a constant and is
    left out."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError) as exc:
        raise DeclarationError(f"models/{path.name}: cannot be read ({exc})") from None
    space: dict[str, Any] = dict(VOCABULARY)
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (sib := _sibling(node)) and sib != "specs":
            if (path.parent / f"{sib}.py").is_file():
                theirs = constants(path.parent / f"{sib}.py")
                for alias in node.names:
                    if alias.name in theirs:
                        space[alias.asname or alias.name] = theirs[alias.name]
            continue
        target, value = _assignment(node)
        if target is None or not target.isupper():
            continue
        try:
            space[target] = found[target] = _value(value, space)
        except NameError:
            if target == "FAMILY":
                raise
            continue
    return found


def _value(node: ast.expr, space: dict[str, Any]) -> Any:
    """A declaration's value from its syntax tree: literals, names of ``space``, calls of them
    with literal arguments, dicts (with ``**``), lists, tuples and one-loop dict comprehensions.
    Nothing else is interpreted (no eval: a declaration cannot run code), so anything else makes
    the assignment a non-constant (NameError)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in space:
            raise NameError(node.id)
        return space[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand, space)
    if isinstance(node, ast.Tuple | ast.List):
        items = [_value(e, space) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:  # {**other}
                out.update(_value(v, space))
            else:
                out[_value(k, space)] = _value(v, space)
        return out
    if isinstance(node, ast.DictComp) and len(node.generators) == 1:
        gen = node.generators[0]
        if isinstance(gen.target, ast.Name) and not gen.ifs and not gen.is_async:
            return {
                _value(node.key, inner): _value(node.value, inner)
                for item in _value(gen.iter, space)
                for inner in ({**space, gen.target.id: item},)
            }
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        func = _value(node.func, space)
        args = [_value(a, space) for a in node.args]
        kwargs = {k.arg: _value(k.value, space) for k in node.keywords if k.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise NameError("**kwargs in a call")
        return func(*args, **kwargs)
    raise NameError(f"{type(node).__name__} is not interpreted in a declaration")


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (target.id, node.value) if isinstance(target, ast.Name) else (None, None)
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return node.target.id, node.value
    return None, None


def declarations(models_dir: Path = MODELS_DIR) -> dict[str, Family]:
    """Every family declared under ``models/``, by name, in table order (then by name)."""
    found: dict[str, Family] = {}
    for path in sorted(models_dir.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "specs":
            continue
        try:
            fam = constants(path).get("FAMILY")
        except (NameError, TypeError) as exc:
            raise DeclarationError(
                f"models/{path.name}: its FAMILY declaration cannot be read without importing "
                f"the module ({exc}); build it from models/specs.py's vocabulary "
                f"({', '.join(sorted(VOCABULARY))}) and constants of sibling modules"
            ) from None
        if fam is None:  # not a family's module (base, nets, ...)
            continue
        if not isinstance(fam, Family):
            raise DeclarationError(f"models/{path.name}: FAMILY is not a specs.Family")
        if fam.name in found:
            raise DeclarationError(
                f"models/{path.name}: family {fam.name!r} is already declared in "
                f"models/{found[fam.name].module}.py"
            )
        found[fam.name] = replace(fam, module=path.stem)
    _check_models(found)
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def _check_models(found: dict[str, Family]) -> None:
    owner: dict[str, str] = {}
    for fam in found.values():
        for model in fam.models:
            if model in owner:
                raise DeclarationError(
                    f"model name {model!r} is declared by families {owner[model]!r} and "
                    f"{fam.name!r}"
                )
            owner[model] = fam.name


FAMILIES: dict[str, Family] = declarations()

# Derived: every known model name with its display name, in the tables' order; the baselines.
DISPLAY = {m: name for fam in FAMILIES.values() for m, name in fam.models.items()}
MODEL_FAMILY = {m: f for f, fam in FAMILIES.items() for m in fam.models}
OWN = ("dave", "itempop")  # the paper's own models and our floor; every other family is a baseline
BASELINES = tuple(m for m, f in MODEL_FAMILY.items() if f not in OWN)
DAVE_MODELS = tuple(FAMILIES["dave"].models)
PAPER_ORDER = [m for m in DISPLAY if m != "itempop"]
READS_INTERACTION_VECTORS = {f for f, fam in FAMILIES.items() if fam.reads_vectors}
