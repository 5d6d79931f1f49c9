"""The Compare page in a real browser (Playwright, Debian's /usr/bin/chromium) on the
small demo: choose the two methods, click a point of the scatter -> the Query page of
that query with both rankings; select a row of the pairs table and use the Pair page's
"Compare with" -> both predicted regions on one image (checked on the picture's pixels);
upload a ranks file -> a new method in the sidebar at once.

Screenshots go to ``$BENCH_SHOTS_DIR`` (default ``/tmp/shots``) for a human to look at.
Server, browser and wait helpers are those of ``tests/test_browser.py``.
"""

from __future__ import annotations

import io
import os
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from bench import render
from bench.demo import build_demo
from bench.formats.pixel import load_matches
from bench.formats.revisited import load_gnd
from tests.test_browser import (  # noqa: F401 (fixtures)
    CHARTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAWN,
    RUN_COUNTER,
    SHOTS,
    browser,
    click_until,
    no_exception,
    open_page,
    running_app,
    settle,
    shot,
    sync_api,
)

A, B = "local-sp", "global-hist"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


@pytest.fixture(scope="module")
def uploads_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("browser_uploads")


@pytest.fixture(scope="module")
def server(demo, uploads_dir, tmp_path_factory):
    env = dict(os.environ, BENCH_DEMO_DIR=str(demo.root),
               BENCH_CACHE_DIR=str(tmp_path_factory.mktemp("browser_cache")),
               BENCH_UPLOAD_DIR=str(uploads_dir))
    env.pop("BENCH_DATA_ROOTS", None)
    log = tmp_path_factory.mktemp("browser_log") / "streamlit.log"
    with running_app(env, log) as url:
        yield url


@pytest.fixture
def page(browser):  # noqa: F811 (the imported fixture)
    pg = browser.new_page(viewport={"width": 1440, "height": 1100})
    pg.add_init_script(RUN_COUNTER)
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        pg.close()


def pick(pg, key: str, label: str) -> None:
    """Choose *label* in the selectbox whose widget key is *key*."""
    box = pg.locator(f".st-key-{key}")
    for attempt in range(3):
        box.locator("[role=combobox]").click()
        pg.get_by_role("option", name=label, exact=True).click()
        try:
            pg.wait_for_function(
                f"() => document.querySelector('.st-key-{key} [role=combobox]').value"
                f" === {label!r}", timeout=10_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(pg)


def title(pg) -> str:
    return pg.locator("h1").first.inner_text().strip()


def test_choose_two_methods_and_click_a_point(server, page):
    open_page(page, server + "/compare")
    assert title(page) == "Compare"
    chips = page.locator(".st-key-w_cmp [data-tag]")
    assert chips.count() == 2
    pick(page, "w_m_cmp", A)  # A = local-sp, so B becomes global-hist
    page.wait_for_url(f"**m={A}**")
    settle(page)
    assert page.locator(".st-key-w_m2_cmp [role=combobox]").input_value() == B
    page.wait_for_function(CHARTS, arg=1)
    settle(page)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert f"{A} beats {B}" in text or f"{B} beats {A}" in text or "tie on all" in text
    no_exception(page)
    shot(page, "compare")
    # a point whose position no other point shares, and where it is on the screen
    target = page.evaluate("""() => {
      const gd = document.querySelector('.st-key-cmp_scatter .js-plotly-plot');
      const pts = [];
      gd.data.forEach(t => (t.x || []).forEach((x, j) =>
          pts.push({x: x, y: t.y[j], q: t.customdata[j][0]})));
      const alone = pts.filter(a => pts.filter(b => Math.abs(a.x - b.x) < 3
                                                && Math.abs(a.y - b.y) < 3).length === 1);
      const p = alone.find(a => a.q !== 0) || alone[0];  // q=0 is not in the URL
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
      return {q: p.q, px: r.left + xa.l2p(p.x), py: r.top + ya.l2p(p.y)};
    }""")
    for attempt in range(3):  # a click lost to a redraw is retried
        page.mouse.click(target["px"], target["py"])
        try:
            page.wait_for_url("**/query?**", timeout=15_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(page)
    assert title(page) == "Query"
    params = parse_qs(urlparse(page.url).query)
    assert params.get("q", ["0"]) == [str(target["q"])]
    assert params["m"] == [A] and params["m2"] == [B]
    assert page.locator(".st-key-q_rank_a").count() == 1
    assert page.locator(".st-key-q_rank_b").count() == 1
    assert page.locator(".st-key-w_q [role=combobox]").input_value().startswith(
        f"{target['q']} · ")
    no_exception(page)
    shot(page, "query_two_rankings")


def predicted_by_both(demo) -> tuple[int, int]:
    """A pair both methods predicted, A's region well inside B's (global-hist predicts
    the whole image), so the two outlines are apart on the picture."""
    g = load_gnd(demo.gnd)
    ma, _ = load_matches(demo.methods[A]["matches"])
    mb, _ = load_matches(demo.methods[B]["matches"])

    def box_area(p) -> float:
        return float(np.ptp(p[:, 0]) * np.ptp(p[:, 1]))

    for q in range(g.n_queries):
        for i in [*g.hard[q].tolist(), *g.easy[q].tolist()]:
            pa, pb = ma.get((q, i)), mb.get((q, i))
            if (pa is not None and pb is not None and box_area(pa) < 0.6 * box_area(pb)
                    and pa.min(axis=0).min() - pb.min(axis=0).min() > 10):
                return q, int(i)
    raise AssertionError("no pair predicted by both methods apart")


def colour_count(png: bytes, color, tol: int = 60) -> int:
    """Pixels of the picture within *tol* (sum over RGB) of *color*."""
    from PIL import Image

    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(arr - np.array(color)).sum(axis=-1) <= tol).sum())


def test_two_method_pair_view_shows_both_outlines(server, demo, page):
    q, i = predicted_by_both(demo)
    open_page(page, f"{server}/pair?m={A}&q={q}&i={i}")
    img = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
    before = img.screenshot()
    no_b = colour_count(before, render.PRED_B_COLOR)  # one method: no B outline
    pick(page, "w_m2_pair", B)
    page.wait_for_url(f"**m2={B}**")
    settle(page)
    no_exception(page)
    legend = page.locator('[data-testid="stMain"]').inner_text()
    assert f"A: {A} (solid)" in legend and f"B: {B} (dashed)" in legend
    png = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first.screenshot()
    (SHOTS / "pair_two_methods_image.png").write_bytes(png)
    # A's solid outline and B's dashed one (a few hundred pixels each at this size)
    assert colour_count(png, render.PRED_A_COLOR) > 150
    assert colour_count(png, render.PRED_B_COLOR) > no_b + 150
    table = page.locator('[data-testid="stTable"]').nth(1).inner_text()
    assert "A" in table and "B" in table and "Δ (A − B)" in table  # columns A, B, A − B
    assert f"A: {A} vs B: {B}" in legend  # the names, above the table
    shot(page, "pair_two_methods")


def test_a_pairs_table_row_opens_the_pair_with_both(server, page):
    open_page(page, f"{server}/compare?m={A}&m2={B}")
    grid = page.locator(".st-key-cmp_pairs [data-testid='stDataFrameResizable']")
    grid.wait_for()
    # the first data row's selection box: left edge of the grid, one header row down
    for attempt in range(3):
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
        try:
            page.wait_for_url("**/pair?**", timeout=15_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(page)
    assert title(page) == "Pair"
    assert f"m2={B}" in page.url and "i=" in page.url
    assert "B: " in page.locator('[data-testid="stMain"]').inner_text()
    no_exception(page)


def test_an_uploaded_ranks_file_becomes_a_method(server, demo, page, uploads_dir, tmp_path):
    ranks = np.ascontiguousarray(np.load(demo.methods[A]["ranks"])[::-1])
    f = tmp_path / "my_ranks.npy"
    np.save(f, ranks)
    open_page(page, f"{server}/compare")
    page.locator(".st-key-w_m").wait_for()
    page.get_by_text("Add a method from result files").click()
    page.locator(".st-key-up_name input").fill("browser-up")
    page.locator(".st-key-up_name input").press("Enter")
    settle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(f))
    page.wait_for_function("() => document.body.innerText.includes('my_ranks.npy')")
    settle(page)
    click_until(page, page.locator(".st-key-up_add button"), "**m2=browser-up**")
    assert "Added method" in page.locator('[data-testid="stMain"]').inner_text()
    assert (uploads_dir / "results/image-level/browser-up/rdemo.npy").is_file()
    page.locator(".st-key-w_m [role=combobox]").click()
    assert page.get_by_role("option", name="browser-up", exact=True).count() == 1
    page.keyboard.press("Escape")
    no_exception(page)
    shot(page, "compare_after_upload")
