"""The user study end to end in a real browser: a study made with the command line, two
participants at once on the participant-only server (``bench.study.web.serve``), driven
by Playwright through Debian's /usr/bin/chromium, on the small demo (docs/PROTOCOLS.md §7).

Two participants in two browser contexts, each clicking inside the region on every
positive trial and pressing "Not in this image" on a catch trial, one
reload mid-study, one stretch with the tab hidden, and the server killed (SIGKILL) and
started again mid-study: every acknowledged answer is in the store, each participant
resumes at the next trial, and ``python -m bench study report NAME --json`` reports their
hits per condition and the analysed participants, checked against counts made here. The screens themselves (layout,
Prolific, the debrief, a second tab) are tests/test_browser_participant.py's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.demo import build_demo
from tests.test_browser import ROOT, SHOTS, browser, sync_api  # noqa: F401 (fixture; skips without chromium)
from tests.test_browser_participant import hide_tab, region_point, title, wait_trial


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The participant-only server of one study on a fixed port; killed and started
    again by the test."""

    def __init__(self, env: dict[str, str], study: str, log: Path):
        self.env, self.study, self.log, self.port, self.proc = env, study, log, _free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", f"import bench.study.web as w; w.serve({self.study!r}, "
                                       f"'127.0.0.1', {self.port}, 1)"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/take", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                pytest.fail("the participant server did not start:\n"
                            + self.log.read_text()[-3000:])
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
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser_study")
    demo = build_demo(base / "demo", scale="small")
    e = dict(os.environ, BENCH_DEMO_DIR=str(demo.root), BENCH_CACHE_DIR=str(base / "cache"),
             BENCH_STUDY_DIR=str(base / "studies"))
    for k in ("BENCH_DATA_ROOTS", "BENCH_PARTICIPANT_ONLY", "BENCH_STUDY", "BENCH_STUDY_DB"):
        e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def study(env):
    """``bstudy``: 4 trials (3 positives, 1 catch), two conditions, no platform (lab
    ids); made in a child process so this process opens it afresh."""
    code = ("from bench.study.store import create_study; create_study('bstudy', 'rdemo', "
            "conditions='none,ground_truth', n_trials=4, catch=0.25, seed=3)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    old = {k: os.environ.get(k) for k in ("BENCH_STUDY_DIR", "BENCH_DEMO_DIR")}
    os.environ.update({k: env[k] for k in old})
    from bench.study.store import StudyStore

    yield StudyStore.open("bstudy")
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def new_page(browser):  # noqa: F811 (the imported fixture)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    return ctx, pg


def start(pg, url: str, n_practice: int) -> None:
    pg.goto(url)
    title(pg, "Welcome")
    pg.get_by_role("button", name="I agree").click()
    title(pg, "How it works")
    if not n_practice:  # every demo query is in the study: none is left for practice
        pg.get_by_role("button", name="Start", exact=True).click()
        return
    pg.get_by_role("button", name="Start the practice", exact=False).click()
    for k in range(1, n_practice + 1):
        wait_trial(pg, f"p{k}")
        pg.get_by_role("button", name="Not in this image").click()
    title(pg, "The study begins")
    pg.get_by_role("button", name="Begin").click()


def answer_by_clicking(pg, store, k: int, trial) -> str:
    """Answer trial *k*: a click inside the region on a positive, "Not in this image" on
    a catch trial; wait until the reply moved on. The expected outcome."""
    from bench.study.web.pictures import image_size

    w, h = image_size(store.definition, trial.image)
    box = pg.locator("#dpanel img").bounding_box()
    pg.wait_for_timeout(120)
    if trial.kind == "positive":
        x, y = region_point(trial)
        want = "hit"
        pg.mouse.click(box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h)
    else:  # a false alarm on every catch trial would exclude the participant (§7.2)
        pg.get_by_role("button", name="Not in this image").click()
        want = "correct_rejection"
    pg.wait_for_function("k => document.body.dataset.trial !== k"
                         " || !document.querySelector('#text[hidden]')", arg=f"t{k}")
    return want


def test_two_participants_reload_kill_restart_and_report(env, study, browser, tmp_path):  # noqa: F811
    srv = Server(env, "bstudy", tmp_path / "server.log").start()
    store = study
    n = store.definition.n_trials
    pages = {}
    acked: list[tuple[str, str, str]] = []  # (participant, trial, expected outcome)
    hidden = None
    try:
        for pid in ("P01", "P02"):
            ctx, pg = new_page(browser)
            pages[pid] = (ctx, pg)
            start(pg, f"{srv.url}/take?study=bstudy&p={pid}", len(store.definition.practice))
        order = {pid: store.trials(pid) for pid in pages}

        def step(pid: str) -> None:
            nonlocal hidden
            pg = pages[pid][1]
            k = sum(p == pid for p, _, _ in acked) + 1
            wait_trial(pg, f"t{k}")  # the participant's own order, resumed where left
            assert pg.locator("#heading").inner_text().startswith(f"Photo pair {k} of {n}")
            t = order[pid][k - 1]
            if pid == "P02" and k == 2:
                hide_tab(pg, 1200)
                hidden = t.id
            acked.append((pid, t.id, answer_by_clicking(pg, store, k, t)))

        step("P01")
        step("P02")
        pages["P01"][1].reload()  # a reload mid-study: the same link (p, t in the URL)
        step("P01")
        step("P02")
        # the server killed mid-study: every acknowledged answer is stored
        srv.kill()
        state = store.state()
        assert sorted((a.participant, a.trial) for a in state.answers) == sorted(
            (p, t) for p, t, _ in acked)
        srv.start()
        for pid in pages:  # each reloads and resumes at the next trial
            pg = pages[pid][1]
            pg.goto(pg.url)
        while any(sum(p == pid for p, _, _ in acked) < n for pid in pages):
            for pid in pages:
                if sum(p == pid for p, _, _ in acked) < n:
                    step(pid)
        for pid in pages:
            title(pages[pid][1], "Thank you!")
        SHOTS.mkdir(parents=True, exist_ok=True)
        pages["P01"][1].screenshot(path=str(SHOTS / "study_end.png"))
    finally:
        for ctx, _ in pages.values():
            ctx.close()
        srv.kill(signal.SIGTERM)

    state = store.state()
    got = sorted((a.participant, a.trial, a.outcome) for a in state.answers)
    assert got == sorted(acked)
    assert not state.refused and not state.repeats and not state.problems
    for a in state.answers:
        assert (a.answer == "click") == (a.trial_kind == "positive")
        assert a.browser_ms is not None and 50 < a.browser_ms < 60_000, a
        assert a.server_ms is not None and a.browser_ms + a.hidden_ms <= a.server_ms + 1000
        if a.trial == hidden and a.participant == "P02":
            assert a.hidden_ms >= 1000 and "hidden" in a.flags
        else:
            assert a.hidden_ms == 0 and "hidden" not in a.flags

    # the report, as the command line prints it, against counts made here
    r = _cli("study", "report", "bstudy", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["participants"]["completed"] == 2
    from bench.study.stats import participant_checks

    # the analysed set: the declared exclusion rules (§7.2) decide it; counts made here
    keep = {c["participant"] for c in participant_checks(state.answers, store.definition, None)
            if not c["excluded_by"]}
    assert rep["flow"]["analysed"] == len(keep)
    by = {(a.participant, a.trial): a for a in state.answers}
    for c in store.definition.conditions:
        mine = [(by[(p, t)], w) for p, t, w in acked
                if by[(p, t)].condition == c and p in keep]
        v = rep["conditions"][c]
        assert v["hits"] == sum(w == "hit" for _, w in mine)
        assert v["false_alarms"] == 0
        assert v["n_positive"] == sum(a.trial_kind == "positive" for a, _ in mine)
