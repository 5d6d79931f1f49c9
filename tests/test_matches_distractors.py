"""Matching results with R1M distractor pairs (docs/PROTOCOLS.md §2: pR1M<dataset>.npy)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.errors import BenchError
from bench.formats.pixel import load_matches


def _save(path, d):
    np.save(path, np.array(d, dtype=object), allow_pickle=True)


def test_distractor_pairs_are_left_out_with_one_warning(tmp_path):
    f = tmp_path / "pR1Moxford.npy"
    box = [[1.0, 2.0], [5.0, 2.0], [5.0, 9.0], [1.0, 9.0]]
    _save(f, {"qimlist_0_imlist_3": box, "qimlist_0_imlist_10": box,
              "qimlist_1_imlist_12": box})
    preds, warnings = load_matches(f, n_queries=2, n_db=10)
    assert set(preds) == {(0, 3)}
    np.testing.assert_array_equal(preds[(0, 3)], np.array(box))
    assert len(warnings) == 1
    assert "2 pairs" in str(warnings[0]) and "distractors" in str(warnings[0])


def test_a_query_beyond_the_dataset_is_still_an_error(tmp_path):
    f = tmp_path / "proxford.npy"
    _save(f, {"qimlist_5_imlist_3": [[1.0, 2.0], [5.0, 2.0], [5.0, 9.0]]})
    with pytest.raises(BenchError, match="query 5"):
        load_matches(f, n_queries=2, n_db=10)
