"""What a user reads names no path of the machine it was made on, no helper of the workplace that made
it and no internal issue number: the README, docs, chapters, scripts, the package, model cards and
results JSON."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "a machine path": re.compile(r"/work/|\.\./shared|shared/datasets|/root/|/home/\w+|/tmp/\w*data"),
    "a workplace tool": re.compile(r"\bcpujob\b|farm-(studio|bench)"),
    "an internal issue number": re.compile(r"\b[Ii]ssues? \d+|(?<![\w/])#\d{1,3}\b(?!\w)"),
}
PRODUCT = ("README.md", "docs/*.md", "chapters/*.py", "notebooks/*.md", "notebooks/*.ipynb", "solutions/*.ipynb",
           "scripts/*.py", "diffusion_lab/*.py", "diffusion_lab/**/*.py", "data/*.md", "data/**/*.md",
           "data/**/*.json", "site/*.md", "pyproject.toml", "environment.yml", "Makefile", ".ci/run")


def product_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--", *PRODUCT], cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return [ROOT / line for line in out.stdout.splitlines()]
    return sorted({p for pattern in PRODUCT for p in ROOT.glob(pattern)})  # not a git checkout


def problems(name: str, text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in FORBIDDEN.items():
            m = pattern.search(line)
            if m:
                found.append(f"{name}:{number}: {what} ({m.group(0)!r})")
    return found


def test_the_product_names_no_machine_path_tool_or_issue_number():
    files = product_files()
    assert len(files) > 50, "the product files were not found"
    found = [p for f in files for p in problems(str(f.relative_to(ROOT)), f.read_text(errors="replace"))]
    assert found == [], "\n".join(found)


def test_the_scan_catches_each_kind():
    planted = ("trained on /work/data-full/MNIST\nfound in /tmp/fulldata/MNIST/raw\nmeasured through cpujob --all\n"
               "as issue 12 asked\nsee #7\nfixed upstream (googlecolab/colabtools#3023) in step 2 of 3\n")
    found = problems("planted.md", planted)
    assert [line.split(":")[1] for line in found] == ["1", "2", "3", "4", "5"], found
