"""The inspection app from a checkout: ``streamlit run app.py [-- --data-root DIR ...]``.

The router is :func:`bench.app.main.main`; the installed package runs the same one
(``bench-workbench app``). Every number comes from ``bench``.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # `bench` imports from the checkout without an install
    sys.path.insert(0, _HERE)

from bench.app.main import main  # noqa: E402

main()
