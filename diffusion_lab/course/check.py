"""Exercise checks that name the mistake.

    q_sample = check.q_sample(q_sample)

runs the learner's function on the exercise's inputs (course/exercises.py, the exercise x mistake
table) and prints one verdict:

    Correct ✅                  the cells below use the learner's function;
    Not done yet ⏳ + the hint  the function still raises NotImplementedError (the student edition's stub);
    Mistake ❌                  a known one: which, why it is wrong, and where the course explains it;
    Not yet ❌                  the first wrong value (where, expected, got) and the hint;
    Error ❌                    shape and dtype errors explained in the exercise's terms.

It returns the function the next cells should use: the learner's when it is correct, otherwise the
package's reference (with the same signature), so Run All always works, and says which.
`check.solution("q_sample")` shows a worked answer on purpose; `check.diagnose` returns the verdict
without printing (the tests use it).
"""

from __future__ import annotations

import datetime
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints import atomic_write
from ..settings import progress_file, shown_path
from .exercises import EXERCISES, Case, Exercise, Mistake

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"  # the sources, present in a clone of the repository


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str  # "correct", "not_done", "mistake", "wrong" (an unknown wrong answer) or "error"
    message: str
    mistake: str | None = None  # the key of the recognised mistake

    @property
    def ok(self) -> bool:
        return self.status == "correct"


def where(place: tuple[str, str]) -> str:
    """("02", "Two ways to get x_t") -> 'chapter 02, section "Two ways to get x_t"'."""
    chapter, section = place
    doc = "notebooks/CONVENTIONS.md" if chapter == "CONVENTIONS" else f"chapter {chapter}"
    return f'{doc}, section "{section}"'


def _as_tensor(out):
    return out if torch.is_tensor(out) else torch.as_tensor(out, dtype=torch.float64)


def _same(a, b, ex: Exercise) -> bool:
    if not all(torch.is_tensor(v) or isinstance(v, (int, float)) for v in (a, b)):
        return False
    a, b = _as_tensor(a), _as_tensor(b)
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=ex.rtol, atol=ex.atol, equal_nan=True)


def _call(fn, case: Case):
    with torch.no_grad():
        return fn(*case.args, **case.kwargs)


def _shape_problem(out, expected, ex: Exercise) -> str | None:
    """A wrong type, shape or dtype, said in the exercise's terms (None when they are right)."""
    if out is None:
        return "your function returned None: it needs a `return` statement."
    if isinstance(out, tuple):
        return f"your function returned a tuple of {len(out)} values; return only {ex.returns}."
    if not (torch.is_tensor(out) or isinstance(out, (int, float))):
        return f"your function returned a {type(out).__name__}; it should return {ex.returns}."
    got = tuple(_as_tensor(out).shape)
    want = tuple(expected.shape)
    if got != want:
        if not want and _as_tensor(out).numel() > 1:
            return f"your function returned shape {got}, expected one number: {ex.shape_help}"
        return f"your function returned shape {got}, expected {want}. {ex.shape_help}".strip()
    if ex.dtype is not None and torch.is_tensor(out) and out.dtype != ex.dtype:
        why = {torch.uint8: "uint8 holds whole numbers 0..255 only, so it cannot hold -1 or 0.5",
               torch.float64: "schedules are float64 (exact), so mixing them in promotes the result; "
                              "cast with .float() or .to(x0.dtype)"}.get(out.dtype, "")
        return f"your function returned {out.dtype}, expected {ex.dtype}" + (f": {why}." if why else ".")
    return None


def _explain_error(err: Exception, ex: Exercise) -> str:
    text = str(err).split("\n")[0]
    if isinstance(err, RuntimeError) and ("size of tensor" in text or "shape" in text):
        return f"the shapes do not fit ({text}). {ex.shape_help}".strip()
    if isinstance(err, RuntimeError) and ("dtype" in text or "scalar type" in text):
        return (f"float32 and float64 were mixed ({text}). Schedules are float64: cast with .float() "
                f"or .to(x0.dtype).")
    if isinstance(err, TypeError) and "argument" in text:
        return f"{text}. The exercise calls {ex.signature}."
    return f"your function raised {type(err).__name__}: {text}"


def _first_difference(case: Case, out, expected) -> str:
    out, expected = _as_tensor(out).double(), _as_tensor(expected).double()
    if not expected.shape:
        return f"for {case.label}: expected {expected.item():.6g}, got {out.item():.6g}"
    bad = ~torch.isclose(out, expected, rtol=1e-4, atol=1e-5)
    index = tuple(int(i) for i in bad.nonzero()[0])
    place = case.locate(index) if case.locate else f"{case.label}, element {index}"
    return f"first wrong value at {place}: expected {expected[index].item():.6g}, got {out[index].item():.6g}"


def diagnose(name: str, fn) -> Verdict:
    """Run fn on the exercise's cases and say what it got right or wrong (without printing)."""
    ex = _exercise(name)
    cases = ex.cases()
    outs = []
    for case in cases:
        try:
            outs.append(_call(fn, case))
        except NotImplementedError:
            return Verdict(name, "not_done", f"not done yet. Hint: {ex.hint}")
        except Exception as err:  # the learner's code may fail in any way: explain, don't crash
            return Verdict(name, "error", f"{_explain_error(err, ex)} Hint: {ex.hint}")
    expected = [_call(ex.reference, case) for case in cases]
    problems = [_shape_problem(o, e, ex) for o, e in zip(outs, expected)]
    if not any(problems) and all(_same(o, e, ex) for o, e in zip(outs, expected)):
        return Verdict(name, "correct", "correct.")
    for m in ex.mistakes:
        if all(_same(o, _call(m.fn, case), ex) for o, case in zip(outs, cases)):
            return Verdict(name, "mistake", _mistake_message(m), m.key)
    problem = next((p for p in problems if p), None)
    if problem:
        return Verdict(name, "wrong", f"{problem} Hint: {ex.hint}")
    case, out, exp = next((c, o, e) for c, o, e in zip(cases, outs, expected) if not _same(o, e, ex))
    return Verdict(name, "wrong", f"not yet: {_first_difference(case, out, exp)}. Hint: {ex.hint}")


def _mistake_message(m: Mistake) -> str:
    return f"a known mistake: {m.what}. Why it is wrong: {m.why}. More in {where(m.where)}."


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}.")
    return EXERCISES[name]


# The verdict's word comes first and its mark after: some systems draw these emoji as empty boxes.
LABELS = {"correct": ("Correct", "✅"), "not_done": ("Not done yet", "⏳"), "mistake": ("Mistake", "❌"),
          "wrong": ("Not yet", "❌"), "error": ("Error", "❌")}
_LEADS = ("correct.", "not done yet.", "a known mistake: ", "not yet: ")  # said by the label already


def headline(verdict: Verdict) -> str:
    """'Correct ✅ q_sample.', 'Not done yet ⏳ q_sample. Hint: ...', 'Mistake ❌ q_sample: ...'."""
    word, mark = LABELS[verdict.status]
    body = verdict.message
    for lead in _LEADS:
        if body.startswith(lead):
            body = body[len(lead):].lstrip()
            break
    if not body:
        return f"{word} {mark} {verdict.name}."
    return f"{word} {mark} {verdict.name}" + (". " if body.startswith("Hint:") else ": ") + body


def report(name: str, fn):
    """Print the verdict on fn; return fn if it is correct, else the package's reference (same signature)."""
    verdict = diagnose(name, fn)
    print(headline(verdict))
    if verdict.ok:
        record_pass(name)
        return fn
    ex = EXERCISES[name]
    print(f"   Until yours passes, the cells below use the package's version ({ex.package}).")
    return ex.reference


def passed() -> dict[str, str]:
    """{exercise: when its check first passed (ISO date)} from this machine's progress file."""
    path = progress_file()
    if path is None or not path.exists():
        return {}
    try:
        return {k: str(v) for k, v in json.loads(path.read_text()).items() if k in EXERCISES}
    except (ValueError, AttributeError):  # a damaged file is not the learner's problem: start afresh
        return {}


def record_pass(name: str) -> None:
    """Note that `name`'s check passed (once; the first date is kept). Never stops a notebook: a
    read-only home just records nothing."""
    path = progress_file()
    done = passed()
    if path is None or name in done:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(
            json.dumps(done | {name: datetime.date.today().isoformat()}, indent=1) + "\n"))
    except OSError:
        pass


def progress() -> None:
    """Print, chapter by chapter, which exercises' checks have passed on this machine (chapter 00)."""
    done = passed()
    for ex in EXERCISES.values():
        mark = f"Done ✅ {done[ex.name]}" if ex.name in done else "To do"
        print(f"{ex.chapter:<30} {ex.name:<20} {mark}")
    print(f"{len(done)} of {len(EXERCISES)} exercises done"
          + (f" (recorded in {shown_path(progress_file())})" if progress_file() else " (recording is off)"))


# One checker per exercise, written out so that a learner finds `check.q_sample` here (and its help in
# `check.q_sample?`). Each returns the function the next cells use: yours if it is correct, else the
# package's. tests/test_check.py keeps this list in step with the exercise table.

def to_model_range(fn):
    """Check to_model_range(pixels) (chapter 00)."""
    return report("to_model_range", fn)


def alpha_bar(fn):
    """Check alpha_bar(betas) (chapter 01)."""
    return report("alpha_bar", fn)


def q_sample(fn):
    """Check q_sample(x0, t, alpha_bar, noise) (chapter 02)."""
    return report("q_sample", fn)


def timestep_embedding(fn):
    """Check timestep_embedding(t, dim) (chapter 03)."""
    return report("timestep_embedding", fn)


def training_loss(fn):
    """Check training_loss(model, x0, t, noise, schedule, y=None) (chapter 04)."""
    return report("training_loss", fn)


def ddpm_step(fn):
    """Check my_ddpm_step(x_t, eps, t, schedule, noise, clip=False) (chapter 05)."""
    return report("ddpm_step", fn)


def ddim_step(fn):
    """Check my_ddim_step(x_t, eps, t, t_prev, schedule) (chapter 06)."""
    return report("ddim_step", fn)


def guided_eps(fn):
    """Check my_guided_eps(eps_c, eps_u, s) (chapter 07)."""
    return report("guided_eps", fn)


def frechet_diagonal(fn):
    """Check my_frechet_diagonal(mu1, var1, mu2, var2) (chapter 08)."""
    return report("frechet_diagonal", fn)


def euler_step(fn):
    """Check my_euler_step(x, eps, sigma, sigma_next) (chapter 09)."""
    return report("euler_step", fn)


def gaussian_kl(fn):
    """Check my_kl(mean, log_var) (chapter 10)."""
    return report("gaussian_kl", fn)


def attention_weights(fn):
    """Check my_attention_weights(q, k, keep) (chapter 11)."""
    return report("attention_weights", fn)


def hflip(fn):
    """Check hflip(x0, flip) (chapter 12)."""
    return report("hflip", fn)


def flow_matching_loss(fn):
    """Check my_flow_matching_loss(model, x0, t, noise, y=None) (chapter 13)."""
    return report("flow_matching_loss", fn)


def reverse_sde_step(fn):
    """Check my_reverse_sde_step(x, score, beta_dt, noise, last) (chapter 14)."""
    return report("reverse_sde_step", fn)


def whose(fn) -> str:
    """"the package's" when fn is the reference a check handed back, else "your": for cells that say
    which version they ran."""
    return "the package's" if any(fn is ex.reference for ex in EXERCISES.values()) else "your"


def hint(name: str, step: int = 1) -> str:
    """The exercise's hint (the student edition shows it in a collapsible block under the exercise):
    step 1 the idea and its equation, step 2 the pieces to build it from."""
    ex = _exercise(name)
    return ex.pieces if step >= 2 and ex.pieces else ex.hint


def solution(name: str) -> None:
    """Print a worked answer: the exercise cell of the chapter's instructor edition when the course's
    notebooks are here (a clone of the repository), and where the package implements it."""
    ex = _exercise(name)
    source = CHAPTERS / f"{ex.chapter}.py"
    answer = extract_solution(source.read_text(), ex.function) if source.exists() else None
    if answer:
        print(f"# A worked answer (chapter {ex.chapter[:2]}, the instructor edition):\n{answer}")
    if answer:
        print(f"# The package's own version: {ex.package}")
        return
    module, _, attr = ex.package.rpartition(".")
    obj = getattr(__import__(module, fromlist=[attr]), attr)
    print(f"# The package's own version, {ex.package}:\n{inspect.getsource(obj)}")


SOLUTION_BLOCK = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n(?P<body>.*?)^[ \t]*### END SOLUTION\n?",
                            re.MULTILINE | re.DOTALL)


def extract_solution(source: str, function: str) -> str | None:
    """The definition of `function` in a chapter's jupytext source, solution markers removed."""
    match = re.search(rf"^def {re.escape(function)}\(.*?(?=^# %%|\Z)", source, re.MULTILINE | re.DOTALL)
    if not match:
        return None
    return SOLUTION_BLOCK.sub(lambda m: m.group("body"), match.group(0)).rstrip() + "\n"
