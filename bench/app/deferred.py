"""Heavy charts after the first paint.

A browser tab's first page is not shown until every element type on it has loaded its
code, and Plotly's is by far the largest (seconds on a slow machine). So on a session's
first run the pages leave the charts out (:func:`charts_now` is False), and a fragment's
timer, which starts only once that run is on screen, reruns the app with them a moment
later. The router marks every finished run (:func:`mark_painted`).
"""

from __future__ import annotations

import streamlit as st

PAINTED = "_painted"  # tests set it to skip the deferral
_ARMED = "_charts_armed"


def mark_painted() -> None:
    """Called by the router at the end of every run."""
    st.session_state[PAINTED] = True


def charts_now() -> bool:
    """Whether to draw Plotly charts in this run (False only on a session's first run,
    which then schedules the rerun that draws them)."""
    if st.session_state.get(PAINTED):
        return True

    @st.fragment(run_every=0.1)
    def _then_charts() -> None:
        if st.session_state.get(_ARMED):
            st.session_state[PAINTED] = True
            st.rerun(scope="app")
        st.session_state[_ARMED] = True

    _then_charts()
    return False
