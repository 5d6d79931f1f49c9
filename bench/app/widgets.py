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
    """A row of colour chips with their names."""
    chips = " ".join(
        f"<span style='display:inline-flex;align-items:center;margin-right:14px'>"
        f"<span style='width:14px;height:14px;border-radius:3px;background:"
        f"{render.hex_color(c)};display:inline-block;margin-right:6px'></span>{name}</span>"
        for name, c in items)
    where.markdown(f"<div style='font-size:0.9rem'>{chips}</div>", unsafe_allow_html=True)


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

