"""User studies of pixel-level results (docs/PROTOCOLS.md §7): can a person find the query
object in a database image, and does a drawn region help?

One concern per module, no Streamlit and no plotting:

- :mod:`bench.study.design`: conditions, trials, the Latin square, each participant's
  sequence, the frozen :class:`StudyDefinition`;
- :mod:`bench.study.records`: one answer, its scoring (hit, miss, false alarm, correct
  rejection), safe parsing of a line, CSV export neutralised for spreadsheets;
- :mod:`bench.study.store`: the SQL store (SQLite in the study folder, or PostgreSQL by
  ``$BENCH_STUDY_DB``): group assignment at consent, one answer per (participant, trial),
  the single-tab lease, the import of JSON Lines studies;
- :mod:`bench.study.platforms`: recruiting platforms (Prolific, MTurk, param:NAME): links,
  participant ids, completion codes;
- :mod:`bench.study.export`: the tidy one-row-per-trial table (CSV, Parquet) and codebook;
- :mod:`bench.study.stats`: exclusions and the flow table, the mixed models, the secondary
  tests with ``scipy.stats``, and :func:`report`;
- :mod:`bench.study.glmm`: the GLMM (logit / probit) and LMM with crossed random
  intercepts; :mod:`bench.study.power`: simulated studies and the power estimate.
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
                           "williams_square", "ExclusionRules", "design_warnings", "plan"),
    "bench.study.records": ("Answer", "answers_csv", "click_in_region", "csv_cell",
                            "parse_line", "score", "to_csv"),
    "bench.study.stats": ("format_report", "report", "models", "flow",
                          "participant_checks"),
    "bench.study.power": ("simulate_answers",),  # not "power": the module's name
    "bench.study.store": ("AlreadyAnswered", "Assignment", "Completion", "LineProblem",
                          "Participant", "ParticipantReturned", "SessionActive",
                          "StudyState", "StudyStore", "create_study", "database_url",
                          "default_data_dir", "list_studies", "new_session_token",
                          "read_study", "read_study_file", "resolve_study", "study_file",
                          "study_link"),
    "bench.study.platforms": ("parse_platform", "participant_from_query",
                              "participant_link"),
    "bench.study.export": ("tidy_rows", "write_export"),
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
