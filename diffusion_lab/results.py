"""The project's measured numbers, one JSON file of rows per part: data/results/<part>.json.

scripts/evaluate_all.py and scripts/recipe_sweep.py write them (each row records the command that
reproduces it); the README's tables, the model cards and chapter 08 read them:

    from diffusion_lab.results import load_results
    rows = load_results("guidance")   # [] if the part was never measured
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoints import atomic_write
from .settings import shipped_data

RESULTS_DIR = shipped_data("results")


def results_path(part: str) -> Path:
    return RESULTS_DIR / f"{part}.json"


def load_results(part: str) -> list[dict]:
    """The rows of one part, or [] when it has not been measured (its file is absent)."""
    path = results_path(part)
    return json.loads(path.read_text()) if path.exists() else []


def save_results(part: str, rows: list[dict], indent: int = 1) -> Path:
    """Write all rows of one part at once (atomically: an interrupted write leaves the old file)."""
    path = results_path(part)
    text = json.dumps(rows, indent=indent) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def append_result(part: str, row: dict, key: str = "name") -> None:
    """Add one row, replacing the row with the same `key` if there is one."""
    save_results(part, [r for r in load_results(part) if r.get(key) != row[key]] + [row])


def replace_section(page: Path, name: str, body: str) -> None:
    """Write `body` between the marks <!-- name:start --> and <!-- name:end --> of a Markdown page (the
    results page's generated sections); the rest of the page stays as it is."""
    text, start, end = Path(page).read_text(), f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{page} has no {start} ... {end} section to fill.")
    head, rest = text.split(start, 1)
    atomic_write(page, lambda tmp: Path(tmp).write_text(f"{head}{start}\n{body.rstrip(chr(10))}\n{end}"
                                                        f"{rest.split(end, 1)[1]}"))
