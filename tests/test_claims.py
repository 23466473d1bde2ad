"""Every result sentence the course states is a claim (diffusion_lab/claims.py) that the committed
data in data/results must support: the test fails with the claim, its numbers and the rule."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_lab import claims
from diffusion_lab.results import load_results

ROOT = Path(__file__).resolve().parent.parent
KEYS = sorted(claims.CLAIMS)
SAID = re.compile(r"""say\(([^)]*)\)""")


def _stated() -> dict[str, list[str]]:
    """claim key -> where it is stated: a chapter's say(...) or a marked block in README / results page."""
    where: dict[str, list[str]] = {}
    for path in sorted((ROOT / "chapters").glob("*.py")):
        for call in SAID.findall(path.read_text()):
            for key in re.findall(r"""["'](\w+)["']""", call):
                where.setdefault(key, []).append(path.stem)
    for name in ("README.md", "docs/results.md"):
        for m in claims.MARKED.finditer((ROOT / name).read_text()):
            where.setdefault(m.group(2), []).append(name)
    return where


@pytest.mark.parametrize("key", KEYS)
def test_the_committed_data_supports_the_claim(key):
    claims.check(key)  # raises ClaimError with the numbers and the rule


def _flipped(claim) -> list[dict]:
    """The claim's part with its two rows' numbers exchanged (or, for a tie, pulled far apart)."""
    rows = copy.deepcopy(claims.rows_of(claim.part))
    a, b = claims.find_row(claim.part, claim.a, rows), claims.find_row(claim.part, claim.b, rows)
    a, b = (a[claim.a_in] if claim.a_in else a), (b[claim.b_in] if claim.b_in else b)
    ma, mb = claim.metric, claim.b_metric or claim.metric
    if claim.expect == "tie":
        a[ma] = 0.0 if ma in claims.FRACTIONS else 10 * b[mb] + 1000
        b[mb] = 1.0 if mb in claims.FRACTIONS else b[mb]
    else:
        for ka, kb in ((ma, mb), (f"{ma}_std", f"{mb}_std")):
            if ka in a:
                a[ka], b[kb] = b[kb], a[ka]
    return rows


@pytest.mark.parametrize("key", KEYS)
def test_a_claim_fails_when_its_data_is_flipped(key):
    claim = claims.CLAIMS[key]
    with pytest.raises(claims.ClaimError, match=f"claim '{key}' says .* but the data says"):
        claims.check(key, _flipped(claim))


def test_the_rule():
    M = claims.Measure
    assert claims.verdict(M(10, 1, 1000), M(14, 1, 1000), lower_is_better=True) == "a"  # 4 > 2 sqrt(2) = 2.83
    assert claims.verdict(M(10, 1, 1000), M(12.5, 1, 1000), lower_is_better=True) == "tie"
    assert claims.verdict(M(0.99, 0.005, 500), M(0.95, 0.01, 500), lower_is_better=False) == "a"
    fraction = claims.measure({"num": 500, "class_accuracy": 1.0}, "class_accuracy")
    assert 0 < fraction.std < 0.01  # 100% of 500 still has a spread (Agresti-Caffo)


def test_a_row_without_a_spread_ranks_nothing():
    with pytest.raises(claims.ClaimError, match="ranks nothing"):
        claims.measure({"num": 100, "fd": 50.0, "command": "x"}, "fd")


def test_every_claim_is_stated_and_every_statement_is_a_claim():
    where = _stated()
    unknown = sorted(set(where) - set(KEYS))
    unused = [k for k in KEYS if k not in where]
    assert not unknown, f"stated but not in claims.CLAIMS: {unknown}"
    assert not unused, f"claims no chapter, README or results page states: {unused}"


def test_readme_and_results_page_sentences_are_rendered_from_the_data():
    r = subprocess.run([sys.executable, "scripts/render_claims.py", "--check"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "<!-- claim:" in (ROOT / "README.md").read_text()  # the headline is a claim


def test_readme_headline_table_is_the_committed_data():
    """The README's table of shipped models shows what data/results/checkpoints.json holds."""
    readme = (ROOT / "README.md").read_text()
    for r in load_results("checkpoints"):
        acc = f"{100 * r['class_accuracy']:.1f}%" if "class_accuracy" in r else "-"
        cells = f"| {r['num']} | {r['fd']:.1f} ± {r['fd_std']:.1f} ({r['fd_real_floor']:.1f}) | {acc} |"
        assert f"| `{r['checkpoint']}` |" in readme and cells in readme, f"README row for {r['checkpoint']}: {cells}"
