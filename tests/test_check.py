"""The exercise checks (diffusion_lab/course/check.py over the table in course/exercises.py): every
known mistake is diagnosed as itself, the correct answer passes, an unrelated wrong answer gets the
generic message, a stub gets its hint, and shape and dtype errors are explained in the exercise's terms."""

import re
from pathlib import Path

import pytest
import torch

from diffusion_lab.course import check
from diffusion_lab.course.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(name, m.key) for name, ex in EXERCISES.items() for m in ex.mistakes]


def _mistake(name, key):
    return next(m for m in EXERCISES[name].mistakes if m.key == key)


def test_every_exercise_has_three_to_five_known_mistakes():
    assert len(EXERCISES) >= 9
    for name, ex in EXERCISES.items():
        assert 3 <= len(ex.mistakes) <= 5, name
        assert len({m.key for m in ex.mistakes}) == len(ex.mistakes), name


@pytest.mark.parametrize("name", EXERCISES)
def test_the_correct_answer_passes_and_is_returned(name, capsys):
    ex = EXERCISES[name]
    assert check.diagnose(name, ex.reference).ok
    mine = lambda *a, **k: ex.reference(*a, **k)  # noqa: E731 (a learner's function: a new object)
    assert getattr(check, name)(mine) is mine
    assert capsys.readouterr().out.startswith(f"Correct ✅ {name}.\n")


@pytest.mark.parametrize("name,key", PAIRS, ids=[f"{n}-{k}" for n, k in PAIRS])
def test_each_known_mistake_is_diagnosed_as_itself(name, key, capsys):
    m = _mistake(name, key)
    verdict = check.diagnose(name, m.fn)
    assert verdict.status == "mistake" and verdict.mistake == key, verdict
    assert m.what in verdict.message and m.why in verdict.message and check.where(m.where) in verdict.message
    ex = EXERCISES[name]
    assert getattr(check, name)(m.fn) is ex.reference  # the next cells fall back to the package...
    out = capsys.readouterr().out
    assert out.startswith(f"Mistake ❌ {name}: {m.what}") and "the cells below use the package's version" in out


@pytest.mark.parametrize("name", EXERCISES)
def test_known_mistakes_differ_from_the_answer_and_from_each_other(name):
    """A mistake that gave the right output, or another mistake's, could never be named as itself."""
    ex = EXERCISES[name]
    cases = ex.cases()
    outputs = {m.key: [check._call(m.fn, c) for c in cases] for m in ex.mistakes}
    outputs["correct"] = [check._call(ex.reference, c) for c in cases]
    keys = list(outputs)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            same = all(check._same(x, y, ex) for x, y in zip(outputs[a], outputs[b]))
            assert not same, f"{name}: {a} and {b} give the same outputs on the check's inputs"


@pytest.mark.parametrize("name", EXERCISES)
def test_an_unrelated_wrong_answer_gets_the_first_wrong_value_and_the_hint(name):
    ex = EXERCISES[name]
    wrong = lambda *a, **k: ex.reference(*a, **k) * 1.5 + 0.25  # noqa: E731
    verdict = check.diagnose(name, wrong)
    assert verdict.status == "wrong" and verdict.mistake is None
    assert re.search(r"expected -?[\d.]+(e-?\d+)?, got -?[\d.]+", verdict.message), verdict.message
    assert verdict.message.endswith(f"Hint: {ex.hint}")
    scalar = check._as_tensor(check._call(ex.reference, ex.cases()[0])).ndim == 0
    assert ("not yet: for " if scalar else "not yet: first wrong value at ") in verdict.message


def test_the_generic_message_names_t_and_the_element():
    def off_at_t50(x0, t, alpha_bar, noise):
        out = EXERCISES["q_sample"].reference(x0, t, alpha_bar, noise)
        out[2, 0, 3, 1] += 1.0
        return out

    msg = check.diagnose("q_sample", off_at_t50).message
    assert "first wrong value at image 2 (t = 50), pixel (0, 3, 1): expected" in msg


@pytest.mark.parametrize("name", EXERCISES)
def test_a_stub_is_not_done_yet_and_shows_the_hint(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    verdict = check.diagnose(name, stub)
    assert verdict.status == "not_done"
    assert verdict.message == f"not done yet. Hint: {EXERCISES[name].hint}"
    assert "NotImplementedError" not in verdict.message
    assert getattr(check, name)(stub) is EXERCISES[name].reference
    assert capsys.readouterr().out.startswith(f"Not done yet ⏳ {name}. Hint: ")


def test_shape_errors_are_explained_in_the_learners_terms():
    def per_image(x0, t, alpha_bar, noise):  # returns one value per image
        return alpha_bar[t].float()

    msg = check.diagnose("q_sample", per_image).message
    assert "shape (4,), expected (4, 1, 5, 4)" in msg and "t must index the batch" in msg
    assert "reshape it to (B, 1, 1, 1)" in msg

    def broadcast_error(x0, t, alpha_bar, noise):
        return alpha_bar[t].float()[:, None] * x0  # (4, 1) against (4, 1, 5, 4): sizes 4 and 5 clash
    msg = check.diagnose("q_sample", broadcast_error).message
    assert msg.startswith("the shapes do not fit") and "t must index the batch" in msg

    def returns_a_tuple(x_t, eps, t, schedule, noise, clip=False):
        return EXERCISES["ddpm_step"].reference(x_t, eps, t, schedule, noise, clip), x_t

    assert "returned a tuple of 2 values; return only x_{t-1}" in check.diagnose("ddpm_step", returns_a_tuple).message


def test_dtype_errors_are_explained():
    def float64(x0, t, alpha_bar, noise):
        ab = alpha_bar[t].reshape(-1, 1, 1, 1)  # float64: promotes the result
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    msg = check.diagnose("q_sample", float64).message
    assert "returned torch.float64, expected torch.float32" in msg and ".to(x0.dtype)" in msg

    msg = check.diagnose("to_model_range", lambda p: p).message
    assert "returned torch.uint8" in msg and "cannot hold -1" in msg


def test_other_errors_and_missing_returns():
    assert "returned None: it needs a `return` statement" in check.diagnose("alpha_bar", lambda b: None).message
    msg = check.diagnose("alpha_bar", lambda b, extra: b).message
    assert "The exercise calls alpha_bar(betas)" in msg
    msg = check.diagnose("alpha_bar", lambda b: 1 / 0).message
    assert msg.startswith("your function raised ZeroDivisionError: division by zero")


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="no exercise 'q_smaple'; the exercises are: to_model_range, alpha_bar"):
        check.diagnose("q_smaple", lambda: None)


def _plain(heading: str) -> str:
    return re.sub(r"[$\\{}]", "", heading).strip()


def _headings(doc: Path) -> set[str]:
    lines = doc.read_text().splitlines()
    return {_plain(re.sub(r"^(# )?#+ ", "", line)) for line in lines if re.match(r"^(# )?#{2,4} ", line)}


def test_every_mistake_points_to_a_section_that_exists():
    for name, ex in EXERCISES.items():
        for m in ex.mistakes:
            chapter, section = m.where
            doc = ROOT / "notebooks" / ("CONVENTIONS.md" if chapter == "CONVENTIONS" else "")
            if chapter != "CONVENTIONS":
                doc = next((ROOT / "chapters").glob(f"{chapter}_*.py"))
            assert _plain(section) in _headings(doc), (name, m.key, doc.name)


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_shows_the_worked_answer_from_the_chapter(name, capsys):
    check.solution(name)
    out = capsys.readouterr().out
    ex = EXERCISES[name]
    assert f"def {ex.function}(" in out and "### BEGIN SOLUTION" not in out and "raise NotImplementedError" not in out
    assert ex.package in out
    # The worked answer passes its own check.
    namespace = {"torch": torch, "F": torch.nn.functional}
    exec(out, namespace)  # noqa: S102 (our own chapter's code)
    assert check.diagnose(name, namespace[ex.function]).ok


def test_whose_says_which_version_the_next_cells_use():
    ex = EXERCISES["q_sample"]
    assert check.whose(check.q_sample(lambda *a: None)) == "the package's"
    mine = lambda *a: ex.reference(*a)  # noqa: E731
    assert check.whose(check.q_sample(mine)) == "your"


def test_each_exercise_has_a_checker_written_out_in_check():
    # Learners read check.py to find `check.q_sample`: each checker is a plain `def` there, one per exercise.
    import inspect

    source = inspect.getsource(check)
    for name, ex in EXERCISES.items():
        fn = getattr(check, name)
        assert fn.__module__ == check.__name__ and fn.__name__ == name
        assert f"\ndef {name}(fn):\n" in source and ex.signature in fn.__doc__
    assert "globals()" not in source


def test_the_package_location_names_a_real_function():
    for ex in EXERCISES.values():
        module, _, attr = ex.package.rpartition(".")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr)), ex.package


@pytest.mark.parametrize("name", EXERCISES)
def test_hints_are_graduated_and_never_the_answer_line(name):
    # A learner asks for the idea first, then the pieces; the complete code only through check.solution.
    ex = EXERCISES[name]
    answer = check.extract_solution((check.CHAPTERS / f"{ex.chapter}.py").read_text(), ex.function)
    last = [line.strip() for line in answer.splitlines() if line.strip()][-1]
    assert last not in ex.hint and last not in ex.pieces, last
    assert check.hint(name) == ex.hint and check.hint(name, step=2) == (ex.pieces or ex.hint)


def test_a_passed_check_is_recorded_and_chapter_00_shows_it(tmp_path, monkeypatch, capsys):
    """Progress is kept on the learner's machine: a passed check is recorded once (its first date),
    a stub is not, and check.progress() lists every exercise with its state."""
    record = tmp_path / "progress.json"
    monkeypatch.setenv("DIFFUSION_LAB_PROGRESS", str(record))
    name = "q_sample"

    def stub(*args, **kwargs):
        raise NotImplementedError()

    check.report(name, stub)
    assert not record.exists()
    check.report(name, EXERCISES[name].reference)
    assert set(check.passed()) == {name}
    first = record.read_text()
    check.report(name, EXERCISES[name].reference)
    assert record.read_text() == first  # once
    capsys.readouterr()
    check.progress()
    out = capsys.readouterr().out
    assert f"1 of {len(EXERCISES)} exercises done" in out and "Done ✅" in out and "To do" in out
    record.write_text("{not json")
    assert check.passed() == {}  # a damaged file starts afresh instead of stopping the notebook
    monkeypatch.setenv("DIFFUSION_LAB_PROGRESS", "off")
    check.report(name, EXERCISES[name].reference)
    check.progress()
    assert "recording is off" in capsys.readouterr().out
