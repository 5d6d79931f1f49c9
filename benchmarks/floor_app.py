"""Streamlit's floor: the least a page like the Overview can cost in a browser.

``streamlit run benchmarks/floor_app.py`` serves two pages through ``st.navigation`` (as
the workbench does): ``/`` holds one row of four ``st.metric`` cards and one Plotly bar
chart of 70 bars (the size of the Overview's per-query chart: ROxford5k has 70 queries),
from constant numbers, no file read; ``/other`` holds a title only, the page a same-tab
switch starts from. The sidebar holds the two page links (the workbench's menu is page
links too). ``benchmarks/bench_app.py --floor`` serves it beside the workbench in
the same run and divides every page time by this page's (issue 19, item 4).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

N_BARS = 70


def floor() -> None:
    st.title("Floor")
    cols = st.columns(4)
    for i, col in enumerate(cols):
        col.metric(f"metric {i + 1}", f"{50 + i:.2f}")
    rng = np.random.default_rng(0)
    vals = np.sort(rng.random(N_BARS))
    fig = go.Figure(go.Bar(x=[f"query {q}" for q in range(N_BARS)], y=(vals * 100).tolist(),
                           marker=dict(color=vals, colorscale="RdYlGn", cmin=0, cmax=1)))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), title="70 bars")
    fig.update_xaxes(type="category", tickangle=-60, tickfont=dict(size=9))
    st.plotly_chart(fig, width="stretch", key="floor_chart")


def other() -> None:
    st.title("Other page")


st.set_page_config(page_title="Floor", layout="wide")
PAGES = [st.Page(floor, title="Floor", default=True),
         st.Page(other, title="Other", url_path="other")]
page = st.navigation(PAGES)
for p in PAGES:  # the menu as page links, as the workbench draws it (showSidebarNavigation off)
    st.sidebar.page_link(p)
page.run()
