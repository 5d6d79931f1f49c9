"""The in-memory API: evaluate what a method holds in memory, without writing files.

For a training loop's validation step, a notebook or a sweep script. Three steps:

1. Load the ground truth once, from the released files (:func:`load_revisited`,
   :func:`load_pixel_ground_truth`, :func:`load_gpr1200`) or from lists you already hold
   (:func:`revisited_ground_truth`); saved results too, where you have files
   (:func:`load_ranks`, :func:`load_pixel_predictions`).
2. Call :func:`evaluate_revisited`, :func:`evaluate_pixel` or :func:`evaluate_gpr1200`
   with arrays (numpy arrays, or anything ``numpy.asarray`` takes: lists, CPU tensors).
3. Read the typed result: every per-query (and per-pair) value is kept;
   ``.to_dict()`` gives exactly the JSON of ``python -m bench ... --json``, and
   ``.to_pandas()`` a tidy ``pandas.DataFrame``.

The command line and the app call these same engine functions (``bench.metrics``), so a
number here is the number the CLI prints. Every rule is defined in docs/PROTOCOLS.md
(§1 Revisited, §2 pixel, §3 GPR1200, §4 the two protocols ``"official"`` / ``"strict"``).

Bad input raises :class:`bench.errors.BenchError` (what is wrong and where) or
``ValueError`` for arguments of the wrong kind.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.errors import BenchError, BenchWarning
from bench.formats.revisited import Gnd
from bench.protocol import ProtocolLike

if TYPE_CHECKING:  # pandas comes with Streamlit; imported only by to_pandas()
    import pandas as pd

    from bench.formats.gpr1200 import GprImages
    from bench.metrics.gpr1200 import GprResult
    from bench.metrics.pixel import PixelResult
    from bench.metrics.revisited import RevisitedSetupResult

PathLike = str | os.PathLike
Pair = tuple[int, int]
_MEMORY = Path("<memory>")
_KEY = re.compile(r"^(?:qimlist_)?(\d{1,9})_(?:imlist_)?(\d{1,12})$")


# ---------------------------------------------------------------- ground truth

def load_revisited(gnd_path: PathLike) -> Gnd:
    """Read a Revisited ground truth ``gnd_<dataset>.pkl`` (docs/PROTOCOLS.md §1).

    The same reader as the CLI: safe unpickling, every index checked.

    >>> import os, pickle, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "gnd_rtiny.pkl")
    >>> entry = {"easy": [0], "hard": [], "junk": [1], "bbx": [0, 0, 5, 5]}
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"imlist": ["a", "b"], "qimlist": ["q"], "gnd": [entry]}, f)
    >>> gnd = load_revisited(path)
    >>> gnd.name, gnd.n_queries, gnd.n_db, gnd.easy[0].tolist(), gnd.junk[0].tolist()
    ('rtiny', 1, 2, [0], [1])
    """
    from bench.formats.revisited import load_gnd

    return load_gnd(gnd_path)


def revisited_ground_truth(easy: Sequence[Sequence[int]], hard: Sequence[Sequence[int]],
                           junk: Sequence[Sequence[int]] | None = None, *, n_db: int,
                           name: str = "custom", imlist: Sequence[str] | None = None,
                           qimlist: Sequence[str] | None = None) -> Gnd:
    """A ground truth from lists held in memory: per query, the database indices that
    are easy, hard and junk for it (the fields of a released ``gnd`` entry).

    >>> gnd = revisited_ground_truth(easy=[[0]], hard=[[2]], junk=[[1]], n_db=4)
    >>> gnd.n_queries, gnd.n_db
    (1, 4)
    """
    nq = len(easy)
    junk = junk if junk is not None else [[] for _ in range(nq)]
    if len(hard) != nq or len(junk) != nq:
        raise ValueError(f"easy, hard and junk need one list per query: got {len(easy)}, "
                         f"{len(hard)} and {len(junk)}")
    if n_db < 1:
        raise ValueError(f"n_db must be positive, got {n_db}")

    def arrays(lists: Sequence[Sequence[int]], what: str) -> list[np.ndarray]:
        out = []
        for q, lst in enumerate(lists):
            a = np.asarray(lst, dtype=np.int64).reshape(-1)
            if a.size and (a.min() < 0 or a.max() >= n_db):
                raise ValueError(f"{what}[{q}] holds an index outside 0..{n_db - 1}")
            out.append(a)
        return out

    im = list(imlist) if imlist is not None else [f"db{i}" for i in range(n_db)]
    qim = list(qimlist) if qimlist is not None else [f"q{q}" for q in range(nq)]
    if len(im) != n_db or len(qim) != nq:
        raise ValueError("imlist must have n_db names and qimlist one name per query")
    return Gnd(path=_MEMORY, name=name, imlist=im, qimlist=qim, easy=arrays(easy, "easy"),
               hard=arrays(hard, "hard"), junk=arrays(junk, "junk"), bbx=[None] * nq)


def load_ranks(path: PathLike, gnd: Gnd) -> np.ndarray:
    """Memory-map a ranks ``.npy`` ``(n_rows, n_queries)`` and check it against *gnd*
    (docs/PROTOCOLS.md §1 'Ranks'): the file a search saved, as the CLI reads it.

    >>> import os, tempfile
    >>> gnd = revisited_ground_truth(easy=[[0], [1]], hard=[[], []], n_db=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "ranks.npy")
    >>> np.save(path, np.array([[0, 1], [2, 0], [1, 2]]))  # column q: query q's ranking
    >>> load_ranks(path, gnd)[:, 1].tolist()
    [1, 0, 2]
    """
    from bench.formats.revisited import load_ranks as _load

    return _load(path, gnd)


def load_pixel_predictions(path: PathLike, gnd: Gnd) -> dict[Pair, np.ndarray | None]:
    """Read a released ``matching_result/p<short>.npy`` -> ``{(q, i): (n, 2) points or
    None}`` through the safe reader (docs/PROTOCOLS.md §2, §8). Malformed entries count as
    no prediction, as in the CLI, where they are also reported as warnings.

    >>> import os, tempfile
    >>> gnd = revisited_ground_truth(easy=[[0]], hard=[[1]], n_db=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "proxford.npy")
    >>> np.save(path, {"qimlist_0_imlist_1": [[1, 2], [8, 2], [8, 9], [1, 9]],
    ...                "qimlist_0_imlist_0": []})
    >>> preds = load_pixel_predictions(path, gnd)
    >>> preds[(0, 0)] is None, preds[(0, 1)].shape
    (True, (4, 2))
    """
    from bench.formats.pixel import load_matches

    preds, _ = load_matches(path, n_queries=gnd.n_queries, n_db=gnd.n_db)
    return preds


@dataclass(frozen=True, eq=False)
class PixelGroundTruth:
    """The pixel ground truth of every easy or hard pair (docs/PROTOCOLS.md §2).

    ``shapes[(q, i)]`` is the list of ``(n, 2)`` ``[x, y]`` polygons of the pair (their
    union is the region); ``sizes[(q, i)]`` the database image's ``(width, height)``
    (``None`` when unknown; only the strict protocol's canvas reads it).
    """

    shapes: dict[Pair, list[np.ndarray]]
    sizes: dict[Pair, tuple[int, int] | None] = field(default_factory=dict)
    warnings: list[BenchWarning] = field(default_factory=list)


def load_pixel_ground_truth(gnd: Gnd, pair_labels: PathLike,
                            labels_root: PathLike | None = None) -> PixelGroundTruth:
    """Read ``<short>_pair2labelpath.npy`` and the labelme files it names, for every easy
    or hard pair of *gnd* (docs/PROTOCOLS.md §2). *labels_root* is the folder the label
    paths are relative to (``pixel_retrieval_benchmarks/``).

    >>> import json, os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> shape = {"label": "obj", "shape_type": "polygon",
    ...          "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}
    >>> with open(os.path.join(root, "0_1.json"), "w") as f:
    ...     json.dump({"shapes": [shape], "imageWidth": 20, "imageHeight": 16}, f)
    >>> np.save(os.path.join(root, "tiny_pair2labelpath.npy"), {"0_1": "0_1.json"})
    >>> gnd = revisited_ground_truth(easy=[[]], hard=[[1]], n_db=2)
    >>> gt = load_pixel_ground_truth(gnd, os.path.join(root, "tiny_pair2labelpath.npy"), root)
    >>> len(gt.shapes[(0, 1)]), gt.shapes[(0, 1)][0].shape, gt.sizes[(0, 1)]
    (1, (4, 2), (20, 16))
    """
    from bench.evaluate import load_ground_truth_labels

    shapes, sizes, _, warnings = load_ground_truth_labels(gnd, pair_labels, labels_root)
    return PixelGroundTruth(shapes=shapes, sizes=sizes, warnings=warnings)


def load_gpr1200(images: PathLike, order: PathLike | None = None) -> GprImages:
    """The GPR1200 images folder (``{category}_{name}.jpg``) in evaluation order, with
    each image's category; *order* is a text file naming the order in which your
    embeddings' rows were saved (docs/PROTOCOLS.md §3). Pass ``.categories`` (and
    ``.to_file_order(embeddings)`` when an order file was given) to
    :func:`evaluate_gpr1200`.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("1_b.jpg", "0_z.jpg", "1_a.jpg", "0_y.jpg"):
    ...     open(os.path.join(folder, name), "wb").close()
    >>> images = load_gpr1200(folder)
    >>> images.names, images.categories.tolist()
    (['0_y.jpg', '0_z.jpg', '1_a.jpg', '1_b.jpg'], [0, 0, 1, 1])
    """
    from bench.formats.gpr1200 import load_gpr_images

    return load_gpr_images(images, order)


# ---------------------------------------------------------------- results

def _num(x: Any) -> float | None:
    from bench.evaluate import num

    return num(x)


@dataclass(frozen=True, eq=False)
class RevisitedReport:
    """Image-level results for easy, medium and hard (docs/PROTOCOLS.md §1).

    ``setups[setup]`` holds per-query ``ap`` (NaN for a query without positives),
    ``pk[k]`` (per-query precision at k), ``n_pos``, and the means ``mAP`` and ``mP``.
    """

    protocol: str
    setups: dict[str, RevisitedSetupResult]
    queries: list[str]

    @property
    def mAP(self) -> dict[str, float]:
        """``{"easy": mAP, "medium": ..., "hard": ...}`` as fractions (not percent)."""
        return {s: r.mAP for s, r in self.setups.items()}

    def mP(self, k: int) -> dict[str, float]:
        """Mean precision at *k* per setup (k in 1, 5, 10)."""
        return {s: r.mP[k] for s, r in self.setups.items()}

    def to_dict(self) -> dict:
        """The JSON of ``python -m bench revisited --json``."""
        from bench.evaluate import revisited_json

        return revisited_json(self.setups)

    def to_pandas(self) -> pd.DataFrame:
        """One row per (setup, query): ``setup, query, name, ap, n_positives, p@1 ...``."""
        import pandas as pd

        rows = []
        for setup, r in self.setups.items():
            for q, name in enumerate(self.queries):
                row = {"setup": setup, "query": q, "name": name, "ap": float(r.ap[q]),
                       "n_positives": int(r.n_pos[q])}
                row.update({f"p@{k}": float(v[q]) for k, v in r.pk.items()})
                rows.append(row)
        return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class PixelReport:
    """Pixel-level results (docs/PROTOCOLS.md §2): ``pairs[(q, i)] = (bbox IoU, seg
    IoU)`` for every predicted easy or hard pair; ``setups["medium" | "hard"]`` with
    ``miou_bbox``, ``miou_seg``, per-query values and, when ranks were given,
    ``map_at_k``, ``map_t`` and per-query ``per_query_ap_t``; ``warnings`` lists the
    pairs that were not scored and why."""

    result: PixelResult
    queries: list[str]

    @property
    def protocol(self) -> str:
        return self.result.protocol

    @property
    def pairs(self) -> dict[Pair, tuple[float, float]]:
        return self.result.pairs

    @property
    def setups(self) -> dict:
        return self.result.setups

    @property
    def warnings(self) -> list[BenchWarning]:
        return self.result.warnings

    @property
    def mIoU(self) -> dict[str, dict[str, float]]:
        """``{"medium": {"bbox": .., "seg": ..}, "hard": {...}}`` as fractions."""
        return {s: {"bbox": r.miou_bbox, "seg": r.miou_seg} for s, r in self.setups.items()}

    @property
    def mAP_at_k(self) -> dict[str, float | None]:
        """mAP@k (bbox IoU thresholds 0.50..0.95) per setup; ``None`` without ranks."""
        return {s: r.map_at_k for s, r in self.setups.items()}

    def to_dict(self) -> dict:
        """The JSON of ``python -m bench pixel --json``."""
        from bench.evaluate import pixel_json

        return pixel_json(self.result)

    def to_pandas(self) -> pd.DataFrame:
        """One row per scored pair: ``query, image, name, bbox, seg``."""
        import pandas as pd

        rows = [{"query": q, "image": i, "name": self.queries[q], "bbox": b, "seg": s}
                for (q, i), (b, s) in sorted(self.pairs.items())]
        return pd.DataFrame(rows, columns=["query", "image", "name", "bbox", "seg"])

    def queries_frame(self) -> pd.DataFrame:
        """One row per (setup, query): per-query mIoU bbox and seg (and mAP@k's per-query
        mean over thresholds when ranks were given)."""
        import pandas as pd

        rows = []
        for setup, r in self.setups.items():
            for q, name in enumerate(self.queries):
                row = {"setup": setup, "query": q, "name": name,
                       "miou_bbox": float(r.per_query_bbox[q]),
                       "miou_seg": float(r.per_query_seg[q])}
                if r.per_query_ap_t is not None:
                    col = r.per_query_ap_t[:, q]
                    row["ap_at_k"] = float(np.mean(col)) if np.all(np.isfinite(col)) else math.nan
                rows.append(row)
        return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class GprReport:
    """GPR1200 results (docs/PROTOCOLS.md §3): per-image ``ap`` in the order the
    categories were given, ``mAP`` and the six ``subsets``."""

    result: GprResult
    names: list[str] | None = None

    @property
    def ap(self) -> np.ndarray:
        return self.result.ap

    @property
    def mAP(self) -> float:
        return self.result.mAP

    @property
    def subsets(self) -> dict[str, float]:
        return self.result.subsets

    def to_dict(self) -> dict:
        """The numbers of ``python -m bench gpr1200 --json`` (``mAP``, ``subsets``, ``ap``)."""
        from bench.evaluate import nums

        return {"mAP": _num(self.mAP), "subsets": {k: _num(v) for k, v in self.subsets.items()},
                "ap": nums(self.ap), "n_images": int(self.ap.size)}

    def to_pandas(self) -> pd.DataFrame:
        """One row per image: ``image, name, subset, ap``."""
        import pandas as pd

        from bench.metrics.gpr1200 import SUBSETS

        n = self.ap.size
        return pd.DataFrame({"image": np.arange(n),
                             "name": self.names if self.names is not None else [""] * n,
                             "subset": [SUBSETS[b] for b in self.result.subset_of.tolist()],
                             "ap": self.ap})


# ---------------------------------------------------------------- evaluation

def _ranks_array(ranks: Any, gnd: Gnd) -> np.ndarray:
    """The released layout ``(n_rows, n_queries)`` from an array in that layout or from
    per-query ranked lists (a list or tuple of 1-D sequences, one per query)."""
    if isinstance(ranks, list | tuple):
        cols = [np.asarray(r).reshape(-1) for r in ranks]
        if len(cols) != gnd.n_queries:
            raise ValueError(f"{len(cols)} ranked lists given for {gnd.n_queries} queries")
        lengths = {c.size for c in cols}
        if len(lengths) != 1:
            raise ValueError("per-query ranked lists must all have the same length "
                             f"(got lengths {sorted(lengths)[:5]})")
        arr = np.stack(cols, axis=1) if cols else np.empty((0, 0))
    else:
        arr = np.asarray(ranks)
    if arr.ndim != 2:
        raise ValueError(f"ranks must be 2-D (n_rows, n_queries), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError("ranks must hold integer database indices")
        arr = arr.astype(np.int64)
    return arr


def evaluate_revisited(gnd: Gnd, ranks: Any, *, protocol: ProtocolLike = "official"
                       ) -> RevisitedReport:
    """mAP and mP@k under easy, medium and hard (docs/PROTOCOLS.md §1).

    Parameters
    ----------
    gnd : the ground truth (:func:`load_revisited` or :func:`revisited_ground_truth`).
    ranks : database indices in rank order, either the released layout
        ``(n_rows, n_queries)`` (column q = query q's ranking, as ``ranks.npy``), or one
        ranked list per query (a list of 1-D arrays). Usually a full ranking; a
        truncated one (top n_rows) counts unranked positives as never retrieved.
    protocol : ``"official"`` (the released code's numbers) or ``"strict"`` (§4).

    Example: one query, four database images; image 0 is easy, 2 hard, 1 junk, and the
    ranking is 1, 0, 3, 2. Junk is removed first, leaving 0, 3, 2.

    - easy (positives {0}, hard becomes junk): 0 at the top, AP = 1.
    - medium (positives {0, 2}): hits at 0-based positions 0 and 2; the trapezoid AP
      of §1 is 1/2 * (1 + 1)/2 + 1/2 * (1/2 + 2/3)/2 = 0.5 + 0.291666... = 0.791666...
    - hard (positives {2}, easy becomes junk): 3, 2 remain; hit at position 1:
      1 * (0/1 + 1/2)/2 = 0.25.

    >>> gnd = revisited_ground_truth(easy=[[0]], hard=[[2]], junk=[[1]], n_db=4)
    >>> report = evaluate_revisited(gnd, [[1, 0, 3, 2]])
    >>> {s: round(v, 6) for s, v in report.mAP.items()}
    {'easy': 1.0, 'medium': 0.791667, 'hard': 0.25}
    >>> report.mP(1)["medium"], report.mP(1)["hard"]
    (1.0, 0.0)
    """
    from bench.metrics.revisited import evaluate_revisited as _evaluate
    from bench.protocol import Protocol

    arr = _ranks_array(ranks, gnd)
    proto = Protocol.of(protocol)
    return RevisitedReport(protocol=proto.name, setups=_evaluate(arr, gnd, protocol=proto),
                           queries=list(gnd.qimlist))


def _pair_key(key: Any) -> Pair:
    if isinstance(key, str):
        m = _KEY.match(key)
        if not m:
            raise ValueError(f"prediction key {key!r} is neither (q, i) nor "
                             "'qimlist_<q>_imlist_<i>'")
        return int(m.group(1)), int(m.group(2))
    try:
        q, i = key
        return int(q), int(i)
    except (TypeError, ValueError):
        raise ValueError(f"prediction key {key!r} is neither (q, i) nor "
                         "'qimlist_<q>_imlist_<i>'") from None


def _region(value: Any, key: Pair) -> np.ndarray | None:
    """``(n, 2)`` ``[x, y]`` points of a predicted region: a polygon, a box
    ``(x1, y1, x2, y2)`` (its four corners), or ``None`` / empty for no prediction."""
    if value is None:
        return None
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        return None
    if a.shape == (4,):
        x1, y1, x2, y2 = a.tolist()
        a = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"prediction for pair {key} must be (n, 2) [x, y] points or a box "
                         f"(x1, y1, x2, y2), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"prediction for pair {key} has a non-finite coordinate")
    return a


def evaluate_pixel(gnd: Gnd, ground_truth: PixelGroundTruth | Mapping[Pair, Sequence[Any]],
                   predictions: Mapping[Any, Any], *, ranks: Any = None,
                   protocol: ProtocolLike = "official", benchmark: str | None = None
                   ) -> PixelReport:
    """mIoU (bbox and seg) and, given image-level *ranks*, mAP@k for medium and hard
    (docs/PROTOCOLS.md §2).

    Parameters
    ----------
    gnd : the Revisited ground truth of the dataset.
    ground_truth : :func:`load_pixel_ground_truth`'s result, or ``{(q, i): [polygon, ...]}``.
    predictions : ``{(q, i): region}`` (keys may also be the released
        ``"qimlist_<q>_imlist_<i>"``); a region is ``(n, 2)`` ``[x, y]`` polygon points, a
        box ``(x1, y1, x2, y2)``, or ``None``; a missing pair is not predicted.
    ranks : image-level ranks as for :func:`evaluate_revisited`; enables mAP@k.
    protocol : ``"official"`` or ``"strict"`` (§4).
    benchmark : ``"proxford"``, ``"prparis"`` or ``"none"``: which queries mAP@k ignores
        (default: from the ground truth's name).

    Example: one query whose database image 0 is hard, labelled with the square
    (0, 0)-(10, 10); the method predicts the box (0, 0, 10, 5). The official canvas is a
    square of side 10 (the largest coordinate), so pixels 0..9 count: the labelled
    square covers 10 x 10 = 100 pixels, the box 10 x 6 = 60 (rows 0..5), all inside it,
    so bbox IoU = seg IoU = 60 / 100 = 0.6, and with one pair the query's and the
    benchmark's mIoU are 0.6 under medium and hard.

    >>> gnd = revisited_ground_truth(easy=[[]], hard=[[0]], n_db=2, name="rdemo")
    >>> square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    >>> report = evaluate_pixel(gnd, {(0, 0): [square]}, {(0, 0): (0, 0, 10, 5)})
    >>> report.pairs[(0, 0)]
    (0.6, 0.6)
    >>> report.mIoU["hard"]
    {'bbox': 0.6, 'seg': 0.6}
    """
    from bench.metrics.pixel import evaluate_pixel as _evaluate
    from bench.protocol import Protocol

    if isinstance(ground_truth, PixelGroundTruth):
        shapes, sizes = ground_truth.shapes, ground_truth.sizes
        warnings = list(ground_truth.warnings)
    else:
        shapes = {_pair_key(k): [np.asarray(s, dtype=np.float64) for s in v]
                  for k, v in ground_truth.items()}
        sizes, warnings = {}, []
    preds: dict[Pair, np.ndarray | None] = {}
    for k, v in predictions.items():
        key = _pair_key(k)
        if not (0 <= key[0] < gnd.n_queries):
            raise BenchError("pair outside the dataset", "<predictions>",
                             f"pair {key} names query {key[0]} but the ground truth has "
                             f"{gnd.n_queries} queries")
        preds[key] = _region(v, key)
    arr = None if ranks is None else _ranks_array(ranks, gnd)
    res = _evaluate(gnd, shapes, preds, ranks=arr, protocol=Protocol.of(protocol),
                    benchmark=benchmark, image_sizes=sizes, warnings=warnings)
    return PixelReport(result=res, queries=list(gnd.qimlist))


def evaluate_gpr1200(categories: Any, *, embeddings: Any = None, indices: Any = None,
                     metric: str = "cosine", protocol: ProtocolLike = "official",
                     names: Sequence[str] | None = None) -> GprReport:
    """GPR1200 mAP over the full ranking and its six subsets (docs/PROTOCOLS.md §3):
    every image queries all n images; its positives are the images of its category.

    Parameters
    ----------
    categories : the integer category of every image (``load_gpr1200(...).categories``).
    embeddings : ``(n, d)`` features, one row per image in the order of *categories*;
        or *indices*: ``(n, k)`` ranked neighbour lists (row q = q's list).
    metric : ``"cosine"`` or ``"dot"`` (``"l2"`` where offered): how embeddings are
        compared (§3 says what the released code does).
    protocol : ``"official"`` or ``"strict"`` (§3, §4).
    names : image names, only to label ``to_pandas()`` rows.

    Example: four images, categories 0, 0, 1, 1; each image's list holds all four,
    itself included (§3). Image 3 scores 0.8 with image 0, 0.74 with 1, 0.68 with itself
    and 0.2 with 2: its positives (3 and 2) come at 0-based positions 2 and 3, so
    AP = (1/3 + 2/4) / 2 = 5/12. Images 0, 1 and 2 find both positives first (AP = 1),
    so mAP = (3 + 5/12) / 4 = 41/48.

    >>> emb = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.2]]
    >>> report = evaluate_gpr1200([0, 0, 1, 1], embeddings=emb, metric="dot")
    >>> [round(a, 4) for a in report.ap.tolist()]
    [1.0, 1.0, 1.0, 0.4167]
    >>> round(report.mAP, 6), round(41 / 48, 6)
    (0.854167, 0.854167)
    """
    from bench.metrics.gpr1200 import evaluate_gpr1200 as _evaluate

    cats = np.asarray(categories)
    if cats.ndim != 1 or not np.issubdtype(cats.dtype, np.integer):
        raise ValueError("categories must be a 1-D array of integers")
    if (embeddings is None) == (indices is None):
        raise ValueError("give exactly one of embeddings or indices")
    kw: dict[str, Any] = {}
    if embeddings is not None:
        emb = np.asarray(embeddings)
        if emb.dtype.kind not in "fiu":
            raise ValueError("embeddings must be numeric")
        if emb.ndim != 2 or emb.shape[0] != cats.size:
            raise ValueError(f"embeddings must be (n, d) with n = {cats.size}, got {emb.shape}")
        kw["embeddings"] = emb if emb.dtype.kind == "f" else emb.astype(np.float64)
    else:
        idx = np.asarray(indices)
        if idx.ndim != 2 or idx.shape[0] != cats.size or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be (n, k) integers with n = {cats.size}")
        if idx.size and (idx.min() < 0 or idx.max() >= cats.size):
            raise ValueError(f"indices must lie in 0..{cats.size - 1}")
        kw["indices"] = idx
    res = _evaluate(cats.astype(np.int64), metric=metric, **_gpr_protocol(protocol), **kw)
    return GprReport(result=res, names=list(names) if names is not None else None)


def _gpr_protocol(protocol: ProtocolLike) -> dict[str, Any]:
    """The protocol keyword of the GPR1200 engine, where it takes one (§3)."""
    import inspect

    from bench.metrics.gpr1200 import evaluate_gpr1200 as _evaluate

    if "protocol" in inspect.signature(_evaluate).parameters:
        return {"protocol": protocol}
    from bench.protocol import Protocol

    if Protocol.of(protocol).name != "official":
        raise ValueError("this engine computes GPR1200 under one protocol only")
    return {}


__all__ = ["GprReport", "PixelGroundTruth", "PixelReport", "RevisitedReport",
           "evaluate_gpr1200", "evaluate_pixel", "evaluate_revisited", "load_gpr1200",
           "load_pixel_ground_truth", "load_pixel_predictions", "load_ranks",
           "load_revisited", "revisited_ground_truth"]
