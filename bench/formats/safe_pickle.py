"""The one safe loader of the project for pickles and ``.npy`` files.

Pickles and object ``.npy`` files come from users and from the internet; a plain
``pickle.load`` runs whatever code the file names, and even numpy's own reconstructors can
be driven to build an array whose bytes are read as object pointers, or to allocate
gigabytes from a few bytes (``docs/PROTOCOLS.md``, hostile-input section). Here:

- only builtin containers and scalars, numpy arrays, numpy scalars and dtypes can be
  rebuilt, and **never by numpy's or Python's own reconstructors**: every allowed global
  is replaced by a checking stand-in. A dtype can only be a plain numeric, bool or
  fixed-length string dtype (plus the object dtype of an object array, whose items are
  always rebuilt from unpickled Python objects, never from raw bytes); structured, void,
  datetime and subarray dtypes, and any ``BUILD`` state other than a plain dtype's, are
  refused. Any other global (say ``os.system``) is refused with a
  :class:`~bench.errors.BenchError` naming the file and the class.
- every file is bounded before and while it is decoded: a regular file below its size
  cap (:mod:`bench.formats.files`), at most :func:`~bench.formats.files.max_items`
  opcodes plus elements built by the stand-ins, memo indices within the file, and at most
  :data:`~bench.formats.files.MAX_DEPTH` levels of nesting; no cycles.
- ``.npy`` headers are read with numpy's public ``read_magic`` and
  ``read_array_header_1_0`` / ``_2_0`` (format 3.0 is 2.0 with a UTF-8 header: plain
  dtypes have an ASCII header, so it is read the same way); other versions are refused.
  Numeric arrays are memory-mapped or read with exactly the size the header promises,
  after checking that the file holds it.

No other module calls ``pickle.load`` or ``np.load(..., allow_pickle=True)`` on user files.
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
import pickletools
import re
import struct
from typing import Any

import numpy as np

from bench.errors import BenchError, describe
from bench.formats.files import (
    MAX_DEPTH,
    RAISE_ITEMS,
    RAISE_MB,
    max_file_bytes,
    max_items,
    open_file,
)

_PLAIN_KINDS = "biufcSU"  # bool, signed, unsigned, float, complex, bytes, unicode
_DTYPE_SPEC = re.compile(r"^[<>|=]?[A-Za-z?]\d{0,9}$")
_LATIN1 = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"}
#: Exceptions a hostile pickle can raise inside the unpickler or the stand-ins.
_DECODE_ERRORS = (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
                  KeyError, LookupError, MemoryError, OverflowError, RecursionError,
                  UnicodeError, struct.error, pickle.UnpicklingError)


class _Refused(Exception):
    """A stand-in refused its arguments (becomes a BenchError naming the file)."""


# ------------------------------------------------------------------ placeholders


class _NdarrayType:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""

    __slots__ = ()  # BUILD cannot set attributes on it

    def __reduce__(self):  # never pickled back
        raise TypeError("placeholder")


_NDARRAY = _NdarrayType()


def _plain_dtype(spec: Any, state: tuple | None = None, *, allow_object: bool) -> np.dtype:
    """A numpy dtype from a pickled ``dtype(spec, ...)`` and its ``BUILD`` state, made
    here from the type string (the state is checked, never handed to numpy)."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
        raise _Refused(f"dtype {_short(spec)} is not a plain numeric or string type")
    try:
        dt = np.dtype(spec)
    except (TypeError, ValueError) as exc:
        raise _Refused(f"dtype {spec!r} unknown ({exc})") from None
    if state is not None:
        if (not isinstance(state, tuple) or len(state) not in (8, 9)
                or state[0] not in (3, 4) or any(s is not None for s in state[2:5])):
            raise _Refused(f"dtype {spec!r} with a structured, subarray or unknown state "
                           "(only plain numeric, bool and string dtypes are read)")
        order, elsize = state[1], state[5]
        if order not in ("<", ">", "|", "=") or not isinstance(elsize, int):
            raise _Refused(f"dtype {spec!r} with a malformed state")
        if dt.kind in "SU" and elsize > 0:
            unit = 4 if dt.kind == "U" else 1
            if elsize % unit or elsize > 1 << 24:
                raise _Refused(f"string dtype of {elsize} bytes per item")
            dt = np.dtype(f"{dt.kind}{elsize // unit}")
        elif elsize not in (-1, 0, dt.itemsize):
            raise _Refused(f"dtype {spec!r} with item size {elsize}")
        if order in "<>" and dt.kind not in "bOS?":
            dt = dt.newbyteorder(order)
    ok = (dt.fields is None and dt.subdtype is None
          and (dt.kind in _PLAIN_KINDS or (allow_object and dt.kind == "O")))
    if not ok:
        raise _Refused(f"dtype {dt} (only plain numeric, bool and fixed-length string "
                       "dtypes are read)")
    return dt


@functools.lru_cache(maxsize=64)
def _typecode_dtype(spec, allow_object: bool) -> np.dtype:
    return _plain_dtype(spec, None, allow_object=allow_object)


def _dtype_of(spec, state, allow_object: bool) -> np.dtype:
    """:func:`_plain_dtype`, cached for bare type codes (``_reconstruct``'s ``b"b"``)."""
    if state is None and type(spec) in (str, bytes) and len(spec) <= 16:
        return _typecode_dtype(spec, allow_object)
    return _plain_dtype(spec, state, allow_object=allow_object)


class _DtypeProxy:
    """What ``numpy.dtype(spec, align, copy)`` gives: the spec, plus its BUILD state;
    the dtype is made (once) from them by :func:`_plain_dtype`."""

    __slots__ = ("spec", "state", "made")

    def __init__(self, spec):
        self.spec, self.state, self.made = spec, None, None

    def __setstate__(self, state):
        if self.state is not None or self.made is not None:
            raise _Refused("dtype state set twice")
        self.state = state
        self.made = _plain_dtype(self.spec, state, allow_object=True)  # refuse early

    def dtype(self, *, allow_object: bool) -> np.dtype:
        if self.made is None:
            self.made = _plain_dtype(self.spec, self.state, allow_object=True)
        if self.made.kind == "O" and not allow_object:
            raise _Refused("object dtype outside an object array")
        return self.made


def _as_dtype(obj, *, allow_object: bool = False) -> np.dtype:
    if isinstance(obj, _DtypeProxy):
        return obj.dtype(allow_object=allow_object)
    if isinstance(obj, str | bytes):  # _reconstruct's typecode, e.g. b"b"
        return _dtype_of(obj, None, allow_object)
    raise _Refused(f"{_short(obj)} where a dtype was expected")


def _shape(obj) -> tuple[int, ...]:
    if type(obj) is int:
        obj = (obj,)
    if type(obj) not in (tuple, list) or len(obj) > 32:
        raise _Refused(f"array shape {_short(obj)} is not a tuple of sizes")
    for n in obj:
        if type(n) is not int or not 0 <= n < 1 << 62:
            raise _Refused(f"array shape {_short(obj)} is not a tuple of sizes")
    return tuple(obj)


def _buffer(obj) -> bytes | bytearray | memoryview:
    if isinstance(obj, str):  # Python 2 pickles: raw bytes as a latin-1 str
        return obj.encode("latin1")
    if isinstance(obj, bytes | bytearray):
        return obj
    if isinstance(obj, memoryview) and obj.contiguous:
        return obj.cast("B")
    raise _Refused(f"array data of type {type(obj).__name__}")


class _ArrayProxy:
    """What ``_reconstruct(ndarray, shape, typecode)`` gives: nothing allocated until the
    ``BUILD`` state says what the array holds (checked against the data it brings)."""

    __slots__ = ("loader", "array", "items", "shape", "fortran")

    def __init__(self, loader: _Loader):
        self.loader = loader
        self.array: np.ndarray | None = None
        self.items: list | None = None
        self.shape: tuple[int, ...] = ()
        self.fortran = False

    def __setstate__(self, state):
        if self.array is not None or self.items is not None:
            raise _Refused("array state set twice")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused("malformed array state")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, data = state
        shape = _shape(shape)
        dt = _as_dtype(dtype, allow_object=True)
        n = math.prod(shape)
        self.shape, self.fortran = shape, bool(fortran)
        if dt.kind == "O":
            if not isinstance(data, list) or len(data) != n:
                raise _Refused("object array without its list of items")
            self.loader.charge(n)
            self.items = data
            return
        self.array = self.loader.array(data, dt, shape, "F" if fortran else "C")

    def finish(self, items: list | None) -> np.ndarray:
        if self.array is not None:
            return self.array
        if self.items is None:
            raise _Refused("array without state")
        out = np.empty(len(items), dtype=object)
        for k, v in enumerate(items):
            out[k] = v
        return out.reshape(self.shape, order="F" if self.fortran else "C")


class _Value:
    """A finished numpy array or scalar, boxed so that BUILD cannot reach numpy."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __setstate__(self, state):
        raise _Refused("state set on a finished numpy object")


# ------------------------------------------------------------------ the loader


def _short(obj) -> str:
    """A short, always-safe description of an unpickled object for messages."""
    return describe(obj, 40)


class _Loader:
    """One file's decoding: the stand-ins of the allowed globals and their budget."""

    def __init__(self, path, budget: int):
        self.path = path
        self.left = budget
        self.cap = budget
        g = {
            "dict": self.dict_, "list": self.list_, "tuple": self.tuple_, "set": self.set_,
            "frozenset": self.frozenset_, "str": self.str_, "unicode": self.str_,
            "bytes": self.bytes_, "bytearray": self.bytearray_, "int": self.int_,
            "long": self.int_, "float": self.float_, "complex": self.complex_,
            "bool": self.bool_,
        }
        self.globals: dict[tuple[str, str], Any] = {}
        for mod in ("builtins", "__builtin__"):
            for name, f in g.items():
                self.globals[(mod, name)] = f
        self.globals[("collections", "OrderedDict")] = self.dict_
        self.globals[("_codecs", "encode")] = self.encode
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            self.globals[(mod, "_reconstruct")] = self.reconstruct
            self.globals[(mod, "scalar")] = self.scalar
        for mod in ("numpy", "numpy.core.numeric", "numpy._core.numeric",
                    "numpy.core.multiarray", "numpy._core.multiarray"):
            self.globals[(mod, "ndarray")] = _NDARRAY
            self.globals[(mod, "dtype")] = self.dtype
        for mod in ("numpy.core.numeric", "numpy._core.numeric"):
            self.globals[(mod, "_frombuffer")] = self.frombuffer

    # -- budget
    def charge(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _Refused(f"decodes into more than {self.cap} items; {RAISE_ITEMS}")

    def array(self, data, dt: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
        buf = _buffer(data)
        n = math.prod(shape)
        if n * dt.itemsize != len(buf):
            raise _Refused(f"array of shape {shape} and dtype {dt} needs "
                           f"{n * dt.itemsize} bytes, the file gives {len(buf)}")
        self.charge(-(-len(buf) // 8))
        if n == 0:
            return np.empty(shape, dtype=dt, order=order)
        return np.frombuffer(buf, dtype=dt).reshape(shape, order=order).copy(order="K")

    # -- builtins: only already-built containers in, at most their size out
    def _items(self, args, name) -> Any:
        if len(args) > 1:
            raise _Refused(f"{name}() with {len(args)} arguments")
        if not args:
            return ()
        src = args[0]
        if not isinstance(src, list | tuple | set | frozenset | dict):
            raise _Refused(f"{name}() of {_short(src)} (only of a list, tuple, set or dict)")
        self.charge(len(src))
        return src

    def list_(self, *args):
        return list(self._items(args, "list"))

    def tuple_(self, *args):
        return tuple(self._items(args, "tuple"))

    def set_(self, *args):
        return set(self._items(args, "set"))

    def frozenset_(self, *args):
        return frozenset(self._items(args, "frozenset"))

    def dict_(self, *args):
        src = self._items(args, "dict")
        if isinstance(src, dict):
            return dict(src)
        if not all(isinstance(kv, list | tuple) and len(kv) == 2 for kv in src):
            raise _Refused("dict() of something other than key-value pairs")
        return dict(src)

    def str_(self, *args):
        if not args:
            return ""
        if len(args) == 1 and isinstance(args[0], str):
            return args[0]
        raise _Refused("str() of anything but a string")

    def bytes_(self, *args):
        if not args:
            return b""
        if len(args) == 1 and isinstance(args[0], bytes | bytearray):
            return bytes(args[0])
        if len(args) == 2 and isinstance(args[0], str):
            return self.encode(*args)
        raise _Refused(f"bytes() of {_short(args[0])} (only of bytes or a latin-1 string)")

    def bytearray_(self, *args):
        return bytearray(self.bytes_(*args))

    def int_(self, *args):
        if len(args) == 1 and isinstance(args[0], int | float | bool):
            return int(args[0])
        if len(args) == 1 and isinstance(args[0], str) and len(args[0]) <= 64:
            return int(args[0])
        raise _Refused("int() of anything but a number or a short string")

    def float_(self, *args):
        if len(args) == 1 and isinstance(args[0], int | float | str) and (
                not isinstance(args[0], str) or len(args[0]) <= 64):
            return float(args[0])
        raise _Refused("float() of anything but a number or a short string")

    def complex_(self, *args):
        if len(args) <= 2 and all(isinstance(a, int | float) and not isinstance(a, bool)
                                  for a in args):
            return complex(*args)
        raise _Refused("complex() of anything but numbers")

    def bool_(self, *args):
        if len(args) <= 1 and all(isinstance(a, int | float | bool) for a in args):
            return bool(*args)
        raise _Refused("bool() of anything but a number")

    def encode(self, *args):
        """``_codecs.encode(text, 'latin1')``: how protocol 2 carries raw bytes."""
        if (len(args) not in (1, 2, 3) or not isinstance(args[0], str)
                or (len(args) >= 2 and (not isinstance(args[1], str)
                                        or args[1].lower() not in _LATIN1))
                or (len(args) == 3 and args[2] != "strict")):
            enc = args[1] if len(args) >= 2 else None
            raise _Refused(f"_codecs.encode with encoding {_short(enc)} (only latin-1 text "
                           "is decoded)")
        if len(args) == 1:  # utf-8 by default; at most 4 bytes per character
            self.charge(-(-4 * len(args[0]) // 8))
            return args[0].encode("utf-8")
        self.charge(-(-len(args[0]) // 8))
        return args[0].encode("latin1")

    # -- numpy
    def dtype(self, *args):
        if not 1 <= len(args) <= 3:
            raise _Refused("dtype() with unexpected arguments")
        _dtype_of(args[0], None, True)  # refuse early
        return _DtypeProxy(args[0])

    def reconstruct(self, subtype=None, shape=None, typecode=None, *rest):
        if subtype is not _NDARRAY or rest:
            raise _Refused("_reconstruct of anything but numpy.ndarray")
        _shape(shape)
        _as_dtype(typecode)
        self.charge(1)
        return _ArrayProxy(self)

    def scalar(self, dtype=None, data=None, *rest):
        dt = _as_dtype(dtype)
        if rest:
            raise _Refused("scalar() with unexpected arguments")
        buf = _buffer(data)
        if len(buf) != dt.itemsize:
            raise _Refused(f"scalar of dtype {dt} from {len(buf)} bytes")
        self.charge(1)
        return _Value(np.frombuffer(buf, dtype=dt)[0])

    def frombuffer(self, buf=None, dtype=None, shape=None, order="C", axis_order=None):
        dt = _as_dtype(dtype)
        shp = _shape(shape)
        if order not in ("C", "F", "A", "K"):
            raise _Refused(f"array order {_short(order)}")
        arr = self.array(buf, dt, shp, "F" if order == "F" else "C")
        if order == "K" and axis_order is not None:
            if (not isinstance(axis_order, list | tuple)
                    or sorted(axis_order) != list(range(len(shp)))):
                raise _Refused("array axis order is not a permutation")
            arr = arr.transpose(axis_order)
        return _Value(arr)


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh, loader: _Loader):
        super().__init__(fh, encoding="latin1")
        self._loader = loader

    def find_class(self, module: str, name: str) -> Any:
        f = self._loader.globals.get((module, name))
        if f is None:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return f

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused a persistent id")


def _op_table() -> list[tuple[str, int] | None]:
    """Opcode byte -> (name, argument layout) from ``pickletools.opcodes``."""
    table: list[tuple[str, int] | None] = [None] * 256
    for op in pickletools.opcodes:
        if op.arg is None:
            layout = 0
        elif op.arg.name in ("stringnl_noescape_pair",):
            layout = -10  # two lines (GLOBAL, INST)
        else:
            layout = op.arg.n  # >= 0 fixed size; -1 a line; -2..-5 length-prefixed
        table[ord(op.code)] = (op.name, layout)
    return table


_OPS = _op_table()
_PREFIX = {-2: (1, False), -3: (4, True), -4: (4, False), -5: (8, False)}  # size, signed
_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
# opcodes that make a large object from one or two bytes count as several items
_COST = {"EMPTY_SET": 4, "FROZENSET": 4, "EMPTY_DICT": 4, "DICT": 4}


def _prescan(data: bytes, budget: int) -> int:
    """Check the opcode stream before anything is built; return the items it costs.

    Every opcode must be known and its argument must lie inside the file; memo indices
    may not exceed the number of opcodes read (the C unpickler would allocate its memo
    up to the index: 6 bytes could ask for 32 GB); the opcodes may cost at most
    *budget* items (one each; four for a dict or set, a few hundred bytes from one
    byte). Arguments are not decoded here (the unpickler does that).
    """
    pos, end, n, ops = 0, len(data), 0, 0
    while True:
        if pos >= end:
            raise EOFError("truncated file: the pickle ends before its STOP opcode")
        spec = _OPS[data[pos]]
        if spec is None:
            raise ValueError(f"unknown pickle opcode {data[pos]:#04x} at byte {pos}")
        name, layout = spec
        start = pos
        pos += 1
        ops += 1
        n += _COST.get(name, 1)
        if n > budget:
            raise _Refused(f"decodes into more than {budget} items; {RAISE_ITEMS}")
        arg = None
        if layout > 0:
            arg = data[pos:pos + layout]
            pos += layout
        elif layout == -1 or layout == -10:
            for _ in range(2 if layout == -10 else 1):
                j = data.find(b"\n", pos)
                if j < 0:
                    raise EOFError("truncated file: end of file inside a text argument")
                arg = data[pos:j]
                pos = j + 1
        elif layout < -1:
            size, signed = _PREFIX[layout]
            length = int.from_bytes(data[pos:pos + size], "little", signed=signed)
            if length < 0:
                raise ValueError(f"negative length at byte {start}")
            pos += size + length
        if pos > end:
            raise EOFError(f"truncated file: the argument of {name} at byte {start} runs "
                           "past the end of the file")
        if name in _MEMO_OPS:
            idx = (int(arg) if name == "PUT" and arg.isdigit() and len(arg) < 19
                   else int.from_bytes(arg, "little") if name != "PUT" else -1)
            if not 0 <= idx <= ops:
                raise _Refused(f"memo index {_short(idx)} at byte {start}")
        elif name == "FRAME" and int.from_bytes(arg, "little") > end - pos:
            raise EOFError(f"truncated file: a frame of {int.from_bytes(arg, 'little')} bytes "
                           f"at byte {start} runs past the end of the file")
        elif name == "STOP":
            return n


_PRIMITIVE = frozenset({str, bytes, bytearray, int, float, complex, bool, type(None)})


def _kids(o) -> list | None:
    t = type(o)
    if t is dict:
        return [*o.keys(), *o.values()]
    if t is list or t is tuple or t is set or t is frozenset:
        return list(o)
    if t is _ArrayProxy:
        return list(o.items) if o.items is not None else []
    return None


_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})


def _flat(o) -> bool:
    """A container of at most 8 plain scalars: finished as it is, never recorded (so a
    file of millions of tiny lists costs no bookkeeping; re-checking one is cheap)."""
    if type(o) not in _CONTAINERS or len(o) > 8:
        return False
    items = [*o.keys(), *o.values()] if type(o) is dict else o
    return all(type(x) in _PRIMITIVE for x in items)


def _finish(root, loader: _Loader) -> Any:
    """Replace the placeholders by numpy objects, bottom-up and iteratively (any depth
    is safe here), refusing cycles, nesting deeper than MAX_DEPTH and any object of an
    unexpected type. Shared objects are visited once (a DAG of 2^60 paths is linear).
    Plain scalars need nothing and are never recorded."""
    if type(root) in _PRIMITIVE or _flat(root):
        return root
    done: dict[int, tuple[Any, int]] = {}  # id -> (finished object, depth)
    gray: set[int] = set()  # containers whose children are being finished
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        o, expanded = stack.pop()
        oid = id(o)
        if not expanded:
            if oid in done:
                continue
            if oid in gray:
                raise _Refused("refers to itself (a cycle)")
            ks = _kids(o)
            if ks is None:
                done[oid] = (_leaf(o), 0)
                continue
            gray.add(oid)
            stack.append((o, True))
            for k in ks:
                if type(k) in _PRIMITIVE or _flat(k):
                    continue
                if id(k) in gray:
                    raise _Refused("refers to itself (a cycle)")
                if id(k) not in done:
                    stack.append((k, False))
            continue
        gray.discard(oid)
        ks = _kids(o)
        depth, new = 1, []
        for k in ks:
            if type(k) in _PRIMITIVE:
                new.append(k)
                continue
            if _flat(k):
                new.append(k)
                depth = max(depth, 2)
                continue
            v, d = done[id(k)]
            new.append(v)
            depth = max(depth, d + 1)
        if depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep")
        t = type(o)
        if t is _ArrayProxy:
            out = o.finish(new)
        elif all(a is b for a, b in zip(new, ks, strict=True)):
            out = o
        elif t is list:
            o[:] = new
            out = o
        elif t is tuple:
            out = tuple(new)
        elif t is dict:  # keys may have become numpy scalars (hashable) or arrays (not)
            n_keys = len(o)
            out = dict(zip(new[:n_keys], new[n_keys:], strict=True))
            if len(out) != n_keys:
                raise _Refused("a dict whose keys collide once rebuilt")
        else:  # set, frozenset
            out = t(new)
        done[oid] = (out, depth)
    return done[id(root)][0]


_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.ndarray,
           np.generic, np.dtype)


def _leaf(o):
    if isinstance(o, _Value):
        return o.value
    if isinstance(o, _DtypeProxy):
        return o.dtype(allow_object=True)  # a bare dtype value is harmless
    if isinstance(o, memoryview):
        return bytes(o)
    if isinstance(o, _LEAVES):
        return o
    raise _Refused(f"holds {_short(o)}, which is not data")


def loads_restricted(data: bytes, path: str | os.PathLike) -> Any:
    """Decode pickle *data* from *path* through the checking stand-ins (see the module
    docstring); any problem is a :class:`BenchError` naming *path*."""
    budget = max_items()
    try:
        used = _prescan(data, budget)
        loader = _Loader(path, budget - used)
        obj = _Unpickler(io.BytesIO(data), loader).load()
        return _finish(obj, loader)
    except _Refused as exc:
        raise BenchError("refused pickle", path,
                         f"{exc} (the file may be malicious or not a benchmark file)") from None
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if msg.startswith("refused"):
            raise BenchError(
                "refused pickle class", path,
                f"{msg}; only containers, numbers, strings and numpy arrays are allowed "
                "(the file may be malicious or not a benchmark file)",
            ) from None
        raise BenchError("unreadable pickle", path, f"not a pickle file ({msg})") from None
    except MemoryError:
        raise BenchError("unreadable pickle", path,
                         "out of memory while decoding; the file is too large for this "
                         "machine") from None
    except _DECODE_ERRORS as exc:
        raise BenchError("unreadable pickle", path,
                         f"{type(exc).__name__}: {str(exc)[:200]} (truncated or not a "
                         "pickle?)") from None


def load_pickle(path: str | os.PathLike, *, what: str = "pickle file") -> Any:
    """Load a pickle file (a regular file below the pickle size cap) safely."""
    with open_file(path, what, "pickle") as fh:
        data = _read_all(fh, path, what)
    return loads_restricted(data, path)


def _read_all(fh, path, what: str) -> bytes:
    cap = max_file_bytes("pickle")
    try:
        data = fh.read(cap + 1)
    except OSError as exc:
        raise BenchError(f"unreadable {what}", path, exc.strerror or str(exc)) from None
    if len(data) > cap:
        raise BenchError(f"refused {what}", path,
                         f"above the {cap / 2**20:.0f} MB cap for pickles; {RAISE_MB}")
    return data


_MAX_HEADER = 1 << 16


def _npy_header(fh, path, what: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data offset)`` of an open ``.npy`` file."""
    try:
        version = np.lib.format.read_magic(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise BenchError(f"unreadable {what}", path, f"not a numpy .npy file ({exc})") from None
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise BenchError(f"unreadable {what}", path,
                         f"unsupported .npy format version {version[0]}.{version[1]} "
                         "(this reader knows 1.0, 2.0 and 3.0)")
    try:
        start = fh.tell()
        size_bytes = fh.read(2 if version == (1, 0) else 4)
        if len(size_bytes) < (2 if version == (1, 0) else 4):
            raise EOFError("end of file in the array header")
        hlen = struct.unpack("<H" if version == (1, 0) else "<I", size_bytes)[0]
        if hlen > _MAX_HEADER:
            raise ValueError(f"array header of {hlen} bytes (more than {_MAX_HEADER})")
        if version == (3, 0):  # UTF-8 header; plain dtypes need nothing but ASCII
            fh.seek(start + 4)
            raw = fh.read(hlen)
            if not raw.isascii():
                raise ValueError("non-ASCII array header (a structured dtype with "
                                 "non-Latin names, which this reader does not read)")
        fh.seek(start)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read(fh, max_header_size=_MAX_HEADER)
        offset = fh.tell()
    except Exception as exc:  # noqa: BLE001 - numpy parses hostile header text
        # (ValueError, SyntaxError, tokenize.TokenError, struct.error, ...)
        raise BenchError(f"unreadable {what}", path,
                         f"not a numpy .npy file ({type(exc).__name__}: {str(exc)[:200]})"
                         ) from None
    return tuple(shape), bool(fortran), dtype, offset


def load_npy(path: str | os.PathLike, *, what: str = "npy file", mmap: bool = False) -> Any:
    """Load a ``.npy`` file safely.

    Numeric arrays (plain numeric, bool and fixed-length string dtypes) are returned as
    arrays, memory-mapped read-only when *mmap* is true (no size cap: nothing is read
    until used), else read whole. Object arrays are decoded by the restricted loader
    (below the pickle size cap); a 0-d object array (what ``np.save(path, some_dict)``
    writes) is unwrapped to its item. Structured, void and datetime dtypes are refused.
    """
    with open_file(path, what) as fh:
        shape, fortran, dtype, offset = _npy_header(fh, path, what)
        size = os.fstat(fh.fileno()).st_size
        if dtype.hasobject:
            if dtype.kind != "O" or dtype.fields is not None:
                raise BenchError(f"refused {what}", path,
                                 f"structured dtype {dtype} holding objects")
            if size > max_file_bytes("pickle"):
                raise BenchError(f"refused {what}", path,
                                 f"object .npy of {size / 2**20:.1f} MB is above the "
                                 f"{max_file_bytes('pickle') / 2**20:.0f} MB cap for "
                                 f"pickles; {RAISE_MB}")
            data = _read_all(fh, path, what)
            obj = loads_restricted(data, path)
            if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == object:
                return obj.item()
            return obj
        if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype:
            raise BenchError(f"refused {what}", path,
                             f"dtype {dtype} (only plain numeric, bool and fixed-length "
                             "string arrays are read)")
        try:
            n = math.prod(shape)
        except TypeError:
            raise BenchError(f"unreadable {what}", path, f"bad shape {shape!r}") from None
        nbytes = n * dtype.itemsize
        if offset + nbytes > size:
            raise BenchError(f"unreadable {what}", path,
                             f"truncated file: the header promises {nbytes} bytes of data "
                             f"for shape {shape}, the file holds {max(size - offset, 0)} "
                             "(end of file)")
        order = "F" if fortran else "C"
        if n == 0:
            return np.empty(shape, dtype=dtype, order=order)
        try:
            if mmap:
                return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape,
                                 order=order)
            fh.seek(offset)
            flat = np.fromfile(fh, dtype=dtype, count=n)
        except (ValueError, OSError, MemoryError) as exc:
            raise BenchError(f"unreadable {what}", path,
                             f"{type(exc).__name__}: {exc} (truncated file?)") from None
        if flat.size != n:
            raise BenchError(f"unreadable {what}", path, "truncated file (end of file)")
        return flat.reshape(shape, order=order)


__all__ = ["load_npy", "load_pickle", "loads_restricted"]
