"""Run one job: the processor over the job's chunks, writing a partial and a manifest.

``python -m condorcof.worker SPEC [--outdir DIR]``. Needs only uproot, awkward, numpy, hist
(and vector) plus condorcof's own modules. On failure it writes a structured failure record
and exits with :data:`EXIT_DETERMINISTIC` (retrying cannot help: processor bug, bad input)
or :data:`EXIT_TRANSIENT` (I/O trouble: retry).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from condorcof.accumulate import iadd
from condorcof.errors import ChunkFailedError, InputFileError
from condorcof.jobspec import (
    PARTIAL_FORMAT,
    JobSpec,
    failure_name,
    manifest_name,
    partial_name,
    read_job_spec,
)
from condorcof.plan import Chunk
from condorcof.processor import ProcessorLike, build_processor
from condorcof.remote import open_file
from condorcof.safepickle import dump_pickle, write_json_atomic

EXIT_OK = 0
EXIT_DETERMINISTIC = 3
EXIT_TRANSIENT = 4
_TRANSIENT = (TimeoutError, ConnectionError, MemoryError)
_DETERMINISTIC_OS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


@dataclass
class JobFailure(Exception):
    """A job failed; carries the record written to ``failure_<job>.json``."""

    record: dict[str, Any]
    transient: bool

    def __str__(self) -> str:
        r = self.record
        where = f" on {r['file']} [{r['entry_start']}, {r['entry_stop']})" if r.get("file") else ""
        return f"{r['job']}: {r['exception']}: {r['message']}{where}"


@dataclass
class JobTimings:
    """Seconds one job spent per stage, and its memory once set up (before any chunk)."""

    setup: float = 0.0
    open: float = 0.0
    process: float = 0.0
    write: float = 0.0
    per_chunk: list[float] = field(default_factory=list)
    rss_after_setup_mb: float = 0.0


def versions() -> dict[str, str]:
    """Versions of the interpreter and the scientific stack in this process."""
    import awkward
    import uproot

    import condorcof

    out = {"python": platform.python_version(), "condorcof": condorcof.__version__}
    out.update(uproot=uproot.__version__, awkward=awkward.__version__, numpy=np.__version__)
    for name in ("hist", "vector"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


def check_environment() -> None:
    """Fail early, with the fix, when the image lacks what the worker needs."""
    missing = []
    for name in ("uproot", "awkward", "numpy", "hist"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ChunkFailedError(
            f"the worker environment lacks {', '.join(missing)}; use an image with "
            "uproot, awkward, numpy, hist and vector (see site/image/Dockerfile)"
        )


class _OpenTrees:
    """Open trees of this process, least recently used last: opening a NanoAOD tree reads the
    metadata of every branch (0.3-0.9 s), so a process keeps a few open across chunks and jobs."""

    capacity = 4
    trees: dict[tuple[str, str], Any] = {}
    files: dict[str, Any] = {}
    attempts: list[dict[str, str]] = []  # XRootD locations tried besides the planned URL

    @classmethod
    def get(cls, path: str, treename: str, redirectors: tuple[str, ...] = ()) -> Any:
        key = (path, treename)
        tree = cls.trees.pop(key, None)
        if tree is None:
            if path not in cls.files:
                cls.files[path] = open_file(path, redirectors, cls.attempts)
            tree = cls.files[path][treename]
        cls.trees[key] = tree
        while len(cls.trees) > cls.capacity:
            cls._evict(next(iter(cls.trees)))
        return tree

    @classmethod
    def _evict(cls, key: tuple[str, str]) -> None:
        del cls.trees[key]
        if all(p != key[0] for p, _ in cls.trees):
            cls.files.pop(key[0]).close()


def run_job(spec: JobSpec, outdir: Path) -> dict[str, Any]:
    """Run every chunk of the job; write its partial and manifest; return the manifest.

    Raises :class:`JobFailure` after writing the failure record.
    """
    timings = JobTimings()
    _OpenTrees.attempts.clear()
    t0 = time.perf_counter()
    chunk: Chunk | None = None
    try:
        check_environment()
        processor = build_processor(spec.processor)
        timings.setup = time.perf_counter() - t0
        timings.rss_after_setup_mb = peak_rss_mb()
        accumulator: Any = None
        events_read = np.zeros(len(spec.chunks), dtype=np.int64)
        skipped = [c.index for c in spec.chunks if c.path in spec.skip_files]
        for i, chunk in enumerate(spec.chunks):
            if chunk.path in spec.skip_files:
                continue
            result, n_events = _run_chunk(spec, chunk, processor, timings)
            accumulator = result if accumulator is None else iadd(accumulator, result)
            events_read[i] = n_events
        chunk = None
    except Exception as err:
        record = failure_record(spec, chunk, err)
        write_json_atomic(outdir / failure_name(spec.job), record)
        raise JobFailure(record, is_transient(err)) from err
    t_write = time.perf_counter()
    done = [i for i, c in enumerate(spec.chunks) if c.index not in skipped]
    payload = {
        "format": PARTIAL_FORMAT,
        "accumulator": accumulator,
        "chunks": np.array([spec.chunks[i].index for i in done], dtype=np.int64),
        "events": events_read[done],
        "skipped": np.array(skipped, dtype=np.int64),
    }
    dump_pickle(payload, outdir / partial_name(spec.job))
    timings.write = time.perf_counter() - t_write
    manifest = _manifest(spec, events_read, timings, time.perf_counter() - t0)
    write_json_atomic(outdir / manifest_name(spec.job), manifest)
    return manifest


def _run_chunk(
    spec: JobSpec, chunk: Chunk, processor: ProcessorLike, timings: JobTimings
) -> tuple[Any, int]:
    from condorcof.events import make_coffea_events, make_events

    build_events = make_coffea_events if spec.schema == "coffea" else make_events
    t_open = time.perf_counter()
    try:
        tree = _OpenTrees.get(spec.local_path(chunk.path), chunk.treename, spec.redirectors)
    except Exception as err:
        raise InputFileError(
            f"{chunk.path}: cannot open tree {chunk.treename!r}: {type(err).__name__}: {err}"
        ) from err
    expected = spec.file_entries.get(chunk.path + "\0" + chunk.treename)
    if expected is not None and tree.num_entries != expected:
        raise ChunkFailedError(
            f"{chunk.path}: tree {chunk.treename!r} has {tree.num_entries} entries but the plan "
            f"expected {expected}; the file changed since planning (re-plan the run)"
        )
    t_proc = time.perf_counter()
    timings.open += t_proc - t_open
    events = build_events(
        tree, chunk.entry_start, chunk.entry_stop, event_metadata(spec, chunk, tree)
    )
    result = processor.process(events)
    elapsed = time.perf_counter() - t_proc
    timings.process += elapsed
    timings.per_chunk.append(elapsed)
    return result, chunk.num_entries


def event_metadata(spec: JobSpec, chunk: Chunk, tree: Any) -> dict[str, Any]:
    """``events.metadata``: coffea's keys plus the dataset's own metadata."""
    meta = dict(spec.metadata.get(chunk.dataset, {}))
    meta.update(
        dataset=chunk.dataset,
        filename=chunk.path,
        treename=chunk.treename,
        entrystart=chunk.entry_start,
        entrystop=chunk.entry_stop,
        fileuuid=str(tree.file.uuid),
    )
    return meta


def is_transient(err: BaseException) -> bool:
    """True when a retry may succeed (network or I/O trouble, memory pressure)."""
    if isinstance(err, InputFileError) and err.__cause__ is not None:
        return is_transient(err.__cause__)
    if isinstance(err, _TRANSIENT):
        return True
    return isinstance(err, OSError) and not isinstance(err, _DETERMINISTIC_OS)


def failure_cause(err: BaseException) -> str:
    """``input`` when the file is at fault (open or decode), ``processor`` otherwise."""
    if isinstance(err, InputFileError) or type(err).__module__.startswith("uproot"):
        return "input"
    return "processor"


def failure_record(spec: JobSpec, chunk: Chunk | None, err: BaseException) -> dict[str, Any]:
    """What went wrong, where, and on which machine: enough to act without opening logs."""
    record: dict[str, Any] = {
        "job": spec.job,
        "exception": type(err).__name__,
        "message": str(err),
        "traceback": "".join(traceback.format_exception(err)),
        "transient": is_transient(err),
        "cause": failure_cause(err),
        "host": socket.gethostname(),
        "image": docker_image(),
        "time": time.time(),
        "python": platform.python_version(),
    }
    if chunk is not None:
        record.update(asdict(chunk), file=chunk.path)
    return record


def docker_image() -> str | None:
    """The container image this job runs in, read from HTCondor's job ad when present."""
    ad_path = os.environ.get("_CONDOR_JOB_AD")
    if not ad_path:
        return os.environ.get("CONDORCOF_IMAGE")
    try:
        for line in Path(ad_path).read_text().splitlines():
            key, _, value = line.partition(" = ")
            if key.strip() in ("DockerImage", "ContainerImage"):
                return value.strip().strip('"')
    except OSError:
        pass
    return None


def _manifest(
    spec: JobSpec, events_read: np.ndarray, timings: JobTimings, total: float
) -> dict[str, Any]:
    return {
        "job": spec.job,
        "chunks": [c.index for c in spec.chunks if c.path not in spec.skip_files],
        "skipped_chunks": [c.index for c in spec.chunks if c.path in spec.skip_files],
        "xrootd_attempts": list(_OpenTrees.attempts),
        "events": int(events_read.sum()),
        "events_per_chunk": events_read.tolist(),
        "timings": {**asdict(timings), "total": total},
        "versions": versions(),
        "host": socket.gethostname(),
        "image": docker_image(),
        "max_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m condorcof.worker``."""
    parser = argparse.ArgumentParser(prog="condorcof.worker", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the job's JSON spec, or a file of several (with --job)")
    parser.add_argument("--job", default=None, help="which job of a spec file to run")
    parser.add_argument("--outdir", default=".", help="where to write outputs (default: here)")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        spec = read_job_spec(json.loads(Path(args.spec).read_text()), args.job)
    except Exception as err:
        print(f"condorcof.worker: cannot read job spec {args.spec}: {err}", file=sys.stderr)
        return EXIT_DETERMINISTIC
    try:
        manifest = run_job(spec, outdir)
    except JobFailure as failure:
        print(failure.record["traceback"], file=sys.stderr)
        print(f"condorcof.worker: FAILED {failure}", file=sys.stderr)
        return EXIT_TRANSIENT if failure.transient else EXIT_DETERMINISTIC
    print(
        f"condorcof.worker: {spec.job}: {manifest['events']} events in {len(spec.chunks)} chunks, "
        f"{manifest['timings']['total']:.2f} s"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
