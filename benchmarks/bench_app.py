"""How fast the app answers, and how far it is from Streamlit's own floor (issue 19, item 4).

1. Demo (``--no-demo`` skips): the script run alone (``streamlit.testing.v1.AppTest``),
   and in Chromium the Overview and stepping through queries with 50 thumbnails.
2. Real-size data (``benchmarks/make_realsize.py``: ROxford5k-sized, 70 queries, about
   1,000 labelled pairs, method ``withr1m`` with R1M ranks of 1,004,993 x 70), dataset
   ``roxford5k+R1M``:

   - the page scripts (AppTest, charts included): the first session of a process with
     no results kept on disk, then new sessions (warm caches); ``--profile PAGE``
     prints cProfile's top functions of a warm run;
   - against the floor: ``benchmarks/floor_app.py`` (four ``st.metric`` cards and one
     70-bar Plotly chart) and each page (Overview, Errors, Query) are served in turn, in
     the same run, each on its own fresh ``streamlit run`` server, for ``--rounds``
     rounds (other processes share the CPU: medians are reported). Per page: *ever* = a
     fresh server whose cache folder is empty (the first visit ever pays every scan);
     *fresh* = a fresh server whose cache folder holds the results kept by an earlier
     server (``bench.resultcache``) and a fresh browser context (no JavaScript cached);
     *tab* = two new tabs of that browser context; *same* = two switches in one tab
     from the Data & help page (the floor: from its second page) by the sidebar link.
     Times are the browser's clock (from the navigation start, or from the click) at
     the animation frame when the page's last metric card / last Plotly chart / last
     element or image was drawn; each is printed with its ratio to the floor's time of
     the same kind of visit. Then what the server sent in a new tab: websocket bytes,
     Plotly JSON bytes, Arrow bytes of dataframes and tables, media bytes (images,
     downloads), element counts by type (the ``ForwardMsg`` frames decoded). The Query
     page is timed to two rows of result tiles (``.st-key-qtile_<rank>`` containers of
     pages/query.py, 6 per row).

Usage: ``python benchmarks/bench_app.py [--no-demo] [--rounds N] [--pages overview,errors,
query] [--realsize-root DIR] [--no-script-runs] [--profile PAGE] [--no-browser]
[--no-realsize]`` (the real-size data is built by make_realsize.py on first use, ~5 s).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
K = 50


def _stats(xs: list[float]) -> str:
    return (f"median {statistics.median(xs):.3f} s, max {max(xs):.3f} s, "
            f"min {min(xs):.3f} s (n={len(xs)})")


# ---------------------------------------------------------------- server side (AppTest)

def bench_apptest(n_queries: int) -> dict[str, float | list[float]]:
    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "app.py")
    out: dict[str, float | list[float]] = {}
    def fresh() -> AppTest:
        at = AppTest.from_file(app, default_timeout=120)
        at.session_state["_painted"] = True  # the full page, charts included
        return at

    t = time.perf_counter()
    at = fresh().run()
    out["overview_cold"] = time.perf_counter() - t
    assert not at.exception, at.exception
    t = time.perf_counter()
    at = fresh().run()  # a new session, warm caches
    out["overview_warm"] = time.perf_counter() - t

    at.switch_page("pages/query.py").run()
    at.slider(key="w_k").set_value(K).run()
    n = min(n_queries, len(at.selectbox(key="w_q").options))
    for _ in range(n - 1):  # first pass: makes the thumbnails
        at.button(key="next_q").click().run()
    at.selectbox(key="w_q").select(0).run()
    times = []
    for _ in range(n - 1):  # second pass: thumbnails cached
        t = time.perf_counter()
        at.button(key="next_q").click().run()
        times.append(time.perf_counter() - t)
        assert not at.exception, at.exception
        assert len(at.image) == K + 1, len(at.image)
    out["query_switch"] = times
    return out


# ---------------------------------------------------------------- browser (Playwright)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of process *pid* (MiB), from /proc; NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def start_server(env: dict[str, str], script: Path = ROOT / "app.py"
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("streamlit")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else
           ["-m", "streamlit"]), "run", str(script), "--server.port", str(port),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("streamlit did not start")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def at_query(q: int) -> str:
    """JS: the run that shows query q has finished (its URL is written at the run's end)."""
    return ("() => (new URLSearchParams(location.search).get('q') || '0') === '" + str(q)
            + "' && document.querySelector('[data-testid=\"stApp\"]')"
            ".getAttribute('data-test-script-state') === 'notRunning'")


#: The overview's cards are on screen: 3 image-level + 8 pixel-level metrics drawn.
CARDS_SHOWN = """() => document.querySelectorAll('[data-testid="stMetric"]').length >= 11"""
CHARTS_SHOWN = """() => document.querySelectorAll(
  '[data-testid="stPlotlyChart"] .main-svg').length >= 4
  && !document.querySelector('[data-testid="stSkeleton"]')"""


def drawn(page, timeout: float = 60_000) -> None:
    """No element is a loading skeleton any more and every image has loaded."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')"
        " && [...document.images].every(i => i.complete)", timeout=timeout)


def step(page, button, q: int) -> float:
    """Click *button* (Next or Prev); seconds until query q is drawn, images loaded."""
    t = time.perf_counter()
    button.click()
    page.wait_for_function(at_query(q), timeout=60_000, polling=10)
    drawn(page)
    return time.perf_counter() - t


def bench_browser(env: dict[str, str], n_queries: int) -> dict[str, float | list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float | list[float]] = {}
    proc, url = start_server(env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                for label in ("overview_first", "overview_again"):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    t = time.perf_counter()
                    page.goto(url + "/")
                    # the cards: image-level and pixel-level metrics drawn, run finished
                    page.wait_for_function(CARDS_SHOWN, timeout=60_000, polling=20)
                    out[label] = time.perf_counter() - t
                    page.wait_for_function(CHARTS_SHOWN, timeout=60_000, polling=20)
                    out[label + "_charts"] = time.perf_counter() - t
                    page.close()
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}/query?k={K}")
                page.wait_for_function(at_query(0), timeout=60_000)
                drawn(page)
                nxt = page.get_by_role("button", name="Next")
                prv = page.get_by_role("button", name="Prev")
                for q in range(1, n_queries):  # first pass: the thumbnails are made
                    step(page, nxt, q)
                for q in range(n_queries - 2, -1, -1):
                    step(page, prv, q)
                times = [step(page, nxt, q) for q in range(1, n_queries)]
                out["query_switch"] = times
                out["tiles_shown"] = float(page.locator('[data-testid="stImage"] img').count())
            finally:
                browser.close()
    finally:
        stop_server(proc)
    return out


def realsize_root(root: str | None = None) -> Path:
    """The real-size benchmark folder (built by make_realsize.py when missing; *root*:
    its --out)."""
    import json

    cmd = [sys.executable, str(ROOT / "benchmarks" / "make_realsize.py"), "--json"]
    if root:
        cmd += ["--out", root]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return Path(json.loads(out.stdout)["root"])


# ---------------------------------------------------------------- against the floor
# (issue 19, item 4) Every page time below is the browser's own clock
# (performance.now(): from the navigation start, or from the click of a same-tab
# switch) at the animation frame when the page's count of drawn elements of a kind last
# changed, read once the page has been still for SETTLE seconds. A probe injected into
# every page counts, each frame: metric cards, Plotly charts with an SVG drawn,
# dataframes with their canvas, tables, loaded images, skeletons.

FLOOR_APP = ROOT / "benchmarks" / "floor_app.py"
VIEWPORT = {"width": 1366, "height": 768}  # the measurements
SETTLE = 2.0  # s without any change: the page is drawn
PROBE = """
(() => {
  const P = window.__probe = {t0: 0, log: {}, last: {}};
  const q = s => document.querySelectorAll(s);
  const drawn = (s, inner) => [...q(s)].filter(e => e.querySelector(inner)).length;
  function tick() {
    const app = document.querySelector('[data-testid="stApp"]');
    const c = {
      cards: q('[data-testid="stMetric"]').length,
      charts: drawn('[data-testid="stPlotlyChart"]', '.main-svg'),
      dataframes: drawn('[data-testid="stDataFrame"]', 'canvas'),
      tables: q('[data-testid="stTable"]').length,
      images: [...q('[data-testid="stImage"] img')]
                .filter(i => i.complete && i.naturalWidth > 0).length,
      qtiles: [...q('[class*="st-key-qtile_"] img')]
                .filter(i => i.complete && i.naturalWidth > 0).length,
      skeletons: q('[data-testid="stSkeleton"]').length,
      pending: q('[data-testid="stSkeleton"]').length
        + q('[data-testid="stPlotlyChart"]').length
        - drawn('[data-testid="stPlotlyChart"]', '.main-svg')
        + q('[data-testid="stDataFrame"]').length
        - drawn('[data-testid="stDataFrame"]', 'canvas')
        + [...q('[data-testid="stImage"] img')].filter(i => !i.complete).length,
      state: app ? app.getAttribute('data-test-script-state') : null,
    };
    const now = performance.now();
    for (const k in c) {
      if (P.last[k] !== c[k]) { (P.log[k] = P.log[k] || []).push([now, c[k]]); P.last[k] = c[k]; }
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""
DRAWN_KINDS = ("cards", "charts", "dataframes", "tables", "images", "skeletons")
QUERY_TWO_ROWS = 12  # Query tiles in two rows (6 per row by default)


@dataclass
class Visit:
    """One page visit: when each kind of element was last drawn (s from the start) and
    what the server sent over the websocket meanwhile."""

    counts: dict[str, int]
    last: dict[str, float]  # kind -> s of its last change (after t0)
    frames: list[bytes]
    media_bytes: int
    static_bytes: int

    @property
    def done(self) -> float:
        return max([0.0, *(self.last.get(k, 0.0) for k in DRAWN_KINDS)])

    _first: dict = field(default_factory=dict)  # (kind, n) -> s when n were first drawn


def _read_probe(page, t0: float | None, wants: list[tuple[str, int]]) -> tuple[dict, dict, dict]:
    p = page.evaluate("() => window.__probe")
    base = p["t0"] if t0 is None else t0
    last: dict[str, float] = {}
    counts: dict[str, int] = {}
    first: dict = {}
    for kind, log in p["log"].items():
        after = [(t, v) for t, v in log if t >= base]
        before = [(t, v) for t, v in log if t < base]
        counts[kind] = log[-1][1]
        if after:
            last[kind] = (after[-1][0] - base) / 1000
        elif before:
            last[kind] = 0.0
        for k2, n in wants:
            if k2 == kind:
                hit = next((t for t, v in after if isinstance(v, int) and v >= n), None)
                first[(kind, n)] = float("nan") if hit is None else (hit - base) / 1000
    return counts, last, first


def _wait_settled(page, timeout: float = 240.0) -> None:
    """Until the script is not running, no element waits for its code (a skeleton, a
    chart without its SVG, a dataframe without its canvas, an image still loading) and
    nothing drawn has changed for SETTLE s."""
    deadline = time.time() + timeout
    time.sleep(0.5)
    while time.time() < deadline:
        s = page.evaluate("""() => { const P = window.__probe; let t = 0;
            for (const k in P.log) t = Math.max(t, P.log[k][P.log[k].length - 1][0]);
            return [performance.now() - t, P.last.state, P.last.pending]; }""")
        if s[0] > SETTLE * 1000 and s[1] == "notRunning" and s[2] == 0:
            return
        time.sleep(0.25)
    raise TimeoutError("the page did not settle")


def _watch(page) -> dict:
    """Collect the websocket frames the server sends and the bytes of media / static
    responses, for this page."""
    got: dict = {"frames": [], "media": 0, "static": 0}

    def on_ws(ws) -> None:
        ws.on("framereceived", lambda payload: got["frames"].append(payload)
              if isinstance(payload, bytes) else None)

    def on_response(r) -> None:
        n = int(r.headers.get("content-length") or 0)
        if "/static/" in r.url:
            got["static"] += n
        elif "/media/" in r.url:  # st.image and download files (fonts are static/media)
            got["media"] += n

    page.on("websocket", on_ws)
    page.on("response", on_response)
    return got


def visit_load(context, url: str, wants: list[tuple[str, int]]) -> Visit:
    """A new tab of *context* opens *url* (times from its navigation start)."""
    page = context.new_page()
    page.add_init_script(PROBE)
    got = _watch(page)
    page.goto(url, wait_until="commit")
    _wait_settled(page)
    counts, last, first = _read_probe(page, 0.0, wants)
    page.close()
    return Visit(counts, last, got["frames"], got["media"], got["static"], first)


# (a page link's href is no use: the default page's is the current page's URL)
CLICK_LINK = """(label) => { const a = [...document.querySelectorAll(
  '[data-testid="stSidebar"] a[href]')].find(a => a.textContent.trim().endsWith(label));
  if (!a) throw new Error('no sidebar link ' + label);
  const t = performance.now(); a.click(); return t; }"""


def visit_switch(context, start_url: str, link: str, back: str,
                 wants: list[tuple[str, int]], reps: int) -> list[Visit]:
    """In one tab: open *start_url*, then *reps* times click the sidebar link labelled
    *link* (times from the click) and go back to the start page by its link *back*."""
    page = context.new_page()
    page.add_init_script(PROBE)
    got = _watch(page)
    page.goto(start_url, wait_until="commit")
    _wait_settled(page)
    out = []
    for _ in range(reps):
        got["frames"].clear()
        got["media"] = 0
        t0 = page.evaluate(CLICK_LINK, link)
        _wait_settled(page)
        counts, last, first = _read_probe(page, t0, wants)
        out.append(Visit(counts, last, list(got["frames"]), got["media"], 0, first))
        page.evaluate(CLICK_LINK, back)
        _wait_settled(page)
    page.close()
    return out


def payload(frames: list[bytes]) -> dict[str, float]:
    """Bytes and counts of what the server sent: all frames, Plotly JSON (``spec``),
    dataframes and tables (Arrow bytes), and elements by type (``ForwardMsg`` decoded)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    out: dict[str, float] = {"ws_bytes": 0, "plotly_bytes": 0, "arrow_bytes": 0,
                             "elements": 0, "blocks": 0}
    by_type: dict[str, int] = {}
    for f in frames:
        out["ws_bytes"] += len(f)
        msg = ForwardMsg()
        try:
            msg.ParseFromString(f)
        except Exception:  # noqa: BLE001 - not a ForwardMsg: counted in ws_bytes only
            continue
        if msg.WhichOneof("type") != "delta":
            continue
        d = msg.delta
        kind = d.WhichOneof("type")
        if kind == "add_block":
            out["blocks"] += 1
        elif kind == "new_element":
            el = d.new_element
            t = el.WhichOneof("type")
            out["elements"] += 1
            by_type[t] = by_type.get(t, 0) + 1
            if t == "plotly_chart":
                out["plotly_bytes"] += len(el.plotly_chart.spec)
            elif t in ("dataframe", "table"):
                out["arrow_bytes"] += getattr(el, t).ByteSize()
    out |= {f"n_{k}": v for k, v in by_type.items()}
    return out


@dataclass(frozen=True)
class PageSpec:
    """A page to time: its path and query, the link that opens it, what 'cards' and
    'charts' mean on it (the final count of each is what the page draws)."""

    name: str
    script: Path
    path: str
    query: str
    link: str  # the label of the sidebar link that opens it
    start: str  # the path of the page a same-tab switch starts from
    back: str  # the label of that page's link
    wants: tuple[tuple[str, int], ...] = ()  # extra (kind, n) first-reached times


def page_specs(root: Path, ds: str, method: str) -> list[PageSpec]:
    from urllib.parse import quote

    q = f"src=folder&root={quote(str(root))}&ds={quote(ds)}&m={quote(method)}"
    app = ROOT / "app.py"
    return [
        PageSpec("floor", FLOOR_APP, "/", "", "Floor", "/other", "Other"),
        PageSpec("overview", app, "/", q, "Overview", "/data", "Data & help"),
        PageSpec("errors", app, "/errors", q, "Errors", "/data", "Data & help"),
        # two rows of result tiles: tile 12 (6 per row) drawn, its image loaded (the tile
        # selector is pages/query.py's: a container keyed qtile_<rank>)
        PageSpec("query", app, "/query", q + "&k=50", "Query", "/data", "Data & help",
                 wants=(("qtiles", QUERY_TWO_ROWS),)),
    ]


def time_page(spec: PageSpec, env: dict[str, str], cache: str, reps_tab: int = 2,
              reps_same: int = 2) -> dict[str, list[Visit] | float]:
    """A fresh server for *spec* (its cache folder *cache*: thumbnails and the results
    kept on disk): its first visit (fresh browser context: no cached JavaScript),
    *reps_tab* new tabs of that context, *reps_same* same-tab switches."""
    from playwright.sync_api import sync_playwright

    proc, url = start_server(dict(env, BENCH_CACHE_DIR=cache), spec.script)
    out: dict[str, list[Visit] | float] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                ctx = browser.new_context(viewport=VIEWPORT)
                full = f"{url}{spec.path}" + (f"?{spec.query}" if spec.query else "")
                wants = list(spec.wants)
                out["fresh"] = [visit_load(ctx, full, wants)]
                out["tab"] = [visit_load(ctx, full, wants) for _ in range(reps_tab)]
                start = f"{url}{spec.start}" + (f"?{spec.query}" if spec.query else "")
                out["same"] = (visit_switch(ctx, start, spec.link, spec.back, wants, reps_same)
                               if reps_same else [])
                ctx.close()
            finally:
                browser.close()
        out["rss_mib"] = rss_mib(proc.pid)
    finally:
        stop_server(proc)
    return out


def bench_floor(root: Path, reps: int, pages: list[str], ds: str = "roxford5k+R1M",
                method: str = "withr1m") -> dict[str, dict[str, list]]:
    """*reps* rounds; in each, every page of *pages* (and the floor) on its own fresh
    server, in turn (so load from other processes hits all alike)."""
    env = dict(os.environ, BENCH_DATA_ROOTS=str(root))
    specs = [s for s in page_specs(root, ds, method) if s.name in ("floor", *pages)]
    res: dict[str, dict[str, list]] = {s.name: {"ever": [], "fresh": [], "tab": [],
                                                "same": [], "rss_mib": []} for s in specs}
    kept = {s.name: tempfile.mkdtemp(prefix="bench-app-kept-") for s in specs}
    for rep in range(reps):
        for s in specs:
            t = time.perf_counter()
            if s.script != FLOOR_APP:  # the first visit ever: no results on disk yet
                empty = tempfile.mkdtemp(prefix="bench-app-cache-")
                first = time_page(s, env, empty, reps_tab=0, reps_same=0)
                shutil.rmtree(empty, ignore_errors=True)
                res[s.name]["ever"] += first["fresh"]
                if rep == 0:  # fills the kept results for the fresh servers
                    time_page(s, env, kept[s.name], reps_tab=0, reps_same=0)
            r = time_page(s, env, kept[s.name])
            for k in ("fresh", "tab", "same"):
                res[s.name][k] += r[k]
            res[s.name]["rss_mib"].append(r["rss_mib"])
            ever = (f"first ever done {res[s.name]['ever'][-1].done:.2f} s · "
                    if res[s.name]["ever"] else "")
            print(f"  round {rep + 1}/{reps} {s.name:9s} {ever}"
                  f"fresh cards {r['fresh'][0].last.get('cards', 0):.2f} s, done "
                  f"{r['fresh'][0].done:.2f} s · tab done "
                  f"{statistics.median(v.done for v in r['tab']):.2f} s · same done "
                  f"{statistics.median(v.done for v in r['same']):.2f} s "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
    for d in kept.values():
        shutil.rmtree(d, ignore_errors=True)
    return res


def _med(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def report_floor(res: dict[str, dict[str, list]]) -> None:
    """The table: per page and visit kind, medians of time to cards, to charts and to
    fully drawn, each also as a ratio to the floor's; then the payloads."""
    fl = res["floor"]

    def times(visits: list[Visit], what: str) -> float:
        if what == "done":
            return _med([v.done for v in visits])
        return _med([v.last[what] if v.counts.get(what) else float("nan") for v in visits])

    n = len(fl["fresh"])
    print(f"\nmedians over {n} rounds (new tab: 2 per round, same tab: 2 per round); "
          "ratio = page / floor, same visit kind; cards = last metric card drawn, "
          "charts = last Plotly chart drawn, done = every element and image drawn")
    print(f"{'page':9s} {'visit':6s} {'cards s':>8s} {'x':>5s} {'charts s':>9s} {'x':>5s} "
          f"{'done s':>7s} {'x':>5s}  counts")
    for name, r in res.items():
        for kind in ("ever", "fresh", "tab", "same"):
            vs = r[kind]
            if not vs:
                continue
            cells = []
            for what in ("cards", "charts", "done"):
                f = times(fl["fresh" if kind == "ever" else kind], what)
                v = times(vs, what)
                cells.append(f"{v:8.2f} {v / f:5.2f}" if not math.isnan(v) else
                             f"{'—':>8s} {'':5s}")
            counts = vs[-1].counts
            extra = ""
            for (k2, nn) in vs[-1]._first:
                extra += f" · {k2} >= {nn}: {_med([v._first[(k2, nn)] for v in vs]):.2f} s"
            print(f"{name:9s} {kind:6s} {cells[0]} {cells[1]:>15s} {cells[2]}  "
                  + ", ".join(f"{k} {counts.get(k, 0)}" for k in DRAWN_KINDS[:5]) + extra)
        print(f"{'':9s} server RSS after: {_med(r['rss_mib']):.0f} MiB")
    print("\npayload over the websocket, new tab of a warm server (last round)")
    for name, r in res.items():
        v = r["tab"][-1]
        pl = payload(v.frames)
        types = ", ".join(f"{k[2:]} {int(x)}" for k, x in sorted(pl.items())
                          if k.startswith("n_"))
        print(f"  {name:9s} websocket {pl['ws_bytes'] / 1024:8.1f} KiB · Plotly JSON "
              f"{pl['plotly_bytes'] / 1024:7.1f} KiB · Arrow {pl['arrow_bytes'] / 1024:6.1f} KiB"
              f" · media {v.media_bytes / 1024:6.1f} KiB · static JS/CSS "
              f"{v.static_bytes / 1024:6.1f} KiB (new tab: from the browser cache) · "
              f"{int(pl['elements'])} elements, {int(pl['blocks'])} blocks ({types})")
    for name, r in res.items():
        v = r["fresh"][-1]
        print(f"  {name:9s} fresh server: static JS/CSS fetched {v.static_bytes / 1024:.0f} KiB")


# ---------------------------------------------------------------- script runs (AppTest)

def script_runs(root: Path, pages: list[str], ds: str = "roxford5k+R1M",
                method: str = "withr1m", reps: int = 3, profile: str | None = None
                ) -> dict[str, dict[str, float | list[float]]]:
    """The page scripts alone (AppTest, charts drawn: the second run of a tab): the first
    session in this process (cold caches), then *reps* new sessions (warm caches).
    *profile*: a page whose warm run is profiled with cProfile (top 25 printed)."""
    from streamlit.testing.v1 import AppTest

    os.environ["BENCH_DATA_ROOTS"] = str(root)
    os.environ["BENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-app-script-")  # nothing kept
    params = {"src": "folder", "root": str(root), "ds": ds, "m": method}
    paths = {"overview": "pages/overview.py", "errors": "pages/errors.py",
             "query": "pages/query.py"}

    def run(page: str) -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        for k, v in params.items():
            at.query_params[k] = v
        at.session_state["_painted"] = True
        at.switch_page(paths[page])
        t = time.perf_counter()
        at.run()
        if at.exception:
            raise RuntimeError(" | ".join(at.exception[0].stack_trace[-3:])[:400])
        return time.perf_counter() - t

    out: dict[str, dict[str, float | list[float]]] = {}
    for page in pages:
        try:
            out[page] = {"cold": run(page)}
        except RuntimeError as e:  # the page raised: say so, time the others
            print(f"  {page}: the script raised ({e}); not timed", flush=True)
    for page in out:
        out[page]["warm"] = [run(page) for _ in range(reps)]
    if profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        run(profile)
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", help="demo folder (default: bench.demo.default_demo_dir())")
    ap.add_argument("--queries", type=int, default=8, help="queries to step through")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo measurements")
    ap.add_argument("--no-realsize", action="store_true",
                    help="skip the pages against the floor on real-size data")
    ap.add_argument("--realsize-root", help="make_realsize.py --out (default: its own)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the floor comparison (medians are reported)")
    ap.add_argument("--pages", default="overview,errors,query",
                    help="pages to time against the floor (comma-separated)")
    ap.add_argument("--no-script-runs", action="store_true",
                    help="skip the page scripts' run times (AppTest)")
    ap.add_argument("--profile", choices=["overview", "errors", "query"],
                    help="cProfile one warm script run of this page")
    args = ap.parse_args(argv)
    pages = [p for p in args.pages.split(",") if p]

    if not args.no_demo:
        from bench.demo import build_demo, default_demo_dir, demo_is_built

        demo = Path(args.demo) if args.demo else default_demo_dir()
        if not demo_is_built(demo):
            print(f"building the demo into {demo} ...", flush=True)
            build_demo(demo)
        cache = tempfile.mkdtemp(prefix="bench-app-cache-")  # cold thumbnail cache
        env = dict(os.environ, BENCH_DEMO_DIR=str(demo), BENCH_CACHE_DIR=cache)
        os.environ.update(BENCH_DEMO_DIR=str(demo), BENCH_CACHE_DIR=cache)
        print(f"demo: {demo}\nthumbnail cache (fresh): {cache}\n")

        r = bench_apptest(args.queries)
        print("server side (AppTest, script run only)")
        print(f"  overview, first run in a fresh process: {r['overview_cold']:.3f} s")
        print(f"  overview, new session, warm caches:     {r['overview_warm']:.3f} s")
        print(f"  switch query, top {K} (thumbnails cached): {_stats(r['query_switch'])}")
    if args.no_browser and args.no_realsize:
        return 0
    if not args.no_browser:
        try:
            import playwright  # noqa: F401
        except ImportError:
            print("\nbrowser: skipped (playwright not installed)")
            return 0
        if not os.path.exists(CHROMIUM):
            print(f"\nbrowser: skipped ({CHROMIUM} not found; `make chromium`)")
            return 0
    if not args.no_demo and not args.no_browser:
        b = bench_browser(env, args.queries)
        print("\nbrowser (chromium, streamlit run; until drawn and every image loaded)")
        print(f"  overview cards, first visit of a fresh server: {b['overview_first']:.3f} s "
              f"(charts drawn at {b['overview_first_charts']:.3f} s)")
        print(f"  overview cards, second visit (new tab):        {b['overview_again']:.3f} s "
              f"(charts drawn at {b['overview_again_charts']:.3f} s)")
        print(f"  switch query, top {K} (thumbnails cached): {_stats(b['query_switch'])}")
        ok = (statistics.median(b["query_switch"]) < 0.5 and b["overview_again"] < 3.0)
        print(f"\ntargets (query switch < 0.5 s, overview < 3 s): {'met' if ok else 'NOT met'}")
    if args.no_realsize:
        return 0
    root = realsize_root(args.realsize_root)
    if not args.no_script_runs:
        s = script_runs(root, pages, profile=args.profile)
        print(f"\nreal-size data ({root}, roxford5k+R1M, method withr1m): page scripts "
              "(AppTest, charts included; first session of this process, pages in this "
              "order, then new sessions with warm caches)")
        for page, r in s.items():
            print(f"  {page:9s} first session {r['cold']:.2f} s · warm {_stats(r['warm'])}")
    if args.no_browser:
        return 0
    print(f"\nreal-size data, Chromium {VIEWPORT['width']}x{VIEWPORT['height']}: each page "
          "and benchmarks/floor_app.py (4 metric cards + one 70-bar Plotly chart) on "
          "its own fresh server; other processes share the CPU, so several rounds",
          flush=True)
    res = bench_floor(root, args.rounds, pages)
    report_floor(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
