"""Open notebooks in a real JupyterLab, run them, move each slider, and save screenshots: the check
that the widgets work for a learner (not only that the cells execute).

Dev tool, not a dependency: needs Playwright (`pip install playwright`, never `playwright install`)
and Debian's chromium. Usage:

    python scripts/screenshot_widgets.py --out /tmp/shots 01_noise_schedule 06_ddim
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--out", default="/tmp/shots")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    p.add_argument("--timeout", type=int, default=300, help="seconds to wait for a notebook to run")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = Path(tempfile.mkdtemp()) / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')  # never touch the notebooks
    env = {**os.environ, "DIFFUSION_LAB_FAST": os.environ.get("DIFFUSION_LAB_FAST", "1"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings.parent.parent)}
    lab = subprocess.Popen(
        [a.python, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.token=",
         "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={ROOT}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            for name in a.notebooks:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/notebooks/{name}.ipynb?reset")  # no restored tabs
                page.wait_for_selector(".jp-Notebook:visible", timeout=60_000)
                time.sleep(3)
                page.click("text=Run", timeout=10_000)
                page.click("text=Run All Cells", timeout=10_000)
                t0 = time.time()
                # Done when no cell shows the busy marker [*] any more.
                while time.time() - t0 < a.timeout:
                    time.sleep(3)
                    if page.locator(".jp-InputPrompt:has-text('[*]')").count() == 0:
                        break
                time.sleep(3)
                sliders = page.locator(".jupyter-widgets .noUi-handle")
                n = sliders.count()
                print(f"{name}: {n} slider(s), ran in {time.time() - t0:.0f} s", flush=True)
                for i in range(n):
                    handle = sliders.nth(i)
                    handle.scroll_into_view_if_needed()
                    page.screenshot(path=str(out / f"{name}_slider{i}_before.png"))
                    handle.focus()
                    for _ in range(3):
                        handle.press("ArrowRight")
                        time.sleep(0.4)
                    time.sleep(2)
                    page.screenshot(path=str(out / f"{name}_slider{i}_after.png"))
                dropdowns = page.locator(".jupyter-widgets select")
                for i in range(dropdowns.count()):
                    d = dropdowns.nth(i)
                    d.scroll_into_view_if_needed()
                    values = d.locator("option").all_inner_texts()
                    if len(values) > 1:
                        d.select_option(index=min(3, len(values) - 1))
                        time.sleep(2)
                        page.screenshot(path=str(out / f"{name}_dropdown{i}.png"))
                page.close()
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    print("screenshots in", out)


if __name__ == "__main__":
    sys.exit(main())
