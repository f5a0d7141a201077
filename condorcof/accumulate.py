"""Add accumulator values (the outputs of processors) together.

Supported values, checked in this order:

* ``None`` is the identity: ``add(None, x)`` and ``add(x, None)`` are ``x``.
* ``dict`` and subclasses (``defaultdict``, ``OrderedDict``, ``Counter``, coffea's
  ``dict_accumulator``...) merge recursively. A key on one side only is taken as it
  is (copied); the result keeps the left operand's type, ``default_factory`` and key
  order, followed by the keys new in the right operand.
* ``hist.Hist`` / ``boost_histogram.Histogram``: ``+``; storage and axes must match,
  growing category axes merge their categories (in order of first appearance).
* ``numpy.ndarray``: elementwise ``+``; shapes must be equal (no broadcasting).
* ``set`` / ``frozenset``: union. ``list``: concatenation.
* numbers (``int``, ``float``, ``complex``, numpy scalars): ``+``.
* coffea-style accumulators: anything else with an ``add(other)`` method (coffea's
  ``AccumulatorABC`` mutates in place and returns None; a non-None return value is
  taken as the sum), else anything with ``__add__``.

Rejected with :class:`~condorcof.errors.AccumulatorError`: ``tuple``, ``str``,
``bytes`` and ``bytearray``, because their ``+`` concatenates, which is almost never
what a processor returning e.g. ``(sumw, sumw2)`` means; use a list, a numpy array or
a dict instead. Errors name the key path, e.g. ``['DYJets']['mass']``.

Merging is associative, so the result does not depend on the shape of the merge tree,
but it is not commutative: list order, dict key order and the order of growing
categories follow the order of the operands.
"""

from __future__ import annotations

import copy
import numbers
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from condorcof.errors import AccumulatorError

__all__ = ["accumulate", "add", "iadd"]

Path = tuple[Any, ...]

_CONCATENATING = (tuple, str, bytes, bytearray)


def add(a: Any, b: Any) -> Any:
    """Return the sum of two accumulator values; neither input is modified."""
    return iadd(copy.deepcopy(a), b)


def iadd(a: Any, b: Any) -> Any:
    """Add ``b`` into ``a``, in place where possible, and return the sum.

    ``a`` may be modified (and is, partially, if an error is raised); always use the
    return value. ``b`` is never modified and the result shares no mutable container
    with it (parts taken from ``b`` are copied), so merging can stream: keep only the
    running total and drop each partial after adding it.
    """
    return _iadd(a, b, ())


def accumulate(items: Iterable[Any], start: Any = None) -> Any:
    """Fold ``items`` with :func:`iadd` semantics, holding only the running total.

    ``start``, if given, is updated in place and returned; otherwise the first item
    is copied. An empty ``items`` gives ``start`` (None by default). The items are
    not modified.
    """
    total = start
    for item in items:
        total = _iadd(total, item, ())
    return total


def format_path(path: Path) -> str:
    """Render a key path as ``['DYJets']['mass']`` (``<top level>`` when empty)."""
    return "".join(f"[{key!r}]" for key in path) or "<top level>"


def _type_name(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _error(path: Path, a: Any, b: Any, detail: str) -> AccumulatorError:
    return AccumulatorError(
        f"cannot add {_type_name(a)} and {_type_name(b)} at {format_path(path)}: {detail}"
    )


def _iadd(a: Any, b: Any, path: Path) -> Any:
    if b is None:
        return a
    if a is None:
        return copy.deepcopy(b)
    if isinstance(a, dict):
        return _iadd_dict(a, b, path)
    if _is_histogram(a) or _is_histogram(b):
        return _iadd_hist(a, b, path)
    if _is_ndarray(a) or _is_ndarray(b):
        return _iadd_array(a, b, path)
    if isinstance(a, (set, frozenset)):
        return _iadd_set(a, b, path)
    if isinstance(a, list):
        return _iadd_list(a, b, path)
    if isinstance(a, _CONCATENATING) or isinstance(b, _CONCATENATING):
        raise _error(path, a, b, "tuples, strings and bytes are not accumulators")
    if _is_number(a) or _is_number(b):
        return _iadd_number(a, b, path)
    return _iadd_duck(a, b, path)


def _iadd_dict(a: dict, b: Any, path: Path) -> dict:
    if not isinstance(b, Mapping):
        raise _error(path, a, b, "a mapping can only be added to a mapping")
    for key, value in b.items():
        if key in a:
            a[key] = _iadd(a[key], value, (*path, key))
        else:
            a[key] = copy.deepcopy(value)
    return a


def _is_histogram(obj: Any) -> bool:
    bh = sys.modules.get("boost_histogram")
    return bh is not None and isinstance(obj, bh.Histogram)


def _iadd_hist(a: Any, b: Any, path: Path) -> Any:
    if not (_is_histogram(a) and _is_histogram(b)):
        raise _error(path, a, b, "a histogram can only be added to a histogram")
    if type(a) is not type(b):
        raise _error(path, a, b, "histogram classes differ")
    core_a, core_b = getattr(a, "_hist", None), getattr(b, "_hist", None)
    if core_a is None or core_b is None or type(core_a) is not type(core_b):
        # the C++ histogram's type encodes its storage; ``storage_type`` is slow to compute
        if a.storage_type is not b.storage_type:
            detail = f"storage differs: {a.storage_type.__name__} vs {b.storage_type.__name__}"
            raise _error(path, a, b, detail)
    try:
        if core_a is not None and core_b is not None and not _grows(core_a):
            # add the C++ histograms directly (it checks the axes): 10x faster than
            # ``a += b``, which rebuilds Python axis objects on every call
            core_a.__iadd__(core_b)
        else:
            a += b
    except (ValueError, TypeError) as exc:
        raise _error(path, a, b, _axes_difference(a, b) or str(exc)) from exc
    return a


def _grows(core: Any) -> bool:
    """Whether a C++ histogram has a growing axis (those merge through ``hist``'s own ``+=``)."""
    return any(core.axis(i).traits_growth for i in range(core.rank()))


def _axes_difference(a: Any, b: Any) -> str:
    """Describe the first difference between the axes of two histograms."""
    if len(a.axes) != len(b.axes):
        return f"number of axes differs: {len(a.axes)} vs {len(b.axes)}"
    for index, (x, y) in enumerate(zip(a.axes, b.axes, strict=True)):
        problem = _axis_difference(x, y)
        if problem:
            name = getattr(x, "name", None)
            label = f"axis {index}" + (f" ({name!r})" if name else "")
            return f"{label}: {problem}"
    return ""


def _axis_difference(x: Any, y: Any) -> str:
    if type(x) is not type(y):
        return f"type {type(x).__name__} vs {type(y).__name__}"
    for attr in ("name", "label"):
        vx, vy = getattr(x, attr, None), getattr(y, attr, None)
        if vx != vy:
            return f"{attr} {vx!r} vs {vy!r}"
    if x.traits != y.traits:
        return f"options {x.traits!r} vs {y.traits!r}"
    if x.traits.continuous or not x.traits.growth:
        if len(x) != len(y) or not _same_edges(x, y):
            return f"bins differ: {_bins(x)} vs {_bins(y)}"
    if x.metadata != y.metadata:
        return f"metadata {x.metadata!r} vs {y.metadata!r}"
    return ""


def _same_edges(x: Any, y: Any) -> bool:
    if x.traits.continuous:
        return bool((x.edges == y.edges).all())
    return list(x) == list(y)


def _bins(axis: Any) -> str:
    if axis.traits.continuous:
        edges = axis.edges
        return f"{len(axis)} bins [{edges[0]:g}, {edges[-1]:g}]"
    items = list(axis)
    return repr(items if len(items) <= 6 else [*items[:6], "..."])


def _is_ndarray(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _iadd_array(a: Any, b: Any, path: Path) -> Any:
    if not (_is_ndarray(a) and _is_ndarray(b)):
        raise _error(path, a, b, "an array can only be added to an array")
    if a.shape != b.shape:
        raise _error(path, a, b, f"shapes differ: {a.shape} vs {b.shape}")
    np = sys.modules["numpy"]
    try:
        if a.flags.writeable and np.result_type(a, b) == a.dtype:
            np.add(a, b, out=a)
            return a
        return a + b
    except TypeError as exc:  # numpy's UFuncTypeError, e.g. structured dtypes
        raise _error(path, a, b, str(exc)) from exc


def _iadd_set(a: set | frozenset, b: Any, path: Path) -> set | frozenset:
    if not isinstance(b, (set, frozenset)):
        raise _error(path, a, b, "a set can only be added to a set")
    if isinstance(a, set):
        a |= b
        return a
    return a | b


def _iadd_list(a: list, b: Any, path: Path) -> list:
    if not isinstance(b, list):
        raise _error(path, a, b, "a list can only be added to a list")
    a.extend(copy.deepcopy(b))
    return a


def _is_number(obj: Any) -> bool:
    return isinstance(obj, numbers.Number)


def _iadd_number(a: Any, b: Any, path: Path) -> Any:
    if not (_is_number(a) and _is_number(b)):
        raise _error(path, a, b, "a number can only be added to a number")
    return a + b


def _iadd_duck(a: Any, b: Any, path: Path) -> Any:
    method = getattr(a, "add", None)
    try:
        if callable(method):
            result = method(b)
            return a if result is None else result
        if hasattr(a, "__add__"):
            result = a + b
            if result is not NotImplemented:
                return result
    except Exception as exc:  # any failure of user code is reported with its key path
        raise _error(path, a, b, f"{type(exc).__name__}: {exc}") from exc
    raise _error(path, a, b, "unsupported accumulator type")
