"""Main script of the installed app (``retbench app`` runs it; ``pages/`` is beside it).

As the checkout's ``app.py``: Streamlit imports it to find ``app`` (the experimenter's
pages plus the study's participant routes, ``/take``), then runs it per session.
"""

if __name__ == "__main__":  # a Streamlit session: the experimenter's pages
    from bench.app.main import main

    main()
else:  # `streamlit run` imports this file to find the ASGI app
    import streamlit as st

    from bench.study.web import routes

    app = st.App(__file__, routes=routes())
