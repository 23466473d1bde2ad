"""Colab: the install cell every notebook starts with, written from one template, and the Colab badge.

Colab runs each notebook alone, without the repository, so each notebook's first code cell fetches the
course and installs it. The cell
- does nothing outside Colab;
- is idempotent: run twice, or after a runtime restart, it finds the clone it made (also from inside
  its notebooks/ folder) instead of cloning into the clone, and skips an install that is in place;
- never upgrades what Colab already has (torch, torchvision, ipywidgets 7.7, ...): every dependency
  that is installed is pinned at its installed version, so pip adds only what is missing;
- prints what it did.

The repository's address lives once, in pyproject.toml ([project.urls] Repository). `stamp` writes the
current cell and badge into a notebook: `python -m diffusion_lab.course.colab` into every chapter's
source (chapters/NN_name.py), scripts/editions.py into both editions (each badge opens its own
edition). tests/test_colab.py checks every notebook carries them and runs the cell twice against a
fake `google.colab` module and a local clone.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (a checkout or an editable install)
MARKER = 'if "google.colab" in sys.modules:'  # how the install cell is recognised in a notebook
COLAB = "https://colab.research.google.com/github/"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

TEMPLATE = '''\
# @title Colab only: fetch and install the course (elsewhere this cell does nothing)
# Keeps Colab's own torch, torchvision and ipywidgets; safe to run again. From diffusion_lab/course/colab.py.
import sys

if "google.colab" in sys.modules:
    import importlib.metadata
    import importlib.util
    import os
    import subprocess

    REPO = "{repo}"
    here = os.getcwd()
    is_course = lambda d: os.path.isfile(os.path.join(d, "diffusion_lab", "__init__.py"))
    root = next((d for d in (here, os.path.dirname(here)) if is_course(d)), None)
    if root:
        print(f"found the course in {{root}}")
    else:
        root = os.path.abspath("{folder}")
        if not os.path.exists(root):
            subprocess.run(["git", "clone", "--depth", "1", "--quiet", REPO, root], check=True)
            print(f"cloned {{REPO}} into {{root}}")
        elif is_course(root):
            print(f"found the course in {{root}}")
        else:
            raise RuntimeError(f"{{root}} exists but is not the course: remove it (!rm -r {{root}}) and rerun.")
    spec = importlib.util.find_spec("diffusion_lab")
    if spec and spec.origin and spec.origin.startswith(root + os.sep):
        print("diffusion_lab is installed")
    else:
        keep = []  # what Colab already has stays as it is: pinned at its installed version
        for dist in {dependencies}:
            try:
                keep.append(f"{{dist}}=={{importlib.metadata.version(dist)}}")
            except importlib.metadata.PackageNotFoundError:
                pass
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", root, *keep], check=True)
        print(f"installed diffusion_lab from {{root}}, keeping " + ", ".join(keep))
    if root not in sys.path:
        sys.path.insert(0, root)  # the running kernel does not see the fresh install yet
    os.chdir(os.path.join(root, "notebooks"))
    print(f"working in {{os.getcwd()}}")
'''


def _project(root: Path = ROOT) -> dict:
    """pyproject.toml's [project] table."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = root / "pyproject.toml"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: stamping notebooks needs the repository (a git checkout).")
    return tomllib.loads(path.read_text())["project"]


def repository_url(root: Path = ROOT) -> str:
    """The repository's address, from pyproject.toml ([project.urls] Repository)."""
    return _project(root)["urls"]["Repository"]


def install_cell(repo: str | None = None, root: Path = ROOT) -> str:
    """The install cell's source. repo: the address to clone (default: the repository's; tests pass a
    local path). The dependencies it keeps are pyproject's, by name."""
    project = _project(root)
    names = tuple(re.match(r"[A-Za-z0-9_.\-]+", d).group(0) for d in project["dependencies"])
    repo = repo or project["urls"]["Repository"]
    return TEMPLATE.format(repo=repo, folder=repo.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"),
                           dependencies=repr(names))


def colab_url(notebook: str, root: Path = ROOT, branch: str = "main", folder: str = "notebooks") -> str:
    """Where Colab opens `notebook` (a name such as "05_ddpm_sampling.ipynb", in the repository's
    `folder`: notebooks/ for the student edition)."""
    repo = repository_url(root).removeprefix("https://github.com/").rstrip("/")
    return f"{COLAB}{repo}/blob/{branch}/{folder}/{notebook}"


def badge(notebook: str, root: Path = ROOT, folder: str = "notebooks") -> str:
    """The "Open in Colab" badge, as markdown."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, root, folder=folder)})"


def stamp(nb, notebook: str, root: Path = ROOT, folder: str = "notebooks") -> bool:
    """Write the current install cell and Colab badge into `nb` (an nbformat notebook; `notebook` its
    file name, in the repository's `folder`: "solutions" for the instructor edition). The install cell
    replaces the cell holding MARKER, or goes in before the first code cell, and is folded in Colab
    (cellView "form"); the badge replaces the one in the first markdown cell, or follows its title
    line. Outputs are kept. Returns True when something changed."""
    import nbformat

    changed = False
    code = install_cell(root=root).rstrip("\n")
    cells = nb.cells
    at = next((i for i, c in enumerate(cells) if c.cell_type == "code" and MARKER in c.source), None)
    if at is None:
        at = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
        cells.insert(at, nbformat.v4.new_code_cell(code))
        changed = True
    elif cells[at].source != code:
        cells[at].source, changed = code, True
    if cells[at].metadata.get("cellView") != "form":
        cells[at].metadata["cellView"] = "form"  # Colab shows the title and folds the code away
        changed = True
    title = next((c for c in cells if c.cell_type == "markdown"), None)
    if title is not None:
        want = badge(notebook, root, folder)
        found = re.search(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)", title.source)
        if found is None:
            lines = title.source.split("\n")
            title.source = "\n".join(lines[:1] + ["", want] + lines[1:])
        else:
            title.source = title.source.replace(found.group(0), want)
        changed |= found is None or found.group(0) != want
    return changed


def main(argv=None) -> int:
    """Stamp every chapter's source, chapters/NN_name.py, one line per change: `python -m
    diffusion_lab.course.colab`. Then `make editions` writes both editions from the sources, each with
    a badge that opens that edition (scripts/editions.py calls `stamp` again with its folder)."""
    import jupytext

    folder = Path(argv[0]) if argv else ROOT / "chapters"
    for source in sorted(folder.glob("[0-9][0-9]_*.py")):
        nb = jupytext.read(source, fmt="py:percent")
        if stamp(nb, source.with_suffix(".ipynb").name, root=ROOT):
            jupytext.write(nb, source, fmt="py:percent")
            print(f"stamped {source.name}: now run `make editions`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
