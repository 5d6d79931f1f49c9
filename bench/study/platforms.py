"""Recruiting platforms of a user study: where participant ids come from, the link a
platform sends participants to, and how they are told they are done (docs/PROTOCOLS.md
§7.9).

A study names its platform (``StudyDefinition.platform``):

``none``
    Links made by the experimenter (``/take?study=NAME``, the participant's id or token
    added by the server that hands them out). No platform id.
``prolific``
    Prolific sends ``PROLIFIC_PID``, ``STUDY_ID`` and ``SESSION_ID``; the link to paste
    into Prolific's "study URL" is ``.../take?study=NAME&PROLIFIC_PID={{%PROLIFIC_PID%}}
    &STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}`` (Prolific replaces the
    ``{{%...%}}`` fields). The participant id is ``PROLIFIC_PID`` (24 hexadecimal
    digits); the other two are stored beside it. The end screen shows the study's
    completion code and redirects to ``https://app.prolific.com/submissions/complete?cc=
    CODE`` unless another completion URL is set. Without ``--completion-code`` a code
    is made when the study is created (Prolific needs one code per study: paste it into
    Prolific).
``mturk``
    The link is the ExternalQuestion URL ``.../take?study=NAME``; MTurk appends
    ``workerId``, ``assignmentId``, ``hitId`` (and ``turkSubmitTo``). The participant id
    is ``workerId``; ``assignmentId`` and ``hitId`` are stored. A preview
    (``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE``) must not start the study
    (:class:`PlatformPreview`). Without a study code every participant gets a code of
    their own (to paste into the HIT), so a code can be checked against the export.
``param:NAME``
    Any other platform: the participant id comes from the query parameter ``NAME``
    (e.g. ``param:SONA_ID``); link ``.../take?study=NAME&NAME={PARTICIPANT_ID}``.

A completion URL may contain ``{code}``, replaced by the (URL-quoted) completion code.
Pure Python; nothing here opens a file or the database.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

__all__ = ["KINDS", "PROLIFIC_COMPLETE", "Platform", "PlatformError", "PlatformPreview",
           "check_completion_code", "check_completion_url", "completion_url",
           "new_completion_code", "parse_platform", "participant_from_query",
           "participant_link"]

KINDS = ("none", "prolific", "mturk", "param")
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete?cc={code}"
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
LINK_PATH = "/take"  # the participant page (bench.study.web); /study is the experimenter's
# query parameters of the study page itself: a param:NAME platform cannot take them
RESERVED = frozenset({"study", "p", "sid", "t", "token", "page"})

_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_PID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PROLIFIC_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_MTURK_ID = re.compile(r"^[A-Z0-9]{8,64}$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen


class PlatformError(ValueError):
    """The platform's parameters in a participant's link are missing or malformed; the
    message can be shown to the participant."""


class PlatformPreview(PlatformError):
    """An MTurk preview (the worker has not accepted the HIT): show the study's
    description, do not start it."""


@dataclass(frozen=True)
class Platform:
    """A study's platform: ``kind`` (one of :data:`KINDS`), the query parameter holding
    the participant id (``id_param``; None for ``none``) and the other ids stored beside
    it (``other_params``)."""

    kind: str
    id_param: str | None = None
    other_params: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """As written in the definition and on the command line."""
        return f"param:{self.id_param}" if self.kind == "param" else self.kind


_PLATFORMS = {
    "none": Platform("none"),
    "prolific": Platform("prolific", "PROLIFIC_PID", ("STUDY_ID", "SESSION_ID")),
    "mturk": Platform("mturk", "workerId", ("assignmentId", "hitId")),
}


def parse_platform(text: str | Platform | None) -> Platform:
    """``none``, ``prolific``, ``mturk`` or ``param:NAME`` (NAME: a query-parameter name,
    letters, digits and ``_``, not one the study page uses itself). ValueError otherwise."""
    if isinstance(text, Platform):
        return text
    t = "none" if text is None else str(text).strip()
    if t in _PLATFORMS:
        return _PLATFORMS[t]
    if t.startswith("param:"):
        name = t[len("param:"):]
        if not _PARAM.match(name):
            raise ValueError(f"platform {t!r}: param:NAME takes a query-parameter name "
                             "(letters, digits, '_', at most 32)")
        if name in RESERVED:
            raise ValueError(f"platform {t!r}: the study page uses the parameter {name!r} "
                             "itself; choose another name")
        return Platform("param", name)
    raise ValueError(f"platform {t!r}: use none, prolific, mturk or param:NAME")


def check_completion_code(code: str | None) -> str | None:
    """A completion code as given by the experimenter: 1-64 letters, digits, ``_``,
    ``-`` (it is shown to participants and put in a URL). ValueError otherwise."""
    if code is None:
        return None
    c = str(code).strip()
    if not _CODE.match(c):
        raise ValueError(f"completion code {code!r}: use 1-64 letters, digits, '_' or '-'")
    return c


def check_completion_url(url: str | None) -> str | None:
    """An absolute ``http(s)`` URL (``{code}`` is replaced by the completion code), or
    None. ValueError otherwise."""
    if url is None:
        return None
    u = str(url).strip()
    parts = urlsplit(u.replace("{code}", "CODE"))
    if parts.scheme not in ("http", "https") or not parts.netloc or len(u) > 2000 \
            or any(ch.isspace() for ch in u):
        raise ValueError(f"completion URL {url!r}: give an absolute http:// or https:// "
                         "address without spaces")
    return u


def new_completion_code(n: int = 8) -> str:
    """A random code of *n* characters from an alphabet without look-alikes."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(n))


def participant_link(study: str, platform: str | Platform | None = "none", *,
                     base: str = "", path: str = LINK_PATH) -> str:
    """The link a platform sends participants to (see the module docstring), prefixed
    with *base* (``scheme://host:port``; "" gives the path and query only)."""
    p = parse_platform(platform)
    head = f"{base}{path}?" + urlencode({"study": study})
    if p.kind == "prolific":
        return head + "".join(f"&{k}={{{{%{k}%}}}}" for k in (p.id_param, *p.other_params))
    if p.kind == "param":
        return head + f"&{p.id_param}={{PARTICIPANT_ID}}"
    return head  # none: the server adds the participant; mturk: MTurk appends its ids


def _one(query: Mapping, key: str) -> str | None:
    v = query.get(key)
    if isinstance(v, list | tuple):
        v = v[0] if len(v) == 1 else None
    return None if v is None else str(v).strip()


def participant_from_query(platform: str | Platform | None, query: Mapping
                           ) -> tuple[str, dict[str, str]]:
    """The participant id and the platform's other ids from a link's query parameters
    (*query*: name -> value, or name -> [value]). :class:`PlatformError` when the id is
    missing or malformed (e.g. a Prolific placeholder left unreplaced: the link was
    opened outside Prolific), :class:`PlatformPreview` for an MTurk preview. For
    ``none`` the id is the ``p`` parameter (a lab id)."""
    p = parse_platform(platform)
    key = p.id_param or "p"
    pid = _one(query, key)
    if not pid:
        raise PlatformError(f"this link lacks the participant id ({key}); please open the "
                            "study from the page that sent you here")
    if p.kind == "mturk":
        if _one(query, "assignmentId") == MTURK_PREVIEW:
            raise PlatformPreview("accept the HIT to start the study")
        ok = _MTURK_ID.match(pid)
    elif p.kind == "prolific":
        ok = _PROLIFIC_ID.match(pid)
    else:
        ok = _PID.match(pid)
    if not ok:
        raise PlatformError(f"the participant id in this link ({key}) is not valid; please "
                            "open the study from the page that sent you here")
    others: dict[str, str] = {}
    for k in p.other_params:
        v = _one(query, k)
        if v is None or v == "":
            continue
        if not _PID.match(v):
            raise PlatformError(f"the parameter {k} in this link is not valid; please open "
                                "the study from the page that sent you here")
        others[k] = v
    return pid, others


def completion_url(platform: str | Platform | None, url: str | None, code: str) -> str | None:
    """Where the end screen sends the participant: *url* (``{code}`` replaced), else
    Prolific's completion address for a Prolific study, else None (the code is shown)."""
    p = parse_platform(platform)
    template = url or (PROLIFIC_COMPLETE if p.kind == "prolific" else None)
    if template is None:
        return None
    return template.replace("{code}", quote(code, safe=""))
