"""Several servers, one study, on a real PostgreSQL (docs/PROTOCOLS.md §7.9;
tests/pg.py starts a temporary cluster, or the tests are skipped saying why).

Separate processes stand for separate servers (each its own connections): they give
groups at consent, take answers at the same time, and one is killed with SIGKILL
mid-study. Every acknowledged answer is stored exactly once, groups stay balanced, a
participant resumes on another server, and the single-tab lease holds across servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.study import store as ST
from tests import test_study as TS
from tests.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]
tiny = TS.tiny


@pytest.fixture
def pg_store(tiny, pg_url, tmp_path):  # noqa: F811
    d = TS._definition(tiny, allow_repeats=True)
    return ST.StudyStore.create(d, tmp_path / "unused")


# a "server": takes participants one after another, consent, every trial; prints one
# line per acknowledged answer (after record() returned)
_SERVER = r"""
import sys, time
from bench.study.store import StudyStore, AlreadyAnswered
name, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
st = StudyStore.open(name)
print("ready", flush=True)
sys.stdin.readline()  # all servers start together
for j in range(n):
    pid = f"{prefix}{j}"
    st.enter(pid)
    st.assign(pid)
    tok = f"tok-{pid}"
    for t in st.trials(pid):
        st.claim_session(pid, tok)
        st.shown(pid, t.id)
        if t.kind == "positive":
            st.record(pid, t.id, answer="click", x=15.0, y=15.0, browser_ms=700.0,
                      session=tok)
        else:
            st.record(pid, t.id, answer="not_present", browser_ms=650.0, session=tok)
        print("ack", pid, t.id, flush=True)
    st.release_session(pid, tok)
    st.finish(pid)
print("done", flush=True)
"""


def _servers(names, n, env):
    procs = [subprocess.Popen([sys.executable, "-c", _SERVER, "s1", name, str(n)], cwd=REPO,
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in names]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def test_servers_on_one_postgresql_lose_nothing_and_stay_balanced(pg_store, pg_url):  # noqa: F811
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_STUDY_DB=pg_url)
    n_per = 4
    procs = _servers(["A", "B", "C"], n_per, env)
    victim = procs[2]
    acked: dict[str, list[tuple[str, str]]] = {"A": [], "B": [], "C": []}
    for line in victim.stdout:  # C is killed mid-study, after 17 acknowledged answers
        parts = line.split()
        if parts[0] == "ack":
            acked["C"].append((parts[1], parts[2]))
        if len(acked["C"]) == 17:
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait()
    acked["C"] += [tuple(x.split()[1:]) for x in victim.stdout.read().splitlines()
                   if x.startswith("ack ")]
    for name, p in zip("AB", procs[:2], strict=True):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        acked[name] = [tuple(x.split()[1:]) for x in out.splitlines() if x.startswith("ack ")]
        assert out.splitlines()[-1] == "done"
    assert victim.returncode == -signal.SIGKILL
    st = pg_store.state()
    stored = Counter((a.participant, a.trial) for a in st.answers)
    all_acked = [x for v in acked.values() for x in v]
    assert all(stored[x] == 1 for x in all_acked)  # every acknowledged answer, once
    assert max(stored.values()) == 1
    assert len(acked["A"]) == len(acked["B"]) == n_per * 12 and len(acked["C"]) >= 17
    # groups: every consent took the least-used row, across the three servers
    rows = Counter(a.row for a in st.assignments.values())
    assert max(rows.values()) - min(rows.values()) <= 1
    assert sorted(a.index for a in st.assignments.values()) == list(range(len(st.assignments)))
    # the killed server's unfinished participant is released after the timeout and the
    # next consent takes that group
    hung = [p.participant for p in st.participants.values() if p.status == "active"]
    assert len(hung) == 1
    later = time.time() + ST.ASSIGNMENT_TIMEOUT_S + 60
    assert pg_store.release_abandoned(now=later) == hung
    assert pg_store.assign("NEW", now=later).row == st.participants[hung[0]].row
    live = Counter(p.row for p in pg_store.participants() if p.status in ("active", "done"))
    assert max(live.values()) - min(live.values()) <= 1


_RESUME = r"""
import sys
from bench.study.store import StudyStore, SessionActive
st = StudyStore.open("s1")
pid, token = sys.argv[1], sys.argv[2]
try:
    st.claim_session(pid, token)
    print("claimed")
except SessionActive:
    print("refused")
    sys.exit(0)
k, t = st.next_trial(pid)
st.record(pid, t.id, answer="timeout", session=token)
print("answered", k)
"""


def test_resume_on_another_server_and_the_lease_across_servers(pg_store, pg_url):  # noqa: F811
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_STUDY_DB=pg_url)

    def other_server(*args):
        r = subprocess.run([sys.executable, "-c", _RESUME, *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    pg_store.assign("P1")
    first = pg_store.trials("P1")[:3]
    pg_store.claim_session("P1", "tab1")
    for t in first:
        pg_store.record("P1", t.id, answer="timeout", session="tab1")
    assert other_server("P1", "tab2") == ["refused"]  # the same id open elsewhere
    assert other_server("P1", "tab1") == ["claimed", "answered", "4"]  # a reload: resumes
    assert pg_store.progress("P1") == (4, 12)
    pg_store.release_session("P1", "tab1")
    assert other_server("P1", "tab2") == ["claimed", "answered", "5"]
    with pytest.raises(ST.AlreadyAnswered):
        pg_store.record("P1", first[0].id, answer="timeout")
    assert [r.why for r in pg_store.state().refused] == ["already answered"]


# ---------------------------------------------------------------- through two real servers

def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, env: dict) -> subprocess.Popen:
    code = f"import bench.study.web as w; w.serve('web', '127.0.0.1', {port}, 1)"
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    import urllib.request

    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"server on {port} exited: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/take", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server on {port} did not start")


def test_two_participant_servers_on_postgresql_one_killed(tmp_path, pg_url,  # noqa: F811
                                                          monkeypatch):
    """Participants answer through two real participant servers (bench.study.web, uvicorn)
    on one PostgreSQL, every call going to the other server than the one before (a load
    balancer without affinity); one server is killed with SIGKILL mid-study and the calls
    it would have taken go to the other. Every acknowledged answer is stored exactly once,
    every participant finishes, and the groups are balanced."""
    pytest.importorskip("bench.study.web")
    import json as _json
    import threading
    import urllib.error
    import urllib.request

    from bench.demo import build_demo

    demo = build_demo(tmp_path / "demo", scale="small")
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_STUDY_DB=pg_url,
               BENCH_DEMO_DIR=str(demo.root), BENCH_STUDY_DIR=str(tmp_path / "studies"),
               BENCH_CACHE_DIR=str(tmp_path / "cache"), BENCH_STUDY_RATE_NEW="100000",
               BENCH_STUDY_RATE_ANSWERS="100000", BENCH_STUDY_RATE_PARTICIPANT="100000")
    monkeypatch.setenv("BENCH_DEMO_DIR", env["BENCH_DEMO_DIR"])
    store, _ = ST.create_study("web", "rdemo", conditions="none,ground_truth", n_trials=4,
                               catch=0.25, seed=3, n_practice=0,
                               data_dir=tmp_path / "studies", allow_repeats=True)
    ports = [_port(), _port()]
    servers = [_start_server(p, env) for p in ports]
    try:
        for p, s in zip(ports, servers, strict=True):
            _wait_up(p, s)
        alive = [True, True]
        lock = threading.Lock()
        acked: list[tuple[str, int]] = []
        errors: list[str] = []
        turn = [0]

        def call(name: str, body: dict) -> dict:
            """POST to the next live server (round robin); a dead one: the other."""
            for _ in range(20):
                with lock:
                    turn[0] += 1
                    k = turn[0] % 2
                    if not alive[k]:
                        k = 1 - k
                req = urllib.request.Request(
                    f"http://127.0.0.1:{ports[k]}/take/api/{name}",
                    data=_json.dumps(body).encode(), method="POST",
                    headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        return _json.loads(r.read())
                except urllib.error.HTTPError as exc:
                    raise AssertionError(f"{name}: HTTP {exc.code} {exc.read()[:300]!r}") \
                        from None
                except OSError:  # the server is gone (or going): the balancer retries
                    time.sleep(0.05)
            raise AssertionError(f"{name}: no server answered")

        def participant(j: int) -> None:
            try:
                tab = f"tab{j:08d}"
                got = call("enter", {"study": "web", "q": {"p": f"L{j:02d}"}, "tab": tab})
                who = {"study": "web", "p": got["p"], "t": got["t"], "tab": tab}
                call("consent", {**who, "agree": True})
                nxt = call("trial", {**who, "practice": None, "vw": 1280, "vh": 800,
                                     "dpr": 1})
                while nxt.get("kind") == "trial":
                    res = call("answer", {**who, "k": nxt["k"], "practice": False,
                                          "answer": "not_present", "browser_ms": 400.0,
                                          "hidden_ms": 0.0, "vw": 1280, "vh": 800, "dpr": 1})
                    if res.get("stored"):
                        with lock:
                            acked.append((got["p"], nxt["k"]))
                    nxt = res["next"]
                assert nxt.get("kind") == "end", nxt
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(f"{j}: {exc}")

        threads = [threading.Thread(target=participant, args=(j,)) for j in range(12)]
        for t in threads:
            t.start()
        while len(acked) < 14 and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        os.kill(servers[1].pid, signal.SIGKILL)  # mid-study
        with lock:
            alive[1] = False
            n_at_kill = len(acked)
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        assert 0 < n_at_kill < 12 * 4
    finally:
        for s in servers:
            if s.poll() is None:
                s.kill()
            s.wait()
    st = store.state()
    stored = Counter((a.participant, a.trial) for a in st.answers)
    assert max(stored.values()) == 1 and len(stored) == 12 * 4  # everyone finished
    for pid, k in acked:  # each acknowledged answer is there, once
        assert stored[(pid, store.trials(pid)[k - 1].id)] == 1
    rows = Counter(a.row for a in st.assignments.values())
    assert len(st.assignments) == 12 and max(rows.values()) - min(rows.values()) <= 1


def test_cli_reads_the_same_postgresql_and_imports_a_jsonl_study(pg_store, pg_url, tmp_path):  # noqa: F811
    """``BENCH_STUDY_DB`` chooses the database for the command line too: `study report`
    and `study export` see the answers servers stored; a JSON Lines study in the data
    folder is imported into PostgreSQL (once, with a message)."""
    import csv
    import json

    from bench.study import export as E

    for k in range(3):
        TS._answer_all(pg_store, f"P{k}")
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_STUDY_DB=pg_url)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)

    rep = cli("study", "report", "s1", "--json")
    assert rep.returncode == 0, rep.stderr
    assert json.loads(rep.stdout)["participants"]["completed"] == 3
    out = tmp_path / "t.csv"
    ex = cli("study", "export", "s1", "--format", "csv", "--out", str(out))
    assert ex.returncode == 0, ex.stderr
    assert len(list(csv.DictReader(open(out, newline="")))) == 3 * 12
    # a JSON Lines study of the earlier store, in the data folder: imported into PG
    data = tmp_path / "studies"
    data.mkdir()
    lines = E.jsonl_lines(pg_store.state())
    legacy = json.loads(lines[0])
    legacy["study"] = "old"
    body = [json.dumps(legacy)] + [
        json.dumps({**json.loads(x), **({"study": "old"} if '"kind": "answer"' in x else {})})
        for x in lines[1:]]
    (data / "old.jsonl").write_text("\n".join(body) + "\n")
    first = cli("study", "report", "old", "--data-dir", str(data), "--json")
    assert first.returncode == 0, first.stderr
    assert "imported study old" in first.stderr and "36 answers" in first.stderr
    again = cli("study", "report", "old", "--data-dir", str(data), "--json")
    assert again.returncode == 0 and "imported" not in again.stderr
    assert json.loads(again.stdout)["n_answers"] == json.loads(first.stdout)["n_answers"]
    with pg_store.db.tx(write=False) as c:
        assert c.one("SELECT COUNT(*) FROM answers WHERE study = 'old'")[0] == 36
