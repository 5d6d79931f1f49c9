"""User studies of pixel-level results (docs/PROTOCOLS.md §7): can a person find the query
object in a database image, and does a drawn region help?

One concern per module, no Streamlit and no plotting:

- :mod:`bench.study.design`: conditions, trials, the Latin square, each participant's
  sequence, the frozen :class:`StudyDefinition`;
- :mod:`bench.study.records`: one answer, its scoring (hit, miss, false alarm, correct
  rejection), safe parsing of a line, CSV export neutralised for spreadsheets;
- :mod:`bench.study.store`: the append-only JSON Lines file, its lock, round-robin
  assignment, one answer per (participant, trial), active sessions;
- :mod:`bench.study.stats`: the analysis with ``scipy.stats`` and :func:`report`.
"""

from __future__ import annotations

import importlib

# name -> submodule; imported on first use (PEP 562), so ``python -m bench`` does not load
# scipy for commands that do not need it
_EXPORTS = {
    # the study API
    "bench.study.design": ("GROUND_TRUTH", "NONE", "StudyDefinition", "StudyTrial",
                           "condition_label", "condition_method", "images_dir",
                           "make_definition", "new_definition", "parse_conditions",
                           "williams_square"),
    "bench.study.records": ("Answer", "answers_csv", "click_in_region", "csv_cell",
                            "parse_line", "score", "to_csv"),
    "bench.study.stats": ("format_report", "report"),
    "bench.study.store": ("AlreadyAnswered", "Assignment", "LineProblem", "SessionActive",
                          "StudyState", "StudyStore", "create_study", "default_data_dir",
                          "list_studies", "new_session_token", "read_study_file",
                          "resolve_study", "study_file", "study_link"),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'bench.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
