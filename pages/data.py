"""Data & help: what was found, and how to point the app at the real benchmarks."""

from __future__ import annotations

import os

import streamlit as st

from bench import thumbs
from bench.app import context, roots, routing
from bench.app.format import md_message
from bench.app.state import SOURCES
from bench.demo import default_demo_dir

routing.ensure_routed()

c = context.ctx()
st.title("Data & help")

st.subheader("What is loaded")
st.markdown(f"Source: **{SOURCES[c.source]}**" + (f" · `{c.root}`" if c.root else ""))
if c.synthetic:
    st.caption("The demo is synthetic: objects cut from scikit-image's bundled photographs "
               "and pasted into other scenes through known homographies, in the released "
               "benchmarks' file formats, with two baseline methods (local-sp, global-hist). "
               "Its numbers say nothing about real methods on real benchmarks.")
if c.hint and c.datasets is None and not c.refused:
    st.info(c.hint, icon=":material/folder_open:")
elif c.error and c.datasets is None and c.source != "gpr":
    st.error(md_message(c.error), icon=":material/error:")
if c.datasets:
    rows = []
    for d in c.datasets:
        files = {"gnd": str(d.gnd),
                 "pair labels": str(d.pair_labels) if d.pair_labels else "—",
                 "images": str(d.images) if d.images else "— (metrics only)"}
        methods = d.methods.items() or [("—", None)]
        for name, mf in methods:  # one row per method: dataset and method first
            rows.append({"dataset": d.name, "method": name,
                         "ranks": str(mf.ranks) if mf and mf.ranks else "—",
                         "pixel result": str(mf.matches) if mf and mf.matches else "—"} | files)
    st.dataframe(rows, hide_index=True, width="stretch")
    notes = getattr(c.datasets, "notes", [])  # what discovery wants the user to know
    if notes:
        st.markdown("\n".join(f"- {md_message(n)}" for n in notes))
    odd = getattr(c.datasets, "unrecognised", [])
    if odd:
        st.markdown(f"**{len(odd)} file(s) under results/ not recognised** (the name each "
                    "would need):")
        st.dataframe([{"file": str(u.path), "expected": u.expected} for u in odd],
                     hide_index=True, width="stretch")
if c.gpr is not None:
    st.markdown(f"GPR1200: images `{c.gpr.images}` · "
                + (f"embeddings `{c.gpr.embeddings}` ({c.gpr.metric})" if c.gpr.embeddings
                   else f"indices `{c.gpr.indices}`")
                + (f" · order `{c.gpr.order}`" if c.gpr.order else ""))
elif c.gpr_error and not c.refused:
    st.info(md_message(c.gpr_error))
for msg in c.refused:
    st.error(md_message(msg), icon=":material/block:")

st.subheader("Folders this app may read")
allowed = roots.allowed_roots()
st.markdown("\n".join(f"- `{r}`" for r in allowed.folders))
st.caption(("Set when the app was started. " if allowed.configured else
            "The default: the current folder and the demo. ")
           + f"A folder or file named in the sidebar or in a link must lie inside one of "
           f"these (after resolving `..` and symlinks). To allow others, start the app "
           f"with `streamlit run app.py -- {roots.FLAG} DIR` (repeat for more) or set "
           f"`{roots.ENV}` (folders separated by `{os.pathsep}`).")

st.subheader("Using the real benchmarks")
st.markdown("""
**Revisited Oxford / Paris and PROxford / PRParis** — choose *Folder in released layout* and
enter the folder that holds both trees below (the gnd may also sit anywhere under it, e.g.
revisitop's `data/datasets/roxford5k/`):

```
<folder>/pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl
<folder>/pixel_retrieval_benchmarks/revisitop/data/roxford5k/jpg/*.jpg      (optional)
<folder>/pixel_retrieval_benchmarks/oxford_pair2labelpath.npy             (+ labelme files)
<folder>/results/image-level/<method>/roxford.npy                          (ranks)
<folder>/results/pixel-level/<method>/matching_result/proxford.npy         (polygons)
```

Paris: `rparis6k`, `paris_pair2labelpath.npy`, `rparis.npy`, `prparis.npy`. Each folder
under `results/image-level/` or `results/pixel-level/` is a method. Ranks: integer
`(n_db, n_queries)`, column q = database indices best first (R1M distractors after the
5k/6k images; truncated rankings are fine). The *Images folder* field points at the
`jpg/` folder when it is elsewhere; without images every number and chart still works
and tiles show names.

**GPR1200** — choose *GPR1200 folder*: the `images/` folder (`{category}_{name}.jpg`,
with `GPR1200_categoryNumber_to_text.json` beside or above it for category names), and
either embeddings `(12000, d)` in file order (integer category, then file name) with the
similarity, or neighbour indices `(12000, k)`. An order file (one image name per line)
maps rows saved in another order.

Every file is read by `bench` (the same readers as `python -m bench`); pickles go through a
restricted unpickler that refuses anything but containers, numbers and numpy arrays.
""")

st.subheader("Official and strict")
st.markdown("""
| | official (as the released code) | strict (this project's clean variant) |
|---|---|---|
| P@k | kq = min(largest adjusted rank, k) | hits in the top k / k |
| IoU canvas | square of side S = largest coordinate | the database image |
| mIoU, easy pair without prediction | skipped | 0 |
| mAP@k, ignored queries (PROxford 56, 63; PRParis 57, 59) | counted as AP 0 | left out |
| mAP@k IoU | bbox | bbox and seg |
| mAP@k, N at threshold t | the positives localised above t; a query with none leaves mAP_t | all the setup's positives; such a query scores AP_t = 0 |
| GPR1200 scores | the product of the embeddings in their own dtype (float32 stays float32), exact ties by index | float64, rows scaled by powers of two: copies tie, any magnitude |
""")

st.subheader("Files the app writes")
st.markdown(f"- Demo benchmark: `{default_demo_dir()}` (set `BENCH_DEMO_DIR` to move it)\n"
            f"- Thumbnail cache: `{thumbs.cache_root() / 'thumbs'}` (set `BENCH_CACHE_DIR`; "
            "safe to delete)")
st.caption("The current view is in the page address: copy the URL to share or reopen it.")
