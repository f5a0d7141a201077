"""Lazy NanoAOD-style events for one chunk of a TTree.

``make_events`` returns an :class:`Events`, a genuine ``ak.Array`` of records whose buffers are
*virtual* (``ak.from_buffers`` with zero-argument callables, supported by awkward 2.14): a branch
is read from the open tree only when awkward first needs its buffer, and at most once per chunk.
So ``events.Muon.pt`` reads ``nMuon`` and ``Muon_pt`` and nothing else, and awkward operations
(masking, ``ak.num``, ``ak.combinations``, ``events[mask]``) work and stay lazy. Printing an
unread array shows ``??``; ``ak.materialize`` or ``.tolist()`` reads it.

Grouping follows coffea's NanoAOD schema:

* ``X_y`` branches with a counter ``nX`` (or ``NX``) form the jagged collection ``events.X``,
  whose offsets come from the counter;
* other ``X_y`` branches form the record ``events.X`` (``events.MET.pt``, ``events.HLT.IsoMu24``),
  unless a branch is itself named ``X``;
* every other branch is a top-level field under its own name (``events.run``, ``events.nMuon``).

Records with ``pt``/``eta``/``phi``/``mass`` (or ``m``) fields get scikit-hep ``vector`` behaviour.
"""

from __future__ import annotations

import difflib
import itertools
import weakref
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


_SCHEMAS: dict[int, tuple[weakref.ref, _Schema]] = {}


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


def _scan(tree: uproot.TTree) -> _Schema:
    """Group the tree's branches like coffea's NanoAOD schema."""
    leaves: dict[str, _Leaf] = {}
    unsupported: dict[str, str] = {}
    for key in tree.keys():
        try:
            leaf = _leaf_of(key, tree[key].interpretation)
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
    return _Schema(fields, paths, unsupported, tree.name, tree.file.file_path)


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
    """Reads branches of one entry range on demand, each at most once."""

    def __init__(self, tree: uproot.TTree, entry_start: int, entry_stop: int) -> None:
        self.tree = tree
        self.entry_start = entry_start
        self.entry_stop = entry_stop
        self.branches_read: set[str] = set()
        self._cache: dict[str, Any] = {}

    def _read(self, key: str, library: str) -> Any:
        self.branches_read.add(key)
        return self.tree[key].array(
            entry_start=self.entry_start, entry_stop=self.entry_stop, library=library
        )

    def flat(self, key: str) -> np.ndarray:
        """A flat branch as a native-endian 1-d numpy array."""
        if key not in self._cache:
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
        content = self.jagged(key)[1]
        expected = int(self.counter_offsets(counter)[-1])
        if len(content) != expected:
            raise ChunkFailedError(
                f"branch {key} has {len(content)} values in entries "
                f"[{self.entry_start}, {self.entry_stop}) but {counter} sums to {expected}"
            )
        return content


# ---------------------------------------------------------------- forms and buffers


def _vector_name(names: set[str]) -> str | None:
    """The vector record name for a set of field names, or None if it has no momentum."""
    name = _VECTOR_NAMES.get(frozenset(names & _VECTOR_COORDS))
    if name is None and {"pt", "eta", "phi", "mass"} <= names:
        return CANDIDATE_RECORD  # e.g. SV, which also has vertex x/y/z fields
    return name


def _leaf_form(leaf: _Leaf, reader: _ChunkReader, buffers: dict[str, Callable]) -> ak.forms.Form:
    """Form of a flat, self-jagged or string branch; registers its buffer generators."""
    primitive = ak.types.numpytype.dtype_to_primitive(leaf.dtype)
    if leaf.kind == _FLAT:
        buffers[leaf.key] = partial(reader.flat, leaf.key)
        return ak.forms.NumpyForm(primitive, leaf.inner_shape, form_key=leaf.key)
    buffers[leaf.key + "!offsets"] = lambda: reader.jagged(leaf.key)[0]
    buffers[leaf.key] = lambda: reader.jagged(leaf.key)[1]
    if leaf.kind == _STRING:
        content = ak.forms.NumpyForm("uint8", parameters={"__array__": "char"}, form_key=leaf.key)
        return ak.forms.ListOffsetForm(
            "i64", content, parameters={"__array__": "string"}, form_key=leaf.key + "!offsets"
        )
    content = ak.forms.NumpyForm(primitive, form_key=leaf.key)
    return ak.forms.ListOffsetForm("i64", content, form_key=leaf.key + "!offsets")


def _group_form(
    name: str, group: _Group, reader: _ChunkReader, buffers: dict[str, Callable]
) -> ak.forms.Form:
    """Form of a collection (list of records) or of a singleton record."""
    params = {"__record__": _vector_name(set(group.leaves)) or COLLECTION_RECORD}
    if group.counter is None:
        contents = [_leaf_form(leaf, reader, buffers) for leaf in group.leaves.values()]
        params["collection_name"] = name
        return ak.forms.RecordForm(contents, list(group.leaves), parameters=params)
    contents = []
    for leaf in group.leaves.values():
        buffers[leaf.key] = partial(reader.content, leaf.key, group.counter)
        primitive = ak.types.numpytype.dtype_to_primitive(leaf.dtype)
        contents.append(ak.forms.NumpyForm(primitive, form_key=leaf.key))
    record = ak.forms.RecordForm(contents, list(group.leaves), parameters=params)
    offsets_key = group.counter + "!offsets"
    buffers[offsets_key] = partial(reader.counter_offsets, group.counter)
    # the name sits on the list, not the record, so that concatenating collections keeps
    # the record name (and vector behaviour): awkward drops differing record parameters
    return ak.forms.ListOffsetForm(
        "i64", record, parameters={"collection_name": name}, form_key=offsets_key
    )


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


class Events(ak.Array):
    """Lazy events of one chunk: an ``ak.Array`` of records with virtual buffers.

    Attribute or item access gives fields (``events.Muon``, ``events["run"]``); full branch
    names also work (``events["Muon_pt"]``). Unknown names raise :class:`MissingBranchError`.
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
        if where in self._layout.fields:
            return self[where]
        return self._by_branch_name(where)

    def __getitem__(self, where: Any) -> Any:
        if isinstance(where, str) and where not in self._layout.fields:
            return self._by_branch_name(where)
        return super().__getitem__(where)

    def _by_branch_name(self, name: str) -> Any:
        """A field by its full branch name (``Muon_pt``), or a clear error."""
        schema: _Schema | None = self.attrs.get("@schema")
        path = schema.paths.get(name) if schema is not None else None
        if path is None:
            known = [*self._layout.fields, *(schema.paths if schema else ())]
            raise _missing_error(name, self.attrs, list(dict.fromkeys(known)), "")
        out = super().__getitem__(path[0])
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


class NanoCollectionArray(_FieldErrors, ak.Array):
    """A collection or record without vector behaviour (e.g. ``events.HLT``, ``events.PV``)."""


class NanoMomentumArray2D(_FieldErrors, vak.MomentumArray2D):
    """vector's Momentum2D array (e.g. ``events.MET``) with clear missing-field errors."""


class NanoMomentumArray3D(_FieldErrors, vak.MomentumArray3D):
    """vector's Momentum3D array (e.g. ``events.TrigObj``) with clear missing-field errors."""


class NanoMomentumArray4D(_FieldErrors, vak.MomentumArray4D):
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
class PtEtaPhiMCandidateArray(_FieldErrors, _PtEtaPhiM, vak.MomentumArray4D):
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

    Nothing is read here: only ``tree.keys()`` and branch interpretations are inspected
    (cached per tree object). ``metadata`` is kept as given, as ``events.metadata``.
    """
    if not 0 <= entry_start <= entry_stop <= tree.num_entries:
        raise ChunkFailedError(
            f"entry range [{entry_start}, {entry_stop}) is outside the "
            f"{tree.num_entries} entries of {metadata.get('filename', tree.file.file_path)}"
        )
    schema = _schema(tree)
    reader = _ChunkReader(tree, entry_start, entry_stop)
    buffers: dict[str, Callable] = {}
    contents = []
    for name, item in schema.fields.items():
        if isinstance(item, _Group):
            contents.append(_group_form(name, item, reader, buffers))
        else:
            contents.append(_leaf_form(item, reader, buffers))
    form = ak.forms.RecordForm(
        contents, list(schema.fields), parameters={"__record__": EVENTS_RECORD}
    )
    return ak.from_buffers(
        form,
        entry_stop - entry_start,
        buffers,
        buffer_key="{form_key}",
        attrs={"metadata": metadata, "@reader": reader, "@schema": schema},
    )


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
