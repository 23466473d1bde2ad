"""Print the package's import graph (module -> the modules and libraries it imports) and line counts.

    python scripts/import_graph.py            # every module of diffusion_lab/
    python scripts/import_graph.py --core     # fail if a core module imports a course-only library

Read from the source with `ast` (nothing is imported, so it also runs on a broken tree). Imports
inside functions count too, marked "(lazy)": they load only when that function runs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "diffusion_lab"
COURSE_ONLY = {"ipywidgets", "IPython", "matplotlib"}  # what the core must not need at import time


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
