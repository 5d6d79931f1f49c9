"""Time the engine against plain implementations on inputs of real size; print ratios.

    .venv/bin/python benchmarks/bench_engine.py [--only gpr|revisited|startup|pixel] [--quick]

Targets (issues 2, 10 and 19, 2 cores):
- GPR1200, 12,000 x 64 float32 (``--gpr-dim`` for others), cosine: the official protocol
  (the released float32 product, docs/PROTOCOLS.md §3) >= 20x faster than the plain way
  (full sort per query, Python AP loop); the strict protocol (float64 scores) and the
  released eval/utils.py restated (argsort per row, loop over the positives) beside it;
- Revisited, R1M-sized ranks (1,004,993 x 70 int32, memory-mapped), three setups: >= 8x
  faster than the plain way (the released compute_map: np.isin per query + Python loops);
  peak memory <= 1.5 x the ranks file;
- start-up (issue 19): ``python -m bench revisited`` on those ranks, as a whole process,
  within 1.5x of the bare floor process (``python -c``: import numpy, read every rank
  once), both timed in the same run, interleaved;
- pixel seg + bbox IoU and mIoU for 3,000 pairs on images up to 1024 px: < 1 s, seg IoU
  equal to the released code's (cv2.fillPoly on the full S x S canvas) on every pair.
Inputs are synthetic (seeded); nothing here is a real benchmark's number.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import gpr1200 as gpr  # noqa: E402
from bench.metrics.pixel import miou, pair_ious  # noqa: E402


def timeit(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# ------------------------------------------------------------------ GPR1200
def plain_gpr_ap(x: np.ndarray, cats: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Full similarity row, full sort, Python loop over the ranking (the plain way)."""
    out = []
    for q in queries:
        s = x @ x[q]
        order = np.lexsort((np.arange(s.size), -s))
        hits, total, n_pos = 0, 0.0, int(np.count_nonzero(cats == cats[q]))
        for rank, j in enumerate(order.tolist()):
            if cats[j] == cats[q]:
                hits += 1
                total += hits / (rank + 1)
                if hits == n_pos:
                    break
        out.append(total / n_pos)
    return np.array(out)


def released_gpr_ap(x: np.ndarray, cats: np.ndarray, queries: np.ndarray,
                    block: int = 100) -> np.ndarray:
    """GPR1200's eval/utils.py restated: the similarity rows of a block of queries,
    ``np.argsort(...)[:, ::-1]``, then ``get_average_precision_score`` (a Python loop over
    the positives found by ``np.where``)."""
    out = []
    for b0 in range(0, len(queries), block):
        qs = queries[b0:b0 + block]
        idx = np.argsort(x[qs] @ x.T, axis=1)[:, ::-1]
        for r, q in enumerate(qs):
            y_true = cats[idx[r]] == cats[q]
            n_positive = int(np.sum(y_true))
            score, seen = 0.0, 0
            for i in np.where(y_true)[0]:
                seen += 1
                score += seen / (i + 1.0)
            out.append(score / n_positive if n_positive else 0.0)
    return np.array(out)


def bench_gpr(quick: bool, dim: int = 64) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(0)
    n, d, n_cat = 12_000, dim, 1_200
    cats = np.repeat(np.arange(n_cat), n // n_cat)
    centres = rng.normal(size=(n_cat, d)).astype(np.float32)
    # easy and hard categories; cluster strength grows with sqrt(768 / d) so that the
    # synthetic mAP stays near 0.45 whatever the dimension
    strength = (rng.uniform(0.15, 0.5, size=n_cat) * 2.2 * (64 / d) ** 0.5).astype(np.float32)
    emb = (centres[cats] * strength[cats, None]
           + rng.normal(size=(n, d)).astype(np.float32)).astype(np.float32)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)  # float32, as the released code
    t_prod32 = timeit(lambda: x @ x.T, 3)  # the official floor: the released product
    sc = gpr.prepare(emb, "cosine")
    buf = np.empty((gpr._BLOCK, n))

    def product64():  # strict: the float64 BLAS product of every block
        for s in range(0, n, gpr._BLOCK):
            sc.block(slice(s, s + gpr._BLOCK), out=buf)

    t_prod64 = timeit(product64, 3)
    res = {}
    t_off = timeit(lambda: res.__setitem__("o", gpr.evaluate_gpr1200(
        cats, embeddings=emb, protocol="official")), 3)
    t_str = timeit(lambda: res.__setitem__("s", gpr.evaluate_gpr1200(
        cats, embeddings=emb, protocol="strict")), 3)
    n_plain = 120 if quick else 600
    qs = np.linspace(0, n - 1, n_plain).astype(int)
    t_plain = timeit(lambda: plain_gpr_ap(x, cats, qs)) * n / n_plain
    t_rel = timeit(lambda: released_gpr_ap(x, cats, qs)) * n / n_plain
    err = float(np.max(np.abs(plain_gpr_ap(x, cats, qs[:50]) - res["o"].ap[qs[:50]])))
    r_off, r_str, r_rel = t_plain / t_off, t_plain / t_str, t_rel / t_off
    print(f"GPR1200 12,000 x {d} float32 cosine: mAP official {res['o'].mAP:.6f}, strict "
          f"{res['s'].mAP:.6f} (synthetic clusters)")
    print(f"  float32 product x @ x.T alone      {t_prod32:6.2f} s   (official floor)")
    print(f"  float64 block products alone       {t_prod64:6.2f} s   (strict floor)")
    print(f"  bench official (float32, released) {t_off:6.2f} s  -> {r_off:5.1f} x plain "
          f"(target >= 20); {t_off / t_prod32:.1f} x its product")
    print(f"  bench strict (float64, exact ties) {t_str:6.2f} s  -> {r_str:5.1f} x plain")
    print(f"  plain: sort + Python AP loop       {t_plain:6.1f} s   (timed on {n_plain} queries)")
    print(f"  released eval/utils.py restated    {t_rel:6.1f} s  -> official is {r_rel:.1f} x "
          f"faster (argsort per row, loop over positives)")
    print(f"  max |AP diff| official vs plain (float32 scores) {err:.1e}")
    return [(f"GPR1200 mAP + subsets, 12,000 x {d} f32 cosine, official",
             f"{t_off:.2f} s (float32 product {t_prod32:.2f} s)",
             f"{r_off:.1f}x plain (target 20); {r_rel:.1f}x released code restated"),
            ("GPR1200 same, strict (float64 scores)",
             f"{t_str:.2f} s (float64 products {t_prod64:.2f} s)", f"{r_str:.1f}x plain")]


# ------------------------------------------------------------------ Revisited R1M
def plain_compute_map(ranks: np.ndarray, gnd: list[dict], kappas=(1, 5, 10)) -> float:
    """The released compute_map, restated: np.isin per query, Python loops for junk and AP."""
    m, nempty = 0.0, 0
    for i in range(len(gnd)):
        qgnd = np.array(gnd[i]["ok"])
        if qgnd.shape[0] == 0:
            nempty += 1
            continue
        qgndj = np.array(gnd[i]["junk"])
        col = np.asarray(ranks[:, i])
        pos = np.arange(ranks.shape[0])[np.isin(col, qgnd)]
        junk = np.arange(ranks.shape[0])[np.isin(col, qgndj)]
        k = ij = 0
        if len(junk):
            ip = 0
            while ip < len(pos):
                while ij < len(junk) and pos[ip] > junk[ij]:
                    k += 1
                    ij += 1
                pos[ip] = pos[ip] - k
                ip += 1
        ap = 0.0
        for j in range(len(pos)):
            r = pos[j]
            p0 = 1.0 if r == 0 else j / r
            ap += (p0 + (j + 1) / (r + 1)) / len(qgnd) / 2
        m += ap
        pos = pos + 1
        for kk in kappas:
            kq = min(max(pos), kk)
            _ = (pos <= kq).sum() / kq
    return m / (len(gnd) - nempty)


# Peak memory from /proc/self/status VmHWM (this process's own address space); ru_maxrss
# would also count the parent's memory at fork time on Linux.
_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from bench.evaluate import run_revisited
t = time.perf_counter()
g, r = run_revisited({gnd!r}, {ranks!r})
dt = time.perf_counter() - t
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].split()[1]
print(dt, int(hwm) * 1024, r["medium"].mAP)
"""


def make_r1m(folder: Path, n_rows: int = 1_004_993, n_q: int = 70, n_db: int = 4_993):
    rng = np.random.default_rng(1)
    gnd = []
    for _ in range(n_q):
        p = rng.permutation(n_db)
        ne, nh, nj = rng.integers(5, 60), rng.integers(5, 60), rng.integers(5, 40)
        gnd.append({"easy": p[:ne].tolist(), "hard": p[ne:ne + nh].tolist(),
                    "junk": p[ne + nh:ne + nh + nj].tolist(), "bbx": [0, 0, 10, 10]})
    gpath = folder / "gnd_roxford5k.pkl"
    with open(gpath, "wb") as fh:
        pickle.dump({"imlist": [f"im{i}" for i in range(n_db)],
                     "qimlist": [f"q{i}" for i in range(n_q)], "gnd": gnd}, fh)
    rpath = folder / "R1Moxford.npy"
    mm = np.lib.format.open_memmap(rpath, mode="w+", dtype=np.int32, shape=(n_rows, n_q))
    block = np.empty((n_rows, 10), dtype=np.int32)
    for q0 in range(0, n_q, 10):
        for c in range(10):
            g = gnd[q0 + c]
            rel = np.array(g["easy"] + g["hard"] + g["junk"], dtype=np.int32)
            rest = rng.permutation(n_rows).astype(np.int32)
            rest = rest[~np.isin(rest, rel)]
            at = np.sort(rng.choice(20_000, size=rel.size, replace=False))
            block[:, c] = np.insert(rest, at - np.arange(rel.size), rng.permutation(rel))
        mm[:, q0:q0 + 10] = block
    mm.flush()
    del mm
    return gpath, rpath, gnd


# The floor of a revisited evaluation as a process: start Python, import numpy, read every
# rank once (memory-mapped, as the engine reads them). Nothing of bench is imported.
_FLOOR = "import numpy as np; r = np.load({ranks!r}, mmap_mode='r'); int(r.max())"


def _wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t


def bench_startup(gpath: Path, rpath: Path, repeat: int) -> list[tuple[str, str, str]]:
    """Whole processes, interleaved so that the machine's load hits each alike; the median
    of *repeat* runs (and the minimum) of each."""
    py = sys.executable
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import numpy'": [py, "-c", "import numpy"],
        "floor: import numpy, read the ranks": [py, "-c", _FLOOR.format(ranks=str(rpath))],
        "python -m bench --help": [py, "-m", "bench", "--help"],
        "python -m bench revisited --json": [py, "-m", "bench", "revisited", "--gnd",
                                             str(gpath), "--ranks", str(rpath), "--json"],
    }
    for cmd in cmds.values():  # warm the page cache and the .pyc files once
        _wall(cmd)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for k, cmd in cmds.items():
            times[k].append(_wall(cmd))
    med = {k: float(np.median(v)) for k, v in times.items()}
    low = {k: float(np.min(v)) for k, v in times.items()}
    floor, cli = "floor: import numpy, read the ranks", "python -m bench revisited --json"
    print(f"Start-up: whole processes on the R1M-sized ranks, median (min) of {repeat}, "
          "interleaved")
    for k in cmds:
        print(f"  {k:38} {med[k]:6.3f} s ({low[k]:.3f})")
    ratio, ratio_min = med[cli] / med[floor], low[cli] / low[floor]
    print(f"  CLI / floor                            {ratio:6.2f} x  (min/min {ratio_min:.2f}; "
          "target <= 1.5)")
    return [("`python -m bench revisited` process, 1,004,993 x 70 ranks",
             f"{med[cli]:.3f} s (floor {med[floor]:.3f} s: import numpy + read the ranks)",
             f"{ratio:.2f}x the floor (target <= 1.5)")]


def bench_revisited(quick: bool, *, plain: bool = True, startup: bool = True
                    ) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        t0 = time.perf_counter()
        gpath, rpath, gnd = make_r1m(Path(tmp))
        print(f"Revisited R1M-sized ranks written in {time.perf_counter() - t0:.0f} s "
              f"({rpath.stat().st_size / 2**20:.0f} MiB)")
        if startup:
            rows += bench_startup(gpath, rpath, 5 if quick else 11)
        if not plain:
            return rows
        out = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT), gnd=str(gpath),
                                                                  ranks=str(rpath))],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"bench run failed:\n{out.stderr}")
        t_bench, peak, m_bench = out.stdout.split()
        t_bench, peak = float(t_bench), int(peak)
        ranks = np.load(rpath, mmap_mode="r")
        setups = {
            "easy": [{"ok": g["easy"], "junk": g["junk"] + g["hard"]} for g in gnd],
            "medium": [{"ok": g["easy"] + g["hard"], "junk": g["junk"]} for g in gnd],
            "hard": [{"ok": g["hard"], "junk": g["junk"] + g["easy"]} for g in gnd],
        }
        nq = 10 if quick else 70
        t = time.perf_counter()
        m_plain = {s: plain_compute_map(ranks[:, :nq], v[:nq]) for s, v in setups.items()}
        t_plain = (time.perf_counter() - t) * 70 / nq
        size = rpath.stat().st_size
    print(f"  bench, 3 setups (in-process)  {t_bench:7.2f} s   peak RSS {peak / 2**20:.0f} MiB = "
          f"{peak / size:.2f} x the ranks file (target <= 1.5)")
    print(f"  plain compute_map x 3 setups  {t_plain:7.2f} s   ({nq} queries timed)")
    print(f"  speed-up vs plain             {t_plain / t_bench:7.1f} x (target >= 8); "
          f"medium mAP {float(m_bench):.6f}" + (f" vs plain {m_plain['medium']:.6f}" if nq == 70 else ""))
    return rows + [("Revisited 3 setups, 1,004,993 x 70 int32 mmap",
                    f"{t_bench:.2f} s, peak {peak / size:.2f} x file",
                    f"{t_plain / t_bench:.1f}x faster than plain")]


# ------------------------------------------------------------------ pixel
def plain_seg_iou(pred: np.ndarray, gt: list[np.ndarray]) -> float:
    """The released code's way: cv2.fillPoly of each polygon on a float64 S x S canvas."""
    import cv2

    p = pred.astype(int)
    g = [s.astype(int) for s in gt]
    size = int(max(p.max(), max(s.max() for s in g)))
    a, b = np.zeros((size, size)), np.zeros((size, size))
    cv2.fillPoly(a, pts=[p.astype(np.int32)], color=(255, 255, 255))
    for s in g:
        cv2.fillPoly(b, pts=[s.astype(np.int32)], color=(255, 255, 255))
    inter = np.sum(np.logical_and(a, b))
    union = np.sum(a > 0) + np.sum(b > 0) - inter
    return float(inter / union) if union else 0.0


def window_seg_ious(preds: list[np.ndarray], gts: list[list[np.ndarray]]) -> np.ndarray:
    """The alternative considered: cv2.fillPoly on each pair's bounding window (the union
    of the shapes' boxes cut to the S x S canvas; fillPoly's offset moves the points)."""
    import cv2

    out = np.empty(len(preds))
    for k, (p, gl) in enumerate(zip(preds, gts, strict=True)):
        p = p.astype(int)
        gl = [g.astype(int) for g in gl]
        allv = np.concatenate([p, *gl])
        s = max(int(allv.max()), 0)
        x0, y0 = max(int(allv[:, 0].min()), 0), max(int(allv[:, 1].min()), 0)
        x1, y1 = min(int(allv[:, 0].max()), s - 1), min(int(allv[:, 1].max()), s - 1)
        if x0 > x1 or y0 > y1:
            out[k] = 0.0
            continue
        a = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        b = np.zeros_like(a)
        cv2.fillPoly(a, [p.astype(np.int32)], 1, offset=(-x0, -y0))
        for g in gl:
            cv2.fillPoly(b, [g.astype(np.int32)], 1, offset=(-x0, -y0))
        union = cv2.countNonZero(a | b)
        out[k] = cv2.countNonZero(a & b) / union if union else 0.0
    return out


def bench_pixel(quick: bool) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(2)
    preds, gts = [], []
    for _ in range(3000):
        w, h = 1024, int(rng.integers(600, 1024))
        c = rng.random(2) * [w * 0.6, h * 0.6] + [w * 0.2, h * 0.2]
        r = rng.random() * 250 + 30
        ang = np.sort(rng.random(int(rng.integers(6, 30)))) * 2 * np.pi
        rad = r * (0.7 + 0.3 * rng.random(ang.size))
        gt = np.c_[c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)]
        box = np.array([gt.min(0), [gt[:, 0].max(), gt[:, 1].min()], gt.max(0),
                        [gt[:, 0].min(), gt[:, 1].max()]]) + rng.normal(size=(4, 2)) * r * 0.2
        preds.append(box)
        gts.append([gt])

    def run():
        b, s = pair_ious(preds, gts)
        return b, s

    t_b = timeit(run, 3)
    b, s = run()
    t_w = timeit(lambda: window_seg_ious(preds, gts), 3)
    w_err = float(np.max(np.abs(window_seg_ious(preds, gts) - s)))
    # mIoU aggregation over a synthetic gnd of 70 queries
    from bench.formats.revisited import Gnd

    nq = 70
    idx = np.array_split(np.arange(3000), nq)
    gnd = Gnd(path=Path("synthetic"), name="synthetic", imlist=[f"{i}" for i in range(3000)],
              qimlist=[f"q{q}" for q in range(nq)], easy=[ix[: len(ix) // 2] for ix in idx],
              hard=[ix[len(ix) // 2:] for ix in idx], junk=[np.zeros(0, int)] * nq)
    pairs = {(q, int(i)): (float(b[i]), float(s[i])) for q in range(nq) for i in idx[q]}
    t_m = timeit(lambda: [miou(gnd, pairs, st) for st in ("medium", "hard")], 3)
    n_plain = 300 if quick else 3000
    t = time.perf_counter()
    ref = [plain_seg_iou(preds[i], gts[i]) for i in range(n_plain)]
    t_plain = (time.perf_counter() - t) * 3000 / n_plain
    diff = float(np.max(np.abs(np.array(ref) - s[:n_plain])))
    print("Pixel: 3,000 pairs, images up to 1024 px, 6-30 vertex objects, box predictions")
    print(f"  bench bbox + seg IoU          {t_b:7.2f} s (target < 1 s);  mIoU aggregation {t_m * 1000:.0f} ms")
    print(f"  cv2.fillPoly per pair window  {t_w:7.2f} s (seg only; the alternative considered); "
          f"max |seg IoU diff| {w_err:.1e}")
    print(f"  released way (full S x S)     {t_plain:7.1f} s  ({n_plain} pairs timed)  "
          f"speed-up {t_plain / t_b:.0f}x; max |seg IoU diff| vs released way {diff:.1e} "
          f"(OpenCV {__import__('cv2').__version__})")
    return [("Pixel bbox+seg IoU + mIoU, 3,000 pairs, <= 1024 px", f"{t_b + t_m:.2f} s",
             f"{t_plain / t_b:.0f}x faster than the released way; seg IoU diff {diff:.0e}")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("gpr", "revisited", "startup", "pixel"))
    ap.add_argument("--quick", action="store_true", help="time fewer plain-way queries")
    ap.add_argument("--gpr-dim", type=int, default=64, help="GPR1200 embedding dimension")
    args = ap.parse_args()
    rows = []
    if args.only in (None, "pixel"):
        rows += bench_pixel(args.quick)
    if args.only in (None, "gpr"):
        rows += bench_gpr(args.quick, args.gpr_dim)
    if args.only in (None, "revisited", "startup"):
        rows += bench_revisited(args.quick, plain=args.only != "startup",
                                startup=args.only != "revisited")
    print("\n| input | time | ratio |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
