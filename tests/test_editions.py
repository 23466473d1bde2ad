"""The two editions of every chapter (scripts/editions.py): up to date with their one source, the
student edition without the worked answers, the instructor edition with them, and committed outputs
that a reader without a kernel can trust (figures, no frozen widgets)."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from diffusion_lab.course.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("editions", ROOT / "scripts" / "editions.py")
editions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(editions)
SOURCES = editions.sources()


def _read(source, edition):
    return nbformat.read(editions.path(source, edition), as_version=4)


def test_every_chapter_has_a_source():
    assert len(SOURCES) >= 9
    assert [p.stem for p in SOURCES] == sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def test_the_student_folder_holds_no_answers():
    """An instructor who hands out notebooks/ hands out no worked answer: no source, no marker."""
    assert editions.SOURCES != editions.EDITIONS["student"]
    leaks = [p.name for p in (ROOT / "notebooks").rglob("*")
             if p.is_file() and editions.BEGIN.encode() in p.read_bytes()]  # bytes: runs/ may hold checkpoints
    assert not leaks, f"solution markers in the student folder: {leaks}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_editions_match_their_source(source):
    assert editions.stale(source) == [], "run `make editions` (then execute the changed chapters)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_student_edition_leaves_the_exercises_to_do(source):
    student, instructor = _read(source, "student"), _read(source, "instructor")
    text = source.read_text()
    stubs = sum(c.source.count("raise NotImplementedError()") for c in student.cells)
    assert stubs == text.count(editions.BEGIN) == text.count(editions.END)
    for s_cell, i_cell in zip(student.cells, instructor.cells):
        assert editions.BEGIN not in s_cell.source + i_cell.source
        if s_cell.source != i_cell.source and s_cell.cell_type == "code":
            assert "# YOUR CODE HERE" in s_cell.source and "raise NotImplementedError()" not in i_cell.source
    assert "/blob/main/solutions/" in instructor.cells[0].source  # its Colab badge opens itself
    assert "Student edition" in student.cells[0].source and "Instructor edition" in instructor.cells[0].source


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
@pytest.mark.parametrize("edition", list(editions.EDITIONS))
def test_committed_outputs_are_real_and_carry_no_widget_state(source, edition):
    nb = _read(source, edition)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 3, "execute it: `make editions EXECUTE=1`"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure"
    assert "widgets" not in nb.metadata
    for o in outputs:
        assert not editions.frozen(o), "a widget view without a fallback was saved (frozen without its kernel)"
        text = o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        assert not re.search(r"\b0%\|", text), f"a progress bar frozen at 0%: {text[:80]!r}"
        assert o.get("output_type") != "error", f"an error was saved: {o.get('ename')}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_checks_pass_in_the_instructor_edition_and_wait_in_the_student_one(source):
    for edition, mark in (("instructor", "Correct ✅ "), ("student", "Not done yet ⏳ ")):
        for cell in _read(source, edition).cells:
            if "nbval-check-output" in cell.metadata.get("tags", []):
                printed = "".join(o.get("text", "") for o in cell.get("outputs", []))
                assert printed.startswith(mark), f"{edition}: {printed[:120]!r}"


def _installed_kernelspec() -> dict:
    """The kernelspec `make` installs, read from the Makefile's `ipykernel install` line."""
    line = next(x for x in (ROOT / "Makefile").read_text().splitlines() if "ipykernel install" in x)
    name = re.search(r"--name[ =](\S+)", line).group(1)
    display = re.search(r'--display-name[ =]"([^"]+)"', line).group(1)
    return {"display_name": display, "language": "python", "name": name}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
@pytest.mark.parametrize("edition", list(editions.EDITIONS))
def test_committed_kernelspec_is_the_one_make_installs(source, edition):
    # Any difference makes JupyterLab mark the notebook modified on opening, and autosave rewrite it.
    assert editions.KERNELSPEC == _installed_kernelspec()
    assert dict(_read(source, edition).metadata["kernelspec"]) == _installed_kernelspec()


@pytest.mark.parametrize("name", EXERCISES)
def test_every_exercise_is_marked_hinted_and_checked_in_its_chapter(name):
    ex = EXERCISES[name]
    text = (ROOT / "chapters" / f"{ex.chapter}.py").read_text()
    assert re.search(rf"^def {ex.function}\(.*?\n\s+{editions.BEGIN}\n", text, re.M | re.S), "no marked solution"
    assert f"<!-- hint: {name} -->" in text
    assert re.search(rf"^{ex.function} = check\.{name}\({ex.function}\)$", text, re.M), "no check cell"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
@pytest.mark.parametrize("edition", list(editions.EDITIONS))
def test_every_exercise_shows_its_folded_hint(source, edition):
    # Each exercise's check names it; its hint, folded in <details>, must appear between the exercise
    # cell and that check (a marker left as an HTML comment shows nothing).
    cells = _read(source, edition).cells
    for k, cell in enumerate(cells):
        names = [n for n in editions.CHECK.findall(cell.source) if n in EXERCISES] if cell.cell_type == "code" else []
        for name in names:
            start = max(i for i in range(k) if f"def {EXERCISES[name].function}(" in cells[i].source)
            between = "".join(c.source for c in cells[start + 1:k] if c.cell_type == "markdown")
            assert "<details>" in between and f'check.solution("{name}")' in between, f"{name}: no hint shown"
            assert "<!-- hint:" not in between
            if edition == "student":
                assert "raise NotImplementedError()" in cells[start].source


def test_a_hint_marker_may_share_its_cell_with_prose():
    name = next(iter(EXERCISES))
    cell = nbformat.v4.new_markdown_cell(f"<!-- hint: {name} -->\n\nThe check below runs it.")
    text = editions.HINT.sub(lambda m: editions._hint_cell(m.group(1), "ch"), cell.source)
    assert text.startswith("<details>") and text.endswith("The check below runs it.")


def test_unbalanced_markers_fail_with_the_place():
    with pytest.raises(editions.SourceError, match="without '### END SOLUTION'"):
        editions._split_solution("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "ch")
    with pytest.raises(editions.SourceError, match="line 2 of a cell closes a solution that was never opened"):
        editions._split_solution("def f():\n    ### END SOLUTION\n", "ch")
    instructor, student = editions._split_solution("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                                   "    ### END SOLUTION\n", "ch")
    assert instructor == "def f():\n    return 1\n"
    assert student == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_what_is_for_machines_is_folded(source):
    """A learner sees no test markers (they are cell tags) and the Colab install cell folded."""
    for edition in editions.EDITIONS:
        nb = _read(source, edition)
        assert not any(editions.IGNORE_OUTPUT in c.source for c in nb.cells), f"{edition}: a marker in a cell"
        forms = [c for c in nb.cells if c.metadata.get("cellView") == "form"]
        assert forms and all(c.metadata.get("jupyter", {}).get("source_hidden") for c in forms)
