"""Shared pytest fixtures: files in the benchmarks' real formats, written by test code."""

from __future__ import annotations

import numpy as np
import pytest

from tests import fixtures


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def revisited_files(tmp_path):
    """A random gnd_roxford5k.pkl (12 queries, 40 images) with full-length ranks."""
    return fixtures.make_random_revisited(np.random.default_rng(7), tmp_path, 12, 40)


@pytest.fixture(scope="session")
def pixel_benchmark(tmp_path_factory):
    """A small PROxford-format benchmark in the released folder layout (see
    fixtures.make_random_pixel_benchmark)."""
    root = tmp_path_factory.mktemp("pixel_benchmark")
    return fixtures.make_random_pixel_benchmark(np.random.default_rng(2024), root, 8, 25)


@pytest.fixture
def gpr_folder(tmp_path):
    """images/{category}_{name}.jpg for 12 categories x 3 images; returns
    (images_dir, names in protocol order)."""
    images = tmp_path / "images"
    ordered = fixtures.write_gpr_images(images, 12, 3, rng=np.random.default_rng(3))
    return images, ordered
