"""The Query page's optional second method (URL key ``m2``): its top k beside the first
method's, with each image's rank change. Called from one line of ``pages/query.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bench import inspect as bi
from bench import render
from bench.app import loaders, routing, widgets
from bench.app.context import FIX_FILES
from bench.app.format import pct
from bench.errors import BenchError
from bench.formats.revisited import Gnd
from bench.workspace import DatasetFiles, MethodFiles

#: How deep the other ranking is read to find an image's rank there (rows of the ranks
#: file; an R1M ranking is never read whole for this).
LOOKUP = 1000
CHANGE_COLORS = {"▲": "#1a7f37", "▼": "#cf222e", "n": "#0969da"}  # up, down, new


def rank_change(rank_a: int | None, rank_b: int, k: int) -> str:
    """How an image at *rank_b* in B's ranking moved from A's (*rank_a*, ``None`` when
    A does not rank it within the rows read): ``"▲3"`` (B ranks it 3 higher), ``"▼5"``,
    ``"="``, or ``"new"`` when A's top *k* does not hold it."""
    if rank_a is None or rank_a > k:
        return "new"
    d = rank_a - rank_b
    return f"▲{d}" if d > 0 else f"▼{-d}" if d < 0 else "="


def top_k_beside(col_a: np.ndarray, col_b: np.ndarray, k: int
                 ) -> tuple[list[dict], list[dict]]:
    """Rows of the two lists from the first rows of A's and B's rankings of one query
    (database indices, best first; at least *k* rows each when the rankings have them):
    A's rows carry B's rank (``None``: not within B's rows), B's rows the rank change
    (:func:`rank_change`) and A's rank."""
    pos_a = {int(d): r + 1 for r, d in enumerate(col_a)}
    pos_b = {int(d): r + 1 for r, d in enumerate(col_b)}
    rows_a = [{"rank": r + 1, "db": int(d), "other": pos_b.get(int(d))}
              for r, d in enumerate(col_a[:k])]
    rows_b = [{"rank": r + 1, "db": int(d), "other": pos_a.get(int(d)),
               "change": rank_change(pos_a.get(int(d)), r + 1, k)}
              for r, d in enumerate(col_b[:k])]
    return rows_a, rows_b


def second_ranking(ds: DatasetFiles, g: Gnd, m: MethodFiles, q: int, k: int, setup: str,
                   protocol: str) -> None:
    """A "Compare the ranking with" select (state ``m2``) and, when a second method is
    chosen, both top-k lists side by side: label, image, and the rank change."""
    others = [n for n, mf in ds.methods.items() if n != m.name and mf.ranks is not None]
    if not others:
        return
    with st.container(border=True):
        a, b = st.columns([2, 3], vertical_alignment="bottom")
        with a:
            name = widgets.select("Compare the ranking with", ["", *others], "m2",
                                  wkey="w_m2_query",
                                  format_func=lambda n: n or "— no second method —")
        if not name:
            b.caption("A second method's top k beside this one's, with each image's rank "
                      "change (▲ higher, ▼ lower in the second ranking, new = not in the "
                      "first's top k).")
            return
        mb = ds.methods[name]
        try:  # a bad file of the second method does not stop the page
            ra, rb = loaders.ranks(ds, m), loaders.ranks(ds, mb)
            ap_a = loaders.revisited(ds, m, protocol)[setup].ap[q]
            ap_b = loaders.revisited(ds, mb, protocol)[setup].ap[q]
            col_a = np.asarray(ra[:min(max(k, LOOKUP), ra.shape[0]), q])
            col_b = np.asarray(rb[:min(max(k, LOOKUP), rb.shape[0]), q])
        except BenchError as e:
            st.error(str(e), icon=":material/error:")
            st.caption(FIX_FILES)
            return
        rows_a, rows_b = top_k_beside(col_a, col_b, k)
        labels = bi.labels_of(g, q)
        in_a = {r["db"] for r in rows_a}
        new = [r for r in rows_b if r["db"] not in in_a]
        with b:
            widgets.nav_button(f"Compare {m.name} and {name} on every query",
                               routing.COMPARE, key="q_compare_open", m=m.name, m2=name)
        st.markdown(f"Top {k}: **{len(rows_b) - len(new)}** images in both lists; "
                    f"**{name}** brings **{len(new)}** new. AP ({setup}): **{m.name}** "
                    f"{pct(ap_a)} · **{name}** {pct(ap_b)}.")

        def table(rows: list[dict], *, second: bool) -> list[dict]:
            out = []
            for r in rows:
                row = {"#": r["rank"], "image": loaders.db_image(ds, g, r["db"])[0],
                       "label": labels.get(r["db"], "negative")}
                if second:
                    row["change"] = r["change"]
                    row[f"# in {m.name}"] = (f"#{r['other']}" if r["other"]
                                             else f"> #{len(col_a)}")
                else:
                    row[f"# in {name}"] = (f"#{r['other']}" if r["other"]
                                           else f"> #{len(col_b)}")
                out.append(row)
            return out

        left, right = st.columns(2)
        with left.container(key="q_rank_a"):
            st.markdown(f"**A: {m.name}**")
            st.dataframe(styled(table(rows_a, second=False)), hide_index=True,
                         width="stretch")
        with right.container(key="q_rank_b"):
            st.markdown(f"**B: {name}** · change from A")
            st.dataframe(styled(table(rows_b, second=True)), hide_index=True,
                         width="stretch")


def styled(rows: list[dict]):
    """The list as a table with the label in its frame colour and the change in green
    (up), red (down) or blue (new)."""
    df = pd.DataFrame(rows)
    sty = df.style.map(lambda v: f"color: {render.hex_color(render.LABEL_COLORS[v])}; "
                       "font-weight: 600", subset=["label"])
    if "change" in df.columns:
        sty = sty.map(lambda v: f"color: {CHANGE_COLORS.get(v[:1], 'inherit')}",
                      subset=["change"])
    return sty
