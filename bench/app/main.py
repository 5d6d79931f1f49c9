"""The router of the inspection app, run on every Streamlit rerun.

Two scripts call :func:`main`: ``app.py`` in a checkout (``streamlit run app.py``) and
``bench/app/streamlit_app.py`` in an installed package (``bench-workbench app``). Both sit
beside a ``pages/`` folder (in the wheel ``pages/`` is mapped to ``bench/app/pages``), so
the page paths of :mod:`bench.app.routing` are the same relative paths in both.
"""

from __future__ import annotations

import streamlit as st

from bench.app import participant, routing, sidebar, state


def main() -> None:
    """Page config, the URL state, the data-source sidebar and the pages; or, for a
    participant link or a participant-only server, the study alone."""
    if participant.requested():  # no sidebar, no navigation (bench/app/participant.py)
        participant.serve()
        return
    st.set_page_config(page_title="Retrieval workbench", page_icon=":material/image_search:",
                       layout="wide")
    state.init_state()
    page = routing.navigation()
    sidebar.sidebar()
    routing.run(page)
