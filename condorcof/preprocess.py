"""Preprocess: open each input file once to learn its tree's entry count, with a cache.

Cache entries are keyed by (path, tree, size, mtime) for local files and (url, tree) for
remote ones: two files may share a ROOT UUID (``nano_dy.root`` and ``nano_dy_SpecialTree.root``
do), so the UUID alone never identifies a file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from condorcof.errors import PreprocessError
from condorcof.fileset import Dataset, FileSpec, is_url
from condorcof.remote import open_file
from condorcof.safepickle import write_json_atomic

log = logging.getLogger(__name__)
CACHE_VERSION = 1


@dataclass(frozen=True)
class FileInfo:
    """What preprocessing learnt about one (file, tree)."""

    path: str
    treename: str
    num_entries: int
    uuid: str


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the plan because it could not be read, and why."""

    dataset: str
    path: str
    treename: str
    reason: str


@dataclass(frozen=True)
class Preprocessed:
    """Entry counts per dataset file (in fileset order) plus the files that were skipped."""

    files: dict[str, tuple[FileInfo, ...]]
    skipped: tuple[SkippedFile, ...]


def default_cache_path() -> Path:
    """The user-level cache shared by all runs (``$XDG_CACHE_HOME/condorcof/files.json``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "condorcof" / "files.json"


class FileCache:
    """A JSON cache of :class:`FileInfo`, loaded once and saved atomically."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, dict] = self._read() if path else {}
        self.dirty = False

    def _read(self) -> dict[str, dict]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        return data.get("files", {})

    def get(self, spec: FileSpec) -> FileInfo | None:
        key = cache_key(spec)
        hit = self.entries.get(key) if key else None
        return FileInfo(**hit) if hit else None

    def put(self, spec: FileSpec, info: FileInfo) -> None:
        key = cache_key(spec)
        if key:
            self.entries[key] = asdict(info)
            self.dirty = True

    def save(self) -> None:
        if self.path and self.dirty:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.path, {"version": CACHE_VERSION, "files": self.entries})
            except OSError as err:
                log.warning("could not save the preprocess cache %s: %s", self.path, err)


def cache_key(spec: FileSpec) -> str | None:
    """A key that changes when the file changes; None when a local file cannot be stat'ed."""
    if is_url(spec.path):
        return f"{spec.path}\0{spec.treename}"
    try:
        st = os.stat(spec.path)
    except OSError:
        return None
    return f"{spec.path}\0{spec.treename}\0{st.st_size}\0{st.st_mtime_ns}"


def read_file_info(spec: FileSpec, redirectors: tuple[str, ...] = ()) -> FileInfo:
    """Open one file and read its tree's entry count and UUID; PreprocessError on failure."""
    import uproot

    try:
        with open_file(spec.path, redirectors) as root_file:
            tree = root_file[spec.treename]
            if not hasattr(tree, "num_entries"):
                raise PreprocessError(
                    f"{spec.path}: object {spec.treename!r} is a {type(tree).__name__}, not a TTree"
                )
            return FileInfo(
                spec.path, spec.treename, int(tree.num_entries), str(root_file.file.uuid)
            )
    except PreprocessError:
        raise
    except uproot.KeyInFileError as err:
        keys = _tree_names(spec.path)
        raise PreprocessError(
            f"{spec.path}: no tree {spec.treename!r} in the file (trees: {', '.join(keys) or 'none'})"
        ) from err
    except FileNotFoundError as err:
        raise PreprocessError(f"{spec.path}: no such file") from err
    except Exception as err:  # uproot raises many types for a file that is not ROOT
        raise PreprocessError(
            f"{spec.path}: cannot be read as a ROOT file ({_describe(err)})"
        ) from err


def _tree_names(path: str) -> list[str]:
    import uproot

    try:
        with uproot.open(path) as root_file:
            return sorted(
                {k.split(";")[0] for k, c in root_file.classnames().items() if c == "TTree"}
            )
    except Exception:
        return []


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def preprocess(
    datasets: Iterable[Dataset],
    *,
    skip_bad_files: bool = False,
    cache: FileCache | None = None,
    max_workers: int = 8,
    progress: Callable[[int, int], None] | None = None,
    redirectors: tuple[str, ...] = (),
) -> Preprocessed:
    """Learn every file's entry count, in a bounded thread pool, reusing the cache.

    ``root://`` files that cannot be opened are tried through ``redirectors`` in turn."""
    datasets = tuple(datasets)
    cache = cache or FileCache(None)
    todo = {
        (spec.path, spec.treename): spec
        for ds in datasets
        for spec in ds.files
        if _known(spec, cache) is None
    }
    results: dict[tuple[str, str], FileInfo | PreprocessError] = {}
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        for n, (key, outcome) in enumerate(
            zip(todo, pool.map(lambda s: _try_read(s, redirectors), todo.values()), strict=True), 1
        ):
            results[key] = outcome
            if isinstance(outcome, FileInfo):
                cache.put(todo[key], outcome)
            if progress:
                progress(n, len(todo))
    cache.save()
    return _collect(datasets, cache, results, skip_bad_files)


def _known(spec: FileSpec, cache: FileCache) -> FileInfo | None:
    if spec.num_entries is not None:
        return FileInfo(spec.path, spec.treename, spec.num_entries, spec.uuid or "")
    return cache.get(spec)


def _try_read(spec: FileSpec, redirectors: tuple[str, ...]) -> FileInfo | PreprocessError:
    try:
        return read_file_info(spec, redirectors)
    except PreprocessError as err:
        return err


def _collect(
    datasets: tuple[Dataset, ...],
    cache: FileCache,
    results: dict[tuple[str, str], FileInfo | PreprocessError],
    skip_bad_files: bool,
) -> Preprocessed:
    files: dict[str, tuple[FileInfo, ...]] = {}
    skipped: list[SkippedFile] = []
    errors: list[str] = []
    for ds in datasets:
        infos: list[FileInfo] = []
        for spec in ds.files:
            outcome = _known(spec, cache) or results[(spec.path, spec.treename)]
            if isinstance(outcome, FileInfo):
                infos.append(outcome)
            elif skip_bad_files:
                skipped.append(SkippedFile(ds.name, spec.path, spec.treename, str(outcome)))
            else:
                errors.append(f"dataset {ds.name!r}: {outcome}")
        files[ds.name] = tuple(infos)
    if errors:
        raise PreprocessError(
            "\n".join(errors[:20])
            + (f"\n... and {len(errors) - 20} more" if len(errors) > 20 else "")
            + "\n(pass --skip-bad-files to leave unreadable files out; they are then recorded)"
        )
    return Preprocessed(files=files, skipped=tuple(skipped))
