"""The package's layering, read from its imports (no torch needed), and code hashes that follow
the code: the import closure of each stage, normalised so that formatting does not count."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dave_repro import codehash, dvcdeps, provenance
from dave_repro.errors import DaveError

PKG = provenance.PACKAGE_DIR
REPO = PKG.parents[1]


def _read(rel: str) -> bytes | None:
    path = PKG / rel
    return path.read_bytes() if path.is_file() else None


def _graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (anywhere in it)."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        out[rel] = codehash.imports(rel, ast.parse(path.read_bytes()), _read, parents=False)
    return out


def _layer(rel: str) -> str:
    return rel.split("/")[0] if "/" in rel else rel.removesuffix(".py")


def test_nothing_below_the_stages_imports_them_and_reports_never_do():
    graph = _graph()
    top = {"cli", "engine", "stages", "audit", "dvcdeps"}
    for rel, deps in graph.items():
        if _layer(rel) in top:
            continue
        bad = sorted(d for d in deps if _layer(d) in top)
        assert bad == [], f"{rel} imports the layer above it: {bad}"
    for rel, deps in graph.items():
        if rel.startswith("reports/"):
            assert not any(d.startswith("stages/") for d in deps), rel


def test_layout_imports_nothing_of_the_package():
    assert _graph()["layout.py"] == set()


def test_no_import_circle_anywhere_in_the_package():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


# -- code hashes -----------------------------------------------------------------------------


def _package_copy(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    for path in PKG.rglob("*.py"):
        target = root / path.relative_to(PKG)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return root


def _hashes(root: Path) -> dict[tuple[str, str | None], str]:
    def read(rel: str) -> bytes | None:
        p = root / rel
        return p.read_bytes() if p.is_file() else None

    out = {}
    for stage in provenance.STAGE_ROOTS:
        families = ["dave", "neumf", "recvae"] if stage in dvcdeps.MODEL_STAGES else [None]
        for family in families:
            out[(stage, family)] = codehash.closure_hash(
                provenance.stage_roots(stage, family), read
            )[0]
    return out


def test_formatting_comments_and_docstrings_leave_the_hash_unchanged(tmp_path):
    root = _package_copy(tmp_path)
    before = _hashes(root)
    nets = root / "models" / "nets.py"
    src = nets.read_text()
    reformatted = '"""Another module docstring."""\n# a new comment\n\n' + src.split('"""', 2)[
        2
    ].replace("\n\n\n", "\n\n\n\n")
    nets.write_text(reformatted.replace("(self", "( self"))
    assert nets.read_text() != src
    assert _hashes(root) == before


def test_a_changed_line_re_keys_exactly_the_stages_that_import_it(tmp_path):
    root = _package_copy(tmp_path)
    before = _hashes(root)
    neumf = root / "models" / "neumf.py"
    neumf.write_text(neumf.read_text() + "\nEXTRA = 1\n")
    after = _hashes(root)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {(s, "neumf") for s in dvcdeps.MODEL_STAGES}
    # a module every training imports re-keys every training, and nothing of the data stages
    (root / "models" / "neumf.py").write_text((PKG / "models" / "neumf.py").read_text())
    trainer = root / "training" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\nEXTRA = 1\n")
    changed = {k for k, v in _hashes(root).items() if before[k] != v}
    assert {("train", f) for f in ("dave", "neumf", "recvae")} <= changed
    assert not any(stage in ("download", "preprocess", "split", "report") for stage, _ in changed)


def test_a_missing_module_is_an_error_never_an_empty_hash(tmp_path):
    root = _package_copy(tmp_path)
    (root / "models" / "baseline_utils.py").unlink()

    def read(rel: str) -> bytes | None:
        p = root / rel
        return p.read_bytes() if p.is_file() else None

    with pytest.raises(DaveError, match="baseline_utils"):
        codehash.closure_hash(provenance.stage_roots("train", "neumf"), read)
    with pytest.raises(DaveError, match="no such module"):
        codehash.closure_hash(["models/toy.py"], read)


def test_a_stage_hash_covers_its_family_and_not_the_others():
    _, modules = provenance.stage_code("train", "neumf")
    assert "models/neumf.py" in modules and "models/baseline_utils.py" in modules
    assert "models/dave.py" not in modules and "models/recvae.py" not in modules
    assert "training/trainer.py" in modules


def test_dvc_yaml_deps_are_the_stages_import_closures():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        src = sorted(d for d in body.get("deps", []) if d.startswith("src/"))
        assert src == sorted(dvcdeps.deps(name)), f"dvc.yaml stage {name}: {src}"
        for dep in src:
            assert (REPO / dep).exists(), dep


# -- one declaration per model family, in its own module, read without importing it ------------


def test_family_declarations_are_read_without_importing_torch():
    code = (
        "import sys; from dave_repro import config; from dave_repro.models import specs; "
        "assert specs.FAMILIES and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_declaration_read_from_source_is_the_one_its_module_builds():
    import importlib

    from dave_repro.models import specs

    for name, fam in specs.FAMILIES.items():
        module = importlib.import_module(f"dave_repro.models.{fam.module}")
        assert dataclasses.replace(module.FAMILY, module=fam.module) == fam, name
        assert issubclass(getattr(module, fam.cls), torch.nn.Module), name


def _models_copy(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    for path in (PKG / "models").glob("*.py"):
        (root / path.name).write_bytes(path.read_bytes())
    return root


def test_a_declaration_that_needs_the_module_is_a_clear_error(tmp_path):
    from dave_repro.models import specs

    root = _models_copy(tmp_path)
    (root / "toy.py").write_text(
        "from torch import nn\nfrom .specs import Family, Map\n"
        "FAMILY = Family(name='toy', schema=Map({'act': nn.ReLU}), cls='Toy', "
        "reads_vectors=False, models={'toy': 'Toy'})\n"
    )
    with pytest.raises(DaveError, match=r"models/toy.py: its FAMILY declaration cannot be read"):
        specs.declarations(root)


def test_a_model_name_declared_twice_is_an_error(tmp_path):
    from dave_repro.models import specs

    root = _models_copy(tmp_path)
    (root / "toy.py").write_text(
        "from .specs import Family, Map\n"
        "FAMILY = Family(name='toy', schema=Map({}), cls='Toy', reads_vectors=False, "
        "models={'neumf': 'Toy'})\n"
    )
    with pytest.raises(DaveError, match="model name 'neumf' is declared by families"):
        specs.declarations(root)
    (root / "toy.py").write_text((root / "toy.py").read_text().replace("'neumf'", "'toy'"))
    found = specs.declarations(root)
    assert list(found)[-2:] == ["toy", "itempop"]  # after the paper's rows, before our floor
    assert found["toy"].module == "toy" and found["toy"].params_schema.fields["family"]
