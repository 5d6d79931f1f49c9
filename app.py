"""The workbench from a checkout: ``streamlit run app.py [-- --data-root DIR ...]``.

One process serves both sides: the experimenter's Streamlit pages (router
:func:`bench.app.main.main`) and, beside them, the participants' screens of the user
study (``/take``, plain Starlette routes of :mod:`bench.study.web`, no Streamlit
session per participant). ``streamlit run`` imports this file to find ``app`` (the
``st.App`` with those routes), then runs it as ``__main__`` for every session. The
installed package runs the same (``retbench app``: bench/app/streamlit_app.py).
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # `bench` imports from the checkout without an install
    sys.path.insert(0, _HERE)

if __name__ == "__main__":  # a Streamlit session: the experimenter's pages
    from bench.app.main import main

    main()
else:  # `streamlit run app.py` imports this file to find the ASGI app
    import streamlit as st

    from bench.study.web import routes

    app = st.App(__file__, routes=routes())
