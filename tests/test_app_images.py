"""Pages that show images, with a decompression-size bomb in the data (issue 19 item 2).

A 13000 x 13000 RGBA PNG of 657 KB replaces a query image, a database image of a scored
pair and a GPR1200 image of a demo copy. Every page that shows images keeps working and
shows a placeholder whose text names the file's size (docs/PROTOCOLS.md §8 rule 9); the
page-level image functions are checked one by one, and the pages run under AppTest.
Memory is measured by ``tests/test_hostile.py`` (the refusal reads only the header).
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from bench import render, thumbs
from bench.evaluate import load_pixel_inputs
from bench.formats.revisited import load_gnd
from tests import fixtures
from tests.test_app import app, demo_env, ok, page, small_demo, text_of  # noqa: F401 (fixtures)

pytest.importorskip("streamlit")

SIZE_TEXT = "13,000 x 13,000 px"
NOTE = f"too large: {SIZE_TEXT} (cap 40.0 MP)"


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return fixtures.write_constant_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 13000,
                                       13000)


@pytest.fixture
def bombed(small_demo, tmp_path, bomb):  # noqa: F811
    """A demo copy whose query 0 image, a database image of a scored pair of query 0 and
    the first GPR1200 image are the bomb (under their own names)."""
    root = tmp_path / "bench"
    shutil.copytree(small_demo.root, root)
    g = load_gnd(next(root.rglob("gnd_rdemo.pkl")))
    images = next(root.rglob("jpg"))
    inputs = load_pixel_inputs(g, pair_labels=next(root.rglob("demo_pair2labelpath.npy")),
                               labels_root=root / "pixel_retrieval_benchmarks",
                               matches=next(root.rglob("prdemo.npy")))
    q = 0
    i = next(int(i) for i in np.concatenate([g.hard[q], g.easy[q]]).tolist()
             if inputs.preds.get((q, int(i))) is not None)
    shutil.copyfile(bomb, images / f"{g.qimlist[q]}.jpg")
    shutil.copyfile(bomb, images / f"{g.imlist[i]}.jpg")
    gpr = sorted((root / "gpr1200" / "images").iterdir())[0]
    shutil.copyfile(bomb, gpr)
    return {"root": root, "g": g, "q": q, "i": i, "images": images, "gpr": gpr,
            "inputs": inputs}


def plain(at) -> str:
    """The page's text with Markdown escapes undone (captions escape ``\\``, ``:``)."""
    return text_of(at).replace("\\", "").replace("&#58;", ":")


def _placeholder_tile(name: str, color, badge=None, size=thumbs.TILE_PX) -> bytes:
    img = render.placeholder(name, size=thumbs.THUMB_PX, note=NOTE)
    return render.jpeg_bytes(render.framed(img, color, size=size, badge=badge), quality=88)


def test_page_level_image_functions_give_a_placeholder_with_the_size(bombed):
    from bench.app import loaders, views
    from bench.workspace import DatasetFiles

    g, q, i = bombed["g"], bombed["q"], bombed["i"]
    ds = DatasetFiles(name="rdemo", short="demo", gnd=g.path, images=bombed["images"])
    qname, iname = g.qimlist[q], g.imlist[i]
    ipath = bombed["images"] / f"{iname}.jpg"
    # the query image (Query page, Pair page's side view)
    for fn in (views.query_view, views.query_crop):
        img, cap = fn(ds, g, q)
        assert f"image too large in {bombed['images'] / (qname + '.jpg')}: {SIZE_TEXT}" in cap
        assert img.size[0] <= 320
    # grid tiles: plain (Query, GPR1200) and with regions (Query, Errors gallery)
    color = render.LABEL_COLORS["hard"]
    assert thumbs.tile_jpeg(ipath, iname, color, badge="#1") == _placeholder_tile(
        iname, color, "#1")
    key = (q, i)
    tile = loaders.mask_tile(ipath, iname, color, "#1", bombed["inputs"].gt.get(key),
                             bombed["inputs"].preds.get(key), bombed["inputs"].sizes.get(key),
                             "both")
    assert tile == _placeholder_tile(iname, color, "#1")
    # the pair view and the study's trials: an error naming the file and its size
    with pytest.raises(Exception, match=f"image too large in {ipath}: {SIZE_TEXT}"):
        thumbs.load_scaled(ipath, max_side=1600)
    assert thumbs.open_image(ipath, max_side=1280) is None  # participant: "cannot be shown"
    # the placeholder is a drawn tile, not a blank
    from PIL import Image

    colours = Image.open(io.BytesIO(tile)).convert("RGB").getcolors(1 << 16)
    assert colours is None or len(colours) > 10


def test_pages_show_the_placeholder_and_keep_working(bombed):
    root, g, q, i = bombed["root"], bombed["g"], bombed["q"], bombed["i"]
    at = ok(app(src="folder", root=root, m="local-sp", q=q))
    at = page(at, "query")
    assert SIZE_TEXT in plain(at)  # the query image's caption
    assert len(at.image) >= 2
    at = page(app(src="folder", root=root, m="local-sp", q=q, i=i), "pair")
    for mode in ("overlay", "errors", "side"):
        at.radio(key="w_mode").set_value(mode).run()
        ok(at)
        text = plain(at)
        assert f"image too large in {bombed['images'] / (g.imlist[i] + '.jpg')}" in text
        assert SIZE_TEXT in text and "blank canvas" in text
        assert len(at.image) >= 1
    at = page(app(src="folder", root=root, m="local-sp"), "errors")
    assert len(at.image) >= 1
    at = ok(app(src="gpr", gimages=root / "gpr1200" / "images",
                gfile=root / "gpr1200" / "embeddings" / "global.npy"))
    at = page(at, "gpr1200")
    assert len(at.image) >= 2
