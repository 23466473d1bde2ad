"""Build the course website (Jupyter Book 1: Sphinx + MyST-NB) from the committed notebooks, offline,
then check it. `make site` runs it; the pages land in build/site/_build/html (index.html).

    python scripts/build_site.py [--check-only]

1. Assemble build/site/src: site/ (configuration, home and results pages), every notebooks/NN_*.ipynb
   (the student edition: what learners open; the Colab install cell folded away), CONVENTIONS.md,
   README.md (the home page includes its marked sections) and docs/ (the results page and its figures).
2. Write the table of contents from the notebooks found (new chapters need no edit here), put the
   repository's address from pyproject.toml into the configuration (Colab launch buttons), and copy
   MathJax from the jupyter-server-mathjax package so equations render without the network.
3. `jupyter-book build` with execution off: pages show the committed outputs.
4. Check: a page for every chapter, the conventions and results pages; every internal link, image
   and anchor resolves; no script or stylesheet comes from the network. Exits 1, naming each problem.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from diffusion_lab.course.colab import MARKER, repository_url  # noqa: E402

OUT = ROOT / "build" / "site"
SRC = OUT / "src"
HTML = OUT / "_build" / "html"
EXTRA_PAGES = ["notebooks/CONVENTIONS", "docs/results"]


def chapters() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def assemble() -> None:
    if SRC.exists():
        shutil.rmtree(SRC)
    shutil.copytree(ROOT / "site", SRC)
    (SRC / "notebooks").mkdir()
    for path in chapters():  # the Colab install cell folded away ("hide-input"): it only matters in Colab
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and MARKER in cell.source:
                cell.metadata.setdefault("tags", []).append("hide-input")
        nbformat.write(nb, SRC / "notebooks" / path.name)
    shutil.copytree(ROOT / "docs", SRC / "docs")
    for page in ("notebooks/CONVENTIONS.md", "README.md", "docs/results.md"):
        (SRC / page).write_text(_repository_links((ROOT / page).read_text(), page))

    config = yaml.safe_load((SRC / "_config.yml").read_text())
    config["repository"]["url"] = repository_url()
    (SRC / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "Chapters", "chapters": [{"file": f"notebooks/{nb.stem}"} for nb in chapters()]},
                     {"caption": "Reference", "chapters": [{"file": page} for page in EXTRA_PAGES]}]}
    (SRC / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))

    import jupyter_server_mathjax

    # html_extra_path, not _static: Jupyter Book adds a <script> for every .js file under _static.
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", SRC / "_extra" / "mathjax")


def build() -> None:
    if HTML.exists():
        shutil.rmtree(OUT / "_build")
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(SRC), "--path-output", str(OUT), "--all"]
    subprocess.run(cmd, check=True)


class _Links(HTMLParser):
    """Collects a page's ids and the addresses it links to or loads."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.loads = set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.loads.append(a["src"])
        if tag == "link" and a.get("href"):
            (self.loads if "stylesheet" in (a.get("rel") or "") else self.links).append(a["href"])


def _repository_links(text: str, page: str) -> str:
    """Relative links to files the site does not carry (the package's source, notebooks/README.md)
    point at the repository instead: Sphinx would turn them into dead anchors."""
    def fix(m):
        target, fragment = m.group(2), m.group(3) or ""
        resolved = (ROOT / page).parent / target
        if (SRC / Path(page).parent / target).exists() or not resolved.exists():
            return m.group(0)
        path = resolved.resolve().relative_to(ROOT).as_posix()
        return f"{m.group(1)}({repository_url()}/blob/main/{path}{fragment})"
    return re.sub(r"(\[[^\]]*\])\(([^)#:\s]+)(#[^)\s]*)?\)", fix, text)


def check() -> list[str]:
    problems = []
    pages = {}
    for page in HTML.rglob("*.html"):
        if page.relative_to(HTML).parts[0] in ("_static", "_sources", "mathjax"):
            continue  # the theme's templates, the page sources and MathJax's files, not pages
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        pages[page] = parser
    for nb in chapters():
        page = HTML / "notebooks" / f"{nb.stem}.html"
        if page not in pages:
            problems.append(f"no page for chapter {nb.name} ({page.relative_to(HTML)})")
    for name in ["index"] + EXTRA_PAGES:
        if HTML / f"{name}.html" not in pages:
            problems.append(f"no page {name}.html")
    external = set()
    for page, parser in pages.items():
        where = page.relative_to(HTML)
        for url in parser.links + parser.loads:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https"):
                if url in parser.loads and not url.startswith(OFFLINE_OK):
                    problems.append(f"{where}: loads {url} from the network")
                external.add(parts.netloc)
                continue
            if parts.scheme or url.startswith("//"):
                continue  # data:, mailto:, javascript:
            path, fragment = urldefrag(url)
            target = (page.parent / unquote(urlsplit(path).path)).resolve() if path else page
            if path and not target.exists():
                problems.append(f"{where}: broken link {url}")
            elif fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if fragment not in ids:
                    problems.append(f"{where}: no anchor #{fragment} in {target.relative_to(HTML)}")
    print(f"checked {len(pages)} pages: chapters {len(chapters())}, internal links and anchors; "
          f"links to {len(external)} external sites not followed (no network)")
    return problems


OFFLINE_OK = ("https://colab.research.google.com/assets/",)  # the Colab badge's image, shown online


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check-only", action="store_true", help="check the pages already built")
    a = p.parse_args(argv)
    if not a.check_only:
        assemble()
        build()
    problems = check()
    for line in problems:
        print("site check:", line)
    if problems:
        return 1
    print(f"site OK: {HTML / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
