"""Read a fileset: coffea's JSON form, the short form, or a text file of paths.

The result is plain data: a tuple of :class:`Dataset`, each with its :class:`FileSpec` entries.
Relative paths resolve against the fileset file's folder, local globs expand (sorted),
and ``root://`` (or any ``scheme://``) URLs pass through untouched.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from condorcof.errors import FilesetError

DEFAULT_TREENAME = "Events"
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class FileSpec:
    """One input file of a dataset, with what the fileset already knows about it."""

    path: str
    treename: str
    num_entries: int | None = None
    uuid: str | None = None
    steps: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its files and free-form metadata (e.g. ``isMC``)."""

    name: str
    files: tuple[FileSpec, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)


def is_url(path: str) -> bool:
    """True for ``root://host//file`` and other ``scheme://`` paths.

    >>> is_url("root://cmsxrootd.fnal.gov//store/x.root"), is_url("/data/x.root")
    (True, False)
    """
    return "://" in path and not path.startswith("file://")


def load_fileset(
    path: str | os.PathLike[str], treename: str = DEFAULT_TREENAME
) -> tuple[Dataset, ...]:
    """Read a fileset file (JSON, or text with one path per line) into datasets."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise FilesetError(f"cannot read fileset {path}: {err.strerror or err}") from err
    base = path.resolve().parent
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise FilesetError(f"fileset {path} is not valid JSON: {err}") from err
        return parse_fileset(obj, base, treename, source=str(path))
    return (_dataset_from_lines(path, text, base, treename),)


def parse_fileset(
    obj: Any, base: Path, treename: str = DEFAULT_TREENAME, source: str = "fileset"
) -> tuple[Dataset, ...]:
    """Turn a decoded JSON fileset into datasets, validating its shape."""
    if not isinstance(obj, Mapping) or not obj:
        raise FilesetError(
            f"{source}: expected a JSON object of datasets, like "
            '{"DY": {"files": {"dy.root": "Events"}}} or {"DY": ["dy.root"]}'
        )
    return tuple(
        _parse_dataset(str(name), spec, base, treename, source) for name, spec in obj.items()
    )


def _parse_dataset(name: str, spec: Any, base: Path, treename: str, source: str) -> Dataset:
    where = f"{source}: dataset {name!r}"
    if not name:
        raise FilesetError(f"{source}: a dataset has an empty name")
    metadata: Mapping[str, Any] = {}
    if isinstance(spec, list):
        files_obj: Any = spec
    elif isinstance(spec, Mapping):
        if "files" not in spec:
            raise FilesetError(f"{where} has no 'files' key (keys: {sorted(spec)})")
        files_obj = spec["files"]
        treename = spec.get("treename", treename)
        metadata = spec.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise FilesetError(
                f"{where}: 'metadata' must be an object, not {type(metadata).__name__}"
            )
    else:
        raise FilesetError(f"{where} must be a list of files or an object with 'files'")
    files = tuple(_parse_files(files_obj, base, treename, where))
    if not files:
        raise FilesetError(f"{where} has no files")
    return Dataset(name=name, files=files, metadata=dict(metadata))


def _parse_files(files_obj: Any, base: Path, treename: str, where: str) -> list[FileSpec]:
    if isinstance(files_obj, list):
        entries: list[tuple[Any, Any]] = [(f, treename) for f in files_obj]
    elif isinstance(files_obj, Mapping):
        entries = list(files_obj.items())
    else:
        raise FilesetError(
            f"{where}: 'files' must be a list or an object, not {type(files_obj).__name__}"
        )
    out: list[FileSpec] = []
    for raw_path, value in entries:
        if not isinstance(raw_path, str) or not raw_path.strip():
            raise FilesetError(f"{where}: file path {raw_path!r} is not a non-empty string")
        for path in expand_path(raw_path.strip(), base, where):
            out.append(_file_spec(path, value, where))
    return out


def _file_spec(path: str, value: Any, where: str) -> FileSpec:
    if isinstance(value, str):
        return FileSpec(path=path, treename=value)
    if not isinstance(value, Mapping):
        raise FilesetError(
            f"{where}: file {path}: expected a tree name or an object, got {value!r}"
        )
    tree = value.get("object_path") or value.get("treename") or value.get("tree")
    if not isinstance(tree, str) or not tree:
        raise FilesetError(f"{where}: file {path}: no 'object_path' (tree name) given")
    steps = value.get("steps")
    return FileSpec(
        path=path,
        treename=tree,
        num_entries=_optional_int(value.get("num_entries"), f"{where}: file {path}: num_entries"),
        uuid=value.get("uuid"),
        steps=_parse_steps(steps, f"{where}: file {path}") if steps else None,
    )


def _optional_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FilesetError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def _parse_steps(steps: Any, where: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple((int(a), int(b)) for a, b in steps)
    except (TypeError, ValueError) as err:
        raise FilesetError(f"{where}: 'steps' must be a list of [start, stop] pairs") from err
    for start, stop in pairs:
        if not 0 <= start <= stop:
            raise FilesetError(f"{where}: step [{start}, {stop}] is not a valid entry range")
    return pairs


def expand_path(raw: str, base: Path, where: str) -> list[str]:
    """Resolve one path: URLs unchanged, relative paths against ``base``, globs expanded."""
    if is_url(raw):
        return [raw]
    if raw.startswith("file://"):
        raw = raw[len("file://") :]
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        path = base / path
    if _GLOB_CHARS & set(raw):
        matches = sorted(glob.glob(str(path)))
        if not matches:
            raise FilesetError(
                f"{where}: the pattern {raw!r} matches no file (looked in {path.parent})"
            )
        return matches
    return [str(path)]


def _dataset_from_lines(path: Path, text: str, base: Path, treename: str) -> Dataset:
    where = f"{path}: dataset {path.stem!r}"
    files: list[FileSpec] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not is_url(line.strip()) else line.strip()
        if line:
            files.extend(FileSpec(p, treename) for p in expand_path(line, base, where))
    if not files:
        raise FilesetError(f"{path}: the file list names no files")
    return Dataset(name=path.stem, files=tuple(files), metadata={})
