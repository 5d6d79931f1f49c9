"""The Streamlit app: its router (:mod:`bench.app.main`) and the pages' shared code.

``app.py`` and ``pages/`` import it; the rest of ``bench`` never does (and never imports
streamlit).

One concern per module:

- :mod:`bench.app.state`    URL keys and their values (``get``, ``put``, ``update``).
- :mod:`bench.app.routing`  page registry, the router's run, page switches (``go``, ``request``),
                     and the legacy ``pages/`` mode guard (``ensure_routed``).
- :mod:`bench.app.widgets`  widgets bound to URL keys (``select``, ``radio``, ``slider``,
                     ``text``), ``nav_button``, ``legend``.
- :mod:`bench.app.loaders`  cached bench calls, file stamps in the cache key (``HASH_FUNCS``).
- :mod:`bench.app.roots`    the allowed data roots; every user-given path is checked here.
- :mod:`bench.app.sidebar`  the data-source sidebar, which makes the run's ``Ctx``.
- :mod:`bench.app.context`  ``Ctx`` and how a page asks for data (``require_dataset``, ``guard``).
- :mod:`bench.app.views`    page content shown by more than one page.
- :mod:`bench.app.format`   how numbers and names are written.
- :mod:`bench.app.deferred` Plotly charts after the first paint.
- :mod:`bench.app.upload`   the "add a method from result files" panel (``bench.uploads`` does the work).
- :mod:`bench.app.rankings` a second method's ranking beside the first (Query page).
"""
