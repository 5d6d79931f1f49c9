"""Tidy exports of a user study (docs/PROTOCOLS.md §7.9).

``python -m bench study export NAME --format csv|parquet|jsonl [--out FILE]``:

- ``csv`` / ``parquet``: one row per recorded trial (the first answer of a participant to
  a trial, as the analysis counts it), the columns of :data:`CODEBOOK` (the participant,
  the platform's ids, the group, the trial's position, the item, its condition and kind,
  what was drawn, the answer, the click, the outcome, the times, flags, exclusion, time
  stamps), for R or pandas; a *codebook* beside it (``FILE`` with ``.codebook.csv`` in
  place of its extension; one line per column: name, type, description). Fields the
  answer record gained later (e.g. from a newer design) follow the known columns. CSV
  cells are neutralised for spreadsheets (:func:`bench.study.records.csv_cell`).
  Parquet needs ``pyarrow`` (installed with Streamlit); without it the command says so.
- ``jsonl``: the JSON Lines format of the earlier store (definition, assignments,
  answers, refusals), which :func:`bench.study.store.read_study_file` reads back and
  :meth:`~bench.study.store.StudyStore.open` imports.

A file is never overwritten: an existing ``--out`` is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import fields as dc_fields
from pathlib import Path

from bench.errors import BenchError
from bench.study.design import condition_method
from bench.study.records import Answer, to_csv

__all__ = ["CODEBOOK", "codebook_path", "codebook_rows", "jsonl_lines", "tidy_columns",
           "tidy_csv", "tidy_rows", "write_export"]

# name -> (type, description); the order is the column order
CODEBOOK: dict[str, tuple[str, str]] = {
    "study": ("string", "study name"),
    "participant": ("string", "participant id (from the platform's id parameter, or the "
                              "lab link)"),
    "platform": ("string", "recruiting platform of the study: none, prolific, mturk or "
                           "param:NAME"),
    "platform_ids": ("string", "the platform's other ids of this participant as JSON (e.g. "
                               "STUDY_ID, SESSION_ID on Prolific; assignmentId, hitId on "
                               "MTurk); also one column platform_<name> each"),
    "group": ("integer", "the participant's group: row of the study's Latin square "
                         "(0-based)"),
    "arrival": ("integer", "order of consent among the participants (0-based)"),
    "trial_index": ("integer", "1-based position of the trial in the participant's "
                               "sequence"),
    "trial": ("string", "trial id (q<query>-i<database image>)"),
    "q": ("integer", "query index in the dataset's ground truth (0-based)"),
    "i": ("integer", "database image index (0-based)"),
    "query": ("string", "query image name"),
    "image": ("string", "database image name"),
    "condition": ("string", "what was drawn on the database image: none, ground_truth or "
                            "method:<name>"),
    "trial_kind": ("string", "positive (the object is in the image) or catch (it is not)"),
    "difficulty": ("string", "easy or hard (positives, from the ground truth) or negative "
                             "(catch trials)"),
    "region_drawn": ("string", "the region drawn: none, real (the ground-truth region or "
                               "the method's prediction for this pair), empty (the method "
                               "predicted nothing) or decoy (a region that is not the "
                               "object, on a catch trial)"),
    "answer": ("string", "click, not_present (the 'not in this image' button) or timeout"),
    "x": ("number", "click position, column in database-image pixels (empty without a "
                    "click)"),
    "y": ("number", "click position, row in database-image pixels (empty without a click)"),
    "outcome": ("string", "hit (click inside the region on a positive), miss, false_alarm "
                          "(click on a catch trial) or correct_rejection"),
    "correct": ("boolean", "hit or correct_rejection"),
    "browser_ms": ("number", "ms from both images on screen to the answer, on the "
                             "participant's clock (empty without a client clock)"),
    "server_ms": ("number", "ms from the server showing the trial to receiving the answer"),
    "hidden_ms": ("number", "ms the tab was hidden during the trial"),
    "flags": ("string", "flags of the answer joined by ';' (hidden, time_mismatch, "
                        "no_client_clock, ...): a flagged answer is left out of the times"),
    "timed": ("boolean", "counts in the time statistics (not a timeout, a browser time, "
                         "no flag)"),
    "excluded": ("boolean", "the participant or the answer is excluded from the analysis"),
    "exclusion": ("string", "why it is excluded (empty when not): returned (the "
                            "participant returned the study on the platform) or the first "
                            "exclusion rule of the study that applies (incomplete, "
                            "false_alarms, fast, hidden, practice; docs/PROTOCOLS.md §7.5)"),
    "participant_status": ("string", "entered, active, done, released (abandoned: group "
                                     "given to another) or returned"),
    "answered_at": ("string", "server time the answer was stored, ISO 8601 UTC"),
    "client_shown_ms": ("number", "participant's clock when both images were on screen, "
                                  "ms since the epoch"),
    "client_answer_ms": ("number", "participant's clock at the answer, ms since the epoch"),
    "consented_at": ("string", "server time of consent (group assigned), ISO 8601 UTC"),
    "finished_at": ("string", "server time the last trial was answered, ISO 8601 UTC"),
    "completion_code": ("string", "completion code shown at the end"),
}
_KNOWN_ANSWER = {"study", "participant", "trial", "q", "i", "condition", "trial_kind",
                 "answer", "outcome", "x", "y", "browser_ms", "server_ms", "hidden_ms",
                 "flags", "row", "index", "at", "client_shown_ms", "client_answer_ms"}


def _extra_fields() -> list[str]:
    """Fields of :class:`Answer` beyond the ones the codebook names (added by a newer
    design); exported after the known columns."""
    return [f.name for f in dc_fields(Answer) if f.name not in _KNOWN_ANSWER
            and f.name not in CODEBOOK]


def _region_drawn(a: Answer, trial) -> str:
    """none, real, empty or decoy (see :data:`CODEBOOK`): from the trial's annotation in
    the answer's condition (:meth:`~bench.study.design.StudyTrial.shows_region`,
    ``is_decoy``)."""
    if a.condition == "none":
        return "none"
    if trial is None:
        return ""
    try:
        if hasattr(trial, "is_decoy") and trial.is_decoy(a.condition):
            return "decoy"
        shown = trial.shows_region(a.condition) if hasattr(trial, "shows_region") \
            else bool(trial.annotation(a.condition)[1])
    except ValueError:
        return ""
    if shown:
        return "real"
    return "empty" if condition_method(a.condition) else "none"


def _exclusions(state) -> dict[str, str]:
    """participant -> reason: those the analysis leaves out, by the same rules
    (:func:`bench.study.stats.participant_checks`: the first declared rule that applies),
    and those who returned the study (``returned``)."""
    out: dict[str, str] = {}
    for pid, p in getattr(state, "participants", {}).items():
        if p.status == "returned":
            out[pid] = "returned"
    from bench.study import stats

    checks = getattr(stats, "participant_checks", None)
    if callable(checks) and getattr(state.definition, "exclusions", None) is not None:
        for c in checks(state.answers, state.definition,
                        getattr(state, "practice_outcomes", None)):
            if c.get("excluded_by"):
                out.setdefault(c["participant"], str(c["excluded_by"]))
    return out


def tidy_columns(state) -> list[str]:
    """The columns of the tidy table of *state*: the codebook's, one ``platform_<name>``
    per platform id met, then the answer record's further fields."""
    ids = sorted({k for p in getattr(state, "participants", {}).values()
                  for k in p.platform_ids})
    cols = list(CODEBOOK)
    at = cols.index("platform_ids") + 1
    cols[at:at] = [f"platform_{k}" for k in ids]
    return cols + _extra_fields()


def tidy_rows(state) -> list[dict]:
    """One dict per recorded trial (the state's accepted answers, in the order stored)."""
    d = state.definition
    parts = getattr(state, "participants", {})
    excl = _exclusions(state)
    extra = _extra_fields()
    rows = []
    for a in state.answers:
        try:
            t = d.trial(a.trial)
        except KeyError:
            t = None
        p = parts.get(a.participant)
        asg = state.assignments.get(a.participant)
        ids = p.platform_ids if p is not None else {}
        why = excl.get(a.participant, "")
        r = {"study": a.study, "participant": a.participant, "platform": d.platform,
             "platform_ids": json.dumps(ids, sort_keys=True) if ids else "",
             **{f"platform_{k}": v for k, v in ids.items()},
             "group": a.row, "arrival": None if asg is None else asg.index,
             "trial_index": a.index, "trial": a.trial, "q": a.q, "i": a.i,
             "query": None if t is None else t.query, "image": None if t is None else t.image,
             "condition": a.condition, "trial_kind": a.trial_kind,
             "difficulty": None if t is None else t.difficulty,
             "region_drawn": _region_drawn(a, t), "answer": a.answer, "x": a.x, "y": a.y,
             "outcome": a.outcome, "correct": a.correct, "browser_ms": a.browser_ms,
             "server_ms": a.server_ms, "hidden_ms": a.hidden_ms, "flags": ";".join(a.flags),
             "timed": a.timed, "excluded": bool(why), "exclusion": why,
             "participant_status": None if p is None else p.status, "answered_at": a.at,
             "client_shown_ms": a.client_shown_ms, "client_answer_ms": a.client_answer_ms,
             "consented_at": (p.consented_at if p is not None
                              else None if asg is None else asg.at),
             "finished_at": None if p is None else p.finished_at,
             "completion_code": None if p is None else p.completion_code}
        for f in extra:
            v = getattr(a, f)
            r[f] = ";".join(map(str, v)) if isinstance(v, tuple | list) else v
        rows.append(r)
    return rows


def codebook_rows(columns: Sequence[str]) -> list[dict]:
    out = []
    for c in columns:
        if c in CODEBOOK:
            typ, what = CODEBOOK[c]
        elif c.startswith("platform_"):
            typ, what = "string", f"the platform's id {c[len('platform_'):]} (see platform_ids)"
        else:
            typ, what = "any", f"field {c!r} of the answer record"
        out.append({"column": c, "type": typ, "description": what})
    return out


def codebook_path(out: str | os.PathLike) -> Path:
    """``FILE`` with ``.codebook.csv`` in place of its extension."""
    p = Path(out)
    return p.with_name(p.stem + ".codebook.csv") if p.suffix else p.with_name(
        p.name + ".codebook.csv")


def jsonl_lines(state) -> list[str]:
    """The study in the JSON Lines format of the earlier store (one JSON text per
    line): the definition, the assignments in arrival order, the answers and the
    refusals in the order stored."""
    out = [json.dumps(state.definition.to_json(), ensure_ascii=False, allow_nan=False)]
    for asg in sorted(state.assignments.values(), key=lambda a: a.index):
        out.append(json.dumps({"kind": "assignment", "participant": asg.participant,
                               "row": asg.row, "index": asg.index, "at": asg.at},
                              ensure_ascii=False))
    out += [json.dumps(a.to_json(), ensure_ascii=False, allow_nan=False)
            for a in state.answers]
    out += [json.dumps({"kind": "refused", "participant": r.participant, "trial": r.trial,
                        "why": r.why, "at": r.at}, ensure_ascii=False) for r in state.refused]
    return out


def _parquet(rows: list[dict], columns: list[str], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BenchError("parquet unavailable", path, "writing Parquet needs pyarrow (pip "
                         "install pyarrow); or export --format csv") from None
    types = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(),
             "string": pa.string()}
    arrays, names = [], []
    for c in columns:
        vals = [r.get(c) for r in rows]
        typ = types.get(CODEBOOK.get(c, ("string",))[0])
        if typ is None:
            vals = [None if v is None else str(v) for v in vals]
            typ = pa.string()
        arrays.append(pa.array(vals, type=typ))
        names.append(c)
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)


def _new_file(path: Path) -> None:
    if path.exists():
        raise BenchError("file exists", path, "an export never overwrites a file; choose "
                         "another --out")
    path.parent.mkdir(parents=True, exist_ok=True)


def write_export(state, fmt: str, out: str | os.PathLike | None = None) -> list[Path]:
    """Write the export of *state* in *fmt* (csv, parquet, jsonl) to *out* (default: in
    the current folder, ``NAME-trials.csv`` / ``.parquet`` or ``NAME.jsonl``) and, for
    csv / parquet, its codebook. Returns the files written."""
    name = state.definition.study
    if fmt not in ("csv", "parquet", "jsonl"):
        raise BenchError("bad export format", fmt, "use csv, parquet or jsonl")
    default = f"{name}.jsonl" if fmt == "jsonl" else f"{name}-trials.{fmt}"
    path = Path(out).expanduser() if out else Path.cwd() / default
    if fmt == "jsonl":
        _new_file(path)
        path.write_text("\n".join(jsonl_lines(state)) + "\n", encoding="utf-8")
        return [path]
    book = codebook_path(path)
    _new_file(path)
    _new_file(book)
    cols = tidy_columns(state)
    rows = tidy_rows(state)
    if fmt == "csv":
        path.write_text(to_csv(rows, cols), encoding="utf-8", newline="")
    else:
        _parquet(rows, cols, path)
    book.write_text(to_csv(codebook_rows(cols), ["column", "type", "description"]),
                    encoding="utf-8", newline="")
    return [path, book]


def tidy_csv(state) -> tuple[str, str]:
    """The tidy table and its codebook as CSV text (for the dashboard's downloads)."""
    cols = tidy_columns(state)
    return (to_csv(tidy_rows(state), cols),
            to_csv(codebook_rows(cols), ["column", "type", "description"]))
