"""The data roots: the only folders whose files the app opens for a user-given path.

A path that arrives from the URL or from a sidebar field (``root``, ``images``,
``gimages``, ``gfile``, ``order``) is opened only when, after ``~`` expansion and
resolving ``..`` and symlinks, it lies inside one of the allowed roots; otherwise the app
shows :func:`refusal` (which names the path and how to allow it, never a byte of the file).

The roots come from the launcher::

    streamlit run app.py -- --data-root DIR [--data-root DIR2]

and/or the environment variable ``BENCH_DATA_ROOTS`` (folders separated by
``os.pathsep``). With neither, the roots are the current directory. The embedded demo's
folder is always allowed (the app writes it itself).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.demo import default_demo_dir

ENV = "BENCH_DATA_ROOTS"
FLAG = "--data-root"


class RootRefused(Exception):
    """A user-given path outside the allowed data roots (the message is for the user)."""

    def __init__(self, what: str, raw: str, roots: tuple[Path, ...]) -> None:
        self.what, self.raw, self.roots = what, raw, roots
        super().__init__(refusal(what, raw, roots))

    @property
    def short(self) -> str:
        """One line for the sidebar (the page shows :func:`refusal`)."""
        return f"{self.what}: outside the allowed data folders, not opened."


def _from_argv(argv: list[str]) -> list[str]:
    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ap.add_argument(FLAG, action="append", default=[], dest="roots")
    known, _ = ap.parse_known_args(argv)
    return known.roots


def _from_env(value: str | None) -> list[str]:
    return [p for p in (value or "").split(os.pathsep) if p.strip()]


@dataclass(frozen=True)
class Roots:
    """The allowed folders (resolved) and whether they were configured or defaulted."""

    folders: tuple[Path, ...]
    configured: bool

    def contains(self, path: Path) -> bool:
        return any(path == r or path.is_relative_to(r) for r in self.folders)


def _resolve(raw: str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(raw.strip()))).resolve(strict=False)


def allowed_roots(argv: list[str] | None = None, env: str | None = None) -> Roots:
    """The allowed roots from ``--data-root`` options in *argv* (default ``sys.argv``,
    which holds what follows ``--`` on the ``streamlit run`` line) and ``$BENCH_DATA_ROOTS``
    (default: the environment); with neither, the current directory. The demo folder is
    always included."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ.get(ENV) if env is None else env
    given = _from_argv(argv) + _from_env(env)
    folders = [_resolve(p) for p in given] if given else [Path.cwd().resolve()]
    folders.append(_resolve(str(default_demo_dir())))
    out: list[Path] = []
    for f in folders:
        if f not in out:
            out.append(f)
    return Roots(tuple(out), configured=bool(given))


def refusal(what: str, raw: str, roots: tuple[Path, ...]) -> str:
    """The message shown for a refused path: what was refused, the allowed roots, the fix."""
    listed = ", ".join(f"`{r}`" for r in roots)
    return (f"{what} `{raw}` is outside the data folders this app may read ({listed}), so "
            "it was not opened. To allow a folder, start the app with "
            f"`streamlit run app.py -- {FLAG} DIR` (repeat the option for more folders) or "
            f"set `{ENV}=DIR1{os.pathsep}DIR2`; paths inside those folders then work, "
            "also in links.")


def check(raw: str, what: str, roots: Roots | None = None) -> Path:
    """*raw* as an absolute path (``~`` expanded, ``..`` and symlinks resolved) when it lies
    inside an allowed root; else :class:`RootRefused`. A missing path inside a root is
    returned (the caller reports it as missing)."""
    roots = roots or allowed_roots()
    path = _resolve(raw)
    if not roots.contains(path):
        raise RootRefused(what, raw.strip(), roots.folders)
    return path


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether *path* (symlinks and ``..`` resolved) lies inside *folder*; used for image
    names read from a ground-truth file, which must not leave their images folder."""
    p = Path(path).resolve(strict=False)
    f = Path(folder).resolve(strict=False)
    return p == f or p.is_relative_to(f)


#: Folder names never searched for benchmarks (tool and cache folders of a checkout).
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".cache",
                       "site-packages", ".pytest_cache", ".ruff_cache", ".hypothesis"})


def looks_like_benchmark(folder: Path) -> bool:
    """Whether *folder* is a benchmark folder in the released layout: it holds
    ``pixel_retrieval_benchmarks/`` or ``results/image-level`` / ``results/pixel-level``
    (what the sidebar's *Folder* field wants)."""
    try:
        return ((folder / "pixel_retrieval_benchmarks").is_dir()
                or (folder / "results" / "image-level").is_dir()
                or (folder / "results" / "pixel-level").is_dir())
    except OSError:
        return False


def find_benchmarks(roots: Roots, *, depth: int = 3, limit: int = 50) -> list[Path]:
    """Benchmark folders (:func:`looks_like_benchmark`) at most *depth* levels below each
    allowed root (the root itself included), hidden and tool folders skipped, symlinks
    not followed out of the roots; at most *limit*, in root order then by path."""
    found: list[Path] = []
    for root in roots.folders:
        level = [root]
        for _ in range(depth + 1):
            nxt: list[Path] = []
            for f in level:
                if looks_like_benchmark(f):
                    if f not in found:
                        found.append(f)
                    continue  # a benchmark's own subfolders are its parts
                try:
                    kids = sorted(p for p in f.iterdir() if p.is_dir()
                                  and not p.name.startswith(".") and p.name not in SKIP_DIRS)
                except OSError:
                    continue
                nxt.extend(p for p in kids if roots.contains(p.resolve()))
            level = nxt
            if len(found) >= limit:
                return found[:limit]
    return found
