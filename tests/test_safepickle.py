"""Tests of condorcof.safepickle: atomic writes and the restricted unpickler."""

from __future__ import annotations

import _compat_pickle
import collections
import io
import json
import os
import pickle
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boost_histogram as bh
import boost_histogram._core.axis.transform as bh_core_transform
import boost_histogram._core.hist as bh_core_hist
import hist
import numpy as np
import pytest

from condorcof import safepickle
from condorcof.errors import UnsafePickleError
from condorcof.safepickle import (
    ALLOWED_GLOBALS,
    ENV_VAR,
    allow,
    dump_pickle,
    is_allowed,
    load_pickle,
    loads_pickle,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)

PROTOCOLS = range(2, pickle.HIGHEST_PROTOCOL + 1)


@dataclass
class Point:
    x: int


POINT = f"{Point.__module__}.{Point.__qualname__}"


@pytest.fixture(autouse=True)
def _clean_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(safepickle, "_user_allowed", set())


# ---------------------------------------------------------------- corpus of real objects


def _axes() -> list[Any]:
    return [
        hist.axis.Regular(4, 0, 1, name="reg"),
        hist.axis.Variable([0, 1, 5, 10], name="var"),
        hist.axis.Integer(-1, 3, name="int"),
        hist.axis.IntCategory([1, 7], growth=True, name="icat"),
        hist.axis.StrCategory(["DY"], growth=True, name="scat"),
        hist.axis.Boolean(name="flag"),
    ]


def _filled(storage: Any) -> hist.Hist:
    h = hist.Hist(*_axes(), storage=storage, name="h", label="a histogram")
    args = ([0.3, 0.7], [0.5, 7.0], [0, 2], [1, 9], ["DY", "TT"], [True, False])
    kwargs: dict[str, Any] = {}
    if isinstance(storage, (hist.storage.Mean, hist.storage.WeightedMean)):
        kwargs["sample"] = [2.0, 4.0]
    if isinstance(storage, (hist.storage.Weight, hist.storage.WeightedMean, hist.storage.Double)):
        kwargs["weight"] = [0.5, 1.5]
    h.fill(*args, **kwargs)
    return h


STORAGES = [
    hist.storage.Double(),
    hist.storage.Int64(),
    hist.storage.AtomicInt64(),
    hist.storage.Unlimited(),
    hist.storage.Weight(),
    hist.storage.Mean(),
    hist.storage.WeightedMean(),
]


def hist_corpus() -> dict[str, Any]:
    corpus: dict[str, Any] = {type(s).__name__: _filled(s) for s in STORAGES}
    transformed = hist.Hist(
        hist.axis.Regular(5, 1, 100, transform=hist.axis.transform.log, name="log"),
        hist.axis.Regular(5, 1, 100, transform=hist.axis.transform.sqrt, name="sqrt"),
        hist.axis.Regular(5, 1, 2, transform=hist.axis.transform.Pow(2), name="pow"),
        hist.axis.Regular(4, 0, 360, circular=True, name="phi"),
        hist.axis.Regular(4, 0, 1, underflow=False, overflow=False, name="noflow"),
    )
    transformed.fill([2, 50], [4, 9], [1.5, 1.9], [10, 350], [0.5, 0.9])
    corpus["transformed"] = transformed
    corpus["named"] = hist.NamedHist(hist.axis.Regular(3, 0, 1, name="x"))
    corpus["named"].fill(x=[0.5])
    plain = bh.Histogram(
        bh.axis.Regular(3, 0, 1),
        bh.axis.StrCategory(["a"], growth=True),
        storage=bh.storage.Weight(),
    )
    plain.fill([0.2], ["b"], weight=[2.0])
    corpus["boost"] = plain
    corpus["multicell"] = bh.Histogram(bh.axis.Regular(3, 0, 1), storage=bh.storage.MultiCell(2))
    return corpus


def basic_corpus() -> dict[str, Any]:
    return {
        "ints": np.arange(5),
        "floats": np.linspace(0, 1, 7).reshape(7, 1),
        "big_endian": np.array([1.0, 2.0], dtype=">f4"),
        "strided": np.arange(12.0).reshape(3, 4).T,
        "record": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "strings": np.array(["a", "bc"]),
        "objects": np.array([1, "x", None], dtype=object),
        "scalars": [np.float64(1.5), np.int64(3), np.float32(2), np.bool_(True)],
        "dtype": np.dtype("f8"),
        "cutflow": collections.defaultdict(int, {"all": 10}),
        "lists": collections.defaultdict(list, {"f": [1]}),
        "nested": collections.defaultdict(dict),
        "sets": collections.defaultdict(set),
        "floats_dd": collections.defaultdict(float),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "counter": collections.Counter("aab"),
        "misc": [{1, 2}, frozenset({3}), (4, 5), 1 + 2j, b"raw", b"", bytearray(b"ba"), None],
        "text": "μμ",
        "flags": [True, False],
    }


def assert_same(x: Any, y: Any) -> None:
    assert type(x) is type(y)
    if isinstance(x, dict):
        assert list(x) == list(y)
        assert getattr(x, "default_factory", None) is getattr(y, "default_factory", None)
        for key in x:
            assert_same(x[key], y[key])
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for a, b in zip(x, y, strict=True):
            assert_same(a, b)
    elif isinstance(x, np.ndarray):
        # protocols < 5 load arrays in native byte order (plain pickle does the same)
        assert x.dtype.newbyteorder("=") == y.dtype.newbyteorder("=")
        np.testing.assert_array_equal(x, y)
    elif isinstance(x, bh.Histogram):
        assert x == y
        assert x.axes == y.axes and x.storage_type is y.storage_type
        assert getattr(x, "name", None) == getattr(y, "name", None)
    else:
        assert x == y


def globals_referenced(data: bytes) -> set[str]:
    """Every global a pickle resolves, with Python 2 names mapped as pickle does."""
    seen: set[str] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            seen.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()
    return seen


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("key", list(hist_corpus()))
def test_histograms_round_trip(protocol: int, key: str) -> None:
    original = hist_corpus()[key]
    data = pickle.dumps(original, protocol=protocol)
    loaded = loads_pickle(data)
    assert_same(loaded, original)
    assert_same(loaded, pickle.loads(data))
    assert_same(loaded + original, original + original)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_basic_values_round_trip(protocol: int) -> None:
    original = basic_corpus()
    data = pickle.dumps(original, protocol=protocol)
    loaded = loads_pickle(data)
    assert_same(loaded, original)
    unrestricted = pickle.loads(data)
    assert_same(loaded, unrestricted)
    assert loaded["big_endian"].dtype == unrestricted["big_endian"].dtype


def test_allowlist_covers_every_global_hist_and_numpy_emit() -> None:
    used: set[str] = set()
    for protocol in PROTOCOLS:
        for obj in [*hist_corpus().values(), basic_corpus()]:
            used |= globals_referenced(pickle.dumps(obj, protocol=protocol))
    assert used <= ALLOWED_GLOBALS
    hist_names = {n for n in ALLOWED_GLOBALS if n.startswith(("hist.", "boost_histogram."))}
    assert hist_names <= used, "allowlisted hist names that no pickle needs"


def test_allowlist_knows_every_boost_histogram_storage() -> None:
    installed = {n for n in dir(bh_core_hist) if n.startswith("any_")}
    listed = {
        n.rsplit(".", 1)[1] for n in ALLOWED_GLOBALS if n.startswith("boost_histogram._core.hist.")
    }
    assert installed == listed


def test_numpy_1_names_load_without_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arrays = [np.arange(3.0), np.float64(2.5)]
    legacy = pickle.dumps(arrays, protocol=2).replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray\n_reconstruct" in legacy
    assert b"numpy.core.multiarray\nscalar" in legacy
    frombuffer = np._core.numeric._frombuffer
    monkeypatch.setattr(frombuffer, "__module__", "numpy.core.numeric")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy5 = pickle.dumps(np.arange(4), protocol=5)
    monkeypatch.undo()
    assert "numpy.core.numeric._frombuffer" in globals_referenced_quietly(legacy5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(loads_pickle(legacy), arrays)
        assert_same(loads_pickle(legacy5), np.arange(4))


def globals_referenced_quietly(data: bytes) -> set[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return globals_referenced(data)


# ---------------------------------------------------------------- malicious pickles


def g(module: str, name: str) -> bytes:
    """Protocol 0 GLOBAL opcode."""
    return f"c{module}\n{name}\n".encode()


def s(text: str) -> bytes:
    """Protocol 0 UNICODE opcode."""
    return b"V" + text.encode("raw_unicode_escape") + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)`` with MARK, TUPLE and REDUCE."""
    return func + b"(" + b"".join(args) + b"tR"


def stack_global(module: str, name: str) -> bytes:
    """Protocol 4 STACK_GLOBAL, which allows dotted names."""
    out = b""
    for part in (module, name):
        raw = part.encode()
        out += b"\x8c" + bytes([len(raw)]) + raw
    return out + b"\x93"


class Reduce:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle that creates ``marker`` when loaded unsafely, global to refuse)."""
    touch = f"touch {marker}"
    create = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": (call(g("os", "system"), s(touch)) + b".", "os.system"),
        "posix.system": (pickle.dumps(Reduce(os.system, touch)), "posix.system"),
        "eval": (call(g("builtins", "eval"), s(create)) + b".", "builtins.eval"),
        "py2 eval": (call(g("__builtin__", "eval"), s(create)) + b".", "builtins.eval"),
        "exec": (pickle.dumps(Reduce(exec, create), protocol=4), "builtins.exec"),
        "popen": (
            pickle.dumps(Reduce(subprocess.Popen, ["touch", str(marker)]), protocol=5),
            "subprocess.Popen",
        ),
        "getattr": (
            call(
                call(
                    g("builtins", "getattr"),
                    call(g("builtins", "__import__"), s("os")),
                    s("system"),
                ),
                s(touch),
            )
            + b".",
            "builtins.getattr",
        ),
        "partial": (
            call(call(g("functools", "partial"), g("os", "system"), s(touch))) + b".",
            "functools.partial",
        ),
        "nested in result": (
            pickle.dumps({"DY": {"mass": [1, Reduce(eval, create)]}}),
            "builtins.eval",
        ),
        "default_factory": (
            pickle.dumps(collections.defaultdict(int, {"x": Reduce(os.system, touch)})),
            "posix.system",
        ),
    }


def _run_unsafely(payload: bytes) -> None:
    result = pickle.loads(payload)
    if callable(getattr(result, "wait", None)):
        result.wait()


@pytest.mark.parametrize("case", list(_payloads(Path("m"))))
def test_malicious_pickle_is_refused_and_never_executed(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    payload, refused = _payloads(marker)[case]
    _run_unsafely(payload)  # the payload is live: plain pickle runs it
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "partial.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path)
    assert not marker.exists()
    message = str(info.value)
    assert repr(refused) in message and str(path) in message
    assert f"extra_allowed=({refused!r},)" in message
    assert f"{ENV_VAR}={refused}" in message and f"--allow-class {refused}" in message
    with pytest.raises(UnsafePickleError, match="<bytes>"):
        loads_pickle(payload)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "functools.partial",
        "builtins.getattr",
        "builtins.__import__",
        "builtins.type",
        "builtins.object",
        "builtins.slice",
        "builtins.range",
        "numpy.load",
        "numpy.lib.npyio.load",
        "pickle.loads",
        "hist.hist.bh",
        "boost_histogram.histogram.np",
        "codecs.encode",
    ],
)
def test_other_dangerous_globals_are_refused(name: str) -> None:
    module, _, attr = name.rpartition(".")
    with pytest.raises(UnsafePickleError, match=repr(name)):
        loads_pickle(g(module, attr) + b".")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("numpy", "_core.numeric._frombuffer"),  # allowlisted string, reached by getattr
        ("numpy._core", "numeric._frombuffer"),
        ("hist.hist", "bh.np.load"),
        ("collections", "defaultdict.__init__"),
    ],
)
def test_dotted_names_cannot_walk_out_of_the_allowlist(module: str, name: str) -> None:
    with pytest.raises(UnsafePickleError):
        loads_pickle(b"\x80\x04" + stack_global(module, name) + b".")


def test_guarded_callables_accept_only_what_pickle_needs() -> None:
    rot13 = call(g("_codecs", "encode"), s("abc"), s("rot13")) + b"."
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        loads_pickle(rot13)
    assert loads_pickle(call(g("_codecs", "encode"), s("é"), s("latin1")) + b".") == b"\xe9"
    convert = g("boost_histogram.axis.transform", "_internal_conversion")
    for name in ("__loader__", "__spec__", "__class__", "missing"):
        with pytest.raises(pickle.UnpicklingError, match="transform"):
            loads_pickle(call(convert, s(name)) + b".")
    core = bh_core_transform
    assert loads_pickle(call(convert, s("log")) + b".") is core.log
    assert loads_pickle(call(convert, s("_log_fn")) + b".") is core._log_fn


# ---------------------------------------------------------------- extending the allowlist


def test_extra_allowed_env_and_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pickle.dumps({"p": Point(3)})
    with pytest.raises(UnsafePickleError, match=repr(POINT)):
        loads_pickle(data)
    assert not is_allowed(POINT)
    assert loads_pickle(data, extra_allowed=(POINT,)) == {"p": Point(3)}
    assert is_allowed(POINT, (POINT,))
    assert loads_pickle(data, extra_allowed=POINT) == {"p": Point(3)}  # a lone string

    monkeypatch.setenv(ENV_VAR, f" other.Thing , {POINT} ,")
    assert is_allowed(POINT) and is_allowed("other.Thing")
    assert loads_pickle(data) == {"p": Point(3)}
    monkeypatch.delenv(ENV_VAR)
    assert not is_allowed(POINT)

    allow(POINT)
    assert loads_pickle(data) == {"p": Point(3)}
    with pytest.raises(ValueError, match="module.qualname"):
        allow("nodots")


def test_default_allowlist_membership() -> None:
    for name in ("builtins.dict", "collections.defaultdict", "numpy.ndarray", "hist.hist.Hist"):
        assert is_allowed(name)
    assert is_allowed("coffea.processor.accumulator.column_accumulator")
    for name in ("builtins.eval", "os.system", "copyreg._reconstructor", "hist.hist"):
        assert not is_allowed(name)


def test_allowlisted_but_missing_module_is_an_import_error() -> None:
    data = (
        call(g("coffea.processor.accumulator", "value_accumulator"), g("builtins", "float")) + b"."
    )
    with pytest.raises(pickle.UnpicklingError, match="cannot import coffea"):
        loads_pickle(data)


# ---------------------------------------------------------------- atomic writes


def test_dump_and_load_pickle(tmp_path: Path) -> None:
    path = tmp_path / "partial.pkl"
    value = {"h": hist_corpus()["Weight"], **basic_corpus()}
    dump_pickle(value, path)
    assert path.read_bytes()[:2] == bytes([0x80, pickle.HIGHEST_PROTOCOL])
    assert_same(load_pickle(path), value)
    assert_same(load_pickle(str(path)), value)
    assert os.listdir(tmp_path) == ["partial.pkl"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.pkl"
    dump_pickle({"old": 1}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        dump_pickle({"bad": lambda: 0}, path)
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert load_pickle(path) == {"old": 1}
    assert os.listdir(tmp_path) == ["out.pkl"]


def test_write_is_synced_then_renamed_then_directory_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, Any]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", (Path(src).parent, Path(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "manifest.json"
    write_json_atomic(target, {"a": 1})
    assert events == [("fsync", "file"), ("replace", (tmp_path, target)), ("fsync", "dir")]


def test_new_files_get_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o640


def test_text_and_json_helpers(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "t.txt", "μ\nline\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "μ\nline\n"
    write_json_atomic(tmp_path / "m.json", {"b": [1], "a": "é"})
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    assert text == '{\n "a": "é",\n "b": [\n  1\n ]\n}\n'
    assert json.loads(text) == {"a": "é", "b": [1]}
    write_bytes_atomic(tmp_path / "t.txt", b"replaced")
    assert (tmp_path / "t.txt").read_bytes() == b"replaced"
    assert sorted(os.listdir(tmp_path)) == ["m.json", "t.txt"]
