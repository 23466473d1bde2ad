"""The package's import graph: no cycle, no import from a higher layer, every module placed in a layer
(the layers are defined once, in scripts/import_graph.py), and the public import paths still work."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_package_graph_has_no_cycle_no_upward_import_and_every_module_placed():
    errors = import_graph.layer_errors(import_graph.internal_edges())
    assert not errors, "\n".join(errors)


def test_lazy_imports_are_checked_too():
    # an import inside a function is an edge as well: hiding one there must not hide a cycle
    edges = import_graph.internal_edges()
    assert "settings" in edges["distributed"]
    assert "diffusers" not in edges["bridge"]  # a library, not a package module


def test_checker_reports_a_cycle_an_upward_import_and_an_unplaced_module():
    layers = {"low": ["a", "b"], "high": ["c"]}
    edges = {"a": {"b"}, "b": {"a", "c"}, "c": {"a"}, "stray": set()}
    errors = import_graph.layer_errors(edges, layers)
    assert any(e.startswith("import cycle") and "a -> b -> a" in e for e in errors), errors
    assert "upward import b -> c (low imports high)" in errors, errors
    assert any("stray has no layer" in e for e in errors), errors
    assert not import_graph.layer_errors({"a": {"b"}, "b": set(), "c": {"a"}}, layers)


def test_cycle_across_layers_is_reported_even_without_upward_rule():
    assert import_graph.cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == [["x", "y", "z", "x"]]


def test_every_public_name_imports():
    import diffusion_lab

    missing = [name for name in diffusion_lab.__all__ if not hasattr(diffusion_lab, name)]
    assert not missing


def _imports_of_users():
    """(module, name or None) for every `import diffusion_lab.X` / `from diffusion_lab.X import n`
    in the chapters, scripts and tests: the paths learners' and scripts' code relies on."""
    found = set()
    for path in sorted([*ROOT.glob("chapters/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("tests/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(a.name, None) for a in node.names if a.name.split(".")[0] == "diffusion_lab"}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] == "diffusion_lab":
                found |= {(node.module, a.name) for a in node.names}
    return sorted(found, key=str)


USES = _imports_of_users()


def test_users_were_found():
    modules = {m for m, _ in USES}
    assert {"diffusion_lab.samplers", "diffusion_lab.solvers", "diffusion_lab.autoencoder",
            "diffusion_lab.text"} <= modules


@pytest.mark.parametrize("module, name", USES, ids=[f"{m}:{n}" for m, n in USES])
def test_import_paths_used_by_chapters_scripts_and_tests_still_work(module, name):
    if module.startswith("diffusion_lab.course."):  # the course modules need the notebook extras
        pytest.importorskip("matplotlib")
    mod = importlib.import_module(module)
    if name is not None and name != "*":
        assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), f"{module} has no {name}"
