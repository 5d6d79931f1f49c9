"""Speed of the study store (bench/study/store.py, docs/PROTOCOLS.md §7.9) as a study grows.

The earlier JSON Lines store rewrote ``sessions.json`` whole under one lock: 16.7 ms per
session claim at 5,000 participant ids, growing with the ids. This measures the SQL
store's consent (``enter`` + ``assign``), lease heartbeat (``claim_session``) and answer
(``shown`` + ``record``) with 100 and with 5,000 participants already in the study, and
prints the milliseconds per call and the ratio 5,000 / 100 (about 1: the cost does not
grow with the study).

    .venv/bin/python benchmarks/bench_study_store.py [--pg postgresql://...] [--calls N]

SQLite runs in a temporary folder (synchronous=FULL: every commit is fsynced, so the
figures include the disk's flush). ``--pg`` measures a PostgreSQL database instead (the
tables are created there; use an empty database).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _study(data_dir: Path, name: str):
    from bench.demo import build_demo
    from bench.study.store import create_study

    demo = build_demo(data_dir / "demo", scale="small")
    os.environ["BENCH_DEMO_DIR"] = str(demo.root)
    store, _ = create_study(name, "rdemo", conditions="none,ground_truth", n_trials=4,
                            catch=0.25, seed=1, data_dir=data_dir / "studies",
                            allow_repeats=True)
    return store


def _fill(store, n: int, start: int) -> None:
    """Participants start .. n-1 consented, in one transaction (set-up, not measured)."""
    now = time.time()
    with store.db.tx(lock=store.name) as c:
        first = c.one("SELECT COUNT(*) FROM participants WHERE study = ?", (store.name,))[0]
        for j, k in enumerate(range(start, n)):
            at = "2026-01-01T00:00:00.000+00:00"
            c.run("INSERT INTO participants (study, participant, status, row_no, arrival, "
                  "entered_at, assigned_at, last_seen, updated) VALUES (?, ?, 'active', ?, ?, "
                  "?, ?, ?, ?)", (store.name, f"F{k}", k % store.definition.n_rows, first + j, at, at,
                                  now, now))
            c.run("INSERT INTO sessions (study, participant, token, heartbeat, ttl) VALUES "
                  "(?, ?, ?, ?, 30.0)", (store.name, f"F{k}", f"t{k}", now))


def _measure(store, calls: int, tag: str) -> dict:
    pids = [f"M{tag}-{k}" for k in range(calls)]
    t0 = time.perf_counter()
    for p in pids:
        store.enter(p)
        store.assign(p)
    consent = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for p in pids:
        store.claim_session(p, "tok")
    claim = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for p in pids:
        t = store.trials(p)[0]
        store.shown(p, t.id)
        store.record(p, t.id, answer="timeout", session="tok")
    answer = (time.perf_counter() - t0) / calls
    return {"consent_ms": consent * 1e3, "claim_ms": claim * 1e3, "answer_ms": answer * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", help="a PostgreSQL URL (default: SQLite in a temporary folder)")
    ap.add_argument("--calls", type=int, default=50, help="calls measured per size")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        if args.pg:
            os.environ["BENCH_STUDY_DB"] = args.pg
        else:
            os.environ.pop("BENCH_STUDY_DB", None)
        store = _study(Path(tmp), f"speed-{os.getpid()}")
        from bench.study.store import _sqlite_sync

        out = {"database": "postgresql" if args.pg
               else f"sqlite (synchronous={_sqlite_sync()})"}
        _fill(store, 100, 0)
        out["at_100"] = _measure(store, args.calls, "a")
        _fill(store, 5000, 100)
        out["at_5000"] = _measure(store, args.calls, "b")
        out["ratio_5000_over_100"] = {k: out["at_5000"][k] / out["at_100"][k]
                                      for k in out["at_100"]}
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"study store, {out['database']}; ms per call ({args.calls} calls each)")
    print(f"{'':12}{'100 ids':>10}{'5,000 ids':>12}{'ratio':>8}")
    for k, label in (("consent_ms", "consent"), ("claim_ms", "heartbeat"),
                     ("answer_ms", "answer")):
        print(f"{label:12}{out['at_100'][k]:10.2f}{out['at_5000'][k]:12.2f}"
              f"{out['ratio_5000_over_100'][k]:8.2f}")
    print("(the JSON Lines store: 16.7 ms per session claim at 5,000 ids, growing)")


if __name__ == "__main__":
    main()
