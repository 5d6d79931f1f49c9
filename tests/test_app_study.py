"""The user-study page, run headless with AppTest on the small demo (docs/PROTOCOLS.md §7).

The experimenter creates a study in the page and follows it on the dashboard.
Participants never reach Streamlit (their screens are bench.study.web, tested in
tests/test_study_web.py and tests/test_browser_participant.py): a participant link on
the app assigns and records nothing, and the old participant-only mode serves nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.demo import build_demo
from bench.study.store import StudyStore, create_study, read_study_file, study_file

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")
METHODS = ("local-sp", "global-hist")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The small demo (the same folder as tests/test_app.py's, built once per session)."""
    return build_demo(tmp_path_factory.getbasetemp() / "small_demo", scale="small")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "studies"


@pytest.fixture(autouse=True)
def env(small_demo, data_dir, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BENCH_DEMO_DIR", str(small_demo.root))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "app_cache"))
    monkeypatch.setenv("BENCH_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    monkeypatch.setenv("BENCH_STUDY_DIR", str(data_dir))
    monkeypatch.delenv("BENCH_PARTICIPANT_ONLY", raising=False)
    monkeypatch.delenv("BENCH_STUDY", raising=False)


def run(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = str(v)
    at.session_state["_painted"] = True
    return ok(at.run())


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def text_of(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info",
                                  "success", "code", "title", "subheader", "text")
             for e in at.get(kind)]
    parts += [b.label for b in at.button] + [t.label for t in at.text_input]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def study(data_dir):
    """A study on the demo: three conditions (one a method), 6 trials with 2 catch."""
    store, _ = create_study("pilot", "rdemo", conditions="none,ground_truth,method:local-sp",
                            n_trials=6, catch=0.34, seed=5, data_dir=data_dir,
                            allow_repeats=True)  # the small demo has 4 queries
    return store


# ---------------------------------------------------------------- independent helpers

def submit(at: AppTest):
    return next(b for b in at.button if b.label == "Create study")


def table_with(at: AppTest, column: str):
    """The first dataframe shown with a column named *column*."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


# ---------------------------------------------------------------- experimenter

def test_experimenter_creates_a_study_and_gets_the_links(data_dir, tmp_path):
    at = run()
    at = ok(at.switch_page("pages/study.py").run())
    assert at.title[0].value == "User study: do pixel-level results help?"
    assert "No study in" in text_of(at)
    assert at.text_input(key="sn_name").value == "study-1"
    at.text_input(key="sn_name").set_value("exp-1")
    at.multiselect(key="sn_conds").set_value(["none", "method:local-sp", "ground_truth"])
    at.number_input(key="sn_trials").set_value(7)
    at.number_input(key="sn_catch").set_value(0.3)
    at.number_input(key="sn_seed").set_value(11)
    at.number_input(key="sn_practice").set_value(1)
    at = ok(submit(at).click().run())  # the small demo has 4 queries: refused ...
    assert "need 7 different queries" in text_of(at) and not at.success
    at.checkbox(key="sn_repeats").check()  # ... unless repeats are allowed
    at = ok(submit(at).click().run())
    assert [s.value for s in at.success][0].startswith("Study **exp-1** created")
    path = study_file(data_dir, "exp-1")
    d = StudyStore.open(path).definition
    assert d.conditions == ("none", "method:local-sp", "ground_truth")
    assert (d.n_trials, d.n_catch, d.seed, len(d.practice)) == (7, round(0.3 * 7), 11, 1)
    # the same design made directly, elsewhere: the page passed the form's values on
    ref, _ = create_study("exp-1", "rdemo", conditions="none,method:local-sp,ground_truth",
                          n_trials=7, catch=0.3, seed=11, n_practice=1, allow_repeats=True,
                          data_dir=tmp_path / "ref")
    assert [t.to_json() for t in d.trials] == [t.to_json() for t in ref.definition.trials]
    # the dashboard: the new study selected, one random (unguessable) link per person by
    # default, the same ids the store gives any server; lab ids P01..P12 on request
    assert at.selectbox(key="w_study").value == "exp-1"
    rand = StudyStore.open(path).participant_ids(12)
    assert f"/take?study=exp-1&p={rand[0]}" in [c.value for c in at.code]
    links = table_with(at, "link")
    assert list(links["participant"]) == rand
    assert list(links["link"])[:2] == [f"/take?study=exp-1&p={p}" for p in rand[:2]]
    at = ok(at.radio(key="study_id_kind").set_value("lab (P01, P02, …)").run())
    links = table_with(at, "link")
    assert list(links["participant"]) == [f"P{k:02d}" for k in range(1, 13)]
    assert list(links["link"])[:2] == ["/take?study=exp-1&p=P01", "/take?study=exp-1&p=P02"]
    m = {x.label: x.value for x in at.metric}
    assert m["Participants"] == "0" and m["Answers"] == "0"
    # a second study of the same name is refused, the first one untouched
    before = StudyStore.open(path).version()
    at.text_input(key="sn_name").set_value("exp-1")
    at = ok(submit(at).click().run())
    assert any("study exists" in e.value for e in at.error)
    assert StudyStore.open(path).version() == before


def test_dashboard_numbers_are_counts_of_the_file(study, data_dir):
    pids = ["P01", "P02", "P03"]
    for k, pid in enumerate(pids):  # answers written through the store, as a page would
        study.assign(pid)
        for j, t in enumerate(study.trials(pid)):
            if t.kind == "positive" and (j + k) % 3:
                x, y = (float(v) for v in np.asarray(t.region[0]).mean(axis=0))
                study.record(pid, t.id, answer="click", x=x, y=y, browser_ms=900 + 10 * j)
            else:
                study.record(pid, t.id, answer="not_present", browser_ms=1500)
    at = run(study="pilot")
    at = ok(at.switch_page("pages/study.py").run())
    state = read_study_file(study.path)
    m = {x.label: x.value for x in at.metric}
    assert m["Participants"] == "3" and m["Completed"] == "3"
    assert m["Answers"] == str(len(state.answers)) == str(3 * 6)
    table = table_with(at, "hit rate")
    labels = {"none": "no annotation", "ground_truth": "ground-truth region",
              "method:local-sp": "prediction of local-sp"}
    for c, label in labels.items():  # hit rate = hits / positive trials, counted here
        mine = [a for a in state.answers if a.condition == c]
        pos = [a for a in mine if a.trial_kind == "positive"]
        hits = sum(a.outcome == "hit" for a in pos)
        row = table[table["condition"] == label].iloc[0]
        assert row["answers"] == len(mine) and row["hits"] == hits
        assert row["hit rate"] == f"{100 * hits / len(pos):.1f}%"
    # exports: the answers CSV has one row per answer
    dl = [b for b in at.get("download_button")]
    assert len(dl) >= 3
    assert "Friedman" in text_of(at) and "Human against machine" in text_of(at)


# ---------------------------------------------------------------- participants

def test_a_participant_link_to_the_streamlit_app_shows_no_study_screens(study):
    """Participants are served by bench.study.web (``/take``; tests/test_study_web.py and
    tests/test_browser_participant.py): an old-style participant link on the Streamlit
    app shows the app's own page, and nothing is assigned or recorded."""
    at = run(study="pilot", p="P07")
    assert not [b for b in at.button if (b.key or "").startswith("pt")]
    assert study.participant("P07") is None
    assert read_study_file(study.path).answers == []


def test_the_old_participant_only_mode_does_not_serve_the_app(study, monkeypatch):
    """``BENCH_PARTICIPANT_ONLY=1`` (the old ``make study``) shows a pointer to ``study
    serve`` and nothing of the experimenter's app."""
    monkeypatch.setenv("BENCH_PARTICIPANT_ONLY", "1")
    monkeypatch.setenv("BENCH_STUDY", "pilot")
    at = run(study="pilot", p="P11")
    assert "study serve" in text_of(at)
    assert len(at.sidebar) == 0 and not at.button and not at.dataframe
    assert study.participant("P11") is None
