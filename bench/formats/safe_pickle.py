"""The one restricted unpickler of the project.

Pickles and object ``.npy`` files come from users and from the internet; a plain
``pickle.load`` runs whatever code the file names. Here only builtin containers and
scalars, numpy arrays, numpy scalars and dtypes may be rebuilt; any other global (for
example ``os.system``) is refused with a :class:`~bench.errors.BenchError` naming the file.
No other module calls ``pickle.load`` or ``np.load(..., allow_pickle=True)`` on user files.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError

_BUILTINS = {
    "dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
    "int", "float", "complex", "bool", "slice", "range",
}
_ALLOWED: set[tuple[str, str]] = {("builtins", n) for n in _BUILTINS} | {
    ("__builtin__", n) for n in _BUILTINS | {"unicode", "long"}
}
_ALLOWED |= {
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # numpy arrays pickled with protocol 2 carry bytes this way
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED |= {(_mod, "_reconstruct"), (_mod, "scalar")}
for _mod in ("numpy", "numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED |= {(_mod, "ndarray"), (_mod, "dtype")}
_ALLOWED |= {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        # numpy 2 pickles dtypes of concrete classes as numpy.dtypes.Float32DType etc.
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _restricted_loads(fh: io.BufferedIOBase, path: str | os.PathLike) -> Any:
    try:
        return _RestrictedUnpickler(fh, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if msg.startswith("refused"):
            raise BenchError(
                "refused pickle class", path,
                f"{msg}; only containers, numbers, strings and numpy arrays are allowed "
                "(the file may be malicious or not a benchmark file)",
            ) from None
        raise BenchError("unreadable pickle", path, f"not a pickle file ({msg})") from None
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError) as exc:
        raise BenchError("unreadable pickle", path,
                         f"{type(exc).__name__}: {exc} (truncated or not a pickle?)") from None


def _open(path: str | os.PathLike, what: str):
    p = Path(path)
    if not p.exists():
        raise BenchError(f"missing {what}", p, "no such file; check the path")
    if p.is_dir():
        raise BenchError(f"wrong {what}", p, "this is a folder, expected a file")
    try:
        return open(p, "rb")
    except OSError as exc:
        raise BenchError(f"unreadable {what}", p, exc.strerror or str(exc)) from None


def load_pickle(path: str | os.PathLike, *, what: str = "pickle file") -> Any:
    """Load a pickle file through the restricted unpickler."""
    with _open(path, what) as fh:
        return _restricted_loads(fh, path)


def load_npy(path: str | os.PathLike, *, what: str = "npy file", mmap: bool = False) -> Any:
    """Load a ``.npy`` file safely.

    Numeric arrays are returned as arrays (memory-mapped read-only when *mmap* is true).
    Object arrays are unpickled through the restricted unpickler; a 0-d object array (what
    ``np.save(path, some_dict)`` writes) is unwrapped to its item.
    """
    with _open(path, what) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                shape, fortran, dtype = np.lib.format._read_array_header(fh, version)
        except (ValueError, OSError, SyntaxError, TypeError) as exc:
            raise BenchError(f"unreadable {what}", path,
                             f"not a numpy .npy file ({exc})") from None
        if dtype.hasobject:
            obj = _restricted_loads(fh, path)
            if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == object:
                return obj.item()
            return obj
    try:
        if mmap:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BenchError(f"unreadable {what}", path, f"{exc} (truncated file?)") from None
