"""The app in a real browser: `streamlit run app.py` on a free port, driven by Playwright
through Debian's /usr/bin/chromium (no browser download) on a small demo.

Opens every page, goes from a query to a pair, clicks a bar of the per-query chart, feeds
a bad folder, checks that no exception is shown, and saves screenshots of each page under
``screenshots/`` (git-ignored) for a human to look at. ``BENCH_SCREENSHOT_DEMO=DIR``
runs it on another built demo instead (e.g. the full one, for README pictures).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from bench.app import routing
from bench.demo import build_demo

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("BENCH_SHOTS_DIR") or ROOT / "screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install playwright)")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (`make chromium`)",
                allow_module_level=True)

#: Counts finished script runs (every "running" -> "notRunning" change of the app).
RUN_COUNTER = """
window.__runs = 0;
window.__state = null;
new MutationObserver(() => {
  const el = document.querySelector('[data-testid="stApp"]');
  const s = el && el.getAttribute('data-test-script-state');
  if (s !== window.__state) {
    if (s === 'notRunning' && window.__state === 'running') window.__runs += 1;
    window.__state = s;
  }
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-test-script-state']});
"""
DRAWN = ("() => !document.querySelector('[data-testid=\"stSkeleton\"]')"
         " && [...document.images].every(i => i.complete)")
CHARTS = "n => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= n"


# ---------------------------------------------------------------- server and browser

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running_app(env: dict[str, str], log: Path):
    """``streamlit run app.py`` on a free port (a new server process); yields its URL."""
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
             "--server.port", str(port), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail("streamlit did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    other = os.environ.get("BENCH_SCREENSHOT_DEMO")
    return (build_demo(Path(other), scale="full") if other else
            build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small"))


@pytest.fixture(scope="module")
def app_env(demo, tmp_path_factory):
    """The server's environment: the demo, a fresh thumbnail cache, default data roots
    (the project folder and the demo)."""
    env = dict(os.environ, BENCH_DEMO_DIR=str(demo.root),
               BENCH_CACHE_DIR=str(tmp_path_factory.mktemp("browser_cache")))
    env.pop("BENCH_DATA_ROOTS", None)
    return env


@pytest.fixture(scope="module")
def server(demo, app_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("browser_log") / "streamlit.log"
    with running_app(app_env, log) as url:
        yield url, demo


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1440, "height": 1000})
    pg.add_init_script(RUN_COUNTER)
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        pg.close()


def open_page(pg, url: str) -> None:
    """Load *url*; a new document starts "initial", so "notRunning" means a run ended."""
    pg.goto(url)
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    settle(pg)


def settle(pg) -> None:
    """Let follow-up runs (a page switch, the deferred charts) finish too."""
    for _ in range(20):
        n = pg.evaluate("window.__runs")
        pg.wait_for_timeout(400)
        if pg.evaluate("window.__runs") == n and pg.evaluate(
                "document.querySelector('[data-testid=\"stApp\"]')"
                ".getAttribute('data-test-script-state')") == "notRunning":
            break
    pg.wait_for_function(DRAWN)


def click_until(pg, locator, url_glob: str) -> None:
    """Click until the page address matches *url_glob* (a lost click is retried)."""
    for attempt in range(3):
        locator.click()
        try:
            pg.wait_for_url(url_glob, timeout=15_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(pg)


def choose(pg, key: str, label: str) -> None:
    """Pick *label* in the radio widget *key*; retried, since a click that lands while
    a run redraws the widget can be lost."""
    checked = (f"() => {{ const e = document.querySelector('.st-key-{key} input:checked');"
               " return e && e.closest('label').innerText.trim(); }")
    for attempt in range(3):
        pg.locator(f".st-key-{key}").get_by_text(label, exact=True).click()
        try:
            pg.wait_for_function(f"() => ({checked})() === {label!r}", timeout=10_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(pg)


def no_exception(pg) -> None:
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()[:2000]


def shot(pg, name: str) -> Path:
    """Screenshot of the whole page: the app scrolls inside its main block, so the
    viewport is made as tall as that block first. Saved under ``screenshots/`` or
    ``$BENCH_SHOTS_DIR``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = pg.viewport_size
    height = pg.evaluate("() => Math.max(...['stMain', 'stSidebar'].map(id => "
                         "(document.querySelector(`[data-testid=${id}]`) || {}).scrollHeight"
                         " || 0))")
    pg.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 40)})
    pg.wait_for_timeout(300)
    pg.wait_for_function(DRAWN)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path))
    pg.set_viewport_size(size)
    return path


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("path, name, title", [
    ("/", "overview", "Overview"),
    ("/query?m=local-sp&q=1", "query", "Query"),
    ("/pair?m=local-sp&q=1", "pair", "Pair"),
    ("/gpr1200", "gpr1200", "GPR1200"),
    ("/data", "data", "Data & help"),
])
def test_every_page_opens(server, page, path, name, title):
    url, _ = server
    open_page(page, url + path)
    if name == "overview":
        page.wait_for_function(CHARTS, arg=4)
        settle(page)
    assert page.locator("h1").first.inner_text().strip() == title
    assert page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').count() == 2
    no_exception(page)
    shot(page, name)


def test_from_a_query_to_a_pair_and_its_views(server, browser, page):
    url, _ = server
    open_page(page, url + "/query?m=local-sp&q=2&k=10")
    assert page.locator('[data-testid="stImage"]').count() == 11  # query + 10 tiles
    click_until(page, page.get_by_role("button", name="Next"), "**/query?*q=3*")
    click_until(page, page.get_by_role("button", name="Prev"), "**/query?*q=2*")
    click_until(page, page.locator(".st-key-pair_2 button"), "**/pair?*")
    assert "q=2" in page.url and "i=" in page.url
    assert page.locator("h1").first.inner_text().strip() == "Pair"
    no_exception(page)
    shot(page, "pair_overlay")
    choose(page, "w_mode", "Error map")
    no_exception(page)
    page.wait_for_url("**mode=errors**")
    settle(page)
    shot(page, "pair_errors")
    choose(page, "w_mode", "Side by side")
    page.wait_for_url("**mode=side**")
    settle(page)
    no_exception(page)
    shot(page, "pair_side")
    assert page.get_by_role("button", name="Download PNG").count() == 1
    # the URL reopens the same view in a new tab
    other = browser.new_page(viewport={"width": 1440, "height": 2000})
    try:
        other.add_init_script(RUN_COUNTER)
        open_page(other, page.url)
        assert other.locator("h1").first.inner_text().strip() == "Pair"
        assert other.locator(".st-key-w_mode input:checked").evaluate(
            "e => e.closest('label').innerText").strip() == "Side by side"
        assert other.locator(".st-key-w_i").inner_text() == page.locator(
            ".st-key-w_i").inner_text()
    finally:
        other.close()


# Clicking a (sorted) bar to open its query: tests/test_browser_errors.py.


def test_bad_folder_shows_an_error_and_the_app_keeps_working(server, page):
    url, _ = server
    open_page(page, url + "/")
    choose(page, "w_src", "Folder in released layout")
    box = page.locator(".st-key-w_root input")
    for attempt in range(3):  # a late rerun may redraw the input before Enter commits it
        box.fill(str(ROOT / "nonexistent" / "benchmarks"))  # inside the default roots
        box.press("Enter")
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=\"stAlertContentError\"]')]"
                ".some(e => e.innerText.includes('missing folder'))", timeout=15_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(page)
    err = page.locator('[data-testid="stAlertContentError"]')
    assert err.count() >= 1 and "missing folder" in err.first.inner_text()
    no_exception(page)
    shot(page, "bad_folder")
    choose(page, "w_src", "Demo (synthetic)")
    page.wait_for_function("() => document.querySelectorAll("
                           "'[data-testid=\"stMetric\"]').length >= 11")
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator('[data-testid="stMetric"]').count() >= 11


def test_user_study_page_opens(server, page):
    url, _ = server
    open_page(page, url + "/")
    open_page(page, url + "/study")
    assert page.locator("h1").first.inner_text().strip().startswith("User study")
    no_exception(page)
    shot(page, "study")


def body_text(pg) -> str:
    return pg.locator("body").inner_text()


@pytest.fixture
def secret_outside():
    """A file outside every data root, with a first line like /etc/shadow's."""
    folder = Path(tempfile.mkdtemp(prefix="bench-outside-"))
    secret = folder / "shadow"
    secret.write_text("root:SECRET-HASH-FROM-OUTSIDE:19000:0:99999:7:::\n")
    yield secret
    shutil.rmtree(folder)


def test_a_url_naming_a_file_outside_the_roots_shows_nothing_of_it(server, page,
                                                                    secret_outside):
    url, demo = server
    base = (f"{url}/gpr1200?src=gpr&gimages={quote(str(demo.gpr_images))}"
            f"&gfile={quote(str(demo.gpr_embeddings))}")
    for order in ("/etc/shadow", str(secret_outside)):
        open_page(page, f"{base}&order={quote(order)}")
        text = body_text(page)
        assert "root:" not in text and "SECRET" not in text
        err = page.locator('[data-testid="stMain"] [data-testid="stAlertContentError"]')
        assert err.count() == 1
        assert f"Order file {order} is outside the data folders" in err.first.inner_text()
        assert "--data-root" in err.first.inner_text()
        side = page.locator('[data-testid="stSidebar"] [data-testid="stAlertContentError"]')
        assert "Order file: outside the allowed data folders" in side.first.inner_text()
        assert page.locator('[data-testid="stMetric"]').count() == 0
        no_exception(page)
    shot(page, "refused_path")
    # the root=/etc variant, on a page of its own
    open_page(page, f"{url}/query?src=folder&root=/etc")
    text = body_text(page)
    assert "Folder /etc is outside the data folders" in text and "root:" not in text
    assert "missing folder" not in text
    no_exception(page)
    # the same link with paths inside the roots works
    open_page(page, base)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator('[data-testid="stMetric"]').count() >= 7
    no_exception(page)


FIRST_REQUESTS = [("/", "Overview"), ("/query?m=local-sp&q=1", "Query"),
                  ("/pair?m=local-sp&q=1", "Pair"), ("/gpr1200", "GPR1200"),
                  ("/study", "User study"), ("/data", "Data & help")]


@pytest.mark.parametrize("path, title", FIRST_REQUESTS)
def test_first_request_to_a_page_on_a_fresh_server(app_env, browser, tmp_path, path, title):
    """Streamlit's legacy pages/ mode: the first request after a server start for a page
    URL runs that page file on its own unless bench.app.routing.ensure_routed hands it to the
    router. A new server process for each URL; the page must have the app's sidebar, its
    menu of every page, and no "Page not found" dialog."""
    with running_app(app_env, tmp_path / "streamlit.log") as url:
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.add_init_script(RUN_COUNTER)
        pg.set_default_timeout(60_000)
        try:
            open_page(pg, url + path)
            assert pg.locator("h1").first.inner_text().strip().startswith(title)
            assert pg.locator('.st-key-w_src').count() == 1  # the data-source sidebar
            assert pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]'
                              ).count() == 2
            nav = pg.locator('.st-key-app_nav a')  # the app's own menu (routing.menu)
            assert nav.count() == len(routing.PAGES)
            assert pg.locator('[role="dialog"]').count() == 0
            no_exception(pg)
            # a second tab on the same server gets the same page
            open_page(pg, url + path)
            assert pg.locator("h1").first.inner_text().strip().startswith(title)
            assert pg.locator('.st-key-w_src').count() == 1
        finally:
            pg.close()
