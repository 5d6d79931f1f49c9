"""The participant screens' JSON API (bench/study/web), through Starlette's TestClient on
the participant-only app, on a small demo of this module's own (docs/PROTOCOLS.md §7).

A participant walks through enter, consent, practice, every trial and the end screen;
each stored answer is checked against an outcome computed here (a pixel inside the
region found with OpenCV, as tests/test_app_study.py does). Then the attacks of issue 18:
forged tokens and ids, forged times, a second tab, floods (rate limits), paths and
studies the server does not serve, Streamlit's websocket, and an oversized image; after
them the groups, the stored answers and the report's figures are what the legitimate
participants made.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.demo import build_demo

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TestClient on httpx

TAB = "tab-0000000001"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A small demo of this module's own (one of its images is replaced by a test)."""
    return build_demo(tmp_path_factory.mktemp("web") / "demo", scale="small")


@pytest.fixture(autouse=True)
def env(demo, tmp_path, monkeypatch):
    from bench.study.web import backend

    monkeypatch.setenv("BENCH_DEMO_DIR", str(demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_STUDY_DIR", str(tmp_path / "studies"))
    for k in ("BENCH_STUDY_DB", "BENCH_STUDY_RATE_NEW", "BENCH_STUDY_RATE_ANSWERS",
              "BENCH_STUDY_TRUST_PROXY"):
        monkeypatch.delenv(k, raising=False)
    backend.forget()
    yield
    backend.forget()


def make_study(name="pilot", **kw):
    from bench.study.store import create_study

    opts = dict(conditions="none,ground_truth", n_trials=8, catch=0.25, seed=5,
                allow_repeats=True)
    opts.update(kw)
    store, _ = create_study(name, "rdemo", **opts)
    return store


def client(study="pilot", address="10.0.0.1") -> TestClient:
    from bench.study.web import participant_app

    return TestClient(participant_app(study), client=(address, 40000))


def post(c: TestClient, name: str, body: dict, status: int = 200) -> dict:
    r = c.post(f"/take/api/{name}", json=body)
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def enter(c: TestClient, pid: str, tab: str = TAB, study: str = "pilot") -> dict:
    r = post(c, "enter", {"study": study, "q": {"study": study, "p": pid}, "tab": tab})
    return {"study": study, "p": r["p"], "t": r["t"], "tab": tab}


def begin(c: TestClient, pid: str, study: str = "pilot") -> tuple[dict, dict]:
    who = enter(c, pid, study=study)
    assert post(c, "consent", {**who, "agree": True})["stage"] == "instructions"
    return who, post(c, "trial", {**who, "practice": None, "vw": 1366, "vh": 768})


def inside_pixel(trial, size) -> tuple[int, int]:
    """A pixel of the trial's ground-truth region rasterised with OpenCV (coordinates
    truncated, boundary included: docs/PROTOCOLS.md §7.3), nearest to its mean."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    for poly in trial.region:
        pts = np.trunc(np.asarray(poly, dtype=np.float64)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
        cv2.polylines(mask, [pts], True, 1)
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    return int(xs[k]), int(ys[k])


def answer(c, who, tr, **kw) -> dict:
    return post(c, "answer", {**who, "k": tr["k"], "practice": tr["practice"],
                              "browser_ms": 800.0, "hidden_ms": 0.0, **kw})


# ---------------------------------------------------------------- a participant

def test_a_participant_walks_through_and_every_answer_is_stored_as_scored_here():
    store = make_study()
    d = store.definition
    c = client()
    page = c.get("/take?study=pilot&p=P01")
    assert page.status_code == 200 and b'src="/take/app.js"' in page.content
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for path in ("/take/app.js", "/take/app.css", "/"):
        assert c.get(path).status_code == 200
    who = enter(c, "P01")
    assert store.participant("P01").row is None  # no group before consent
    assert post(c, "consent", {**who, "agree": True})["stage"] == "instructions"
    assert store.participant("P01").row is not None
    # practice: scored for feedback, never recorded
    tr = post(c, "trial", {**who, "practice": 0})
    for _ in d.practice:
        assert tr["kind"] == "trial" and tr["practice"]
        r = answer(c, who, tr, answer="not_present")
        assert r["note"]
        tr = r["next"]
    assert tr == {"kind": "ready", "n": d.n_trials}
    assert store.answered("P01") == set()
    tr = post(c, "trial", {**who, "practice": None})
    order = store.trials("P01")
    want = []
    for k, t in enumerate(order, start=1):
        assert tr["kind"] == "trial" and tr["k"] == k and not tr["practice"]
        w, h = tr["image"]["w"], tr["image"]["h"]
        if t.kind == "positive" and k % 2:
            x, y = inside_pixel(t, (w, h))
            r = answer(c, who, tr, answer="click", x=x + 0.5, y=y + 0.5)
            want.append((t.id, "click", "hit", ()))
        elif t.kind == "positive":  # a click beside the image: stored, a miss
            r = answer(c, who, tr, answer="click", x=-12.0, y=h / 2)
            want.append((t.id, "click", "miss", ("outside_image",)))
        else:
            r = answer(c, who, tr, answer="not_present")
            want.append((t.id, "not_present", "correct_rejection", ()))
        assert r["stored"] is True
        tr = r["next"]
    assert tr["kind"] == "end" and tr["participant"] == "P01" and tr["code"]
    assert tr["debrief"]
    got = [(a.trial, a.answer, a.outcome, a.flags) for a in store.state().answers]
    assert got == want
    for a in store.state().answers:
        assert a.browser_ms == 800.0 and a.hidden_ms == 0.0
        assert a.server_ms is not None and a.server_ms >= 0  # the server's own times
    # coming back after the end: the end screen again, the same code
    again = post(c, "enter", {"study": "pilot", "p": "P01", "t": who["t"], "tab": TAB})
    assert again["stage"] == "done" and again["end"]["code"] == tr["code"]


def test_nothing_leaks_about_the_trial():
    store = make_study()
    c = client()
    who, tr = begin(c, "P02")
    d = store.definition
    text = str(tr)
    for secret in ("rdemo", "ground", "positive", "catch", "none", *(t.image for t in d.trials),
                   *(t.query for t in d.trials), *(t.id for t in d.trials)):
        assert secret not in text
    # a picture is addressed by an opaque reference; 304 on its ETag (its content hash)
    img = c.get(tr["image"]["src"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.headers["etag"] == '"' + hashlib.sha256(img.content).hexdigest()[:32] + '"'
    assert "immutable" in img.headers["cache-control"]
    assert c.get(tr["image"]["src"],
                 headers={"if-none-match": img.headers["etag"]}).status_code == 304
    assert c.get("/take/img/pilot/" + "0" * 24).status_code == 404
    assert c.get("/take/img/pilot/../../etc/passwd").status_code == 404


def test_reload_resumes_and_a_second_tab_is_refused():
    store = make_study()
    c = client()
    who, tr = begin(c, "P03")
    tr = answer(c, who, tr, answer="not_present")["next"]
    assert tr["k"] == 2
    # a reload: the same URL (p, t) and the same tab: resumes at trial 2
    r = post(c, "enter", {"study": "pilot", "p": "P03", "t": who["t"], "tab": TAB})
    assert r["stage"] == "trials"
    assert post(c, "trial", {**who, "practice": None})["k"] == 2
    # the link in another tab (another tab id): refused while the first is alive
    other = {**who, "tab": "tab-0000000002"}
    r = post(c, "enter", {"study": "pilot", "p": "P03", "t": who["t"],
                          "tab": other["tab"]}, 409)
    assert "already open in another window" in r["error"]
    post(c, "answer", {**other, "k": 2, "answer": "not_present"}, 409)
    # the lab link without the token once the id is taken: refused, not re-issued
    r = post(c, "enter", {"study": "pilot", "q": {"p": "P03"}, "tab": "tab-0000000003"}, 403)
    assert "used already" in r["error"]
    assert len(store.state().answers) == 1
    # the same trial answered twice (a duplicated tab shares the tab id): the first stands
    r = post(c, "answer", {**who, "k": 1, "answer": "click", "x": 3.0, "y": 3.0})
    assert r["stored"] is False and "already been answered" in r["note"]
    assert r["next"]["k"] == 2
    assert [a.answer for a in store.state().answers] == ["not_present"]


def test_declining_records_nothing_and_assigns_no_group():
    store = make_study()
    c = client()
    who = enter(c, "P04")
    assert post(c, "consent", {**who, "agree": False})["stage"] == "declined"
    assert store.participant("P04").row is None
    r = post(c, "trial", {**who, "practice": None}, 403)
    assert "agree" in r["error"]


# ---------------------------------------------------------------- attacks

def test_forged_tokens_and_ids_are_refused_and_consume_no_group():
    store = make_study()
    c = client()
    who, tr = begin(c, "P05")
    for forged in ({**who, "t": "x" * 32}, {**who, "p": "P06"}, {**who, "t": None},
                   {**who, "p": "../P05"}, {**who, "p": "P05", "t": "'; DROP TABLE x;--" * 3}):
        r = post(c, "answer", {**forged, "k": 1, "answer": "not_present"},
                 400 if forged["p"] == "../P05" or (forged["t"] or "").startswith("'") else 403)
        assert r["error"]
    assert store.answered("P05") == set()
    # ids opened without consent take no group: 30 arrivals, one consent
    for k in range(30):
        enter(client(address=f"10.1.{k}.1"), f"X{k:03d}")
    rows = [p.row for p in store.state().participants.values() if p.row is not None]
    assert len(rows) == 1
    # a study the server does not serve, a malformed name: "not valid", nothing else
    for k, study in enumerate(("other", "../pilot", "", None)):
        r = post(c, "enter", {"study": study, "q": {"p": f"P7{k}"}, "tab": TAB},
                 200 if study in ("", None) else 404)
        if study not in ("", None):
            assert r["error"].startswith("This study link is not valid")


def test_forged_times_are_flagged_and_left_out_of_the_figures():
    from bench.study.stats import report

    store = make_study()
    c = client()
    who, tr = begin(c, "P08")
    r = answer(c, who, tr, answer="not_present", browser_ms=6e8)  # a week, claimed
    tr = r["next"]
    r = answer(c, who, tr, answer="not_present", browser_ms=300.0, hidden_ms=2e8)
    a1, a2 = store.state().answers
    assert "time_mismatch" in a1.flags and not a1.timed
    assert "hidden" in a2.flags and not a2.timed
    assert a1.server_ms < 60_000  # the server's own time, not the claim
    rep = report(store.state(), n_resamples=50, fit_models=False)
    text = str(rep)
    assert "600000000" not in text and "6e+08" not in text
    for bad in ({"browser_ms": -5}, {"browser_ms": "soon"}, {"browser_ms": float("1e300")},
                {"hidden_ms": -1}, {"x": 1e30, "answer": "click", "y": 1}):
        body = {**who, "k": tr["k"], "practice": False, "answer": "not_present", **bad}
        r = c.post("/take/api/answer", content=_json(body),
                   headers={"content-type": "application/json"})
        assert r.status_code == 400
    assert len(store.state().answers) == 2


def _json(d: dict) -> bytes:
    import json

    return json.dumps(d).encode()


def test_malformed_and_oversized_requests():
    make_study()
    c = client()
    for body in (b"not json", b"[1, 2]", b'{"a": ' * 5000, b"{" + b" " * 9000 + b"}"):
        r = c.post("/take/api/enter", content=body, headers={"content-type": "application/json"})
        assert r.status_code in (400, 413) and r.json()["error"]


def test_rate_limits_answer_with_a_message(monkeypatch):
    monkeypatch.setenv("BENCH_STUDY_RATE_NEW", "3")
    monkeypatch.setenv("BENCH_STUDY_RATE_PARTICIPANT", "0.5")  # burst 1
    store = make_study()
    c = client(address="10.9.9.9")
    for k in range(3):
        enter(c, f"R{k}")
    r = c.post("/take/api/enter", json={"study": "pilot", "q": {"p": "R9"}, "tab": TAB})
    assert r.status_code == 429 and "wait a minute" in r.json()["error"]
    assert int(r.headers["retry-after"]) >= 1
    enter(client(address="10.9.9.10"), "R9")  # another address is not held up
    # answers: a person does not answer 20 trials in a second
    c2 = client(address="10.9.9.11")
    who, tr = begin(c2, "R10")
    codes = []
    for _ in range(3):
        r = c2.post("/take/api/answer", json={**who, "k": tr["k"], "practice": False,
                                               "answer": "not_present"})
        codes.append(r.status_code)
        if r.status_code == 200:
            tr = r.json()["next"]
        else:
            assert "Too many answers" in r.json()["error"]
    assert codes[0] == 200 and 429 in codes[1:]
    assert len(store.answered("R10")) == codes.count(200)


def test_the_participant_server_offers_nothing_else():
    make_study()
    make_study("other")
    c = client()
    for path in ("/_stcore/health", "/_stcore/metrics", "/_stcore/host-config", "/study",
                 "/pages/study.py", "/app.py", "/take/api/enter", "/metrics", "/docs",
                 "/take/../app.py", "/static/index.html"):
        r = c.get(path)
        assert r.status_code in (404, 405) and r.text in ("Not found", "Not Found"), path
        assert "uvicorn" not in r.headers.get("server", "")
    # the other study's pictures and calls are not served here
    c_other = client("other")
    who, tr = begin(c_other, "O1", "other")
    assert c_other.get(tr["image"]["src"]).status_code == 200
    assert c.get(tr["image"]["src"]).status_code == 404
    assert post(c, "enter", {"study": "other", "q": {"p": "O2"}, "tab": TAB}, 404)
    # Streamlit's websocket (and so its clear_cache message) does not exist here
    with pytest.raises(WebSocketDisconnect):
        with c.websocket_connect("/_stcore/stream") as ws:
            ws.send_bytes(b"\x00")


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header says w x h (8-bit grey) with a tiny IDAT: decoding it would
    allocate w*h bytes; reading its size costs nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_an_oversized_image_is_refused_before_decoding(demo, monkeypatch, tmp_path):
    from PIL import ImageFile

    from bench.study.design import images_dir
    from bench.study.web import pictures

    store = make_study()
    c = client()
    who, tr = begin(c, "P09")
    first = store.trials("P09")[0]
    folder = images_dir(store.definition)
    target = next(p for p in Path(folder).iterdir() if p.stem == Path(first.image).stem
                  or p.name == first.image)
    original = target.read_bytes()
    decoded = []
    real_load = ImageFile.ImageFile.load

    def load(im):
        decoded.append(im.size)
        return real_load(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    try:
        target.write_bytes(_png_header(13000, 13000))
        pictures._SIZES_CACHE.clear()
        pictures._MEM.clear()
        import shutil
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        r = post(c, "trial", {**who, "practice": None}, 503)
        assert "cannot be shown" in r["error"]
        assert c.get(tr["image"]["src"]).status_code == 404
        assert (13000, 13000) not in decoded  # refused on the header
        assert pictures.open_capped(target, 960) is None
    finally:
        target.write_bytes(original)
        pictures._SIZES_CACHE.clear()
    assert store.answered("P09") == set()


# ---------------------------------------------------------------- platforms

def test_a_prolific_link_creates_the_participant_and_ends_with_the_code():
    from bench.study.platforms import PROLIFIC_COMPLETE

    store = make_study(platform="prolific", completion_code="C0DE42")
    c = client()
    pid = "5f1e2d3c4b5a69788796a5b4"
    q = {"study": "pilot", "PROLIFIC_PID": pid, "STUDY_ID": "60aa11bb22cc33dd44ee55ff",
         "SESSION_ID": "70aa11bb22cc33dd44ee55ff"}
    r = post(c, "enter", {"study": "pilot", "q": q, "tab": TAB})
    assert r["p"] == pid and r["stage"] == "consent"
    assert store.participant(pid).platform_ids["STUDY_ID"] == q["STUDY_ID"]
    who = {"study": "pilot", "p": pid, "t": r["t"], "tab": TAB}
    post(c, "consent", {**who, "agree": True})
    tr = post(c, "trial", {**who, "practice": None})
    while tr["kind"] == "trial":
        tr = answer(c, who, tr, answer="not_present")["next"]
    assert tr["code"] == "C0DE42"
    assert tr["redirect"] == PROLIFIC_COMPLETE.replace("{code}", "C0DE42")
    # a placeholder left unreplaced (the link opened outside Prolific): a clear message
    bad = post(c, "enter", {"study": "pilot", "q": {"PROLIFIC_PID": "{{%PROLIFIC_PID%}}"},
                            "tab": "tab-0000000009"}, 403)
    assert "not valid" in bad["error"]
    # the same platform id from another browser while the first tab is alive: refused
    r = post(c, "enter", {"study": "pilot", "q": q, "tab": "tab-0000000010"}, 409)
    assert "already open" in r["error"]
