"""The user-study page, run headless with AppTest on the small demo (docs/PROTOCOLS.md §7).

The experimenter creates a study in the page; a participant link shows nothing but the
study (no sidebar, no navigation, no method or dataset name, no path read from the URL),
walks through consent, instructions, practice and every trial, and each answer lands in
the study file scored against a point chosen inside the region here (with OpenCV, not
with the engine); a second tab is refused; a repeated answer is refused and recorded.
AppTest runs no JavaScript, so the browser clock does not report: answers carry
``no_client_clock`` here (tests/test_browser_study.py checks the browser times).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.demo import build_demo
from bench.study.design import images_dir
from bench.study.store import StudyStore, create_study, read_study_file, study_file
from bench.thumbs import image_size, resolve_image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")
METHODS = ("local-sp", "global-hist")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The small demo (the same folder as tests/test_app.py's, built once per session)."""
    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "studies"


@pytest.fixture(autouse=True)
def env(small_demo, data_dir, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "app_cache"))
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    monkeypatch.setenv("BENCH_STUDY_DIR", str(data_dir))
    monkeypatch.delenv("BENCH_PARTICIPANT_ONLY", raising=False)
    monkeypatch.delenv("BENCH_STUDY", raising=False)


def run(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = str(v)
    at.session_state["_painted"] = True
    return ok(at.run())


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def text_of(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info",
                                  "success", "code", "title", "subheader", "text")
             for e in at.get(kind)]
    parts += [b.label for b in at.button] + [t.label for t in at.text_input]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def study(data_dir):
    """A study on the demo: three conditions (one a method), 6 trials with 2 catch."""
    store, _ = create_study("pilot", "rdemo", conditions="none,ground_truth,method:local-sp",
                            n_trials=6, catch=0.34, seed=5, data_dir=data_dir)
    return store


# ---------------------------------------------------------------- independent helpers

def inside_pixel(trial, folder: Path) -> tuple[int, int]:
    """A pixel of the trial's ground-truth region, rasterised with OpenCV (coordinates
    truncated toward zero, boundary included: docs/PROTOCOLS.md §7.3), nearest to the
    region's mean."""
    w, h = image_size(resolve_image(folder, trial.image))
    mask = np.zeros((h, w), np.uint8)
    for poly in trial.region:
        pts = np.trunc(np.asarray(poly, dtype=np.float64)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
        cv2.polylines(mask, [pts], True, 1)
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    return int(xs[k]), int(ys[k])


def submit(at: AppTest):
    return next(b for b in at.button if b.label == "Create study")


def table_with(at: AppTest, column: str):
    """The first dataframe shown with a column named *column*."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def current_trial(at: AppTest) -> str | None:
    keys = [b.key for b in at.button if b.key and b.key.startswith("ptn_")]
    return keys[0][len("ptn_"):] if keys else None


def click(at: AppTest, trial_id: str, x: float, y: float, w: float, h: float,
          t: float = 1.0) -> AppTest:
    """What streamlit_image_coordinates reports for a click at displayed (x, y) on an
    image displayed w x h."""
    at.session_state[f"ptd_{trial_id}"] = {"x": x, "y": y, "width": w, "height": h,
                                           "unix_time": t}
    return ok(at.run())


def walk_to_trials(at: AppTest, n_practice: int) -> AppTest:
    assert [t.value for t in at.title] == ["Welcome"]
    at = ok(at.button(key="pt_agree").click().run())
    assert [t.value for t in at.title] == ["How it works"]
    at = ok(at.button(key="pt_start").click().run())
    for _ in range(n_practice):  # practice: answered, not recorded
        tid = current_trial(at)
        assert tid and tid.startswith("practice-")
        at = ok(at.button(key=f"ptn_{tid}").click().run())
    assert [t.value for t in at.title] == ["The study begins"]
    return ok(at.button(key="pt_begin").click().run())


# ---------------------------------------------------------------- experimenter

def test_experimenter_creates_a_study_and_gets_the_links(data_dir, tmp_path):
    at = run()
    at = ok(at.switch_page("pages/study.py").run())
    assert at.title[0].value == "User study: do pixel-level results help?"
    assert "No study in" in text_of(at)
    assert at.text_input(key="sn_name").value == "study-1"
    at.text_input(key="sn_name").set_value("exp-1")
    at.multiselect(key="sn_conds").set_value(["none", "method:local-sp", "ground_truth"])
    at.number_input(key="sn_trials").set_value(7)
    at.number_input(key="sn_catch").set_value(0.3)
    at.number_input(key="sn_seed").set_value(11)
    at.number_input(key="sn_practice").set_value(1)
    at = ok(submit(at).click().run())
    assert [s.value for s in at.success][0].startswith("Study **exp-1** created")
    path = study_file(data_dir, "exp-1")
    d = StudyStore.open(path).definition
    assert d.conditions == ("none", "method:local-sp", "ground_truth")
    assert (d.n_trials, d.n_catch, d.seed, len(d.practice)) == (7, round(0.3 * 7), 11, 1)
    # the same design made directly, elsewhere: the page passed the form's values on
    ref, _ = create_study("exp-1", "rdemo", conditions="none,method:local-sp,ground_truth",
                          n_trials=7, catch=0.3, seed=11, n_practice=1,
                          data_dir=tmp_path / "ref")
    assert [t.to_json() for t in d.trials] == [t.to_json() for t in ref.definition.trials]
    # the dashboard: the new study selected, its link, P01..P12, nothing answered yet
    assert at.selectbox(key="w_study").value == "exp-1"
    assert "/study?study=exp-1&p=P01" in [c.value for c in at.code]
    links = table_with(at, "link")
    assert list(links["participant"]) == [f"P{k:02d}" for k in range(1, 13)]
    assert list(links["link"])[:2] == ["/study?study=exp-1&p=P01", "/study?study=exp-1&p=P02"]
    m = {x.label: x.value for x in at.metric}
    assert m["Participants"] == "0" and m["Answers"] == "0"
    # a second study of the same name is refused, the first one untouched
    before = path.read_bytes()
    at.text_input(key="sn_name").set_value("exp-1")
    at = ok(submit(at).click().run())
    assert any("study exists" in e.value for e in at.error)
    assert path.read_bytes() == before


def test_dashboard_numbers_are_counts_of_the_file(study, data_dir):
    pids = ["P01", "P02", "P03"]
    for k, pid in enumerate(pids):  # answers written through the store, as a page would
        study.assign(pid)
        for j, t in enumerate(study.trials(pid)):
            if t.kind == "positive" and (j + k) % 3:
                x, y = (float(v) for v in np.asarray(t.region[0]).mean(axis=0))
                study.record(pid, t.id, answer="click", x=x, y=y, browser_ms=900 + 10 * j)
            else:
                study.record(pid, t.id, answer="not_present", browser_ms=1500)
    at = run(study="pilot")
    at = ok(at.switch_page("pages/study.py").run())
    state = read_study_file(study.path)
    m = {x.label: x.value for x in at.metric}
    assert m["Participants"] == "3" and m["Completed"] == "3"
    assert m["Answers"] == str(len(state.answers)) == str(3 * 6)
    table = table_with(at, "hit rate")
    labels = {"none": "no annotation", "ground_truth": "ground-truth region",
              "method:local-sp": "prediction of local-sp"}
    for c, label in labels.items():  # hit rate = hits / positive trials, counted here
        mine = [a for a in state.answers if a.condition == c]
        pos = [a for a in mine if a.trial_kind == "positive"]
        hits = sum(a.outcome == "hit" for a in pos)
        row = table[table["condition"] == label].iloc[0]
        assert row["answers"] == len(mine) and row["hits"] == hits
        assert row["hit rate"] == f"{100 * hits / len(pos):.1f}%"
    # exports: the answers CSV has one row per answer
    dl = [b for b in at.get("download_button")]
    assert len(dl) >= 3
    assert "Friedman" in text_of(at) and "Human against machine" in text_of(at)


# ---------------------------------------------------------------- participant

def test_participant_link_shows_only_the_study_and_records_every_trial(study, data_dir):
    folder = images_dir(study.definition)
    # extra parameters of the normal app (a path among them) are ignored
    at = run(study="pilot", p="P07", src="folder", root="/etc", m="local-sp")
    assert len(at.sidebar) == 0  # no sidebar at all, so no navigation either
    text = text_of(at)
    for secret in (*METHODS, "rdemo", "ground", "prediction", "/etc", str(data_dir)):
        assert secret not in text
    assert study.definition.consent.split(".")[0] in text
    assert dict(at.query_params).keys() == {"study", "p", "sid"}
    at = walk_to_trials(at, len(study.definition.practice))
    d = study.definition
    order = [t.id for t in study.trials("P07")]
    done = []
    for k, tid in enumerate(order):
        assert current_trial(at) == tid  # the participant's own order
        assert at.get("progress")[0].proto.text == f"Photo pair {k + 1} of {d.n_trials}"
        t = d.trial(tid)
        assert not any(s in text_of(at) for s in (*METHODS, t.query, t.image, "rdemo"))
        w, h = image_size(resolve_image(folder, t.image))
        if t.kind == "positive":
            px, py = inside_pixel(t, folder)
            if k % 2:  # displayed at the original size: the pixel's centre
                at = click(at, tid, px, py, w, h)
                want = (px + 0.5, py + 0.5)
            else:  # displayed twice as large
                at = click(at, tid, 2 * px + 1, 2 * py + 1, 2 * w, 2 * h)
                want = ((2 * px + 1.5) / 2, (2 * py + 1.5) / 2)
            done.append((tid, "click", "hit", want))
        else:
            at = ok(at.button(key=f"ptn_{tid}").click().run())
            done.append((tid, "not_present", "correct_rejection", (None, None)))
    assert [t.value for t in at.title] == ["Thank you!"]
    state = read_study_file(study.path)
    got = [(a.trial, a.answer, a.outcome, (a.x, a.y)) for a in state.answers]
    assert got == done
    for a in state.answers:
        assert a.browser_ms is None and a.flags == ("no_client_clock",)
        assert a.server_ms is not None and a.server_ms >= 0
        assert a.condition == d.condition_of(d.trial(a.trial), state.assignments["P07"].row)
    # reopening the finished link: the end screen, nothing recorded
    at = run(study="pilot", p="P07", sid=dict(at.query_params)["sid"])
    assert [t.value for t in at.title] == ["Thank you!"]
    assert len(read_study_file(study.path).answers) == len(done)


def test_reload_resumes_and_a_second_tab_is_refused(study):
    at = run(study="pilot", p="P02")
    sid = at.query_params["sid"]
    at = walk_to_trials(at, len(study.definition.practice))
    first = current_trial(at)
    at = ok(at.button(key=f"ptn_{first}").click().run())
    second = current_trial(at)
    assert second != first
    # the link opened in another tab (no token): told the id is active, nothing recorded
    other = run(study="pilot", p="P02")
    assert "already open in another window" in text_of(other)
    assert current_trial(other) is None
    assert len(read_study_file(study.path).answers) == 1
    # a reload (same URL, token included; a new session): resumes at the next trial
    again = run(study="pilot", p="P02", sid=sid)
    assert current_trial(again) == second
    assert [t.id for t in study.trials("P02")][1] == second


def test_a_repeated_answer_is_refused_and_recorded(study):
    a = run(study="pilot", p="P03")
    sid = a.query_params["sid"]
    a = walk_to_trials(a, len(study.definition.practice))
    b = run(study="pilot", p="P03", sid=sid)  # the same tab twice (a duplicated tab)
    b = walk_to_trials(b, len(study.definition.practice))
    tid = current_trial(a)
    assert current_trial(b) == tid
    a = ok(a.button(key=f"ptn_{tid}").click().run())
    b = ok(b.button(key=f"ptn_{tid}").click().run())
    state = read_study_file(study.path)
    assert [x.trial for x in state.answers] == [tid]
    assert [(r.participant, r.trial, r.why) for r in state.refused] == [
        ("P03", tid, "already answered")]
    assert current_trial(b) == current_trial(a) != tid  # both moved on
    assert "already been answered" in b.get("progress")[0].proto.text  # said, not hidden


@pytest.mark.parametrize("params", [
    {"study": "../../etc/passwd", "p": "P01"},
    {"study": "/etc/passwd", "p": "P01"},
    {"study": "nosuchstudy", "p": "P01"},
    {"study": "pilot", "p": "../P01"},
    {"study": "pilot", "p": "x" * 65},
])
def test_a_bad_link_reads_nothing_and_says_only_that_it_is_not_valid(study, data_dir, params):
    before = sorted(p.name for p in data_dir.iterdir())
    at = run(**params)
    assert len(at.sidebar) == 0
    text = text_of(at)
    assert "This study link is not valid" in text
    assert "passwd" not in text and str(data_dir) not in text and "root:" not in text
    assert sorted(p.name for p in data_dir.iterdir()) == before


def test_participant_only_server(study, monkeypatch):
    monkeypatch.setenv("BENCH_PARTICIPANT_ONLY", "1")
    monkeypatch.setenv("BENCH_STUDY", "pilot")
    at = run()  # no parameters at all: asks for the code, shows nothing else
    assert len(at.sidebar) == 0 and [t.label for t in at.text_input] == ["Participant code"]
    at.text_input(key="pt_code").set_value("P11")
    at = ok(at.button(key="pt_code_go").click().run())
    assert [t.value for t in at.title] == ["Welcome"]
    assert study.assignment("P11") is not None
    at = run(p="P12")  # the server's study without naming it
    assert [t.value for t in at.title] == ["Welcome"]
    at = run(study="other", p="P12")  # another study: not on this server
    assert "not valid" in text_of(at)


# ---------------------------------------------------------------- layout and time helpers

def test_image_sizes_fit_the_viewport_side_by_side():
    from bench.app import participant as P

    for vw, vh in ((1366, 768), (1600, 1000), (1920, 1080), (1024, 600)):
        col_w, max_h = P.image_box((vw, vh))
        assert col_w == (vw - 48 - 24) // 2 - 2 and max_h == vh - 200
        for q, d in (((384, 255), (288, 384)), ((4000, 3000), (3000, 4000)),
                     ((100, 1000), (1000, 100)), ((384, 384), (384, 288))):
            (qw, qh), (dw, dh) = P.display_sizes(q, d, (vw, vh))
            assert qh == dh  # one height
            assert qw <= col_w and dw <= col_w and qh <= max_h
            # the limiting side is used fully (up to rounding)
            h_exact = min(max_h, col_w * q[1] / q[0], col_w * d[1] / d[0],
                          3.0 * max(q[1], d[1]))
            assert qh == int(h_exact)
            assert abs(qw - qh * q[0] / q[1]) <= 1 and abs(dw - dh * d[0] / d[1]) <= 1


def test_click_conversion_and_browser_time():
    from bench.app.participant import timing, to_image_px

    assert to_image_px({"x": 10, "y": 20, "width": 200, "height": 100}, (400, 300)) == (
        10.5 * 2, 20.5 * 3)
    assert to_image_px({"x": 10.25, "y": 0.75, "width": 100, "height": 100}, (50, 50)) == (
        5.125, 0.375)
    for bad in ({"x": 1}, {"x": "a", "y": 1, "width": 1, "height": 1},
                {"x": 1, "y": 1, "width": 0, "height": 1},
                {"x": math.nan, "y": 1, "width": 5, "height": 5},
                {"x": 500, "y": 1, "width": 5, "height": 5}):
        assert to_image_px(bad, (10, 10)) is None
    t = timing(1_700_000_002_500, {"shown": 1_700_000_001_000, "hidden_ms": 300})
    assert t == {"browser_ms": 1500.0, "hidden_ms": 300.0, "client_shown_ms": 1.700000001e12,
                 "client_answer_ms": 1.7000000025e12, "flags": []}
    for clock, answer in (({}, 5.0), ({"shown": 10.0}, None), ({"shown": 10.0}, 5.0),
                          ({"shown": "x"}, 5.0)):
        got = timing(answer, clock)
        assert got["browser_ms"] is None and got["flags"] == ["no_client_clock"]
    assert json.dumps(timing(None, None))  # JSON-ready
