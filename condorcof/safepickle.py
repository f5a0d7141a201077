"""Atomic file writes, and a pickle loader restricted to an allowlist of globals.

A pickle can call any importable callable while it is loaded, so a partial result
written by a compromised or buggy job could run code on the submit host. The loader
here resolves only the globals that accumulator values need (see ``ALLOWED_GLOBALS``);
anything else raises :class:`~condorcof.errors.UnsafePickleError` before it is
imported, let alone called. Users extend the list with ``extra_allowed=``, with
:func:`allow`, or with the environment variable ``CONDORCOF_PICKLE_ALLOW``
(comma-separated ``module.qualname`` names).

Allowlist decisions:

* Names are exact ``module.qualname`` strings, not module prefixes: pickle resolves
  dotted names attribute by attribute, so a prefix such as ``hist.`` would also admit
  ``hist.hist.bh`` or helpers like ``boost_histogram.histogram.np``. The hist and
  boost-histogram names below are every global their pickles reference, found with
  ``pickletools`` for all axis types, transforms and storages (tests check this).
* Two callables take a string and are wrapped to accept only what hist and pickle
  themselves pass: ``_codecs.encode`` (protocol <= 2 stores bytes as
  ``encode(text, "latin1")``) and boost-histogram's ``_internal_conversion`` (which
  is a ``getattr`` on its transform module).
* Not allowed: ``copyreg._reconstructor`` (used only by protocols 0 and 1, which
  hist cannot use anyway), ``functools.partial``, ``builtins.getattr``/``eval``,
  ``slice``/``range`` and anything from ``os``/``subprocess``.
* coffea's accumulator classes are listed by name; they resolve only where coffea is
  installed.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import errno
import importlib
import io
import json
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from condorcof.errors import UnsafePickleError

__all__ = [
    "ALLOWED_GLOBALS",
    "ENV_VAR",
    "allow",
    "dump_pickle",
    "is_allowed",
    "load_pickle",
    "loads_pickle",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

ENV_VAR = "CONDORCOF_PICKLE_ALLOW"

_BUILTINS = "bool int float complex str bytes bytearray tuple list dict set frozenset".split()
_NUMPY = (
    "numpy.ndarray",
    "numpy.dtype",
    # numpy 2 spells its internals numpy._core; numpy 1.x pickles say numpy.core
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
)
_HIST_STORAGES = "double int64 atomic_int64 unlimited weight mean weighted_mean multi_cell".split()
_HIST = (
    "hist.hist.Hist",
    "hist.namedhist.NamedHist",
    "boost_histogram.histogram.Histogram",
    "boost_histogram.axis.transform._internal_conversion",
    *(f"boost_histogram._core.hist.any_{storage}" for storage in _HIST_STORAGES),
)
_COFFEA = tuple(
    f"coffea.processor.accumulator.{kind}_accumulator"
    for kind in ("value", "list", "set", "dict", "defaultdict", "column")
)

ALLOWED_GLOBALS: frozenset[str] = frozenset(
    (
        *(f"builtins.{name}" for name in _BUILTINS),
        "collections.defaultdict",
        "collections.OrderedDict",
        "collections.Counter",
        "_codecs.encode",
        *_NUMPY,
        *_HIST,
        *_COFFEA,
    )
)

_user_allowed: set[str] = set()
_lock = threading.Lock()


def allow(*names: str) -> None:
    """Add ``module.qualname`` globals to the allowlist of this process."""
    for name in names:
        _check_name(name)
    with _lock:
        _user_allowed.update(names)


def _check_name(name: str) -> None:
    module, _, qualname = name.rpartition(".")
    if not module or not qualname or " " in name:
        raise ValueError(f"expected a 'module.qualname' name, got {name!r}")


def _env_allowed() -> set[str]:
    raw = os.environ.get(ENV_VAR, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _names(extra: Iterable[str]) -> frozenset[str]:
    """``extra`` as a set of names; a single string is one name, not its characters."""
    return frozenset((extra,) if isinstance(extra, str) else extra)


def is_allowed(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether the global ``module.qualname`` may be loaded."""
    return (
        name in ALLOWED_GLOBALS
        or name in _user_allowed
        or name in _names(extra)
        or name in _env_allowed()
    )


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` limited to the latin-1 round trip that pickle uses."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


def _transform_by_name(name: str) -> Any:
    """boost-histogram's ``_internal_conversion`` (a ``getattr`` on its C++ transform
    module), limited to the classes and math functions defined in that module."""
    from boost_histogram._core.axis import transform

    public = isinstance(name, str) and not name.startswith("__")
    found = getattr(transform, name, None) if public else None
    if getattr(found, "__module__", None) != transform.__name__:
        raise pickle.UnpicklingError(f"unknown boost-histogram transform {name!r}")
    return found


_GUARDED: dict[str, Callable[..., Any]] = {
    "_codecs.encode": _latin1_encode,
    "boost_histogram.axis.transform._internal_conversion": _transform_by_name,
}


def _modern_name(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names (protocols <= 2 write ``__builtin__``) to Python 3 ones."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _import_module(module: str) -> Any:
    if module.startswith("numpy.core."):  # avoid numpy 2's deprecated alias
        with contextlib.suppress(ImportError):
            return importlib.import_module("numpy._core." + module[len("numpy.core.") :])
    return importlib.import_module(module)


def _resolve(module: str, name: str) -> Any:
    obj = _import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _refusal(full: str, source: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"{source}: refusing to load global {full!r}, which is not on condorcof's "
        "pickle allowlist; the file was not loaded. If you trust this file, allow it "
        f"with extra_allowed=({full!r},), the environment variable {ENV_VAR}={full} "
        f"(comma-separated names) or the command-line option --allow-class {full}."
    )


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` resolves only allowlisted globals."""

    def __init__(self, file: IO[bytes], extra: Iterable[str], source: str) -> None:
        super().__init__(file)
        self._extra = _names(extra)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        module, name = _modern_name(module, name)
        full = f"{module}.{name}"
        if not is_allowed(full, self._extra):
            raise _refusal(full, self._source)
        if full in _GUARDED:
            return _GUARDED[full]
        # Our own entries are plain module-level names; a nested lookup
        # ("numpy" + "_core.numeric._frombuffer") is only honoured for user entries.
        if "." in name and full in ALLOWED_GLOBALS:
            raise _refusal(f"{module}:{name}", self._source)
        try:
            return _resolve(module, name)
        except (ImportError, AttributeError) as exc:
            msg = f"{self._source}: cannot import {full}: {exc}"
            raise pickle.UnpicklingError(msg) from exc


def load_pickle(path: str | os.PathLike[str], extra_allowed: Iterable[str] = ()) -> Any:
    """Load a pickle file through the restricted unpickler."""
    with open(path, "rb") as handle:
        return _RestrictedUnpickler(handle, extra_allowed, os.fspath(path)).load()


def loads_pickle(data: bytes, extra_allowed: Iterable[str] = (), *, source: str = "<bytes>") -> Any:
    """Load pickled bytes through the restricted unpickler."""
    return _RestrictedUnpickler(io.BytesIO(data), extra_allowed, source).load()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _lock:  # fallback: os.umask can only be read by setting it
        umask = os.umask(0o22)
        os.umask(umask)
    return umask


def _fsync_dir(directory: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(directory, flags)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot sync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_open(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Yield a temporary file that replaces ``path`` once complete and synced."""
    target = Path(path)
    directory = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # as open() would create it
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one."""
    with _atomic_open(path) as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, compact: bool = False) -> None:
    """Write ``obj`` as UTF-8 JSON (sorted keys, indent 1 unless ``compact``, final newline)
    atomically."""
    text = json.dumps(
        obj,
        sort_keys=True,
        indent=None if compact else 1,
        ensure_ascii=False,
        separators=(",", ":") if compact else None,
    )
    write_text_atomic(path, text + "\n")


def dump_pickle(obj: Any, path: str | os.PathLike[str]) -> None:
    """Pickle ``obj`` to ``path`` atomically with the highest protocol."""
    with _atomic_open(path) as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
