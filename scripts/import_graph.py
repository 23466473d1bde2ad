"""Print the package's import graph (module -> the modules and libraries it imports) and line counts.

    python scripts/import_graph.py            # every module of diffusion_lab/
    python scripts/import_graph.py --core     # fail if a core module imports a course-only library
    python scripts/import_graph.py --layers   # fail on an import cycle, an upward import or an unplaced module

Read from the source with `ast` (nothing is imported, so it also runs on a broken tree). Imports
inside functions count too, marked "(lazy)": they load only when that function runs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "diffusion_lab"
COURSE_ONLY = {"ipywidgets", "IPython", "matplotlib"}  # what the core must not need at import time

# The one place the package's layers are defined, lowest first. A module may import only from its own
# layer or a lower one, so the maths can be read (and tested) without the networks, the networks
# without the files, and so on. Within a layer, cycles are still forbidden (checked separately).
LAYERS = {
    "base": ["settings", "distributed"],
    "maths": ["schedules", "forward", "tokens", "guidance", "metrics", "embeddings", "timesteps",
              "paths", "solvers", "samplers", "sde", "edit"],
    "networks": ["text", "layers", "unet", "minimal_unet", "dit", "autoencoder_net", "models"],
    "files": ["data", "checkpoints", "results", "classifier"],
    "training": ["training", "autoencoder"],
    "evaluation": ["evaluate", "claims", "bench", "bridge"],
    "interface": ["cli", "__main__", "diffusion_lab", "course", "course.check", "course.colab",
                  "course.exercises", "course.plots", "course.sampler_sweep", "course.sde_sweep", "course.toy2d",
                  "course.widgets"],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, lazy) for every import in `path`; relative imports resolved to full names."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        lazy = id(node) not in top_level
        if isinstance(node, ast.Import):
            found += [(alias.name, lazy) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.module, lazy))
                continue
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            if node.module:
                found.append((".".join(base + node.module.split(".")), lazy))
            else:  # from . import a, b
                found += [(".".join(base + [alias.name]), lazy) for alias in node.names]
    return found


def graph() -> dict[str, dict]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        internal, external = set(), set()
        for name, lazy in imports(path):
            mark = " (lazy)" if lazy else ""
            top = name.split(".")[0]
            if top == "diffusion_lab":
                internal.add(name.removeprefix("diffusion_lab.") + mark)
            elif top != "__future__" and top not in sys.stdlib_module_names:
                external.add(top + mark)
        out[module_name(path)] = {"lines": len(path.read_text().splitlines()), "internal": sorted(internal),
                                  "external": sorted(external)}
    return out


def internal_edges() -> dict[str, set[str]]:
    """module -> the package modules it imports (top level and inside functions alike), short names."""
    edges = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        short = "diffusion_lab" if name == "diffusion_lab" else name.removeprefix("diffusion_lab.")
        targets = set()
        for imported, _ in imports(path):
            if imported.split(".")[0] == "diffusion_lab" and imported != "diffusion_lab":
                targets.add(imported.removeprefix("diffusion_lab."))
        edges[short] = targets - {short}
    return edges


def layer_errors(edges: dict[str, set[str]], layers: dict[str, list[str]] = LAYERS) -> list[str]:
    """Every broken rule, named by its edge: a module without a layer, an import from a higher
    layer, an import cycle. Empty when the graph is clean."""
    rank = {module: i for i, members in enumerate(layers.values()) for module in members}
    names = list(layers)
    errors = [f"{m} has no layer (add it to LAYERS)" for m in sorted(edges) if m not in rank]
    errors += [f"{m} has no layer (add it to LAYERS), imported by {src}"
               for src in sorted(edges) for m in sorted(edges[src]) if m not in rank and m not in edges]
    for src in sorted(edges):
        for dst in sorted(edges[src]):
            if src in rank and dst in rank and rank[dst] > rank[src]:
                errors.append(f"upward import {src} -> {dst} ({names[rank[src]]} imports {names[rank[dst]]})")
    errors += [f"import cycle {' -> '.join(c)}" for c in cycles(edges)]
    return errors


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path a -> b -> ... -> a) through each edge that closes one in a depth-first walk."""
    found, state = [], {}  # state: 1 = on the current path, 2 = done

    def walk(node, path):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node, [node])
    return found


def main() -> int:
    g = graph()
    width = max(map(len, g))
    for name, m in g.items():
        inside = ", ".join(m["internal"]) or "-"
        outside = ", ".join(m["external"]) or "-"
        print(f"{name:{width}s} {m['lines']:4d} lines  -> {inside}  |  {outside}")
    print(f"{'total':{width}s} {sum(m['lines'] for m in g.values()):4d} lines in {len(g)} modules")
    if "--core" in sys.argv:
        bad = [(n, e) for n, m in g.items() if not n.startswith("diffusion_lab.course")
               for e in m["external"] if e in COURSE_ONLY]
        for name, lib in bad:
            print(f"error: core module {name} imports the course-only library {lib} at import time", file=sys.stderr)
        return 1 if bad else 0
    if "--layers" in sys.argv:
        errors = layer_errors(internal_edges())
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 1 if errors else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
