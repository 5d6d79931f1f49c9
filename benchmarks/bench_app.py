"""How fast the app answers (issue 4, point 7), on the built demo.

Targets: switching to another query with 50 thumbnails re-renders in < 0.5 s once the
thumbnails are cached; opening the app shows the overview in < 3 s.

Two measurements:

1. Server side, with ``streamlit.testing.v1.AppTest`` (the script run only: what the
   Python side costs per interaction; no browser, no network).
2. In a real browser (Playwright driving /usr/bin/chromium) against ``streamlit run``:
   from the click / page load until the script has finished, no element is still a
   loading skeleton and every image has loaded. Skipped when chromium or playwright is
   missing.

3. The Overview on real-size data (``benchmarks/make_realsize.py``: ROxford5k-sized, 70
   queries, about 1,000 labelled pairs, a plain method and one with R1M ranks of
   1,004,993 x 70): from the page load on a fresh server (a new process) until the cards
   are drawn, then until the four charts are; the same in a second tab; and the server's
   resident memory afterwards (the R1M ranks file must not stay mapped).

Usage: ``python benchmarks/bench_app.py [--demo DIR] [--queries N] [--no-browser]
[--no-realsize]`` (default demo: ``bench.demo.default_demo_dir()``, built first if needed;
the real-size data is built by make_realsize.py on first use, about 5 s).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("streamlit")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else
           ["-m", "streamlit"]), "run", str(ROOT / "app.py"), "--server.port", str(port),
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


def realsize_root() -> Path:
    """The real-size benchmark folder (built by make_realsize.py when missing)."""
    import json

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_realsize.py"),
                          "--json"], check=True, capture_output=True, text=True)
    return Path(json.loads(out.stdout)["root"])


def bench_realsize(env: dict[str, str], root: Path) -> dict[str, dict[str, float]]:
    """Overview on real-size data: cards and charts, fresh server and second tab, per
    dataset (the 5k one with two methods in the methods table, and its R1M variant)."""
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, float]] = {}
    env = dict(env, BENCH_DATA_ROOTS=str(root))
    for ds in ("roxford5k", "roxford5k+R1M"):
        r: dict[str, float] = {}
        proc, url = start_server(env)  # a fresh server for each dataset
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=CHROMIUM_ARGS)
                try:
                    for label in ("fresh", "again"):
                        page = browser.new_page(viewport={"width": 1400, "height": 1000})
                        t = time.perf_counter()
                        page.goto(f"{url}/?src=folder&root={quote(str(root))}&ds={quote(ds)}")
                        page.wait_for_function(CARDS_SHOWN, timeout=120_000, polling=20)
                        r[label] = time.perf_counter() - t
                        page.wait_for_function(CHARTS_SHOWN, timeout=120_000, polling=20)
                        r[label + "_charts"] = time.perf_counter() - t
                        page.close()
                finally:
                    browser.close()
            r["rss_mib"] = rss_mib(proc.pid)
        finally:
            stop_server(proc)
        out[ds] = r
    return out


ERRORS_DRAWN = ("() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
                " return a && a.getAttribute('data-test-script-state') === 'notRunning'"
                " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
                " && document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 12"
                " && [...document.images].every(i => i.complete)"
                " && document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg')"
                ".length >= 2"
                " && document.querySelectorAll('[data-testid=\"stDataFrame\"]').length >= 2; }")


def bench_errors(env: dict[str, str], root: Path, ds: str = "roxford5k+R1M",
                 method: str = "withr1m") -> dict[str, float | list[float]]:
    """The Errors page on real-size data: the script run (AppTest: first session, then new
    sessions with warm caches) and, in the browser, a new tab on a warm server and a
    return to the page in the same tab, each until the tables, both charts and the
    gallery's 12 tiles are drawn."""
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright
    from streamlit.testing.v1 import AppTest

    params = {"src": "folder", "root": str(root), "ds": ds, "m": method}
    os.environ["BENCH_DATA_ROOTS"] = str(root)
    out: dict[str, float | list[float]] = {}

    def script_run() -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        for k, v in params.items():
            at.query_params[k] = v
        at.switch_page("pages/errors.py")
        t = time.perf_counter()
        at.run()
        if at.exception:
            raise RuntimeError(at.exception[0].value)
        return time.perf_counter() - t

    out["server_cold"] = script_run()
    out["server_warm"] = [script_run() for _ in range(3)]
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    proc, url = start_server(dict(env, BENCH_DATA_ROOTS=str(root)))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                tabs = []
                for _ in range(3):  # the first warms the server's caches
                    page = browser.new_page(viewport={"width": 1440, "height": 1000})
                    t = time.perf_counter()
                    page.goto(f"{url}/errors?{query}")
                    page.wait_for_function(ERRORS_DRAWN, timeout=300_000, polling=50)
                    tabs.append(time.perf_counter() - t)
                    if len(tabs) < 3:
                        page.close()
                out["browser_first"] = tabs[0]
                out["browser_new_tab_warm"] = tabs[1:]
                same = []
                for _ in range(3):  # Overview, then back to Errors in the same tab
                    page.goto(f"{url}/?{query}")
                    page.wait_for_function(CARDS_SHOWN, timeout=120_000, polling=20)
                    t = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"] a[href$="/errors"]').click()
                    page.wait_for_url("**/errors**")
                    page.wait_for_function(ERRORS_DRAWN, timeout=300_000, polling=50)
                    same.append(time.perf_counter() - t)
                out["browser_same_tab"] = same
                page.close()
            finally:
                browser.close()
    finally:
        stop_server(proc)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", help="demo folder (default: bench.demo.default_demo_dir())")
    ap.add_argument("--queries", type=int, default=8, help="queries to step through")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-realsize", action="store_true",
                    help="skip the Overview on real-size data")
    args = ap.parse_args(argv)

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

    if args.no_browser:
        return 0
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("\nbrowser: skipped (playwright not installed)")
        return 0
    if not os.path.exists(CHROMIUM):
        print(f"\nbrowser: skipped ({CHROMIUM} not found; `make chromium`)")
        return 0
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
    root = realsize_root()
    rs = bench_realsize(env, root)
    print(f"\nreal-size data ({root}): Overview, from the page load (browser)")
    met = True
    for ds, r in rs.items():
        print(f"  {ds:14s} fresh server: cards {r['fresh']:.2f} s, charts {r['fresh_charts']:.2f} s"
              f" · second tab: cards {r['again']:.2f} s, charts {r['again_charts']:.2f} s"
              f" · server RSS after: {r['rss_mib']:.0f} MiB")
        met &= r["fresh"] < 3.0 and r["fresh_charts"] < 5.0
    print(f"targets (fresh server: cards < 3 s, charts < 5 s): {'met' if met else 'NOT met'}")
    e = bench_errors(env, root)
    print("\nErrors page, real-size roxford5k+R1M, method withr1m (1,001 pairs)")
    print(f"  script run: first session {e['server_cold']:.2f} s, "
          f"new session with warm caches {_stats(e['server_warm'])}")
    print(f"  browser, fully drawn: first tab of a fresh server {e['browser_first']:.2f} s; "
          f"new tab, warm server {_stats(e['browser_new_tab_warm'])}; "
          f"from the Overview in the same tab {_stats(e['browser_same_tab'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
