"""The study store on SQLite (bench.study.store; docs/PROTOCOLS.md §7.9): group assignment at
consent and its release, one answer per (participant, trial) from threads and processes,
every acknowledged answer kept through kill -9, the single-tab lease, tokens, server
times, completion codes, the one-time import of a JSON Lines study and its export back;
the platforms (bench.study.platforms) and the tidy export (bench.study.export), whose
table gives the report's numbers again."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.study import export as E
from bench.study import platforms as PL
from bench.study import stats as T
from bench.study import store as ST
from tests import test_study as TS

REPO = Path(__file__).resolve().parents[1]
tiny = TS.tiny  # the fixture: 4 queries, 30 images, conditions none, ground_truth, m1
INSIDE, OUTSIDE = TS.INSIDE, TS.OUTSIDE


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.delenv(ST.ENV_DB, raising=False)
    return tmp_path / "studies"


@pytest.fixture
def store(tiny, data):
    return ST.StudyStore.create(_definition(tiny), data)


def _definition(tiny, **kw):
    """The 12-trial study of tests/test_study.py on the tiny dataset (4 queries, so a
    participant meets a query more than once)."""
    return TS._definition(tiny, **{"allow_repeats": True, **kw})


def _answer_all(st, pid, *, hit=True, ms=1000.0):
    TS._answer_all(st, pid, hit=hit, ms=ms)


# ---------------------------------------------------------------- database settings

def test_sqlite_file_in_the_study_folder_is_wal_and_durable(store, data):
    assert store.database == str((data / ST.DB_FILE).absolute())
    con = sqlite3.connect(data / ST.DB_FILE)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with store.db.tx(write=False) as c:  # the store's own connections
        assert c.one("PRAGMA synchronous")[0] == 2  # FULL: fsync at every commit
        assert c.one("PRAGMA busy_timeout")[0] == 30000
        assert c.one("PRAGMA foreign_keys")[0] == 1


def test_database_url_setting(monkeypatch, tmp_path):
    monkeypatch.delenv(ST.ENV_DB, raising=False)
    assert ST.database_url(tmp_path) == f"sqlite:///{tmp_path.absolute() / ST.DB_FILE}"
    monkeypatch.setenv(ST.ENV_DB, "postgresql://u:secret@db.example:5432/s")
    assert ST.database_url(tmp_path) == "postgresql://u:secret@db.example:5432/s"
    assert ST._redact("postgresql://u:secret@db.example:5432/s") == \
        "postgresql://u:***@db.example:5432/s"
    monkeypatch.setenv(ST.ENV_DB, "mysql://x")
    with pytest.raises(BenchError, match="bad database setting"):
        ST.StudyStore.open("s1", tmp_path)


# ---------------------------------------------------------------- assignment

def test_round_robin_assignment_persists_across_reopen(store, data):
    rows = [store.assign(f"P{k}").row for k in range(1, 5)]
    assert rows == [0, 1, 2, 0]
    ST._DEFINITIONS.clear()  # a restarted server
    again = ST.StudyStore.open("s1", data)
    assert {p: a.row for p, a in again.state().assignments.items()} == {
        "P1": 0, "P2": 1, "P3": 2, "P4": 0}
    v = again.version()
    assert again.assign("P2").row == 1  # known: same row
    assert again.assign("P5").row == 1 and again.assign("P6").row == 2
    assert again.version() != v
    assert sorted(a.index for a in ST.read_study_file(store.path).assignments.values()) == \
        list(range(6))
    with pytest.raises(ValueError, match="participant id"):
        store.assign("../etc")


def test_group_at_consent_released_after_timeout_and_on_return(store):
    t0 = 1_000_000.0
    p, token = store.enter("A", platform_ids={"STUDY_ID": "s"}, now=t0)
    assert p.status == "entered" and p.row is None and token
    assert store.enter("A", now=t0 + 1)[1] is None  # the token is issued once
    assert store.check_token("A", token) and not store.check_token("A", token + "0")
    assert not store.check_token("B", token)
    for k in range(20):  # links opened without consent take no group
        store.enter(f"X{k}", now=t0)
    assert store.assign("A", now=t0).row == 0
    assert store.assign("B", now=t0).row == 1
    assert store.assign("C", now=t0).row == 2
    # B answers now and then; A and C go quiet
    tid = store.trials("B")[0].id
    store.record("B", tid, answer="timeout", now=t0 + 1000)
    late = t0 + ST.ASSIGNMENT_TIMEOUT_S + 10
    assert store.assign("D", now=late).row == 0  # A (row 0) and C (row 2) were released
    assert store.participant("A").status == "released"
    assert store.assign("E", now=late).row == 2
    assert store.assign("A", now=late + 1).row == 0  # A comes back: the same row
    assert store.participant("A").status == "active"
    # the platform's return releases the slot at once
    store.withdraw("E", now=late + 2)
    assert store.participant("E").status == "returned"
    assert store.assign("F", now=late + 3).row == 2
    with pytest.raises(ST.ParticipantReturned):
        store.assign("E", now=late + 4)
    with pytest.raises(ST.ParticipantReturned):
        store.record("E", store.definition.trials[0].id, answer="timeout")
    counts = Counter(p.row for p in store.participants() if p.status in ("active", "done"))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_consent_in_many_threads_keeps_groups_balanced(store):
    n = 30
    barrier = threading.Barrier(n)
    rows: list[int] = []

    def consent(k):
        barrier.wait()
        rows.append(store.assign(f"T{k}").row)

    threads = [threading.Thread(target=consent, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(rows) == {0: 10, 1: 10, 2: 10}
    st = store.state()
    assert sorted(a.index for a in st.assignments.values()) == list(range(n))


# ---------------------------------------------------------------- answers

def test_record_scores_and_refuses_a_repeat(store):
    d = store.definition
    store.assign("P1")
    trials = store.trials("P1")
    pos = next(t for t in trials if t.kind == "positive")
    cat = next(t for t in trials if t.kind == "catch")
    a = store.record("P1", pos.id, answer="click", x=15.5, y=12.0, browser_ms=812.5,
                     server_ms=1020.0, hidden_ms=0, client_shown_ms=1.7e12)
    assert (a.outcome, a.condition, a.row) == ("hit", d.condition_of(pos, 0), 0)
    assert a.index == [t.id for t in trials].index(pos.id) + 1 and a.flags == ()
    b = store.record("P1", cat.id, answer="click", x=1, y=1, browser_ms=500, hidden_ms=2500)
    assert b.outcome == "false_alarm" and b.flags == ("hidden",) and not b.timed
    with pytest.raises(ST.AlreadyAnswered, match="already answered"):
        store.record("P1", pos.id, answer="not_present")
    st = store.state()
    assert [x.outcome for x in st.answers] == ["hit", "false_alarm"]
    assert [(r.participant, r.trial, r.why) for r in st.refused] == [
        ("P1", pos.id, "already answered")]
    assert st.answers[0] == a and st.problems == []
    rep = T.report(st, n_resamples=99)
    assert rep["problems"]["refused"][0]["why"] == "already answered"
    with pytest.raises(BenchError, match="no assignment"):
        store.record("P9", pos.id, answer="not_present")
    with pytest.raises(BenchError, match="no trial"):
        store.record("P1", "q99-i99", answer="not_present")
    with pytest.raises(ValueError, match="click"):
        store.record("P1", cat.id, answer="click")
    with pytest.raises(ValueError, match="browser_ms"):
        store.record("P1", cat.id, answer="timeout", browser_ms=float("nan"))
    with pytest.raises(ValueError, match="no click position"):
        store.record("P1", cat.id, answer="timeout", x=1, y=1)
    # the constraint itself, below the store: a second row cannot be inserted
    con = sqlite3.connect(store.db.file)
    rec = con.execute("SELECT record FROM answers WHERE trial = ?", (pos.id,)).fetchone()[0]
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        con.execute("INSERT INTO answers (study, participant, trial, at, record) VALUES "
                    "('s1', 'P1', ?, 'x', ?)", (pos.id, rec))
    con.close()


def test_server_times_and_forged_browser_times(store):
    store.assign("P1")
    t1, t2, t3 = store.trials("P1")[:3]
    assert store.shown("P1", t1.id, now=100.0) == 100.0
    assert store.shown("P1", t1.id, now=105.0) == 100.0  # a reload keeps the first show
    a = store.record("P1", t1.id, answer="timeout", browser_ms=1500.0, now=102.0)
    assert a.server_ms == pytest.approx(2000.0) and a.flags == ()
    store.shown("P1", t2.id, now=200.0)
    b = store.record("P1", t2.id, answer="timeout", browser_ms=6e8, now=201.0)
    assert b.server_ms == pytest.approx(1000.0) and "time_mismatch" in b.flags
    assert not b.timed  # left out of the times
    c = store.record("P1", t3.id, answer="timeout", browser_ms=900.0, now=300.0,
                     show=store.trials("P1")[3].id)
    assert c.server_ms is None and c.flags == ()  # never shown: nothing to check against
    # the next trial's show time was noted with the answer (one commit)
    assert store.shown("P1", store.trials("P1")[3].id, now=999.0) == 300.0


def test_two_threads_answer_the_same_trial_once(store, data):
    store.assign("P1")
    tid = store.trials("P1")[0].id
    n = 8
    barrier = threading.Barrier(n)
    ok, refused = [], []

    def worker(k):
        st = ST.StudyStore.open("s1", data)
        barrier.wait()
        try:
            ok.append(st.record("P1", tid, answer="not_present", browser_ms=float(k)))
        except ST.AlreadyAnswered:
            refused.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 1 and len(refused) == n - 1
    st = store.state()
    assert len(st.answers) == 1 and len(st.refused) == n - 1


_WORKER = r"""
import sys
from bench.study.store import StudyStore, AlreadyAnswered
data, pid = sys.argv[1], sys.argv[2]
st = StudyStore.open("s1", data)
st.assign("S")
first = st.trials("S")[0].id
try:
    st.record("S", first, answer="not_present", browser_ms=1.0)
    print("S-ok")
except AlreadyAnswered:
    print("S-refused")
st.assign(pid)
for t in st.trials(pid):
    if t.kind == "positive":
        st.record(pid, t.id, answer="click", x=15.0, y=15.0, browser_ms=700.0)
    else:
        st.record(pid, t.id, answer="timeout")
"""


def test_concurrent_processes_lose_nothing(store, data):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(data), f"W{k}"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(4)]
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sorted(o.strip() for o, _ in outs) == ["S-ok", "S-refused", "S-refused",
                                                  "S-refused"]
    st = store.state()
    assert len(st.answers) == 4 * 12 + 1 and len(st.refused) == 3
    idx = sorted(a.index for a in st.assignments.values())
    assert idx == list(range(5))
    assert Counter(a.row for a in st.assignments.values()) == {0: 2, 1: 2, 2: 1}


_ACKER = r"""
import sys
from bench.study.store import StudyStore
st = StudyStore.open("s1", sys.argv[1])
for k in range(1000):
    pid = f"K{k}"
    st.assign(pid)
    for t in st.trials(pid):
        st.record(pid, t.id, answer="timeout")
        print(pid, t.id, flush=True)  # acknowledged: record() returned
"""


def test_every_acknowledged_answer_survives_kill_9(store, data):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-c", _ACKER, str(data)], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = []
    for line in p.stdout:
        acked.append(tuple(line.split()))
        if len(acked) == 40:
            p.kill()  # SIGKILL, mid-stream
            break
    p.wait()
    acked += [tuple(x.split()) for x in p.stdout.read().splitlines() if x.strip()]
    got = [(a.participant, a.trial) for a in store.state().answers]
    assert len(acked) >= 40 and set(acked) <= set(got) and len(got) == len(set(got))
    again = ST.StudyStore.open("s1", data)
    pid = acked[-1][0]
    nxt = again.next_trial(pid)
    if nxt is not None:
        again.record(pid, nxt[1].id, answer="timeout")
    assert len(store.state().answers) == len(got) + (nxt is not None)


def test_sessions_refuse_a_second_tab(store):
    store.assign("P1")
    store.claim_session("P1", "tabA", now=1000.0)
    with pytest.raises(ST.SessionActive, match="already active"):
        store.claim_session("P1", "tabB", now=1010.0)
    store.claim_session("P1", "tabA", now=1020.0)  # heartbeat
    with pytest.raises(ST.SessionActive):
        store.claim_session("P1", "tabB", now=1020.0 + ST.SESSION_TTL_S - 1)
    assert store.active_sessions(now=1030.0) == ["P1"]
    store.claim_session("P1", "tabB", now=1020.0 + ST.SESSION_TTL_S + 1)
    t = store.trials("P1")[0]
    with pytest.raises(ST.SessionActive):
        store.record("P1", t.id, answer="timeout", session="tabA",
                     now=1020.0 + ST.SESSION_TTL_S + 2)
    store.record("P1", t.id, answer="timeout", session="tabB",
                 now=1020.0 + ST.SESSION_TTL_S + 2)
    st = store.state()
    assert len(st.answers) == 1 and st.refused[0].why == "session not active"
    store.release_session("P1", "tabB")
    store.claim_session("P1", "tabC", now=1020.0 + ST.SESSION_TTL_S + 3)
    assert store.active_sessions(now=1020.0 + ST.SESSION_TTL_S + 3) == ["P1"]
    assert store.active_sessions(now=5000.0) == []


def test_create_refuses_an_existing_study_and_names_are_checked(store, tiny, data, tmp_path):
    with pytest.raises(BenchError, match="study exists"):
        ST.StudyStore.create(_definition(tiny), data)
    for bad in ("", "../x", "a/b", ".hidden", "a b"):
        with pytest.raises(ValueError):
            ST.study_file(tmp_path, bad)
    assert ST.study_link("s1") == "/take?study=s1"
    assert ST.study_link("s1", "P07") == "/take?study=s1&p=P07"
    with pytest.raises(BenchError, match="missing study"):
        ST.StudyStore.open("nope", data)
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"kind": "design"}\n')
    with pytest.raises(BenchError, match="old study format"):
        ST.StudyStore.open(bad)


def test_practice_answers_keep_only_correctness_once(store):
    prac = store.definition.practice
    assert prac, "the tiny study has practice trials"
    t = prac[0]
    first = "not_present"
    out = store.record_practice("P1", t.id, answer=first, now=10.0)
    assert out == ("miss" if t.kind == "positive" else "correct_rejection")
    store.record_practice("P1", t.id, answer="click", x=15.0, y=15.0, now=11.0)  # a repeat
    assert store.state().practice_outcomes == {"P1": [t.kind == "catch"]}
    assert store.state().answers == []  # practice is not a recorded trial
    with pytest.raises(BenchError, match="no practice trial"):
        store.record_practice("P1", store.definition.trials[0].id, answer="timeout")


def test_random_participant_ids_are_stable_and_unguessable(store, data):
    ids = store.participant_ids(50)
    assert len(set(ids)) == 50 and all(ST.check_participant(i) == i for i in ids)
    assert all(len(i) == 21 and i.startswith("R") for i in ids)
    ST._DEFINITIONS.clear()
    again = ST.StudyStore.open("s1", data)  # another server: the same ids
    assert again.participant_ids(60)[:50] == ids
    with pytest.raises(ValueError):
        store.participant_ids(-1)


# ---------------------------------------------------------------- completion

def test_completion_codes_are_stable(tiny, data):
    d = _definition(tiny, study="pro")
    from dataclasses import replace
    st = ST.StudyStore.create(replace(d, platform="prolific", completion_code="C0DE42"), data)
    with pytest.raises(BenchError, match="not finished"):
        st.finish("P1")
    _answer_all(st, "P1")
    assert st.participant("P1").status == "done"
    c = st.finish("P1")
    assert c == ST.Completion("C0DE42", "https://app.prolific.com/submissions/complete?"
                              "cc=C0DE42")
    assert st.finish("P1") == c and st.completion("P1") == c  # a return visit: the same
    own = ST.StudyStore.create(replace(d, study="own", platform="mturk"), data)
    _answer_all(own, "W1")
    _answer_all(own, "W2")
    c1, c2 = own.finish("W1"), own.finish("W2")
    assert c1.url is None and c1.code != c2.code and own.finish("W1") == c1
    assert own.completion("W1") == c1 and own.completion("nobody") is None


# ---------------------------------------------------------------- JSON Lines import / export

def _legacy_file(tiny, tmp_path) -> Path:
    """A study in the earlier store's JSON Lines format, with every kind of record and
    damage: assignments, answers, a refusal, a repeat, a torn line, a hostile line."""
    src = tmp_path / "src"
    st = ST.StudyStore.create(_definition(tiny, study="old"), src)
    _answer_all(st, "P1")
    st.assign("P2")
    t = st.trials("P2")
    st.record("P2", t[0].id, answer="click", x=15.0, y=15.0, browser_ms=640.0)
    with pytest.raises(ST.AlreadyAnswered):
        st.record("P2", t[0].id, answer="timeout")
    lines = E.jsonl_lines(st.state())
    repeat = json.loads(lines[-2])  # P2's answer again: a repeat in the file
    path = tmp_path / "legacy" / "old.jsonl"
    path.parent.mkdir()
    path.write_bytes(("\n".join(lines) + "\n" + json.dumps(repeat) + "\n").encode()
                     + b'{"kind": "answer", "q": ' + b"7" * 5000 + b"}\n"
                     + b'{"kind": "answer", "study": "o')  # torn last line
    return path


def test_a_jsonl_study_is_imported_once_losslessly(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv(ST.ENV_DB, raising=False)
    path = _legacy_file(tiny, tmp_path)
    before = path.read_bytes()
    file_state = ST.read_study_file(path)  # not imported: read from the file
    assert not (path.parent / ST.DB_FILE).exists()
    assert len(file_state.answers) == 13 and len(file_state.repeats) == 1
    assert len(file_state.problems) == 2 and len(file_state.refused) == 1
    st = ST.StudyStore.open("old", path.parent)
    assert st.notice and "imported study old" in st.notice and "13 answers" in st.notice
    db_state = st.state()
    assert db_state.answers == file_state.answers
    assert db_state.assignments == file_state.assignments
    assert db_state.refused == file_state.refused
    assert db_state.repeats == file_state.repeats and db_state.problems == file_state.problems
    assert db_state.definition.to_json() == file_state.definition.to_json()
    rep_db, rep_file = (T.report(s, n_resamples=99) for s in (db_state, file_state))
    rep_db.pop("flow", None)  # the flow counts participant rows, which only the database has
    rep_file.pop("flow", None)
    assert rep_db == rep_file
    assert path.read_bytes() == before  # the file is kept as it was
    with st.db.tx(write=False) as c:  # and its bytes are in the database
        assert bytes(c.one("SELECT source_bytes FROM studies WHERE study = 'old'")[0]) == before
    ST._DEFINITIONS.clear()
    again = ST.StudyStore.open("old", path.parent)
    assert again.notice is None  # once
    # it goes on in the database: P2 continues
    nxt = again.next_trial("P2")
    again.record("P2", nxt[1].id, answer="timeout")
    assert len(again.state().answers) == 14 and path.read_bytes() == before
    # export --format jsonl writes the format back; reading it gives the same study
    out = tmp_path / "back" / "old.jsonl"
    E.write_export(again.state(), "jsonl", out)
    back = ST.read_study_file(out)
    assert back.answers == again.state().answers and back.problems == []
    assert back.assignments == again.state().assignments and back.refused == file_state.refused
    with pytest.raises(BenchError, match="never overwrites"):
        E.write_export(again.state(), "jsonl", out)


# ---------------------------------------------------------------- platforms

def test_platform_links_and_ids():
    assert PL.participant_link("s1", "prolific") == (
        "/take?study=s1&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
        "&SESSION_ID={{%SESSION_ID%}}")
    assert PL.participant_link("s1", "mturk", base="https://h") == "https://h/take?study=s1"
    assert PL.participant_link("s1", "param:SONA_ID") == (
        "/take?study=s1&SONA_ID={PARTICIPANT_ID}")
    assert PL.participant_link("s1") == "/take?study=s1"
    pid = "5f3c1a2b9d8e7f6a5b4c3d2e"
    assert PL.participant_from_query("prolific", {
        "PROLIFIC_PID": pid, "STUDY_ID": "60a1b2c3d4e5f6a7b8c9d0e1",
        "SESSION_ID": ["70a1b2c3d4e5f6a7b8c9d0e1"], "study": "s1"}) == (
        pid, {"STUDY_ID": "60a1b2c3d4e5f6a7b8c9d0e1",
              "SESSION_ID": "70a1b2c3d4e5f6a7b8c9d0e1"})
    for bad in ({}, {"PROLIFIC_PID": "{{%PROLIFIC_PID%}}"}, {"PROLIFIC_PID": "P01"},
                {"PROLIFIC_PID": pid, "STUDY_ID": "<script>"}, {"PROLIFIC_PID": pid + "0"}):
        with pytest.raises(PL.PlatformError):
            PL.participant_from_query("prolific", bad)
    assert PL.participant_from_query("mturk", {"workerId": "A1B2C3D4E5F6G7",
                                               "assignmentId": "3ABCDEF0123456789XYZ",
                                               "hitId": "3HIT0123456789ABCDEF"}) == (
        "A1B2C3D4E5F6G7", {"assignmentId": "3ABCDEF0123456789XYZ",
                           "hitId": "3HIT0123456789ABCDEF"})
    with pytest.raises(PL.PlatformPreview):
        PL.participant_from_query("mturk", {"workerId": "A1B2C3D4E5F6G7",
                                            "assignmentId": PL.MTURK_PREVIEW})
    assert PL.participant_from_query("param:SONA_ID", {"SONA_ID": "12345"}) == ("12345", {})
    assert PL.participant_from_query("none", {"p": "P07"}) == ("P07", {})
    for bad in ("prolifc", "param:", "param:p", "param:a b", "param:" + "x" * 40):
        with pytest.raises(ValueError):
            PL.parse_platform(bad)
    assert PL.parse_platform("param:SONA_ID").name == "param:SONA_ID"
    assert PL.completion_url("prolific", None, "AB CD") == (
        "https://app.prolific.com/submissions/complete?cc=AB%20CD")
    assert PL.completion_url("mturk", None, "X") is None
    assert PL.completion_url("none", "https://x.org/done?c={code}", "K7") == \
        "https://x.org/done?c=K7"
    for bad in ("javascript:alert(1)", "ftp://x", "https://", "https://a b"):
        with pytest.raises(ValueError):
            PL.check_completion_url(bad)
    with pytest.raises(ValueError):
        PL.check_completion_code("a;b")
    assert len(PL.new_completion_code()) == 8


# ---------------------------------------------------------------- the tidy export

def test_tidy_export_gives_the_report_numbers_again(store, tmp_path):
    pids = [f"P{k}" for k in range(6)]
    for k, pid in enumerate(pids):
        store.enter(pid, platform_ids={"SESSION_ID": f"S{k}"})
        _answer_all(store, pid, hit=k % 3 != 1, ms=800.0 + 50 * k)
    store.assign("Q")  # half a participant: two answers, one flagged
    t = store.trials("Q")
    store.record("Q", t[0].id, answer="timeout")
    store.record("Q", t[1].id, answer="not_present", browser_ms=500.0, hidden_ms=300.0)
    state = store.state()
    rep = T.report(state, n_resamples=99)
    files = E.write_export(state, "csv", tmp_path / "out" / "s1.csv")
    assert files == [tmp_path / "out" / "s1.csv", tmp_path / "out" / "s1.codebook.csv"]
    rows = list(csv.DictReader(io.StringIO(files[0].read_text(), newline="")))
    book = list(csv.DictReader(io.StringIO(files[1].read_text(), newline="")))
    assert [b["column"] for b in book] == list(rows[0].keys())
    assert all(b["description"] for b in book)
    assert "platform_SESSION_ID" in rows[0] and rows[0]["platform_SESSION_ID"] == "S0"
    assert len(rows) == 6 * 12 + 2
    assert {r["exclusion"] for r in rows if r["participant"] == "Q"} == {"incomplete"}
    rows_all, rows = rows, [r for r in rows if r["excluded"] == "False"]
    assert len(rows) == rep["n_answers"] == 6 * 12
    # the report's numbers from the table alone
    for c, v in rep["conditions"].items():
        mine = [r for r in rows if r["condition"] == c]
        n = Counter(r["outcome"] for r in mine)
        assert (v["n"], v["hits"], v["misses"], v["false_alarms"], v["correct_rejections"]) \
            == (len(mine), n["hit"], n["miss"], n["false_alarm"], n["correct_rejection"])
        pos = [r for r in mine if r["trial_kind"] == "positive"]
        assert v["hit_rate"] == pytest.approx(n["hit"] / len(pos))
        assert v["accuracy"] == pytest.approx(
            sum(r["correct"] == "True" for r in mine) / len(mine))
        times = sorted(float(r["browser_ms"]) for r in pos if r["timed"] == "True")
        assert v["time_ms"]["n"] == len(times)
        med = (times[len(times) // 2] if len(times) % 2
               else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2)
        assert v["time_ms"]["median"] == pytest.approx(med)
    per = Counter(r["participant"] for r in rows)
    assert rep["participants"]["completed"] == sum(v == 12 for v in per.values())
    q = [r for r in rows_all if r["participant"] == "Q"]
    assert {r["flags"] for r in q} == {"", "hidden"} and {r["group"] for r in q} == {"0"}
    d = store.definition
    for r in rows_all:  # what was drawn, from the definition's own annotation
        t = d.trial(r["trial"])
        want = ("none" if r["condition"] == "none" else "decoy"
                if t.is_decoy(r["condition"]) else "real" if t.shows_region(r["condition"])
                else "empty" if r["condition"].startswith("method:") else "none")
        assert r["region_drawn"] == want
    rd = {(r["condition"], r["trial_kind"]): r["region_drawn"] for r in rows}
    assert rd[("none", "positive")] == "none" and rd[("ground_truth", "positive")] == "real"
    # parquet: the same table
    pq = pytest.importorskip("pyarrow.parquet")
    E.write_export(state, "parquet", tmp_path / "pq" / "s1.parquet")
    table = pq.read_table(tmp_path / "pq" / "s1.parquet")
    assert table.num_rows == len(rows_all) and table.column_names == list(rows[0].keys())
    assert table.column("outcome").to_pylist() == [r["outcome"] for r in rows_all]
    assert (tmp_path / "pq" / "s1.codebook.csv").read_text() == files[1].read_text()


def test_export_excludes_returned_participants(store, tmp_path):
    store.assign("R")
    store.record("R", store.trials("R")[0].id, answer="timeout")
    store.withdraw("R")
    rows = E.tidy_rows(store.state())
    assert [(r["participant"], r["excluded"], r["exclusion"]) for r in rows] == [
        ("R", True, "returned")]


# ---------------------------------------------------------------- command line

def _cli(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k != ST.ENV_DB}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO,
                          capture_output=True, text=True,
                          env=dict(e, PYTHONPATH=str(REPO), **(env or {})))


def test_cli_platform_link_and_export(tmp_path):
    from bench.demo import build_demo

    demo = build_demo(tmp_path / "demo", scale="small")
    data = tmp_path / "studies"
    env = {"BENCH_DEMO_DIR": str(demo.root), "BENCH_STUDY_DIR": str(data)}
    out = _cli("study", "new", "pro", "--dataset", "rdemo", "--conditions",
               "none,ground_truth", "--trials", "4", "--catch", "0.25", "--seed", "1",
               "--platform", "prolific", "--json", env=env)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["link"] == PL.participant_link("pro", "prolific") and "PROLIFIC_PID" in d["link"]
    assert d["platform"] == "prolific" and len(d["completion_code"]) == 8
    assert d["database"] == str((data / ST.DB_FILE).absolute())
    st = ST.StudyStore.open("pro", data)
    assert st.definition.completion_code == d["completion_code"]
    _answer_all(st, "5f3c1a2b9d8e7f6a5b4c3d2e")
    res = _cli("study", "export", "pro", "--format", "csv", "--out",
               str(tmp_path / "x.csv"), env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "x.codebook.csv").is_file()
    assert len(list(csv.DictReader(open(tmp_path / "x.csv", newline="")))) == 4
    for args, what in (
            (["study", "new", "p2", "--dataset", "rdemo", "--conditions", "none",
              "--trials", "4", "--catch", "0", "--seed", "1", "--platform", "zz"],
             "platform"),
            (["study", "new", "p2", "--dataset", "rdemo", "--conditions", "none",
              "--trials", "4", "--catch", "0", "--seed", "1", "--completion-url", "x"],
             "completion URL"),
            (["study", "export", "pro"], "--format"),
            (["study", "export", "pro", "--format", "csv", "--out",
              str(tmp_path / "x.csv")], "file exists"),
            (["study", "report", "pro", "--format", "csv"], "only go with")):
        r = _cli(*args, env=env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and what in last and "Traceback" not in r.stderr
