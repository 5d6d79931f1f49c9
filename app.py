"""The inspection app: ``streamlit run app.py [-- --data-root DIR ...]``.

Router only: page config, the URL state, the data-source sidebar and the pages
(registered in ``ui/routing.py``). Every number comes from ``bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # `ui` and `bench` import from here
    sys.path.insert(0, str(_HERE))

from ui import participant, routing, sidebar, state  # noqa: E402

if participant.requested():  # a participant link, or a participant-only server:
    participant.serve()  # the study alone, no sidebar, no navigation (ui/participant.py)
else:
    st.set_page_config(page_title="Retrieval workbench", page_icon=":material/image_search:",
                       layout="wide")
    state.init_state()
    page = routing.navigation()
    sidebar.sidebar()
    routing.run(page)
