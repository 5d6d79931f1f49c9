"""``python -m bench <command>``: the engine's numbers on the command line.

Bad input exits with status 2 and a last stderr line ``error: <what> in <file>: <why>``;
per-pair problems are warnings (stderr, and ``warnings`` in the JSON) and never stop a run.

Each subcommand imports only what it uses (issue 19): this module loads argparse and the
protocol constants; readers, metrics, the study and Pillow are imported in :func:`_run`'s
branches, and the study's options only when the command is ``study``
(``tests/test_startup.py`` checks what ``revisited`` loads).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError
from bench.protocol import BENCHMARKS, METRICS, PIXEL_SETUPS, PROTOCOLS, SETUPS


def _fmt(x) -> str:
    return "  n/a" if x is None else f"{100 * x:6.2f}"


def _print_revisited(d: dict) -> None:
    print(f"{'setup':8} {'mAP':>7} {'mP@1':>7} {'mP@5':>7} {'mP@10':>7}")
    for setup in SETUPS:
        r = d[setup]
        mp = r["mP@k"]
        print(f"{setup:8} {_fmt(r['mAP']):>7} {_fmt(mp.get('1')):>7} {_fmt(mp.get('5')):>7} "
              f"{_fmt(mp.get('10')):>7}")
    print("(percent; per-query AP with --json)")


def _print_pixel(d: dict) -> None:
    print(f"protocol: {d['protocol']}   benchmark: {d['benchmark']}   "
          f"pairs with a prediction: {len(d['pairs'])}")
    has_map = "mAP@k" in d["medium"]
    head = f"{'setup':8} {'mIoU bbox':>10} {'mIoU seg':>10}"
    if has_map:
        head += f" {'mAP@k':>8} {'image mAP':>10}"
    print(head)
    for setup in PIXEL_SETUPS:
        r = d[setup]
        line = f"{setup:8} {_fmt(r['mIoU']['bbox']):>10} {_fmt(r['mIoU']['seg']):>10}"
        if has_map:
            line += f" {_fmt(r['mAP@k']):>8} {_fmt(r['mAP']):>10}"
        print(line)
    if d["warnings"]:
        print(f"{len(d['warnings'])} warnings (see stderr)")


def _print_gpr(d: dict) -> None:
    print(f"GPR1200 mAP: {_fmt(d['mAP'])}   ({d['n_images']} images, {d['n_categories']} categories)"
          + (f"   protocol: {d['protocol']}" if "protocol" in d else ""))
    for k, v in d["subsets"].items():
        print(f"  {k:10} {_fmt(v)}")
    if d["n_images"] != 12_000:
        print("  (not 12,000 images: the subsets are six equal contiguous blocks of categories,"
              " named as in GPR1200)")


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; *argv* (default ``sys.argv[1:]``) only decides whether the
    study's options are loaded (they import :mod:`bench.study.command`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    prog = "python -m bench" if Path(sys.argv[0]).name == "__main__.py" else "retbench"
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("revisited", help="ROxford/RParis mAP and mP@k (easy, medium, hard)")
    r.add_argument("--gnd", required=True, help="gnd_<dataset>.pkl")
    r.add_argument("--ranks", required=True, help="ranks .npy, shape (n_db, n_queries)")
    r.add_argument("--protocol", choices=PROTOCOLS, default="official")
    r.add_argument("--json", action="store_true", help="JSON on stdout")

    x = sub.add_parser("pixel", help="PROxford/PRParis mIoU and mAP@k")
    x.add_argument("--gnd", required=True)
    x.add_argument("--labels-root", required=True,
                   help="folder the label paths are relative to (pixel_retrieval_benchmarks/)")
    x.add_argument("--pair-labels", required=True, help="<short>_pair2labelpath.npy")
    x.add_argument("--matches", required=True, help="matching_result/p<short>.npy (e.g. proxford.npy)")
    x.add_argument("--ranks", help="image-level ranks .npy (enables mAP@k)")
    x.add_argument("--benchmark", choices=BENCHMARKS,
                   help="which queries are ignored in mAP@k (default: from the gnd name)")
    x.add_argument("--protocol", choices=PROTOCOLS, default="official")
    x.add_argument("--json", action="store_true")

    t = sub.add_parser("triage", help="failure type of every positive pair and what fixing "
                       "each type would buy in mAP@k (docs/PROTOCOLS.md §5)")
    t.add_argument("--gnd", required=True)
    t.add_argument("--labels-root", required=True,
                   help="folder the label paths are relative to (pixel_retrieval_benchmarks/)")
    t.add_argument("--pair-labels", required=True, help="<short>_pair2labelpath.npy")
    t.add_argument("--matches", required=True, help="matching_result/p<short>.npy (e.g. proxford.npy)")
    t.add_argument("--ranks", required=True, help="image-level ranks .npy")
    t.add_argument("--benchmark", choices=BENCHMARKS,
                   help="which queries are ignored in mAP@k (default: from the gnd name)")
    t.add_argument("--protocol", choices=PROTOCOLS, default="official")
    t.add_argument("--setup", choices=PIXEL_SETUPS, default="medium")
    t.add_argument("--k", type=int, default=100, help="cut-off, junk-free positions (default 100)")
    t.add_argument("--iou", type=float, default=0.5, help="IoU threshold of 'ok' (default 0.5)")
    t.add_argument("--iou-kind", choices=("bbox", "seg"), default="bbox",
                   help="IoU of the taxonomy and of mAP@k (seg needs --protocol strict)")
    t.add_argument("--json", action="store_true")

    g = sub.add_parser("gpr1200", help="GPR1200 mAP and its six subsets")
    g.add_argument("--images", required=True, help="folder of {category}_{name}.jpg")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--embeddings", help="(n, d) .npy in file order")
    src.add_argument("--indices", help="(n, k) .npy neighbour lists")
    g.add_argument("--metric", choices=METRICS, default="cosine")
    g.add_argument("--order", help="text file, one image name per line (embedding order)")
    g.add_argument("--protocol", choices=PROTOCOLS, default="official",
                   help="official: the released float32-as-given product; strict: exact "
                        "float64 scores (docs/PROTOCOLS.md §3)")
    g.add_argument("--json", action="store_true")

    d = sub.add_parser("demo", help="build (or find) the embedded synthetic demo benchmark")
    d.add_argument("--out", help="folder (default: the cache folder)")
    d.add_argument("--force", action="store_true", help="rebuild even if built")
    d.add_argument("--small", action="store_true", help="a small demo (for tests)")
    d.add_argument("--json", action="store_true")

    u = sub.add_parser("study", help="create a user study (`study new NAME ...`) or report "
                       "one (`study report NAME|FILE`, or `study FILE`); docs/PROTOCOLS.md §7")
    if command == "study":  # its options import bench.study.command: only when used
        from bench.study.command import add_arguments as _study_arguments

        _study_arguments(u)

    a = sub.add_parser("app", help="launch the inspection app (the demo included) in a browser "
                       "tab: the same app as `make run`, from any folder")
    a.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    a.add_argument("--address", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; 0.0.0.0 serves the network)")
    a.add_argument("--data-root", action="append", default=[], metavar="DIR",
                   help="a folder whose files the app may open (repeat it; default: the "
                   "current folder and the demo)")
    a.add_argument("--no-demo", action="store_true", help="do not build the demo first")
    a.add_argument("--print", action="store_true", dest="print_only",
                   help="print the server command instead of running it")
    a.add_argument("--json", action="store_true", help=argparse.SUPPRESS)

    w = sub.add_parser("discover", help="list datasets and methods in a released-layout folder")
    w.add_argument("root")
    w.add_argument("--json", action="store_true")

    c = sub.add_parser("compare", help="compare methods per query, with paired significance tests")
    c.add_argument("root", help="a released-layout folder (as `discover` reads it)")
    c.add_argument("--dataset", action="append", required=True,
                   help="dataset name (repeat it, or NAME1,NAME2, for several)")
    c.add_argument("--methods", nargs="+", required=True, help="two or more method names")
    c.add_argument("--protocol", choices=PROTOCOLS, default="official")
    c.add_argument("--json", action="store_true")
    c.add_argument("--csv", help="write the pair statistics to this CSV file")
    c.add_argument("--csv-per-query", help="write every per-query value to this CSV file")
    c.add_argument("--latex", help="write the paper-style LaTeX table to this file")
    c.add_argument("--test", choices=("t", "wilcoxon", "permutation"), default="t",
                   help="test behind the LaTeX significance letters (default: t)")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level (LaTeX)")
    c.add_argument("--correction", choices=("holm", "none"), default="holm",
                   help="multiple-comparison correction for the LaTeX letters")
    c.add_argument("--tol", type=float, default=1e-9, help="|delta| below this is a tie")
    c.add_argument("--permutations", type=int, default=10_000,
                   help="sign flips of the randomisation test (exact when 2^n is smaller)")
    c.add_argument("--seed", type=int, default=0, help="seed of the permutation and bootstrap")
    for sp in sub.choices.values():  # size caps of what is read into memory (README, Bad input)
        sp.add_argument("--max-file-mb", type=float, metavar="MB",
                        help="size cap of every pickle, object .npy, labelme JSON and text "
                        "file read (default 256 MB for pickles, 64 MB otherwise; env "
                        "BENCH_MAX_FILE_MB)")
        sp.add_argument("--max-items", type=int, metavar="N",
                        help="items one pickle or JSON file may decode into (default "
                        "10,000,000; env BENCH_MAX_ITEMS)")
        sp.add_argument("--max-pixels", type=int, metavar="N",
                        help="width x height above which an image is refused before it is "
                        "decoded (default 40,000,000; env BENCH_MAX_PIXELS)")
        sp.add_argument("--max-side", type=int, metavar="PX",
                        help="longer side above which an image is refused (default 30,000; "
                        "env BENCH_MAX_SIDE)")
    return p


def _emit_warnings(d: dict) -> None:
    for w in d.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from bench import evaluate as ev  # light: readers and metrics load in its functions

    if args.command == "revisited":
        _, res = ev.run_revisited(args.gnd, args.ranks, protocol=args.protocol)
        d = ev.revisited_json(res)
        d["protocol"] = args.protocol
        json.dump(d, sys.stdout) if args.json else _print_revisited(d)
    elif args.command == "pixel":
        _, res = ev.run_pixel(args.gnd, pair_labels=args.pair_labels,
                              labels_root=args.labels_root, matches=args.matches,
                              ranks_path=args.ranks, protocol=args.protocol,
                              benchmark=args.benchmark)
        d = ev.pixel_json(res)
        _emit_warnings(d)
        json.dump(d, sys.stdout) if args.json else _print_pixel(d)
    elif args.command == "triage":
        from bench.triage import cli_triage

        cli_triage(args)
    elif args.command == "gpr1200":
        imgs, res = ev.run_gpr1200(args.images, embeddings=args.embeddings, indices=args.indices,
                                   metric=args.metric, order=args.order,
                                   protocol=args.protocol)
        d = ev.gpr_json(imgs, res)
        d["protocol"] = args.protocol
        json.dump(d, sys.stdout) if args.json else _print_gpr(d)
    elif args.command == "demo":
        from pathlib import Path

        from bench.demo import build_demo, default_demo_dir, demo_is_built

        root = Path(args.out) if args.out else default_demo_dir()
        scale = "small" if args.small else "full"
        was = demo_is_built(root, scale) and not args.force

        def progress(frac: float, msg: str) -> None:
            if not args.json:
                print(f"\r[{int(100 * frac):3d}%] {msg[:60]:60}", end="", file=sys.stderr)

        try:
            paths = build_demo(root, scale=scale, force=args.force, progress=progress)
        except FileExistsError as exc:
            raise BenchError("refused to build the demo", root,
                             f"{exc}; choose an empty or new folder with --out") from None
        if not args.json:
            print(file=sys.stderr)
        d = paths.to_json()
        if args.json:
            json.dump(d, sys.stdout)
        else:
            print(f"demo {'found' if was else 'built'} at {paths.root}")
            print(json.dumps(d, indent=2))
    elif args.command == "study":
        from bench.study.command import cli_study

        cli_study(args)
    elif args.command == "compare":
        from bench.compare_report import cli_compare

        cli_compare(args)
    elif args.command == "app":
        from bench.launch import launch_app

        return launch_app(port=args.port, address=args.address, data_roots=args.data_root,
                          build_demo=not args.no_demo, print_only=args.print_only)
    elif args.command == "discover":
        from bench.workspace import discover, discovery_json, discovery_text

        found = discover(args.root)
        json.dump(discovery_json(found), sys.stdout) if args.json else print(
            discovery_text(found))
    if args.json:
        sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser(argv).parse_args(argv)
    try:
        from bench.formats import images
        from bench.formats.files import configure

        mb, items = getattr(args, "max_file_mb", None), getattr(args, "max_items", None)
        if (mb is not None and not 0 < mb < float("inf")) or (items is not None and items < 1):
            raise BenchError("bad option", "--max-file-mb/--max-items", "must be positive")
        configure(max_file_mb=mb, max_items=items)
        px, side = getattr(args, "max_pixels", None), getattr(args, "max_side", None)
        if (px is not None and px < 1) or (side is not None and side < 1):
            raise BenchError("bad option", "--max-pixels/--max-side", "must be positive")
        images.configure(max_pixels=px, max_side=side)  # also exported to a launched app
        return _run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory in the input files: they are larger than this machine "
              "can hold", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except (RecursionError, LookupError, OverflowError, ValueError, UnicodeError,
            TypeError) as exc:  # last resort: hostile input a reader did not catch
        msg = str(exc).splitlines()[0][:300] if str(exc) else ""
        print(f"error: unusable input in <input>: {type(exc).__name__}: {msg} (no reader "
              "caught it; please report this with the file)", file=sys.stderr)
        return 2
