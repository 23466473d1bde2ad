"""Rewrite the result sentences that the README and the results page state, from their claims
(diffusion_lab/claims.py) and the committed data; --check exits 1 when a file is out of date.

    python scripts/render_claims.py            # after new results: rewrite the marked sentences
    python scripts/render_claims.py --check    # what tests/test_claims.py asks
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package
from diffusion_lab.claims import ClaimError, render_marked  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = ("README.md", "docs/results.md")


def main(check: bool) -> int:
    stale = []
    for name in FILES:
        path = ROOT / name
        try:
            new = render_marked(path.read_text())
        except ClaimError as e:
            print(f"{name}: {e}", file=sys.stderr)
            return 1
        if new != path.read_text():
            stale.append(name)
            if not check:
                path.write_text(new)
    if check and stale:
        print(f"out of date: {', '.join(stale)}; run `python scripts/render_claims.py`.", file=sys.stderr)
        return 1
    print(f"{'checked' if check else 'written'}: {', '.join(FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
