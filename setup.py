"""Package list for setuptools (the metadata is in pyproject.toml).

Every package under ``bench/``, plus the top-level ``pages/`` folder mapped to
``bench.app.pages``: the repository keeps ``pages/`` beside ``app.py`` and the wheel
installs nothing but ``bench`` (no generic top-level names such as ``pages``).
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["bench", "bench.*"]), "bench.app.pages"],
      package_dir={"bench.app.pages": "pages"})
