"""The view's state: one value per URL key, kept in ``st.session_state`` and written to
the URL at the end of every run, so a link reopens the same view.

Every key the app puts in the URL is declared once, in :data:`DEFAULTS` (with its type
in :data:`INTS` / :data:`FLOATS` or its allowed values in :data:`CHOICES`). A page reads
a value with :func:`get` and sets one with :func:`put`; the bound widgets of
:mod:`bench.app.widgets` do both. On a session's first run :func:`init_state` reads the URL
(bad values fall back to the defaults); :func:`sync_url` (called by the router at the
end of each run) writes back every value that differs from its default.

Why not Streamlit's ``bind="query-params"``: a bound selectbox or radio writes its
*formatted* label to the URL (``proto=Official``, ``q=3 · all_souls_000013 (AP 54%)``),
which would break every existing link (``proto=strict``, ``q=3``); a bound parameter
leaves the URL when its widget is not on the page, but this app's view (query, pair,
view mode) must survive a page switch; and ``st.query_params.from_dict`` /
``st.switch_page(query_params=...)`` refuse bound keys. One mechanism for all keys is
simpler than two.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from bench.protocol import METRICS, PIXEL_SETUPS, PROTOCOLS, SETUPS

SOURCES = {"demo": "Demo (synthetic)", "folder": "Folder in released layout",
           "gpr": "GPR1200 folder"}
PAIR_MODES = ("overlay", "errors", "side")

#: URL key -> default value. Everything here is mirrored into the URL when not default.
DEFAULTS: dict[str, Any] = {
    # data source (sidebar)
    "src": "demo", "root": "", "images": "",
    "gimages": "", "gmode": "embeddings", "gfile": "", "metric": "cosine", "order": "",
    "ds": "", "m": "", "proto": "official", "setup": "medium",
    # views
    "q": 0, "i": -1, "k": 20, "mode": "overlay", "opacity": 0.45,
    "gq": 0, "gk": 10, "qv": "ap",
}
INTS = {"q", "i", "k", "gq", "gk"}
FLOATS = {"opacity"}  # fractions in [0, 1]
CHOICES: dict[str, tuple[str, ...]] = {
    "src": tuple(SOURCES), "gmode": ("embeddings", "indices"), "metric": METRICS,
    "proto": PROTOCOLS, "setup": SETUPS, "mode": PAIR_MODES,
    "qv": ("ap", "miou_bbox", "miou_seg"),
}
# Errors page (pages/errors.py): taxonomy setup, k, threshold t, IoU kind; the pair
# table's filters (failure types as a comma list, "" = all; label; IoU range [elo, ehi)
# on the efcol IoU; rank at most ermax, 0 = any), its order and the gallery's page.
# Query page tiles: regions shown, pass / fail threshold, frame colours, tiles per row.
DEFAULTS |= {"eset": "medium", "ek": 100, "et": 0.5, "ekind": "bbox", "efail": "",
             "elab": "all", "efcol": "bbox", "elo": 0.0, "ehi": 1.0, "ermax": 0,
             "esort": "worst", "epage": 0,
             "qmask": "both", "qt": 0.5, "qframe": "label", "qcols": 6}
INTS |= {"ek", "ermax", "epage", "qcols"}
FLOATS |= {"et", "elo", "ehi", "qt"}
CHOICES |= {"eset": PIXEL_SETUPS, "ekind": ("bbox", "seg"),
            "elab": ("all", "easy", "hard"), "efcol": ("bbox", "seg"),
            "esort": ("worst", "best", "rank", "query"),
            "qmask": ("none", "pred", "both", "errors"), "qframe": ("label", "pass")}
# Compare page (pages/compare.py): a second method B (also the Query page's second
# ranking and the Pair page's second outline; "" = none), the methods compared (comma
# list, "" = the sidebar's method and m2 or the next one) and the metric compared.
DEFAULTS |= {"m2": "", "cmp": "", "cmetric": ""}
# User study (pages/study.py): the study's name (participants use bench.study.web, not
# Streamlit). Checked where they are used
# (bench.study.store.study_file / check_participant); never a path.
DEFAULTS |= {"study": "", "p": "", "sid": ""}
#: Keys that hold a file or folder path: checked against the data roots (bench.app.roots).
PATH_KEYS = ("root", "images", "gimages", "gfile", "order")

_INIT = "_state_init"


def _parse(key: str, raw: str) -> Any:
    if key in INTS:
        return int(raw)
    if key in FLOATS:
        v = float(raw)
        if not math.isfinite(v):
            raise ValueError(raw)
        return min(max(v, 0.0), 1.0)
    if key in CHOICES and raw not in CHOICES[key]:
        raise ValueError(raw)
    return raw


def init_state() -> None:
    """On a session's first run, read the view from the URL (a bad value falls back to its
    default); later runs keep what the widgets set."""
    if st.session_state.get(_INIT):
        return
    qp = st.query_params
    for key, default in DEFAULTS.items():
        value = default
        if key in qp:
            try:
                value = _parse(key, qp[key])
            except ValueError:
                value = default
        st.session_state[f"s_{key}"] = value
    st.session_state[_INIT] = True


def get(key: str) -> Any:
    """The current value of URL key *key*."""
    return st.session_state.get(f"s_{key}", DEFAULTS[key])


def put(key: str, value: Any) -> None:
    """Set URL key *key* (written to the URL at the end of the run)."""
    if key not in DEFAULTS:
        raise KeyError(f"{key!r} is not a declared URL key (bench.app.state.DEFAULTS)")
    st.session_state[f"s_{key}"] = value


def set_query(q: int) -> None:
    """Select query q; the pair of another query is forgotten."""
    if q != get("q"):
        put("i", -1)
    put("q", q)


def update(**values: Any) -> None:
    """Set several keys at once (``q`` through :func:`set_query`)."""
    if "q" in values:
        set_query(values.pop("q"))
    for k, v in values.items():
        put(k, v)


def url_params() -> dict[str, str]:
    """The state that differs from the defaults, as URL query parameters."""
    out = {}
    for key, default in DEFAULTS.items():
        v = get(key)
        if v != default and v is not None:
            out[key] = f"{v:.2f}" if key in FLOATS else str(v)
    return out


def sync_url() -> None:
    """Write the state into ``st.query_params`` (only when it changed)."""
    want = url_params()
    if st.query_params.to_dict() != want:
        st.query_params.from_dict(want)
