"""The embedded default: run a plan on this machine through the worker and merge code.

Jobs run in a local process pool (in-process with one worker); partials go to a scratch
folder; the final merge checks completeness and writes the result atomically. Ctrl-C stops
the pool and writes nothing.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from condorcof.errors import ChunkFailedError
from condorcof.jobspec import JobSpec, file_entry_counts, job_spec, partial_name
from condorcof.merge import finalize, merge_files, write_result
from condorcof.plan import Plan
from condorcof.processor import ProcessorSpec, build_processor
from condorcof.progress import Progress
from condorcof.worker import JobFailure, run_job

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a local run did, for the closing summary."""

    events: int = 0
    chunks: int = 0
    jobs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        busy = self.seconds.get("process", 0.0)
        return self.events / busy if busy > 0 else 0.0


def _job_task(spec_data: dict[str, Any], outdir: str) -> tuple[str, dict[str, Any]]:
    """Run one job in a pool process; failures come back as data, not exceptions."""
    spec = JobSpec.from_json(spec_data)
    try:
        return "ok", run_job(spec, Path(outdir))
    except JobFailure as failure:
        return "failed", failure.record


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _format_failure(record: dict[str, Any]) -> str:
    where = ""
    if record.get("file"):
        where = (
            f" in chunk {record['index']} of dataset {record['dataset']!r}: "
            f"{record['file']} entries [{record['entry_start']}, {record['entry_stop']})"
        )
    return f"job {record['job']} failed{where}\n{record['traceback'].rstrip()}"


def _run_jobs(
    specs: list[JobSpec], outdir: Path, workers: int, progress: Progress
) -> Iterator[dict[str, Any]]:
    """Yield manifests as jobs finish; raise ChunkFailedError on the first failure."""
    if workers <= 1:
        for spec in specs:
            status, data = _job_task(spec.to_json(), str(outdir))
            _check(status, data)
            progress.update(len(data["chunks"]), data["events"])
            yield data
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_ignore_sigint)
    try:
        pending: set[Future[tuple[str, dict[str, Any]]]] = {
            pool.submit(_job_task, spec.to_json(), str(outdir)) for spec in specs
        }
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                status, data = future.result()
                _check(status, data)
                progress.update(len(data["chunks"]), data["events"])
                yield data
    finally:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()


def _check(status: str, data: dict[str, Any]) -> None:
    if status != "ok":
        raise ChunkFailedError(_format_failure(data))


def run_local(
    plan: Plan,
    processor: ProcessorSpec,
    output: str | Path,
    *,
    workers: int = 1,
    schema: str = "nanoaod",
    allow_incomplete: bool = False,
    scratch: str | Path | None = None,
    show_progress: bool = True,
    redirectors: tuple[str, ...] = (),
) -> RunSummary:
    """Run every job of ``plan`` locally and write the result to ``output``."""
    summary = RunSummary(chunks=len(plan.chunks), jobs=len(plan.jobs))
    built = build_processor(processor)  # fail fast, before any job starts
    entries = file_entry_counts(plan)
    specs = [
        replace(job_spec(plan, job, processor, schema, entries), redirectors=tuple(redirectors))
        for job in plan.jobs
    ]
    workdir = Path(tempfile.mkdtemp(prefix="condorcof-run-", dir=scratch))
    progress = Progress(len(plan.chunks), plan.total_events, enabled=show_progress)
    try:
        t0 = time.perf_counter()
        manifests = list(_run_jobs(specs, workdir, workers, progress))
        progress.close()
        summary.seconds["process"] = time.perf_counter() - t0
        summary.events = sum(m["events"] for m in manifests)
        t1 = time.perf_counter()
        paths = [workdir / partial_name(job.name) for job in plan.jobs]
        merged = merge_files(paths) if paths else None
        result = finalize(plan, merged, built, allow_incomplete)
        summary.seconds["merge"] = time.perf_counter() - t1
        write_result(result, output)
        summary.report = result["report"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return summary
