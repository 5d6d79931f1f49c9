"""The user study in a real browser: `streamlit run app.py` driven by Playwright through
Debian's /usr/bin/chromium (launch and waits as in tests/test_browser.py), on the small demo
(docs/PROTOCOLS.md §7).

- Layout: at 1366x768, 1600x1000 and 1920x1080 the query and the database image are side
  by side, do not overlap each other or the button, and lie fully inside the viewport with
  nothing to scroll (bounding boxes measured in the page); screenshots are saved to
  ``$BENCH_SHOTS`` (default ``screenshots/``) for a human to look at.
- Two participants in two browser contexts at once, each clicking the image on every trial
  (inside the region on positives; on a catch trial the click is a false alarm), one reload
  mid-study, one stretch with the tab hidden, and the server killed (SIGKILL) and restarted
  mid-study: every acknowledged answer is in the file, each participant resumes at the next
  trial, and ``python -m bench study report NAME --json`` reports their hits, false alarms,
  browser times and the paired tests, checked against counts made here.
- A participant link opens no other page (every page path shows only the study, without a
  sidebar or navigation) and reads no path; a participant-only server likewise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bench.demo import build_demo
from bench.study.store import StudyStore, read_study_file
from tests.test_browser import ROOT, SHOTS, browser, sync_api  # noqa: F401 (fixture; skips without chromium)

METHODS = ("local-sp", "global-hist")
VIEWPORTS = [(1366, 768), (1600, 1000), (1920, 1080)]

IDLE = ("() => { const e = document.querySelector('[data-testid=\"stApp\"]');"
        " return e && e.getAttribute('data-test-script-state') === 'notRunning'; }")
TRIAL = ("() => { const e = document.querySelector("
         "'[class*=\"st-key-ptd_\"][data-stale=\"false\"]');"
         " return e ? [...e.classList].find(c => c.startsWith('st-key-ptd_'))"
         ".slice('st-key-ptd_'.length) : null; }")
# both images, the button and the scroll state, in CSS pixels of the viewport
MEASURE = """() => {
  const rect = e => { const b = e.getBoundingClientRect();
                      return [b.left, b.top, b.right, b.bottom]; };
  const q = document.querySelector('[class*="st-key-ptq_"] [data-stale="false"] img');
  const f = document.querySelector('[class*="st-key-ptd_"][data-stale="false"] iframe');
  const d = f.contentDocument.getElementById('image');
  const fr = f.getBoundingClientRect(), dr = d.getBoundingClientRect();
  const main = document.querySelector('[data-testid="stMain"]');
  return {q: rect(q), d: [fr.left + dr.left, fr.top + dr.top, fr.left + dr.right,
                          fr.top + dr.bottom],
          frame: rect(f), button: rect(document.querySelector('[class*="st-key-ptn_"] button')),
          vw: window.innerWidth, vh: window.innerHeight,
          scroll: [main.scrollHeight, main.clientHeight, main.scrollWidth, main.clientWidth,
                   document.documentElement.scrollHeight, document.documentElement.scrollWidth]};
}"""


# ---------------------------------------------------------------- server and browser

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run app.py`` on a fixed port, which can be killed and started again."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log, self.port, self.proc = env, log, _free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
             "--server.port", str(self.port), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
        out.close()
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                pytest.fail("streamlit did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            pass


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


@pytest.fixture(scope="module")
def env(demo, tmp_path_factory):
    e = dict(os.environ, BENCH_DEMO_DIR=str(demo.root),
             BENCH_CACHE_DIR=str(tmp_path_factory.mktemp("study_cache")),
             BENCH_STUDY_DIR=str(tmp_path_factory.mktemp("studies")))
    for k in ("BENCH_DATA_ROOTS", "BENCH_PARTICIPANT_ONLY", "BENCH_STUDY"):
        e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def studies(env):
    """Two studies made with the command line: ``bstudy`` (4 positives + 1 catch trial,
    two conditions) for the two participants, ``layout`` for the other tests."""
    out = {}
    for name, conds, n, catch in (("bstudy", "none,ground_truth", "5", "0.2"),
                                  ("layout", "none,ground_truth,method:local-sp", "6",
                                   "0.2")):
        r = _cli("study", "new", name, "--dataset", "rdemo", "--conditions", conds,
                 "--trials", n, "--catch", catch, "--seed", "3", "--json", env=env)
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert d["link"] == f"/study?study={name}"
        out[name] = Path(d["file"])
    return out


@pytest.fixture(scope="module")
def server(env, studies, tmp_path_factory):
    s = Server(env, tmp_path_factory.mktemp("study_log") / "streamlit.log").start()
    yield s
    s.kill(signal.SIGTERM)


def new_page(browser, w: int = 1366, h: int = 768):  # noqa: F811 (the imported fixture)
    """A page in a browser context of its own (own storage: another person)."""
    ctx = browser.new_context(viewport={"width": w, "height": h})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    return ctx, pg


def idle(pg) -> None:
    pg.wait_for_function(IDLE)


def no_exception(pg) -> None:
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()[:2000]


def title(pg) -> str:
    pg.wait_for_selector("h1")
    idle(pg)
    return pg.locator("h1").first.inner_text().strip()


def wait_title(pg, text: str) -> None:
    pg.wait_for_function("t => [...document.querySelectorAll('h1')].some("
                         "h => h.innerText.trim() === t)", arg=text)


def press(pg, name: str) -> None:
    pg.get_by_role("button", name=name).click()


def current(pg) -> str | None:
    return pg.evaluate(TRIAL)


def wait_trial(pg) -> str:
    """The id of the trial on screen, once both images are shown and the browser clock
    noted the time (so a click is timed from the display)."""
    pg.wait_for_function(TRIAL)
    tid = current(pg)
    pg.frame_locator(f".st-key-ptd_{tid} iframe").locator("#image").wait_for()
    pg.wait_for_function("t => window.__benchClock && window.__benchClock[t]"
                         " && window.__benchClock[t].shown !== null", arg=tid)
    return tid


def wait_gone(pg, tid: str) -> None:
    """Until the trial's answer was acknowledged: the next trial or the end is shown."""
    pg.wait_for_function(
        "t => !document.querySelector('.st-key-ptdc_' + t) && (document.querySelector("
        "'[class*=\"st-key-ptdc_\"]') || [...document.querySelectorAll('h1')].some("
        "h => h.innerText.includes('Thank you')) || document.querySelector("
        "'[class*=\"st-key-pt_begin\"]'))", arg=tid)


def region_point(trial) -> tuple[float, float]:
    """A point of the trial's region in image pixels: the vertex mean of its first polygon
    moved toward the polygon's first vertex until it is inside (checked with a plain
    even-odd ray cast written here)."""
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
    raise AssertionError(f"no inside point found for {trial.id}")


def answer_by_clicking(pg, store: StudyStore, tid: str) -> str:
    """Click the image: inside the region on a positive trial, near the top-left corner on
    a catch trial. Returns the expected outcome."""
    from bench.study.design import images_dir
    from bench.thumbs import image_size, resolve_image

    t = store.definition.trial(tid)
    w, h = image_size(resolve_image(images_dir(store.definition), t.image))
    img = pg.frame_locator(f".st-key-ptd_{tid} iframe").locator("#image")
    dw, dh = img.evaluate("e => [e.width, e.height]")
    if t.kind == "positive":
        x, y = region_point(t)
        img.click(position={"x": x * dw / w, "y": y * dh / h})
        want = "hit"
    else:
        img.click(position={"x": 3, "y": 3})
        want = "false_alarm"
    wait_gone(pg, tid)
    return want


def start(pg, url: str, *, practice_by: str = "click") -> None:
    """Open the link, agree, read the instructions, do the practice (not recorded) and
    begin."""
    pg.goto(url)
    wait_title(pg, "Welcome")
    press(pg, "I agree")
    wait_title(pg, "How it works")
    pg.get_by_role("button", name="Start the practice", exact=False).click()
    while True:
        pg.wait_for_function("() => document.querySelector('[class*=\"st-key-ptdc_\"]')"
                             " || document.querySelector('[class*=\"st-key-pt_begin\"]')")
        if pg.locator('[class*="st-key-pt_begin"]').count():
            break
        tid = wait_trial(pg)
        assert tid.startswith("practice-")
        if practice_by == "click":
            img = pg.frame_locator(f".st-key-ptd_{tid} iframe").locator("#image")
            img.click(position={"x": 5, "y": 5})
        else:
            pg.locator(f".st-key-ptn_{tid} button").click()
        wait_gone(pg, tid)
    wait_title(pg, "The study begins")
    press(pg, "Begin")


def hide_tab(pg, ms: int) -> None:
    """The tab hidden for *ms* milliseconds (as switching to another tab does)."""
    js = ("s => { Object.defineProperty(document, 'visibilityState', {configurable: true,"
          " get: () => s}); document.dispatchEvent(new Event('visibilitychange')); }")
    pg.evaluate(js, "hidden")
    pg.wait_for_timeout(ms)
    pg.evaluate(js, "visible")


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"))


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


# ---------------------------------------------------------------- layout

@pytest.mark.parametrize("w, h", VIEWPORTS)
def test_both_images_fully_visible_side_by_side(server, browser, w, h):  # noqa: F811 (the imported fixture)
    ctx, pg = new_page(browser, w, h)
    try:
        pg.goto(f"{server.url}/study?study=layout&p=L{w}")
        wait_title(pg, "Welcome")
        shot(pg, f"study_consent_{w}x{h}")
        press(pg, "I agree")
        pg.get_by_role("button", name="Start the practice", exact=False).click()
        seen = 0
        while True:  # every practice trial, then the first recorded ones
            tid = wait_trial(pg)
            idle(pg)
            pg.wait_for_timeout(300)
            m = pg.evaluate(MEASURE)
            q, d, b = m["q"], m["d"], m["button"]
            assert (m["vw"], m["vh"]) == (w, h)
            for box in (q, d, b):
                assert box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h, (tid, m)
            assert q[2] <= d[0], (tid, m)  # the query left of the database image
            assert _overlap(q, d) == 0 and _overlap(q, b) == 0 and _overlap(d, b) == 0
            assert m["frame"][3] >= d[3] - 0.5  # the iframe shows the whole image
            sh, ch, sw, cw, dsh, dsw = m["scroll"]
            assert sh <= ch + 1 and sw <= cw + 1 and dsh <= h + 1 and dsw <= w + 1, m
            # neither image is tiny: the larger side of the pair uses the room there is
            qh, dh = q[3] - q[1], d[3] - d[1]
            assert abs(qh - dh) <= 2 and (qh >= 0.45 * h or max(q[2] - q[0], d[2] - d[0])
                                          >= 0.4 * w), m
            shot(pg, f"study_trial_{w}x{h}_{seen}")
            no_exception(pg)
            seen += 1
            if seen == 4:
                break
            if tid.startswith("practice-"):
                pg.locator(f".st-key-ptn_{tid} button").click()
                wait_gone(pg, tid)
                if pg.locator('[class*="st-key-pt_begin"]').count():
                    shot(pg, f"study_ready_{w}x{h}")
                    press(pg, "Begin")
            else:
                pg.locator(f".st-key-ptn_{tid} button").click()
                wait_gone(pg, tid)
    finally:
        ctx.close()


# ---------------------------------------------------------------- no other page, no path

def _only_the_study(pg, *, unknown_path: bool = False) -> None:
    """The page shows the study's first screen and nothing of the app. (An unknown path
    also gets Streamlit's own "Page not found … Running the app's main page" notice.)"""
    wait_title(pg, "Welcome")
    idle(pg)
    assert pg.locator('[data-testid="stSidebar"]').count() == 0
    assert pg.locator('[data-testid="stSidebarNav"]').count() == 0
    assert pg.locator('[data-testid="stSidebarCollapsedControl"]').count() == 0 or \
        not pg.locator('[data-testid="stSidebarCollapsedControl"]').is_visible()
    text = pg.locator("body").inner_text()
    for secret in (*METHODS, "rdemo", "root:", "/etc", "Overview", "ground-truth",
                   "prediction", *(() if unknown_path else ("Page not found",))):
        assert secret not in text, secret
    no_exception(pg)


def test_a_participant_link_opens_no_other_page_and_reads_no_path(server, browser, studies,  # noqa: F811
                                                                 env, tmp_path):
    from bench.app import routing

    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"kind": "study", "root:SECRET": 1}\n')
    ctx, pg = new_page(browser)
    try:
        paths = [p.url_path for p in routing.PAGES] + ["nosuchpage"]
        for k, path in enumerate(paths):
            pg.goto(f"{server.url}/{path}?study=layout&p=N{k:02d}&src=folder&root=/etc"
                    "&gfile=/etc/passwd&m=local-sp")
            _only_the_study(pg, unknown_path=path == "nosuchpage")
            # nothing here leads elsewhere: no link at all
            assert pg.locator('[data-testid="stMain"] a').count() == 0
        for bad in ("../../etc/passwd", "/etc/passwd", str(secret), str(secret.with_suffix(""))):
            pg.goto(f"{server.url}/study?" + urllib.parse.urlencode({"study": bad, "p": "P01"}))
            wait_title(pg, "Study")
            text = pg.locator("body").inner_text()
            assert "This study link is not valid" in text
            assert "SECRET" not in text and "root:" not in text and "passwd" not in text
            assert pg.locator('[data-testid="stSidebar"]').count() == 0
        assert not (Path(env["BENCH_STUDY_DIR"]) / "passwd.jsonl").exists()
    finally:
        ctx.close()
    # a participant-only server (make study STUDY=layout): every URL is the study
    only = Server(dict(env, BENCH_PARTICIPANT_ONLY="1", BENCH_STUDY="layout"),
                  tmp_path / "only.log").start()
    try:
        ctx, pg = new_page(browser)
        try:
            pg.goto(only.url + "/data")  # the first request of a fresh server
            wait_title(pg, "Study")
            assert "Page not found" not in pg.locator("body").inner_text()
            assert pg.locator('[data-testid="stSidebar"]').count() == 0
            box = pg.get_by_label("Participant code")
            box.fill("N99")
            press(pg, "Continue")
            _only_the_study(pg)
            pg.goto(only.url + "/overview?p=N98")
            _only_the_study(pg)
            pg.goto(only.url + "/study?study=bstudy&p=N97")  # not this server's study
            wait_title(pg, "Study")
            assert "not valid" in pg.locator("body").inner_text()
        finally:
            ctx.close()
    finally:
        only.kill(signal.SIGTERM)
    state = read_study_file(studies["layout"])
    assert {"N99", "N98"} <= set(state.assignments) and "N97" not in state.assignments
    assert not state.answers or all(a.participant.startswith("L") for a in state.answers)


# ---------------------------------------------------------------- two participants

def test_two_participants_reload_restart_and_report(env, studies, browser, tmp_path):  # noqa: F811 (the imported fixture)
    srv = Server(env, tmp_path / "streamlit.log").start()
    path = studies["bstudy"]
    store = StudyStore.open(path)
    pages = {}
    acked: list[tuple[str, str, str]] = []  # (participant, trial, expected outcome)
    hidden_trial = None
    try:
        for pid, how in (("P01", "click"), ("P02", "button")):
            ctx, pg = new_page(browser)
            pages[pid] = (ctx, pg)
            start(pg, f"{srv.url}/study?study=bstudy&p={pid}", practice_by=how)
        order = {pid: [t.id for t in store.trials(pid)] for pid in pages}
        n = store.definition.n_trials

        def step(pid: str) -> None:
            nonlocal hidden_trial
            pg = pages[pid][1]
            tid = wait_trial(pg)
            k = sum(p == pid for p, _, _ in acked)
            assert tid == order[pid][k]  # the participant's own order, resumed where left
            bar = pg.locator('[data-testid="stProgress"]').inner_text()
            assert f"Photo pair {k + 1} of {n}" in bar
            if pid == "P02" and k == 1:
                hide_tab(pg, 1200)
                hidden_trial = tid
            acked.append((pid, tid, answer_by_clicking(pg, store, tid)))

        for _ in range(2):  # both at once, in turns
            step("P01")
            step("P02")
        pages["P01"][1].reload()  # a reload mid-study: the same link, a new session
        step("P01")
        step("P02")
        # the server killed mid-study: every acknowledged answer is in the file
        srv.kill()
        state = read_study_file(path)
        assert [(a.participant, a.trial) for a in state.answers] == [
            (p, t) for p, t, _ in acked]
        srv.start()
        for pid in pages:  # each participant reloads and resumes at the next trial
            pg = pages[pid][1]
            pg.goto(pg.url)
        while sum(p == "P01" for p, _, _ in acked) < n or \
                sum(p == "P02" for p, _, _ in acked) < n:
            for pid in pages:
                if sum(p == pid for p, _, _ in acked) < n:
                    step(pid)
        for pid in pages:
            pg = pages[pid][1]
            wait_title(pg, "Thank you!")
            no_exception(pg)
        shot(pages["P01"][1], "study_end")
    finally:
        for ctx, _ in pages.values():
            ctx.close()
        srv.kill(signal.SIGTERM)

    state = read_study_file(path)
    got = [(a.participant, a.trial, a.outcome) for a in state.answers]
    assert got == acked
    assert not state.refused and not state.repeats and not state.problems
    for a in state.answers:
        assert a.answer == "click" and a.x is not None
        assert a.browser_ms is not None and 50 < a.browser_ms < 60_000, a
        assert a.server_ms is not None and a.browser_ms <= a.server_ms + 5, a
        assert a.client_shown_ms is not None and a.client_answer_ms is not None
        assert a.client_answer_ms - a.client_shown_ms == a.browser_ms
        if a.trial == hidden_trial and a.participant == "P02":
            assert a.hidden_ms >= 1000 and "hidden" in a.flags
        else:
            assert a.hidden_ms == 0 and a.flags == ()

    # the report, as the command line prints it, against counts made here
    r = _cli("study", "report", "bstudy", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["participants"]["completed"] == 2 and rep["n_answers"] == 2 * n
    for c in store.definition.conditions:
        mine = [(a, want) for a, (_, _, want) in zip(state.answers, acked, strict=True)
                if a.condition == c]
        v = rep["conditions"][c]
        assert v["hits"] == sum(w == "hit" for _, w in mine)
        assert v["false_alarms"] == sum(w == "false_alarm" for _, w in mine)
        assert v["n_positive"] == sum(a.trial_kind == "positive" for a, _ in mine)
        times = [a.browser_ms for a, _ in mine if a.trial_kind == "positive" and not a.flags]
        assert v["time_ms"]["n"] == len(times)
        assert v["time_ms"]["median"] == pytest.approx(statistics.median(times))
        assert v["time_ms"]["mean"] == pytest.approx(statistics.fmean(times))
    assert sum(v["false_alarms"] for v in rep["conditions"].values()) == 2  # one each
    pw = rep["paired"]["time_ms"]["pairwise"]
    assert len(pw) == 1 and pw[0]["n"] == 2 and pw[0]["wilcoxon"]["p"] is not None
    assert rep["paired"]["hit_rate"]["pairwise"][0]["n"] == 2
