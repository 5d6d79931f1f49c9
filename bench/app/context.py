"""What the sidebar chose, and how a page asks for what it needs.

A page starts with ``c = context.ctx()`` and then, for Revisited / pixel data,
``ds, m = context.require_dataset(need_ranks=..., need_pixel=...)`` (or
``spec = context.require_gpr()`` for GPR1200): each shows why the data is missing and
stops the page when it is. Wrap bench calls in ``with context.guard(context.FIX_FILES):``
so a bad file becomes an ``st.error`` naming it, and the other pages keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from bench.app.format import md_message
from bench.app.loaders import GprSpec, has_pixel
from bench.errors import HOSTILE_ERRORS, BenchError
from bench.workspace import DatasetFiles, MethodFiles

_CTX = "_ctx"

FIX_FILES = ("Check the file named above (the Data & help page lists the expected layout "
             "and formats), then press Rescan folder or edit the path in the sidebar.")


@dataclass
class Ctx:
    """The data chosen in the sidebar for this run."""

    source: str
    root: Path | None = None
    datasets: list[DatasetFiles] | None = None
    dataset: DatasetFiles | None = None
    method: MethodFiles | None = None
    protocol: str = "official"
    setup: str = "medium"
    gpr: GprSpec | None = None
    error: str | None = None  # why there is no Revisited / pixel dataset
    hint: str | None = None  # nothing chosen yet: what to do (an empty state, not an error)
    gpr_error: str | None = None  # why there is no GPR1200 input
    refused: list[str] = field(default_factory=list)  # paths outside the data roots

    @property
    def synthetic(self) -> bool:
        return self.source == "demo"

    @property
    def images(self) -> Path | None:
        return self.dataset.images if self.dataset else None


def store(c: Ctx) -> Ctx:
    st.session_state[_CTX] = c
    return c


def ctx() -> Ctx:
    """The :class:`Ctx` the sidebar made in this run."""
    return st.session_state[_CTX]


@contextmanager
def guard(fix: str = "") -> Iterator[None]:
    """Show a :class:`BenchError` as an ``st.error`` (plus what to do) and stop this page;
    the sidebar and the other pages keep working."""
    try:
        yield
    except BenchError as e:
        st.error(md_message(e), icon=":material/error:")
        if fix:
            st.caption(fix)
        st.stop()
    except HOSTILE_ERRORS as e:  # a reader let something unusable through: say so, keep going
        msg = str(e)[:300] if not isinstance(e, MemoryError) else "out of memory"
        st.error(md_message(f"unusable input: {type(e).__name__}: {msg}"),
                 icon=":material/error:")
        if fix:
            st.caption(fix)
        st.stop()


def require_dataset(*, need_ranks: bool = False, need_pixel: bool = False
                    ) -> tuple[DatasetFiles, MethodFiles | None]:
    """The chosen dataset and method, or an explanation and a stop."""
    c = ctx()
    if c.dataset is None:
        if c.hint and not c.refused:
            st.info(c.hint, icon=":material/folder_open:")
        elif c.source == "gpr":
            st.info("The GPR1200 source holds no Revisited / pixel data: open the "
                    "**GPR1200** page, or choose another source in the sidebar.")
        else:
            st.error(md_message(c.error or "No dataset found."), icon=":material/error:")
            if not c.refused:
                st.caption(FIX_FILES)
        st.stop()
    m = c.method
    if need_ranks and (m is None or m.ranks is None):
        st.warning("This method has no image-level ranks file "
                   f"(results/image-level/<method>/r{c.dataset.short}.npy).")
        st.stop()
    if need_pixel and not has_pixel(c.dataset, m):
        st.warning("Pixel-level inspection needs the pair labels "
                   f"({c.dataset.short}_pair2labelpath.npy) and the method's "
                   f"matching_result/pr{c.dataset.short}.npy.")
        st.stop()
    return c.dataset, m


def require_gpr() -> GprSpec:
    """The chosen GPR1200 input, or why there is none (an error for a refused path) and
    a stop."""
    c = ctx()
    if c.gpr is None:
        if c.refused:
            for msg in c.refused:
                st.error(md_message(msg), icon=":material/block:")
        else:
            st.info(md_message(c.gpr_error) if c.gpr_error else
                    "Choose **GPR1200 folder** (or the demo) as the data source in the "
                    "sidebar: the images folder and an embeddings or indices file.")
        st.stop()
    return c.gpr


def synthetic_note() -> None:
    """The demo's disclaimer, on every page that shows its numbers."""
    if ctx().synthetic:
        st.caption(":material/science: Demo data: synthetic images and two baseline methods "
                   "made by this project; the numbers are not Revisited Oxford/Paris, "
                   "PROxford/PRParis or GPR1200 results.")
