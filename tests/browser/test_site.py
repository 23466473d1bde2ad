"""The built course website (`make site`) in a real browser: equations typeset by MathJax, and a
kernel-free player that moves, with no JavaScript error and nothing loaded from the network."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .test_notebooks import changed_fraction, wait_for_new_image, watch

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "build" / "site" / "_build" / "html"
# Messages of the tools the site is built with, harmless, and not ours to fix.
UPSTREAM = {
    # sphinx-thebe adds its inline configuration twice under Jupyter Book 1; the site uses no thebe
    "Identifier 'THEBE_JS_URL' has already been declared",
    # MathJax 2 probes web-font support with a font at about:blank, which Chromium refuses
    "Access to font at 'about:blank'",
    "request failed: about:blank",
    # ... and asks once for its TeX font, which jupyter-server-mathjax leaves out (it renders with STIX-Web)
    "/mathjax/fonts/HTML-CSS/TeX/otf/",
}


def ours(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(known in e for known in UPSTREAM)]


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail("the website is not built: run `make site` first (make test-browser does)")
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def typeset(page) -> None:
    """Wait until MathJax (2) has started and typeset the page: the layout holds still after that."""
    page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.isReady", timeout=60_000)
    page.evaluate("() => new Promise(done => MathJax.Hub.Queue(done))")


def chapter_with(text: str) -> str:
    for page in sorted((HTML / "notebooks").glob("[0-9][0-9]_*.html")):
        if text in page.read_text(errors="replace"):
            return f"notebooks/{page.name}"
    pytest.fail(f"no chapter page contains {text!r}")


def test_site_renders_an_equation(site, browser, shots):
    errors = []
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch(page, site, errors)
    page.goto(f"{site}/{chapter_with('math notranslate')}")
    typeset(page)
    equations = page.locator(".MathJax")
    assert equations.count() > 0, "no equation typeset"
    assert page.locator(".MathJax_Error").count() == 0, "MathJax reported an error"
    equation = equations.first
    equation.scroll_into_view_if_needed()
    box = equation.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5, "the equation has no size: not typeset"
    (shots / "site").mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "site" / "equation.png"))
    assert not ours(errors), "\n".join(ours(errors))
    page.close()


def test_site_player_moves(site, browser, shots):
    errors = []
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch(page, site, errors)
    page.goto(f"{site}/{chapter_with('class=' + chr(34) + 'animation')}")
    typeset(page)  # typesetting moves the player down the page
    player = page.locator(".animation").first
    player.scroll_into_view_if_needed()
    img = player.locator("img").first
    img.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle(), timeout=30_000)
    before = img.screenshot()
    player.locator('button[title="Last frame"]').click()
    after, frac = wait_for_new_image(img, before)
    (shots / "site").mkdir(exist_ok=True)
    player.screenshot(path=str(shots / "site" / "player.png"))
    assert frac > 0, "the player's image did not change on 'Last frame'"
    player.locator('button[title="First frame"]').click()
    back, _ = wait_for_new_image(img, after)
    assert changed_fraction(before, back) < 0.01, "'First frame' did not bring the first frame back"
    assert not ours(errors), "\n".join(ours(errors))
    page.close()
