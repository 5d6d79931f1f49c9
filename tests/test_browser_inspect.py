"""Inspection at a glance, in a real browser at 1366x768 on real-size data (issue 17):
`streamlit run app.py` on ``benchmarks/make_realsize.py --quick --images 40`` (70 queries,
the real layout and file formats), driven by Playwright through Debian's /usr/bin/chromium.

- the Query page's first screen holds the query crop and two full rows of result tiles,
  with one method and with two side by side; Prev / Next and the metric cards are not cut;
- a click anywhere on a tile opens its pair; Tab focuses a tile (a ring shows) and Enter
  opens it; ← / → / j / k step through queries and pairs, Esc goes back;
- the lightbox: a tile enlarged, ← / → step through the ranked list, Esc closes it;
- the Overview's per-query chart: the worst query's bar (found here from the ranks file)
  opens that query; a click on a seg bar of the IoU histogram opens that bin's seg pairs;
- a fresh server never shows Streamlit's own page list; no page asks any host but the
  app's for anything (every test fails on such a request).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlparse

import numpy as np
import pytest

from tests.test_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAWN,
    RUN_COUNTER,
    SHOTS,
    browser,
    no_exception,
    open_page,
    running_app,
    settle,
    sync_api,
)

ROOT = Path(__file__).resolve().parents[1]
W, H = 1366, 768

#: Records whether Streamlit's own page list (the legacy pages/ menu) was ever in the DOM.
NAV_WATCH = """
window.__stNav = false;
new MutationObserver(() => {
  if (document.querySelector('[data-testid="stSidebarNav"]')) window.__stNav = true;
}).observe(document, {subtree: true, childList: true});
"""


@pytest.fixture(scope="module")
def realsize(tmp_path_factory):
    """The quick real-size benchmark with JPEGs of the first 40 database images."""
    out = tmp_path_factory.mktemp("realsize") / "bench"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_realsize.py"), "--out",
                    str(out), "--quick", "--images", "40"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def truth(realsize):
    """Ground truth, ranks and AP of both methods, read here with bench's readers."""
    from bench.formats.revisited import load_gnd, load_ranks
    from bench.metrics.revisited import evaluate_revisited, scan_ranks

    g = load_gnd(next(realsize.rglob("gnd_roxford5k.pkl")))
    out = {"gnd": g}
    for m in ("plain", "withr1m"):
        r = np.asarray(load_ranks(realsize / "results" / "image-level" / m / "roxford.npy", g))
        out[m] = r
        out[m, "ap"] = evaluate_revisited(scan_ranks(r, g), g)["medium"].ap
    return out


@pytest.fixture(scope="module")
def env(realsize, tmp_path_factory):
    import os

    return dict(os.environ, BENCH_DATA_ROOTS=str(realsize),
                BENCH_CACHE_DIR=str(tmp_path_factory.mktemp("inspect_cache")))


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    log = tmp_path_factory.mktemp("inspect_log") / "streamlit.log"
    with running_app(env, log) as url:
        yield url


@pytest.fixture
def page(browser, server):  # noqa: F811
    pg = browser.new_page(viewport={"width": W, "height": H})
    pg.add_init_script(RUN_COUNTER)
    pg.set_default_timeout(60_000)
    host = urlparse(server).netloc
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url)
          if urlparse(r.url).scheme in ("http", "https", "ws", "wss")
          and urlparse(r.url).netloc != host else None)
    pg.on("dialog", lambda d: outside.append(f"dialog: {d.message}"))
    try:
        yield pg
    finally:
        pg.close()
    assert not outside, f"requests to other hosts (or dialogs): {outside[:5]}"


def src(realsize) -> str:
    return f"src=folder&root={quote(str(realsize))}"


def box(pg, selector: str) -> dict:
    b = pg.locator(selector).first.bounding_box()
    assert b is not None, selector
    return b


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.wait_for_function(DRAWN)
    pg.screenshot(path=str(SHOTS / f"{name}.png"))


def not_cut(pg, selector: str) -> None:
    """No element matching *selector* has text wider than its box (an ellipsis)."""
    cut = pg.evaluate(f"""() => [...document.querySelectorAll({selector!r})]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
        .map(e => e.innerText)""")
    assert not cut, cut


def first_screen_rows(pg, prefix: str, per_row: int) -> None:
    """Two full rows of tiles of *prefix* (``qtile_`` / ``qtile_b``) above the fold."""
    last = box(pg, f".st-key-{prefix}{2 * per_row} img")
    first = box(pg, f".st-key-{prefix}1 img")
    assert last["y"] + last["height"] <= H, (last, "second row below the first screen")
    assert last["y"] > first["y"] + first["height"] / 2  # really the second row


def wait_url(pg, pattern: str) -> None:
    pg.wait_for_url(re.compile(pattern))
    settle(pg)


def test_query_first_screen_is_the_grid(page, server, realsize, truth):
    open_page(page, f"{server}/query?{src(realsize)}&m=plain&q=3")
    no_exception(page)
    crop = box(page, '[data-testid="stMain"] [data-testid="stImage"] img')
    assert crop["y"] < 200 and crop["x"] + crop["width"] < W / 2  # a small crop, top left
    per_row = page.locator('[class*="st-key-qtile_"]').evaluate_all(
        "els => new Set(els.map(e => Math.round(e.getBoundingClientRect().y))).size")
    assert per_row >= 2
    first_screen_rows(page, "qtile_", 6)  # the default density: 6 per row
    not_cut(page, '[data-testid="stMetricValue"], [data-testid="stMetricValue"] div')
    not_cut(page, '.st-key-prev_q button p, .st-key-next_q button p')
    # names are the ranking's, in rank order
    col = truth["plain"][:12, 3].tolist()
    tiles = [page.locator(f".st-key-qtile_{r}").inner_text() for r in range(1, 13)]
    assert all(truth["gnd"].imlist[i] in t for i, t in zip(col, tiles, strict=True))
    shot(page, "inspect_query_first_screen")
    # a second method: both rankings as tiles, two rows each on the first screen
    open_page(page, f"{server}/query?{src(realsize)}&m=plain&m2=withr1m&q=3")
    no_exception(page)
    first_screen_rows(page, "qtile_", 4)
    first_screen_rows(page, "qtile_b", 4)
    # exact rank of B's first image in A's ranking, from the ranks file
    i = int(truth["withr1m"][0, 3])
    ra = truth["plain"][:, 3].tolist().index(i) + 1
    assert f"in A #{ra}" in page.locator(".st-key-qtile_b1").inner_text()
    shot(page, "inspect_query_two_methods")


def test_a_tile_opens_its_pair_by_click_and_by_key(page, server, realsize, truth):
    open_page(page, f"{server}/query?{src(realsize)}&m=plain&q=5")
    db = int(truth["plain"][2, 5])
    b = box(page, ".st-key-qtile_3 img")
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    ring = page.locator(".st-key-qtile_3").evaluate("e => getComputedStyle(e).outlineColor")
    assert ring not in ("rgba(0, 0, 0, 0)", "transparent")  # the hover ring
    page.mouse.click(b["x"] + b["width"] / 3, b["y"] + b["height"] * 0.6)  # the image itself
    wait_url(page, rf"/pair\?.*\bi={db}\b")
    assert page.locator("h1").first.inner_text().strip() == "Pair"
    assert "q=5" in page.url
    # Pair: → next pair, ← back, Esc back to the query's grid
    before = page.url
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => location.href !== {before!r}")
    settle(page)
    page.keyboard.press("ArrowLeft")
    wait_url(page, rf"\bi={db}\b")
    page.keyboard.press("Escape")
    wait_url(page, r"/query\?")
    assert "q=5" in page.url
    # Query: → / j next query, ← / k previous
    page.keyboard.press("ArrowRight")
    wait_url(page, r"[?&]q=6\b")
    page.keyboard.press("j")
    wait_url(page, r"[?&]q=7\b")
    page.keyboard.press("k")
    wait_url(page, r"[?&]q=6\b")
    page.keyboard.press("ArrowLeft")
    wait_url(page, r"[?&]q=5\b")
    # Tab to a tile (a focus ring), Enter opens it
    page.locator(".st-key-pair_1 button").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past tile 1's enlarge button, onto tile 2
    focused = page.evaluate("() => document.activeElement.closest('[class*=\"st-key-pair_\"]')"
                            ".className")
    assert "st-key-pair_2" in focused
    ring = page.locator(".st-key-qtile_2").evaluate("e => getComputedStyle(e).outlineStyle")
    assert ring == "solid"
    page.keyboard.press("Enter")
    wait_url(page, rf"/pair\?.*\bi={int(truth['plain'][1, 5])}\b")
    no_exception(page)


def test_the_lightbox_steps_and_closes(page, server, realsize, truth):
    open_page(page, f"{server}/query?{src(realsize)}&m=plain&q=2")
    page.locator(".st-key-zoom_a_2 button").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    settle(page)
    g, col = truth["gnd"], truth["plain"][:, 2].tolist()
    assert g.imlist[col[1]] in dialog.inner_text() and "#2" in dialog.inner_text()
    shot(page, "inspect_lightbox")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => document.querySelector('[role=dialog]').innerText"
                           f".includes({g.imlist[col[2]]!r})")
    page.keyboard.press("k")
    page.wait_for_function(f"() => document.querySelector('[role=dialog]').innerText"
                           f".includes({g.imlist[col[1]]!r})")
    assert "q=2" in page.url  # stepping in the lightbox keeps the query
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('[role=dialog]')")
    settle(page)
    assert "/query" in page.url and "q=2" in page.url  # Esc closed it, did not go back
    no_exception(page)


def test_the_worst_query_bar_and_a_seg_bin_open_what_was_clicked(page, server, realsize,
                                                                  truth):
    ap = truth["plain", "ap"]
    worst = int(np.lexsort((np.arange(ap.size), np.where(np.isnan(ap), np.inf, ap)))[0])
    open_page(page, f"{server}/?{src(realsize)}&m=plain")
    page.wait_for_selector(".st-key-ap_bars .point path")
    settle(page)
    shot(page, "inspect_overview_first_screen")
    rows = page.locator(".st-key-ap_bars .trace.bars").nth(0).locator(".point path")
    bars = page.locator(".st-key-ap_bars .trace.bars").nth(1).locator(".point path")
    assert bars.count() == rows.count() == ap.size == 70
    top = rows.nth(0).bounding_box()  # the worst query's row: the whole row is clickable
    assert top["height"] >= 12 and top["y"] + top["height"] <= H  # readable, on screen
    assert top["width"] > 200
    label = page.evaluate("""() => [...document.querySelectorAll(
        '.st-key-ap_bars .yaxislayer-above text')].map(t => [t.getBoundingClientRect().y,
        t.textContent]).sort((a, b) => a[0] - b[0])[0][1]""")  # the top label
    assert label == truth["gnd"].qimlist[worst]  # the worst is labelled by name
    page.mouse.click(top["x"] + top["width"] * 0.6, top["y"] + top["height"] / 2)
    wait_url(page, rf"/query\?.*\bq={worst}\b")
    # the IoU histogram: bbox and seg side by side; a seg bar opens that bin's seg pairs
    open_page(page, f"{server}/?{src(realsize)}&m=plain")
    page.wait_for_selector(".st-key-iou_hist .trace.bars")
    settle(page)
    traces = page.locator(".st-key-iou_hist .trace.bars")
    assert traces.count() == 2
    seg = traces.nth(1).locator(".point path")
    heights = [seg.nth(j).bounding_box()["height"] if seg.nth(j).bounding_box() else 0
               for j in range(seg.count())]
    j = int(np.argmax(heights))
    page.locator(".st-key-iou_hist").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    bb = traces.nth(0).locator(".point path").nth(j).bounding_box()
    sb = seg.nth(j).bounding_box()
    assert bb is None or bb["x"] + bb["width"] <= sb["x"] + 0.5  # side by side, no overlap
    page.mouse.click(sb["x"] + sb["width"] / 2, sb["y"] + sb["height"] / 2)
    wait_url(page, r"/errors\?")
    assert "efcol=seg" in page.url
    lo = round(j * 0.05, 2)
    assert f"elo={lo:.2f}" in page.url or (lo == 0 and "elo" not in page.url)
    no_exception(page)


def test_the_methods_table_sorts_marks_the_best_and_opens_compare(page, server, realsize):
    open_page(page, f"{server}/?{src(realsize)}&m=plain")
    table = page.locator(".st-key-methods_table")
    table.wait_for()
    settle(page)
    grid = table.locator('[data-testid="stDataFrameResizable"]')
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    b = grid.bounding_box()
    # select the second row (withr1m): the row-selection checkbox column on the left
    page.mouse.click(b["x"] + 18, b["y"] + 35 * 2 + 18)
    wait_url(page, r"/compare\?")
    assert "m2=withr1m" in page.url
    assert page.locator("h1").first.inner_text().strip() == "Compare"
    no_exception(page)


def test_a_fresh_server_shows_only_the_apps_menu(browser, env, tmp_path):  # noqa: F811
    from bench.app import routing

    with running_app(env, tmp_path / "streamlit.log") as url:
        pg = browser.new_page(viewport={"width": W, "height": H})
        pg.add_init_script(RUN_COUNTER)
        pg.add_init_script(NAV_WATCH)
        pg.set_default_timeout(60_000)
        outside: list[str] = []
        pg.on("request", lambda r: outside.append(r.url)
              if urlparse(r.url).netloc not in ("", urlparse(url).netloc) else None)
        try:
            open_page(pg, url + "/?src=folder")
            assert pg.evaluate("window.__stNav") is False  # never Streamlit's page list
            links = pg.locator(".st-key-app_nav a")
            assert links.count() == len(routing.PAGES)
            assert [t.split("\n")[-1].strip() for t in links.all_inner_texts()] == [
                p.title for p in routing.PAGES]  # (the icon's ligature name first)
            # the folder source: one message, on the page, saying what to do; the
            # benchmark folders found under the data roots to pick from
            main = pg.locator('[data-testid="stMain"]')
            assert main.locator('[data-testid="stAlertContentError"]').count() == 0
            assert "Choose a benchmark folder" in main.inner_text()
            assert pg.locator('[data-testid="stSidebar"] [data-testid="stAlertContentError"]'
                              ).count() == 0
            pg.locator(".st-key-w_root_pick").click()
            assert pg.get_by_role("option").filter(has_text=str(env["BENCH_DATA_ROOTS"])
                                                   ).count() >= 1
            no_exception(pg)
        finally:
            pg.close()
        assert not outside, outside[:5]
