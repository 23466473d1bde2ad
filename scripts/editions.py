"""Write the course's two editions from one source per chapter (`make editions`).

    python scripts/editions.py                       # rebuild both editions' cells; keep outputs of unchanged cells
    python scripts/editions.py --execute 03 05       # ... then run those chapters' editions (all when none given)
    python scripts/editions.py --execute --edition student    # ... only the student edition
    python scripts/editions.py --check               # exit 1 if a committed edition is out of date (the test's job)

The source of a chapter is `chapters/NN_name.py` (jupytext percent format). Its exercise cells
mark the worked answer with nbgrader's markers:

    def q_sample(x0, t, alpha_bar, noise):
        ### BEGIN SOLUTION
        ab = ...
        ### END SOLUTION

and from it this script writes

    notebooks/NN_name.ipynb   the student edition: each marked block becomes
                              `# YOUR CODE HERE` + `raise NotImplementedError()`;
    solutions/NN_name.ipynb   the instructor edition: the worked answers, markers removed.

A line `<!-- hint: NAME -->` in a markdown cell becomes a collapsible hint in both editions: the idea,
with the pieces folded inside it, from the exercise table (diffusion_lab/course/exercises.py, so it
lives in one place). A code cell that calls `check.NAME(` is tagged `nbval-check-output`: nbval then
compares its printed verdict, so CI proves "Correct ✅" in the instructor edition and "Not done yet ⏳"
in the student one.

Editions are not jupytext pairs (saving a student notebook must never overwrite the source): edit
the .py, run this script, then execute (`--execute`, minutes per chapter: run one heavy job
at a time on a shared machine). Executed outputs keep no widget views or widget state (a
saved widget without its kernel shows a frozen bar or an error), so the static figures that every
viewer draws first (and any kernel-free fallback published beside a widget) are what a reader without
a kernel sees. chapters/README.md explains it for
chapter authors.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package, not another install
from diffusion_lab.course.colab import stamp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "chapters"  # apart from the student edition: handing out notebooks/ hands out no answers
EDITIONS = {"student": ROOT / "notebooks", "instructor": ROOT / "solutions"}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
IGNORE_OUTPUT = "# NBVAL_IGNORE_OUTPUT"  # in a source's code cell: its output varies (timings, widgets)
HINT = re.compile(r"^<!--\s*hint:\s*(\w+)\s*-->$", re.MULTILINE)  # on a line of its own, in any markdown cell
CHECK = re.compile(r"\bcheck\.(\w+)\(")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The kernel the Makefile installs (`ipykernel install --name python3 --display-name "Python 3"`), also
# Colab's and VS Code's: a notebook naming another one is marked modified as soon as JupyterLab opens it.
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
NOTE = {
    "student": "> **Student edition.** Exercises are for you to fill in; each check below them says what is "
               "right or wrong. Worked answers: the instructor edition in `solutions/`, or "
               "`check.solution(\"name\")` for one exercise.",
    "instructor": "> **Instructor edition**, with worked answers. Learners open the student edition in "
                  "`notebooks/`, which has the same cells with each exercise left to do.",
}


class SourceError(ValueError):
    pass


def sources(chapters=()) -> list[Path]:
    found = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if chapters:
        found = [p for p in found if any(p.name.startswith(c) for c in chapters)]
        if not found:
            raise SourceError(f"no chapter source matches {', '.join(chapters)} in {SOURCES}.")
    return found


def _split_solution(code: str, where: str) -> tuple[str, str]:
    """(instructor code, student code) for one code cell."""
    instructor, student, inside, indent = [], [], False, ""
    for n, line in enumerate(code.split("\n"), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise SourceError(f"{where}: line {n} of a cell opens a solution inside another; close it first.")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            student.extend(indent + s for s in STUB.split("\n"))
        elif marker == END:
            if not inside:
                raise SourceError(f"{where}: line {n} of a cell closes a solution that was never opened.")
            inside = False
        else:
            instructor.append(line)
            if not inside:
                student.append(line)
    if inside:
        raise SourceError(f"{where}: a cell opens {BEGIN!r} without {END!r}.")
    return "\n".join(instructor), "\n".join(student)


def _hint_cell(name: str, where: str) -> str:
    from diffusion_lab.course.exercises import EXERCISES

    if name not in EXERCISES:
        raise SourceError(f"{where}: hint for unknown exercise {name!r}; add it to diffusion_lab/course/exercises.py.")
    ex = EXERCISES[name]
    # Graduated: the idea first, the pieces folded inside it, the complete code only in the worked answer.
    pieces = (f"<details><summary>The pieces (click to open)</summary>\n\n{ex.pieces}\n</details>\n\n"
              if ex.pieces else "")
    return (f"<details><summary><b>Hint</b> (click to open)</summary>\n\n{ex.hint}\n\n{pieces}"
            f"Still stuck? Run `check.solution(\"{name}\")` for a worked answer.\n</details>")


def _cell_id(cell, taken: set) -> str:
    base = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
    cid, k = base, 1
    while cid in taken:
        cid, k = f"{base}-{k}", k + 1
    taken.add(cid)
    return cid


def build(source: Path) -> dict[str, nbformat.NotebookNode]:
    """The two editions of one chapter, without outputs."""
    from diffusion_lab.course.exercises import EXERCISES
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata.pop("jupytext", None)  # not a pair: the notebook must never write back to the source
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    editions = {e: copy.deepcopy(nb) for e in EDITIONS}
    for edition, out in editions.items():
        taken = set()
        first_markdown = True
        for cell, original in zip(out.cells, nb.cells):
            where = f"{source.name}, cell starting {original.source[:40]!r}"
            if cell.cell_type == "code":
                instructor, student = _split_solution(original.source, where)
                cell.source = instructor if edition == "instructor" else student
                if any(name in EXERCISES for name in CHECK.findall(cell.source)):  # a check's verdict
                    cell.metadata.setdefault("tags", []).append("nbval-check-output")
                if cell.source.startswith(IGNORE_OUTPUT):  # a marker for nbval, not for the learner: a tag
                    cell.source = cell.source[len(IGNORE_OUTPUT):].lstrip("\n")
                    cell.metadata.setdefault("tags", []).append("nbval-ignore-output")
            elif cell.cell_type == "markdown":
                # A marker may share its cell with prose (the text around it stays where it is).
                cell.source = HINT.sub(lambda m, where=where: _hint_cell(m.group(1), where), original.source)
                if cell.source == original.source and first_markdown:
                    cell.source += "\n\n" + NOTE[edition]
                first_markdown = first_markdown and cell.cell_type != "markdown"
            cell.id = _cell_id(cell, taken)
        # The Colab install cell and a badge that opens this very edition (one template: course/colab.py).
        stamp(out, f"{source.stem}.ipynb", folder=EDITIONS[edition].name)
        for cell in out.cells:  # the install cell is for machines: folded (Colab's form view, JupyterLab's fold)
            if cell.metadata.get("cellView") == "form":
                cell.metadata["jupyter"] = {"source_hidden": True}
    return editions


def path(source: Path, edition: str) -> Path:
    return EDITIONS[edition] / f"{source.stem}.ipynb"


def _inputs(nb) -> list:
    return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]


def stale(source: Path) -> list[str]:
    """Why the committed editions of this chapter do not match its source (empty when up to date)."""
    problems = []
    for edition, nb in build(source).items():
        target = path(source, edition)
        if not target.exists():
            problems.append(f"{target.relative_to(ROOT)} is missing")
        elif _inputs(nbformat.read(target, as_version=4)) != _inputs(nb):
            problems.append(f"{target.relative_to(ROOT)} differs from {source.relative_to(ROOT)}")
    return problems


def frozen(output) -> bool:
    """A widget view with nothing to show without its kernel: a progress bar frozen where it was
    saved, or a viewer without a kernel-free fallback (text/html) beside it."""
    data = output.get("data", {})
    return WIDGET_VIEW in data and "text/html" not in data


def clean_outputs(nb) -> None:
    """Drop frozen widget views and the saved widget state; keep the static figures every viewer draws."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timestamps: noise in every diff
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not frozen(o)]


def write(source: Path) -> None:
    """Rebuild both editions' cells, keeping the outputs of every cell whose source did not change."""
    for edition, nb in build(source).items():
        target = path(source, edition)
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            old = nbformat.read(target, as_version=4)
            ids = [c.id for c in nb.cells]
            nb = combine_inputs_with_outputs(nb, old)
            for cell, cid in zip(nb.cells, ids):
                cell.id = cid
            nb.metadata.pop("jupytext", None)
        clean_outputs(nb)
        _save(nb, target)


def _save(nb, target: Path) -> None:
    tmp = target.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, target)  # never a half-written notebook


def execute(source: Path, editions=tuple(EDITIONS), timeout: int = 1200) -> None:
    """Run the editions top to bottom (default mode: DIFFUSION_LAB_FAST must be unset) and save them."""
    from nbclient import NotebookClient

    if os.environ.get("DIFFUSION_LAB_FAST"):
        raise SystemExit("unset DIFFUSION_LAB_FAST: the committed outputs are the default mode's.")
    for edition in editions:
        target = path(source, edition)
        nb = nbformat.read(target, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(target.parent)}}).execute()
        clean_outputs(nb)
        _save(nb, target)
        print(f"{target.relative_to(ROOT)}: executed in {time.perf_counter() - start:.0f} s", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("chapters", nargs="*", help="chapter numbers or names (default: all)")
    p.add_argument("--execute", action="store_true", help="also run the editions and save their outputs")
    p.add_argument("--check", action="store_true", help="only report editions that are out of date")
    p.add_argument("--edition", choices=list(EDITIONS), help="with --execute: run only this edition")
    a = p.parse_args(argv)
    try:
        chosen = sources(a.chapters)
        if a.check:
            problems = [msg for s in chosen for msg in stale(s)]
            for msg in problems:
                print(f"{msg}: run `make editions`.", file=sys.stderr)
            return 1 if problems else 0
        for s in chosen:
            write(s)
            if a.execute:
                execute(s, [a.edition] if a.edition else list(EDITIONS))
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"editions written for {len(chosen)} chapter(s): notebooks/ (student) and solutions/ (instructor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
