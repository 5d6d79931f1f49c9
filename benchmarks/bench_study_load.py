"""Load test of the user study's participant server (docs/PROTOCOLS.md §7; issue 18 item 1).

N simulated participants at once against a real participant-only server on 127.0.0.1
(``bench.study.web.serve``: uvicorn, ``--workers`` processes), one HTTP/1.1 keep-alive
connection per participant (a small asyncio client, :class:`Conn`). Each opens the page, enters,
agrees, does the practice and answers every trial, fetching both pictures of every
trial as a browser does (its own cache: a picture is fetched once per participant). At
``--pace human`` a participant waits 2-6 s (uniform) before each answer; at ``max`` it
answers as soon as the trial is there. Participants arrive within the first 5 s.

Measured: answers per second over the run, the time from sending an answer to the next
trial being on screen (the answer's response, which carries the next trial, plus both
pictures: p50 and p95), errors (non-2xx responses other than 429, and timeouts; 429s are
retried after ``Retry-After`` and counted apart), the server's CPU (utime + stime of the
server's process tree over the run, as a percentage of one core) and resident memory
(sum over the tree at the end), and whether every acknowledged answer is stored exactly
once (``lost``: acknowledged, not in the store; ``duplicated``: stored more than once).

Usage::

    python benchmarks/bench_study_load.py                      # table for N = 10 .. 300
    python benchmarks/bench_study_load.py --participants 300 [--pace human|max] [--json]
    python benchmarks/bench_study_load.py --db postgresql://... --servers 2   # shared PG
    python benchmarks/bench_study_load.py --db temp --servers 2   # a temporary PG cluster

The server's rate limits per address are raised for the run (every simulated participant
comes from 127.0.0.1, and at ``max`` pace faster than a person): ``BENCH_STUDY_RATE_NEW``,
``BENCH_STUDY_RATE_ANSWERS``, ``BENCH_STUDY_RATE_PARTICIPANT``. Bounded:
at most 1000 participants, ``--timeout`` seconds per size (default 300). Other agents may
load the machine's cores at the same time: the figures are upper bounds of what the
server needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


SIZES = (10, 50, 100, 200, 300)
MAX_PARTICIPANTS = 1000
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """*pid* and its descendants (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _cpu_rss(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds, resident MB) summed over *pids*."""
    cpu = rss = 0.0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(f[11]) + int(f[12])) / TICK
        rss += int(f[21]) * PAGE / 1e6
    return cpu, rss


class Server:
    def __init__(self, env: dict, study: str, workers: int, log: Path):
        self.env, self.study, self.workers, self.log = env, study, workers, log
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        code = (f"import bench.study.web as w; w.serve({self.study!r}, '127.0.0.1', "
                f"{self.port}, {self.workers})")
        cmd = [sys.executable, "-c", code]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/take", timeout=2) as r:
                    if r.status == 200:
                        time.sleep(0.5 * self.workers)  # every worker up
                        return self
            except OSError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                break
        raise SystemExit("the participant server did not start:\n"
                         + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def usage(self) -> tuple[float, float]:
        return _cpu_rss(_tree(self.proc.pid)) if self.proc else (0.0, 0.0)


# ---------------------------------------------------------------- one participant

class Stats:
    def __init__(self):
        self.latency: list[float] = []
        self.errors = 0
        self.throttled = 0
        self.acked: list[tuple[str, int]] = []
        self.answers = 0
        self.finished = 0


class HttpError(Exception):
    pass


class Conn:
    """One participant's HTTP/1.1 keep-alive connection over asyncio streams: a plain
    client of a few lines, so that the load generator costs less CPU than the server it
    measures (httpx cost it more CPU than the server spent)."""

    def __init__(self, base: str, timeout: float = 30.0):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.w is not None:
            self.w.close()
            self.r = self.w = None

    async def request(self, method: str, path: str, body: dict | None = None
                      ) -> tuple[int, dict[str, str], bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Length: {len(data)}\r\n"
                + ("Content-Type: application/json\r\n" if body is not None else "")
                + "\r\n").encode()
        for attempt in (0, 1):  # a keep-alive connection the server closed: once more
            try:
                if self.w is None:
                    self.r, self.w = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), self.timeout)
                self.w.write(head + data)
                await self.w.drain()
                return await asyncio.wait_for(self._response(), self.timeout)
            except (OSError, asyncio.IncompleteReadError, HttpError, TimeoutError) as exc:
                await self.close()
                if attempt or isinstance(exc, TimeoutError):
                    raise HttpError(str(exc)) from None
        raise HttpError("unreachable")

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        body = await self.r.readexactly(n) if n else b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, body


async def _post(c: Conn, path: str, body: dict, st: Stats) -> dict | None:
    for _ in range(20):
        try:
            status, headers, data = await c.request("POST", path, body)
        except HttpError:
            st.errors += 1
            return None
        if status == 429:
            st.throttled += 1
            await asyncio.sleep(float(headers.get("retry-after", "1")))
            continue
        if status != 200:
            st.errors += 1
            return None
        return json.loads(data)
    st.errors += 1
    return None


async def _pictures(c: Conn, trial: dict, seen: set, st: Stats) -> bool:
    for role in ("query", "image"):
        src = trial[role]["src"]
        if src in seen:
            continue
        try:
            status, _, data = await c.request("GET", src)
        except HttpError:
            st.errors += 1
            return False
        if status != 200 or not data:
            st.errors += 1
            return False
        seen.add(src)
    return True


async def participant(base: str, study: str, n: int, pace: str, st: Stats,
                      rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0, 5.0))
    api = "/take/api/"
    view = {"vw": 1366, "vh": 768, "dpr": 1}
    seen: set[str] = set()
    c = Conn(base)
    try:
        for path in ("/take", "/take/app.js", "/take/app.css"):
            try:
                if (await c.request("GET", path))[0] != 200:
                    st.errors += 1
                    return
            except HttpError:
                st.errors += 1
                return
        pid = f"L{n:04d}{secrets.token_hex(3)}"
        tab = secrets.token_hex(8)
        r = await _post(c, api + "enter", {"study": study, "q": {"p": pid}, "tab": tab}, st)
        if not r:
            return
        who = {"study": study, "p": r["p"], "t": r["t"], "tab": tab}
        if not await _post(c, api + "consent", {**who, "agree": True}, st):
            return
        trial = await _post(c, api + "trial", {**who, "practice": 0, **view}, st)
        while trial and trial.get("kind") == "trial":  # the practice
            if not await _pictures(c, trial, seen, st):
                return
            if pace == "human":
                await asyncio.sleep(rng.uniform(2.0, 6.0))
            r = await _post(c, api + "answer", {**who, "k": trial["k"], "practice": True,
                                                "answer": "not_present", "browser_ms": 500.0,
                                                "hidden_ms": 0.0, **view}, st)
            trial = r and r["next"]
        trial = await _post(c, api + "trial", {**who, "practice": None, **view}, st)
        if not trial or not await _pictures(c, trial, seen, st):
            return
        while trial.get("kind") == "trial":
            wait = rng.uniform(2.0, 6.0) if pace == "human" else 0.0
            await asyncio.sleep(wait)
            t0 = time.perf_counter()
            w, h = trial["image"]["w"], trial["image"]["h"]
            body = {**who, "k": trial["k"], "practice": False, **view,
                    "browser_ms": max(1.0, wait * 1000 - 50), "hidden_ms": 0.0}
            if rng.random() < 0.5:
                body.update(answer="click", x=rng.uniform(0, w), y=rng.uniform(0, h))
            else:
                body.update(answer="not_present")
            r = await _post(c, api + "answer", body, st)
            if not r:
                return
            st.answers += 1
            if r.get("stored"):
                st.acked.append((who["p"], trial["k"]))
            trial = r["next"]
            if trial.get("kind") == "trial" and not await _pictures(c, trial, seen, st):
                return
            st.latency.append(time.perf_counter() - t0)
        if trial.get("kind") == "end":
            st.finished += 1
    finally:
        await c.close()


# ---------------------------------------------------------------- a run

def _stored(study: str) -> dict[tuple[str, int], int]:
    """(participant, position) -> how many answers the store holds."""
    from bench.study.web import backend

    backend.forget()
    state = backend.open_study(study).state()
    out: dict[tuple[str, int], int] = {}
    for a in list(state.answers) + [getattr(r, "answer", None) for r in
                                    getattr(state, "repeats", []) if hasattr(r, "answer")]:
        if a is None:
            continue
        out[(a.participant, a.index)] = out.get((a.participant, a.index), 0) + 1
    return out


def _setup(tmp: Path, db: str | None) -> tuple[dict, str]:
    from bench.demo import build_demo, default_demo_dir, demo_is_built

    demo_dir = default_demo_dir()
    if not demo_is_built(demo_dir):
        demo_dir = tmp / "demo"
        build_demo(demo_dir, scale="small")
    env = dict(os.environ, BENCH_DEMO_DIR=str(demo_dir), BENCH_CACHE_DIR=str(tmp / "cache"),
               BENCH_STUDY_DIR=str(tmp / "studies"), BENCH_STUDY_RATE_NEW="100000",
               BENCH_STUDY_RATE_ANSWERS="100000", BENCH_STUDY_RATE_PARTICIPANT="100000")
    env.pop("BENCH_PARTICIPANT_ONLY", None)
    if db:
        env["BENCH_STUDY_DB"] = db
    os.environ.update(env)
    name = f"load{secrets.token_hex(3)}"
    from bench.errors import BenchError
    from bench.study.store import create_study

    problem = None
    for trials in (12, 8):
        try:
            create_study(name, "rdemo", conditions="none,ground_truth", n_trials=trials,
                         catch=0.25, seed=1, allow_repeats=True)
            return env, name
        except BenchError as exc:
            problem = exc
    raise SystemExit(f"could not create the study: {problem}")


async def _run(bases: list[str], study: str, n: int, pace: str, timeout: float) -> Stats:
    st = Stats()
    rng = random.Random(n)
    tasks = [participant(bases[k % len(bases)], study, k, pace, st, random.Random(rng.random()))
             for k in range(n)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    except TimeoutError:
        st.errors += 1
    return st


def run_size(n: int, pace: str, *, workers: int, servers: int, db: str | None,
             timeout: float) -> dict:
    n = min(int(n), MAX_PARTICIPANTS)
    with tempfile.TemporaryDirectory(prefix="bench_study_load_") as d:
        tmp = Path(d)
        env, study = _setup(tmp, db)
        srv = [Server(env, study, workers, tmp / f"server{k}.log").start()
               for k in range(servers)]
        try:
            # warm the pictures once (the first participant of a real study does)
            before = [s.usage() for s in srv]
            c0 = time.process_time()
            t0 = time.perf_counter()
            st = asyncio.run(_run([s.url for s in srv], study, n, pace, timeout))
            wall = time.perf_counter() - t0
            client_cpu = time.process_time() - c0
            after = [s.usage() for s in srv]
        finally:
            for s in srv:
                s.stop()
        stored = _stored(study)
    cpu = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    lat = sorted(st.latency)
    acked = set(st.acked)
    return {"participants": n, "answers": st.answers,
            "answers_per_s": round(st.answers / wall, 2) if wall else 0.0,
            "p50_s": round(statistics.median(lat), 4) if lat else None,
            "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 4) if lat else None,
            "errors": st.errors, "throttled": st.throttled,
            "lost": sum(1 for k in acked if stored.get(k, 0) == 0),
            "duplicated": sum(1 for v in stored.values() if v > 1),
            "finished": st.finished,
            "cpu_percent": round(100 * cpu / wall, 1) if wall else 0.0,
            "rss_mb": round(sum(a[1] for a in after), 1), "wall_s": round(wall, 1),
            "client_cpu_percent": round(100 * client_cpu / wall, 1) if wall else 0.0,
            "pace": pace, "workers": workers, "servers": servers,
            "store": "postgresql" if db else "default"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--participants", type=int, help="one size (default: the table)")
    ap.add_argument("--pace", choices=("human", "max"), default="human")
    ap.add_argument("--json", action="store_true", help="print one JSON object per size")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    ap.add_argument("--servers", type=int, default=1, help="server processes (PostgreSQL)")
    ap.add_argument("--db", help="BENCH_STUDY_DB for the servers (postgresql://...), or "
                    "'temp': a temporary PostgreSQL cluster (tests/pg.py)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per size")
    a = ap.parse_args(argv)
    if a.servers > 1 and not a.db:
        ap.error("--servers > 1 needs --db postgresql://... (one shared database)")
    if a.db == "temp":  # a temporary PostgreSQL cluster of tests/pg.py, removed at the end
        from tests.pg import find_pg_bin, temporary_cluster

        if find_pg_bin() is None:
            ap.error("--db temp needs Debian's postgresql package (initdb, pg_ctl)")
        with temporary_cluster() as cluster:
            return _table(a, sizes_of(a), cluster.new_database())
    return _table(a, sizes_of(a), a.db)


def sizes_of(a) -> list[int]:
    return [a.participants] if a.participants else list(SIZES)


def _table(a, sizes: list[int], db: str | None) -> int:
    if not a.json:
        print(f"{'N':>5} {'answers':>8} {'ans/s':>7} {'p50 s':>7} {'p95 s':>7} {'err':>4} "
              f"{'429':>4} {'lost':>4} {'dup':>4} {'CPU %':>6} {'RSS MB':>7}  pace={a.pace} "
              f"workers={a.workers} servers={a.servers}", flush=True)
    for n in sizes:
        r = run_size(n, a.pace, workers=a.workers, servers=a.servers, db=db,
                     timeout=a.timeout)
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"{r['participants']:>5} {r['answers']:>8} {r['answers_per_s']:>7} "
                  f"{r['p50_s']!s:>7} {r['p95_s']!s:>7} {r['errors']:>4} {r['throttled']:>4} "
                  f"{r['lost']:>4} {r['duplicated']:>4} {r['cpu_percent']:>6} "
                  f"{r['rss_mb']:>7}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
