"""The Streamlit app, run headless with AppTest on a small demo (built once per session).

Every number the app shows must be bench's number: the tests compute the expected values
with the engine directly and compare the displayed percentages.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.demo import build_demo
from bench.evaluate import load_pixel_inputs, run_gpr1200
from bench.formats.revisited import load_gnd, load_ranks
from bench.metrics.pixel import evaluate_pixel
from bench.metrics.revisited import evaluate_revisited, scan_ranks

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The small demo, built once per test session (shared with the other app tests)."""
    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


@pytest.fixture(autouse=True)
def demo_env(small_demo, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "app_cache"))


@pytest.fixture(scope="session")
def expected(small_demo):
    """Engine numbers for both methods and protocols."""
    g = load_gnd(small_demo.gnd)
    out = {"gnd": g}
    for name, files in small_demo.methods.items():
        scan = scan_ranks(load_ranks(files["ranks"], g), g)
        inputs = load_pixel_inputs(g, pair_labels=small_demo.pair_labels,
                                   labels_root=small_demo.labels_root, matches=files["matches"])
        for proto in ("official", "strict"):
            out[name, proto, "rev"] = evaluate_revisited(scan, g, protocol=proto)
            out[name, proto, "pix"] = evaluate_pixel(g, inputs.gt, inputs.preds, ranks=scan,
                                                     protocol=proto, image_sizes=inputs.sizes)
        out[name, "ranks"] = load_ranks(files["ranks"], g)
    out["gpr"] = run_gpr1200(small_demo.gpr_images, embeddings=small_demo.gpr_embeddings)
    return out


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def app(*, first_run: bool = False, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    for k, v in params.items():
        at.query_params[k] = str(v)
    if not first_run:  # skip the charts' deferral on a session's first run (see below)
        at.session_state["_painted"] = True
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def page(at: AppTest, name: str) -> AppTest:
    return ok(at.switch_page(f"pages/{name}.py").run())


# ---------------------------------------------------------------- overview

def test_overview_shows_the_engine_numbers(expected):
    at = ok(app())
    assert [t.value for t in at.title] == ["Overview"]
    m = metrics(at)
    method = at.selectbox(key="w_m").value
    rev = expected[method, "official", "rev"]
    for setup in ("easy", "medium", "hard"):
        assert m[f"mAP · {setup}"] == [pct(rev[setup].mAP)]
    pix = expected[method, "official", "pix"]
    assert m["mIoU bbox"] == [pct(pix.setups[s].miou_bbox) for s in ("medium", "hard")]
    assert m["mIoU seg"] == [pct(pix.setups[s].miou_seg) for s in ("medium", "hard")]
    assert m["mAP@k"] == [pct(pix.setups[s].map_at_k) for s in ("medium", "hard")]
    imgs, gres = expected["gpr"]
    assert m["mAP"] == [pct(gres.mAP)]
    assert m["landmarks"] == [pct(gres.subsets["landmarks"])]
    # the key widgets of the sidebar and the page
    for key in ("w_src", "w_proto", "w_setup", "w_qv"):
        assert at.radio(key=key) is not None
    assert at.selectbox(key="w_ds").value == "rdemo"
    assert at.selectbox(key="w_q_open") is not None and at.selectbox(key="w_q_pr") is not None
    assert any("Official vs strict" in s.value for s in at.subheader)
    assert any("synthetic" in c.value for c in at.caption)


def test_first_start_builds_the_demo(tmp_path, monkeypatch):
    from bench.demo import demo_is_built

    root = tmp_path / "fresh_demo"
    monkeypatch.setenv("BENCH_DEMO_DIR", str(root))
    monkeypatch.setenv("BENCH_DEMO_SCALE", "small")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["_painted"] = True
    ok(at.run())
    assert demo_is_built(root)
    assert "mAP · medium" in metrics(at)


def test_first_run_defers_the_charts_then_draws_them():
    at = ok(app(first_run=True))
    assert "mAP · medium" in metrics(at)  # the cards come at once
    assert not at.get("plotly_chart")
    assert "Loading charts" in " ".join(c.value for c in at.caption)
    ok(at.run())  # what the fragment's timer does in a browser
    assert len(at.get("plotly_chart")) == 4


def test_protocol_and_method_switch(expected):
    at = ok(app())
    at.radio(key="w_proto").set_value("strict").run()
    ok(at)
    method = at.selectbox(key="w_m").value
    pix = expected[method, "strict", "pix"]
    m = metrics(at)
    assert m["mIoU bbox"] == [pct(pix.setups[s].miou_bbox) for s in ("medium", "hard")]
    assert m["mAP@k seg"] == [pct(pix.setups[s].map_at_k_seg) for s in ("medium", "hard")]
    assert at.query_params.get("proto") in ("strict", ["strict"])
    other = next(n for n in ("local-sp", "global-hist") if n != method)
    at.selectbox(key="w_m").select(other).run()
    ok(at)
    rev = expected[other, "strict", "rev"]
    assert metrics(at)["mAP · medium"] == [pct(rev["medium"].mAP)]
    assert "mP@10" in " ".join(c.value for c in at.caption)


def test_url_opens_the_same_view(expected):
    at = ok(app(m="local-sp", proto="strict", setup="hard", q=2))
    assert at.selectbox(key="w_m").value == "local-sp"
    assert at.radio(key="w_proto").value == "strict"
    assert at.radio(key="w_setup").value == "hard"
    assert at.selectbox(key="w_q_open").value == 2
    # nonsense in the URL falls back to the defaults
    at = ok(app(q="abc", proto="weird", mode="x", opacity="nan"))
    assert at.radio(key="w_proto").value == "official"


# ---------------------------------------------------------------- query and pair

def test_query_page_switching_queries(expected):
    at = page(app(m="local-sp"), "query")
    g = expected["gnd"]
    rev = expected["local-sp", "official", "rev"]["medium"]
    assert at.selectbox(key="w_q").value == 0
    assert at.slider(key="w_k").value == 20
    n_db = g.n_db
    k = min(20, n_db)
    assert len([b for b in at.button if b.key.startswith("pair_")]) == k
    assert metrics(at)["AP · medium"] == [pct(rev.ap[0])]
    at.button(key="next_q").click().run()
    ok(at)
    assert at.selectbox(key="w_q").value == 1
    assert metrics(at)["AP · medium"] == [pct(rev.ap[1])]
    at.button(key="prev_q").click().run()
    assert ok(at).selectbox(key="w_q").value == 0
    at.selectbox(key="w_q").select(3).run()
    assert ok(at).selectbox(key="w_q").value == 3
    at.slider(key="w_k").set_value(5).run()
    ok(at)
    assert len([b for b in at.button if b.key.startswith("pair_")]) == 5
    # positives ranked below 5 are listed as missed, each with its rank
    ranks = expected["local-sp", "ranks"][:, 3].tolist()
    pos = np.concatenate([g.easy[3], g.hard[3]]).tolist()
    below = sorted(ranks.index(i) + 1 for i in pos if ranks.index(i) + 1 > 5)
    if below:
        text = " ".join(m.value for m in at.markdown)
        assert f"{len(below)} positive" in text
        for r in below:
            assert f"**#{r}**" in text
    # switching the method keeps the query
    at.selectbox(key="w_m").select("global-hist").run()
    ok(at)
    assert at.selectbox(key="w_q").value == 3


def test_from_a_query_to_a_pair(expected):
    at = page(app(m="local-sp", q=1), "query")
    db = int(expected["local-sp", "ranks"][2, 1])
    at.button(key="pair_3").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Pair"]
    assert at.session_state["s_i"] == db and at.session_state["s_q"] == 1


@pytest.mark.parametrize("mode", ["overlay", "errors", "side"])
def test_pair_page_modes(expected, mode):
    g = expected["gnd"]
    q, i = 0, int(g.hard[0][0])
    at = page(app(m="local-sp", q=q, i=i, mode=mode), "pair")
    assert [t.value for t in at.title] == ["Pair"]
    assert at.selectbox(key="w_i").value == i
    assert at.radio(key="w_mode").value == mode
    assert at.slider(key="w_opacity") is not None
    assert len(at.get("download_button")) == 1
    assert len(at.image) >= 1
    table = at.table[0].value
    for proto in ("official", "strict"):
        v = expected["local-sp", proto, "pix"].pairs.get((q, i))
        want = [pct(v[0]), pct(v[1])] if v else ["not scored", "not scored"]
        assert table[proto].tolist() == want
    if mode == "errors" and expected["local-sp", "official", "pix"].pairs.get((q, i)):
        assert "true positive" in " ".join(m.value for m in at.markdown)
    at.button(key="next_pair").click().run()
    ok(at)
    assert at.selectbox(key="w_i").value != i or len(at.selectbox(key="w_i").options) == 1


def test_pair_page_of_a_negative_and_switching_query(expected):
    g = expected["gnd"]
    labelled = set(np.concatenate([g.easy[0], g.hard[0], g.junk[0]]).tolist())
    neg = next(i for i in range(g.n_db) if i not in labelled)
    at = page(app(q=0, i=neg), "pair")
    assert at.selectbox(key="w_i").value == neg
    assert "No ground-truth region" in " ".join(c.value for c in at.caption)
    at.selectbox(key="w_q_pair").select(1).run()
    ok(at)
    first = at.selectbox(key="w_i").value
    assert first in set(np.concatenate([g.easy[1], g.hard[1]]).tolist())


# ---------------------------------------------------------------- GPR1200 and data

def test_gpr_page(expected):
    imgs, res = expected["gpr"]
    at = page(app(), "gpr")
    m = metrics(at)
    assert m["mAP"] == [pct(res.mAP)]
    assert m["AP of this image"] == [pct(res.ap[0])]
    cats = sorted(set(imgs.categories.tolist()))
    at.selectbox(key="w_gcat").select(cats[2]).run()
    ok(at)
    gq = at.session_state["s_gq"]
    assert imgs.categories[gq] == cats[2]
    assert metrics(at)["AP of this image"] == [pct(res.ap[gq])]
    at.slider(key="w_gk").set_value(5).run()
    assert len(ok(at).image) >= 5


def test_data_page_lists_the_files(small_demo):
    at = page(app(), "data")
    assert [t.value for t in at.title] == ["Data & help"]
    df = at.dataframe[0].value
    assert set(df["dataset"]) == {"rdemo"}
    assert set(df["method"]) == {"local-sp", "global-hist"}
    assert str(small_demo.gnd) in set(df["gnd"])


def test_gpr_source(small_demo):
    at = ok(app(src="gpr"))
    assert "no Revisited" in " ".join(i.value for i in at.info) or at.info
    at.text_input(key="w_gimages").input(str(small_demo.gpr_images)).run()
    at.text_input(key="w_gfile").input(str(small_demo.gpr_embeddings)).run()
    ok(at)
    assert "mAP" in metrics(at)
    at = page(at, "gpr")
    assert "AP of this image" in metrics(at)
    at.text_input(key="w_gfile").input(str(small_demo.gnd)).run()  # not embeddings
    ok(at)
    assert str(small_demo.gnd) in errors(at)


# ---------------------------------------------------------------- errors

def test_bad_folder_gives_an_error_and_the_app_keeps_working():
    at = ok(app())
    at.radio(key="w_src").set_value("folder").run()
    ok(at)
    assert "Enter the folder" in errors(at)
    at.text_input(key="w_root").input("/nonexistent/benchmarks").run()
    ok(at)
    assert "missing folder in /nonexistent/benchmarks" in errors(at)
    for name in ("query", "pair", "gpr", "data"):
        page(at, name)
    at.radio(key="w_src").set_value("demo").run()
    assert not ok(at).error
    assert "mAP · medium" in metrics(page(at, "overview"))


@pytest.fixture
def demo_copy(small_demo, tmp_path):
    root = tmp_path / "bench"
    shutil.copytree(small_demo.root, root)
    return root


def test_results_file_that_does_not_match(demo_copy):
    ranks = demo_copy / "results" / "image-level" / "local-sp" / "rdemo.npy"
    np.save(ranks, np.zeros((3, 7), dtype=np.int64))  # another dataset's shape
    at = ok(app(src="folder", root=demo_copy, m="local-sp"))
    assert "wrong array shape" in errors(at) and str(ranks) in errors(at)
    page(at, "query")
    assert str(ranks) in errors(at)
    at.selectbox(key="w_m").select("global-hist").run()
    assert not ok(at).error


def test_refused_pickle(demo_copy):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    gnd = next(demo_copy.rglob("gnd_rdemo.pkl"))
    gnd.write_bytes(pickle.dumps({"imlist": [], "qimlist": [], "gnd": Evil()}))
    at = ok(app(src="folder", root=demo_copy))
    assert "refused" in errors(at) and str(gnd) in errors(at)
    page(at, "query")
    assert "refused" in errors(at)


def test_without_images_metrics_and_tiles_still_work(demo_copy):
    shutil.rmtree(next(demo_copy.rglob("jpg")))
    at = ok(app(src="folder", root=demo_copy, m="local-sp"))
    assert "mAP · medium" in metrics(at)
    at = page(at, "query")
    assert len(at.image) >= 2  # placeholder tiles
    assert "No images folder" in " ".join(c.value for c in at.caption)
    at = page(at, "pair")
    at.radio(key="w_mode").set_value("errors").run()
    ok(at)
    at.radio(key="w_mode").set_value("side").run()
    ok(at)
