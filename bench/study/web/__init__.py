"""The participant screens of a user study: a plain page and a small JSON API, as
Starlette routes, with no Streamlit (docs/PROTOCOLS.md §7).

- :mod:`bench.study.web.api`: the routes under :data:`PATH` (``/take``), the page, the
  JSON calls, the time checks;
- :mod:`bench.study.web.pictures`: the trial pictures, rendered once per size class,
  served immutable with an ETag of their content hash, through the pixel cap;
- :mod:`bench.study.web.limits`: rate limits per address and per participant;
- :mod:`bench.study.web.backend`: the study store as the screens use it;
- ``static/``: ``index.html``, ``app.js``, ``app.css`` (no build step).

Two ways to serve them:

- the participant-only server, :func:`serve` (``uvicorn`` with several worker
  processes; only these routes, for one study; ``/`` shows the page too);
- beside the experimenter's Streamlit app in one process: ``st.App(script,
  routes=bench.study.web.routes())`` (see :mod:`bench.study.web.asgi`).
"""

from __future__ import annotations

from bench.study.web.api import PATH, routes

__all__ = ["PATH", "participant_app", "routes", "serve"]


def participant_app(study: str):
    """The participant-only ASGI app of *study*: the routes of :func:`routes` for that
    study alone (``/`` and ``/take`` show the page); every other path is a plain 404."""
    from bench.study.web.asgi import participant_app as make

    return make(study)


def serve(name: str, address: str = "127.0.0.1", port: int = 8502, workers: int = 2) -> None:
    """Run the participant-only server of study *name* with uvicorn (blocks): *workers*
    processes on *address*:*port*. Checks the study first (BenchError when there is no
    such study)."""
    from bench.study.web.asgi import serve as run

    run(name, address, port, workers)
