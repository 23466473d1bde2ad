"""nbval in CI: the instructor edition runs up to its last exercise check; the student edition whole.

The two editions differ only in their exercise cells (scripts/editions.py). After the last check,
both run the same cells, with the worked answers in one and the package's versions in the other,
and each check has just shown the two agree. So `make test` runs those cells once, in the student
edition (notebooks/), and stops each instructor notebook here after its last check cell: every
worked answer is still run and checked in its chapter, and CI pays for about one and a half passes
instead of two. `DIFFUSION_LAB_FULL_EDITIONS=1 make test` runs every cell of both editions.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DIFFUSION_LAB_FULL_EDITIONS", "").strip().lower() in ("1", "true", "yes"):
        return
    last_check = {}  # instructor notebook -> index of its last check cell
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's notebook cells
        if cell is not None and item.path.parent == HERE and "nbval-check-output" in cell.metadata.get("tags", []):
            last_check[item.path] = max(last_check.get(item.path, -1), item.cell_num)
    after = [item for item in items if getattr(item, "cell", None) is not None and item.path in last_check
             and item.cell_num > last_check[item.path]]
    if after:
        config.hook.pytest_deselected(items=after)
        dropped = set(after)
        items[:] = [item for item in items if item not in dropped]
