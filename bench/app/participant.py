"""Participant mode: the user study as a participant sees it (docs/PROTOCOLS.md §7).

**When.** A session is in participant mode when its first URL carries both ``study=`` and
``p=`` (the participant link ``/study?study=NAME&p=ID``, on any page path), or when the
server runs participant-only (``BENCH_PARTICIPANT_ONLY=1``, which ``make study
STUDY=NAME`` sets together with ``BENCH_STUDY=NAME``). Once in it, a session stays in it.
``app.py`` then calls :func:`serve` instead of the normal router: no sidebar is drawn,
navigation is hidden (``st.navigation(..., position="hidden")``) and every page path,
the study's included, runs :func:`page`. The page shows only: consent and instructions
(the study definition's texts), practice trials (not recorded), the trials with a
progress bar, an end screen. No method, dataset or file name, no metric, no setting.
Nothing in the URL is used as a path: the study name is checked and looked up in the
data folder (``$BENCH_STUDY_DIR`` or ``./studies``), the participant id is checked.

**Sessions.** The page claims the participant id with a token kept in the URL (``sid=``),
so a reload (same URL, new Streamlit session) keeps the claim and resumes at the first
unanswered trial; the link opened in a second tab has no token, gets a new one, and is
told the id is already active (the store's lease, 30 s, renewed every 10 s by a
fragment). Every answer is sent with the token.

**Answers.** The database image is a ``streamlit_image_coordinates`` component: a click
returns the displayed position and size and the click time (``unix_time``, ``Date.now()``
in the browser). The position becomes image pixels by the displayed-to-original scale
(:func:`to_image_px`; an integer position is taken as its pixel's centre). A "Not in this
image" button is shown on every trial (positives too, or its presence would give catch
trials away).

**Browser time.** A small ``st.components.v2`` component (the *clock*, inline JavaScript,
no iframe) watches both images of the trial: when both have loaded, have a size and the
tab is visible, it waits two animation frames (the images are painted) and notes
``Date.now()`` as the display time; it adds up the time the tab is hidden afterwards
(``visibilitychange``); it notes the press time of the "Not in this image" button
(``pointerdown``, before the button's own click event reaches the server); and it reports
the viewport size, which sizes the images. ``browser_ms`` = answer time − display time,
both read from the same browser clock (:func:`timing`); ``hidden_ms`` beside it (the store
flags the trial ``hidden``, and the analysis leaves flagged trials out of the times).
``server_ms`` (the server sending the trial to receiving the answer) is kept beside it;
it is longer by the transfer, decoding and painting of the images and the trip back.
When the clock did not report (JavaScript blocked), ``browser_ms`` is left empty and the
trial flagged ``no_client_clock``: subtracting the server's send time from the browser's
click time would mix two clocks.

**Layout.** Query (with its box) left, database image (with the condition's annotation)
right, in two columns; both get the same height, the largest that fits the column width
and the viewport height left after the progress bar and the prompt (:func:`image_box`),
so neither overlaps the other and both are visible without scrolling.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image
from streamlit_image_coordinates import streamlit_image_coordinates

from bench import render, thumbs
from bench.app import roots, routing, state
from bench.demo import default_demo_dir, demo_is_built
from bench.errors import BenchError
from bench.study.design import StudyDefinition, StudyTrial, find_dataset
from bench.study.records import score
from bench.study.store import (
    AlreadyAnswered,
    SessionActive,
    StudyStore,
    check_participant,
    default_data_dir,
    new_session_token,
    study_file,
)

ENV_ONLY = "BENCH_PARTICIPANT_ONLY"  # "1": the server shows the participant screens only
ENV_STUDY = "BENCH_STUDY"  # the study of a participant-only server (make study STUDY=...)

SEND_PX = 1280  # longer side of the pictures sent to the browser
HEARTBEAT_S = 10  # renewal of the session claim (the store's lease is 30 s)
DEFAULT_VIEWPORT = (1366, 768)  # until the browser reported its own
# CSS pixels around the images (see the CSS below): main block padding left + right and
# the gap between the columns; above and below them: padding, progress bar, prompt row,
# gaps, and a margin for a horizontal scrollbar or a zoomed font
PAD_X, COL_GAP = 2 * 24, 24
CHROME_Y = 200
MIN_H, MAX_SCALE = 160, 3.0

_MODE = "_participant_mode"
_SID = re.compile(r"^[0-9a-f]{32}$")
_DONE_CLICKS = "_pt_done_clicks"
_SENT = "_pt_sent"  # trial nonce -> time.time() when this session first sent it
_VIEWPORT = "_pt_viewport"
_SCREEN = "_pt_screen"  # consent | instructions | practice | ready | trials | declined
_PRACTICE_AT = "_pt_practice_at"
_NOTE = "_pt_note"
_PENDING = "_pt_not_present"  # nonce of a pressed "Not in this image" button
_SHOWN = "_pt_shown"  # nonce of the trial this session showed last

CSS = """
<style>
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stStatusWidget"], [data-testid="stElementToolbar"] {display: none !important;}
[data-testid="stMainBlockContainer"] {padding: 16px 24px 16px 24px !important;
  max-width: none !important;}
.st-key-pt_live {display: none !important;}
.st-key-pt_text {max-width: 48rem;}
.st-key-pt_images [data-testid="stHorizontalBlock"] {gap: 24px !important;
  flex-wrap: nowrap !important;}
.st-key-pt_images [data-testid="stColumn"] {min-width: 0 !important;}
</style>
"""

# The clock: see the module docstring. One instance per trial (its key holds the trial's
# nonce); its state survives re-invocations in window.__benchClock, and it reports only
# when something changed, so a rerun it causes does not cause another.
CLOCK_JS = """
export default function(component) {
  const { data, setStateValue } = component;
  const nonce = (data && data.nonce) || "screen";
  const all = (window.__benchClock = window.__benchClock || {});
  const s = all[nonce] || (all[nonce] = {nonce: nonce, shown: null, hidden_ms: 0,
                                         pressed: null, hiddenAt: null, sent: ""});
  const report = () => {
    const out = {nonce: nonce, vw: window.innerWidth, vh: window.innerHeight,
                 shown: s.shown, hidden_ms: s.hidden_ms, pressed: s.pressed};
    const text = JSON.stringify(out);
    if (text !== s.sent) { s.sent = text; setStateValue("clock", out); }
  };
  const ok = (im) => im && im.complete && im.naturalWidth > 0
                      && im.getBoundingClientRect().width > 0;
  const ready = () => {
    // this trial's elements only: not a stale one of the previous trial still on screen
    const q = document.querySelector(".st-key-ptq_" + nonce
                                     + " [data-stale='false'] img");
    const f = document.querySelector(".st-key-ptd_" + nonce + "[data-stale='false'] iframe");
    if (!q || !f) return false;
    let d = null;
    try { d = f.contentDocument && f.contentDocument.getElementById("image"); }
    catch (e) { return false; }
    if (!ok(q) || !ok(d) || !d.height) return false;
    return f.getBoundingClientRect().height >= d.height - 1;
  };
  let raf = 0;
  const watch = () => {
    raf = 0;
    if (s.shown !== null || !data || !data.trial) return;
    if (document.visibilityState === "visible" && ready()) {
      raf = requestAnimationFrame(() => { raf = requestAnimationFrame(() => {
        raf = 0; if (s.shown === null) { s.shown = Date.now(); report(); } }); });
      return;
    }
    raf = requestAnimationFrame(watch);
  };
  const onVisibility = () => {
    const now = Date.now();
    if (document.visibilityState === "hidden") {
      if (s.shown !== null && s.hiddenAt === null) s.hiddenAt = now;
    } else {
      if (s.hiddenAt !== null) { s.hidden_ms += now - s.hiddenAt; s.hiddenAt = null; }
      if (s.shown === null && !raf) watch();
    }
    report();
  };
  const onPress = (e) => {
    if (!data || !data.trial || s.pressed !== null) return;
    if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") return;
    const t = e.target;
    if (t && t.closest && t.closest(".st-key-ptn_" + nonce)) {
      s.pressed = Date.now();
      if (s.hiddenAt !== null) { s.hidden_ms += s.pressed - s.hiddenAt; s.hiddenAt = null; }
      report();
    }
  };
  let resizeTimer = 0;
  const onResize = () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(report, 250); };
  document.addEventListener("visibilitychange", onVisibility);
  document.addEventListener("pointerdown", onPress, true);
  document.addEventListener("keydown", onPress, true);
  window.addEventListener("resize", onResize);
  report();
  watch();
  return () => {
    if (raf) cancelAnimationFrame(raf);
    clearTimeout(resizeTimer);
    document.removeEventListener("visibilitychange", onVisibility);
    document.removeEventListener("pointerdown", onPress, true);
    document.removeEventListener("keydown", onPress, true);
    window.removeEventListener("resize", onResize);
  };
}
"""

_clock = st.components.v2.component("bench_study_clock", js=CLOCK_JS)


# ---------------------------------------------------------------- mode and routing

def only() -> bool:
    """Whether this server shows participant screens only (``BENCH_PARTICIPANT_ONLY=1``)."""
    return os.environ.get(ENV_ONLY, "").strip() == "1"


def requested() -> bool:
    """Whether this session is (or becomes, on its first run) a participant session."""
    if st.session_state.get(_MODE) or only():
        return True
    qp = st.query_params
    return bool(qp.get("study")) and bool(qp.get("p"))


def active() -> bool:
    """Whether the current run belongs to a participant session (set by :func:`serve`)."""
    return bool(st.session_state.get(_MODE))


def _alias(name: str):
    def study_screen() -> None:
        page()

    study_screen.__name__ = f"study_screen_{name}"
    return study_screen


def serve() -> None:
    """The participant app (called by ``app.py`` instead of the router's normal run):
    page config, the URL's ``study`` / ``p`` / ``sid`` into the state (nothing else of
    the URL is read), hidden navigation in which every page path shows the study, and the
    router's run (which writes the URL back)."""
    st.set_page_config(page_title="Study", page_icon=":material/how_to_reg:", layout="wide",
                       initial_sidebar_state="collapsed")
    if not st.session_state.get(_MODE):
        st.session_state[_MODE] = True
        qp = st.query_params
        for key in ("study", "p", "sid"):
            raw = qp.get(key, "")
            state.put(key, raw[:200] if isinstance(raw, str) else "")
    # "/" and every path of the app (the default page's file name too) show the study
    pages = [st.Page(_alias("root"), title="Study", default=True)]
    for spec in routing.PAGES:
        name = Path(spec.path).stem
        pages.append(st.Page(spec.path if spec == routing.STUDY else _alias(name),
                             title="Study", url_path=name))
    page_ = st.navigation(pages, position="hidden")
    routing.run(page_)


# ---------------------------------------------------------------- pure helpers

def image_box(viewport: tuple[int, int] | None) -> tuple[int, int]:
    """``(column width, image height)`` available to each image in CSS pixels for a
    browser viewport ``(width, height)`` (:data:`DEFAULT_VIEWPORT` when unknown)."""
    vw, vh = viewport or DEFAULT_VIEWPORT
    col_w = int((vw - PAD_X - COL_GAP) // 2) - 2
    return max(col_w, 120), max(int(vh - CHROME_Y), MIN_H)


def display_sizes(query: tuple[int, int], db: tuple[int, int],
                  viewport: tuple[int, int] | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Displayed ``(w, h)`` of the query and the database image: one common height, the
    largest at which each image fits its column and the viewport height (and at most
    :data:`MAX_SCALE` times the larger original)."""
    col_w, max_h = image_box(viewport)
    (qw, qh), (dw, dh) = query, db
    h = min(max_h, col_w * qh / max(qw, 1), col_w * dh / max(dw, 1),
            MAX_SCALE * max(qh, dh))
    h = max(int(h), 1)
    return ((max(1, min(col_w, int(h * qw / max(qh, 1)))), h),
            (max(1, min(col_w, int(h * dw / max(dh, 1)))), h))


def to_image_px(value: Mapping[str, Any], size: tuple[int, int]) -> tuple[float, float] | None:
    """A click reported by ``streamlit_image_coordinates`` (``x``, ``y`` in displayed CSS
    pixels from the image's top-left corner, ``width`` / ``height`` as displayed) in pixels
    of the original image of *size* ``(w, h)``; an integer position is its pixel's centre
    (``+ 0.5``). None for a report that is not a click on the image."""
    try:
        x, y = float(value["x"]), float(value["y"])
        w, h = float(value["width"]), float(value["height"])
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    if not (-1 <= x <= w + 1 and -1 <= y <= h + 1):
        return None
    if x.is_integer():
        x += 0.5
    if y.is_integer():
        y += 0.5
    x, y = min(max(x, 0.0), w), min(max(y, 0.0), h)
    return x * size[0] / w, y * size[1] / h


def timing(answer_ms: float | None, clock: Mapping[str, Any] | None) -> dict[str, Any]:
    """The browser-side times of an answer given at client time *answer_ms* (ms since the
    epoch; None if unknown) with the trial's *clock* report: ``browser_ms`` (answer −
    display, same clock), ``hidden_ms``, ``client_shown_ms``, ``client_answer_ms`` and
    ``flags`` (``no_client_clock`` when either time is missing or they are out of order)."""
    clock = clock or {}
    shown = _ms(clock.get("shown"))
    hidden = _ms(clock.get("hidden_ms")) or 0.0
    answer = _ms(answer_ms)
    out: dict[str, Any] = {"hidden_ms": hidden, "client_shown_ms": shown,
                           "client_answer_ms": answer, "flags": []}
    if shown is None or answer is None or answer < shown:
        out["browser_ms"] = None
        out["flags"] = ["no_client_clock"]
    else:
        out["browser_ms"] = answer - shown
    return out


def _ms(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    v = float(v)
    return v if math.isfinite(v) and 0 <= v <= 1e16 else None


# ---------------------------------------------------------------- cached data

@st.cache_resource(show_spinner=False, max_entries=8, ttl=600)
def _images_folder(dataset: str, root: str | None) -> Path | None:
    """The images folder of the study's dataset (:func:`bench.study.design.find_dataset`,
    once per dataset and root). ``None`` when the embedded demo is not built: a
    participant's page never builds it."""
    if root is None and not demo_is_built(default_demo_dir()):
        return None
    try:
        return find_dataset(dataset, root).images
    except BenchError:
        return None


def image_file(definition: StudyDefinition, name: str) -> Path | None:
    """The file of image *name* of the study's dataset, inside its images folder."""
    folder = _images_folder(definition.dataset, definition.root)
    path = thumbs.resolve_image(folder, name)
    if path is None or not roots.is_inside(path, folder):
        return None
    return path


@st.cache_resource(show_spinner=False, max_entries=64)
def _query_picture(path: str, stamp: tuple | None, box: tuple | None) -> bytes | None:
    img = thumbs.open_image(path)
    if img is None:
        return None
    return render.jpeg_bytes(render.fit(render.draw_box(img, box), SEND_PX), quality=90)


@st.cache_resource(show_spinner=False, max_entries=64)
def _db_picture(path: str, stamp: tuple | None, style: str, polys: tuple) -> Image.Image | None:
    img = thumbs.open_image(path)
    if img is None:
        return None
    shapes = [np.asarray(p, dtype=np.float64) for p in polys]
    if style == "ground_truth" and shapes:
        img = render.overlay(img, shapes, None)
    elif style == "prediction" and shapes:
        img = render.overlay(img, [], shapes[0])
    return render.fit(img, SEND_PX)


def pictures(definition: StudyDefinition, trial: StudyTrial):
    """``(query JPEG, query size, database picture, database size)`` of a trial, the
    sizes those of the original files; None when an image is missing."""
    qp, dp = image_file(definition, trial.query), image_file(definition, trial.image)
    qs, ds = thumbs.image_size(qp), thumbs.image_size(dp)
    if qs is None or ds is None:
        return None
    style, shapes = trial.annotation()
    polys = tuple(tuple(map(tuple, s.tolist())) for s in shapes)
    q = _query_picture(str(qp), thumbs.file_key(qp), trial.query_box)
    d = _db_picture(str(dp), thumbs.file_key(dp), style, polys)
    if q is None or d is None:
        return None
    return q, qs, d, ds


# ---------------------------------------------------------------- the screens

def _message(title: str, text: str = "") -> None:
    with st.container(key="pt_text"):
        st.title(title, anchor=False)
        if text:
            st.write(text)


def _invalid() -> None:
    _message("Study", "This study link is not valid. Please check the link you were given.")


def _store(path: Path) -> StudyStore:
    """This session's store of the study file (one per session: the reader is not shared
    between threads)."""
    key = f"_pt_store:{path}"
    s = st.session_state.get(key)
    if s is None:
        s = StudyStore.open(path)
        st.session_state[key] = s
    return s


def _clock_value(nonce: str) -> dict:
    v = st.session_state.get(f"ptc_{nonce}")
    try:
        c = v.get("clock") if v is not None else None
    except AttributeError:
        c = None
    return dict(c) if isinstance(c, Mapping) else {}


def _viewport() -> tuple[int, int] | None:
    return st.session_state.get(_VIEWPORT)


def _note_viewport(clock: Mapping) -> bool:
    """Keep the viewport the clock reported; True when it changed the layout's size."""
    vw, vh = _ms(clock.get("vw")), _ms(clock.get("vh"))
    if not vw or not vh:
        return False
    new = (int(vw), int(vh))
    old = st.session_state.get(_VIEWPORT)
    st.session_state[_VIEWPORT] = new
    return old is None or image_box(old) != image_box(new)


@st.fragment(run_every=HEARTBEAT_S)
def _live(path: str, pid: str, token: str, nonce: str, trial: bool) -> None:
    """The session's heartbeat and the clock (hidden; see the module docstring). Runs
    with the page and every :data:`HEARTBEAT_S` seconds on its own."""
    store = _store(Path(path))
    try:
        store.claim_session(pid, token)
    except SessionActive:
        st.rerun(scope="app")
    except (BenchError, OSError):
        pass  # the next heartbeat tries again
    _clock(key=f"ptc_{nonce}", data={"nonce": nonce, "trial": trial},
           on_clock_change=lambda: None, height=0)
    if trial and (st.session_state.get(_PENDING) == nonce or _new_click(nonce)):
        # an answer arrived in a run that Streamlit merged into this fragment's run (the
        # clock's report of a button press and the press itself): the page takes it
        st.rerun(scope="app")
    if _note_viewport(_clock_value(nonce)) and trial:
        st.rerun(scope="app")  # the viewport changed: size the images again


def _press_not_present(nonce: str) -> None:
    st.session_state[_PENDING] = nonce


def _click_mark(nonce: str, v: Mapping) -> tuple:
    return (nonce, v.get("unix_time"), v.get("x"), v.get("y"))


def _new_click(nonce: str) -> bool:
    """Whether the image of trial *nonce* holds a click not taken yet."""
    v = st.session_state.get(f"ptd_{nonce}")
    return isinstance(v, Mapping) and _click_mark(nonce, v) not in st.session_state.get(
        _DONE_CLICKS, set())


def _answer(nonce: str, size: tuple[int, int]) -> dict | None:
    """The answer given to the trial shown as *nonce* in the last run, if any: a click on
    the image (image pixels) or the "Not in this image" button, with its times."""
    clock = _clock_value(nonce)
    if st.session_state.get(_PENDING) == nonce:
        st.session_state.pop(_PENDING, None)
        return {"answer": "not_present", "x": None, "y": None,
                **timing(clock.get("pressed"), clock)}
    if not _new_click(nonce):
        return None
    v = st.session_state[f"ptd_{nonce}"]
    st.session_state.setdefault(_DONE_CLICKS, set()).add(_click_mark(nonce, v))
    xy = to_image_px(v, size)
    if xy is None:
        return None
    return {"answer": "click", "x": xy[0], "y": xy[1], **timing(v.get("unix_time"), clock)}


def _take_answer(definition: StudyDefinition, trial: StudyTrial) -> dict | None:
    """The answer given to *trial* (the trial this session showed last) since the last
    run, if any, with its times (see :func:`_answer`) and ``server_ms``."""
    size = thumbs.image_size(image_file(definition, trial.image))
    if size is None:
        return None
    got = _answer(trial.id, size)
    if got is None:
        return None
    st.session_state.pop(_NOTE, None)  # the note on the previous answer has been seen
    sent = st.session_state.get(_SENT, {}).get(trial.id)
    got["server_ms"] = None if sent is None else max(0.0, (time.time() - sent) * 1000)
    return got


def _shown(definition: StudyDefinition, practice: bool) -> StudyTrial | None:
    """The trial this session showed last (a practice trial or a recorded one)."""
    nonce = st.session_state.get(_SHOWN)
    if not nonce:
        return None
    try:
        if practice:
            return next(t for t in definition.practice if t.id == nonce)
        return definition.trial(nonce)
    except (StopIteration, KeyError):
        return None


def _trial_screen(store: StudyStore, pid: str, token: str, trial: StudyTrial, *,
                  heading: str, progress: float | None) -> None:
    """Show one trial (the images, the prompt, the "Not in this image" button, the
    hidden clock and heartbeat). The answer comes back in the next run."""
    nonce = trial.id
    pics = pictures(store.definition, trial)
    if pics is None:
        _message("Study", "This study cannot be shown right now. Please tell the person who "
                 "sent you the link.")
        return
    qjpg, qsize, dimg, dsize = pics
    st.session_state[_SHOWN] = nonce
    st.session_state.setdefault(_SENT, {}).setdefault(nonce, time.time())
    note = st.session_state.get(_NOTE)
    if note:  # feedback on the previous answer, in the heading's line (nothing overlaps)
        heading = f"{heading} · {note}"
    if progress is None:
        st.caption(heading)
    else:
        st.progress(progress, text=heading)
    with st.container(key="pt_live"):
        _live(str(store.path), pid, token, nonce, True)
    (qw, qh), (dw, dh) = display_sizes(qsize, dsize, _viewport())
    a, b = st.columns([4, 1], vertical_alignment="center")
    a.markdown("**Find the object in the box on the left in the photo on the right, and "
               "click on it.** If it is not there, press *Not in this image*.")
    b.button("Not in this image", key=f"ptn_{nonce}", on_click=_press_not_present,
             args=(nonce,), width="stretch")
    with st.container(key="pt_images"):
        left, right = st.columns(2, gap=None)
        with left, st.container(key=f"ptq_{nonce}"):
            st.image(qjpg, width=qw)
        with right, st.container(key=f"ptdc_{nonce}"):
            streamlit_image_coordinates(dimg, width=dw, height=dh, key=f"ptd_{nonce}",
                                        image_format="JPEG", jpeg_quality=90,
                                        cursor="crosshair")


def _go(screen: str) -> None:
    """Button callback: show *screen* next (callbacks run before the page, so a press is
    never lost to a rerun)."""
    st.session_state[_SCREEN] = screen
    st.session_state.pop(_NOTE, None)
    if screen == "practice":
        st.session_state[_PRACTICE_AT] = 0


def _consent(store: StudyStore) -> None:
    d = store.definition
    with st.container(key="pt_text"):
        st.title("Welcome", anchor=False)
        st.markdown(d.consent)
    a, b, _ = st.columns([1, 1, 3])
    a.button("I agree", type="primary", key="pt_agree", width="stretch", on_click=_go,
             args=("instructions",))
    b.button("I do not agree", key="pt_decline", width="stretch", on_click=_go,
             args=("declined",))


def _instructions(store: StudyStore) -> None:
    d = store.definition
    with st.container(key="pt_text"):
        st.title("How it works", anchor=False)
        st.markdown(d.instructions)
    n_prac = len(store.practice())
    label = f"Start the practice ({n_prac} pairs)" if n_prac else "Start"
    st.button(label, type="primary", key="pt_start", on_click=_go,
              args=("practice" if n_prac else "trials",))


def _practice(store: StudyStore, pid: str, token: str) -> None:
    """The practice trials: answered like the others, scored here for feedback, never
    recorded."""
    prac = store.practice()
    k = int(st.session_state.get(_PRACTICE_AT, 0))
    t = _shown(store.definition, practice=True)
    got = _take_answer(store.definition, t) if t is not None else None
    if got is not None:
        outcome = score(t.kind, got["answer"], got["x"], got["y"], t.region_arrays())
        st.session_state[_NOTE] = {
            "hit": "Right: you clicked on the object.",
            "miss": ("Not quite: the object was there." if got["answer"] != "click" else
                     "Not quite: that was not the object."),
            "false_alarm": "The object was not in that photo: the answer was Not in this "
                           "image.",
            "correct_rejection": "Right: the object was not in that photo.",
        }[outcome]
        if k < len(prac) and prac[k].id == t.id:
            k += 1
            st.session_state[_PRACTICE_AT] = k
    if k >= len(prac):
        st.session_state[_SCREEN] = "ready"
        st.session_state.pop(_SHOWN, None)
        st.rerun()
    _trial_screen(store, pid, token, prac[k], heading=f"Practice {k + 1} of {len(prac)} "
                  "(not recorded)", progress=None)


def _ready(store: StudyStore) -> None:
    n = store.definition.n_trials
    st.title("The study begins", anchor=False)
    if st.session_state.get(_NOTE):
        st.caption(f"Last practice pair: {st.session_state[_NOTE]}")
    st.markdown(f"The practice is over. Now come **{n} photo pairs**; your answers are "
                "recorded. Answer as quickly and as accurately as you can.")
    st.button("Begin", type="primary", key="pt_begin", on_click=_go, args=("trials",))


def _trials(store: StudyStore, pid: str, token: str) -> bool:
    """The recorded trials; True when all are answered. An answer to the trial this
    session showed last is sent to the store even when that trial is no longer the next
    one (answered meanwhile from a duplicated tab): the store refuses and records it."""
    t = _shown(store.definition, practice=False)
    got = _take_answer(store.definition, t) if t is not None else None
    if got is not None:
        try:
            store.record(pid, t.id, answer=got["answer"], x=got["x"], y=got["y"],
                         browser_ms=got["browser_ms"], server_ms=got["server_ms"],
                         hidden_ms=got["hidden_ms"], flags=got["flags"],
                         client_shown_ms=got["client_shown_ms"],
                         client_answer_ms=got["client_answer_ms"], session=token)
        except AlreadyAnswered:
            st.session_state[_NOTE] = "That photo pair had already been answered; moving on."
        except SessionActive:
            st.rerun()  # the next run says so
        except (BenchError, OSError, ValueError):
            st.session_state[_NOTE] = ("Your answer could not be saved. Please answer again; "
                                       "if this repeats, tell the person who sent you the "
                                       "link.")
    nxt = store.next_trial(pid)
    if nxt is None:
        return True
    k, t = nxt
    n = store.definition.n_trials
    _trial_screen(store, pid, token, t, heading=f"Photo pair {k} of {n}", progress=(k - 1) / n)
    return False


def _study_path() -> Path | None:
    """The study file named by the URL (or by the participant-only server) in the data
    folder; None when the name is not valid or disagrees with the server's study."""
    name = (state.get("study") or "").strip()
    fixed = os.environ.get(ENV_STUDY, "").strip() if only() else ""
    if fixed:
        if name and name != fixed:
            return None
        name = fixed
    try:
        return study_file(default_data_dir(), name)
    except ValueError:
        return None


def _ask_code() -> None:
    """A participant-only server opened without a participant id: ask for the code."""
    _message("Study", "Please enter the participant code you were given.")
    code = st.text_input("Participant code", key="pt_code", max_chars=64)
    if st.button("Continue", type="primary", key="pt_code_go") and code:
        try:
            state.put("p", check_participant(code))
        except ValueError:
            st.error("That is not a valid code.")
            return
        st.rerun()


def page() -> None:
    """The participant screens (see the module docstring)."""
    st.html(CSS)
    path = _study_path()
    raw_pid = (state.get("p") or "").strip()
    if path is None:
        _invalid()
        return
    if not raw_pid and only():
        _ask_code()
        return
    try:
        pid = check_participant(raw_pid)
        store = _store(path)
    except (ValueError, BenchError):
        _invalid()
        return
    token = state.get("sid") or ""
    if not _SID.match(token):
        token = new_session_token()
        state.put("sid", token)
    try:
        store.claim_session(pid, token)
        store.assign(pid)
    except SessionActive:
        _message("Study", "This link is already open in another window or tab. Please "
                 "continue there. If you closed it, wait half a minute and then reload "
                 "this page.")
        st.button("Try again", key="pt_retry")
        return
    except (BenchError, OSError, ValueError):
        _message("Study", "The study is not available right now. Please try again later.")
        return

    done, total = store.progress(pid)
    screen = st.session_state.get(_SCREEN)
    if screen is None:  # a new session: a participant who has answered resumes
        screen = "trials" if done else "consent"
        st.session_state[_SCREEN] = screen
    if done >= total:
        _finish(store, pid, token)
        return
    if screen == "declined":
        _message("Thank you", "You chose not to take part; nothing more is recorded. You "
                 "can close this page.")
        store.release_session(pid, token)
        return
    live_nonce = {"consent": "screen", "instructions": "screen", "ready": "screen"}
    if screen in live_nonce:
        with st.container(key="pt_live"):
            _live(str(store.path), pid, token, "screen", False)
    if screen == "consent":
        _consent(store)
    elif screen == "instructions":
        _instructions(store)
    elif screen == "practice":
        _practice(store, pid, token)
    elif screen == "ready":
        _ready(store)
    elif _trials(store, pid, token):
        _finish(store, pid, token)


def _finish(store: StudyStore, pid: str, token: str) -> None:
    _message("Thank you!", "You have answered every photo pair; your answers are saved. "
             "You can close this page now.")
    try:
        store.release_session(pid, token)
    except (BenchError, OSError):
        pass
