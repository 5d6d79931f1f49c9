"""Pages and navigation: the page registry, the router's run, and page switches.

Adding a page: write ``pages/<name>.py`` (its first statement after the imports is
``routing.ensure_routed()``; ``<name>`` is its URL path), add a :class:`PageSpec`
constant here and list it in :data:`PAGES` (the order of the navigation menu).
``app.py`` needs no change.

**Streamlit's legacy ``pages/`` mode.** Streamlit 1.67 decides once per process
(``PagesManager.uses_pages_directory``, set when the first session starts) whether the
app is a "v1" multipage app: with a folder named ``pages/`` beside the main script it
is, until some run calls ``st.navigation``. In that mode a request for a page URL runs
the page file *on its own*, without ``app.py`` (no sidebar, no router), and the first
request after a server start for ``/study`` (or any page) is such a request. No option
turns the mode off (``client.showSidebarNavigation`` only hides the menu) and the folder
keeps its name, so every page begins with :func:`ensure_routed`: run outside the
router, it calls the public ``st.navigation`` (which ends the legacy mode for the whole
process, as documented for apps that use it) with this registry, hidden, and reruns;
the rerun goes through ``app.py``. This is the only place that knows about the mode;
``tests/test_app.py::test_legacy_pages_mode_*`` and the browser test that opens every
page URL first on a fresh server fail if a Streamlit upgrade changes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit import config

from bench.app import deferred, state


@dataclass(frozen=True)
class PageSpec:
    """One page: its file, menu title and icon. Its URL path is the file's name
    (``pages/gpr1200.py`` -> ``/gpr1200``; the default page: ``/``), the name Streamlit's
    legacy mode also gives it, so a first request in that mode finds the same page."""

    path: str
    title: str
    icon: str
    default: bool = False

    @property
    def url_path(self) -> str:
        return "" if self.default else Path(self.path).stem

    def page(self) -> Any:
        # no icon: Streamlit makes a page's icon the tab's favicon, and a ``:material/…:``
        # favicon is fetched from fonts.gstatic.com (an offline tool asks no other host);
        # the app's own menu (:func:`menu`) draws the icons from the bundled font
        return st.Page(self.path, title=self.title, url_path=self.url_path or None,
                       default=self.default)


OVERVIEW = PageSpec("pages/overview.py", "Overview", ":material/monitoring:", default=True)
QUERY = PageSpec("pages/query.py", "Query", ":material/search:")
PAIR = PageSpec("pages/pair.py", "Pair", ":material/compare:")
ERRORS = PageSpec("pages/errors.py", "Errors", ":material/bug_report:")
GPR = PageSpec("pages/gpr1200.py", "GPR1200", ":material/grid_view:")
STUDY = PageSpec("pages/study.py", "User study", ":material/how_to_reg:")
DATA = PageSpec("pages/data.py", "Data & help", ":material/help:")
COMPARE = PageSpec("pages/compare.py", "Compare", ":material/difference:")

#: The navigation menu, in order.
PAGES: tuple[PageSpec, ...] = (OVERVIEW, QUERY, PAIR, ERRORS, COMPARE, GPR, STUDY, DATA)

_ROUTED = threading.local()  # set while app.py runs the chosen page
_GOTO = "_goto"


def navigation(position: str = "sidebar") -> Any:
    """``st.navigation`` over :data:`PAGES`; returns the page to run."""
    return st.navigation([p.page() for p in PAGES], position=position)


def own_menu() -> bool:
    """Whether the app draws its own menu (:func:`menu`): when Streamlit's page list is
    switched off (``client.showSidebarNavigation = false``, set in the checkout's
    ``.streamlit/config.toml``), which also keeps the legacy ``pages/`` list of file names
    from flashing on a fresh server's first page (module docstring)."""
    return config.get_option("client.showSidebarNavigation") is False


def menu(where: Any = None) -> None:
    """The navigation menu, as page links in the sidebar (container ``app_nav``)."""
    box = (where or st.sidebar).container(key="app_nav", gap=None)
    for p in PAGES:
        box.page_link(p.path, label=p.title, icon=p.icon)


def run(page: Any) -> None:
    """The router's run of *page*: first a page switch asked for by a callback
    (:func:`request`), then the page, then the URL is written (also after ``st.stop`` /
    ``st.switch_page``, which end a run by raising)."""
    try:
        target = st.session_state.pop(_GOTO, None)
        if target:
            st.switch_page(target, query_params=state.url_params())
        _ROUTED.on = True
        try:
            page.run()
        finally:
            _ROUTED.on = False
    finally:
        state.sync_url()
        deferred.mark_painted()


def ensure_routed() -> None:
    """First call of every page file: a page run outside the router (Streamlit's legacy
    ``pages/`` mode, see the module docstring) ends that mode and reruns through
    ``app.py``. Does nothing in a routed run."""
    if getattr(_ROUTED, "on", False):
        return
    navigation(position="hidden")  # public API; ends the legacy mode for the process
    st.rerun()


def _path(page: PageSpec | str) -> str:
    return page.path if isinstance(page, PageSpec) else page


def go(page: PageSpec | str, **values: Any) -> None:
    """Set URL state (e.g. ``q=3``, ``i=17``) and open *page* now (the URL keeps the view).
    Not in a widget callback: use :func:`request` there."""
    state.update(**values)
    st.switch_page(_path(page), query_params=state.url_params())


def request(page: PageSpec | str, **values: Any) -> None:
    """Widget callback: set URL state and ask the router to open *page* on the next run.
    (Callbacks run before the script, so the request survives any rerun in between.)"""
    state.update(**values)
    st.session_state[_GOTO] = _path(page)
