"""bench: evaluation core for Revisited Oxford/Paris, PROxford/PRParis and GPR1200.

The in-memory API (:mod:`bench.api`) is exported here and imported on first use, so
``import bench`` stays light (the command line imports only what a subcommand needs)::

    import bench
    gnd = bench.load_revisited("gnd_roxford5k.pkl")
    report = bench.evaluate_revisited(gnd, ranks)      # ranks: (n_db, n_queries)
    report.mAP["medium"], report.to_pandas()

Outside :mod:`bench.app` (the Streamlit app) nothing here imports streamlit. Protocol
references (section numbers) point to docs/PROTOCOLS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_API = ("GprReport", "PixelGroundTruth", "PixelReport", "RevisitedReport", "evaluate_gpr1200",
        "evaluate_pixel", "evaluate_revisited", "load_gpr1200", "load_pixel_ground_truth",
        "load_pixel_predictions", "load_ranks", "load_revisited", "revisited_ground_truth")

if TYPE_CHECKING:
    from bench.api import (  # noqa: F401
        GprReport,
        PixelGroundTruth,
        PixelReport,
        RevisitedReport,
        evaluate_gpr1200,
        evaluate_pixel,
        evaluate_revisited,
        load_gpr1200,
        load_pixel_ground_truth,
        load_pixel_predictions,
        load_ranks,
        load_revisited,
        revisited_ground_truth,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
