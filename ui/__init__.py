"""The app's shared code (``app.py`` and ``pages/`` import it; ``bench`` never does).

One concern per module:

- :mod:`ui.state`    URL keys and their values (``get``, ``put``, ``update``).
- :mod:`ui.routing`  page registry, the router's run, page switches (``go``, ``request``),
                     and the legacy ``pages/`` mode guard (``ensure_routed``).
- :mod:`ui.widgets`  widgets bound to URL keys (``select``, ``radio``, ``slider``,
                     ``text``), ``nav_button``, ``legend``.
- :mod:`ui.loaders`  cached bench calls, file stamps in the cache key (``HASH_FUNCS``).
- :mod:`ui.roots`    the allowed data roots; every user-given path is checked here.
- :mod:`ui.sidebar`  the data-source sidebar, which makes the run's ``Ctx``.
- :mod:`ui.context`  ``Ctx`` and how a page asks for data (``require_dataset``, ``guard``).
- :mod:`ui.views`    page content shown by more than one page.
- :mod:`ui.format`   how numbers and names are written.
- :mod:`ui.deferred` Plotly charts after the first paint.
- :mod:`ui.upload`   the "add a method from result files" panel (``bench.uploads`` does the work).
- :mod:`ui.rankings` a second method's ranking beside the first (Query page).
- :mod:`ui.participant` participant mode of a user study: only the study, no sidebar,
                     no navigation, no paths from the URL.
"""
