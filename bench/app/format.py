"""How numbers and names are written on the pages."""

from __future__ import annotations

import math

import numpy as np

from bench.formats.revisited import Gnd


def pct(x: float | None, nd: int = 2) -> str:
    """A fraction as a percentage with *nd* decimals; ``—`` for none / NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * float(x):.{nd}f}%"


def query_label(g: Gnd, q: int, ap: np.ndarray | None = None) -> str:
    """``"3 · all_souls_000013  (AP 54.12%)"``: a query in a picker."""
    s = f"{q} · {g.qimlist[q]}"
    if ap is not None and not math.isnan(ap[q]):
        s += f"  (AP {pct(ap[q])})"
    return s
