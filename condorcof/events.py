"""Lazy NanoAOD-style events for one chunk of a TTree.

``make_events`` returns an :class:`Events`, a genuine ``ak.Array`` of records whose buffers are
*virtual* (``ak.from_buffers`` with zero-argument callables, supported by awkward 2.14): a branch
is read from the open tree only when awkward first needs its buffer, and at most once per chunk.
So ``events.Muon.pt`` reads ``nMuon`` and ``Muon_pt`` and nothing else, and awkward operations
(masking, ``ak.num``, ``ak.combinations``, ``events[mask]``) work and stay lazy. Printing an
unread array shows ``??``; ``ak.materialize`` or ``.tolist()`` reads it.

Nor is the layout of every branch built per chunk (tens of milliseconds with 1500-2600
branches): the forms are cached per tree, and a field of the events (or of a large record such
as ``HLT``) is built when it is first used; see :class:`_LazyRecord`. Numbers are read basket by
basket (:class:`_ChunkReader`). ``benchmarks/`` measures this path against a hand-written
uproot + numpy analysis and against coffea.

Grouping follows coffea's NanoAOD schema:

* ``X_y`` branches with a counter ``nX`` (or ``NX``) form the jagged collection ``events.X``,
  whose offsets come from the counter;
* other ``X_y`` branches form the record ``events.X`` (``events.MET.pt``, ``events.HLT.IsoMu24``),
  unless a branch is itself named ``X``;
* every other branch is a top-level field under its own name (``events.run``, ``events.nMuon``).

Records with ``pt``/``eta``/``phi``/``mass`` (or ``m``) fields get scikit-hep ``vector`` behaviour.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import os
import weakref
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np
import vector
import vector.backends.awkward as vak

from condorcof.errors import ChunkFailedError, MissingBranchError, OptionalDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable

    import uproot

EVENTS_RECORD = "NanoEvents"
CANDIDATE_RECORD = "PtEtaPhiMCandidate"
COLLECTION_RECORD = "NanoCollection"
_FLAT, _JAGGED, _STRING = "flat", "jagged", "string"
_VECTOR_COORDS = frozenset("x y z t rho phi eta theta tau px py pz pt E e energy M m mass".split())
# vector's record names, and this module's aliases of them (same behaviour, clearer errors)
NANO_VECTOR = {f"Momentum{d}D": f"NanoMomentum{d}D" for d in (2, 3, 4)}
_ALIASES = {
    "Momentum2D": ("NanoMomentum2D",),
    "Momentum3D": ("NanoMomentum3D",),
    "Momentum4D": ("NanoMomentum4D", CANDIDATE_RECORD),
}
_VECTOR_NAMES = {
    frozenset({"pt", "eta", "phi", "mass"}): "NanoMomentum4D",
    frozenset({"pt", "eta", "phi", "m"}): "NanoMomentum4D",
    frozenset({"pt", "eta", "phi", "M"}): "NanoMomentum4D",
    frozenset({"px", "py", "pz", "E"}): "NanoMomentum4D",
    frozenset({"px", "py", "pz", "e"}): "NanoMomentum4D",
    frozenset({"px", "py", "pz", "energy"}): "NanoMomentum4D",
    frozenset({"pt", "eta", "phi"}): "NanoMomentum3D",
    frozenset({"px", "py", "pz"}): "NanoMomentum3D",
    frozenset({"pt", "phi"}): "NanoMomentum2D",
    frozenset({"px", "py"}): "NanoMomentum2D",
}


# ---------------------------------------------------------------- schema (metadata only)


@dataclass(frozen=True)
class _Leaf:
    """One readable branch: its key in the tree and how its values are laid out."""

    key: str
    kind: str
    dtype: np.dtype
    inner_shape: tuple[int, ...] = ()


@dataclass
class _Group:
    """A jagged collection (``counter`` set) or a singleton record of branches ``X_*``."""

    counter: str | None
    leaves: dict[str, _Leaf] = field(default_factory=dict)


@dataclass
class _Schema:
    """What ``tree.keys()`` says, grouped into top-level fields; built without reading data."""

    fields: dict[str, _Leaf | _Group]
    paths: dict[str, tuple[str, ...]]
    unsupported: dict[str, str]
    treename: str = "?"
    filename: str = "?"
    # filled on first use, then reused by every chunk of the tree: the form of each top-level
    # field (and of each leaf of a lazy record such as HLT), and what each buffer key reads
    forms: dict[tuple[str, ...], ak.forms.Form] = field(default_factory=dict)
    buffers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lazy_groups: frozenset[str] = frozenset()

    def form(self, path: tuple[str, ...]) -> ak.forms.Form:
        """The form of a top-level field ``(name,)`` or of a leaf ``(group, leaf)``."""
        form = self.forms.get(path)
        if form is None:
            item = self.fields[path[0]]
            if len(path) == 2:
                assert isinstance(item, _Group)
                form = _leaf_form(item.leaves[path[1]], self.buffers)
            elif isinstance(item, _Group):
                form = _group_form(path[0], item, self.buffers)
            else:
                form = _leaf_form(item, self.buffers)
            self.forms[path] = form
        return form


_SCHEMAS: dict[int, tuple[weakref.ref, _Schema]] = {}
# singleton records (no counter, no momentum) with at least this many fields are built one
# field at a time: HLT, L1 and Flag hold hundreds of branches, of which a processor uses few
LAZY_RECORD_FIELDS = 16


def _leaf_of(key: str, interp: Any) -> _Leaf | None | str:
    """Classify a branch interpretation: a ``_Leaf``, ``None`` (a group node) or a reason."""
    from uproot.interpretation.grouped import AsGrouped
    from uproot.interpretation.jagged import AsJagged
    from uproot.interpretation.numerical import Numerical
    from uproot.interpretation.strings import AsStrings

    if isinstance(interp, AsGrouped):
        return None
    if isinstance(interp, Numerical):
        dtype = np.dtype(interp.to_dtype)
        if dtype.subdtype is not None:
            return _Leaf(key, _FLAT, dtype.subdtype[0].newbyteorder("="), dtype.subdtype[1])
        return _Leaf(key, _FLAT, dtype.newbyteorder("="))
    if isinstance(interp, AsJagged) and isinstance(interp.content, Numerical):
        dtype = np.dtype(interp.content.to_dtype)
        if dtype.subdtype is None:
            return _Leaf(key, _JAGGED, dtype.newbyteorder("="))
    if isinstance(interp, AsStrings):
        return _Leaf(key, _STRING, np.dtype(np.uint8))
    return f"unsupported type {interp!r}"


# TLeaf class -> (signed, unsigned) type of a plain number branch
_LEAF_TYPES = {
    "TLeafO": ("?", "?"),
    "TLeafB": ("i1", "u1"),
    "TLeafS": ("i2", "u2"),
    "TLeafI": ("i4", "u4"),
    "TLeafL": ("i8", "u8"),
    "TLeafF": ("f4", "f4"),
    "TLeafD": ("f8", "f8"),
}


def _plain_leaf(key: str, branch: Any) -> _Leaf | None:
    """The leaf of a plain branch (one number per entry, or a list of numbers counted by a
    leaf of another branch) read from its TLeaf, or None when uproot's interpretation must
    decide. Working out the interpretation of all 1500-2600 NanoAOD branches costs about
    0.1 s per file, mostly in finding each counter branch; this gives the same answer."""
    if branch.classname != "TBranch" or branch.branches:
        return None
    leaves = branch.member("fLeaves")
    if len(leaves) != 1:
        return None
    leaf = leaves[0]
    types = _LEAF_TYPES.get(leaf.classname)
    if types is None or leaf.member("fLen") != 1:
        return None
    dtype = np.dtype(types[1] if leaf.member("fIsUnsigned") else types[0])
    count = leaf.member("fLeafCount")
    if count is None:
        return _Leaf(key, _FLAT, dtype)
    if count.classname not in ("TLeafI", "TLeafL", "TLeafS", "TLeafB"):
        return None
    return _Leaf(key, _JAGGED, dtype)


def _scan(tree: uproot.TTree) -> _Schema:
    """Group the tree's branches like coffea's NanoAOD schema."""
    leaves: dict[str, _Leaf] = {}
    unsupported: dict[str, str] = {}
    for key in tree.keys():
        try:
            branch = tree[key]
            leaf = _plain_leaf(key, branch) or _leaf_of(key, branch.interpretation)
        except Exception as err:  # uproot raises many types for uninterpretable branches
            leaf = f"uninterpretable ({type(err).__name__})"
        name = key.rsplit("/", 1)[-1] if key.rsplit("/", 1)[-1] not in leaves else key
        if isinstance(leaf, _Leaf):
            leaves[name] = leaf
        elif isinstance(leaf, str):
            unsupported[name] = leaf

    def counter_of(prefix: str) -> str | None:
        for cand in ("n" + prefix, "N" + prefix):
            leaf = leaves.get(cand)
            if leaf and leaf.kind == _FLAT and leaf.dtype.kind in "iu" and not leaf.inner_shape:
                return cand
        return None

    fields: dict[str, _Leaf | _Group] = {}
    paths: dict[str, tuple[str, ...]] = {}
    for name, leaf in leaves.items():
        prefix, _, sub = name.partition("_")
        if prefix and sub and prefix not in leaves:
            counter = counter_of(prefix)
            if counter is None or leaf.kind == _JAGGED:
                group = fields.setdefault(prefix, _Group(counter))
                if isinstance(group, _Group):
                    group.leaves[sub] = leaf
                    paths[name] = (prefix, sub)
                    continue
        fields[name] = leaf
        paths[name] = (name,)
    lazy = frozenset(
        name
        for name, item in fields.items()
        if isinstance(item, _Group)
        and item.counter is None
        and len(item.leaves) >= LAZY_RECORD_FIELDS
        and _vector_name(set(item.leaves)) is None
    )
    return _Schema(fields, paths, unsupported, tree.name, tree.file.file_path, lazy_groups=lazy)


def _schema(tree: uproot.TTree) -> _Schema:
    """The tree's schema, cached per live tree object (trees are not hashable)."""
    hit = _SCHEMAS.get(id(tree))
    if hit is not None and hit[0]() is tree:
        return hit[1]
    schema = _scan(tree)
    for key in [k for k, (ref, _) in _SCHEMAS.items() if ref() is None]:
        del _SCHEMAS[key]
    _SCHEMAS[id(tree)] = (weakref.ref(tree), schema)
    return schema


# ---------------------------------------------------------------- reading on demand


class _ChunkReader:
    """Reads branches of one entry range on demand, each at most once.

    Flat numbers and the values of collections (``Muon_pt`` with counter ``nMuon``) are read
    basket by basket (``uproot.models.TBasket``: the bytes of a local file with one ``pread``,
    decompressed once, copied once into a native-endian array of the size the entry range or
    the counter says), which is about twice as fast as ``TBranch.array``: no per-entry offsets
    are built for values whose lists come from the counter. Anything else (self-counted lists such as ``LHEPdfWeight``, strings, special
    types, baskets embedded in the tree) goes through ``TBranch.array``.
    """

    def __init__(self, tree: uproot.TTree, entry_start: int, entry_stop: int) -> None:
        self.tree = tree
        self.entry_start = entry_start
        self.entry_stop = entry_stop
        self.branches_read: set[str] = set()
        self._cache: dict[str, Any] = {}

    def _read(self, key: str, library: str) -> Any:
        self.branches_read.add(key)
        return self.tree[key].array(
            entry_start=self.entry_start,
            entry_stop=self.entry_stop,
            library=library,
            array_cache=None,  # each branch is read once per chunk: a cache only costs memory
        )

    def _read_baskets(self, key: str, jagged: bool, size: int | None) -> np.ndarray | None:
        """The values of entries [start, stop) straight from the baskets, or None when the
        branch is not a plain number or list of numbers (then ``_read`` does it).

        ``size`` is the number of values expected (entries for flat branches, the counter's
        sum for lists); a mismatch raises :class:`ChunkFailedError`.
        """
        from uproot.interpretation.jagged import AsJagged
        from uproot.interpretation.numerical import AsDtype

        branch = self.tree[key]
        interp = branch.interpretation
        if jagged:
            if type(interp) is not AsJagged or interp.header_bytes != 0:
                return None
            interp = interp.content
        if type(interp) is not AsDtype:
            return None
        dtype = np.dtype(interp.from_dtype)
        starts = branch.entry_offsets
        if dtype.subdtype is not None or branch.embedded_baskets or starts[-1] < self.entry_stop:
            return None
        self.branches_read.add(key)
        out = np.empty(
            size if size is not None else self.entry_stop - self.entry_start,
            dtype=dtype.newbyteorder("="),
        )
        pos = 0
        first = max(bisect.bisect_right(starts, self.entry_start) - 1, 0)
        path = self.tree.file.file_path
        with open(path, "rb", buffering=0) if os.path.isfile(path) else nullcontext() as file:
            for i in range(first, len(starts) - 1):
                begin, end = starts[i], starts[i + 1]
                if begin >= self.entry_stop:
                    break
                lo, hi = max(self.entry_start, begin) - begin, min(self.entry_stop, end) - begin
                if hi <= lo:
                    continue
                basket = self._basket(branch, i, file)
                data = basket.data
                if jagged:
                    offsets = basket.byte_offsets
                    values = data[offsets[lo] : offsets[hi]].view(dtype)
                else:
                    values = data[lo * dtype.itemsize : hi * dtype.itemsize].view(dtype)
                if pos + len(values) > len(out):
                    pos += len(values)
                    break
                out[pos : pos + len(values)] = values  # the byte-order conversion is this copy
                pos += len(values)
        if pos != len(out):
            raise ChunkFailedError(
                f"branch {key} has {pos} values in entries [{self.entry_start}, "
                f"{self.entry_stop}) but {len(out)} were expected"
            )
        return out

    def _basket(self, branch: Any, i: int, file: Any) -> Any:
        """``branch.basket(i)``, reading the bytes with one ``os.pread`` from ``file`` (the
        open local file, or None): uproot's default source for local files (fsspec) opens the
        file again for every basket."""
        if file is None:
            return branch.basket(i)
        from uproot.models.TBasket import Model_TBasket
        from uproot.source.chunk import Chunk
        from uproot.source.cursor import Cursor

        start = int(branch.member("fBasketSeek")[i])
        size = int(branch.basket_compressed_bytes(i))
        data = os.pread(file.fileno(), size, start)
        if len(data) != size:
            return branch.basket(i)
        chunk = Chunk.wrap(self.tree.file.source, np.frombuffer(data, np.uint8), start)
        context = {"basket_num": i}
        return Model_TBasket.read(chunk, Cursor(start), context, branch.file, branch.file, branch)

    def flat(self, key: str) -> np.ndarray:
        """A flat branch as a native-endian 1-d numpy array."""
        if key not in self._cache:
            data = self._read_baskets(key, jagged=False, size=None)
            if data is None:
                data = np.asarray(self._read(key, "np"))
                data = data.astype(data.dtype.newbyteorder("="), copy=False)
            self._cache[key] = np.ascontiguousarray(data).reshape(-1)
        return self._cache[key]

    def jagged(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """A jagged branch as (int64 offsets from 0, native-endian content)."""
        cache_key = key + "!jagged"
        if cache_key not in self._cache:
            layout = ak.to_layout(self._read(key, "ak")).to_ListOffsetArray64(True)
            offsets = np.asarray(layout.offsets.data, dtype=np.int64)
            content = np.asarray(layout.content.data)
            content = content.astype(content.dtype.newbyteorder("="), copy=False)
            self._cache[cache_key] = (offsets, content[: offsets[-1]])
        return self._cache[cache_key]

    def jagged_part(self, key: str, part: int) -> np.ndarray:
        """The offsets (``part`` 0) or the content (1) of a jagged branch."""
        return self.jagged(key)[part]

    def counter_offsets(self, counter: str) -> np.ndarray:
        """Offsets of a collection, from its counter branch."""
        cache_key = counter + "!offsets"
        if cache_key not in self._cache:
            counts = self.flat(counter)
            offsets = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:], dtype=np.int64)
            self._cache[cache_key] = offsets
        return self._cache[cache_key]

    def content(self, key: str, counter: str) -> np.ndarray:
        """The values of a collection's jagged branch, checked against the counter."""
        cache_key = key + "!content"
        if cache_key in self._cache:
            return self._cache[cache_key]
        expected = int(self.counter_offsets(counter)[-1])
        content = self._read_baskets(key, jagged=True, size=expected)
        if content is None:
            content = self.jagged(key)[1]
            if len(content) != expected:
                raise ChunkFailedError(
                    f"branch {key} has {len(content)} values in entries "
                    f"[{self.entry_start}, {self.entry_stop}) but {counter} sums to {expected}"
                )
        self._cache[cache_key] = content
        return content


# ---------------------------------------------------------------- forms and buffers


def _vector_name(names: set[str]) -> str | None:
    """The vector record name for a set of field names, or None if it has no momentum."""
    name = _VECTOR_NAMES.get(frozenset(names & _VECTOR_COORDS))
    if name is None and {"pt", "eta", "phi", "mass"} <= names:
        return CANDIDATE_RECORD  # e.g. SV, which also has vertex x/y/z fields
    return name


def _leaf_form(leaf: _Leaf, kinds: dict[str, tuple[str, ...]]) -> ak.forms.Form:
    """Form of a flat, self-jagged or string branch; records what its buffers read."""
    primitive = ak.types.numpytype.dtype_to_primitive(leaf.dtype)
    if leaf.kind == _FLAT:
        kinds[leaf.key] = ("flat", leaf.key)
        return ak.forms.NumpyForm(primitive, leaf.inner_shape, form_key=leaf.key)
    kinds[leaf.key + "!offsets"] = ("offsets", leaf.key)
    kinds[leaf.key] = ("values", leaf.key)
    if leaf.kind == _STRING:
        content = ak.forms.NumpyForm("uint8", parameters={"__array__": "char"}, form_key=leaf.key)
        return ak.forms.ListOffsetForm(
            "i64", content, parameters={"__array__": "string"}, form_key=leaf.key + "!offsets"
        )
    content = ak.forms.NumpyForm(primitive, form_key=leaf.key)
    return ak.forms.ListOffsetForm("i64", content, form_key=leaf.key + "!offsets")


def _record_parameters(name: str, group: _Group) -> dict[str, Any]:
    params: dict[str, Any] = {"__record__": _vector_name(set(group.leaves)) or COLLECTION_RECORD}
    if group.counter is None:
        params["collection_name"] = name
    return params


def _group_form(name: str, group: _Group, kinds: dict[str, tuple[str, ...]]) -> ak.forms.Form:
    """Form of a collection (list of records) or of a singleton record."""
    params = _record_parameters(name, group)
    if group.counter is None:
        contents = [_leaf_form(leaf, kinds) for leaf in group.leaves.values()]
        return ak.forms.RecordForm(contents, list(group.leaves), parameters=params)
    contents = []
    for leaf in group.leaves.values():
        kinds[leaf.key] = ("content", leaf.key, group.counter)
        primitive = ak.types.numpytype.dtype_to_primitive(leaf.dtype)
        contents.append(ak.forms.NumpyForm(primitive, form_key=leaf.key))
    record = ak.forms.RecordForm(contents, list(group.leaves), parameters=params)
    offsets_key = group.counter + "!offsets"
    kinds[offsets_key] = ("counter", group.counter)
    # the name sits on the list, not the record, so that concatenating collections keeps
    # the record name (and vector behaviour): awkward drops differing record parameters
    return ak.forms.ListOffsetForm(
        "i64", record, parameters={"collection_name": name}, form_key=offsets_key
    )


class _Buffers(Mapping):
    """The buffers of one chunk, as zero-argument readers made when ``ak.from_buffers`` asks."""

    def __init__(self, reader: _ChunkReader, kinds: dict[str, tuple[str, ...]]) -> None:
        self.reader = reader
        self.kinds = kinds

    def __getitem__(self, key: str) -> Callable[[], np.ndarray]:
        kind, *args = self.kinds[key]
        reader = self.reader
        if kind == "flat":
            return partial(reader.flat, *args)
        if kind == "content":
            return partial(reader.content, *args)
        if kind == "counter":
            return partial(reader.counter_offsets, *args)
        if kind == "offsets":
            return partial(reader.jagged_part, args[0], 0)
        return partial(reader.jagged_part, args[0], 1)

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def __len__(self) -> int:
        return len(self.kinds)


class _ChunkLayouts:
    """Layouts of one chunk's fields, each built on first use from the tree's cached forms.

    Building the layout of every branch (1500-2600 in NanoAOD) costs tens of milliseconds per
    chunk even when nothing is read, so only the fields a processor touches are built.
    """

    def __init__(self, schema: _Schema, reader: _ChunkReader, length: int) -> None:
        self.schema = schema
        self.length = length
        self.buffers = _Buffers(reader, schema.buffers)
        self.built: dict[tuple[str, ...], ak.contents.Content] = {}

    def layout(self, path: tuple[str, ...]) -> ak.contents.Content:
        """The layout of a top-level field ``(name,)`` or of a leaf ``(group, leaf)``."""
        layout = self.built.get(path)
        if layout is None:
            layout = ak.from_buffers(
                self.schema.form(path),
                self.length,
                self.buffers,
                buffer_key="{form_key}",
                highlevel=False,
            )
            self.built[path] = layout
        return layout

    def events(self) -> _LazyFields:
        """The top-level record: every field of the schema, none built yet."""
        schema = self.schema

        def get(name: str) -> ak.contents.Content | _LazyFields:
            if name not in schema.lazy_groups:
                return self.layout((name,))
            group = schema.fields[name]
            assert isinstance(group, _Group)
            return _LazyFields(
                self.length,
                tuple(group.leaves),
                lambda leaf: self.layout((name, leaf)),
                _record_parameters(name, group),
            )

        return _LazyFields(self.length, tuple(schema.fields), get, {"__record__": EVENTS_RECORD})


class _LazyFields:
    """The fields of a record array that are built on first use (see :class:`_LazyRecord`)."""

    def __init__(
        self,
        length: int,
        names: tuple[str, ...],
        get: Callable[[str], ak.contents.Content | _LazyFields],
        parameters: dict[str, Any],
    ) -> None:
        self.length = length
        self.names = names
        self.index = frozenset(names)
        self._get = get
        self.parameters = parameters
        self._cache: dict[str, ak.contents.Content | _LazyFields] = {}

    def field(self, name: str) -> ak.contents.Content | _LazyFields:
        out = self._cache.get(name)
        if out is None:
            out = self._cache[name] = self._get(name)
        return out

    def full(self) -> ak.contents.RecordArray:
        contents = []
        for name in self.names:
            item = self.field(name)
            contents.append(item.full() if isinstance(item, _LazyFields) else item)
        return ak.contents.RecordArray(
            contents, list(self.names), self.length, parameters=self.parameters
        )

    def selected(self, where: Any) -> _LazyFields | None:
        """The same record after ``array[where]``, if ``where`` picks whole entries (a slice,
        a boolean mask or integer positions without missing values); otherwise None."""
        if isinstance(where, slice):
            length = len(range(*where.indices(self.length)))
        else:
            if isinstance(where, ak.Array):
                layout = where.layout
                if not isinstance(layout, ak.contents.NumpyArray):
                    return None
                where = np.asarray(layout.data)  # reads it if it is a branch not read yet
            if not isinstance(where, np.ndarray) or where.ndim != 1:
                return None
            if where.dtype == np.bool_:
                if len(where) != self.length:
                    return None
                where = np.flatnonzero(where)
            elif where.dtype.kind in "iu" and len(where):
                if where.min() < -self.length or where.max() >= self.length:
                    return None
                where = np.where(where < 0, where + self.length, where).astype(np.int64)
            elif where.dtype.kind not in "iu":
                return None
            length = len(where)
        get = self.field

        def sub(name: str) -> ak.contents.Content | _LazyFields:
            item = get(name)
            if isinstance(item, _LazyFields):
                out = item.selected(where)
                assert out is not None
                return out
            return item[where]

        return _LazyFields(length, self.names, sub, self.parameters)


# ---------------------------------------------------------------- the events array


def _missing_error(name: str, attrs: dict, known: list[str], owner: str) -> MissingBranchError:
    """A clear error for a missing name: where it was looked for and the nearest valid names."""
    meta = attrs.get("metadata") or {}
    schema: _Schema | None = attrs.get("@schema")
    treename = meta.get("treename") or (schema.treename if schema else "?")
    filename = meta.get("filename") or (schema.filename if schema else "?")
    where = f"{owner}tree {treename} of {filename}"
    if schema is not None and not owner and name in schema.unsupported:
        return MissingBranchError(
            f"branch {name!r} in {where} cannot be read as an array "
            f"({schema.unsupported[name]}); read it with uproot directly"
        )
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    if not close:
        close = [k for k in known if name.lower() in k.lower()][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    what = "field" if owner else "branch or collection"
    return MissingBranchError(f"no {what} {name!r} in {where}{hint}")


class _LazyRecord:
    """Mixin of record arrays whose fields are built on first use.

    While ``_lazy`` (a :class:`_LazyFields`) is in the instance's dict, the array's own layout is
    a record without fields: ``array.name`` or ``array["name"]`` builds that field only, and
    ``array[mask]`` (a slice, boolean mask or integer positions) gives another lazy array.
    Anything else that needs the layout (printing, pickling, ``ak`` functions, other slices)
    builds every field first, so awkward always sees the complete record.
    """

    @property
    def _layout(self) -> ak.contents.Content:
        state = self.__dict__
        lazy = state.pop("_lazy", None)
        if lazy is not None:
            state["_layout"] = lazy.full()
        return state["_layout"]

    @_layout.setter
    def _layout(self, value: ak.contents.Content) -> None:
        self.__dict__.pop("_lazy", None)
        self.__dict__["_layout"] = value

    @property
    def fields(self) -> list[str]:
        lazy = self.__dict__.get("_lazy")
        return list(lazy.names) if lazy is not None else super().fields  # type: ignore[misc]

    def __len__(self) -> int:
        lazy = self.__dict__.get("_lazy")
        return lazy.length if lazy is not None else super().__len__()  # type: ignore[misc]

    def __getattr__(self, where: str) -> Any:
        lazy = self.__dict__.get("_lazy")
        if lazy is not None and where in lazy.index:
            return self._lazy_item(lazy.field(where))
        return super().__getattr__(where)  # type: ignore[misc]

    def __getitem__(self, where: Any) -> Any:
        lazy = self.__dict__.get("_lazy")
        if lazy is not None:
            if isinstance(where, str):
                if where in lazy.index:
                    return self._lazy_item(lazy.field(where))
            else:
                selected = lazy.selected(where)
                if selected is not None:
                    return self._lazy_item(selected)
        return super().__getitem__(where)  # type: ignore[misc]

    def _lazy_item(self, item: ak.contents.Content | _LazyFields) -> ak.Array:
        attrs = self._attrs  # type: ignore[attr-defined]
        behavior = self._behavior  # type: ignore[attr-defined]
        if not isinstance(item, _LazyFields):
            return ak.Array(item, behavior=behavior, attrs=attrs)
        return _lazy_array(item, behavior, attrs)


def _lazy_array(lazy: _LazyFields, behavior: Any = None, attrs: Any = None) -> ak.Array:
    """A record array (its class chosen by its record name) whose fields are built on use."""
    stub = ak.contents.RecordArray([], [], lazy.length, parameters=lazy.parameters)
    array = ak.Array(stub, behavior=behavior, attrs=attrs)
    if isinstance(array, _LazyRecord):
        array.__dict__["_lazy"] = lazy
    else:  # a record name whose class cannot be lazy: build it now
        array = ak.Array(lazy.full(), behavior=behavior, attrs=attrs)
    return array


class Events(_LazyRecord, ak.Array):
    """Lazy events of one chunk: an ``ak.Array`` of records with virtual buffers.

    Attribute or item access gives fields (``events.Muon``, ``events["run"]``); full branch
    names also work (``events["Muon_pt"]``). Unknown names raise :class:`MissingBranchError`.
    Only the fields that are used are built (see :class:`_LazyRecord`), and only the branches
    whose values are used are read.
    """

    @property
    def metadata(self) -> dict:
        """The chunk metadata given to :func:`make_events`."""
        return self.attrs.get("metadata", {})

    @property
    def branches_read(self) -> set[str]:
        """Names of the branches read from the tree so far for this chunk."""
        reader = self.attrs.get("@reader")
        return set(reader.branches_read) if reader is not None else set()

    def __getattr__(self, where: str) -> Any:
        if where.startswith("_"):
            return super().__getattr__(where)
        if where in self.fields:
            return self[where]
        return self._by_branch_name(where)

    def __getitem__(self, where: Any) -> Any:
        if isinstance(where, str) and where not in self.fields:
            return self._by_branch_name(where)
        return super().__getitem__(where)

    def _by_branch_name(self, name: str) -> Any:
        """A field by its full branch name (``Muon_pt``), or a clear error."""
        schema: _Schema | None = self.attrs.get("@schema")
        path = schema.paths.get(name) if schema is not None else None
        if path is None:
            known = [*self.fields, *(schema.paths if schema else ())]
            raise _missing_error(name, self.attrs, list(dict.fromkeys(known)), "")
        out = self[path[0]]
        return out[path[1]] if len(path) > 1 else out


class _FieldErrors:
    """Mixin for collection arrays: a missing field raises :class:`MissingBranchError`."""

    def __getattr__(self, where: str) -> Any:
        if where.startswith("_") or hasattr(type(self), where) or where in self.fields:
            return super().__getattr__(where)
        raise self._missing(where)

    def __getitem__(self, where: Any) -> Any:
        if isinstance(where, str) and where not in self.fields:
            raise self._missing(where)
        return super().__getitem__(where)

    def _missing(self, where: str) -> MissingBranchError:
        layout, owner = self.layout, None
        while owner is None and layout is not None:
            owner = layout.parameter("collection_name")
            layout = None if layout.is_record else getattr(layout, "content", None)
        return _missing_error(where, self.attrs, self.fields, f"{owner or 'this collection'} of ")


class _StoredCoordinates:
    """``pt``, ``eta``, ``phi`` and ``mass`` read the stored field when there is one: the same
    values that vector would return, without its dispatch (about 0.3 ms per access)."""

    @property
    def pt(self) -> Any:
        return self["pt"] if "pt" in self.fields else super().pt  # type: ignore[misc]

    @property
    def eta(self) -> Any:
        return self["eta"] if "eta" in self.fields else super().eta  # type: ignore[misc]

    @property
    def phi(self) -> Any:
        return self["phi"] if "phi" in self.fields else super().phi  # type: ignore[misc]

    @property
    def mass(self) -> Any:
        return self["mass"] if "mass" in self.fields else super().mass  # type: ignore[misc]


class NanoCollectionArray(_LazyRecord, _FieldErrors, ak.Array):
    """A collection or record without vector behaviour (e.g. ``events.HLT``, ``events.PV``)."""


class NanoMomentumArray2D(_StoredCoordinates, _FieldErrors, vak.MomentumArray2D):
    """vector's Momentum2D array (e.g. ``events.MET``) with clear missing-field errors."""


class NanoMomentumArray3D(_StoredCoordinates, _FieldErrors, vak.MomentumArray3D):
    """vector's Momentum3D array (e.g. ``events.TrigObj``) with clear missing-field errors."""


class NanoMomentumArray4D(_StoredCoordinates, _FieldErrors, vak.MomentumArray4D):
    """vector's Momentum4D array (e.g. ``events.Muon``) with clear missing-field errors."""


class _PtEtaPhiM:
    """Coordinates from pt/eta/phi/mass even when x/y/z fields exist (e.g. ``events.SV``)."""

    def __awkward_validation__(self) -> None:
        """Accept the extra coordinate-like fields that vector would reject."""

    @property
    def azimuthal(self) -> Any:
        return vak.AzimuthalAwkwardRhoPhi(self["pt"], self["phi"])

    @property
    def longitudinal(self) -> Any:
        return vak.LongitudinalAwkwardEta(self["eta"])

    @property
    def temporal(self) -> Any:
        return vak.TemporalAwkwardTau(self["mass"])

    # fields named x/y/z (a vertex position) win over vector's x/y/z (= px/py/pz)
    @property
    def x(self) -> Any:
        return self["x"] if "x" in self.fields else super().x

    @property
    def y(self) -> Any:
        return self["y"] if "y" in self.fields else super().y

    @property
    def z(self) -> Any:
        return self["z"] if "z" in self.fields else super().z

    @property
    def px(self) -> Any:
        return super().x

    @property
    def py(self) -> Any:
        return super().y

    @property
    def pz(self) -> Any:
        return super().z


# vector names its results after MomentumClass (vector's own Momentum4D), not these classes
class PtEtaPhiMCandidateArray(_StoredCoordinates, _FieldErrors, _PtEtaPhiM, vak.MomentumArray4D):
    """Momentum4D array read from pt/eta/phi/mass only."""


class PtEtaPhiMCandidateRecord(_PtEtaPhiM, vak.MomentumRecord4D):
    """Momentum4D record read from pt/eta/phi/mass only."""


def _aliased_behavior() -> dict:
    """vector's behaviours copied to this module's record names, plus their array classes.

    Operator overloads are copied for every mix of the original and alias names, so
    ``events.SV[:, 0] + events.Jet[:, 0]`` or ``events.Muon[:, 0] + my_momentum4d`` work.
    Only new names are added: vector's own entries are left alone.
    """
    options = {orig: (orig, *alias) for orig, alias in _ALIASES.items()}
    behavior: dict = {}
    for key, value in vak.behavior.items():
        names = (key,) if isinstance(key, str) else key
        choices = [options.get(k, (k,)) if isinstance(k, str) else (k,) for k in names]
        for combo in itertools.product(*choices):
            if combo != names:
                behavior[combo[0] if isinstance(key, str) else combo] = value
    behavior["*", NANO_VECTOR["Momentum2D"]] = NanoMomentumArray2D
    behavior["*", NANO_VECTOR["Momentum3D"]] = NanoMomentumArray3D
    behavior["*", NANO_VECTOR["Momentum4D"]] = NanoMomentumArray4D
    behavior["*", CANDIDATE_RECORD] = PtEtaPhiMCandidateArray
    behavior[CANDIDATE_RECORD] = PtEtaPhiMCandidateRecord
    behavior["*", COLLECTION_RECORD] = NanoCollectionArray
    behavior["*", EVENTS_RECORD] = Events
    return behavior


# Registered globally (arrays carry no behavior dict of their own, so they stay picklable);
# vector's too, so records a processor zips itself with with_name="Momentum4D" work.
vector.register_awkward()
ak.behavior.update(_aliased_behavior())


def make_events(tree: uproot.TTree, entry_start: int, entry_stop: int, metadata: dict) -> Events:
    """Lazy events for entries ``[entry_start, entry_stop)`` of an open tree.

    Nothing is read and no field is built here: ``tree.keys()`` and branch interpretations
    are inspected once per tree object, and the forms of fields are cached with them.
    ``metadata`` is kept as given, as ``events.metadata``.
    """
    if not 0 <= entry_start <= entry_stop <= tree.num_entries:
        raise ChunkFailedError(
            f"entry range [{entry_start}, {entry_stop}) is outside the "
            f"{tree.num_entries} entries of {metadata.get('filename', tree.file.file_path)}"
        )
    schema = _schema(tree)
    reader = _ChunkReader(tree, entry_start, entry_stop)
    layouts = _ChunkLayouts(schema, reader, entry_stop - entry_start)
    attrs = {"metadata": metadata, "@reader": reader, "@schema": schema}
    events = _lazy_array(layouts.events(), attrs=attrs)
    assert isinstance(events, Events)
    return events


def make_coffea_events(
    tree: uproot.TTree,
    entry_start: int,
    entry_stop: int,
    metadata: dict,
    schemaclass: Any = None,
) -> Any:
    """coffea's own NanoEvents for the same chunk (needs coffea; NanoAODSchema by default)."""
    try:
        from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
    except ImportError as err:
        raise OptionalDependencyError(
            "make_coffea_events needs coffea, which is not installed; "
            "use make_events or `pip install coffea`"
        ) from err
    treepath = tree.object_path.lstrip("/").split(";")[0]
    factory = NanoEventsFactory.from_root(
        tree.file.root_directory,
        treepath=treepath,
        entry_start=entry_start,
        entry_stop=entry_stop,
        schemaclass=schemaclass or NanoAODSchema,
        metadata=metadata,
    )
    return factory.events()
