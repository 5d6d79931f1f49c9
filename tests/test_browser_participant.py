"""The participant screens in a real browser: the participant-only server
(``bench.study.web.serve``, two uvicorn workers on one SQLite study: any process answers
any call) driven by Playwright through Debian's /usr/bin/chromium, on a small demo
(docs/PROTOCOLS.md §7).

A Prolific participant opens the platform's link, agrees, does the practice, answers
every trial by clicking (inside the region on a positive, beside the picture on one
positive: a miss; "Not in this image" on a catch trial), reloads mid-study and resumes,
has the tab hidden on one trial, and ends on the debrief with the completion code and
the redirect to Prolific. The same link in another browser is told the study is open
elsewhere. At 1366x768, 1600x1000 and 1920x1080 both pictures are side by side, do not
overlap each other or the button, and lie inside the viewport with nothing to scroll.
The stored answers are checked against outcomes and times worked out here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from bench.demo import build_demo
from tests.test_browser import ROOT, SHOTS, browser, sync_api  # noqa: F401 (fixture; skips without chromium)

PID = "5f1e2d3c4b5a69788796a5b4"
CODE = "WEB4CODE"
LINK = ("/take?study=wstudy&PROLIFIC_PID={pid}&STUDY_ID=60aa11bb22cc33dd44ee55ff"
        "&SESSION_ID=70aa11bb22cc33dd44ee55ff")
VIEWPORTS = [(1366, 768), (1600, 1000), (1920, 1080)]
MEASURE = """() => {
  const r = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  return {q: r(document.querySelector('#qpanel img')), d: r(document.querySelector('#dpanel img')),
          button: r(document.querySelector('#absent')), vw: window.innerWidth,
          vh: window.innerHeight, sh: document.documentElement.scrollHeight,
          sw: document.documentElement.scrollWidth};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("web_browser")
    demo = build_demo(base / "demo", scale="small")
    e = dict(os.environ, BENCH_DEMO_DIR=str(demo.root), BENCH_CACHE_DIR=str(base / "cache"),
             BENCH_STUDY_DIR=str(base / "studies"))
    for k in ("BENCH_STUDY_DB", "BENCH_PARTICIPANT_ONLY", "BENCH_STUDY", "BENCH_DATA_ROOTS"):
        e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def store(env):
    """The study ``wstudy`` (Prolific, a study code), made in a child process so this
    process's store opens it afresh."""
    code = ("from bench.study.store import create_study; create_study('wstudy', 'rdemo', "
            "conditions='none,ground_truth', n_trials=8, catch=0.25, seed=3, "
            f"allow_repeats=True, platform='prolific', completion_code={CODE!r})")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    old = {k: os.environ.get(k) for k in ("BENCH_STUDY_DIR", "BENCH_DEMO_DIR")}
    os.environ.update({k: env[k] for k in old})
    from bench.study.store import StudyStore

    yield StudyStore.open("wstudy")
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def server(env, store, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("web_log") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"import bench.study.web as w; w.serve('wstudy', "
                                   f"'127.0.0.1', {port}, 2)"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/take", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail("the participant server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)


def new_page(browser, w=1366, h=768):  # noqa: F811 (the imported fixture)
    ctx = browser.new_context(viewport={"width": w, "height": h})
    # the end screen redirects to Prolific: answered here, nothing leaves the machine
    ctx.route("https://app.prolific.com/**", lambda route: route.fulfill(
        status=200, body="completed", content_type="text/plain"))
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    return ctx, pg


def title(pg, text: str) -> None:
    pg.wait_for_function("t => { const h = document.querySelector('#text:not([hidden]) h1');"
                         " return h && h.textContent.trim() === t; }", arg=text)


def wait_trial(pg, key: str) -> None:
    """Until trial *key* (``p1``: practice 1, ``t3``: trial 3) is drawn and timed."""
    pg.wait_for_function("k => document.body.dataset.trial === k"
                         " && document.body.dataset.shown === '1'", arg=key)


def region_point(trial) -> tuple[float, float]:
    """A point inside the trial's first region polygon (even-odd ray cast written here),
    moved from the vertex mean toward the first vertex until inside."""
    poly = np.asarray(trial.region[0], dtype=float)

    def inside(px, py):
        c = False
        for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
            if (y1 > py) != (y2 > py) and px < x1 + (py - y1) * (x2 - x1) / (y2 - y1):
                c = not c
        return c

    cx, cy = poly.mean(axis=0)
    for f in np.linspace(0, 0.95, 20):
        px, py = cx + f * (poly[0][0] - cx), cy + f * (poly[0][1] - cy)
        if inside(px, py):
            return float(px), float(py)
    raise AssertionError(f"no inside point for {trial.id}")


def click_image(pg, x: float, y: float, w: int, h: int) -> None:
    """A click at image pixel (x, y) of a w x h original, through the drawn picture."""
    box = pg.locator("#dpanel img").bounding_box()
    pg.mouse.click(box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h)


def hide_tab(pg, ms: int) -> None:
    js = ("s => { Object.defineProperty(document, 'visibilityState', {configurable: true,"
          " get: () => s}); document.dispatchEvent(new Event('visibilitychange')); }")
    pg.evaluate(js, "hidden")
    pg.wait_for_timeout(ms)
    pg.evaluate(js, "visible")


def check_layout(pg, name: str) -> None:
    m = pg.evaluate(MEASURE)
    q, d, b = m["q"], m["d"], m["button"]
    assert q[2] <= d[0], f"the pictures overlap: {m}"  # side by side
    assert abs(q[1] - d[1]) < 2 and abs((q[3] - q[1]) - (d[3] - d[1])) < 2  # one height
    for r in (q, d, b):
        assert r[0] >= 0 and r[1] >= 0 and r[2] <= m["vw"] and r[3] <= m["vh"], m
    assert b[3] <= min(q[1], d[1]), m  # the button above the pictures
    assert m["sh"] <= m["vh"] and m["sw"] <= m["vw"], "the page scrolls"
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"participant_{name}.png"))


def test_a_prolific_participant_takes_the_study(server, store, browser):  # noqa: F811
    d = store.definition
    ctx, pg = new_page(browser)
    try:
        pg.goto(server + LINK.format(pid=PID))
        title(pg, "Welcome")
        assert store.participant(PID).row is None  # no group before consent
        pg.get_by_role("button", name="I agree").click()
        title(pg, "How it works")
        assert store.participant(PID).row is not None
        pg.get_by_role("button", name="Start the practice", exact=False).click()
        for k in range(1, len(d.practice) + 1):
            wait_trial(pg, f"p{k}")
            pg.get_by_role("button", name="Not in this image").click()
        title(pg, "The study begins")
        assert store.answered(PID) == set()  # practice is not recorded
        pg.get_by_role("button", name="Begin").click()
        order = store.trials(PID)
        want = {}
        for k, t in enumerate(order, start=1):
            wait_trial(pg, f"t{k}")
            if k == 1:
                check_layout(pg, "1366x768")
            if k == 3:  # a reload: the same trial again, nothing lost
                pg.reload()
                wait_trial(pg, "t3")
            w, h = _size(store, t)
            if k == 2:
                hide_tab(pg, 700)
            pg.wait_for_timeout(150)
            if t.kind == "positive" and k != 4:
                click_image(pg, *region_point(t), w, h)
                want[t.id] = ("click", "hit")
            elif t.kind == "positive":  # beside the picture, in its panel: a miss
                box = pg.locator("#dpanel img").bounding_box()
                panel = pg.locator("#dpanel").bounding_box()
                if box["x"] + box["width"] + 10 < panel["x"] + panel["width"]:
                    pg.mouse.click(box["x"] + box["width"] + 8, box["y"] + 5)
                else:
                    assert box["y"] + box["height"] + 10 < panel["y"] + panel["height"]
                    pg.mouse.click(box["x"] + 5, box["y"] + box["height"] + 8)
                want[t.id] = ("click", "miss")
            else:
                pg.get_by_role("button", name="Not in this image").click()
                want[t.id] = ("not_present", "correct_rejection")
            pg.wait_for_function("k => document.body.dataset.trial !== k"
                                 " || !document.querySelector('#text[hidden]')", arg=f"t{k}")
        title(pg, "Thank you!")
        body = pg.locator("#text").inner_text()
        assert CODE in body and PID in body
        pg.wait_for_url("https://app.prolific.com/**", timeout=20_000)
        assert f"cc={CODE}" in pg.url
    finally:
        ctx.close()
    answers = {a.trial: a for a in store.state().answers}
    assert {k: (a.answer, a.outcome) for k, a in answers.items()} == want
    for k, t in enumerate(order, start=1):
        a = answers[t.id]
        assert a.browser_ms is not None and 0 < a.browser_ms
        assert a.browser_ms + a.hidden_ms <= a.server_ms + 1000  # the same trial, two clocks
        assert "time_mismatch" not in a.flags
        if k == 2:
            assert a.hidden_ms >= 600 and "hidden" in a.flags
        else:
            assert a.hidden_ms == 0
        if want[t.id] == ("click", "miss"):
            w, h = _size(store, t)
            assert "outside_image" in a.flags and (a.x > w or a.y > h)
    assert store.completion(PID).code == CODE


def _size(store, t) -> tuple[int, int]:
    from bench.study.web import pictures

    return pictures.image_size(store.definition, t.image)


def test_the_link_in_another_browser_is_told_it_is_open_elsewhere(server, store, browser):  # noqa: F811
    pid = "6a1e2d3c4b5a69788796a5b4"
    ctx, pg = new_page(browser)
    ctx2, pg2 = new_page(browser)
    try:
        pg.goto(server + LINK.format(pid=pid))
        title(pg, "Welcome")
        pg2.goto(server + LINK.format(pid=pid))
        title(pg2, "Study")
        assert "already open in another window" in pg2.locator("#text").inner_text()
    finally:
        ctx.close()
        ctx2.close()


@pytest.mark.parametrize("w, h", VIEWPORTS[1:])
def test_both_pictures_fit_side_by_side(server, store, browser, w, h):  # noqa: F811
    pid = f"7{w:04d}{h:04d}" + "a" * 15
    ctx, pg = new_page(browser, w, h)
    try:
        pg.goto(server + LINK.format(pid=pid))
        title(pg, "Welcome")
        pg.get_by_role("button", name="I agree").click()
        title(pg, "How it works")
        pg.get_by_role("button", name="Start the practice", exact=False).click()
        wait_trial(pg, "p1")
        check_layout(pg, f"{w}x{h}")
    finally:
        ctx.close()


def test_a_bad_link_says_only_that_it_is_not_valid(server, browser):  # noqa: F811
    ctx, pg = new_page(browser)
    try:
        pg.goto(server + "/take?study=wstudy&PROLIFIC_PID=../../etc/passwd")
        title(pg, "Study")
        text = pg.locator("#text").inner_text()
        assert "not valid" in text and "passwd" not in text
        assert pg.goto(server + "/_stcore/health").status == 404
    finally:
        ctx.close()
