"""The router of the inspection app, run on every Streamlit rerun.

Two scripts call :func:`main`: ``app.py`` in a checkout (``streamlit run app.py``) and
``bench/app/streamlit_app.py`` in an installed package (``retbench app``). Both sit
beside a ``pages/`` folder (in the wheel ``pages/`` is mapped to ``bench/app/pages``), so
the page paths of :mod:`bench.app.routing` are the same relative paths in both.
"""

from __future__ import annotations

import os

import streamlit as st

from bench.app import routing, sidebar, state


def main() -> None:
    """Page config, the URL state, the data-source sidebar and the pages. Participants
    never reach Streamlit: their screens are bench.study.web (``/take``), served beside
    this app or by the participant-only server (``python -m bench study serve NAME``)."""
    if os.environ.get("BENCH_PARTICIPANT_ONLY", "").strip() == "1":  # the old `make study`
        st.set_page_config(page_title="Study")
        st.error("The participant screens are no longer served by Streamlit: run "
                 "`python -m bench study serve NAME` (or `make study STUDY=NAME`).")
        st.stop()
    # an emoji favicon is drawn in the browser; a :material/ one is fetched from Google
    st.set_page_config(page_title="Retrieval workbench", page_icon="🔎", layout="wide")
    state.init_state()
    page = routing.navigation()
    sidebar.sidebar()
    routing.run(page)
