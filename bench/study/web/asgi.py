"""ASGI entry points of the participant screens (docs/PROTOCOLS.md §7).

Participant-only server (no Streamlit imported)::

    python -c "import bench.study.web as w; w.serve('NAME', '0.0.0.0', 8502, 4)"

is ``uvicorn bench.study.web.asgi:from_env --factory --workers 4`` with
``BENCH_STUDY=NAME`` in the environment (each worker builds the app from it).

The experimenter's app and the participant routes in one process (Streamlit 1.67's
``st.App``; ``streamlit run`` finds an ``st.App`` assigned to ``app`` in the script, by
parsing it, and runs it with uvicorn; the same script is then run by Streamlit for every
session, where ``__name__ == "__main__"``)::

    # app.py
    import streamlit as st
    import bench.study.web
    from bench.app.main import main

    if __name__ == "__main__":
        main()  # a Streamlit session: the experimenter's pages
    else:
        app = st.App(__file__, routes=bench.study.web.routes())
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from bench.study.web.api import routes

ENV_STUDY = "BENCH_STUDY"

__all__ = ["ENV_STUDY", "from_env", "participant_app", "serve"]


async def _not_found(request: Request, exc) -> PlainTextResponse:
    return PlainTextResponse("Not found", status_code=404)


def participant_app(study: str) -> Starlette:
    """Only the participant routes of *study* (see :func:`bench.study.web.routes`)."""
    from bench.study.store import study_file

    study_file(None, study)  # the name is checked (ValueError)
    return Starlette(routes=routes(study, root=True),
                     exception_handlers={404: _not_found, 405: _not_found})


def from_env() -> Starlette:
    """:func:`participant_app` of ``$BENCH_STUDY`` (the uvicorn factory of the workers)."""
    study = os.environ.get(ENV_STUDY, "").strip()
    if not study:
        raise SystemExit(f"{ENV_STUDY} is not set: the participant server serves one study")
    return participant_app(study)


def serve(name: str, address: str = "127.0.0.1", port: int = 8502, workers: int = 2) -> None:
    """Run :func:`participant_app` of study *name* with uvicorn, *workers* processes."""
    import uvicorn

    from bench.study.web import backend

    backend.open_study(name)  # BenchError / ValueError before anything listens
    os.environ[ENV_STUDY] = name
    uvicorn.run("bench.study.web.asgi:from_env", factory=True, host=address, port=int(port),
                workers=max(1, int(workers)), server_header=False, date_header=False,
                log_level="warning", access_log=False, proxy_headers=False,
                timeout_keep_alive=30)
