"""Views of a :class:`bench.compare.Comparison`: JSON, per-query tables, CSV, the
PROxford/PRParis paper's LaTeX table, and ``python -m bench compare`` (docs/PROTOCOLS.md §6).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence

import numpy as np

from bench.compare import (
    DEFAULT_PERMUTATIONS,
    DEFAULT_TOL,
    METRIC_ORDER,
    PAIR_METRICS,
    TESTS,
    Comparison,
    MethodResult,
    PairStats,
    _metric_rank,
    compare_folder,
    compare_methods,
    holm,
    load_methods,
    paired_stats,
    per_query_map_at_k,
    rank_biserial,
)
from bench.errors import BenchError
from bench.evaluate import num, nums
from bench.protocol import PIXEL_SETUPS

# ---------------------------------------------------------------- views


def pair_stats_json(s: PairStats) -> dict:
    return {"a": s.a, "b": s.b, "metric": s.metric, "mean_delta": num(s.mean_delta),
            "ci": [num(s.ci[0]), num(s.ci[1])], "wins": s.wins, "ties": s.ties,
            "losses": s.losses, "p": {k: num(v) for k, v in s.p.items()},
            "p_holm": {k: num(v) for k, v in s.p_holm.items()}, "n": s.n,
            "n_missing": s.n_missing, "permutation_exact": s.permutation_exact,
            "effect_size": {"d_z": num(s.d_z), "rank_biserial": num(s.rank_biserial)}}


def comparison_json(comp: Comparison) -> dict:
    """``{"methods", "metrics": {metric: {method: reported}}, "per_query_mean",
    "per_query": {metric: {method: [...]}}, "per_pair": {"keys": ["q_i", ...],
    "values": {metric: {method: [...]}}}, "pairs": [...], ...}`` (NaN as null)."""
    pq_mean = {}
    for metric, by in {**comp.per_query, **comp.per_pair}.items():
        pq_mean[metric] = {m: num(np.nanmean(v)) if np.isfinite(v).any() else None
                           for m, v in by.items()}
    return {
        "dataset": comp.dataset, "protocol": comp.protocol, "benchmark": comp.benchmark,
        "methods": list(comp.methods), "n_queries": comp.n_queries,
        "queries": comp.query_names,
        "metrics": {k: {m: num(v) for m, v in comp.reported[k].items()}
                    for k in sorted(comp.reported, key=_metric_rank)},
        "per_query_mean": pq_mean,
        "per_query": {k: {m: nums(v) for m, v in by.items()}
                      for k, by in comp.per_query.items()},
        "per_pair": {"keys": [f"{q}_{i}" for q, i in comp.pair_keys],
                     "values": {k: {m: nums(v) for m, v in by.items()}
                                for k, by in comp.per_pair.items()}},
        "pairs": [pair_stats_json(s) for s in comp.pairs],
        "settings": dict(comp.settings),
        "warnings": list(comp.warnings),
    }


def per_query_table(comp: Comparison, metric: str, a: str | None = None,
                    b: str | None = None) -> list[dict]:
    """Rows for a table or a scatter: one per query (or per pair for ``*/pairs``).

    Each row has ``"query"`` (and ``"db"`` for pairs), ``"name"`` (query name when known),
    one value per method (NaN kept), and with *a* and *b*: ``"delta"`` (a - b) and
    ``"winner"`` (a, b, ``"tie"`` within the comparison's tolerance, or None when a value
    is missing).
    """
    tol = comp.settings.get("tol", DEFAULT_TOL)
    by = comp.per_pair.get(metric) if metric in comp.per_pair else comp.per_query.get(metric)
    if by is None:
        raise KeyError(f"unknown metric {metric!r}; known: {comp.metrics}")
    if metric in comp.per_pair:
        idx = [{"query": q, "db": i} for q, i in comp.pair_keys]
    else:
        idx = [{"query": q} for q in range(comp.n_queries)]
    rows = []
    for j, base in enumerate(idx):
        row = dict(base)
        if comp.query_names is not None:
            row["name"] = comp.query_names[base["query"]]
        for m, v in by.items():
            row[m] = float(v[j])
        if a is not None and b is not None:
            d = row[a] - row[b]
            row["delta"] = d
            row["winner"] = (None if math.isnan(d) else "tie" if abs(d) < tol
                             else a if d > 0 else b)
        rows.append(row)
    return rows


def to_csv(comp: Comparison | Sequence[Comparison], what: str = "pairs") -> str:
    """CSV text. ``what="pairs"``: one row per metric and pair of methods (the statistics);
    ``what="per_query"``: one row per metric, entry and method (long format)."""
    comps = [comp] if isinstance(comp, Comparison) else list(comp)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")

    def f(x) -> str:
        return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else repr(
            float(x))

    if what == "pairs":
        w.writerow(["dataset", "protocol", "metric", "a", "b", "n", "n_missing", "mean_delta",
                    "ci_low", "ci_high", "wins", "ties", "losses", "p_t", "p_wilcoxon",
                    "p_permutation", "p_holm_t", "p_holm_wilcoxon", "p_holm_permutation",
                    "d_z", "rank_biserial"])
        for c in comps:
            for s in c.pairs:
                w.writerow([c.dataset, c.protocol, s.metric, s.a, s.b, s.n, s.n_missing,
                            f(s.mean_delta), f(s.ci[0]), f(s.ci[1]), s.wins, s.ties, s.losses,
                            *(f(s.p[t]) for t in TESTS), *(f(s.p_holm.get(t)) for t in TESTS),
                            f(s.d_z), f(s.rank_biserial)])
    elif what == "per_query":
        w.writerow(["dataset", "protocol", "metric", "query", "db", "name", "method", "value"])
        for c in comps:
            for metric in c.metrics:
                for row in per_query_table(c, metric):
                    for m in c.methods:
                        if m in row:
                            w.writerow([c.dataset, c.protocol, metric, row["query"],
                                        row.get("db", ""), row.get("name", ""), m, f(row[m])])
    else:
        raise ValueError(f"what must be 'pairs' or 'per_query', got {what!r}")
    return buf.getvalue()


def _fmt_pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"


def _fmt_p(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"


def format_table(comp: Comparison) -> str:
    """A readable text table: reported numbers per method, then the pair statistics."""
    lines = [f"dataset: {comp.dataset}   protocol: {comp.protocol}   queries: {comp.n_queries}"
             f"   pairs of images: {len(comp.pair_keys)}"]
    w = max(12, *(len(m) for m in comp.methods))
    lines.append(f"{'metric':18} " + " ".join(f"{m:>{w}}" for m in comp.methods))
    for k in sorted(comp.reported, key=_metric_rank):
        lines.append(f"{k:18} " + " ".join(f"{_fmt_pct(comp.reported[k].get(m)):>{w}}"
                                           for m in comp.methods))
    lines.append("(percent; the benchmark's own numbers)")
    lines.append("")
    holm_note = len(comp.methods) > 2
    head = (f"{'metric':18} {'a - b':24} {'n':>4} {'mean d':>7} {'95% CI':>16} {'W/T/L':>9} "
            f"{'p t':>7} {'p wilc':>7} {'p perm':>7}")
    lines.append(head + ("   (p Holm-corrected)" if holm_note else ""))
    for s in comp.pairs:
        p = s.p_holm if holm_note else s.p
        ci = f"[{_fmt_pct(s.ci[0])}, {_fmt_pct(s.ci[1])}]"
        lines.append(f"{s.metric:18} {(s.a + ' - ' + s.b)[:24]:24} {s.n:>4} "
                     f"{_fmt_pct(s.mean_delta):>7} {ci:>16} "
                     f"{f'{s.wins}/{s.ties}/{s.losses}':>9} {_fmt_p(p['t']):>7} "
                     f"{_fmt_p(p['wilcoxon']):>7} {_fmt_p(p['permutation']):>7}")
    lines.append("(deltas in percentage points over per-query values; mAP@k per query: mean "
                 "of AP_t, empty = 0; see docs/PROTOCOLS.md §6)")
    return "\n".join(lines)


# ---------------------------------------------------------------- LaTeX

_LATEX_ESC = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
              "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
              "^": r"\textasciicircum{}"}
_TEST_TEXT = {"t": "paired two-sided t-test",
              "wilcoxon": "two-sided Wilcoxon signed-rank test",
              "permutation": "two-sided paired randomisation test"}
_LATEX_COLS = (("mIoU-bbox", "bbox"), ("mIoU-seg", "seg"), ("mAP@k", "mAP@k"), ("mAP", "mAP"))


def latex_escape(s: str) -> str:
    return "".join(_LATEX_ESC.get(ch, ch) for ch in s)


def _dataset_label(c: Comparison) -> str:
    """PROxf / PRPar for the two benchmarks (``+R1M`` kept), else the dataset's name."""
    short = {"proxford": "PROxf", "prparis": "PRPar"}.get(c.benchmark or "", "")
    if not short:
        return latex_escape(c.dataset or "dataset")
    variant = c.dataset.split("+", 1)[1] if "+" in c.dataset else ""
    return latex_escape(f"{short}+{variant}" if variant else short)


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def to_latex(comps: Comparison | Sequence[Comparison], *, test: str = "t", alpha: float = 0.05,
             correction: str = "holm", label: str = "tab:compare") -> str:
    """One table in the layout of the PROxford/PRParis paper (docs/PROTOCOLS.md §6).

    Rows = methods (letters a, b, c, ... in row order); columns = each comparison's dataset
    (PROxf, PRPar, or the dataset name) x medium / hard x mIoU bbox, mIoU seg, mAP@k and
    image mAP (a column no method has is left out). Values in percent, best per column in
    bold (all equal bests after rounding), a superscript letter when the row is
    significantly better than that method on the column's per-query values (*test*,
    *correction* ``"holm"`` or ``"none"``, level *alpha*).
    """
    comps = [comps] if isinstance(comps, Comparison) else list(comps)
    if not comps:
        raise ValueError("no comparison to tabulate")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if correction not in ("holm", "none"):
        raise ValueError(f"correction must be 'holm' or 'none', got {correction!r}")
    rows: list[str] = []
    for c in comps:
        rows += [m for m in c.methods if m not in rows]
    letter = {m: _letters(i) for i, m in enumerate(rows)}
    # columns: (comparison, setup, metric key, header)
    groups = []
    for c in comps:
        setups = []
        for s in PIXEL_SETUPS:
            cols = [(f"{k}/{s}", h) for k, h in _LATEX_COLS if f"{k}/{s}" in c.reported]
            if cols:
                setups.append((s, cols))
        groups.append((c, setups))
    ncols = sum(len(cols) for _, setups in groups for _, cols in setups)
    if ncols == 0:
        raise ValueError("no mIoU, mAP@k or mAP result to tabulate")
    cells: dict[str, list[str]] = {m: [] for m in rows}
    for c, setups in groups:
        for _, cols in setups:
            for key, _h in cols:
                shown = {m: round(100 * c.reported[key][m], 2) for m in c.methods
                         if m in c.reported.get(key, {}) and math.isfinite(c.reported[key][m])}
                best = max(shown.values()) if shown else None
                for m in rows:
                    if m not in shown:
                        cells[m].append("--")
                        continue
                    txt = f"{shown[m]:.2f}"
                    if shown[m] == best:
                        txt = rf"\textbf{{{txt}}}"
                    sup = "".join(letter[o] for o in rows if o != m and o in c.methods
                                  and c.better(m, o, key, test=test, alpha=alpha,
                                               correction=correction))
                    if sup:
                        txt += rf"$^{{\mathrm{{{sup}}}}}$"
                    cells[m].append(txt)
    lines = [r"% requires \usepackage{booktabs}", r"\begin{table}[t]", r"\centering"]
    corr = (" with Holm's correction across the pairs of methods in each column"
            if correction == "holm" else " without correction for multiple comparisons")
    extra = ""
    if test == "permutation":
        extra = (f" ({comps[0].settings.get('n_permutations')} random sign flips, seed "
                 f"{comps[0].settings.get('seed')}; exact enumeration when $2^n$ is smaller)")
    proto = ", ".join(sorted({c.protocol for c in comps}))
    cap = (f"Comparison of methods ({proto} protocol; percent). bbox, seg: mIoU with the box "
           f"and the segmentation IoU; mAP@k: pixel-level mAP@k; mAP: image-level mAP. Bold: "
           f"best in the column. A superscript letter marks a value significantly better than "
           f"the method with that letter at level $\\alpha = {alpha:g}$: "
           f"{_TEST_TEXT[test]}{extra} on per-query values{corr}.")
    lines += [rf"\caption{{{cap}}}", rf"\label{{{label}}}",
              r"\begin{tabular}{cl" + "c" * ncols + "}", r"\toprule"]
    r1, r2, r3 = ["", ""], ["", ""], [r"\#", "Method"]
    mid1, mid2 = [], []
    col = 3
    for c, setups in groups:
        width = sum(len(cols) for _, cols in setups)
        r1.append(rf"\multicolumn{{{width}}}{{c}}{{{_dataset_label(c)}}}")
        mid1.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        for s, cols in setups:
            r2.append(rf"\multicolumn{{{len(cols)}}}{{c}}{{{s.capitalize()}}}")
            mid2.append(rf"\cmidrule(lr){{{col}-{col + len(cols) - 1}}}")
            r3 += [h for _, h in cols]
            col += len(cols)
    lines += [" & ".join(r1) + r" \\", " ".join(mid1), " & ".join(r2) + r" \\", " ".join(mid2),
              " & ".join(r3) + r" \\", r"\midrule"]
    for m in rows:
        lines.append(" & ".join([letter[m], latex_escape(m), *cells[m]]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


def _split_datasets(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out += [s.strip() for s in v.split(",") if s.strip()]
    return list(dict.fromkeys(out))


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise BenchError("cannot write output", path, exc.strerror or str(exc)) from None


def cli_compare(args) -> None:
    """``python -m bench compare``: called by :mod:`bench.cli` with its parsed arguments."""
    datasets = _split_datasets(args.dataset)
    if not datasets:
        raise BenchError("no dataset", args.root, "give --dataset NAME")
    if args.permutations < 1:
        raise BenchError("bad option", "--permutations", "give a number of sign flips >= 1")
    if not (math.isfinite(args.tol) and args.tol >= 0):
        raise BenchError("bad option", "--tol", "give a tie tolerance >= 0")
    if not 0 < args.alpha < 1:
        raise BenchError("bad option", "--alpha", "give a level between 0 and 1")
    kw = dict(tol=args.tol, n_permutations=args.permutations, seed=args.seed)
    comps = [compare_folder(args.root, d, args.methods, protocol=args.protocol, **kw)
             for d in datasets]
    for c in comps:
        for w in c.warnings:
            print(f"warning: {w}", file=sys.stderr)
    if args.csv:
        _write(args.csv, to_csv(comps, "pairs"))
    if args.csv_per_query:
        _write(args.csv_per_query, to_csv(comps, "per_query"))
    if args.latex:
        _write(args.latex, to_latex(comps, test=args.test, alpha=args.alpha,
                                    correction=args.correction))
    if args.json:
        d = comparison_json(comps[0]) if len(comps) == 1 else {
            "datasets": [comparison_json(c) for c in comps]}
        json.dump(d, sys.stdout)
    else:
        print("\n\n".join(format_table(c) for c in comps))


__all__ = ["DEFAULT_PERMUTATIONS", "DEFAULT_TOL", "METRIC_ORDER", "PAIR_METRICS", "TESTS",
           "Comparison", "MethodResult", "PairStats", "cli_compare", "compare_folder",
           "compare_methods", "comparison_json", "format_table", "holm", "latex_escape",
           "load_methods", "paired_stats", "per_query_map_at_k", "per_query_table",
           "rank_biserial", "to_csv", "to_latex"]
