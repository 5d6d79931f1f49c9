"""``python -m bench study ...`` (docs/PROTOCOLS.md §7)::

    python -m bench study new NAME --dataset D [--root ROOT] --conditions none,ground_truth[,method:M ...]
        --trials N --catch F --seed S [--order shuffled|blocked] [--practice K]
        [--require-prediction] [--consent-file F] [--instructions-file F] [--data-dir DIR] [--json]
    python -m bench study report NAME|FILE [--data-dir DIR] [--json]
    python -m bench study FILE            (= report FILE)

``new`` without ``--root`` uses the embedded demo (built on first use). ``--json``
prints ``{"study", "file", "link"}``; ``link`` is the participant link's path and query
(``/study?study=NAME``), to which a participant id is added as ``&p=ID``. ``report``
prints :func:`bench.study.stats.report` (``--json``) or a short table; a file of the
first, two-condition study format is refused with an error (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError

_NEW_ONLY = ("dataset", "root", "conditions", "trials", "catch", "seed", "order", "practice",
             "consent_file", "instructions_file")


def add_arguments(u: argparse.ArgumentParser) -> None:
    """The options of the ``study`` subcommand."""
    u.add_argument("words", nargs="+", metavar="WORD",
                   help="`new NAME` creates a study; `report NAME|FILE` or `FILE` reports one "
                        "(a study name in the data folder, or a .jsonl file)")
    u.add_argument("--dataset", help="new: dataset name (e.g. rdemo, roxford5k)")
    u.add_argument("--root", help="new: folder in the released layout (default: the embedded "
                                  "demo)")
    u.add_argument("--conditions", help="new: comma-separated none, ground_truth, method:<name>")
    u.add_argument("--trials", type=int, help="new: recorded trials per participant")
    u.add_argument("--catch", type=float, help="new: share of catch trials in [0, 1)")
    u.add_argument("--seed", type=int, help="new: seed of the design and of the orders")
    u.add_argument("--order", choices=("shuffled", "blocked"),
                   help="new: trials shuffled per participant (default) or in blocks")
    u.add_argument("--practice", type=int, help="new: practice trials (default 2)")
    u.add_argument("--require-prediction", action="store_true",
                   help="new: only pairs every method of the conditions predicted")
    u.add_argument("--consent-file", help="new: consent text (UTF-8 file)")
    u.add_argument("--instructions-file", help="new: instruction text (UTF-8 file)")
    u.add_argument("--data-dir", help="study folder (default: $BENCH_STUDY_DIR, else "
                                      "./studies)")
    u.add_argument("--json", action="store_true")


def _text_file(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    try:
        if not p.is_file():
            raise BenchError("missing text file", p, "no such regular file")
        if p.stat().st_size > 65536:
            raise BenchError("text file too large", p, "keep it under 64 KB")
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchError("unreadable text file", p, "not UTF-8 text") from None
    except OSError as exc:
        raise BenchError("unreadable text file", p, exc.strerror or str(exc)) from None


def _new(args: argparse.Namespace, name: str) -> None:
    from bench.study.store import create_study, study_link

    missing = [f"--{o}" for o in ("dataset", "conditions", "trials", "catch", "seed")
               if getattr(args, o) is None]
    if missing:
        raise BenchError("missing options", "study new", f"give {', '.join(missing)}")
    options = {"order": args.order or "shuffled",
               "require_prediction": bool(args.require_prediction)}
    if args.practice is not None:
        options["n_practice"] = args.practice
    for key, path in (("consent", args.consent_file), ("instructions", args.instructions_file)):
        text = _text_file(path)
        if text is not None:
            options[key] = text
    try:
        store, warnings = create_study(name, args.dataset, root=args.root,
                                       conditions=args.conditions, n_trials=args.trials,
                                       catch=args.catch, seed=args.seed,
                                       data_dir=args.data_dir, **options)
    except ValueError as exc:
        raise BenchError("bad study options", "study new", str(exc)) from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    d = store.definition
    out = {"study": d.study, "file": str(store.path.absolute()), "link": study_link(d.study)}
    if args.json:
        json.dump(out, sys.stdout)  # bench.cli ends --json output with a newline
        return
    print(f"study {d.study} created: {store.path.absolute()}")
    print(f"dataset {d.dataset} ({d.root or 'embedded demo'}); conditions "
          f"{', '.join(d.conditions)}; {d.n_trials} trials per participant ({d.n_catch} "
          f"catch), {len(d.practice)} practice; {d.n_rows} rows of the Latin square")
    print(f"participant link: {out['link']}&p=<participant id>")


def _report(args: argparse.Namespace, target: str) -> None:
    from bench.study.stats import format_report, report
    from bench.study.store import is_new_format, read_study_file, resolve_study

    path = resolve_study(target, args.data_dir)
    if not path.is_file():
        raise BenchError("missing study", path, "no such study file")
    if not is_new_format(path):
        raise BenchError("old study format", path, "written by the first study page (records "
                         "'design' / 'response'), which this version no longer reads; make "
                         "a new study with `study new`")
    state = read_study_file(path)
    for p in state.problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    for p in state.repeats:
        print(f"warning: {p}", file=sys.stderr)
    rep = report(state)
    if args.json:
        json.dump(rep, sys.stdout, allow_nan=False)
    else:
        print(format_report(rep))


def cli_study(args: argparse.Namespace) -> None:
    """Run ``python -m bench study ...`` (prints; BenchError on bad input)."""
    words = list(args.words)
    if words[0] == "new":
        if len(words) != 2:
            raise BenchError("bad arguments", "study new", "give exactly one study NAME")
        _new(args, words[1])
        return
    if words[0] == "report":
        words = words[1:]
    if len(words) != 1:
        raise BenchError("bad arguments", "study", "use `study new NAME ...`, `study report "
                         "NAME|FILE` or `study FILE`")
    given = [f"--{o.replace('_', '-')}" for o in _NEW_ONLY if getattr(args, o) is not None]
    if given or args.require_prediction:
        raise BenchError("bad arguments", "study report",
                         f"{', '.join(given) or '--require-prediction'} only go with `study new`")
    _report(args, words[0])
