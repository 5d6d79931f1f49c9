"""Time the engine against plain implementations on inputs of real size; print ratios.

    .venv/bin/python benchmarks/bench_engine.py [--only gpr|revisited|pixel] [--quick]

Targets (issue 2, 2 cores):
- GPR1200, 12,000 x 768 float32: ranking + AP <= 0.5 x the similarity product; whole >= 10x
  faster than the plain way (full sort per query, Python AP loop);
- Revisited, R1M-sized ranks (1,004,993 x 70 int32, memory-mapped), three setups: >= 3x
  faster than the plain way (the released compute_map: np.isin per query + Python loops);
  peak memory <= 1.5 x the ranks file;
- pixel seg + bbox IoU and mIoU for 3,000 pairs on images up to 1024 px: < 1 s.
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


def bench_gpr(quick: bool) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(0)
    n, d, n_cat = 12_000, 768, 1_200
    cats = np.repeat(np.arange(n_cat), n // n_cat)
    centres = rng.normal(size=(n_cat, d)).astype(np.float32)
    strength = rng.uniform(0.15, 0.5, size=n_cat).astype(np.float32)  # easy and hard categories
    emb = (centres[cats] * strength[cats, None]
           + rng.normal(size=(n, d)).astype(np.float32)).astype(np.float32)
    x, _ = gpr.prepare(emb, "cosine")

    blocks: list[np.ndarray] = []

    def product_only():
        blocks.clear()
        for s in range(0, n, gpr._BLOCK):
            blocks.append(gpr.similarities(x, None, slice(s, s + gpr._BLOCK)))

    pos_idx, n_pos = gpr._positives_table(cats)

    def ranking_only():  # the same threaded counting as ap_embeddings, on stored blocks
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            for b, sims in enumerate(blocks):
                s0 = b * gpr._BLOCK

                def work(r0, sims=sims, s0=s0):
                    r1 = min(r0 + 128, sims.shape[0])
                    p = gpr.positive_positions(sims[r0:r1], pos_idx[s0 + r0:s0 + r1])
                    gpr._ap_from_positions(p, n_pos[s0 + r0:s0 + r1])

                list(pool.map(work, range(0, sims.shape[0], 128)))

    t_prod = timeit(product_only, 3)
    t_rank = timeit(ranking_only, 3)
    blocks.clear()
    res = {}
    t_all = timeit(lambda: res.setdefault("r", gpr.evaluate_gpr1200(cats, embeddings=emb)), 2)
    n_plain = 120 if quick else 600
    qs = np.linspace(0, n - 1, n_plain).astype(int)
    t_plain_part = timeit(lambda: plain_gpr_ap(x, cats, qs))
    t_plain = t_plain_part * n / n_plain
    ap_plain = plain_gpr_ap(x, cats, qs[:50])
    err = float(np.max(np.abs(ap_plain - res["r"].ap[qs[:50]])))
    print(f"GPR1200 12,000 x 768 float32 cosine: mAP {res['r'].mAP:.4f} (synthetic clusters)")
    print(f"  similarity product alone      {t_prod:7.2f} s")
    print(f"  ranking + AP alone            {t_rank:7.2f} s   = {t_rank / t_prod:.2f} x product "
          "(target <= 0.5)")
    print(f"  bench total (evaluate_gpr1200) {t_all:6.2f} s")
    print(f"  plain (sort + Python loop)    {t_plain:7.1f} s   (timed on {n_plain} queries, x{n // n_plain})")
    print(f"  speed-up vs plain             {t_plain / t_all:7.1f} x (target >= 10); max |AP diff| {err:.1e}")
    return [("GPR1200 mAP + subsets, 12,000 x 768 f32", f"{t_all:.2f} s (product {t_prod:.2f} s)",
             f"ranking+AP {t_rank / t_prod:.2f} x product; {t_plain / t_all:.0f}x faster than plain")]


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


def bench_revisited(quick: bool) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        t0 = time.perf_counter()
        gpath, rpath, gnd = make_r1m(Path(tmp))
        print(f"Revisited R1M-sized ranks written in {time.perf_counter() - t0:.0f} s "
              f"({rpath.stat().st_size / 2**20:.0f} MiB)")
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
    print(f"  bench, 3 setups (subprocess)  {t_bench:7.2f} s   peak RSS {peak / 2**20:.0f} MiB = "
          f"{peak / size:.2f} x the ranks file (target <= 1.5)")
    print(f"  plain compute_map x 3 setups  {t_plain:7.2f} s   ({nq} queries timed)")
    print(f"  speed-up vs plain             {t_plain / t_bench:7.1f} x (target >= 3); "
          f"medium mAP {float(m_bench):.6f}" + (f" vs plain {m_plain['medium']:.6f}" if nq == 70 else ""))
    return [("Revisited 3 setups, 1,004,993 x 70 int32 mmap", f"{t_bench:.2f} s, peak {peak / size:.2f} x file",
             f"{t_plain / t_bench:.1f}x faster than plain")]


# ------------------------------------------------------------------ pixel
def plain_seg_iou(pred: np.ndarray, gt: list[np.ndarray]) -> float:
    """Full S x S canvas, skimage fill + line edges for every polygon (the plain way)."""
    from skimage.draw import line, polygon

    p = pred.astype(int)
    g = [s.astype(int) for s in gt]
    size = int(max(p.max(), max(s.max() for s in g)))

    def fill(pts):
        m = np.zeros((size, size), bool)
        rr, cc = polygon(pts[:, 1], pts[:, 0], shape=m.shape)
        m[rr, cc] = True
        for a, b in zip(pts, np.roll(pts, -1, axis=0), strict=True):
            rr, cc = line(a[1], a[0], b[1], b[0])
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            m[rr[ok], cc[ok]] = True
        return m

    a = fill(p)
    b = np.zeros_like(a)
    for s in g:
        b |= fill(s)
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


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
    # mIoU aggregation over a synthetic gnd of 70 queries
    from bench.formats.revisited import Gnd

    nq = 70
    idx = np.array_split(np.arange(3000), nq)
    gnd = Gnd(path=Path("synthetic"), name="synthetic", imlist=[f"{i}" for i in range(3000)],
              qimlist=[f"q{q}" for q in range(nq)], easy=[ix[: len(ix) // 2] for ix in idx],
              hard=[ix[len(ix) // 2:] for ix in idx], junk=[np.zeros(0, int)] * nq)
    pairs = {(q, int(i)): (float(b[i]), float(s[i])) for q in range(nq) for i in idx[q]}
    t_m = timeit(lambda: [miou(gnd, pairs, st) for st in ("medium", "hard")], 3)
    n_plain = 100 if quick else 300
    t = time.perf_counter()
    ref = [plain_seg_iou(preds[i], gts[i]) for i in range(n_plain)]
    t_plain = (time.perf_counter() - t) * 3000 / n_plain
    diff = float(np.max(np.abs(np.array(ref) - s[:n_plain])))
    print("Pixel: 3,000 pairs, images up to 1024 px, 6-30 vertex objects, box predictions")
    print(f"  bench bbox + seg IoU          {t_b:7.2f} s (target < 1 s);  mIoU aggregation {t_m * 1000:.0f} ms")
    print(f"  plain full-canvas masks       {t_plain:7.1f} s  ({n_plain} pairs timed)  "
          f"speed-up {t_plain / t_b:.0f}x; max |seg IoU diff| vs skimage line edges {diff:.4f}")
    return [("Pixel bbox+seg IoU + mIoU, 3,000 pairs, <= 1024 px", f"{t_b + t_m:.2f} s",
             f"{t_plain / t_b:.0f}x faster than full-canvas masks")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("gpr", "revisited", "pixel"))
    ap.add_argument("--quick", action="store_true", help="time fewer plain-way queries")
    args = ap.parse_args()
    rows = []
    if args.only in (None, "pixel"):
        rows += bench_pixel(args.quick)
    if args.only in (None, "gpr"):
        rows += bench_gpr(args.quick)
    if args.only in (None, "revisited"):
        rows += bench_revisited(args.quick)
    print("\n| input | time | ratio |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
