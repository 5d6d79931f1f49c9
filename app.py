"""The inspection app: ``streamlit run app.py``.

Router only: page config, the data-source sidebar (pages/_common.py) and the pages.
Every number comes from ``bench``; the view lives in the URL query parameters.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # `pages._common` and `bench` import from here
    sys.path.insert(0, str(_HERE))

from pages import _common as ui  # noqa: E402

st.set_page_config(page_title="Retrieval workbench", page_icon=":material/image_search:",
                   layout="wide")

ui.init_state()
page = st.navigation([
    st.Page(ui.OVERVIEW, title="Overview", icon=":material/monitoring:", default=True),
    st.Page(ui.QUERY, title="Query", icon=":material/search:", url_path="query"),
    st.Page(ui.PAIR, title="Pair", icon=":material/compare:", url_path="pair"),
    st.Page(ui.GPR, title="GPR1200", icon=":material/grid_view:", url_path="gpr1200"),
    st.Page("pages/study.py", title="User study", icon=":material/how_to_reg:", url_path="study"),
    st.Page(ui.DATA, title="Data & help", icon=":material/help:", url_path="data"),
])
ui.sidebar()
ui.follow()
try:
    ui.run_page(page)
finally:  # also after st.stop / st.switch_page, which end a run by raising
    ui.sync_url()
    ui.mark_painted()
