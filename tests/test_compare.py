"""bench.compare: paired statistics against independent computations, per-query values
against the CLI's own outputs and the plain reference, the LaTeX table's shape, the CLI.

Independent means: plain formulas written here (t statistic, exact sign-flip enumeration,
Holm by hand), scipy called separately on hand-made data, and tests/reference.py (which
never imports bench) for per-query values.
"""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from bench import compare as cmp
from bench import compare_report as rep
from bench.cli import main
from bench.demo import build_demo
from tests import fixtures, reference

# ---------------------------------------------------------------- Holm


def test_holm_hand_values():
    # sorted: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> running max .06
    np.testing.assert_allclose(cmp.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = cmp.holm([0.02, math.nan, 0.5])  # NaN is not in the family: m = 2
    assert out[0] == pytest.approx(0.04) and math.isnan(out[1]) and out[2] == pytest.approx(0.5)
    np.testing.assert_allclose(cmp.holm([0.6, 0.7]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(cmp.holm([0.03]), [0.03])  # one test: unchanged
    assert cmp.holm([]).size == 0


def _holm_sequential_rejects(p, alpha):
    """Holm's procedure as stated in 1979: step down, stop at the first acceptance."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for k, i in enumerate(order):
        if p[i] <= alpha / (len(p) - k):
            rejected.add(i)
        else:
            break
    return rejected


def test_holm_adjusted_values_give_the_sequential_decisions():
    rng = np.random.default_rng(1)
    for _ in range(200):
        p = list(rng.uniform(0, 0.2, size=int(rng.integers(1, 8))))
        adj = cmp.holm(p)
        for alpha in (0.01, 0.05, 0.1):
            assert {i for i, a in enumerate(adj) if a <= alpha} == \
                _holm_sequential_rejects(p, alpha)


# ---------------------------------------------------------------- paired statistics


def _plain_t_p(d):
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    return 2 * stats.t.sf(abs(t), n - 1)


def _exact_sign_flip_p(d):
    """Two-sided p of the mean by enumerating all 2^n sign flips."""
    obs = abs(sum(d) / len(d))
    count = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        if abs(sum(s * v for s, v in zip(signs, d, strict=True)) / len(d)) >= obs * (1 - 1e-12):
            count += 1
    return count / 2 ** len(d)


def test_t_test_matches_the_plain_formula():
    rng = np.random.default_rng(3)
    for n in (3, 7, 30, 70):
        x, y = rng.uniform(size=n), rng.uniform(size=n)
        s = cmp.paired_stats(x, y)
        assert s.p["t"] == pytest.approx(_plain_t_p(list(x - y)), rel=1e-9)
        assert s.p["t"] == pytest.approx(stats.ttest_rel(x, y).pvalue, rel=1e-12)


def test_permutation_is_exact_on_small_n():
    rng = np.random.default_rng(4)
    for n in (4, 6, 9, 12):
        x, y = rng.uniform(size=n), rng.uniform(size=n)
        s = cmp.paired_stats(x, y, n_permutations=10_000)
        assert s.permutation_exact
        assert s.p["permutation"] == pytest.approx(_exact_sign_flip_p(list(x - y)), abs=1e-12)


def test_permutation_random_is_close_to_exact_and_reproducible():
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.1, 1, size=16), rng.normal(0, 1, size=16)
    d = x - y
    signs = 1 - 2 * ((np.arange(2 ** 16)[:, None] >> np.arange(16)) & 1)
    null = np.abs((signs * d).mean(axis=1))
    exact = np.count_nonzero(null >= abs(d.mean()) * (1 - 1e-12)) / 2 ** 16
    s = cmp.paired_stats(x, y, n_permutations=10_000, seed=7)
    assert not s.permutation_exact
    assert abs(s.p["permutation"] - exact) < 0.02  # 4 standard errors of 10,000 draws
    assert cmp.paired_stats(x, y, n_permutations=10_000, seed=7).p == s.p


def test_wilcoxon_on_hand_made_data():
    y = np.zeros(5)
    # all five deltas positive: exact two-sided p = 2 / 2^5
    assert cmp.paired_stats(np.array([1.0, 2, 3, 4, 5]), y).p["wilcoxon"] == pytest.approx(0.0625)
    # W- = 1 (rank 1 negative): P(W- <= 1) = 2/32, two-sided 4/32
    assert cmp.paired_stats(np.array([-1.0, 2, 3, 4, 5]), y).p["wilcoxon"] == pytest.approx(0.125)
    # zeros are dropped ('wilcox'): 1, 2, -3 -> W+ = W- = 3 -> p = 1
    assert cmp.paired_stats(np.array([0.0, 0, 1, 2, -3]), y).p["wilcoxon"] == pytest.approx(1.0)
    rng = np.random.default_rng(6)
    for n in (10, 60):  # exact and normal approximation, scipy called on its own
        x, z = rng.uniform(size=n), rng.uniform(size=n)
        assert cmp.paired_stats(x, z).p["wilcoxon"] == pytest.approx(
            stats.wilcoxon(x - z).pvalue, rel=1e-12)


def test_effect_sizes_and_interval():
    x = np.array([-1.0, 2, 3, 4, 5])
    s = cmp.paired_stats(x, np.zeros(5))
    assert s.rank_biserial == pytest.approx((14 - 1) / 15)  # R+ = 2+3+4+5, R- = 1
    assert s.d_z == pytest.approx(2.6 / np.std(x, ddof=1))
    assert s.mean_delta == pytest.approx(2.6)
    assert (s.wins, s.ties, s.losses, s.n) == (4, 0, 1, 5)
    ref = stats.bootstrap((x,), np.mean, n_resamples=cmp.DEFAULT_BOOTSTRAP, method="BCa",
                          rng=np.random.default_rng(cmp.DEFAULT_SEED))
    assert s.ci == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert s.ci[0] <= s.mean_delta <= s.ci[1]
    f = s.flipped()
    assert (f.a, f.b, f.wins, f.losses, f.mean_delta) == ("b", "a", 1, 4, -2.6)
    assert f.ci == (-s.ci[1], -s.ci[0]) and f.p == s.p


def test_all_equal_methods_are_all_ties_with_p_one():
    x = np.random.default_rng(8).uniform(size=20)
    s = cmp.paired_stats(x, x.copy())
    assert (s.wins, s.ties, s.losses, s.n) == (0, 20, 0, 20)
    assert s.p == {"t": 1.0, "wilcoxon": 1.0, "permutation": 1.0}
    assert s.mean_delta == 0 and s.ci == (0.0, 0.0) and s.d_z == 0 and s.rank_biserial == 0


def test_tolerance_makes_ties_and_is_settable():
    x = np.array([0.5, 0.6, 0.7, 0.8])
    y = x - np.array([1e-12, -1e-13, 0.05, 0.2])
    s = cmp.paired_stats(x, y)
    assert (s.wins, s.ties, s.losses) == (2, 2, 0)
    s2 = cmp.paired_stats(x, y, tol=0.1)
    assert (s2.wins, s2.ties, s2.losses) == (1, 3, 0)
    s3 = cmp.paired_stats(x, y, tol=0.0)
    assert (s3.wins, s3.ties, s3.losses) == (3, 0, 1)
    # the tied deltas are exactly 0 in the tests: the Wilcoxon p is that of (0.05, 0.2)
    assert s.p["wilcoxon"] == pytest.approx(stats.wilcoxon([0.05, 0.2]).pvalue)


def test_constant_nonzero_delta_and_nan_dropping():
    x = np.array([0.3, 0.4, 0.5, 0.6])
    s = cmp.paired_stats(x, x - 0.25)
    assert s.p["t"] == 0.0 and s.wins == 4 and s.ci == pytest.approx((0.25, 0.25))
    assert math.isinf(s.d_z) and s.d_z > 0
    xn = np.array([0.1, np.nan, 0.5, 0.9, 0.2])
    yn = np.array([0.0, 0.3, np.nan, 0.1, 0.3])
    s = cmp.paired_stats(xn, yn)
    assert (s.n, s.n_missing) == (3, 2)
    assert s.mean_delta == pytest.approx((0.1 + 0.8 - 0.1) / 3)
    assert rep.pair_stats_json(s)["p"]["t"] == pytest.approx(stats.ttest_rel(
        [0.1, 0.9, 0.2], [0.0, 0.1, 0.3]).pvalue)


def test_inf_effect_size_is_null_in_json():
    x = np.array([0.3, 0.4, 0.5])
    d = rep.pair_stats_json(cmp.paired_stats(x, x - 0.1))
    json.dumps(d, allow_nan=False)
    assert d["effect_size"]["d_z"] is None


# ---------------------------------------------------------------- per-query mAP@k


def test_per_query_map_at_k_definition():
    ap_t = np.array([[1.0, np.nan, 0.5, np.nan, np.nan],
                     [0.5, np.nan, np.nan, np.nan, 0.2]])
    n_pos = np.array([3, 2, 1, 0, 4])
    v = cmp.per_query_map_at_k(ap_t, n_pos, ignored={4})
    np.testing.assert_allclose(v[:3], [0.75, 0.0, 0.25])
    assert math.isnan(v[3]) and math.isnan(v[4])  # no positives; ignored


# ---------------------------------------------------------------- fixtures benchmark


def _add_method(bench: fixtures.PixelBenchmark, name: str, rng) -> None:
    """A second method in the same released layout: random ranks and predictions."""
    _, image_stem, pixel_stem = fixtures.DATASETS[bench.dataset]
    matches = {}
    for (q, i), shapes in bench.gt.items():
        w, h = bench.image_sizes[(q, i)]
        kind, pts = fixtures.random_prediction(rng, w, h, shapes)
        if kind == "empty":
            matches[fixtures.match_key(q, i)] = []
        elif kind != "missing":
            matches[fixtures.match_key(q, i)] = pts
    ranks = fixtures.make_random_ranks(rng, len(bench.imlist), len(bench.qimlist))
    fixtures.write_ranks(bench.root / "results" / "image-level" / name / f"{image_stem}.npy",
                         ranks)
    fixtures.write_matching_result(bench.root / "results" / "pixel-level" / name /
                                   "matching_result" / f"{pixel_stem}.npy", matches)


@pytest.fixture(scope="module")
def two_methods(tmp_path_factory):
    """A PROxford-format benchmark with 64 queries (so the ignored queries 56 and 63
    exist) and two methods, "randmethod" and "other"."""
    root = tmp_path_factory.mktemp("cmp_bench")
    rng = np.random.default_rng(99)
    bench = fixtures.make_random_pixel_benchmark(rng, root, 64, 20, max_easy=3, max_hard=2,
                                                 min_easy=0, min_hard=0)
    _add_method(bench, "other", rng)
    return bench


def _cli_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _paths(bench, method):
    _, image_stem, pixel_stem = fixtures.DATASETS[bench.dataset]
    return (bench.root / "results" / "image-level" / method / f"{image_stem}.npy",
            bench.root / "results" / "pixel-level" / method / "matching_result" /
            f"{pixel_stem}.npy")


def _ref_per_query_map_at_k(ranks, gnd, ious, setup, ignored, protocol="official"):
    """§6.1 v_q: the mean over t of q's AP_t, 0 at a t where no positive survives.
    official AP_t: N = the survivors; strict (§2.3): N = all the setup's positives, i.e.
    the survivors' AP scaled by |survivors| / N (the non-survivors are ordinary images
    either way)."""
    out = []
    for q, g in enumerate(gnd):
        positives, junk = reference.setup_lists(g, setup)
        if q in ignored or not positives:
            out.append(math.nan)
            continue
        col = [int(v) for v in ranks[:, q]]
        total = 0.0
        for t in reference.THRESHOLDS:
            surv = [i for i in positives if ious.get((q, int(i)), (0.0, 0.0))[0] > t]
            a = reference.ref_revisited_ap(col, surv, junk) if surv else 0.0
            if protocol == "strict":
                a *= len(set(surv)) / len(set(positives))
            total += a
        out.append(total / len(reference.THRESHOLDS))
    return out


def _assert_p_values_from_deltas(comp: dict) -> None:
    """Every pair's p-values equal scipy's (called here) on the deltas of the JSON's own
    per-query values, and the exact permutation p equals the sign-flip enumeration."""
    for s in comp["pairs"]:
        u = comp["per_pair"]["values"][s["metric"]] if s["metric"].endswith("/pairs") \
            else comp["per_query"][s["metric"]]
        d = np.array([x - y for x, y in zip(u[s["a"]], u[s["b"]], strict=True)
                      if x is not None and y is not None])
        assert s["n"] == d.size
        d[np.abs(d) < 1e-9] = 0
        if not np.any(d):
            assert s["p"] == {"t": 1.0, "wilcoxon": 1.0, "permutation": 1.0}
            continue
        if np.ptp(d) > 1e-9:
            assert s["p"]["t"] == pytest.approx(stats.ttest_rel(d, np.zeros(d.size)).pvalue,
                                                rel=1e-12)
        assert s["p"]["wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)
        if s["permutation_exact"]:
            assert s["p"]["permutation"] == pytest.approx(_exact_sign_flip_p(list(d)),
                                                          abs=1e-12)
        if len(comp["methods"]) == 2:
            assert s["p_holm"] == s["p"]  # one pair: Holm changes nothing


@pytest.mark.parametrize("protocol", ["official", "strict"])
def test_per_query_values_match_cli_outputs_and_reference(two_methods, capsys, protocol):
    b = two_methods
    methods = ["randmethod", "other"]
    comp = _cli_json(capsys, ["compare", str(b.root), "--dataset", "roxford5k", "--methods",
                              *methods, "--protocol", protocol, "--json"])
    assert comp["methods"] == methods and comp["protocol"] == protocol
    own = {}
    for m in methods:
        ranks, matches = _paths(b, m)
        rev = _cli_json(capsys, ["revisited", "--gnd", str(b.gnd_path), "--ranks", str(ranks),
                                 "--protocol", protocol, "--json"])
        pix = _cli_json(capsys, ["pixel", "--gnd", str(b.gnd_path), "--labels-root",
                                 str(b.labels_root), "--pair-labels", str(b.pair_labels_path),
                                 "--matches", str(matches), "--ranks", str(ranks),
                                 "--protocol", protocol, "--json"])
        own[m] = (rev, pix, np.load(ranks))
    (ra, pa, _), (rb, pb, _) = own["randmethod"], own["other"]

    def delta(u, v):
        return [None if x is None or y is None else x - y for x, y in zip(u, v, strict=True)]

    pq = comp["per_query"]
    for setup in ("easy", "medium", "hard"):
        got = delta(pq[f"mAP/{setup}"]["randmethod"], pq[f"mAP/{setup}"]["other"])
        assert got == delta(ra[setup]["ap"], rb[setup]["ap"])  # exactly
        assert comp["metrics"][f"mAP/{setup}"]["randmethod"] == ra[setup]["mAP"]
    for setup in ("medium", "hard"):
        for kind in ("bbox", "seg"):
            key = f"mIoU-{kind}/{setup}"
            assert delta(pq[key]["randmethod"], pq[key]["other"]) == delta(
                pa[setup]["per_query"][kind], pb[setup]["per_query"][kind])
        assert comp["metrics"][f"mAP@k/{setup}"]["randmethod"] == pa[setup]["mAP@k"]
    # per-pair IoUs: each method's own "pairs" output, a missing prediction as 0
    keys = comp["per_pair"]["keys"]
    assert set(keys) == set(pa["pairs"]) | set(pb["pairs"])
    for kind in ("bbox", "seg"):
        vals = comp["per_pair"]["values"][f"IoU-{kind}/pairs"]
        for j, k in enumerate(keys):
            assert vals["randmethod"][j] == pa["pairs"].get(k, {kind: 0.0})[kind]
            assert vals["other"][j] == pb["pairs"].get(k, {kind: 0.0})[kind]
    # per-query mIoU and mAP@k against the plain reference (IoUs from the CLI's own output)
    for m, (_rev, pix, ranks) in own.items():
        ious = {tuple(int(v) for v in k.split("_")): (x["bbox"], x["seg"])
                for k, x in pix["pairs"].items()}
        ref_miou = reference.ref_miou(b.gnd, ious, protocol=protocol)
        for setup in ("medium", "hard"):
            np.testing.assert_allclose(
                np.array(pq[f"mIoU-bbox/{setup}"][m], dtype=float),
                ref_miou[setup]["per_query_bbox"], rtol=0, atol=1e-12, equal_nan=True)
            ref_v = _ref_per_query_map_at_k(ranks, b.gnd, ious, setup, {56, 63}, protocol)
            np.testing.assert_allclose(np.array(pq[f"mAP@k/{setup}"][m], dtype=float), ref_v,
                                       rtol=0, atol=1e-12, equal_nan=True)
            # the documented relation to the reported mAP@k: mean v = mean_t mAP_t D_t / n
            n = sum(1 for v in ref_v if not math.isnan(v))
            total = 0.0
            for t in reference.THRESHOLDS:
                nonempty = 0
                for q, g in enumerate(b.gnd):
                    pos, _ = reference.setup_lists(g, setup)
                    # official D_t: queries with a positive above t (+ the 2 ignored);
                    # strict D_t (§2.3, N = all positives): every query with a positive
                    if q not in (56, 63) and (
                            (protocol == "strict" and len(pos) > 0)
                            or any(ious.get((q, int(i)), (0, 0))[0] > t for i in pos)):
                        nonempty += 1
                d_t = nonempty + (2 if protocol == "official" else 0)
                m_t = pix[setup]["mAP_t"][reference.threshold_key(t)]
                if d_t == 0:  # strict, no query left at t: mAP_t is NaN, its sum 0
                    assert m_t is None
                    continue
                total += m_t * d_t / n
            assert comp["per_query_mean"][f"mAP@k/{setup}"][m] == pytest.approx(total / 10,
                                                                                abs=1e-12)
            if protocol == "strict":  # v_q is exactly the strict mAP@k's summand
                assert comp["per_query_mean"][f"mAP@k/{setup}"][m] == pytest.approx(
                    pix[setup]["mAP@k"], abs=1e-12)
    _assert_p_values_from_deltas(comp)
    if protocol == "strict":
        assert "mAP@k-seg/medium" in pq


def test_two_identical_methods_give_p_one_and_all_ties(two_methods, tmp_path):
    gnd, res = cmp.load_methods(two_methods.root, "roxford5k", ["randmethod"])
    r = res["randmethod"]
    twin = cmp.MethodResult(name="twin", protocol=r.protocol, n_queries=r.n_queries,
                            per_query={k: v.copy() for k, v in r.per_query.items()},
                            reported=dict(r.reported), pairs=dict(r.pairs),
                            benchmark=r.benchmark)
    comp = cmp.compare_methods([r, twin], query_names=gnd.qimlist)
    assert len(comp.pairs) == len(comp.metrics) == 11
    for s in comp.pairs:
        assert s.wins == s.losses == 0 and s.ties == s.n > 0, s.metric
        assert s.p == {"t": 1.0, "wilcoxon": 1.0, "permutation": 1.0}
        assert s.p_holm == s.p and s.mean_delta == 0
    rows = rep.per_query_table(comp, "mAP/medium", "randmethod", "twin")
    assert len(rows) == 64 and rows[0]["name"] == gnd.qimlist[0]
    assert {r_["winner"] for r_ in rows} <= {"tie", None}


def test_three_methods_holm_across_pairs(two_methods):
    _, res = cmp.load_methods(two_methods.root, "roxford5k", ["randmethod", "other"])
    a = res["randmethod"]
    shifted = cmp.MethodResult(name="third", protocol=a.protocol, n_queries=a.n_queries,
                               per_query={k: np.clip(v + 0.05, 0, 1)
                                          for k, v in a.per_query.items()},
                               reported=dict(a.reported))
    comp = cmp.compare_methods([a, res["other"], shifted])
    fam = [s for s in comp.pairs if s.metric == "mAP/medium"]
    assert [(s.a, s.b) for s in fam] == [("randmethod", "other"), ("randmethod", "third"),
                                         ("other", "third")]
    for test in cmp.TESTS:
        p = [s.p[test] for s in fam]
        m = 3
        order = sorted(range(m), key=lambda i: p[i])
        expect, run = [0.0] * m, 0.0
        for k, i in enumerate(order):  # Holm by hand
            run = max(run, min(1.0, (m - k) * p[i]))
            expect[i] = run
        assert [s.p_holm[test] for s in fam] == pytest.approx(expect)
    # pair metrics only between the methods with pixel results
    assert {(s.a, s.b) for s in comp.pairs if s.metric == "IoU-bbox/pairs"} == \
        {("randmethod", "other")}
    assert comp.stats("third", "randmethod", "mAP/medium").mean_delta > 0


# ---------------------------------------------------------------- LaTeX


def _strip_escaped(tex: str) -> str:
    return re.sub(r"\\[{}&%$#_]", "", tex)


def _balanced(tex: str) -> bool:
    depth = 0
    for ch in _strip_escaped(tex):
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def _cells(line: str) -> list[str]:
    body = line.rsplit(r"\\", 1)[0]
    return [c.strip() for c in re.split(r"(?<!\\)&", body)]


def _span(cell: str) -> int:
    m = re.match(r"\\multicolumn\{(\d+)\}", cell)
    return int(m.group(1)) if m else 1


def _check_latex(tex: str, methods: list[str]):
    assert _balanced(tex)
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([a-z|]+)\}", tex).group(1)
    ncols = len(spec.replace("|", ""))
    head, rest = tex.split(r"\midrule")
    body = rest.split(r"\bottomrule")[0]
    header_rows = [ln for ln in head.splitlines() if ln.rstrip().endswith(r"\\")]
    assert len(header_rows) == 3
    for ln in header_rows:
        assert sum(_span(c) for c in _cells(ln)) == ncols
    rows = [ln for ln in body.splitlines() if ln.strip()]
    assert len(rows) == len(methods)
    table = [_cells(ln) for ln in rows]
    for r, m in zip(table, methods, strict=True):
        assert len(r) == ncols
        assert r[1] == rep.latex_escape(m)
    assert [r[0] for r in table] == [rep._letters(i) for i in range(len(methods))]
    # bold exactly on the best value of each column
    for j in range(2, ncols):
        vals = []
        for r in table:
            m = re.search(r"(-?\d+\.\d\d)", r[j])
            vals.append(float(m.group(1)) if m else None)
        best = max((v for v in vals if v is not None), default=None)  # None: all "--"
        for r, v in zip(table, vals, strict=True):
            assert (r"\textbf{" in r[j]) == (v is not None and v == best), (j, r[j])
    assert re.search(r"\\caption\{.*level \$\\alpha = [0-9.]+\$", tex)
    return table


def _synthetic(name, rng, shift, n=30):
    base = rng.uniform(0.2, 0.6, size=n)
    per_query, reported = {}, {}
    for setup in ("medium", "hard"):
        for k in ("mIoU-bbox", "mIoU-seg", "mAP@k", "mAP"):
            v = np.clip(base + shift + rng.normal(0, 0.01, size=n), 0, 1)
            per_query[f"{k}/{setup}"] = v
            reported[f"{k}/{setup}"] = float(v.mean())
    return cmp.MethodResult(name=name, protocol="official", n_queries=n, per_query=per_query,
                            reported=reported, benchmark="proxford")


def test_latex_shape_letters_and_caption():
    ms = [_synthetic("good_one", np.random.default_rng(12), 0.2),
          _synthetic("B&C", np.random.default_rng(13), 0.0),
          _synthetic("plain", np.random.default_rng(14), 0.03)]
    comp = cmp.compare_methods(ms)
    tex = rep.to_latex(comp, test="t", alpha=0.05)
    table = _check_latex(tex, ["good_one", "B&C", "plain"])
    assert len(table[0]) == 2 + 8  # one dataset: medium/hard x bbox, seg, mAP@k, mAP
    assert "PROxf" in tex and "PRPar" not in tex
    assert "t-test" in tex and "Holm" in tex
    # superscripts: the row's letter set is exactly the methods it beats (Holm-corrected t)
    names = ["good_one", "B&C", "plain"]
    cols = [f"{k}/{s}" for s in ("medium", "hard") for k in ("mIoU-bbox", "mIoU-seg", "mAP@k",
                                                             "mAP")]
    for i, m in enumerate(names):
        for j, key in enumerate(cols):
            fam = [(a, b) for a, b in itertools.combinations(names, 2)]
            p = [stats.ttest_rel(comp.per_query[key][a], comp.per_query[key][b]).pvalue
                 for a, b in fam]
            adj = cmp.holm(p)
            expect = ""
            for o_i, o in enumerate(names):
                if o == m:
                    continue
                k = fam.index((m, o)) if (m, o) in fam else fam.index((o, m))
                diff = comp.per_query[key][m].mean() - comp.per_query[key][o].mean()
                if adj[k] < 0.05 and diff > 0:
                    expect += rep._letters(o_i)
            sup = re.search(r"\^\{\\mathrm\{([a-z]+)\}\}", table[i][2 + j])
            assert (sup.group(1) if sup else "") == expect
    assert re.search(r"\^\{\\mathrm\{bc\}\}", table[0][2])  # the clear winner beats both
    # another test and level are stated in the caption
    tex_w = rep.to_latex(comp, test="wilcoxon", alpha=0.01, correction="none")
    _check_latex(tex_w, names)
    assert "Wilcoxon" in tex_w and r"\alpha = 0.01" in tex_w and "without correction" in tex_w


def test_latex_two_datasets_and_missing_columns(tmp_path, capsys):
    rng = np.random.default_rng(21)
    root = tmp_path / "two"
    ox = fixtures.make_random_pixel_benchmark(rng, root, 6, 15, dataset="oxford")
    pa = fixtures.make_random_pixel_benchmark(rng, root, 5, 12, dataset="paris")
    _add_method(ox, "other", rng)
    _add_method(pa, "other", rng)
    out = tmp_path / "t.tex"
    assert main(["compare", str(root), "--dataset", "roxford5k,rparis6k", "--methods",
                 "randmethod", "other", "--latex", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [c["dataset"] for c in d["datasets"]] == ["roxford5k", "rparis6k"]
    tex = out.read_text()
    table = _check_latex(tex, ["randmethod", "other"])
    assert len(table[0]) == 2 + 16
    assert tex.index("PROxf") < tex.index("PRPar")
    # --dataset repeated gives the same table
    out2 = tmp_path / "t2.tex"
    assert main(["compare", str(root), "--dataset", "roxford5k", "--dataset", "rparis6k",
                 "--methods", "randmethod", "other", "--latex", str(out2)]) == 0
    assert out2.read_text() == tex
    # a method without ranks has no mAP@k / mAP cells: "--", and no bold there
    r = cmp.MethodResult(name="x_only_miou", protocol="official", n_queries=4,
                         per_query={"mIoU-bbox/medium": np.array([.1, .2, .3, .4])},
                         reported={"mIoU-bbox/medium": 0.25})
    s = cmp.MethodResult(name="full", protocol="official", n_queries=4,
                         per_query={"mIoU-bbox/medium": np.array([.2, .2, .3, .5]),
                                    "mAP/medium": np.array([.5, .6, .7, .8])},
                         reported={"mIoU-bbox/medium": 0.3, "mAP/medium": 0.65})
    tab = _check_latex(rep.to_latex(cmp.compare_methods([r, s])), ["x_only_miou", "full"])
    assert tab[0][1] == r"x\_only\_miou" and tab[0][3] == "--"


# ---------------------------------------------------------------- the demo, the CLI


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp_demo") / "demo-small"
    return build_demo(root, scale="small").root


def test_demo_compare_matches_own_outputs(demo_root, capsys, tmp_path):
    d = _cli_json(capsys, ["compare", str(demo_root), "--dataset", "rdemo", "--methods",
                           "local-sp", "global-hist", "--json", "--csv", str(tmp_path / "p.csv"),
                           "--csv-per-query", str(tmp_path / "q.csv")])
    assert set(d) >= {"methods", "metrics", "per_query", "pairs"}
    for s in d["pairs"]:
        assert set(s) >= {"a", "b", "metric", "mean_delta", "ci", "wins", "ties", "losses", "p",
                          "p_holm", "n", "effect_size"}
        assert set(s["p"]) == {"t", "wilcoxon", "permutation"}
    gnd = demo_root / "pixel_retrieval_benchmarks/revisitop/data/rdemo/gnd_rdemo.pkl"
    labels = demo_root / "pixel_retrieval_benchmarks"
    for m in ("local-sp", "global-hist"):
        ranks = demo_root / f"results/image-level/{m}/rdemo.npy"
        matches = demo_root / f"results/pixel-level/{m}/matching_result/prdemo.npy"
        rev = _cli_json(capsys, ["revisited", "--gnd", str(gnd), "--ranks", str(ranks), "--json"])
        pix = _cli_json(capsys, ["pixel", "--gnd", str(gnd), "--labels-root", str(labels),
                                 "--pair-labels", str(labels / "demo_pair2labelpath.npy"),
                                 "--matches", str(matches), "--ranks", str(ranks), "--json"])
        for setup in ("easy", "medium", "hard"):
            assert d["per_query"][f"mAP/{setup}"][m] == rev[setup]["ap"]
        for setup in ("medium", "hard"):
            for kind in ("bbox", "seg"):
                assert d["per_query"][f"mIoU-{kind}/{setup}"][m] == \
                    pix[setup]["per_query"][kind]
                assert d["metrics"][f"mIoU-{kind}/{setup}"][m] == pix[setup]["mIoU"][kind]
    _assert_p_values_from_deltas(d)
    pairs_csv = (tmp_path / "p.csv").read_text().splitlines()
    assert len(pairs_csv) == 1 + len(d["pairs"])
    assert pairs_csv[0].startswith("dataset,protocol,metric,a,b,n")
    n_rows = 2 * (len(d["per_query"]) * d["n_queries"] + 2 * len(d["per_pair"]["keys"]))
    assert (tmp_path / "q.csv").read_text().count("\n") == 1 + n_rows


def test_demo_readable_table(demo_root, capsys):
    assert main(["compare", str(demo_root), "--dataset", "rdemo", "--methods", "global-hist",
                 "local-sp", "--protocol", "strict"]) == 0
    out = capsys.readouterr().out
    assert "protocol: strict" in out and "global-hist - local-sp" in out and "W/T/L" in out


@pytest.mark.parametrize("argv,what", [
    (["--dataset", "nope", "--methods", "local-sp", "global-hist"],
     "unknown dataset 'nope' in {root}: datasets found: rdemo"),
    (["--dataset", "rdemo", "--methods", "local-sp", "ghost"],
     "unknown method 'ghost' in {root}: methods with results for rdemo: global-hist, local-sp"),
    (["--dataset", "rdemo", "--methods", "local-sp"],
     "too few methods in {root}: give two or more with --methods"),
    (["--dataset", "rdemo", "--methods", "local-sp", "local-sp"],
     "repeated method in {root}"),
])
def test_cli_errors_name_root_and_list_what_exists(demo_root, capsys, argv, what):
    assert main(["compare", str(demo_root), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: " + what.format(root=demo_root))


def test_cli_unwritable_output(demo_root, capsys, tmp_path):
    bad = tmp_path / "no" / "such" / "dir" / "t.tex"
    assert main(["compare", str(demo_root), "--dataset", "rdemo", "--methods", "local-sp",
                 "global-hist", "--latex", str(bad)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: cannot write output in {bad}")


@pytest.mark.parametrize("opt,val", [("--permutations", "0"), ("--tol", "-1"),
                                     ("--alpha", "1.5"), ("--tol", "nan")])
def test_cli_bad_options(demo_root, capsys, opt, val):
    assert main(["compare", str(demo_root), "--dataset", "rdemo", "--methods", "local-sp",
                 "global-hist", opt, val]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: bad option in {opt}: ")
