"""The participant screens' JSON API and static page, as Starlette routes
(docs/PROTOCOLS.md §7).

Everything sits under :data:`PATH` (``/take``): the page (``GET /take``: one HTML file,
``/take/app.js``, ``/take/app.css``), the pictures (``GET /take/img/STUDY/REF``, see
:mod:`bench.study.web.pictures`) and five JSON calls, each ``POST /take/api/NAME`` with a
JSON object of at most 8 KB:

``enter``    ``{study, q: {the link's query parameters}, p?, t?, tab}``: who the
             participant is. A known participant proves it with ``p`` (id) + ``t`` (the
             token the store issued to it); a new one comes with the platform's id in
             ``q`` (Prolific ``PROLIFIC_PID``, MTurk ``workerId``, ``param:NAME``; for a
             study without a platform ``p``, which makes it a lab id). The store issues the
             token (only its hash is stored). Nothing is assigned yet.
``consent``  ``{..., agree}``: agreeing assigns the Latin-square group (the store's claim);
             declining records nothing.
``trial``    ``{..., practice: k | null, vw, vh, dpr}``: the next trial (a practice trial
             k, not recorded, or the first unanswered one; the server notes its show
             time once) or the end screen.
``answer``   ``{..., k, practice, answer: "click" | "not_present", x, y, browser_ms,
             hidden_ms}``: records the answer (x, y in pixels of the original database
             image; a click outside the image is recorded with its position and the flag
             ``outside_image``, and scores as a click elsewhere: a miss on a positive) and
             returns the next trial in the same response.
``beat``     renews the single-tab lease while a trial waits for an answer.

Every call after ``enter`` carries ``p``, ``t`` and ``tab`` (a random id of the browser
tab, kept in its sessionStorage): a wrong token is refused, and a second tab of the same
participant is told the study is open elsewhere (the store's lease). Nothing of a
participant lives in this process: any server process can answer any call.

**Times.** The page measures ``browser_ms`` with ``performance.now()`` from the first
animation frame after both images are decoded and attached (``requestAnimationFrame``)
to the press, minus the time the tab was hidden meanwhile (``hidden_ms``, reported
beside it). The server takes its own show time (``store.shown``, the first time it hands
out the trial) and answer time; ``server_ms`` is the difference. A ``browser_ms +
hidden_ms`` above ``server_ms + SLACK_MS`` cannot be true: the answer is recorded with the
flag ``time_mismatch`` and its browser time is left out of every time statistic.

**What a participant can reach.** Only these routes, only for the study of the server
(a participant-only server) or a study named in the link; no page names, no file
names, no method or dataset names, no metrics. Rate limits per address (new
participants, answers) and per participant (answers) answer ``429`` with a message the
page shows (:mod:`bench.study.web.limits`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bench.errors import BenchError
from bench.study import platforms
from bench.study.records import MAX_COORD, score
from bench.study.web import backend, pictures
from bench.study.web.limits import Limits

__all__ = ["DEFAULT_DEBRIEF", "PATH", "SLACK_MS", "routes"]

PATH = "/take"
SLACK_MS = 1000.0  # browser_ms + hidden_ms may exceed the server's elapsed time by this
MAX_BODY = 8192
STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_DEBRIEF = (
    "Thank you for taking part. This study asked whether a region drawn on a photo helps "
    "people find an object in it: some photos showed a region, some did not, and on some "
    "trials the object was not in the photo at all (a region was sometimes drawn there "
    "too). We compare how often and how quickly people found the object with and without "
    "the regions.")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_TAB = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_PID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REF = re.compile(r"^[0-9a-f]{24}$")

INVALID = "This study link is not valid. Please check the link you were given."
UNAVAILABLE = "The study is not available right now. Please try again in a minute."
ELSEWHERE = ("This study is already open in another window or tab. Please continue "
             "there. If you closed it, wait half a minute and then reload this page.")
NO_PICTURE = ("This study cannot be shown right now. Please tell the person who sent you "
              "the link.")
USED = ("This link has been used already. Please continue in the window where you "
        "started, or ask the person who sent you the link for a new one.")
SLOW_NEW = ("Too many people started the study from your network in a short time. "
            "Please wait a minute and reload this page.")
SLOW_ANSWERS = "Too many answers in a short time. Please wait a few seconds and answer again."
SLOW = "Too many requests in a short time. Please wait a few seconds and try again."


class Refused(Exception):
    """A call refused with an HTTP status and a message for the participant."""

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def _now() -> float:
    return time.time()


# ---------------------------------------------------------------- helpers

def _address(request: Request) -> str:
    if os.environ.get("BENCH_STUDY_TRUST_PROXY", "").strip() == "1":
        fwd = request.headers.get("x-forwarded-for", "")
        if fwd:
            return fwd.split(",")[-1].strip()[:64]
    return request.client.host if request.client else "?"


async def _body(request: Request) -> dict:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise Refused(413, "The request is too large.")
    try:
        d = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise Refused(400, "The request is not valid.") from None
    if not isinstance(d, dict):
        raise Refused(400, "The request is not valid.")
    return d


def _str(d: dict, key: str, pattern: re.Pattern | None = None) -> str | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or len(v) > 200 or (pattern and not pattern.match(v)):
        raise Refused(400, INVALID)
    return v


def _num(d: dict, key: str, lo: float, hi: float) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Refused(400, "The request is not valid.")
    v = float(v)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise Refused(400, "The request is not valid.")
    return v


def _json(data: dict, status: int = 200, retry_after: float | None = None) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(data, status_code=status, headers=headers)


class Api:
    """The routes' state: the fixed study of a participant-only server (or None: any
    study named in the link) and the rate limits of this process."""

    def __init__(self, study: str | None = None):
        self.study = study
        self.limits = Limits()

    # ---- the study and the participant
    def _store(self, body: dict):
        name = _str(body, "study")
        if self.study is not None:
            if name not in (None, self.study):
                raise Refused(404, INVALID)
            name = self.study
        if name is None:
            raise Refused(404, INVALID)
        try:
            return backend.open_study(name)
        except ValueError:
            raise Refused(404, INVALID) from None
        except BenchError as exc:
            if "missing" in str(exc).lower() or "no such" in str(exc).lower():
                raise Refused(404, INVALID) from None
            raise Refused(503, UNAVAILABLE) from None

    def _who(self, store, body: dict) -> tuple[str, str, str]:
        pid, token, tab = _str(body, "p", _PID), _str(body, "t", _TOKEN), _str(body, "tab", _TAB)
        if pid is None or token is None or tab is None or not store.check_token(pid, token):
            raise Refused(403, INVALID)
        return pid, token, tab

    def _claim(self, store, pid: str, tab: str) -> None:
        try:
            store.claim_session(pid, tab)
        except BenchError as exc:
            if type(exc).__name__ == "SessionActive":
                raise Refused(409, ELSEWHERE) from None
            raise

    # ---- payloads
    def _texts(self, d) -> dict:
        return {"consent": d.consent, "instructions": d.instructions,
                "n_trials": d.n_trials, "n_practice": len(d.practice)}

    def _end(self, store, pid: str) -> dict:
        d = store.definition
        c = store.completion(pid) or store.finish(pid)
        return {"kind": "end", "participant": pid, "code": getattr(c, "code", None),
                "redirect": getattr(c, "url", None),
                "debrief": (getattr(d, "debrief", None) or DEFAULT_DEBRIEF).replace(
                    "{code}", pid),
                "contact": getattr(d, "contact", None) or ""}

    def _trial_payload(self, store, trial, *, k: int, n: int, practice: bool,
                       body: dict) -> dict:
        d = store.definition
        size = pictures.size_class(body.get("vw"), body.get("vh"), body.get("dpr"))
        qsize = pictures.image_size(d, trial.query)
        dsize = pictures.image_size(d, trial.image)
        if qsize is None or dsize is None:
            raise Refused(503, NO_PICTURE)
        qref, dref = pictures.trial_pictures(d, trial, size)
        base = f"{PATH}/img/{d.study}/"
        return {"kind": "trial", "practice": practice, "k": k, "n": n,
                "query": {"src": base + qref, "w": qsize[0], "h": qsize[1]},
                "image": {"src": base + dref, "w": dsize[0], "h": dsize[1]}}

    def _stage(self, store, pid: str) -> str:
        comp = store.completion(pid)
        part = store.participant(pid)
        if getattr(part, "status", None) == "returned":
            return "returned"
        if comp is not None:
            return "done"
        if part is None or getattr(part, "row", None) is None:
            return "consent"
        done, total = store.progress(pid)
        if done >= total:
            return "done"
        return "trials" if done else "instructions"

    # ---- the calls (run in the thread pool)
    def enter(self, body: dict, address: str) -> dict:
        store = self._store(body)
        d = store.definition
        tab = _str(body, "tab", _TAB)
        if tab is None:
            raise Refused(400, INVALID)
        pid, token = _str(body, "p", _PID), _str(body, "t", _TOKEN)
        if pid is not None and token is not None:
            if not store.check_token(pid, token):
                raise Refused(403, INVALID)
        else:
            q = body.get("q") or {}
            if not isinstance(q, dict) or len(q) > 30:
                raise Refused(400, INVALID)
            query = {str(k)[:64]: str(v)[:200] for k, v in q.items()
                     if isinstance(v, str | int)}
            platform = platforms.parse_platform(getattr(d, "platform", None) or "none")
            try:
                pid, others = platforms.participant_from_query(platform, query)
            except platforms.PlatformPreview:
                return {"stage": "preview", "texts": self._texts(d)}
            except platforms.PlatformError as exc:
                raise Refused(403, str(exc)[:1].upper() + str(exc)[1:] + ".") from None
            if platform.kind == "none" and query.get("t"):
                if not store.check_token(pid, query["t"]):
                    raise Refused(403, INVALID)
                token = query["t"]
            else:
                if store.participant(pid) is None:
                    wait = self.limits.new.take(address)
                    if wait:
                        raise Refused(429, SLOW_NEW, wait)
                try:
                    _, token = store.enter(pid, platform_ids=others)
                except ValueError:
                    raise Refused(403, INVALID) from None
                if token is None:  # known: a platform id comes back (a new browser)
                    if platform.kind == "none":
                        raise Refused(403, USED)
                    self._claim(store, pid, tab)  # refused while its tab is alive
                    token = store.issue_token(pid)
        self._claim(store, pid, tab)
        stage = self._stage(store, pid)
        out = {"p": pid, "t": token, "stage": stage, "texts": self._texts(d)}
        if stage == "done":
            out["end"] = self._end(store, pid)
        return out

    def consent(self, body: dict, address: str) -> dict:
        store = self._store(body)
        pid, _, tab = self._who(store, body)
        self._claim(store, pid, tab)
        if body.get("agree") is True:
            try:
                store.assign(pid)
            except BenchError as exc:
                if type(exc).__name__ == "ParticipantReturned":
                    return {"stage": "returned"}
                raise
            return {"stage": self._stage(store, pid)}
        store.release_session(pid, tab)
        return {"stage": "declined"}

    def trial(self, body: dict, address: str) -> dict:
        store = self._store(body)
        pid, _, tab = self._who(store, body)
        self._claim(store, pid, tab)
        practice = body.get("practice")
        if practice is not None and (isinstance(practice, bool) or not isinstance(practice, int)
                                     or practice < 0):
            raise Refused(400, "The request is not valid.")
        return self._next(store, pid, body, practice)

    def _next(self, store, pid: str, body: dict, practice: int | None) -> dict:
        """Practice trial *practice* (0-based; past the last: ``ready``), or (None) the
        participant's first unanswered trial, its show time noted, or the end."""
        d = store.definition
        if practice is not None:
            if practice < len(d.practice):
                return self._trial_payload(store, d.practice[practice], k=practice + 1,
                                           n=len(d.practice), practice=True, body=body)
            return {"kind": "ready", "n": d.n_trials}
        return self._first_open(store, pid, body, self._sequence(store, pid))

    def _sequence(self, store, pid: str) -> list:
        """The participant's trials in order (403 before consent)."""
        try:
            return store.trials(pid)
        except BenchError as exc:
            if "unknown participant" in str(exc) or "no assignment" in str(exc):
                raise Refused(403, "Please agree to take part first (reload this page).") \
                    from None
            raise

    def _first_open(self, store, pid: str, body: dict, seq: list) -> dict:
        """The first unanswered trial of *seq* (its show time noted), or the end."""
        done = store.answered(pid)
        for k, t in enumerate(seq, start=1):
            if t.id not in done:
                store.shown(pid, t.id)
                return self._trial_payload(store, t, k=k, n=len(seq), practice=False,
                                           body=body)
        return self._end(store, pid)

    def answer(self, body: dict, address: str) -> dict:
        store = self._store(body)
        pid, _, tab = self._who(store, body)
        now = _now()
        answer = body.get("answer")
        if answer not in ("click", "not_present"):
            raise Refused(400, "The request is not valid.")
        x = _num(body, "x", -MAX_COORD, MAX_COORD)
        y = _num(body, "y", -MAX_COORD, MAX_COORD)
        if answer == "click" and (x is None or y is None):
            raise Refused(400, "The request is not valid.")
        if answer != "click":
            x = y = None
        browser_ms = _num(body, "browser_ms", 0, 7 * 24 * 3600 * 1000.0)
        hidden_ms = _num(body, "hidden_ms", 0, 7 * 24 * 3600 * 1000.0) or 0.0
        k = body.get("k")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise Refused(400, "The request is not valid.")
        d = store.definition
        if body.get("practice") is True:  # scored for feedback, not recorded
            if k > len(d.practice):
                raise Refused(400, "The request is not valid.")
            t = d.practice[k - 1]
            outcome = score(t.kind, answer, x, y, t.region_arrays())
            return {"note": _FEEDBACK[(outcome, answer)],
                    "next": self._next(store, pid, body, practice=k)}
        wait = self.limits.answers_address.take(address) or \
            self.limits.answers_participant.take(pid)
        if wait:
            raise Refused(429, SLOW_ANSWERS, wait)
        seq = self._sequence(store, pid)
        if k > len(seq):
            raise Refused(400, "The request is not valid.")
        t = seq[k - 1]
        flags = []
        if x is not None:
            size = pictures.image_size(d, t.image)
            if size is not None and not (0 <= x <= size[0] and 0 <= y <= size[1]):
                flags.append("outside_image")
        if browser_ms is None:
            flags.append("no_client_clock")
        done = store.answered(pid)
        nxt = next(((j, s) for j, s in enumerate(seq, start=1)
                    if s.id not in done and s.id != t.id), None)
        note = None
        try:
            store.record(pid, t.id, answer=answer, x=x, y=y, browser_ms=browser_ms,
                         hidden_ms=hidden_ms, flags=flags, session=tab, now=now,
                         show=None if nxt is None else nxt[1].id)
        except BenchError as exc:
            name = type(exc).__name__
            if name == "AlreadyAnswered":
                note = "That photo pair had already been answered; moving on."
            elif name == "SessionActive":
                raise Refused(409, ELSEWHERE) from None
            else:
                raise
        if note is not None:  # another tab answered meanwhile: where it stands now
            following = self._first_open(store, pid, body, seq)
        elif nxt is None:
            following = self._end(store, pid)
        else:  # its show time was noted with the answer
            following = self._trial_payload(store, nxt[1], k=nxt[0], n=len(seq),
                                            practice=False, body=body)
        out = {"stored": note is None, "next": following}
        if note:
            out["note"] = note
        return out

    def beat(self, body: dict, address: str) -> dict:
        store = self._store(body)
        pid, _, tab = self._who(store, body)
        self._claim(store, pid, tab)
        return {"ok": True}

    # ---- HTTP
    def endpoint(self, name: str):
        fn = getattr(self, name)

        async def call(request: Request) -> Response:
            address = _address(request)
            wait = self.limits.requests_address.take(address)
            if wait:
                return _json({"error": SLOW}, 429, wait)
            try:
                body = await _body(request)
                return _json(await run_in_threadpool(fn, body, address))
            except Refused as exc:
                return _json({"error": exc.message}, exc.status, exc.retry_after)
            except (BenchError, OSError, ValueError):
                return _json({"error": UNAVAILABLE}, 503)

        call.__name__ = f"api_{name}"
        return call

    async def image(self, request: Request) -> Response:
        study, ref = request.path_params["study"], request.path_params["ref"]
        if not _REF.match(ref) or (self.study is not None and study != self.study):
            return Response("Not found", 404, media_type="text/plain")
        try:
            store = backend.cached(study) or await run_in_threadpool(backend.open_study, study)
            pic = pictures.cached(ref) if ref in pictures.references(store.definition) \
                else None
            if pic is None:
                pic = await run_in_threadpool(pictures.picture, store.definition, ref)
        except (BenchError, OSError, ValueError):
            return Response("Not found", 404, media_type="text/plain")
        if pic is None:
            return Response("Not found", 404, media_type="text/plain")
        headers = {"ETag": pic.etag, "Cache-Control": "public, max-age=31536000, immutable"}
        if pic.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(pic.jpeg, media_type="image/jpeg", headers=headers)


_FEEDBACK = {
    ("hit", "click"): "Right: you clicked on the object.",
    ("miss", "click"): "Not quite: that was not the object.",
    ("miss", "not_present"): "Not quite: the object was there.",
    ("false_alarm", "click"): "The object was not in that photo: the answer was "
                              "\u201cNot in this image\u201d.",
    ("correct_rejection", "not_present"): "Right: the object was not in that photo.",
}

# ---------------------------------------------------------------- the static page

_SECURITY = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's URL holds the participant's token
    "X-Frame-Options": "DENY",
}
_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}
_FILES: dict[str, tuple[bytes, str]] = {}


def _static(name: str) -> tuple[bytes, str]:
    if name not in _FILES:
        data = (STATIC / name).read_bytes()
        _FILES[name] = (data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
    return _FILES[name]


def _static_endpoint(name: str):
    async def serve(request: Request) -> Response:
        data, etag = _static(name)
        headers = {"ETag": etag, "Cache-Control": "no-cache", **_SECURITY}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=_TYPES[name], headers=headers)

    serve.__name__ = f"static_{name.replace('.', '_')}"
    return serve


def routes(study: str | None = None, *, root: bool = False) -> list[BaseRoute]:
    """The participant routes under :data:`PATH`: for the one study *study* (a
    participant-only server) or for any study named in the link (None). *root* also
    serves the page at ``/`` (a participant-only server)."""
    api = Api(study)
    out: list[BaseRoute] = [
        Route(PATH, _static_endpoint("index.html"), methods=["GET", "HEAD"]),
        Route(f"{PATH}/app.js", _static_endpoint("app.js"), methods=["GET", "HEAD"]),
        Route(f"{PATH}/app.css", _static_endpoint("app.css"), methods=["GET", "HEAD"]),
        Route(f"{PATH}/img/{{study}}/{{ref}}", api.image, methods=["GET", "HEAD"]),
    ]
    out.append(Route(f"{PATH}/favicon.ico", lambda request: Response(status_code=204),
                     methods=["GET", "HEAD"]))
    for name in ("enter", "consent", "trial", "answer", "beat"):
        out.append(Route(f"{PATH}/api/{name}", api.endpoint(name), methods=["POST"]))
    if root:
        out.append(Route("/", _static_endpoint("index.html"), methods=["GET", "HEAD"]))
    return out
