"""``python -m bench <command>``: the engine's numbers on the command line.

Bad input exits with status 2 and a last stderr line ``error: <what> in <file>: <why>``;
per-pair problems are warnings (stderr, and ``warnings`` in the JSON) and never stop a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bench import evaluate as ev
from bench.errors import BenchError


def _fmt(x) -> str:
    return "  n/a" if x is None else f"{100 * x:6.2f}"


def _print_revisited(d: dict) -> None:
    print(f"{'setup':8} {'mAP':>7} {'mP@1':>7} {'mP@5':>7} {'mP@10':>7}")
    for setup in ("easy", "medium", "hard"):
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
    for setup in ("medium", "hard"):
        r = d[setup]
        line = f"{setup:8} {_fmt(r['mIoU']['bbox']):>10} {_fmt(r['mIoU']['seg']):>10}"
        if has_map:
            line += f" {_fmt(r['mAP@k']):>8} {_fmt(r['mAP']):>10}"
        print(line)
    if d["warnings"]:
        print(f"{len(d['warnings'])} warnings (see stderr)")


def _print_gpr(d: dict) -> None:
    print(f"GPR1200 mAP: {_fmt(d['mAP'])}   ({d['n_images']} images, {d['n_categories']} categories)")
    for k, v in d["subsets"].items():
        print(f"  {k:10} {_fmt(v)}")
    if d["n_images"] != 12_000:
        print("  (not 12,000 images: the subsets are six equal contiguous blocks of categories,"
              " named as in GPR1200)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("revisited", help="ROxford/RParis mAP and mP@k (easy, medium, hard)")
    r.add_argument("--gnd", required=True, help="gnd_<dataset>.pkl")
    r.add_argument("--ranks", required=True, help="ranks .npy, shape (n_db, n_queries)")
    r.add_argument("--protocol", choices=("official", "strict"), default="official")
    r.add_argument("--json", action="store_true", help="JSON on stdout")

    x = sub.add_parser("pixel", help="PROxford/PRParis mIoU and mAP@k")
    x.add_argument("--gnd", required=True)
    x.add_argument("--labels-root", required=True,
                   help="folder the label paths are relative to (pixel_retrieval_benchmarks/)")
    x.add_argument("--pair-labels", required=True, help="<short>_pair2labelpath.npy")
    x.add_argument("--matches", required=True, help="matching_result/p<dataset>.npy")
    x.add_argument("--ranks", help="image-level ranks .npy (enables mAP@k)")
    x.add_argument("--benchmark", choices=("proxford", "prparis", "none"),
                   help="which queries are ignored in mAP@k (default: from the gnd name)")
    x.add_argument("--protocol", choices=("official", "strict"), default="official")
    x.add_argument("--json", action="store_true")

    g = sub.add_parser("gpr1200", help="GPR1200 mAP and its six subsets")
    g.add_argument("--images", required=True, help="folder of {category}_{name}.jpg")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--embeddings", help="(n, d) .npy in file order")
    src.add_argument("--indices", help="(n, k) .npy neighbour lists")
    g.add_argument("--metric", choices=("cosine", "dot", "l2"), default="cosine")
    g.add_argument("--order", help="text file, one image name per line (embedding order)")
    g.add_argument("--json", action="store_true")

    d = sub.add_parser("demo", help="build (or find) the embedded synthetic demo benchmark")
    d.add_argument("--out", help="folder (default: the cache folder)")
    d.add_argument("--force", action="store_true", help="rebuild even if built")
    d.add_argument("--small", action="store_true", help="a small demo (for tests)")
    d.add_argument("--json", action="store_true")

    u = sub.add_parser("study", help="analyse a user-study file (with vs without annotation)")
    u.add_argument("file", help="<study>.jsonl written by the app's User study page")
    u.add_argument("--json", action="store_true")

    w = sub.add_parser("discover", help="list datasets and methods in a released-layout folder")
    w.add_argument("root")
    w.add_argument("--json", action="store_true")
    return p


def _emit_warnings(d: dict) -> None:
    for w in d.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
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
    elif args.command == "gpr1200":
        imgs, res = ev.run_gpr1200(args.images, embeddings=args.embeddings, indices=args.indices,
                                   metric=args.metric, order=args.order)
        d = ev.gpr_json(imgs, res)
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
        from pathlib import Path

        from bench.study import analyse, read_study

        if not Path(args.file).is_file():
            raise BenchError("missing study file", args.file, "no such file")
        log = read_study(args.file)
        for p in log.problems:
            print(f"warning: skipped {p}", file=sys.stderr)
        d = analyse(log.responses)
        d["skipped_lines"] = [str(p) for p in log.problems]
        if args.json:
            json.dump(d, sys.stdout)
        else:
            print(f"{d['n_responses']} responses from {d['n_participants']} participants")
            print(f"{'condition':22} {'n':>4} {'accuracy':>9} {'median time':>12}")
            for c in d["conditions"].values():
                acc = "n/a" if c["accuracy"] is None else f"{100 * c['accuracy']:.1f}%"
                rt = "n/a" if c["rt_median"] is None else f"{c['rt_median']:.2f} s"
                print(f"{c['label']:22} {c['n']:>4} {acc:>9} {rt:>12}")
            pp = d["paired_participants"]
            print(f"paired by participant (n={pp['n']}): accuracy sign test "
                  f"p={pp['accuracy']['p_sign']}, time sign test p={pp['time']['p_sign']}")
    elif args.command == "discover":
        from bench.workspace import discover

        found = discover(args.root)
        d = {ds.name: {"gnd": str(ds.gnd), "pair_labels": str(ds.pair_labels or ""),
                       "labels_root": str(ds.labels_root or ""), "images": str(ds.images or ""),
                       "methods": {m.name: {"ranks": str(m.ranks or ""),
                                            "matches": str(m.matches or "")}
                                   for m in ds.methods.values()}} for ds in found}
        print(json.dumps(d, indent=None if args.json else 2))
    if args.json:
        sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
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
