"""Widgets bound to a URL key of :mod:`bench.app.state`, and small display pieces.

``select("Query", options, "q")`` shows a selectbox whose value is state key ``q``: it
starts from the state (so from the URL on a first run), writes back on change, and
survives page switches (the widget's own key ``w_<key>`` is re-seeded every run; give
``wkey=`` when one page shows two widgets for the same state key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from bench import render
from bench.app import routing, state
from bench.app.format import html_text
from bench.protocol import LABELS


def _bind(key: str, wkey: str | None) -> tuple[str, Callable[[], None]]:
    wkey = wkey or f"w_{key}"

    def changed() -> None:
        value = st.session_state[wkey]
        if key == "q":
            state.set_query(value)  # a pair belongs to its query
        else:
            state.put(key, value)

    st.session_state[wkey] = state.get(key)
    return wkey, changed


def select(label: str, options: Sequence[Any], key: str, *, wkey: str | None = None,
           where: Any = st, format_func: Callable[[Any], str] = str, **kw: Any) -> Any:
    """A selectbox bound to state *key*; a state value not among *options* becomes the
    first option. ``None`` when there are no options."""
    options = list(options)
    if not options:
        return None
    if state.get(key) not in options:
        state.put(key, options[0])
    wkey, changed = _bind(key, wkey)
    return where.selectbox(label, options, key=wkey, on_change=changed,
                           format_func=format_func, **kw)


def radio(label: str, options: Sequence[Any], key: str, *, wkey: str | None = None,
          where: Any = st, format_func: Callable[[Any], str] = str, **kw: Any) -> Any:
    """A radio bound to state *key* (a value not among *options* becomes the first)."""
    options = list(options)
    if state.get(key) not in options:
        state.put(key, options[0])
    wkey, changed = _bind(key, wkey)
    return where.radio(label, options, key=wkey, on_change=changed, format_func=format_func,
                       **kw)


def slider(label: str, lo: Any, hi: Any, key: str, *, wkey: str | None = None,
           where: Any = st, **kw: Any) -> Any:
    """A slider bound to state *key*, the value clamped to ``[lo, hi]``."""
    try:
        v = min(max(type(lo)(state.get(key)), lo), hi)
    except (TypeError, ValueError):
        v = state.DEFAULTS[key]
    state.put(key, v)
    wkey, changed = _bind(key, wkey)
    return where.slider(label, lo, hi, key=wkey, on_change=changed, **kw)


def text(label: str, key: str, *, wkey: str | None = None, where: Any = st, **kw: Any) -> str:
    """A text input bound to state *key*."""
    wkey, changed = _bind(key, wkey)
    return where.text_input(label, key=wkey, on_change=changed, **kw)


def nav_button(label: str, page: routing.PageSpec, *, key: str, where: Any = st,
               **values: Any) -> None:
    """A button that opens *page* with URL state *values* (e.g. ``q=3`` or ``i=17``)."""
    where.button(label, key=key, on_click=routing.request, args=(page,), kwargs=values,
                 icon=":material/compare:" if page == routing.PAIR
                 else ":material/open_in_new:", width="stretch")


def legend(items: Sequence[tuple[str, render.RGB]], where: Any = st) -> None:
    """A row of colour chips with their names (a name is text: HTML-escaped, ``:`` as a
    character reference, so a method called ``<img …>`` or ``:material/x:`` shows as
    written)."""
    chips = " ".join(
        f"<span style='display:inline-flex;align-items:center;margin-right:14px'>"
        f"<span style='width:14px;height:14px;border-radius:3px;background:"
        f"{render.hex_color(c)};display:inline-block;margin-right:6px'></span>"
        f"{html_text(name)}</span>"
        for name, c in items)
    where.markdown(f"<div style='font-size:0.9rem'>{chips}</div>", unsafe_allow_html=True)


#: Tiles per row offered by the grids' density control (state key ``qcols``).
DENSITIES = (3, 4, 5, 6, 8, 10)

LABEL_LEGEND = [(name, render.LABEL_COLORS[name])
                for name in (*LABELS, "negative")]


def number(label: str, lo: int, hi: int, key: str, *, wkey: str | None = None,
           where: Any = st, **kw: Any) -> int:
    """An integer input bound to state *key*, the value clamped to ``[lo, hi]``."""
    try:
        v = min(max(int(state.get(key)), lo), hi)
    except (TypeError, ValueError):
        v = state.DEFAULTS[key]
    state.put(key, v)
    wkey, changed = _bind(key, wkey)
    return int(where.number_input(label, lo, hi, key=wkey, on_change=changed, step=1, **kw))


def multi(label: str, options: Sequence[str], key: str, *, wkey: str | None = None,
          where: Any = st, format_func: Callable[[Any], str] = str, **kw: Any) -> list[str]:
    """A multiselect bound to state *key*, kept as a comma-separated string (``""`` = none
    chosen); unknown names in the state are dropped."""
    wkey = wkey or f"w_{key}"
    chosen = [v for v in str(state.get(key) or "").split(",") if v in options]
    state.put(key, ",".join(chosen))

    def changed() -> None:
        state.put(key, ",".join(st.session_state[wkey]))

    st.session_state[wkey] = chosen
    return where.multiselect(label, list(options), key=wkey, on_change=changed,
                             format_func=format_func, **kw)


def range_slider(label: str, lo: float, hi: float, key_lo: str, key_hi: str, *,
                 wkey: str | None = None, where: Any = st, **kw: Any) -> tuple[float, float]:
    """A two-handle slider bound to state keys *key_lo* and *key_hi* (clamped, ordered)."""
    wkey = wkey or f"w_{key_lo}_{key_hi}"
    try:
        a = min(max(float(state.get(key_lo)), lo), hi)
        b = min(max(float(state.get(key_hi)), lo), hi)
    except (TypeError, ValueError):
        a, b = state.DEFAULTS[key_lo], state.DEFAULTS[key_hi]
    a, b = min(a, b), max(a, b)
    state.put(key_lo, a)
    state.put(key_hi, b)

    def changed() -> None:
        x, y = st.session_state[wkey]
        state.put(key_lo, float(x))
        state.put(key_hi, float(y))

    st.session_state[wkey] = (a, b)
    return where.slider(label, lo, hi, key=wkey, on_change=changed, **kw)



# ---------------------------------------------------------------- page look, tiles, keys

#: The app's own style, drawn once per run by the sidebar: a shorter top margin, grid
#: tiles that open with a click anywhere on them (the tile's open button is stretched
#: over the tile, transparent) with a hover and a keyboard-focus ring, the small enlarge
#: button in a tile's corner, and the hidden buttons that carry the j / k shortcuts.
#: Tiles are containers whose key holds ``tile_`` (``qtile_3``, ``etile_7_12``); the
#: enlarge button's key starts with ``zoom_``. No name from a file is in it.
APP_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 3.4rem; }
[data-testid="stMain"] h1 { font-size: 2rem; padding: 0.2rem 0 0.4rem 0; }
[class*="st-key-"][class*="tile_"] { position: relative; border-radius: 8px;
  outline: 2px solid transparent; outline-offset: 2px; gap: 0.1rem; }
[class*="st-key-"][class*="tile_"]:hover { outline-color: #8ab4f8; }
[class*="st-key-"][class*="tile_"]:has(.stButton button:focus-visible) {
  outline: 3px solid #1f6feb; }
[class*="st-key-"][class*="tile_"] > .stElementContainer:has(.stButton):not([class*="zoom_"]) {
  position: absolute; inset: 0; z-index: 1; margin: 0; width: 100% !important; }
[class*="st-key-"][class*="tile_"] > .stElementContainer:has(.stButton):not([class*="zoom_"])
  :is(.stButton, .stButton > div, button) { width: 100%; height: 100%; }
[class*="st-key-"][class*="tile_"] > .stElementContainer:has(.stButton):not([class*="zoom_"])
  button { opacity: 0; cursor: pointer; }
[class*="st-key-"][class*="tile_"] > [class*="st-key-zoom_"] { position: absolute; top: 8px;
  right: 8px; z-index: 2; width: auto !important; }
[class*="st-key-"][class*="tile_"] > [class*="st-key-zoom_"] button { min-height: 0;
  padding: 0 4px; background: rgba(255,255,255,0.85); }
[class*="st-key-"][class*="tile_"] [data-testid="stCaptionContainer"] { font-size: 0.78rem;
  line-height: 1.25; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
[class*="st-key-"][class*="tile_"] [data-testid="stCaptionContainer"] p { overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; margin: 0; }
[class*="st-key-"][class*="tile_"] [data-testid="stElementToolbar"] { display: none; }
[class*="st-key-kb_"] { display: none !important; }
[class*="st-key-cards"] [data-testid="stMetricValue"] { font-size: 1.4rem; }
[class*="st-key-cards"] [data-testid="stMetric"] { gap: 0; }
</style>"""


def app_style() -> None:
    """Draw :data:`APP_CSS` (a style-only ``st.html``, which takes no space)."""
    st.html(APP_CSS)


def step_buttons(on_prev: Callable[[], None], on_next: Callable[[], None], *, key: str,
                 prev_disabled: bool, next_disabled: bool, keys: bool = True,
                 what: str = "query", where: Any = st) -> None:
    """Prev / Next buttons in a row sized to their labels (never cut), with the ← / →
    shortcuts shown on them and j / k on two hidden twins (j next, k previous).
    *keys* False leaves the shortcuts out (while a lightbox, which has its own, is open)."""
    row = where.container(horizontal=True, gap="small", width="content",
                          vertical_alignment="bottom", key=f"{key}_steps")
    row.button("Prev", icon=":material/chevron_left:", on_click=on_prev,
               disabled=prev_disabled, key=f"prev_{key}", shortcut="Left" if keys else None,
               help=f"Previous {what} (← or k)")
    row.button("Next", icon=":material/chevron_right:", on_click=on_next,
               disabled=next_disabled, key=f"next_{key}", shortcut="Right" if keys else None,
               help=f"Next {what} (→ or j)")
    if keys:
        row.button("Previous (k)", key=f"kb_k_{key}", on_click=on_prev,
                   disabled=prev_disabled, shortcut="K")
        row.button("Next (j)", key=f"kb_j_{key}", on_click=on_next,
                   disabled=next_disabled, shortcut="J")


def back_key(label: str, page: routing.PageSpec, *, key: str, where: Any = st,
             visible: bool = False, **values: Any) -> None:
    """A button with the Esc shortcut that opens *page* (hidden unless *visible*)."""
    where.button(label, key=key if visible else f"kb_{key}", on_click=routing.request,
                 args=(page,), kwargs=values, shortcut="Esc",
                 icon=":material/arrow_back:" if visible else None)


def keys_hint(text: str, where: Any = st, help: str | None = None) -> None:
    """The short "keys" line of a page with shortcuts."""
    where.caption(f":material/keyboard: **Keys** · {text}", help=help)
