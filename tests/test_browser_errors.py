"""The Errors page, the Query page's region tiles and the clickable charts and tables in a
real browser: `streamlit run app.py` driven by Playwright through Debian's
/usr/bin/chromium on the small demo (the server and browser helpers of
tests/test_browser.py).

Screenshots go to ``screenshots/`` (git-ignored), or to ``$BENCH_SHOTS_DIR``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.test_browser import (  # noqa: F401 (fixtures)
    CHARTS,
    app_env,
    browser,
    demo,
    no_exception,
    open_page,
    page,
    server,
    settle,
    shot,
    sync_api,
)


@pytest.fixture(scope="module")
def engine(demo):  # noqa: F811
    from bench.evaluate import load_pixel_inputs
    from bench.formats.revisited import load_gnd, load_ranks
    from bench.metrics.pixel import evaluate_pixel
    from bench.metrics.revisited import evaluate_revisited, scan_ranks

    g = load_gnd(demo.gnd)
    files = demo.methods["local-sp"]
    ranks = np.asarray(load_ranks(files["ranks"], g))
    inputs = load_pixel_inputs(g, pair_labels=demo.pair_labels, labels_root=demo.labels_root,
                               matches=files["matches"])
    sc = scan_ranks(ranks, g)
    return {"gnd": g, "ranks": ranks, "ap": evaluate_revisited(sc, g)["medium"].ap,
            "pairs": evaluate_pixel(g, inputs.gt, inputs.preds, ranks=sc,
                                    image_sizes=inputs.sizes).pairs}


def gallery_pairs(pg) -> list[tuple[int, int]]:
    """(q, i) of the gallery's tiles, in the order shown (their buttons' keys)."""
    keys = pg.evaluate("() => [...document.querySelectorAll('[class*=\"st-key-gal_\"]')]"
                       ".map(e => [...e.classList].find(c => c.startsWith('st-key-gal_')))")
    out = []
    for k in keys:
        m = re.fullmatch(r"st-key-gal_(\d+)_(\d+)", k)
        if m:
            out.append((int(m[1]), int(m[2])))
    return out


def select_first_row(pg, key: str, url_glob: str) -> None:
    """Tick the first row of the dataframe *key* (its row-marker cell) until the page
    address matches *url_glob*."""
    grid = pg.locator(f".st-key-{key} [data-testid='stDataFrameResizable']")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    for attempt in range(3):
        pg.mouse.move(box["x"] + 60, box["y"] + 35 + 17)  # hover shows the checkbox
        pg.wait_for_timeout(200)
        pg.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
        try:
            pg.wait_for_url(url_glob, timeout=15_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    settle(pg)


def test_errors_page_table_gallery_and_a_row_opens_its_pair(server, page):  # noqa: F811
    url, _ = server
    open_page(page, url + "/errors?m=local-sp")
    page.wait_for_function(CHARTS, arg=2)
    settle(page)
    assert page.locator("h1").first.inner_text().strip() == "Errors"
    no_exception(page)
    assert page.locator(".st-key-err_table [data-testid='stDataFrameResizable']").count() == 1
    assert page.locator(".st-key-neg_table").count() == 1
    tiles = gallery_pairs(page)
    assert len(tiles) == 12
    assert page.locator('[data-testid="stImage"]').count() == 12
    assert page.locator('[data-testid="stMetric"]').count() == 5
    shot(page, "errors")
    q, i = tiles[0]  # the gallery shows the table's order: its first tile is row 1
    select_first_row(page, "err_table", "**/pair?*")
    assert f"q={q}" in page.url and f"i={i}" in page.url
    assert page.locator("h1").first.inner_text().strip() == "Pair"
    no_exception(page)
    text = page.locator(".st-key-w_i").inner_text()
    assert text  # the pair is chosen in the pair picker
    shot(page, "errors_to_pair")


def test_query_tiles_show_the_regions(server, page, engine):  # noqa: F811
    url, _ = server
    g, ranks, pairs = engine["gnd"], engine["ranks"], engine["pairs"]
    q = max(range(g.n_queries),
            key=lambda q: sum((q, int(i)) in pairs for i in ranks[:10, q].tolist()))
    open_page(page, url + f"/query?m=local-sp&q={q}&k=10")
    no_exception(page)
    assert page.locator('[data-testid="stImage"]').count() == 11  # query + 10 tiles
    main = page.locator('[data-testid="stMain"]').inner_text()
    for i in ranks[:10, q].tolist():  # names are text, in rank order
        assert g.imlist[i] in main
    tiles = [page.locator(f".st-key-qtile_{r}").inner_text() for r in range(1, 11)]
    assert all(g.imlist[i] in t for i, t in zip(ranks[:10, q].tolist(), tiles, strict=True))
    shot(page, "query_regions_both")
    page.get_by_role("button", name="Tiles").click()  # the tiles' look: a popover
    page.locator(".st-key-w_qmask").get_by_text("Error colours", exact=True).click()
    page.wait_for_url("**qmask=errors**")
    settle(page)
    no_exception(page)
    shot(page, "query_regions_errors")
    if not page.locator(".st-key-w_qframe").is_visible():
        page.get_by_role("button", name="Tiles").click()
    page.locator(".st-key-w_qframe").get_by_text("Pass / fail at t", exact=True).click()
    page.wait_for_url("**qframe=pass**")
    settle(page)
    shot(page, "query_regions_passfail")


def test_clicking_the_worst_bar_opens_that_query(server, page, engine):  # noqa: F811
    url, _ = server
    ap = engine["ap"]
    worst = int(np.lexsort((np.arange(ap.size), np.where(np.isnan(ap), np.inf, ap)))[0])
    open_page(page, url + "/?m=local-sp")
    page.wait_for_function(CHARTS, arg=4)
    settle(page)
    shot(page, "overview_sorted_bars")
    rows = page.locator(".st-key-ap_bars .trace.bars").nth(0).locator(".point path")
    bars = page.locator(".st-key-ap_bars .trace.bars").nth(1).locator(".point path")
    assert bars.count() == rows.count() == len(ap)  # a value bar on a full-width row each
    b = rows.nth(0).bounding_box()  # the top row: the worst query
    page.mouse.click(b["x"] + b["width"] * 0.7, b["y"] + b["height"] / 2)
    page.wait_for_url("**/query**")
    settle(page)
    assert re.search(rf"[?&]q={worst}(&|$)", page.url), (page.url, worst)
    assert page.locator("h1").first.inner_text().strip() == "Query"
    no_exception(page)


def test_clicking_an_iou_bin_lists_its_pairs(server, page, engine):  # noqa: F811
    url, _ = server
    open_page(page, url + "/?m=local-sp")
    page.wait_for_function(CHARTS, arg=4)
    settle(page)
    bars = page.locator(".st-key-iou_hist .trace.bars").first.locator(".point path")
    assert bars.count() == 20
    bbox = np.array([v[0] for v in engine["pairs"].values()])
    b = int(np.argmax([((bbox >= k * 0.05) & (bbox < (k + 1) * 0.05 if k < 19 else
                                               bbox <= 1)).sum() for k in range(20)]))
    bars.nth(b).click(force=True)
    page.wait_for_url("**/errors**")
    settle(page)
    lo, hi = round(b * 0.05, 2), round((b + 1) * 0.05, 2)
    assert f"elo={lo:.2f}" in page.url or (lo == 0 and "elo" not in page.url)
    assert f"ehi={hi:.2f}" in page.url or (hi == 1 and "ehi" not in page.url)
    assert page.locator("h1").first.inner_text().strip() == "Errors"
    caption = page.locator('[data-testid="stMain"]').inner_text()
    n = re.search(r"(\d+) of (\d+) pairs", caption)
    assert n and int(n[1]) > 0
    no_exception(page)


def test_clicking_a_category_bar_shows_its_neighbours(server, page):  # noqa: F811
    url, _ = server
    open_page(page, url + "/gpr1200")
    page.wait_for_selector(".st-key-cat_bars .trace.bars")
    settle(page)
    rows = page.locator(".st-key-cat_bars .trace.bars").nth(0).locator(".point path")
    label = page.evaluate("""() => [...document.querySelectorAll(
        '.st-key-cat_bars .yaxislayer-above text')].map(t => [t.getBoundingClientRect().y,
        t.textContent]).sort((a, b) => a[0] - b[0])[0][1]""")  # the worst category
    b = rows.nth(0).bounding_box()
    page.mouse.click(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    # the chosen category (and its first image, URL key gq) is the clicked, worst one
    page.wait_for_function("l => document.querySelector('[data-testid=\"stMain\"]').innerText"
                           ".includes('Category ' + l + ' · subset')", arg=label.strip())
    settle(page)
    assert re.search(r"[?&]gq=\d+", page.url) or label.startswith("0 ·")
    no_exception(page)
    shot(page, "gpr1200_worst_category")
