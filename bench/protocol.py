"""The evaluation protocol as data: one frozen object whose fields are the quirks.

Every rule on which the released evaluation code and the project's clean variant part
ways is one field of :class:`Protocol` (docs/PROTOCOLS.md §4). Two presets name the
usual combinations: :data:`OFFICIAL` (the number the released code prints) and
:data:`STRICT` (the project's clean variant). Every public metric function takes
``protocol=`` as a preset name (``"official"``, ``"strict"``) or a :class:`Protocol`,
so a single quirk can be switched on its own::

    from bench.protocol import OFFICIAL
    evaluate_pixel(gnd, gt, preds, protocol=OFFICIAL.replace(unpredicted_easy="zero"))

The module also holds the constants shared by the engine, the CLI and the app (one
definition each): protocol, setup and similarity names, the labels that count as
positive and as junk in each setup, the mAP@k thresholds, the ignored queries of each
pixel benchmark and the image file extensions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

# ---------------------------------------------------------------- shared constants

#: Protocol presets, in the order the CLI and the app offer them.
PROTOCOLS = ("official", "strict")

#: Revisited setups (docs/PROTOCOLS.md §1 'Setups').
SETUPS = ("easy", "medium", "hard")

#: The setups with pixel-level metrics (docs/PROTOCOLS.md §2).
PIXEL_SETUPS = ("medium", "hard")

#: Ground-truth labels of a Revisited query, most positive first.
LABELS = ("easy", "hard", "junk")

#: setup -> (labels counted as positive, labels counted as junk) (§1 'Setups').
SETUP_LABELS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "easy": (("easy",), ("junk", "hard")),
    "medium": (("easy", "hard"), ("junk",)),
    "hard": (("hard",), ("junk", "easy")),
}

#: Reported P@k cut-offs (§1 step 4).
KS = (1, 5, 10)

#: mAP@k IoU thresholds 0.50, 0.55, ..., 0.95 (§2.3).
THRESHOLDS = tuple(round(0.50 + 0.05 * j, 2) for j in range(10))

#: Queries each pixel benchmark leaves out of mAP@k (§2.3).
IGNORED_QUERIES: dict[str, frozenset[int]] = {
    "proxford": frozenset({56, 63}),
    "prparis": frozenset({57, 59}),
    "none": frozenset(),
}

#: Pixel benchmarks (the keys of :data:`IGNORED_QUERIES`).
BENCHMARKS = tuple(IGNORED_QUERIES)

#: GPR1200 similarities (§3).
METRICS = ("cosine", "dot", "l2")

#: Image file extensions, lower case; compare with ``Path(name).suffix.lower()``.
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def threshold_key(t: float) -> str:
    """``0.5`` -> ``"0.50"``: the key of a threshold in ``map_t`` dicts and in the JSON."""
    return f"{t:.2f}"


def setup_labels(setup: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(positive labels, junk labels) of *setup*; ValueError for an unknown setup."""
    try:
        return SETUP_LABELS[setup]
    except KeyError:
        raise ValueError(f"setup must be one of {SETUPS}, got {setup!r}") from None


def benchmark_for(gnd_name: str) -> str:
    """``roxford5k`` -> ``proxford``, ``rparis6k`` -> ``prparis``, anything else ->
    ``none`` (the released mAP@k script tests ``'oxford' in dataset`` the same way)."""
    n = gnd_name.lower()
    if "oxford" in n:
        return "proxford"
    if "paris" in n:
        return "prparis"
    return "none"


# ---------------------------------------------------------------- the protocol object

Canvas = Literal["square", "image"]
UnpredictedEasy = Literal["skip", "zero"]
EmptyQuery = Literal["nan_mean", "leave_out"]
PkRule = Literal["official_kq", "textbook"]
NAtThreshold = Literal["surviving", "all"]
GprScores = Literal["released", "exact"]

_CHOICES: dict[str, tuple] = {
    "canvas": ("square", "image"),
    "unpredicted_easy": ("skip", "zero"),
    "empty_query": ("nan_mean", "leave_out"),
    "pk_rule": ("official_kq", "textbook"),
    "n_at_threshold": ("surviving", "all"),
    "gpr_scores": ("released", "exact"),
}
_IOU_KINDS = ("bbox", "seg")


@dataclass(frozen=True)
class Protocol:
    """Every rule on which the official and the strict numbers differ, one field each.

    Modelled on COCOeval's ``Params``: the object is the whole evaluation policy, each
    field is documented with its values, and the presets :data:`OFFICIAL` and
    :data:`STRICT` fix them all. Rules that both protocols share (truncation of
    coordinates, fill with boundary, strict ``>`` at a threshold, trapezoidal AP, ...)
    are not fields: they are the definition (docs/PROTOCOLS.md §1-§3).

    Attributes
    ----------
    canvas : ``"square"`` | ``"image"``
        Pixel IoU canvas (§2.1 step 2). ``"square"``: the released ``compute_iou``'s
        canvas of side S = the largest x or y among the pair's points, pixels at S or
        beyond dropped. ``"image"``: the database image (labelme ``imageWidth`` x
        ``imageHeight``; falls back to the square when the label has no size).
    unpredicted_easy : ``"skip"`` | ``"zero"``
        mIoU, an easy pair without prediction (§2.2). ``"skip"``: it joins no list
        (the released ``mious.py``); ``"zero"``: it counts IoU 0 like a hard pair.
    empty_query : ``"nan_mean"`` | ``"leave_out"``
        mIoU, a query whose list is empty (§2.2). ``"nan_mean"``: its mean is NaN
        and so is the mean over queries (``np.mean`` of an empty list in ``mious.py``);
        ``"leave_out"``: it leaves the mean over queries.
    ignored_in_denominator : bool
        mAP@k, the benchmark's ignored queries (§2.3). ``True``: skipped but still
        counted in the denominator, i.e. AP 0 (the released ``compute_map`` of
        ``utils/evaluate_pixel.py``); ``False``: out of numerator and denominator.
    threshold_iou : ``("bbox",)`` | ``("bbox", "seg")``
        mAP@k, the IoU kinds whose threshold is reported (§2.3). The released code
        thresholds the bbox IoU only; with ``"seg"`` a second mAP@k thresholds seg IoU.
    pk_rule : ``"official_kq"`` | ``"textbook"``
        Revisited P@k (§1 step 4). ``"official_kq"``: ``kq = min(max adjusted rank, k)``
        and P@k = hits within kq / kq (revisitop ``compute_map``); ``"textbook"``: hits
        within k / k.
    n_at_threshold : ``"surviving"`` | ``"all"``
        mAP@k, the N of a query's AP at threshold t (§2.3). ``"surviving"``: N = the
        positives whose IoU is above t, and a query with none leaves the mean of that t
        (the released ``compute_map``'s ``nempty``); ``"all"``: N = all the setup's
        positives at every t (as COCO counts detections), a positive at or below t is no
        hit, so a query localising nothing above t has AP_t = 0 and stays in the mean.
    gpr_scores : ``"released"`` | ``"exact"``
        GPR1200 embeddings' scores (§3). ``"released"``: the released ``eval/utils.py``
        product ``F @ F.T`` in the embeddings' own dtype (float32 in, float32 scores),
        ties by index at exact equality of those scores; ``"exact"``: float64 scores of
        rows scaled by powers of two, copies always tie.
    """

    canvas: Canvas = "square"
    unpredicted_easy: UnpredictedEasy = "skip"
    empty_query: EmptyQuery = "nan_mean"
    ignored_in_denominator: bool = True
    threshold_iou: tuple[str, ...] = ("bbox",)
    pk_rule: PkRule = "official_kq"
    n_at_threshold: NAtThreshold = "surviving"
    gpr_scores: GprScores = "released"

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"Protocol.{name} must be one of {allowed}, got {value!r}")
        if not isinstance(self.ignored_in_denominator, bool):
            raise ValueError("Protocol.ignored_in_denominator must be a bool, got "
                             f"{self.ignored_in_denominator!r}")
        kinds = tuple(self.threshold_iou) if isinstance(self.threshold_iou, list | tuple) else ()
        if not kinds or kinds[0] != "bbox" or len(set(kinds)) != len(kinds) \
                or any(k not in _IOU_KINDS for k in kinds):
            raise ValueError("Protocol.threshold_iou must be ('bbox',) or ('bbox', 'seg'), "
                             f"got {self.threshold_iou!r}")
        object.__setattr__(self, "threshold_iou", kinds)

    @property
    def name(self) -> str:
        """``"official"`` or ``"strict"`` when the fields equal a preset, else ``"custom"``."""
        for preset_name, preset in PRESETS.items():
            if self == preset:
                return preset_name
        return "custom"

    def replace(self, **changes) -> Protocol:
        """A copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def of(cls, protocol: str | Protocol) -> Protocol:
        """The :class:`Protocol` named by a preset name or given as an object.

        Raises ValueError for anything else (the message lists the preset names).
        """
        if isinstance(protocol, Protocol):
            return protocol
        if isinstance(protocol, str) and protocol in PRESETS:
            return PRESETS[protocol]
        raise ValueError(f"protocol must be one of {PROTOCOLS} or a Protocol, got {protocol!r}")

    def describe(self) -> dict[str, object]:
        """The fields as a plain dict (for JSON output and the docs)."""
        return dataclasses.asdict(self)


#: The released evaluation code's rules, quirks included.
OFFICIAL = Protocol()

#: The project's clean variant.
STRICT = Protocol(canvas="image", unpredicted_easy="zero", empty_query="leave_out",
                  ignored_in_denominator=False, threshold_iou=("bbox", "seg"),
                  pk_rule="textbook", n_at_threshold="all", gpr_scores="exact")

PRESETS: dict[str, Protocol] = {"official": OFFICIAL, "strict": STRICT}

ProtocolLike = str | Protocol

__all__ = ["BENCHMARKS", "IGNORED_QUERIES", "IMAGE_EXTS", "KS", "LABELS", "METRICS",
           "OFFICIAL", "PIXEL_SETUPS", "PRESETS", "PROTOCOLS", "SETUPS", "SETUP_LABELS",
           "STRICT", "THRESHOLDS", "Protocol", "ProtocolLike", "benchmark_for",
           "setup_labels", "threshold_key"]
