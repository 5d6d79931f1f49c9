"""Names are text (issue 17): a benchmark whose query, image, method and GPR1200 category
and image names are HTML and Markdown payloads, opened on every page in a real browser
(`streamlit run app.py`, Playwright, Debian's /usr/bin/chromium).

On every page: no element, link, image, icon, formula or formatting made from a name
(each payload's marker appears in the page's text only inside the payload written out in
full), no JavaScript dialog, no request to another host. Study names cannot carry such
payloads: ``bench.study.store`` accepts only letters, digits, ``.``, ``_`` and ``-``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from urllib.parse import quote, urlparse

import pytest

from bench.demo import build_demo
from tests.test_browser import (  # noqa: F401 (fixtures)
    RUN_COUNTER,
    browser,
    no_exception,
    open_page,
    running_app,
    settle,
)

#: marker -> the payload carrying it. A marker may appear in the page's text only as part
#: of its whole payload (so no Markdown / HTML around it was interpreted).
PAYLOADS = {
    "PWNimg": "<img src=x onerror=alert(1)>PWNimg",
    "PWNa": "<a href=#x>PWNa",
    "PWNlink": "[PWNlink](javascript:alert(1))",
    "PWNbold": "**PWNbold**",
    "PWNem": "_PWNem_",
    "PWNred": ":red[PWNred]",
    "PWNmath": "$PWNmath$",
    "PWNcode": "`PWNcode`",
}
#: image and query names may hold a slash (``:material/…:`` icons); folder names not
ICON = ":material/warning:PWNicon"

CHECK = """(markers) => {
  const root = document.body;
  const bad = [];
  for (const img of root.querySelectorAll('img')) {
    const s = img.getAttribute('src') || '';
    if (s === 'x' || s.endsWith('/x')) bad.push('img ' + s);
  }
  for (const a of root.querySelectorAll('a')) {
    const h = (a.getAttribute('href') || '') + ' ' + (a.getAttribute('xlink:href') || '');
    if (/javascript:|#x\\b/.test(h) || a.textContent.includes('PWN')) bad.push('a ' + h);
  }
  if (root.querySelector('.katex, math')) bad.push('formula');
  for (const el of root.querySelectorAll('strong, em, b, i, code, del, span[class*=icon]')) {
    if (el.closest('[data-testid="stCode"]')) continue;  // st.code: text by construction
    const t = el.textContent.trim();
    for (const m of Object.keys(markers)) if (t.includes(m) && !t.includes(markers[m]))
      bad.push(el.tagName + ' ' + t.slice(0, 80));
  }
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let text = '';
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    // st.code shows its source as text (the LaTeX export escapes names its own way)
    const p = n.parentElement && n.parentElement.closest('script, style, [data-testid="stCode"]');
    if (!p) text += n.nodeValue + '\\u0000';
  }
  const seen = {};
  for (const [m, whole] of Object.entries(markers)) {
    const nm = text.split(m).length - 1, nw = text.split(whole).length - 1;
    seen[m] = nm;
    if (nm !== nw) bad.push(`${m}: ${nm} times, ${nw} as the whole name`);
  }
  return {bad, seen};
}"""


def _rename(path, new):
    path.rename(path.with_name(new))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The small demo with hostile names: query 0 and 1, the first ranked images of query
    0, both methods (folders), GPR1200 category names and a few GPR1200 image files."""
    base = tmp_path_factory.mktemp("hostile")
    demo = build_demo(base / "demo_src", scale="small")
    root = base / "bench"
    shutil.copytree(demo.root, root)
    gnd_path = root / demo.gnd.relative_to(demo.root)
    with open(gnd_path, "rb") as f:
        gnd = pickle.load(f)
    import numpy as np

    ranks = np.load(root / "results" / "image-level" / "local-sp" / "rdemo.npy")
    payloads = [*PAYLOADS.values(), ICON]
    gnd["qimlist"][0] = "q0 " + ICON
    gnd["qimlist"][1] = "q1 " + PAYLOADS["PWNimg"]
    top = [int(i) for i in ranks[:12, 0]]
    for n, i in enumerate(top):
        gnd["imlist"][i] = f"i{n} {payloads[n % len(payloads)]}"
    with open(gnd_path, "wb") as f:
        pickle.dump(gnd, f)
    m1 = "m1 " + PAYLOADS["PWNimg"] + " " + PAYLOADS["PWNbold"] + " " + PAYLOADS["PWNlink"]
    m2 = "m2 " + " ".join(PAYLOADS[k] for k in ("PWNa", "PWNem", "PWNred", "PWNmath",
                                                  "PWNcode"))
    for level in ("image-level", "pixel-level"):
        _rename(root / "results" / level / "local-sp", m1)
        _rename(root / "results" / level / "global-hist", m2)
    cat_file = root / demo.gpr_category_text.relative_to(demo.root)
    cats = json.loads(cat_file.read_text())
    for n, key in enumerate(sorted(cats)[:len(payloads)]):
        cats[key] = f"c{n} {payloads[n]}"
    cat_file.write_text(json.dumps(cats))
    gimages = root / demo.gpr_images.relative_to(demo.root)
    for n, p in enumerate(sorted(gimages.glob("*.jpg"))[:6]):
        cat = p.name.split("_", 1)[0]
        _rename(p, f"{cat}_{payloads[n].replace('/', ' ')}{n}.jpg")
    return {"root": root, "m1": m1, "m2": m2, "q0": 0, "top": top,
            "gimages": gimages, "gemb": root / demo.gpr_embeddings.relative_to(demo.root)}


@pytest.fixture(scope="module")
def server(hostile, tmp_path_factory):
    env = dict(os.environ, BENCH_DATA_ROOTS=str(hostile["root"]),
               BENCH_DEMO_DIR=str(hostile["root"].parent / "demo_src"),
               BENCH_CACHE_DIR=str(tmp_path_factory.mktemp("names_cache")),
               BENCH_STUDY_DIR=str(tmp_path_factory.mktemp("names_studies")))
    log = tmp_path_factory.mktemp("names_log") / "streamlit.log"
    with running_app(env, log) as url:
        yield url


def pages(h) -> list[tuple[str, str]]:
    s = f"src=folder&root={quote(str(h['root']))}"
    m1, m2 = quote(h["m1"]), quote(h["m2"])
    g = (f"src=gpr&gimages={quote(str(h['gimages']))}&gfile={quote(str(h['gemb']))}")
    return [("Overview", f"/?{s}&m={m1}"), ("Overview", f"/?{s}&m={m2}"),
            ("Query", f"/query?{s}&m={m1}&q=0"), ("Query", f"/query?{s}&m={m1}&m2={m2}&q=0"),
            ("Query", f"/query?{s}&m={m2}&q=1"),
            ("Pair", f"/pair?{s}&m={m1}&q=0&i={h['top'][1]}"),
            ("Pair", f"/pair?{s}&m={m1}&m2={m2}&q=0&i={h['top'][2]}&mode=side"),
            ("Errors", f"/errors?{s}&m={m1}"), ("Compare", f"/compare?{s}&m={m1}&m2={m2}"),
            ("GPR1200", f"/gpr1200?{g}"), ("Overview", f"/?{g}"),
            ("Data & help", f"/data?{s}&m={m1}"), ("User study", f"/study?{s}")]


def test_every_page_shows_hostile_names_as_text(browser, server, hostile):  # noqa: F811
    pg = browser.new_page(viewport={"width": 1366, "height": 900})
    pg.add_init_script(RUN_COUNTER)
    pg.set_default_timeout(60_000)
    trouble: list[str] = []
    host = urlparse(server).netloc
    pg.on("dialog", lambda d: (trouble.append(f"dialog {d.message}"), d.dismiss()))
    pg.on("request", lambda r: trouble.append(f"request {r.url}")
          if urlparse(r.url).scheme in ("http", "https") and urlparse(r.url).netloc != host
          else None)
    markers = {**PAYLOADS, "PWNicon": ICON}
    seen_anywhere: dict[str, int] = dict.fromkeys(markers, 0)
    try:
        for title, path in pages(hostile):
            open_page(pg, server + path)
            pg.wait_for_timeout(1500)  # the deferred charts
            settle(pg)
            assert pg.locator("h1").first.inner_text().strip().startswith(title), path
            no_exception(pg)
            out = pg.evaluate(CHECK, markers)
            assert not out["bad"], (path, out["bad"][:8])
            for m, n in out["seen"].items():
                seen_anywhere[m] += n
    finally:
        pg.close()
    assert not trouble, trouble[:5]
    # the payloads were really on the pages (as text), each of them somewhere
    assert all(n > 0 for n in seen_anywhere.values()), seen_anywhere
