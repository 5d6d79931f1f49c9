"""Discovery of datasets and methods in a folder laid out like the released code.

```
<root>/pixel_retrieval_benchmarks/revisitop/data/<dataset>/gnd_<dataset>.pkl   (e.g. roxford5k)
<root>/pixel_retrieval_benchmarks/revisitop/data/<dataset>/jpg/                (images, optional)
<root>/pixel_retrieval_benchmarks/revisitop/data/revisitop1m.txt               (R1M names, optional)
<root>/pixel_retrieval_benchmarks/revisitop/data/jpg/<line of revisitop1m.txt> (R1M images, optional)
<root>/pixel_retrieval_benchmarks/<short>_pair2labelpath.npy                   (oxford, paris, ...)
<root>/results/image-level/<method>/r<short>.npy                               (ranks)
<root>/results/image-level/<method>/R1M<short>.npy                             (ranks with R1M)
<root>/results/pixel-level/<method>/matching_result/pr<short>.npy              (pixel result)
<root>/results/pixel-level/<method>/matching_result/pR1M<short>.npy            (same, R1M run)
```

Each ``gnd_<dataset>.pkl`` is a dataset. When a method has R1M results (the released
code's ``R1Moxford.npy`` / ``pR1Moxford.npy``, ``R1Mparis.npy`` / ``pR1Mparis.npy``), the
dataset gets a second entry, ``<dataset>+R1M`` (e.g. ``roxford5k+R1M``): same ground
truth and pixel labels, database = ``imlist`` followed by the lines of
``revisitop1m.txt`` (:mod:`bench.formats.distractors`), methods = those with R1M results.
A method with R1M ranks but no ``pR1M<short>.npy`` is paired with its
``pr<short>.npy``: the pixel pairs are the same 5k pairs, and the released ``mAP@k.py``
evaluates its R1M rankings with the 5k pixel results in the same way.

A results file named after the dataset instead (``roxford5k.npy``, ``proxford5k.npy``,
``R1Mroxford5k.npy``, ``pR1Mroxford5k.npy``) is read too, with a note (the released code
would not find it). Any other ``.npy`` file in a method's folder is listed in
:attr:`Discovery.unrecognised` with the name (path) it was expected to have.

The gnd may sit anywhere below the root (the revisitop download keeps it in
``data/datasets/<dataset>/``); folders reached through symbolic links are followed, each
real folder once (a link loop ends), at most :data:`MAX_DEPTH` levels deep and over at
most :data:`MAX_ENTRIES` directory entries, so pointing at ``/`` by mistake ends quickly
with a note of where the search stopped. Images are looked for in a ``jpg/`` folder
beside the gnd, or in the folder given as *images_dir*. The labels root and the results
root may be given separately when they are not under one root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.errors import BenchError
from bench.formats.distractors import (
    DISTRACTOR_LIST,
    DistractorList,
    default_images_folder,
    distractor_entry,
    load_distractors,
)
from bench.formats.revisited import dataset_short_name

MAX_DEPTH = 6  # folder levels below the root searched for gnd files
MAX_ENTRIES = 20_000  # directory entries (files and folders) looked at, at most
R1M = "R1M"
#: never descended into: image folders (the R1M jpg/ holds a million files), tool folders
_SKIP_DIRS = frozenset({"jpg", "jpeg", "images", ".venv", "venv", ".git", "node_modules",
                        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
#: pseudo file systems, skipped when the search starts at or above them
_SKIP_ABS = frozenset({"/proc", "/sys", "/dev", "/run"})
_LEVELS = {"ranks": "image-level", "matches": "pixel-level"}


@dataclass(frozen=True)
class MethodFiles:
    name: str
    ranks: Path | None = None
    matches: Path | None = None


@dataclass(frozen=True)
class DatasetFiles:
    name: str  # roxford5k, or roxford5k+R1M
    short: str  # oxford
    gnd: Path
    labels_root: Path | None = None
    pair_labels: Path | None = None
    images: Path | None = None
    methods: dict[str, MethodFiles] = field(default_factory=dict)
    variant: str = ""  # "" or "R1M"
    distractors: Path | None = None  # revisitop1m.txt
    distractor_images: Path | None = None  # the folder its lines are relative to

    @property
    def base(self) -> str:
        """The gnd's dataset name (``roxford5k`` for ``roxford5k+R1M`` too)."""
        return self.name.split("+", 1)[0]

    @property
    def title(self) -> str:
        """How to show it: ``roxford5k`` or ``roxford5k + R1M distractors``."""
        return f"{self.base} + {self.variant} distractors" if self.variant else self.name

    def distractor_list(self) -> DistractorList | None:
        """The names of database indices past ``imlist`` (read on first use), or None."""
        if self.distractors is None:
            return None
        return load_distractors(self.distractors, self.distractor_images)


class Unrecognised(NamedTuple):
    """A file in a method's results folder that no dataset claims."""

    path: Path
    expected: str  # the path it would have to have, or the names allowed there


class Discovery(list):
    """:func:`discover`'s answer: a ``list[DatasetFiles]`` (base datasets, each followed by
    its ``+R1M`` variant when there is one) with two more attributes:

    - ``unrecognised``: :class:`Unrecognised` files, with the name expected;
    - ``notes``: what else the user should know (aliases read, duplicates skipped, where
      the search stopped, a missing ``revisitop1m.txt``).
    """

    def __init__(self, datasets=(), *, root: Path | None = None,
                 unrecognised: list[Unrecognised] | None = None,
                 notes: list[str] | None = None):
        super().__init__(datasets)
        self.root = root
        self.unrecognised = list(unrecognised or [])
        self.notes = list(notes or [])


# ---------------------------------------------------------------- the bounded search

@dataclass
class _Found:
    gnds: list[Path] = field(default_factory=list)
    pair_labels: list[Path] = field(default_factory=list)
    distractor_lists: list[Path] = field(default_factory=list)
    stopped_at: Path | None = None
    entries: int = 0


def _dir_key(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows links: the real folder
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _search(root: Path, *, max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES
            ) -> _Found:
    """Walk below *root*, following links, each real folder once, to *max_depth* levels
    and over at most *max_entries* entries; collect gnd files, pair-label files and
    distractor lists."""
    out = _Found()
    seen = {_dir_key(root)}
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        d = Path(dirpath)
        out.entries += len(dirnames) + len(filenames)
        for f in sorted(filenames):
            if f.startswith("gnd_") and f.endswith(".pkl"):
                out.gnds.append(d / f)
            elif f.endswith("_pair2labelpath.npy"):
                out.pair_labels.append(d / f)
            elif f == DISTRACTOR_LIST:
                out.distractor_lists.append(d / f)
        if out.entries >= max_entries:
            out.stopped_at = d
            break
        keep = []
        if len(d.parts) - base < max_depth:
            for n in sorted(dirnames):
                child = d / n
                if n in _SKIP_DIRS or str(child) in _SKIP_ABS:
                    continue
                key = _dir_key(child)
                if key is None or key in seen:  # unreadable, or a loop / second link
                    continue
                seen.add(key)
                keep.append(n)
        dirnames[:] = keep
    return out


def _likely_gnds(root: Path) -> list[Path]:
    """The usual places, looked at before (and whatever happens in) the bounded search."""
    pats = ["pixel_retrieval_benchmarks/revisitop/data/*/gnd_*.pkl", "revisitop/data/*/gnd_*.pkl",
            "data/*/gnd_*.pkl", "data/datasets/*/gnd_*.pkl", "*/gnd_*.pkl", "gnd_*.pkl"]
    out: list[Path] = []
    for p in pats:
        out.extend(sorted(q for q in root.glob(p) if q.is_file()))
    return out


def _released_layout(g: Path) -> bool:
    """``.../revisitop/data/<name>/gnd_<name>.pkl``."""
    return (len(g.parents) >= 3 and g.parent.name == g.stem[4:]
            and g.parents[1].name == "data" and g.parents[2].name == "revisitop")


def _ancestor_named(p: Path, name: str) -> Path | None:
    return next((a for a in p.parents if a.name == name), None)


# ---------------------------------------------------------------- results file names

@dataclass(frozen=True)
class _Slot:
    """One expected results file: dataset, variant ("" / "R1M"), kind (ranks / matches)."""

    dataset: str
    short: str
    variant: str
    kind: str

    @property
    def canonical(self) -> str:
        if self.kind == "ranks":
            return f"{self.variant or 'r'}{self.short}.npy"
        return f"p{self.variant or 'r'}{self.short}.npy"

    @property
    def alias(self) -> str:
        return f"{'' if self.kind == 'ranks' else 'p'}{self.variant}{self.dataset}.npy"

    def folder(self, rroot: Path, method: str) -> Path:
        f = rroot / _LEVELS[self.kind] / method
        return f / "matching_result" if self.kind == "matches" else f


def _slots(datasets: list[tuple[str, str]]) -> list[_Slot]:
    return [_Slot(name, short, v, k) for name, short in datasets for v in ("", R1M)
            for k in ("ranks", "matches")]


def _guess_expected(f: Path, level: str, method: str, rroot: Path,
                    datasets: list[tuple[str, str]]) -> str:
    """The path an unrecognised results file most likely should have."""
    stem = f.stem.lower()
    # the released names: p... = pixel matches, r... / R1M... = ranks; else by the folder
    if stem.startswith("pr"):
        kind = "matches"
    elif stem.startswith("r"):
        kind = "ranks"
    else:
        kind = "matches" if level == "pixel-level" else "ranks"
    variant = R1M if "1m" in stem else ""
    hits = [(n, s) for n, s in datasets if s.lower() in stem or n.lower() in stem]
    if hits:
        n, s = max(hits, key=lambda h: len(h[1]))
        slot = _Slot(n, s, variant, kind)
        return str(slot.folder(rroot, method) / slot.canonical)
    names = [sl.canonical for sl in _slots(datasets) if sl.kind == kind]
    folder = _Slot("", "", "", kind).folder(rroot, method)
    return f"{folder}/ one of {', '.join(names)}"


def _scan_results(rroot: Path, datasets: list[tuple[str, str]], found: dict, unrec: list,
                  notes: list) -> None:
    """Fill ``found[(dataset, variant)][method] = {"ranks": path, "matches": path}`` from
    one results root shared by *datasets*; list what is left over in *unrec*."""
    slots = _slots(datasets)
    methods: set[str] = set()
    for level in ("image-level", "pixel-level"):
        if (rroot / level).is_dir():
            methods |= {p.name for p in (rroot / level).iterdir() if p.is_dir()}
    for m in sorted(methods):
        claimed: set[Path] = set()
        for slot in slots:
            folder = slot.folder(rroot, m)
            canon = folder / slot.canonical
            hit = None
            if canon.is_file():
                hit = canon
            elif folder.is_dir():
                want = {slot.canonical.lower(), slot.alias.lower()}
                cands = sorted(p for p in folder.iterdir()
                               if p.name.lower() in want and p.is_file())
                if cands:
                    hit = cands[0]
                    notes.append(f"read {hit} as {slot.canonical} (the released code's "
                                 f"name; its scripts would not find {hit.name})")
            if hit is None:
                continue
            claimed.add(hit)
            if folder.is_dir():  # an alias beside the file used
                for p in folder.iterdir():
                    if (p != hit and p.is_file()
                            and p.name.lower() in {slot.canonical.lower(), slot.alias.lower()}):
                        claimed.add(p)
                        notes.append(f"ignored {p}: {hit.name} is used for "
                                     f"{slot.dataset}{'+' + slot.variant if slot.variant else ''}")
            entry = found.setdefault((slot.dataset, slot.variant), {}).setdefault(m, {})
            entry[slot.kind] = hit
        # left over: .npy files where results belong (pixel-level: also the method folder,
        # a common slip: matching results not in matching_result/)
        places = [(rroot / "image-level" / m, "image-level"),
                  (rroot / "pixel-level" / m / "matching_result", "pixel-level"),
                  (rroot / "pixel-level" / m, "pixel-level")]
        for folder, level in places:
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if p.suffix.lower() == ".npy" and p.is_file() and p not in claimed:
                    unrec.append(Unrecognised(p, _guess_expected(p, level, m, rroot,
                                                                 datasets)))


# ---------------------------------------------------------------- discovery

def _results_roots(root: Path, g: Path, explicit: Path | None) -> list[Path]:
    if explicit is not None:
        return [explicit]
    cands = [root / "results", root]
    if root.name == "pixel_retrieval_benchmarks":
        cands.append(root.parent / "results")
    prb = _ancestor_named(g, "pixel_retrieval_benchmarks")
    if prb is not None:
        cands.append(prb.parent / "results")
    return cands


def _is_results_root(p: Path) -> bool:
    return (p / "image-level").is_dir() or (p / "pixel-level").is_dir()


def _pair_labels_for(short: str, root: Path, g: Path, explicit: Path | None,
                     walked: list[Path]) -> Path | None:
    fname = f"{short}_pair2labelpath.npy"
    if explicit is not None:
        p = explicit / fname
        return p if p.is_file() else None
    cands = [root / "pixel_retrieval_benchmarks" / fname]
    prb = _ancestor_named(g, "pixel_retrieval_benchmarks")
    if prb is not None:
        cands.append(prb / fname)
    if _released_layout(g) and len(g.parents) > 3:
        cands.append(g.parents[3] / fname)
    cands.append(root / fname)
    cands.extend(p for p in walked if p.name == fname)
    return next((p for p in cands if p.is_file()), None)


def _distractors_for(root: Path, g: Path, walked: list[Path]) -> Path | None:
    cands = [g.parents[1] / DISTRACTOR_LIST, g.parents[1] / "revisitop1m" / DISTRACTOR_LIST,
             root / DISTRACTOR_LIST] if len(g.parents) > 1 else [root / DISTRACTOR_LIST]
    cands.extend(walked)
    return next((p for p in cands if p.is_file()), None)


def discover(root: str | os.PathLike, *, images_dir: str | os.PathLike | None = None,
             results_root: str | os.PathLike | None = None,
             labels_root: str | os.PathLike | None = None,
             max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES) -> Discovery:
    """List the datasets (one per ``gnd_*.pkl``, plus ``<dataset>+R1M`` when a method has
    R1M results) and, for each, the methods with results; see the module docstring.

    Returns a :class:`Discovery` (a list of :class:`DatasetFiles` with ``unrecognised`` and
    ``notes``). Raises :class:`BenchError` when *root* is not a folder or holds no gnd.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BenchError("missing folder", root,
                         "no such folder; give the folder that holds pixel_retrieval_benchmarks/ "
                         "and results/")
    notes: list[str] = []
    walk = _search(root, max_depth=max_depth, max_entries=max_entries)
    # one entry per real file, the usual places first
    gnds: list[Path] = []
    seen_files: set[tuple[int, int] | None] = set()
    for g in _likely_gnds(root) + walk.gnds:
        key = _dir_key(g)
        if key not in seen_files:
            seen_files.add(key)
            gnds.append(g)
    if walk.stopped_at is not None:
        where = (f"stopped looking after {walk.entries:,} entries, in {walk.stopped_at}; "
                 "point at the folder that holds pixel_retrieval_benchmarks/ and results/")
        if not gnds:
            raise BenchError("no dataset found", root, f"no gnd_<dataset>.pkl found: {where}")
        notes.append(f"search {where} (datasets deeper than that are not listed)")
    if not gnds:
        raise BenchError("no dataset found", root,
                         "no gnd_<dataset>.pkl below this folder (expected e.g. "
                         "pixel_retrieval_benchmarks/revisitop/data/roxford5k/gnd_roxford5k.pkl"
                         f"; searched {max_depth} levels deep, links followed)")
    # one gnd per dataset name: the released layout's first
    by_name: dict[str, Path] = {}
    for g in sorted(gnds, key=lambda p: (not _released_layout(p), len(p.parts), str(p))):
        name = g.stem[4:]
        if name in by_name:
            notes.append(f"ignored {g}: {by_name[name]} is used for {name}")
        else:
            by_name[name] = g

    lroot = Path(labels_root).expanduser() if labels_root else None
    explicit_r = Path(results_root).expanduser() if results_root else None
    # results roots, each scanned once for all the datasets that use it
    rroot_of: dict[str, Path | None] = {}
    for name, g in by_name.items():
        rroot_of[name] = next((c for c in _results_roots(root, g, explicit_r)
                               if _is_results_root(c)), None)
    found: dict[tuple[str, str], dict[str, dict[str, Path]]] = {}
    unrec: list[Unrecognised] = []
    groups: dict[Path, list[tuple[str, str]]] = {}
    for name, rr in rroot_of.items():
        if rr is not None:
            groups.setdefault(rr, []).append((name, dataset_short_name(name)))
    for rr, members in groups.items():
        _scan_results(rr, members, found, unrec, notes)

    out: list[DatasetFiles] = []
    for name, g in sorted(by_name.items()):
        short = dataset_short_name(name)
        pl = _pair_labels_for(short, root, g, lroot, walk.pair_labels)
        images = None
        if images_dir:
            idir = Path(images_dir).expanduser()
            cand = [idir / name / "jpg", idir / "jpg", idir]
            images = next((c for c in cand if c.is_dir()), None)
        elif (g.parent / "jpg").is_dir():
            images = g.parent / "jpg"
        dlist = _distractors_for(root, g, walk.distractor_lists)
        dimages = default_images_folder(dlist) if dlist is not None else None
        common = dict(short=short, gnd=g, labels_root=pl.parent if pl else None,
                      pair_labels=pl, images=images, distractors=dlist,
                      distractor_images=dimages)
        base = found.get((name, ""), {})
        methods = {m: MethodFiles(m, f.get("ranks"), f.get("matches"))
                   for m, f in sorted(base.items())}
        out.append(DatasetFiles(name=name, methods=methods, **common))
        r1m = found.get((name, R1M), {})
        if r1m:
            methods = {m: MethodFiles(m, f.get("ranks"),
                                      f.get("matches") or base.get(m, {}).get("matches"))
                       for m, f in sorted(r1m.items())}
            out.append(DatasetFiles(name=f"{name}+{R1M}", variant=R1M, methods=methods,
                                    **common))
            if dlist is None:
                notes.append(f"{name}+{R1M}: no {DISTRACTOR_LIST} found (expected "
                             f"{g.parents[1] / DISTRACTOR_LIST}); distractors are shown by "
                             "number, without images")
    return Discovery(out, root=root, unrecognised=unrec, notes=notes)


# ---------------------------------------------------------------- helpers for callers

def find_method(datasets: list[DatasetFiles], method: str, dataset: str | None = None
                ) -> tuple[DatasetFiles, MethodFiles] | None:
    """Where *method* has results: in *dataset* when it has them there, else in the first
    dataset with the same base (``roxford5k`` <-> ``roxford5k+R1M``), else in the first
    dataset that has them; None when no dataset has that method."""
    order = sorted(datasets, key=lambda d: (d.name != dataset,
                                            d.base != (dataset or "").split("+", 1)[0]))
    for d in order:
        if method in d.methods:
            return d, d.methods[method]
    return None


def database_image(ds: DatasetFiles, imlist: list[str], i: int) -> tuple[str, Path | None]:
    """``(name, image file)`` of database index *i*: an ``imlist`` image (its file in
    ``ds.images``, None when absent), or past ``imlist`` an R1M distractor (named from
    ``revisitop1m.txt``; its expected file, which may be missing)."""
    n_db = len(imlist)
    if 0 <= i < n_db:
        from bench.thumbs import resolve_image

        return imlist[i], resolve_image(ds.images, imlist[i])
    return distractor_entry(n_db, i, ds.distractor_list())


def discovery_json(found: Discovery | list[DatasetFiles]) -> dict:
    """What ``python -m bench discover --json`` prints."""
    def s(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return {
        "root": s(getattr(found, "root", None)),
        "datasets": {d.name: {
            "base": d.base, "variant": d.variant or None, "gnd": s(d.gnd),
            "pair_labels": s(d.pair_labels), "labels_root": s(d.labels_root),
            "images": s(d.images), "distractors": s(d.distractors),
            "distractor_images": s(d.distractor_images),
            "methods": {m.name: {"ranks": s(m.ranks), "matches": s(m.matches)}
                        for m in d.methods.values()}} for d in found},
        "unrecognised": [{"path": str(u.path), "expected": u.expected}
                         for u in getattr(found, "unrecognised", [])],
        "notes": list(getattr(found, "notes", [])),
    }


def discovery_text(found: Discovery | list[DatasetFiles]) -> str:
    """What ``python -m bench discover`` prints: one block per dataset, then the
    unrecognised files with the name expected, then notes."""
    lines: list[str] = []

    def rel(p: Path | None) -> str:
        if p is None:
            return "-"
        root = getattr(found, "root", None)
        try:
            return str(p.relative_to(root)) if root is not None else str(p)
        except ValueError:
            return str(p)

    for d in found:
        lines.append(f"{d.name}" + (f"   ({d.title})" if d.variant else ""))
        lines.append(f"  gnd          {rel(d.gnd)}")
        lines.append(f"  pixel labels {rel(d.pair_labels)}")
        lines.append(f"  images       {rel(d.images)}")
        if d.variant or d.distractors is not None:
            lines.append(f"  distractors  {rel(d.distractors)}"
                         + (f"  (images in {rel(d.distractor_images)})"
                            if d.distractors is not None else ""))
        if d.methods:
            w = max(len(m) for m in d.methods)
            lines.append(f"  {'method':{w}}  ranks / matches")
            for m in d.methods.values():
                lines.append(f"  {m.name:{w}}  {rel(m.ranks)}")
                lines.append(f"  {'':{w}}  {rel(m.matches)}")
        else:
            lines.append("  no results found under results/")
    unrec = getattr(found, "unrecognised", [])
    if unrec:
        lines.append("unrecognised files (rename them to the expected name):")
        for u in unrec:
            lines.append(f"  {rel(u.path)}")
            lines.append(f"    expected: {u.expected}")
    for n in getattr(found, "notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "R1M", "DatasetFiles", "Discovery", "MethodFiles",
           "Unrecognised", "database_image", "discover", "discovery_json", "discovery_text",
           "find_method"]
