"""The Streamlit app, run headless with AppTest on a small demo (built once per session).

Every number the app shows must be bench's number: the tests compute the expected values
with the engine directly and compare the displayed percentages.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
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
    # the data roots: this session's temporary folders (every test's demo copy is there)
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))


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


def shown(markdown: str) -> str:
    """The text a Markdown source shows, for the escapes the app puts around names
    (bench.app.format.md): backslash escapes dropped, character references decoded."""
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
    for ref, ch in (("&#58;", ":"), ("&#36;", "$"), ("&#91;", "["), ("&amp;", "&")):
        text = text.replace(ref, ch)
    return text


def errors(at: AppTest) -> str:
    return shown("\n".join(e.value for e in at.error))


def page(at: AppTest, name: str) -> AppTest:
    return ok(at.switch_page(f"pages/{name}.py").run())


def stay_on(at: AppTest, name: str) -> None:
    """After the app itself switched pages (``st.switch_page``), keep the next runs on the
    new page: AppTest otherwise reruns the page its own ``switch_page`` chose last (a
    browser stays on the new page's URL)."""
    at.switch_page(f"pages/{name}.py")


def text_of(at: AppTest) -> str:
    """Every piece of text the page shows (markdown, captions, alerts, tables, code)."""
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info",
                                  "success", "code", "title", "subheader")
             for e in at.get(kind)]
    parts += [str(t.value.to_dict()) for t in at.table]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    return shown("\n".join(str(p) for p in parts))


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
    # official vs strict: one collapsed line that says how many numbers differ
    summary = [e for e in at.expander if e.label.startswith("Official vs strict: ")]
    assert len(summary) == 1 and ("numbers differ" in summary[0].label
                                  or "the same" in summary[0].label)
    assert not summary[0].proto.expanded
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
    assert at.selectbox(key="w_k").value == 20
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
    # a query with positives ranked below 5: they are listed as missed, with their ranks
    ranks = expected["local-sp", "ranks"]

    def below(q: int) -> list[int]:
        col = ranks[:, q].tolist()
        pos = np.concatenate([g.easy[q], g.hard[q]]).tolist()
        return sorted(col.index(i) + 1 for i in pos if col.index(i) + 1 > 5)

    q3 = next(q for q in range(1, g.n_queries) if below(q))
    at.selectbox(key="w_q").select(q3).run()
    assert ok(at).selectbox(key="w_q").value == q3
    at.selectbox(key="w_k").select(5).run()
    ok(at)
    assert len([b for b in at.button if b.key.startswith("pair_")]) == 5
    text = " ".join(m.value for m in at.markdown)
    assert [e.label for e in at.expander if e.label.startswith("Missed: ")] == [
        f"Missed: {len(below(q3))} positive{'s' if len(below(q3)) > 1 else ''} ranked below 5"]
    for r in below(q3):
        assert f"**#{r}**" in text
    # switching the method keeps the query
    at.selectbox(key="w_m").select("global-hist").run()
    ok(at)
    assert at.selectbox(key="w_q").value == q3


def test_from_a_query_to_a_pair(expected):
    at = page(app(m="local-sp", q=1), "query")
    db = int(expected["local-sp", "ranks"][2, 1])
    at.button(key="pair_3").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Pair"]
    assert at.session_state["s_i"] == db and at.session_state["s_q"] == 1


@pytest.mark.parametrize("mode", ["overlay", "errors", "side"])
def test_pair_page_modes(expected, mode):
    # a hard pair the method predicted a region for
    q, i = min(k for k in expected["local-sp", "official", "pix"].pairs
               if k[1] in set(expected["gnd"].hard[k[0]].tolist()))
    at = page(app(m="local-sp", q=q, i=i, mode=mode), "pair")
    assert [t.value for t in at.title] == ["Pair"]
    assert at.selectbox(key="w_i").value == i
    assert at.radio(key="w_mode").value == mode
    assert at.slider(key="w_opacity") is not None
    assert len(at.get("download_button")) == 1
    assert len(at.image) >= 1
    table = at.table[0].value
    for proto in ("official", "strict"):
        v = expected["local-sp", proto, "pix"].pairs[q, i]
        assert table[proto].tolist() == [pct(v[0]), pct(v[1])]
    if mode == "errors":
        assert "true positive" in " ".join(m.value for m in at.markdown)
    at.button(key="next_pair").click().run()
    ok(at)
    assert at.selectbox(key="w_i").value != i or len(at.selectbox(key="w_i").options) == 1


def test_pair_page_of_a_negative_and_switching_query(expected):
    g = expected["gnd"]
    labelled = set(np.concatenate([g.easy[0], g.hard[0], g.junk[0]]).tolist())
    neg = next(i for i in range(g.n_db) if i not in labelled)
    at = page(app(q=0, i=neg, m="local-sp"), "pair")
    assert at.selectbox(key="w_i").value == neg
    rank = expected["local-sp", "ranks"][:, 0].tolist().index(neg) + 1
    shown = text_of(at)
    assert "label **negative**" in shown and f"rank **{rank}**" in shown
    assert "no ground-truth region and no IoU" in shown
    assert not at.table  # a negative has no IoU to show
    at.selectbox(key="w_q_pair").select(1).run()
    ok(at)
    first = at.selectbox(key="w_i").value
    assert first in set(np.concatenate([g.easy[1], g.hard[1]]).tolist())


# ---------------------------------------------------------------- GPR1200 and data

def test_gpr_page(expected):
    imgs, res = expected["gpr"]
    at = page(app(), "gpr1200")
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
    assert "Enter the GPR1200 images folder" in " ".join(i.value for i in at.info)
    at.text_input(key="w_gimages").input(str(small_demo.gpr_images)).run()
    at.text_input(key="w_gfile").input(str(small_demo.gpr_embeddings)).run()
    ok(at)
    assert "mAP" in metrics(at)
    at = page(at, "gpr1200")
    assert "AP of this image" in metrics(at)
    at.text_input(key="w_gfile").input(str(small_demo.gnd)).run()  # not embeddings
    ok(at)
    assert str(small_demo.gnd) in errors(at)


# ---------------------------------------------------------------- errors

def test_bad_folder_gives_an_error_and_the_app_keeps_working(tmp_path, small_demo):
    at = ok(app())
    at.radio(key="w_src").set_value("folder").run()
    ok(at)
    # nothing chosen yet: one message, an empty state that says what to do, no error;
    # the benchmark folders found under the data roots (here: the demo) to pick from
    assert not at.error
    assert [i.value for i in at.info if "Choose a benchmark folder" in i.value]
    assert str(small_demo.root.resolve()) in at.selectbox(key="w_root_pick").options
    missing = tmp_path / "nonexistent" / "benchmarks"  # inside the data roots
    at.text_input(key="w_root").input(str(missing)).run()
    ok(at)
    assert f"missing folder in {missing}" in errors(at)
    for name in ("query", "pair", "gpr1200", "data"):
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


# ---------------------------------------------------------------- legacy pages/ mode

PAGE_TITLES = {"pages/overview.py": "Overview", "pages/query.py": "Query",
               "pages/pair.py": "Pair", "pages/errors.py": "Errors",
               "pages/compare.py": "Compare",
               "pages/gpr1200.py": "GPR1200",
               "pages/study.py": "User study: do pixel-level results help?",
               "pages/data.py": "Data & help"}


def test_every_page_is_registered_and_named_by_its_url():
    from bench.app import routing

    files = {f"pages/{p.name}" for p in (Path(APP).parent / "pages").glob("*.py")}
    assert {p.path for p in routing.PAGES} == files == set(PAGE_TITLES)
    for spec in routing.PAGES:  # the legacy mode finds a page by its file name
        assert spec.url_path == ("" if spec.default else Path(spec.path).stem)


def test_every_page_file_starts_with_ensure_routed():
    import ast

    for name in PAGE_TITLES:
        tree = ast.parse((Path(APP).parent / name).read_text())
        body = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))
                and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        first = body[0]
        assert (isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
                and ast.unparse(first.value) == "routing.ensure_routed()"), name


@pytest.mark.parametrize("path", list(PAGE_TITLES))
def test_legacy_pages_mode_first_request_runs_through_the_router(path):
    """AppTest starts every run as a fresh server does (PagesManager.uses_pages_directory
    reset, pages/ present): a session whose first request is a page URL has the page file
    run on its own. bench.app.routing.ensure_routed must hand it to the router: the sidebar is
    there and Streamlit's legacy mode is off afterwards."""
    from streamlit.runtime.pages_manager import PagesManager

    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["_painted"] = True
    at.switch_page(path)  # before the first run: the page is found by its file name
    ok(at.run())
    assert [t.value for t in at.title] == [PAGE_TITLES[path]]
    assert at.radio(key="w_src").value == "demo"  # the sidebar of app.py
    assert at.selectbox(key="w_ds").value == "rdemo"
    # the Streamlit internals bench/app/routing.py relies on (fails when an upgrade changes them)
    assert PagesManager.uses_pages_directory is False


# ---------------------------------------------------------------- data roots

def test_allowed_roots_from_the_launcher_and_the_environment(tmp_path, monkeypatch):
    from bench.app import roots

    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    monkeypatch.chdir(c)
    r = roots.allowed_roots(argv=["--data-root", str(a), "--other", "x", "--data-root",
                                  str(b)], env="")
    assert r.configured and r.folders[:2] == (a.resolve(), b.resolve())
    r = roots.allowed_roots(argv=[], env=f"{a}{os.pathsep}{b}")
    assert r.folders[:2] == (a.resolve(), b.resolve())
    r = roots.allowed_roots(argv=[], env="")
    assert not r.configured and r.folders[0] == c.resolve()  # default: current folder
    assert any(f == Path(os.environ["BENCH_DEMO_DIR"]).resolve() for f in r.folders)


def test_paths_outside_the_roots_are_refused(tmp_path):
    from bench.app import roots

    inside = tmp_path / "data"
    (inside / "sub").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (inside / "link").symlink_to(outside)
    r = roots.Roots((inside.resolve(),), configured=True)
    assert roots.check(str(inside / "sub"), "Folder", r) == (inside / "sub").resolve()
    assert roots.check(str(inside / "missing.npy"), "File", r) == inside / "missing.npy"
    for bad in (str(outside), str(inside / ".." / "secret"), str(inside / "link"),
                str(inside / "link" / "x.npy"), "/etc/shadow", "/"):
        with pytest.raises(roots.RootRefused) as e:
            roots.check(bad, "Order file", r)
        assert "--data-root" in str(e.value) and "BENCH_DATA_ROOTS" in str(e.value)


def test_image_names_cannot_leave_the_images_folder(tmp_path):
    from bench.app import loaders
    from bench.workspace import DatasetFiles
    from tests.fixtures import write_tiny_jpeg

    images = tmp_path / "jpg"
    write_tiny_jpeg(images / "a.jpg")
    write_tiny_jpeg(tmp_path / "outside.jpg")
    (images / "sneaky.jpg").symlink_to(tmp_path / "outside.jpg")
    ds = DatasetFiles(name="x", short="x", gnd=tmp_path / "gnd_x.pkl", images=images)
    assert loaders.image_path(ds, "a") == images / "a.jpg"
    assert loaders.image_path(ds, "../outside") is None
    assert loaders.image_path(ds, str(tmp_path / "outside.jpg")) is None
    assert loaders.image_path(ds, "sneaky") is None


@pytest.fixture
def secret_outside():
    """A file outside every data root (not under the test session's temp folder)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-outside-"))
    secret = folder / "shadow"
    secret.write_text("root:SECRET-HASH-FROM-OUTSIDE:19000:0:99999:7:::\n")
    yield secret
    shutil.rmtree(folder)


def test_url_naming_a_file_outside_the_roots_shows_nothing_of_it(small_demo, secret_outside):
    for order in (secret_outside, "/etc/shadow"):
        at = ok(app(src="gpr", gimages=small_demo.gpr_images, gfile=small_demo.gpr_embeddings,
                    order=order))
        at = page(at, "gpr1200")
        shown = text_of(at)
        assert "SECRET" not in shown and "root:" not in shown
        assert f"Order file `{order}` is outside the data folders" in errors(at)
        assert "--data-root" in errors(at)
        assert not metrics(at)  # nothing was evaluated
    # a folder outside (and one that escapes a root through '..')
    for root in ("/etc", f"{small_demo.root}/../../../../../../etc"):
        at = ok(app(src="folder", root=root))
        assert "is outside the data folders" in errors(at)
        assert "missing folder" not in errors(at) and not metrics(at)
        at = page(at, "query")
        assert "is outside the data folders" in errors(at)


def test_deep_links_inside_the_roots_keep_working(small_demo, expected, tmp_path):
    imgs, res = expected["gpr"]
    order = tmp_path / "order.txt"
    order.write_text("\n".join(imgs.names) + "\n")
    at = page(ok(app(src="gpr", gimages=small_demo.gpr_images,
                     gfile=small_demo.gpr_embeddings, order=order)), "gpr1200")
    assert not at.error
    assert metrics(at)["mAP"] == [pct(res.mAP)]


# ---------------------------------------------------------------- pair page bugs

def _move_to_top(ranks_file: Path, q: int, db: int) -> np.ndarray:
    r = np.load(ranks_file)
    col = [db] + [x for x in r[:, q].tolist() if x != db]
    r[:, q] = col
    np.save(ranks_file, r)
    return r


def test_a_negative_ranked_first_on_the_pair_page(demo_copy, expected):
    g = expected["gnd"]
    labelled = set(np.concatenate([g.easy[0], g.hard[0], g.junk[0]]).tolist())
    neg = next(i for i in range(g.n_db) if i not in labelled)
    ranks_file = demo_copy / "results" / "image-level" / "local-sp" / "rdemo.npy"
    r = _move_to_top(ranks_file, 0, neg)
    at = page(app(src="folder", root=demo_copy, m="local-sp", q=0), "query")
    at.button(key="pair_1").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Pair"] and at.session_state["s_i"] == neg
    shown = text_of(at)
    assert "label **negative**" in shown and "rank **1**" in shown
    assert "not in the ranking" not in shown
    assert at.button(key="prev_pair").disabled and not at.button(key="next_pair").disabled
    stay_on(at, "pair")
    at.button(key="next_pair").click().run()  # through the ranking: rank 2
    ok(at)
    assert at.session_state["s_i"] == int(r[1, 0])
    assert "rank **2**" in text_of(at)


def test_a_distractor_pair_opens_itself(demo_copy, expected):
    g = expected["gnd"]
    n_db, n_q = g.n_db, g.n_queries
    ranks_file = demo_copy / "results" / "image-level" / "local-sp" / "rdemo.npy"
    r = np.load(ranks_file)
    extra = np.tile(np.arange(n_db, n_db + 3)[:, None], (1, n_q))  # three distractors
    r = np.concatenate([r, extra])
    col = [n_db + 1] + [x for x in r[:, 0].tolist() if x != n_db + 1]
    r[:, 0] = col
    np.save(ranks_file, r)
    at = page(app(src="folder", root=demo_copy, m="local-sp", q=0), "query")
    at.button(key="pair_1").click().run()
    ok(at)
    assert [t.value for t in at.title] == ["Pair"]
    assert at.session_state["s_i"] == n_db + 1
    assert at.selectbox(key="w_i").value == n_db + 1
    shown = text_of(at)
    assert "label **negative (distractor)**" in shown and "rank **1**" in shown
    stay_on(at, "pair")
    at.button(key="next_pair").click().run()
    assert ok(at).session_state["s_i"] == int(r[1, 0])


def test_pairs_without_prediction_show_how_they_count(demo_copy, expected):
    from bench.formats.safe_pickle import load_npy
    from tests.fixtures import write_matching_result

    g = expected["gnd"]
    pairs = expected["local-sp", "official", "pix"].pairs
    q = next(q for q in range(g.n_queries)
             if any((q, i) in pairs for i in g.hard[q].tolist())
             and any((q, i) in pairs for i in g.easy[q].tolist()))
    hard = next(i for i in g.hard[q].tolist() if (q, i) in pairs)
    easy = next(i for i in g.easy[q].tolist() if (q, i) in pairs)
    matches = demo_copy / "results" / "pixel-level" / "local-sp" / "matching_result" / "prdemo.npy"
    d = load_npy(matches)
    for i in (hard, easy):
        del d[f"qimlist_{q}_imlist_{i}"]
    write_matching_result(matches, d)

    at = page(app(src="folder", root=demo_copy, m="local-sp", q=q, i=hard), "pair")
    table = at.table[0].value
    assert table["official"].tolist() == ["0.00% (no IoU: counts as 0)"] * 2
    assert table["strict"].tolist() == ["0.00% (no IoU: counts as 0)"] * 2
    assert "not scored" not in text_of(at)
    at = page(app(src="folder", root=demo_copy, m="local-sp", q=q, i=easy), "pair")
    table = at.table[0].value
    assert table["official"].tolist() == ["skipped (no IoU)"] * 2
    assert table["strict"].tolist() == ["0.00% (no IoU: counts as 0)"] * 2
    # the hard pair does count as 0: the query's medium mIoU (official), by hand, is the
    # mean over its hard pairs (0 for the removed one) and its predicted easy pairs
    kept = ([pairs.get((q, i), (0.0, 0.0)) if i != hard else (0.0, 0.0)
             for i in g.hard[q].tolist()]
            + [pairs[q, i] for i in g.easy[q].tolist() if (q, i) in pairs and i != easy])
    want = np.mean([b for b, _ in kept])
    at = page(app(src="folder", root=demo_copy, m="local-sp", q=q), "query")
    assert metrics(at)["mIoU bbox / seg · medium"][0].startswith(f"{pct(want)} / ")


# ---------------------------------------------------------------- overview methods table

def _mapped_files() -> set[str]:
    with open("/proc/self/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_methods_table_keeps_no_ranks_file_mapped(demo_copy, expected):
    import gc

    at = ok(app(src="folder", root=demo_copy))
    table = next(t.value for t in at.dataframe if "method" in t.value.columns)
    for name in ("local-sp", "global-hist"):  # numbers in percent (a sortable column)
        row = table[table["method"] == name].iloc[0]
        rev = expected[name, "official", "rev"]
        assert [f"{row[f'mAP {s}']:.2f}%" for s in "EMH"] == [
            pct(rev[s].mAP) for s in ("easy", "medium", "hard")]
        pix = expected[name, "official", "pix"]
        assert f"{row['mIoU seg M']:.2f}%" == pct(pix.setups["medium"].miou_seg)
    page(at, "query")  # the Query page maps its method's ranks for its run only
    del at
    gc.collect()
    ranks_files = {str(p.resolve()) for p in (demo_copy / "results").rglob("*.npy")
                   if "image-level" in p.parts}
    assert len(ranks_files) == 2
    assert not ranks_files & _mapped_files()


def test_an_edited_ranks_file_is_read_again(demo_copy, expected):
    at = ok(app(src="folder", root=demo_copy, m="local-sp"))
    rev = expected["local-sp", "official", "rev"]
    assert metrics(at)["mAP · medium"] == [pct(rev["medium"].mAP)]
    ranks_file = demo_copy / "results" / "image-level" / "local-sp" / "rdemo.npy"
    r = np.load(ranks_file)[::-1].copy()  # every ranking reversed: same size, new numbers
    np.save(ranks_file, r)
    g = expected["gnd"]
    want = evaluate_revisited(scan_ranks(r, g), g)["medium"].mAP
    assert pct(want) != pct(rev["medium"].mAP)
    at = ok(app(src="folder", root=demo_copy, m="local-sp"))
    assert metrics(at)["mAP · medium"] == [pct(want)]
