"""``python -m bench study ...`` (docs/PROTOCOLS.md §7)::

    python -m bench study new NAME --dataset D [--root ROOT] --conditions none,ground_truth[,method:M ...]
        --trials N --catch F --seed S [--order shuffled|blocked] [--practice K]
        [--require-prediction] [--consent-file F] [--instructions-file F]
        [--platform none|prolific|mturk|param:NAME] [--completion-code CODE]
        [--completion-url URL] [--data-dir DIR] [--json]
    python -m bench study report NAME|FILE [--data-dir DIR] [--json]
    python -m bench study FILE            (= report FILE)
    python -m bench study export NAME|FILE --format csv|parquet|jsonl [--out FILE]
    python -m bench study plan NAME [--participants N] [--json]
        (or with the options of `new` instead of NAME's study: plans without creating)
    python -m bench study power NAME [--measure hit_rate|dprime] [--effect X]
        [--participants N[,N...]] [--sims K] [--pilot NAME|FILE] [--json]

``new`` also takes ``--allow-repeats``, ``--min-catch N``, ``--exclusions-file F`` (a
JSON object of :class:`bench.study.design.ExclusionRules` fields), ``--debrief-file F``,
``--contact TEXT`` and ``--sims K`` (simulations of the power estimate it prints; 0
skips it). ``plan --json`` prints :func:`bench.study.design.plan`; ``power --json``
prints :func:`bench.study.power.power` (docs/PROTOCOLS.md §7.2, §7.5).

``new`` without ``--root`` uses the embedded demo (built on first use). ``--json``
prints ``{"study", "database", "platform", "link", "completion_code",
"completion_url"}``; ``link`` is the participant link's path and query in the
platform's form (:func:`bench.study.platforms.participant_link`; for ``none``
``/study?study=NAME``, to which a lab id is added as ``&p=ID``). The study goes to the
database of :func:`bench.study.store.database_url` (``$BENCH_STUDY_DB``, else SQLite in
the data folder). ``report`` prints :func:`bench.study.stats.report` (``--json``) or a
short table; ``export`` writes the tidy table and its codebook
(:mod:`bench.study.export`). A JSON Lines study of the earlier store is imported into the
database when first opened by name (a message on stderr); a file of the first,
two-condition study format is refused with an error (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError

_NEW_ONLY = ("dataset", "root", "conditions", "trials", "catch", "seed", "order", "practice",
             "consent_file", "instructions_file", "platform", "completion_code",
             "completion_url", "min_catch", "exclusions_file", "debrief_file", "contact")
_EXPORT_ONLY = ("format", "out")
_POWER_ONLY = ("measure", "effect", "pilot")


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
    u.add_argument("--platform", help="new: recruiting platform: none (default), prolific, "
                                      "mturk or param:NAME (the id's query parameter)")
    u.add_argument("--completion-code", help="new: code shown at the end (default: Prolific "
                                             "one made per study, else one per participant)")
    u.add_argument("--completion-url", help="new: URL the end screen redirects to ({code} is "
                                            "replaced by the code)")
    u.add_argument("--format", choices=("csv", "parquet", "jsonl"),
                   help="export: the table's format")
    u.add_argument("--out", help="export: output file (default: NAME-trials.csv|.parquet or "
                                 "NAME.jsonl in the current folder)")
    u.add_argument("--allow-repeats", action="store_true",
                   help="new: let a participant meet a query more than once (small datasets; "
                        "recorded, and the report says so)")
    u.add_argument("--min-catch", type=int, help="new: minimum catch trials per condition and "
                                                  "participant (default 4; warns below)")
    u.add_argument("--exclusions-file", help="new: exclusion rules (a JSON object; defaults: "
                                             "docs/PROTOCOLS.md §7.2)")
    u.add_argument("--debrief-file", help="new: end-screen text (UTF-8; {code} = the "
                                          "participant's code)")
    u.add_argument("--contact", help="new: contact line shown on the end screen")
    u.add_argument("--participants", help="plan: participants to show (default one per "
                                          "group); power: numbers to try, comma-separated")
    u.add_argument("--measure", choices=("hit_rate", "dprime"),
                   help="power: the effect is a difference in hit rate (default) or in d'")
    u.add_argument("--effect", type=float, help="power: the difference sought (default 0.10 "
                                                "in hit rate, 0.5 in d')")
    u.add_argument("--sims", type=int, help="power (and new): simulated studies per number "
                                            "of participants (default 40; new: 10, 0 skips)")
    u.add_argument("--pilot", help="power: a pilot study whose data give the base rates and "
                                   "variances (default: stated defaults)")
    u.add_argument("--address", help="serve: address of the participant server (default "
                                      "127.0.0.1; 0.0.0.0 serves the network)")
    u.add_argument("--port", type=int, help="serve: port (default 8502)")
    u.add_argument("--workers", type=int, help="serve: server processes (default 2)")
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


def _design_options(args: argparse.Namespace, what: str) -> dict:
    """The design options of ``new`` (and of ``plan`` without a study), checked."""
    missing = [f"--{o}" for o in ("dataset", "conditions", "trials", "catch", "seed")
               if getattr(args, o) is None]
    if missing:
        raise BenchError("missing options", what, f"give {', '.join(missing)}")
    options = {"order": args.order or "shuffled",
               "require_prediction": bool(args.require_prediction),
               "allow_repeats": bool(args.allow_repeats)}
    if args.practice is not None:
        options["n_practice"] = args.practice
    if args.min_catch is not None:
        options["min_catch"] = args.min_catch
    for key, path in (("consent", args.consent_file), ("instructions", args.instructions_file),
                      ("debrief", args.debrief_file)):
        text = _text_file(path)
        if text is not None:
            options[key] = text
    if args.contact is not None:
        options["contact"] = args.contact
    if args.exclusions_file is not None:
        text = _text_file(args.exclusions_file)
        try:
            options["exclusions"] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchError("bad exclusions file", args.exclusions_file,
                             f"not a JSON object ({exc.msg})") from None
    return options


def _design_lines(d, power: dict | None) -> list[str]:
    """What `study new` and `study plan` say about a design: catch trials per condition,
    the hard/random share, repeats, the power estimate, the warnings."""
    from bench.study.design import design_warnings

    src = d.catch_sources
    out = [f"catch trials: {d.n_catch} ({src['hard']} hard negatives, {src['random']} "
           f"random), at least {d.catch_per_condition} per condition and participant "
           f"(minimum {d.min_catch}); every query met {d.meetings} time(s)"
           + (" (repeats allowed)" if d.allow_repeats else "")
           + f"; practice queries {', '.join(sorted({t.query for t in d.practice})) or 'none'}"]
    if power is not None:
        if power.get("error"):
            out.append(f"power: {power['error']}")
        else:
            g = ", ".join(f"{r['participants']}: {r['power']:.0%}" for r in power["grid"])
            need = power["needed"]
            out.append(f"power ({power['measure']} +{power['effect']:g} in "
                       f"{power['condition']} vs {power['reference']}, {power['n_sims']} "
                       f"simulations each, alpha {power['alpha']}): {g}; "
                       + (f"about {need} participants for {power['target']:.0%} power"
                          if need else f"{power['target']:.0%} not reached in the grid"))
    out += [f"warning: {w}" for w in design_warnings(d)]
    return out


def _power_of(d, args: argparse.Namespace, default_sims: int) -> dict | None:
    from bench.study.power import pilot_values, power

    sims = default_sims if args.sims is None else args.sims
    if sims <= 0 or len(d.conditions) < 2:
        return None
    base = None
    if getattr(args, "pilot", None):
        base = pilot_values(study_state(args.pilot, args.data_dir))
    grid = _int_list(args.participants, "--participants") if args.participants else None
    measure = args.measure or "hit_rate"
    effect = args.effect if args.effect is not None else (0.10 if measure == "hit_rate"
                                                          else 0.5)
    try:
        return power(d, measure=measure, effect=effect, participants=grid, n_sims=sims,
                     base=base)
    except ValueError as exc:
        return {"error": str(exc)}


def _int_list(text: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise BenchError("bad arguments", what, f"{text!r} is not a list of integers") from None
    if not out or min(out) < 1:
        raise BenchError("bad arguments", what, "give numbers >= 1")
    return out


def _new(args: argparse.Namespace, name: str) -> None:
    from bench.study.platforms import participant_link
    from bench.study.store import create_study

    options = _design_options(args, "study new")
    try:
        store, warnings = create_study(name, args.dataset, root=args.root,
                                       conditions=args.conditions, n_trials=args.trials,
                                       catch=args.catch, seed=args.seed,
                                       data_dir=args.data_dir,
                                       platform=args.platform or "none",
                                       completion_code=args.completion_code,
                                       completion_url=args.completion_url, **options)
    except ValueError as exc:
        raise BenchError("bad study options", "study new", str(exc)) from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    d = store.definition
    out = {"study": d.study, "database": store.database, "platform": d.platform,
           "link": participant_link(d.study, d.platform), "completion_code": d.completion_code,
           "completion_url": d.completion_url}
    from bench.study.design import design_warnings

    pw = _power_of(d, args, 10)
    out["design"] = {"catch": d.n_catch, "catch_per_condition": d.catch_per_condition,
                     "min_catch": d.min_catch, "catch_sources": d.catch_sources,
                     "meetings_per_query": d.meetings, "allow_repeats": d.allow_repeats,
                     "warnings": design_warnings(d)}
    out["power"] = pw
    for line in _design_lines(d, pw):
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        json.dump(out, sys.stdout)  # bench.cli ends --json output with a newline
        return
    print(f"study {d.study} created in {store.database}")
    print(f"dataset {d.dataset} ({d.root or 'embedded demo'}); conditions "
          f"{', '.join(d.conditions)}; {d.n_trials} trials per participant ({d.n_catch} "
          f"catch), {len(d.practice)} practice; {d.n_rows} rows of the Latin square")
    if d.platform == "none":
        print(f"participant link: {out['link']}&p=<participant id>")
    else:
        print(f"participant link ({d.platform}): {out['link']}")
    if d.completion_code:
        print(f"completion code: {d.completion_code}")


def _report(args: argparse.Namespace, target: str) -> None:
    from bench.study.stats import format_report, report

    state = study_state(target, args.data_dir)
    for p in state.problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    for p in state.repeats:
        print(f"warning: {p}", file=sys.stderr)
    rep = report(state)
    if args.json:
        json.dump(rep, sys.stdout, allow_nan=False)
    else:
        print(format_report(rep))


def study_state(target: str, data_dir: str | None):
    """The :class:`~bench.study.store.StudyState` of a study given by name (from the
    database; a JSON Lines study is imported first, with a message on stderr) or as a
    ``.jsonl`` file (from the database when the study is there, else read from the file;
    a file of the first study format is refused)."""
    from bench.study.store import (
        StudyStore,
        is_new_format,
        read_study_file,
        resolve_study,
    )

    path = resolve_study(target, data_dir)
    if path.name == f"{target}.jsonl":  # a name
        store = StudyStore.open(target, data_dir)
        if store.notice:
            print(store.notice, file=sys.stderr)
        return store.state()
    if path.is_file() and not is_new_format(path):
        raise BenchError("old study format", path, "written by the first study page (records "
                         "'design' / 'response'), which this version no longer reads; make "
                         "a new study with `study new`")
    return read_study_file(path)


def _export(args: argparse.Namespace, target: str) -> None:
    from bench.study.export import write_export

    if args.format is None:
        raise BenchError("missing options", "study export", "give --format csv, parquet or "
                         "jsonl")
    state = study_state(target, args.data_dir)
    for p in state.problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    written = write_export(state, args.format, args.out)
    if args.json:
        json.dump({"study": state.definition.study, "format": args.format,
                   "files": [str(p) for p in written]}, sys.stdout)
        return
    for p in written:
        print(f"wrote {p}")


def _plan(args: argparse.Namespace, target: str) -> None:
    from bench.study.design import new_definition, plan

    n = None
    if args.participants is not None:
        n = _int_list(args.participants, "--participants")
        if len(n) != 1:
            raise BenchError("bad arguments", "study plan", "--participants takes one number")
        n = n[0]
    if args.dataset is not None:  # a design not created: nothing is written
        options = _design_options(args, "study plan")
        try:
            d, warnings = new_definition(target, args.dataset, root=args.root,
                                         conditions=args.conditions, n_trials=args.trials,
                                         catch=args.catch, seed=args.seed, **options)
        except ValueError as exc:
            raise BenchError("bad study options", "study plan", str(exc)) from None
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    else:
        d = study_state(target, args.data_dir).definition
    out = plan(d, n)
    if args.json:
        json.dump(out, sys.stdout, allow_nan=False)
        return
    print(f"study {d.study}: {out['n_participants']} participants shown, {out['groups']} "
          "groups")
    for line in _design_lines(d, None):
        print(line)
    print(f"{'condition':28} {'trials':>6} {'catch':>6} {'positives w/ region':>20} "
          f"{'catch w/ region':>16} {'decoys':>7}")
    for c, sm in out["summary"].items():
        pr = sm["positive_region_share"]
        cr = sm["catch_region_share"]
        print(f"{c[:28]:28} {sm['trials']:>6} {sm['catch']:>6} "
              f"{'n/a' if pr is None else f'{pr:.0%}':>20} "
              f"{'n/a' if cr is None else f'{cr:.0%}':>16} {sm['catch_decoy']:>7}")
    for part in out["participants"]:
        print(f"{part['participant']} (group {part['group']}):")
        for t in part["trials"]:
            tags = [w for w, on in (("practice", t["practice"]), ("catch", t["catch"]),
                                    ("region", t["region"]), ("decoy", t["decoy"])) if on]
            print(f"  {t['query']:>20} -> {t['image']:<24} {t['condition']:<20} "
                  f"{' '.join(tags)}")


def _power(args: argparse.Namespace, target: str) -> None:
    d = study_state(target, args.data_dir).definition
    pw = _power_of(d, args, 40)
    if pw is None:
        raise BenchError("no power estimate", "study power",
                         "a study of one condition has no effect to detect; or --sims is 0")
    if pw.get("error"):
        raise BenchError("bad power options", "study power", pw["error"])
    if args.json:
        json.dump(pw, sys.stdout, allow_nan=False)
        return
    a = pw["assumptions"]
    print(f"study {d.study}: {pw['measure']} {pw['condition']} vs {pw['reference']}, effect "
          f"{pw['effect']:g}; assumed hit rate {a['hit_rate']:.2f}, false-alarm rate "
          f"{a['false_alarm_rate']:.2f}, sd participant {a['sd_participant']:.2f}, sd item "
          f"{a['sd_item']:.2f} ({a['source']})")
    for r in pw["grid"]:
        print(f"  {r['participants']:>5} participants: power {r['power']:.0%} "
              f"[{r['ci'][0]:.0%}, {r['ci'][1]:.0%}]")
    need = pw["needed"]
    print(f"participants needed for {pw['target']:.0%} power: "
          + (str(need) if need else "more than the largest number tried"))


def _serve(args: argparse.Namespace, name: str) -> None:
    """``study serve NAME``: the participant-only server of one study (no Streamlit):
    participants open ``http://HOST:PORT/take?study=NAME...`` (bench/study/web)."""
    import os

    from bench.study.web import serve

    if args.data_dir:
        os.environ["BENCH_STUDY_DIR"] = str(Path(args.data_dir).expanduser())
    workers = args.workers if args.workers is not None else 2
    port = args.port if args.port is not None else 8502
    if not (1 <= workers <= 64) or not (0 < port < 65536):
        raise BenchError("bad arguments", "study serve", "--workers must be 1..64 and --port "
                         "1..65535")
    serve(name, args.address or "127.0.0.1", port, workers)


def cli_study(args: argparse.Namespace) -> None:
    """Run ``python -m bench study ...`` (prints; BenchError on bad input)."""
    words = list(args.words)
    if words[0] in ("plan", "power"):
        if len(words) != 2:
            raise BenchError("bad arguments", f"study {words[0]}",
                             "give exactly one study NAME")
        (_plan if words[0] == "plan" else _power)(args, words[1])
        return
    if words[0] == "new":
        if len(words) != 2:
            raise BenchError("bad arguments", "study new", "give exactly one study NAME")
        _new(args, words[1])
        return
    if words[0] == "serve":
        if len(words) != 2:
            raise BenchError("bad arguments", "study serve", "give exactly one study NAME")
        _serve(args, words[1])
        return
    given = [f"--{o}" for o in ("address", "port", "workers") if getattr(args, o) is not None]
    if given:
        raise BenchError("bad arguments", "study", f"{', '.join(given)} only go with "
                         "`study serve`")
    if words[0] == "export":
        if len(words) != 2:
            raise BenchError("bad arguments", "study export", "give exactly one study NAME")
        _export(args, words[1])
        return
    given = [f"--{o}" for o in _EXPORT_ONLY if getattr(args, o) is not None]
    if given:
        raise BenchError("bad arguments", "study", f"{', '.join(given)} only go with "
                         "`study export`")
    if words[0] == "report":
        words = words[1:]
    if len(words) != 1:
        raise BenchError("bad arguments", "study", "use `study new NAME ...`, `study report "
                         "NAME|FILE` or `study FILE`")
    given = [f"--{o.replace('_', '-')}" for o in _NEW_ONLY if getattr(args, o) is not None]
    if given or args.require_prediction or args.allow_repeats:
        raise BenchError("bad arguments", "study report",
                         f"{', '.join(given) or '--require-prediction / --allow-repeats'} "
                         "only go with `study new`")
    given = [f"--{o}" for o in _POWER_ONLY + ("participants", "sims")
             if getattr(args, o) is not None]
    if given:
        raise BenchError("bad arguments", "study report", f"{', '.join(given)} only go with "
                         "`study plan` / `study power`")
    _report(args, words[0])
