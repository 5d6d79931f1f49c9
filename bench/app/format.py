"""How numbers and names are written on the pages."""

from __future__ import annotations

import html
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


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$=^\"'")


def md(name: object) -> str:
    """*name* (a query, image, method, category or study name read from a file or a URL)
    as Markdown that shows exactly its characters: every Markdown / HTML punctuation mark
    backslash-escaped, ``:`` and ``&`` as character references (Streamlit turns
    ``:material/x:``, ``:red[...]`` and emoji codes into elements before escapes count),
    line breaks as spaces. Use it for every name inside ``st.markdown``, captions, labels,
    ``help`` texts and ``st.table`` cells, all of which Streamlit renders as Markdown."""
    s = " ".join(str(name).splitlines())
    out = []
    for ch in s:
        if ch == "&":
            out.append("&amp;")
        elif ch == ":":
            out.append("&#58;")
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def svg_text(name: object) -> str:
    """*name* for a Plotly text (axis labels, hover, titles), which reads a small HTML
    subset (``<a href>``, ``<b>``, ``<br>``): ``<``, ``>`` and ``&`` escaped."""
    return html.escape(str(name), quote=False)


def html_text(name: object) -> str:
    """*name* inside an HTML snippet shown with ``unsafe_allow_html`` (the colour legend):
    ``& < > " '`` escaped and ``:`` / ``$`` as character references (Streamlit's icon,
    colour and math syntax), so it shows as written and adds no element."""
    return (html.escape(" ".join(str(name).splitlines()), quote=True)
            .replace(":", "&#58;").replace("$", "&#36;").replace("[", "&#91;"))


def md_message(msg: object) -> str:
    """An error or notice that may quote a path or a name (a :class:`BenchError`, a
    refusal) as Markdown: `code spans` are kept (Markdown and HTML inside them show as
    written), the rest goes through :func:`md`."""
    parts = str(msg).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans
        return md(msg)
    return "".join(f"`{p}`" if j % 2 else md(p) for j, p in enumerate(parts))
