"""The plan: chunks of entries, jobs that pack them, and the merge tree, as plain data.

A plan is built by pure functions from preprocessed files and options, saved as JSON, and
read back identically. Every later stage (local run, DAG writer, merge, status) works from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from condorcof.errors import PlanError
from condorcof.fileset import Dataset
from condorcof.preprocess import FileInfo, Preprocessed, SkippedFile
from condorcof.safepickle import write_json_atomic

PLAN_FORMAT = "condorcof-plan/1"
FINAL_NODE = "final"


@dataclass(frozen=True)
class PlanOptions:
    """How to cut datasets into chunks and chunks into jobs."""

    chunksize: int = 100_000
    max_chunks: int | None = None
    job_events: int = 1_000_000
    max_chunks_per_job: int = 100
    merge_fanin: int = 16

    def __post_init__(self) -> None:
        _require_positive("chunksize", self.chunksize)
        _require_positive("job_events", self.job_events, allow_zero=True)
        _require_positive("max_chunks_per_job", self.max_chunks_per_job)
        if self.max_chunks is not None:
            _require_positive("max_chunks", self.max_chunks)
        if self.merge_fanin < 2:
            raise PlanError(f"merge_fanin must be at least 2, not {self.merge_fanin}")


def _require_positive(name: str, value: int, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise PlanError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, not {value!r}"
        )


@dataclass(frozen=True)
class Chunk:
    """A range of entries of one tree in one file: the unit of work and of bookkeeping."""

    index: int
    dataset: str
    path: str
    treename: str
    entry_start: int
    entry_stop: int

    @property
    def num_entries(self) -> int:
        return self.entry_stop - self.entry_start

    def to_json(self) -> dict[str, Any]:
        """The chunk as a JSON object (``dataclasses.asdict`` is ten times slower)."""
        return {
            "index": self.index,
            "dataset": self.dataset,
            "path": self.path,
            "treename": self.treename,
            "entry_start": self.entry_start,
            "entry_stop": self.entry_stop,
        }

    def describe(self) -> str:
        return f"chunk {self.index} ({self.dataset}: {self.path} [{self.entry_start}, {self.entry_stop}))"


@dataclass(frozen=True)
class Job:
    """One HTCondor node (or local task): the contiguous chunks ``[chunk_start, chunk_stop)``."""

    name: str
    chunk_start: int
    chunk_stop: int

    @property
    def chunk_indices(self) -> range:
        return range(self.chunk_start, self.chunk_stop)


@dataclass(frozen=True)
class MergeNode:
    """A merge of jobs' partials or of lower merges; the node named ``final`` is the root."""

    name: str
    inputs: tuple[str, ...]
    level: int


@dataclass(frozen=True)
class DatasetPlan:
    """A dataset as planned: its metadata and its readable files with entry counts."""

    name: str
    metadata: Mapping[str, Any]
    files: tuple[FileInfo, ...]


@dataclass(frozen=True)
class Plan:
    """Everything a run will do. Chunks, jobs and merges are in a fixed, reproducible order."""

    options: PlanOptions
    datasets: tuple[DatasetPlan, ...]
    chunks: tuple[Chunk, ...]
    jobs: tuple[Job, ...]
    merges: tuple[MergeNode, ...]
    skipped: tuple[SkippedFile, ...] = ()
    _job_index: dict[str, Job] = field(default_factory=dict, compare=False, repr=False)

    def job(self, name: str) -> Job:
        if not self._job_index:
            self._job_index.update((j.name, j) for j in self.jobs)
        try:
            return self._job_index[name]
        except KeyError:
            raise PlanError(f"the plan has no job named {name!r}") from None

    def chunks_of(self, job: Job) -> tuple[Chunk, ...]:
        return self.chunks[job.chunk_start : job.chunk_stop]

    def events_per_dataset(self) -> dict[str, int]:
        totals = {ds.name: 0 for ds in self.datasets}
        for chunk in self.chunks:
            totals[chunk.dataset] += chunk.num_entries
        return totals

    @property
    def total_events(self) -> int:
        return sum(c.num_entries for c in self.chunks)

    def metadata_of(self, dataset: str) -> Mapping[str, Any]:
        return next(ds.metadata for ds in self.datasets if ds.name == dataset)


def split_entries(num_entries: int, chunksize: int) -> list[tuple[int, int]]:
    """Split ``num_entries`` into ``round(n / chunksize)`` ranges whose sizes differ by at most one.

    >>> split_entries(10, 4)
    [(0, 5), (5, 10)]
    >>> split_entries(11, 4)
    [(0, 3), (3, 7), (7, 11)]
    >>> split_entries(2304, 1000)
    [(0, 1152), (1152, 2304)]
    >>> split_entries(0, 100)
    []
    """
    if num_entries <= 0:
        return []
    n_chunks = max(round(num_entries / chunksize), 1)
    bounds = [i * num_entries // n_chunks for i in range(n_chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def make_plan(datasets: Iterable[Dataset], pre: Preprocessed, options: PlanOptions) -> Plan:
    """Build the plan from the fileset and what preprocessing learnt."""
    datasets = tuple(datasets)
    steps = {(ds.name, f.path, f.treename): f.steps for ds in datasets for f in ds.files}
    chunks: list[Chunk] = []
    for ds in datasets:
        ranges = [
            (info, start, stop)
            for info in pre.files[ds.name]
            for start, stop in _ranges(
                info, steps.get((ds.name, info.path, info.treename)), options
            )
        ]
        if options.max_chunks is not None:
            ranges = ranges[: options.max_chunks]
        base = len(chunks)
        chunks.extend(
            Chunk(base + i, ds.name, info.path, info.treename, start, stop)
            for i, (info, start, stop) in enumerate(ranges)
        )
    jobs = pack_jobs(chunks, options)
    return Plan(
        options=options,
        datasets=tuple(
            DatasetPlan(ds.name, dict(ds.metadata), pre.files[ds.name]) for ds in datasets
        ),
        chunks=tuple(chunks),
        jobs=jobs,
        merges=merge_tree([j.name for j in jobs], options.merge_fanin),
        skipped=pre.skipped,
    )


def _ranges(
    info: FileInfo, steps: tuple[tuple[int, int], ...] | None, options: PlanOptions
) -> list[tuple[int, int]]:
    if steps:
        bad = [s for s in steps if s[1] > info.num_entries]
        if bad:
            raise PlanError(
                f"{info.path}: step {list(bad[0])} goes past the file's {info.num_entries} entries"
            )
        return [s for s in steps if s[1] > s[0]]
    return split_entries(info.num_entries, options.chunksize)


def _name_width(count: int) -> int:
    return max(4, len(str(max(count - 1, 0))))


def pack_jobs(chunks: list[Chunk], options: PlanOptions) -> tuple[Job, ...]:
    """Pack consecutive chunks of one dataset into jobs of about ``job_events`` entries."""
    bounds: list[tuple[int, int]] = []
    start = 0
    events = 0
    for i, chunk in enumerate(chunks):
        full = (
            i - start >= options.max_chunks_per_job
            or events + chunk.num_entries > options.job_events
            or chunk.dataset != chunks[start].dataset
        )
        if i > start and full:
            bounds.append((start, i))
            start, events = i, 0
        events += chunk.num_entries
    if chunks:
        bounds.append((start, len(chunks)))
    width = _name_width(len(bounds))
    return tuple(Job(f"job_{n:0{width}d}", a, b) for n, (a, b) in enumerate(bounds))


def merge_tree(leaves: list[str], fanin: int) -> tuple[MergeNode, ...]:
    """Merge nodes over ``leaves`` with at most ``fanin`` inputs each; the last is ``final``.

    >>> [(m.name, m.inputs) for m in merge_tree(["a", "b", "c"], 2)]
    [('merge_1_0000', ('a', 'b')), ('final', ('merge_1_0000', 'c'))]
    """
    nodes: list[MergeNode] = []
    level_inputs = list(leaves)
    level = 1
    while len(level_inputs) > fanin:
        groups = [level_inputs[i : i + fanin] for i in range(0, len(level_inputs), fanin)]
        width = _name_width(len(groups))
        level_nodes = [
            MergeNode(f"merge_{level}_{n:0{width}d}", tuple(g), level) if len(g) > 1 else None
            for n, g in enumerate(groups)
        ]
        nodes.extend(m for m in level_nodes if m is not None)
        level_inputs = [m.name if m else g[0] for m, g in zip(level_nodes, groups, strict=True)]
        level += 1
    nodes.append(MergeNode(FINAL_NODE, tuple(level_inputs), level))
    return tuple(nodes)


# ---------------------------------------------------------------- JSON round trip


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data; chunks are stored column-wise to stay compact."""
    ds_index = {ds.name: i for i, ds in enumerate(plan.datasets)}
    file_index = {
        (ds.name, f.path, f.treename): i for ds in plan.datasets for i, f in enumerate(ds.files)
    }
    return {
        "format": PLAN_FORMAT,
        "options": asdict(plan.options),
        "datasets": [
            {
                "name": ds.name,
                "metadata": dict(ds.metadata),
                "files": [_file_json(f) for f in ds.files],
            }
            for ds in plan.datasets
        ],
        "chunks": {
            "dataset": [ds_index[c.dataset] for c in plan.chunks],
            "file": [file_index[(c.dataset, c.path, c.treename)] for c in plan.chunks],
            "start": [c.entry_start for c in plan.chunks],
            "stop": [c.entry_stop for c in plan.chunks],
        },
        "jobs": [[j.name, j.chunk_start, j.chunk_stop] for j in plan.jobs],
        "merges": [[m.name, list(m.inputs), m.level] for m in plan.merges],
        "skipped": [asdict(s) for s in plan.skipped],
    }


def _file_json(info: FileInfo) -> dict[str, Any]:
    return {
        "path": info.path,
        "treename": info.treename,
        "num_entries": info.num_entries,
        "uuid": info.uuid,
    }


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """Rebuild a :class:`Plan` from :func:`plan_to_json` data."""
    if data.get("format") != PLAN_FORMAT:
        raise PlanError(
            f"not a condorcof plan (format {data.get('format')!r}, expected {PLAN_FORMAT!r})"
        )
    datasets = tuple(
        DatasetPlan(d["name"], d["metadata"], tuple(FileInfo(**f) for f in d["files"]))
        for d in data["datasets"]
    )
    cols = data["chunks"]
    chunks = tuple(_chunks_from_columns(datasets, cols))
    return Plan(
        options=PlanOptions(**data["options"]),
        datasets=datasets,
        chunks=chunks,
        jobs=tuple(Job(n, a, b) for n, a, b in data["jobs"]),
        merges=tuple(MergeNode(n, tuple(i), lvl) for n, i, lvl in data["merges"]),
        skipped=tuple(SkippedFile(**s) for s in data["skipped"]),
    )


def _chunks_from_columns(
    datasets: tuple[DatasetPlan, ...], cols: Mapping[str, list[int]]
) -> Iterator[Chunk]:
    for i, (d, f, start, stop) in enumerate(
        zip(cols["dataset"], cols["file"], cols["start"], cols["stop"], strict=True)
    ):
        ds = datasets[d]
        info = ds.files[f]
        yield Chunk(i, ds.name, info.path, info.treename, start, stop)


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write the plan as JSON, atomically."""
    write_json_atomic(Path(path), plan_to_json(plan), compact=True)


def load_plan(path: str | Path) -> Plan:
    """Read a plan written by :func:`save_plan`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise PlanError(f"cannot read plan {path}: {err}") from err
    return plan_from_json(data)
