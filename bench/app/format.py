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


_MD_ALWAYS = set("\\`*[]<>$~|#!{}@")


def md(name: object) -> str:
    """*name* (a query, image, method, category or study name read from a file or a URL)
    as Markdown that shows exactly its characters (docs/PROTOCOLS.md is not involved: this
    is display only). Escaped: every character that can open Markdown or HTML (backslash,
    backtick, ``* [ ] < > $ ~ | # ! { } @``), ``_`` unless inside a word, ``-`` / ``+`` /
    ``1.`` at the start (lists), ``.`` after ``www``, and ``&`` and a ``:`` not followed by
    a space as character references (Streamlit expands ``:material/x:``, ``:red[…]`` and
    emoji codes, and GFM links ``http://…`` / ``www.…``, before escapes count); line
    breaks become spaces. Plain text such as ``ranks.npy: shape (3, 7), n_db`` stays as it
    is. Use it for every name inside ``st.markdown``, captions (``st.image`` captions too),
    labels, ``help`` texts and ``st.table`` cells, all of which Streamlit renders as
    Markdown."""
    s = " ".join(str(name).splitlines())
    out = []
    n = len(s)
    for j, ch in enumerate(s):
        prev = s[j - 1] if j else " "
        nxt = s[j + 1] if j + 1 < n else " "
        if ch == "&":
            out.append("&amp;")
        elif ch == ":":
            out.append(":" if nxt == " " else "&#58;")
        elif ch in _MD_ALWAYS:
            out.append("\\" + ch)
        elif ch == "_":
            out.append("_" if prev.isalnum() and nxt.isalnum() else "\\_")
        elif ch in "-+=" and not s[:j].strip():
            out.append("\\" + ch)
        elif ch == "." and (s[:j].strip().isdigit() or s[max(0, j - 3):j].lower() == "www"):
            out.append("\\.")
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
