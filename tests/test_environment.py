"""environment.yml (conda), pyproject.toml (pip) and the Makefile ask for the same packages."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()


def conda_pip_requirements(text: str) -> dict[str, str]:
    """The `pip:` list of an environment.yml, name -> requirement (spaces removed)."""
    lines, inside = {}, False
    for line in text.splitlines():
        if re.match(r"\s*- pip:\s*$", line):
            inside = True
        elif inside and re.match(r"\s+- ", line):
            req = line.split("- ", 1)[1].split("#")[0].replace(" ", "")
            lines[_name(req)] = req
        elif inside and line.strip() and not line.strip().startswith("#"):
            inside = False
    return lines


def makefile_pins(text: str) -> dict[str, str]:
    return {_name(r): r for r in re.findall(r'"((?:torch|torchvision)==[^"]+)"', text)}


def differences(pyproject: dict, conda: dict[str, str], pins: dict[str, str]) -> list[str]:
    """What environment.yml lacks or spells differently, one line each ([] when they agree)."""
    wanted = {}
    for req in pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]:
        if ";" in req:  # an environment marker: only for other Pythons (the conda env pins one)
            continue
        wanted[_name(req)] = req.replace(" ", "")
    wanted |= pins  # the Makefile's exact torch pins win over pyproject's lower bounds
    problems = [f"environment.yml lacks {req}" for name, req in wanted.items() if name not in conda]
    problems += [f"environment.yml has {conda[name]}, expected {req}" for name, req in wanted.items()
                 if name in conda and conda[name] != req]
    problems += [f"environment.yml has {req}, which pyproject.toml does not list" for name, req in conda.items()
                 if name not in wanted]
    return problems


def _files():
    return (tomllib.loads((ROOT / "pyproject.toml").read_text()),
            conda_pip_requirements((ROOT / "environment.yml").read_text()),
            makefile_pins((ROOT / "Makefile").read_text()))


def test_environment_yml_agrees_with_pyproject_and_the_makefile():
    pyproject, conda, pins = _files()
    assert set(pins) == {"torch", "torchvision"}, "the Makefile's torch pins were not found"
    assert len(conda) > 10, "environment.yml's pip list was not read"
    assert differences(pyproject, conda, pins) == []


@pytest.mark.parametrize("change, expected", [
    (lambda c: c.pop("pytest-xdist"), "lacks pytest-xdist"),
    (lambda c: c.update({"ipywidgets": "ipywidgets>=8"}), "has ipywidgets>=8, expected ipywidgets>=7.7"),
    (lambda c: c.update({"scipy": "scipy"}), "scipy, which pyproject.toml does not list"),
    (lambda c: c.update({"torch": "torch<=2.14.1"}), "expected torch==2.14.1"),
])
def test_a_difference_is_caught(change, expected):
    pyproject, conda, pins = _files()
    change(conda)
    assert any(expected in line for line in differences(pyproject, conda, pins))
