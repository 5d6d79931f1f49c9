"""The Query page's optional second method (URL key ``m2``): its top k beside the first
method's, as tiles, with every image's exact rank in the other ranking.

A rank shown here is read from the ranks file already loaded (:func:`ranks_in`), never
bounded by a look-up depth: an image the other method puts at #2,417 reads ``#2417``, and
only an image absent from a truncated ranking reads "not ranked" (docs/PROTOCOLS.md §1,
truncated rankings)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import streamlit as st

from bench.app import loaders
from bench.workspace import DatasetFiles, MethodFiles

CHANGE_COLORS = {"▲": "#1a7f37", "▼": "#cf222e", "n": "#0969da"}  # up, down, new
FIRST_ROWS = 1000  # rows read first; then chunks of 2**18 until every image is found


def ranks_in(ranks: np.ndarray, q: int, dbs: Iterable[int]) -> dict[int, int | None]:
    """``{database index: 1-based rank in column q of ranks}`` for each of *dbs* (the
    first occurrence), ``None`` for an index the (truncated) ranking does not hold. Reads
    the column top down in growing row chunks and stops when every index is found, so a
    top-k look-up on a 1M-row ranking reads its first rows only."""
    want = {int(d) for d in dbs}
    out: dict[int, int | None] = dict.fromkeys(want)
    n = ranks.shape[0]
    start, step = 0, FIRST_ROWS
    while want and start < n:
        col = np.asarray(ranks[start:start + step, q]).astype(np.int64)
        for h in np.flatnonzero(np.isin(col, np.fromiter(want, dtype=np.int64))).tolist():
            d = int(col[h])
            if d in want:
                out[d] = start + h + 1
                want.discard(d)
        start += step
        step = max(step, 1 << 18)
    return out


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=loaders.HASH_FUNCS)
def other_ranks(ds: DatasetFiles, m: MethodFiles, q: int, dbs: tuple[int, ...]
                ) -> dict[int, int | None]:
    """:func:`ranks_in` on method *m*'s ranks file (cached by the file's stamp)."""
    return ranks_in(loaders.ranks(ds, m), q, dbs)


def rank_change(rank_a: int | None, rank_b: int, k: int) -> str:
    """How an image at *rank_b* in B's ranking moved from A's (*rank_a*, ``None`` when
    A's ranking does not hold it): ``"▲3"`` (B ranks it 3 higher), ``"▼5"``, ``"="``, or
    ``"new"`` when A's top *k* does not hold it."""
    if rank_a is None or rank_a > k:
        return "new"
    d = rank_a - rank_b
    return f"▲{d}" if d > 0 else f"▼{-d}" if d < 0 else "="


def rank_text(rank: int | None) -> str:
    """``"#2417"``, or ``"not ranked"`` (absent from a truncated ranking)."""
    return f"#{rank}" if rank is not None else "not ranked"
